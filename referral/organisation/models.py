from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db


class District(db.Model):
    """An ASD district (Bezirk); case numbers are counted per district and year."""

    __tablename__ = "district"
    __table_args__ = (CheckConstraint("length(code) BETWEEN 2 AND 4", name="code_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(4), unique=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    duty_phone: Mapped[str] = mapped_column(String(40))
    duty_hours: Mapped[str] = mapped_column(String(200), default="")
    inbox_email: Mapped[str] = mapped_column(String(254), default="")
    # The district of the model project: the evaluation compares it with the others.
    model_project: Mapped[bool] = mapped_column(default=False)

    schools: Mapped[list[School]] = relationship(back_populates="district", order_by="School.name")

    def __str__(self) -> str:
        return self.name


class School(db.Model):
    __tablename__ = "school"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"), index=True)
    # The school office, for the ASD and the directory; the people come with the contact directory.
    phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    address: Mapped[str] = mapped_column(String(200), default="", server_default="")

    district: Mapped[District] = relationship(back_populates="schools")

    def __str__(self) -> str:
        return self.name
