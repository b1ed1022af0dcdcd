"""The evaluation's monthly aggregates (models.py): what goes into them, how they are kept current,
and how a figure reads them.

Every figure reads a *source*: the aggregate rows of the months its period covers completely, plus —
for the parts of months a free period cuts (at most two) — the same rows computed live from the
referrals, by the very statements that fill the aggregates. So a figure is exact for any period, and
the amount of data a page reads depends on the number of months, not of referrals.

Kept current: a flush listener appends the months a change touches to `evaluation_dirty` in the
change's own transaction; `refresh()` (called before the first figure of a request, by
`flask evaluation refresh` and by whoever bulk-loads data) recomputes exactly those months.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time
from itertools import chain
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    event,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from ..cases.models import Assessment, Feedback, Referral, ReferralCategory, SchoolAction, StateChange
from ..cases.process import Action, State
from ..cases.vocabulary import InformedStatus, SchoolActionKind
from ..consultations.models import Consultation, ConsultationCategory
from ..consultations.process import ConsultationState
from ..crypto import EncryptedDate, EncryptedText
from ..extensions import db
from ..timeutil import local_to_utc, to_local
from .models import ALL, EvaluationCount, EvaluationDayCount, EvaluationDirty, EvaluationRunning

# --- What is counted ------------------------------------------------------------------------------

# Referral counts per (month, district, school); the key figures combine them.
REFERRAL_COUNTS = (
    "referrals",
    "acknowledged",
    "ack_in_time",
    "unacknowledged",
    "feedback",
    "feedback_in_time",
    "awaiting",  # no feedback yet, with a feedback deadline
    "confirmed",
    "consulted",
    "informed",
)
# Durations as histograms at the precision the page shows: tenths of hours (6 minutes) for the
# acknowledgement, tenths of days (144 minutes) for feedback, each rounded half up. The median and
# 90th percentile (nearest rank) of the rounded values are the rounded median and percentile, so the
# page shows what the exact computation would. ':f' rows hold the fine buckets, ':c' rows the same
# summed over COARSE fine buckets: a percentile first finds its coarse bucket, then reads the fine
# rows of that one only (a few dozen rows per month instead of hundreds).
DURATIONS = {
    "ack": (Referral.ack_minutes, Referral.ack_working_minutes, 6, 0),
    "ack_w": (Referral.ack_working_minutes, Referral.ack_minutes, 6, 0),
    "fb": (Referral.feedback_minutes, Referral.feedback_working_minutes, 144, 0),
    "fb_w": (Referral.feedback_working_minutes, Referral.feedback_minutes, 144, 0),
}
COARSE = 32
DURATION_KINDS = frozenset(f"{name}:{level}" for name in DURATIONS for level in ("f", "c"))
TRANSFER = "transfer"  # district_id: to, key: from (kept at the school and district grain only)

# Columns no figure reads: a bulk UPDATE of these only (the row lock's `version`, the retention run's
# purge of names, contacts and free texts) changes no figure and marks no month. Encrypted columns
# count among them by their type: SQL cannot count ciphertexts.
UNCOUNTED_COLUMNS = frozenset(
    {
        "version",
        "purged_at",
        "child_key",
        "child_language",
        "child_gender",
        "child_class",
        "reporter_name",
        "contact_phone",
        "reachable",
    }
)
TRACKED_TABLES = frozenset(
    t.name
    for t in (
        Referral.__table__,
        SchoolAction.__table__,
        ReferralCategory.__table__,
        Assessment.__table__,
        Feedback.__table__,
        StateChange.__table__,
        Consultation.__table__,
        ConsultationCategory.__table__,
    )
)


def month_of(column):
    """'2026-11': the local (Berlin) month of a UTC timestamp, in the database's own dialect."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Europe/Berlin", func.timezone("UTC", column)), "YYYY-MM")
    # SQLite knows no time zones. Months start at local midnight, +2 h from April to October (summer
    # time) and +1 h otherwise; the clock changes never fall near a month's end, so the month of
    # "UTC + 2 h" tells which offset applies at that boundary.
    offset = case((func.strftime("%m", column, "+2 hours").between("04", "10"), "+2 hours"), else_="+1 hours")
    return func.strftime("%Y-%m", column, offset)


