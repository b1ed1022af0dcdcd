from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..crypto import EncryptedText
from ..extensions import db
from ..organisation.models import District
from ..timeutil import utcnow

# What a client may do. A client sees exactly what the ASD of its districts sees (never drafts).
SCOPES = {
    "referrals:read": "Mitteilungen der eigenen Bezirke lesen (mit Anhängen und PDF)",
    "referrals:acknowledge": "Eingang einer Mitteilung im Namen einer ASD-Fachkraft bestätigen",
    "referrals:reference": "Aktenzeichen der Fachsoftware an einer Mitteilung eintragen",
}

api_client_district = Table(
    "api_client_district",
    db.metadata,
    Column("client_id", ForeignKey("api_client.id", ondelete="CASCADE"), primary_key=True),
    Column("district_id", ForeignKey("district.id"), primary_key=True),
)


class ApiClient(db.Model):
    """A case software installation (or a vendor's connector) allowed to use the API for some districts."""

    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The public identifier (OAuth 2.0 client_id); the secret is stored only as a SHA-256 hash: it is
    # 32 random bytes, so a slow hash would add nothing but time to every token request.
    client_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # After a rotation the old secret stays valid until then, so that a connector can switch over.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_valid_until: Mapped[datetime | None]
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # Webhooks (the admin registers the URL); the signing secret must be readable to sign, so it is
    # encrypted with the data keys like case data, never hashed.
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText)

    districts: Mapped[list[District]] = relationship(secondary=api_client_district, lazy="selectin")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def district_ids(self) -> set[int]:
        return {district.id for district in self.districts}


class ApiToken(db.Model):
    """A short-lived bearer token issued at the token endpoint (client credentials); stored as a hash."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    client: Mapped[ApiClient] = relationship(lazy="joined")
