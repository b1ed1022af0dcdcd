"""Monthly aggregates of the evaluation, so that a page sums a few hundred rows instead of reading every
referral of a period (issue 16: flat at 200,000 referrals).

`evaluation_count` holds, per local month of submission (consultations: of the request; transfers: of
the transfer), one count per kind of figure, key (an urgency, a category, a result …) and duration
bucket, at three grains: per school (district_id, school_id), per district (district_id, 0) and for
the whole city (0, 0). A page reads the coarsest grain its filter allows, so three years city-wide are
36 months × a few dozen rows however many referrals there are.

`evaluation_day_count` holds the same rows per local day, read only for the months a free period cuts.

`evaluation_dirty` lists the months whose rows are stale: written in the same transaction as the
change (aggregates.py, a flush listener), read and cleared by the next refresh. Append-only rows, not
a unique month, so that two transactions changing referrals of the same month never wait for each
other; '*' stands for "everything" (after bulk statements that name no month).
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, String, and_
from sqlalchemy.orm import Mapped, mapped_column

from ..cases.models import Referral, StateChange
from ..cases.process import OPEN_STATES, Action
from ..consultations.models import Consultation
from ..extensions import db

ALL = "*"


class EvaluationCount(db.Model):
    __tablename__ = "evaluation_count"

    # The primary key serves the city and district reads: kind, grain (district, school), a range of months.
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: all
    school_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: all
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # '2026-03', local time
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # '' where the kind has none
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0 unless a duration
    n: Mapped[int] = mapped_column(Integer)

    # The figures per school read a kind's months of all places: by this index only the period's months,
    # not the kind's whole history as by the primary key (district and school come before the month).
    __table_args__ = (Index("ix_evaluation_count_kind_month", "kind", "month"),)


class EvaluationDayCount(db.Model):
    """The same rows per local day, for the months a free period cuts: a cut month is summed from
    its days instead of computed live from the referrals (a period may start on any day)."""

    __tablename__ = "evaluation_day_count"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    school_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # '2026-03-05', local time
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer)

    # A refresh replaces the days of the dirty months (the primary key starts with the kind); the
    # figures per school read a kind's days of all places (the primary key would read all its days).
    __table_args__ = (
        Index("ix_evaluation_day_count_day", "day"),
        Index("ix_evaluation_day_count_kind_day", "kind", "day"),
    )


class EvaluationRunning(db.Model):
    """The monthly rows summed over every month up to and including `month` (aggregates.py), for every
    kind and grain except the duration histograms per school. The rows of the months a..b are those of
    b minus those of the month before a: a figure over a period reads two months' rows, not every month
    of it (three years of fine duration buckets were 90 ms at 200,000 referrals, of schools × categories
    27 ms). Every month from the first with data to the last has its rows; the month first, so that
    "the last month up to …" is one look."""

    __tablename__ = "evaluation_running"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    district_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: all
    school_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: all
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer)


class EvaluationDirty(db.Model):
    __tablename__ = "evaluation_dirty"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # or ALL


# "Ack/feedback still running at `now`" is the one part of the key figures that depends on the clock
# and so cannot be aggregated: counted live, over these partial indexes, which hold only referrals
# still waiting (a few hundred at any time, not the history).
Index(
    "ix_referral_waiting_ack",
    Referral.acknowledge_due_at,
    postgresql_where=and_(Referral.acknowledged_at.is_(None), Referral.acknowledge_due_at.is_not(None)),
    sqlite_where=and_(Referral.acknowledged_at.is_(None), Referral.acknowledge_due_at.is_not(None)),
)
Index(
    "ix_referral_waiting_feedback",
    Referral.feedback_due_at,
    postgresql_where=and_(Referral.feedback_at.is_(None), Referral.feedback_due_at.is_not(None)),
    sqlite_where=and_(Referral.feedback_at.is_(None), Referral.feedback_due_at.is_not(None)),
)
# The district overview counts, per district, the open referrals by state, assignee and deadline:
# answered from this index alone, which holds the open ones only (closed ones are most of the history).
OPEN = tuple(sorted(state.value for state in OPEN_STATES))  # the migration names them as of today
_open = Referral.state.in_(OPEN)
Index(
    "ix_referral_district_open",
    Referral.district_id,
    Referral.state,
    Referral.assignee_id,
    Referral.acknowledge_due_at,
    Referral.feedback_due_at,
    Referral.received_at,
    postgresql_where=_open,
    sqlite_where=_open,
)

# "Overdue now" lists the open referrals by their running deadline (the acknowledgement while submitted,
# else the feedback): in this index's order, so the first 100 are read and the sort stops there, however
# many are overdue. The running deadline is the generated column `inbox_due` (cases/models.py), which
# falls back to the acknowledgement deadline where an open referral has no feedback deadline; the query
# excludes those (see figures.overdue_now). A plain column, not an expression: SQLite's reflection (and
# so the schema comparison) cannot read expression indexes.
Index("ix_referral_open_due", Referral.inbox_due, Referral.id, postgresql_where=_open, sqlite_where=_open)

# A month refreshed, or cut by a free period and counted live, is found by these (not by a scan of
# every consultation or of the whole history of state changes).
Index("ix_consultation_requested_at", Consultation.requested_at)
_transfer = StateChange.action == Action.TRANSFER
Index("ix_state_change_transfer_at", StateChange.at, postgresql_where=_transfer, sqlite_where=_transfer)