def day_of(column):
    """'2026-11-05': the local (Berlin) day of a UTC timestamp, in the database's own dialect."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Europe/Berlin", func.timezone("UTC", column)), "YYYY-MM-DD")

    # SQLite: summer time (+2 h) from the last Sunday of March to the last Sunday of October, each at
    # 01:00 UTC (the EU rule); a day boundary can fall near those instants, unlike a month's.
    def last_sunday(month_offset: str):
        return func.datetime(column, "start of year", month_offset, "-7 days", "weekday 0", "+1 hours")

    summer = and_(column >= last_sunday("+3 months"), column < last_sunday("+10 months"))
    return func.strftime("%Y-%m-%d", column, case((summer, "+2 hours"), else_="+1 hours"))


def day_key(moment: datetime) -> str:
    return f"{to_local(moment):%Y-%m-%d}"


def month_key(moment: datetime) -> str:
    return f"{to_local(moment):%Y-%m}"


def month_range(key: str) -> tuple[datetime, datetime]:
    year, month = int(key[:4]), int(key[5:])
    following = (year + month // 12, month % 12 + 1)
    return (
        local_to_utc(datetime(year, month, 1)),
        local_to_utc(datetime(following[0], following[1], 1)),
    )


def next_month(key: str) -> str:
    year, month = int(key[:4]), int(key[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_month(key: str) -> str:
    year, month = int(key[:4]), int(key[5:])
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


# --- Raw rows: the statements that fill the aggregates and answer the cut months live ------------


@dataclass(frozen=True)
class Raw:
    """Which raw rows to count: time ranges (None: all) and the filter of a scope (None: all)."""

    ranges: tuple[tuple[datetime, datetime], ...] | None
    district_ids: tuple[int, ...] | None = None
    exclude_districts: tuple[int, ...] = ()
    school_id: int | None = None
    by: str = "month"  # or "day": the unit the rows are counted per

    def period(self, column):
        return day_of(column) if self.by == "day" else month_of(column)

    def time(self, column):
        if self.ranges is None:
            return true()
        return or_(false(), *(and_(column >= start, column < end) for start, end in self.ranges))

    def place(self, district, school) -> list:
        conditions = []
        if self.district_ids is not None:
            conditions.append(district.in_(self.district_ids))
        if self.exclude_districts:
            conditions.append(district.not_in(self.exclude_districts))
        if self.school_id is not None:
            conditions.append(school == self.school_id)
        return conditions


def _row(kind, month, district, school, key, bucket, n):
    return select(
        cast(kind, String(20)).label("kind"),
        month.label("month"),
        district.label("district_id"),
        school.label("school_id"),
        cast(key, String(40)).label("key"),
        cast(bucket, Integer).label("bucket"),
        n.label("n"),
    )


def _referrals(raw: Raw) -> list:
    return [
        Referral.state != State.DRAFT,
        raw.time(Referral.submitted_at),
        *raw.place(Referral.district_id, Referral.school_id),
    ]


def _referral_counts(raw: Raw) -> list:
    one = literal(1)
    month = raw.period(Referral.submitted_at)

    def flag(condition):
        return func.sum(case((condition, one), else_=0))

    # One pass over the referrals, unpivoted below.
    wide = (
        select(
            month.label("month"),
            Referral.district_id.label("district_id"),
            Referral.school_id.label("school_id"),
            func.count().label("referrals"),
            flag(Referral.acknowledged_at.is_not(None)).label("acknowledged"),
            flag(Referral.acknowledged_at <= Referral.acknowledge_due_at).label("ack_in_time"),
            flag(Referral.acknowledged_at.is_(None)).label("unacknowledged"),
            flag(Referral.feedback_at.is_not(None)).label("feedback"),
            flag(Referral.feedback_at <= Referral.feedback_due_at).label("feedback_in_time"),
            flag(and_(Referral.feedback_at.is_(None), Referral.feedback_due_at.is_not(None))).label("awaiting"),
            flag(Feedback.indications_confirmed.is_(True)).label("confirmed"),
            flag(or_(Referral.consultation_id.is_not(None), SchoolAction.id.is_not(None))).label("consulted"),
            flag(Referral.affected_informed == InformedStatus.YES).label("informed"),
        )
        .select_from(Referral)
        .outerjoin(Feedback, Feedback.referral_id == Referral.id)
        # At most one row per referral (unique referral_id, kind): a join the planner can run either way,
        # by the index for a month cut live or hashed for a full refresh (not an EXISTS per referral).
        .outerjoin(
            SchoolAction,
            and_(
                SchoolAction.referral_id == Referral.id,
                SchoolAction.kind == SchoolActionKind.INSOFA_CONSULTED,
                SchoolAction.done.is_(True),
            ),
        )
        .where(*_referrals(raw))
        .group_by(month, Referral.district_id, Referral.school_id)
        .cte("wide")
    )
    return [
        _row(
            literal(kind), wide.c.month, wide.c.district_id, wide.c.school_id, literal(""), literal(0), wide.c[kind]
        ).where(wide.c[kind] > 0)
        for kind in REFERRAL_COUNTS
    ]


def _referral_keys(raw: Raw) -> list:
    month = raw.period(Referral.submitted_at)
    place = (Referral.district_id, Referral.school_id)
    return [
        _row(literal("urgency"), month, *place, Referral.urgency, literal(0), func.count())
        .where(*_referrals(raw))
        .group_by(month, *place, Referral.urgency),
        _row(literal("category"), month, *place, ReferralCategory.category, literal(0), func.count())
        .select_from(ReferralCategory)
        .join(Referral, Referral.id == ReferralCategory.referral_id)
        .where(*_referrals(raw))
        .group_by(month, *place, ReferralCategory.category),
        _row(literal("result"), month, *place, Assessment.result, literal(0), func.count())
        .select_from(Assessment)
        .join(Referral, Referral.id == Assessment.referral_id)
        .where(*_referrals(raw))
        .group_by(month, *place, Assessment.result),
    ]


def _durations(raw: Raw, coarse: bool = False) -> list:
    month = raw.period(Referral.submitted_at)
    place = (Referral.district_id, Referral.school_id)
    statements = []
    for name, (column, other, unit, _) in DURATIONS.items():
        bucket = (column + unit // 2) // unit  # integer division: rounded half up to the unit
        if coarse:
            bucket = bucket // COARSE
        statements.append(
            _row(literal(f"{name}:{'c' if coarse else 'f'}"), month, *place, literal(""), bucket, func.count())
            .where(*_referrals(raw), column.is_not(None), other.is_not(None))
            .group_by(month, *place, bucket)
        )
    return statements


def _consultation_rows(raw: Raw) -> list:
    month = raw.period(Consultation.requested_at)
    place = (Consultation.district_id, Consultation.school_id)
    where = [raw.time(Consultation.requested_at), *raw.place(*place)]
    return [
        _row(literal("consultations"), month, *place, literal(""), literal(0), func.count())
        .where(*where)
        .group_by(month, *place),
        _row(literal("c_urgency"), month, *place, Consultation.urgency, literal(0), func.count())
        .where(*where)
        .group_by(month, *place, Consultation.urgency),
        _row(literal("c_category"), month, *place, ConsultationCategory.category, literal(0), func.count())
        .select_from(ConsultationCategory)
        .join(Consultation, Consultation.id == ConsultationCategory.consultation_id)
        .where(*where)
        .group_by(month, *place, ConsultationCategory.category),
        _row(literal("recommendation"), month, *place, Consultation.recommendation, literal(0), func.count())
        .where(*where, Consultation.state == ConsultationState.ANSWERED)
        .group_by(month, *place, Consultation.recommendation),
    ]


def _transfer_rows(raw: Raw) -> list:
    month = raw.period(StateChange.at)
    conditions = [
        StateChange.action == Action.TRANSFER,
        raw.time(StateChange.at),
        StateChange.from_district_id.is_not(None),
        StateChange.to_district_id.is_not(None),
    ]
    if raw.district_ids is not None:
        conditions.append(
            or_(StateChange.from_district_id.in_(raw.district_ids), StateChange.to_district_id.in_(raw.district_ids))
        )
    if raw.school_id is not None:
        conditions.append(Referral.school_id == raw.school_id)
    key = cast(StateChange.from_district_id, String(40))
    return [
        _row(literal(TRANSFER), month, StateChange.to_district_id, Referral.school_id, key, literal(0), func.count())
        .select_from(StateChange)
        .join(Referral, Referral.id == StateChange.referral_id)
        .where(*conditions)
        .group_by(month, StateChange.to_district_id, Referral.school_id, StateChange.from_district_id)
    ]


# Which statements produce which kinds (for a source, only the families it needs are computed live).
FAMILIES: list[tuple[frozenset[str], Callable[[Raw], list]]] = [
    (frozenset(REFERRAL_COUNTS), _referral_counts),
    (frozenset({"urgency", "category", "result"}), _referral_keys),
    (frozenset(f"{name}:f" for name in DURATIONS), lambda raw: _durations(raw)),
    (frozenset(f"{name}:c" for name in DURATIONS), lambda raw: _durations(raw, coarse=True)),
    (frozenset({"consultations", "c_urgency", "c_category", "recommendation"}), _consultation_rows),
    (frozenset({TRANSFER}), _transfer_rows),
]


def _school_grain(raw: Raw) -> list:
    """Every kind at the school grain, coarse histograms excepted (summed from the fine ones)."""
    return list(
        chain.from_iterable(produce(raw) for kinds, produce in FAMILIES if not any(k.endswith(":c") for k in kinds))
    )


# --- Keeping them current -----------------------------------------------------------------------


def _marked(session: Session) -> set[str]:
    return session.info.setdefault("evaluation_marked", set())


def mark(session: Session, months: Iterable[str]) -> None:
    """Append the months not yet marked in this transaction to the dirty list (flushed with the change)."""
    marked = _marked(session)
    for month in set(months) - marked:
        session.add(EvaluationDirty(month=month))
        marked.add(month)
    if marked:
        session.info["evaluation_clean"] = False


def _history_months(obj, attribute: str) -> set[str]:
    from sqlalchemy import inspect as inspect_

    history = inspect_(obj).attrs[attribute].history
    return {month_key(v) for v in chain(history.added, history.unchanged, history.deleted) if v is not None}


@event.listens_for(Session, "before_flush")
def _changed_months(session: Session, flush_context, instances) -> None:
    months: set[str] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, EvaluationDirty | EvaluationCount):
            continue
        if isinstance(obj, Referral):
            months |= _history_months(obj, "submitted_at")
        elif isinstance(obj, SchoolAction | ReferralCategory | Assessment | Feedback):
            # A new child is often attached through its referral's collection (no referral_id yet):
            # that referral is then in the flush itself and marks the month.
            if obj.referral_id is not None:
                with session.no_autoflush:
                    referral = session.get(Referral, obj.referral_id)
                if referral is not None and referral.submitted_at is not None:
                    months.add(month_key(referral.submitted_at))
        elif isinstance(obj, StateChange):
            if obj.action is Action.TRANSFER and obj.at is not None:
                months.add(month_key(obj.at))
        elif isinstance(obj, Consultation):
            months |= _history_months(obj, "requested_at")
        elif isinstance(obj, ConsultationCategory) and obj.consultation_id is not None:
            with session.no_autoflush:
                consultation = session.get(Consultation, obj.consultation_id)
            if consultation is not None and consultation.requested_at is not None:
                months.add(month_key(consultation.requested_at))
    if months:
        mark(session, months)


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state) -> None:
    """INSERT/UPDATE/DELETE statements (the generator's bulk inserts, bulk updates) name no month:
    everything is recomputed at the next refresh."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is None or getattr(table, "name", None) not in TRACKED_TABLES:
        return
    if state.is_update:
        # The workflow's row lock on SQLite is a no-op UPDATE of `version` (engine.lock_row), the
        # retention run empties names and texts: no figure.
        values = getattr(state.statement, "_values", None) or {}
        encrypted = {c.name for c in table.columns if isinstance(c.type, EncryptedText | EncryptedDate)}
        if values and {getattr(c, "name", c) for c in values} <= UNCOUNTED_COLUMNS | encrypted:
            return
    mark(state.session, [ALL])


@event.listens_for(Session, "after_transaction_end")
def _forget_marks(session: Session, transaction) -> None:
    # A rolled-back savepoint takes its dirty rows with it: mark again next time (a duplicate is harmless);
    # and another transaction may have changed data since the last look.
    session.info.pop("evaluation_marked", None)
    session.info.pop("evaluation_clean", None)


def _fill(model, unit, raw: Raw, in_units) -> None:
    """Replace the rows of `model` in `in_units`: the school grain computed from the referrals, the
    coarse histograms and the district and city grains summed from it."""
    session = db.session
    session.execute(delete(model).where(in_units))
    columns = ["kind", unit.key, "district_id", "school_id", "key", "bucket", "n"]
    session.execute(insert(model).from_select(columns, union_all(*_school_grain(raw))))
    ec = model
    fine = [f"{name}:f" for name in DURATIONS]
    coarse_kind = case(*((ec.kind == f"{name}:f", f"{name}:c") for name in DURATIONS), else_=ec.kind)
    coarse_bucket = ec.bucket // COARSE
    session.execute(
        insert(ec).from_select(
            columns,
            select(coarse_kind, unit, ec.district_id, ec.school_id, ec.key, coarse_bucket, func.sum(ec.n))
            .where(in_units, ec.kind.in_(fine))
            .group_by(coarse_kind, unit, ec.district_id, ec.school_id, ec.key, coarse_bucket),
        )
    )
    # Roll up: districts from schools, the city from districts (transfers keep their districts).
    session.execute(
        insert(ec).from_select(
            columns,
            select(ec.kind, unit, ec.district_id, literal(0), ec.key, ec.bucket, func.sum(ec.n))
            .where(in_units, ec.school_id != 0)
            .group_by(ec.kind, unit, ec.district_id, ec.key, ec.bucket),
        )
    )
    session.execute(
        insert(ec).from_select(
            columns,
            select(ec.kind, unit, literal(0), literal(0), ec.key, ec.bucket, func.sum(ec.n))
            .where(in_units, ec.school_id == 0, ec.district_id != 0, ec.kind != TRANSFER)
            .group_by(ec.kind, unit, ec.key, ec.bucket),
        )
    )


def refresh() -> int:
    """Recompute the months marked dirty (all of them after a bulk change) in the current transaction,
    which its caller commits (the request's lifecycle, the CLI, the worker round). Returns how many dirty
    rows were taken. The same statements whatever the number of months."""
    session = db.session
    if session.info.get("evaluation_clean"):
        return 0
    rows = session.execute(select(EvaluationDirty.id, EvaluationDirty.month)).all()
    if not rows:
        session.info["evaluation_clean"] = True
        return 0
    if session.get_bind().dialect.name == "postgresql":
        # One refresher at a time (two would insert the same rows); the second then sees the first's
        # work committed and takes only what is left.
        session.execute(select(func.pg_advisory_xact_lock(0x65_76_61_6C)))
        rows = session.execute(select(EvaluationDirty.id, EvaluationDirty.month)).all()
    ids = [row.id for row in rows]
    months = {row.month for row in rows}
    everything = ALL in months
    session.execute(delete(EvaluationDirty).where(EvaluationDirty.id.in_(ids)))
    ranges = None if everything or not months else tuple(month_range(m) for m in sorted(months))
    for model, by in ((EvaluationCount, "month"), (EvaluationDayCount, "day")):
        unit = model.month if model is EvaluationCount else model.day
        if ranges is None:
            in_months = true()
        elif by == "month":
            in_months = unit.in_(sorted(months))
        else:  # '2026-03-05' lies between '2026-03' and '2026-04'
            in_months = or_(*(and_(unit >= m, unit < next_month(m)) for m in sorted(months)))
        _fill(model, unit, Raw(ranges=ranges, by=by), in_months)
    _fill_running(None if ranges is None else min(months))
    session.info["evaluation_clean"] = True
    return len(ids)


def _running_rows(ec) -> Any:
    """The monthly rows kept as running totals: all but the duration histograms per school (a school's
    durations are read only for one school, from its months; as running totals they would be most rows)."""
    return or_(ec.school_id == 0, ec.kind.not_in(sorted(DURATION_KINDS)))


def _fill_running(start: str | None) -> None:
    """Recompute the running totals (EvaluationRunning) from the month `start` (None: all) to the last
    month with data: each month's rows are those of the month before `start` plus the monthly rows from
    `start` to it. One statement whatever the number of months."""
    session = db.session
    ec, rt = EvaluationCount, EvaluationRunning
    kept = _running_rows(ec)
    first, last = session.execute(select(func.min(ec.month), func.max(ec.month)).where(kept)).one()
    # Carried over from the month before: if that month has no rows yet (a new table), start from the
    # beginning instead. (Asked whatever the case: the same statements for any change.)
    carried_from = previous_month(start) if start is not None else ""
    carried = session.scalar(select(rt.month).where(rt.month == carried_from).limit(1)) is not None
    if not carried and start is not None and first is not None and first < start:
        start = None
    if start is None or (first is not None and start < first):
        start = first
    session.execute(delete(rt) if start is None else delete(rt).where(rt.month >= start))
    if start is None or last is None or start > last:
        return
    months = [start]
    while months[-1] < last:
        months.append(next_month(months[-1]))
    upto = union_all(*(select(literal(m, String(7)).label("month")) for m in months)).subquery("upto")
    columns = ("kind", "district_id", "school_id", "key", "bucket")
    added = (
        select(upto.c.month, *(ec.__table__.c[c] for c in columns), ec.n)
        .select_from(upto)
        .join(ec, and_(ec.month >= start, ec.month <= upto.c.month))
        .where(kept)
    )
    carried = (
        select(upto.c.month, *(rt.__table__.c[c] for c in columns), rt.n)
        .select_from(upto)
        .join(rt, rt.month == previous_month(start))
    )
    rows = union_all(added, carried).subquery("rows")
    grouped = [rows.c.month, *(rows.c[c] for c in columns)]
    session.execute(
        insert(rt).from_select(
            ["month", *columns, "n"],
            select(*grouped, func.sum(rows.c.n)).group_by(*grouped).having(func.sum(rows.c.n) != 0),
        )
    )


def refresh_everything() -> int:
    """For a bulk load or a repair: mark all months dirty and recompute them."""
    mark(db.session, [ALL])
    db.session.flush()
    db.session.info["evaluation_clean"] = False
    return refresh()


# --- Reading them ---------------------------------------------------------------------------------


def split(start: datetime, end: datetime, now: datetime) -> tuple[tuple[str, str] | None, tuple]:
    """The months [first, last] that the range covers completely (the current month counts as covered
    when the range reaches now: nothing is submitted in the future), and the ranges left over."""
    full: list[str] = []
    cut: list[tuple[datetime, datetime]] = []
    month = month_key(start)
    while True:
        first, following = month_range(month)
        if first >= end:
            break
        if start <= first and (end >= following or end >= now):
            full.append(month)
        else:
            cut.append((max(start, first), min(end, following)))
        month = next_month(month)
    return ((full[0], full[-1]) if full else None), tuple(cut)


USE_DAY_ROWS = True  # tests switch it off to compare the day rows with the live computation
USE_RUNNING = True  # tests switch it off to compare the running histograms with the monthly rows


def _grain(ec, kinds: list[str], scope: Any, grain: str) -> list:
    """The conditions on `ec` (either table) for the kinds, grain and places of a scope."""
    conditions: list = [ec.kind.in_(kinds)]
    if grain == "city":
        conditions += [ec.district_id == 0, ec.school_id == 0]
    else:
        conditions.append(ec.school_id != 0 if grain == "school" else and_(ec.school_id == 0, ec.district_id != 0))
        if scope.school_id is not None:
            conditions.append(ec.school_id == scope.school_id)
        if scope.district_ids is not None:
            if TRANSFER in kinds:
                ids = tuple(str(i) for i in scope.district_ids)
                conditions.append(or_(ec.district_id.in_(scope.district_ids), ec.key.in_(ids)))
            else:
                conditions.append(ec.district_id.in_(scope.district_ids))
        if scope.exclude_districts:
            conditions.append(ec.district_id.not_in(scope.exclude_districts))
    return conditions


def _running(kinds: list[str], scope: Any, grain: str, full: tuple[str, str]) -> list:
    """The rows of the months full[0]..full[1]: the running totals of the last, negated those of the
    month before the first (each the latest month with rows up to there: none after the data)."""
    rt = EvaluationRunning

    def at(month: str, sign: int):
        latest = select(func.max(rt.month)).where(rt.month <= month).scalar_subquery()
        return select(
            rt.kind, rt.month, rt.district_id, rt.school_id, rt.key, rt.bucket, (rt.n * sign).label("n")
        ).where(rt.month == latest, *_grain(rt, kinds, scope, grain))

    return [at(full[1], 1), at(previous_month(full[0]), -1)]


def source(kinds: Iterable[str], scope: Any, now: datetime, grain: str = "best", by_month: bool = False):
    """The rows of `kinds` for a scope: aggregates of the covered months at `grain` ('best': the
    coarsest the filter allows; 'district'; 'school'), and the cut months summed from their days.
    The covered months come from the running totals (their `month` is then not the rows' own) unless
    the caller groups `by_month`."""
    kinds = sorted(set(kinds))
    ec = EvaluationCount
    if scope.school_id is not None:
        grain = "school"
    elif grain == "best":
        grain = "district" if (scope.district_ids is not None or scope.exclude_districts) else "city"
    full, cut = split(scope.start, scope.end, now)
    # Cut parts that start and end at local midnight (every period's do) are summed from the day rows.
    days = tuple(r for r in cut if USE_DAY_ROWS and all(to_local(m).time() == time.min for m in r))
    live = tuple(r for r in cut if r not in days)
    day = EvaluationDayCount
    if full and USE_RUNNING and not by_month and (grain != "school" or not set(kinds) & DURATION_KINDS):
        parts = _running(kinds, scope, grain, full)
    else:
        parts = [
            select(ec.kind, ec.month, ec.district_id, ec.school_id, ec.key, ec.bucket, ec.n).where(
                ec.month.between(*full) if full else false(), *_grain(ec, kinds, scope, grain)
            )
        ]
    if days:
        parts.append(
            select(
                day.kind, func.substr(day.day, 1, 7), day.district_id, day.school_id, day.key, day.bucket, day.n
            ).where(
                or_(*(and_(day.day >= day_key(a), day.day < day_key(b)) for a, b in days)),
                *_grain(day, kinds, scope, grain),
            )
        )
    if live:
        raw = Raw(live, scope.district_ids, scope.exclude_districts, scope.school_id)
        for family, produce in FAMILIES:
            if family & set(kinds):
                parts += produce(raw)
    statement = union_all(*parts) if len(parts) > 1 else parts[0]
    rows = statement.subquery("source")
    return select(rows).where(rows.c.kind.in_(kinds)).subquery("wanted")
