"""`flask demo generate`: fictional data at the scale of a city, for benchmarks and trying the
evaluation (refused in production, like all demo data).

Districts with schools and staff, and referrals spread over several years in every state with
plausible timing (most acknowledged within a day, feedback after days to weeks, some late, a few
transferred), with categories, school actions, one carer each, assessments, feedback, questions and
answers, and consultations, in the order they were submitted (ids and case numbers grow with time).
The audit log gets what the app would have recorded: each referral's changes by the person who made
them, with the role and scope used, and views by the ASD and the school (about 5 entries a referral),
hashed as `audit.chain` hashes them and sealed into blocks at the end, so `flask audit verify` passes.

Rows are written in batches with explicit ids: on PostgreSQL with COPY, on SQLite with executemany.
200,000 referrals (and 50,000 consultations, about a million audit entries) take a few minutes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from flask_security import hash_password
from sqlalchemy import BigInteger, Column, MetaData, Table, func, select, text

from .accounts.models import Membership, Role, User
from .audit import chain
from .audit.models import AuditEntry
from .cases import process
from .cases.models import (
    Assessment,
    AssessmentMeasure,
    CaseCounter,
    Feedback,
    Message,
    Person,
    Referral,
    ReferralCategory,
    SchoolAction,
    StateChange,
)
from .cases.process import Action, State
from .cases.vocabulary import (
    AssessmentResult,
    Category,
    InformedStatus,
    Measure,
    MessageKind,
    PersonKind,
    Relation,
    ReporterFunction,
    SchoolActionKind,
    Urgency,
)
from .consultations.models import Consultation, ConsultationCategory, ConsultationCounter
from .consultations.process import ConsultationAction, ConsultationState
from .consultations.vocabulary import ConsultationUrgency, ContactWay, Recommendation
from .crypto import EncryptedDate, EncryptedText, vault
from .extensions import db
from .kernel.deadlines import end_of_nth_working_day, working_minutes_between
from .kernel.settings import deadline_settings
from .organisation.models import District, School
from .timeutil import to_local, utcnow

FIRST = ["Emma", "Noah", "Mia", "Paul", "Lea", "Finn", "Ida", "Ben", "Zoe", "Tom", "Lina", "Elias", "Mila", "Jonas"]
LAST = ["Beispiel", "Muster", "Probe", "Fiktiv", "Erdacht", "Ausgedacht", "Testfeld", "Sonnenberg", "Waldrand"]
PLACES = ["Eichen", "Linden", "Buchen", "Birken", "Ahorn", "Kastanien", "Ulmen", "Pappel", "Weiden", "Erlen"]
OBSERVATIONS = [
    "Kommt seit Wochen ohne Frühstück.",
    "Blaue Flecken an den Armen, erklärt sie nicht.",
    "Erzählt von Streit und Polizei zu Hause.",
    "Fehlt häufig montags.",
    "Wirkt verängstigt beim Abholen.",
]
BATCH = 2000  # referrals per transaction (with their parts and audit entries)
EVERY_STATE = [s for s in State if s is not State.DRAFT]


def generate(
    referrals: int, years: int = 3, districts: int = 6, schools: int = 8, seed: int = 1, report=print
) -> dict[str, int]:
    rng = random.Random(seed)
    now = utcnow()
    settings = deadline_settings()
    city = _organisation(rng, districts, schools)
    db.session.commit()
    report(f"{len(city)} districts, {sum(len(d['schools']) for d in city)} schools, staff created")
    audit = Audit(rng, _people(city))
    audit.create_staging()
    counts = _referrals(rng, city, referrals, years, now, settings, report, audit)
    counts["consultations"] = _consultations(rng, city, referrals // 4, years, now, settings, audit)
    _bump_sequences()
    db.session.commit()
    counts["audit_entries"] = audit.write_log(report)
    # --- Evaluation aggregates -------------------------------------------------------------------
    # The rows above were written past the application's code paths: anything the app maintains
    # alongside a change (e.g. monthly evaluation aggregates) must be rebuilt here, once, at the end.
    _refresh_derived_data(report)
    # ---------------------------------------------------------------------------------------------
    _analyze()
    return counts


def _refresh_derived_data(report) -> None:
    """Derived data after generating: the evaluation's aggregates of every month (the bulk rows marked
    "everything" dirty; without this the first view would recompute them all)."""
    from .evaluation import aggregates

    report("computing the evaluation's monthly and daily aggregates")
    aggregates.refresh_everything()
    db.session.commit()


def _analyze(vacuum: bool = True) -> None:
    """Fresh statistics for the planner and a set visibility map, as autovacuum leaves a production
    database: without the statistics PostgreSQL plans the big tables as if they were empty (the
    retention run's keyset took 100 s instead of 5); without the visibility map every index-only scan
    (the lists' bounded counts, the evaluation's counts of overdue and waiting referrals) reads each
    row's table page too, and autovacuum may be off where the benchmark runs."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)" if vacuum else "ANALYZE")


def _organisation(rng, n_districts: int, n_schools: int) -> list[dict]:
    taken = set(db.session.scalars(select(District.code)))
    codes = [
        c
        for c in (f"X{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if c not in taken
    ][:n_districts]
    password = hash_password("Generiert-Nicht-Zum-Anmelden-1")  # one argon2 hash for all generated staff
    city = []
    for i, code in enumerate(codes):
        district = District(
            code=code, name=f"Bezirk {code}", duty_phone=f"02323 16-{1000 + i}", duty_hours="Mo–Fr 8–16 Uhr"
        )
        db.session.add(district)
        entry = {"district": district, "schools": [], "staff": [], "teachers": {}}
        for j in range(n_schools):
            school = School(name=f"Grundschule {rng.choice(PLACES)}weg {code}-{j + 1}", district=district)
            db.session.add(school)
            entry["schools"].append(school)
        city.append(entry)
    db.session.flush()
    for entry in city:
        code = entry["district"].code.lower()
        for k in range(6):
            role = Role.ASD_LEAD if k == 0 else Role.ASD_WORKER
            user = User(email=f"asd{k}.{code}@generiert.example", name=f"ASD {code.upper()} {k}", password=password)
            user.memberships.append(Membership(role=role, district=entry["district"]))
            db.session.add(user)
            entry["staff"].append(user)
        for school in entry["schools"]:
            entry["teachers"][school.id] = []
            for k in range(3):
                role = Role.SCHOOL_LEAD if k == 0 else Role.TEACHER
                user = User(
                    email=f"lk{k}.s{school.id}@generiert.example", name=f"Lehrkraft {school.id}-{k}", password=password
                )
                user.memberships.append(Membership(role=role, school=school))
                db.session.add(user)
                entry["teachers"][school.id].append(user)
    for k in range(4):
        if db.session.scalar(select(User.id).where(User.email == f"insofa{k}@generiert.example")) is None:
            user = User(email=f"insofa{k}@generiert.example", name=f"InsoFa {k}", password=password)
            user.memberships.append(Membership(role=Role.INSOFA))
            db.session.add(user)
    db.session.flush()
    for entry in city:
        entry["staff_ids"] = [u.id for u in entry["staff"]]
        entry["teacher_ids"] = {sid: [u.id for u in users] for sid, users in entry["teachers"].items()}
    return city


def _state_for(rng, age_days: float) -> State:
    if age_days < 2:
        options = [(State.SUBMITTED, 50), (State.ACKNOWLEDGED, 30), (State.IN_ASSESSMENT, 20)]
    elif age_days < 14:
        options = [
            (State.ACKNOWLEDGED, 15),
            (State.IN_ASSESSMENT, 45),
            (State.INFO_REQUESTED, 10),
            (State.FEEDBACK_GIVEN, 30),
        ]
    elif age_days < 60:
        options = [(State.IN_ASSESSMENT, 10), (State.FEEDBACK_GIVEN, 40), (State.CLOSED, 50)]
    else:
        options = [(State.IN_ASSESSMENT, 2), (State.FEEDBACK_GIVEN, 6), (State.CLOSED, 92)]
    return rng.choices([s for s, _ in options], [w for _, w in options])[0]


class Rows:
    """Rows per table, written in batches: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self):
        self.tables: dict = {}

    def add(self, model, **values) -> None:
        self.tables.setdefault(model, []).append(values)

    def flush(self, force: bool = False) -> None:
        for model, rows in self.tables.items():
            if rows and (force or len(rows) >= BATCH):
                table = getattr(model, "__table__", model)
                if db.session.get_bind().dialect.name == "postgresql":
                    _copy(table, rows)
                else:
                    db.session.execute(table.insert(), rows)
                rows.clear()


class _Tokens:
    """Encryption for COPY. Fictional values repeat (a few dozen names, places, texts): equal values
    share one token, which spares most of the encryption time; each row is still decrypted when read."""

    def __init__(self):
        self.vault = vault()
        self.known: dict[str, str] = {}

    def text(self, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        token = self.known.get(value)
        if token is None:
            if len(self.known) > 100_000:  # bounded, whatever the values
                self.known.clear()
            token = self.known[value] = self.vault.encrypt(value.encode()).decode()
        return token

    def date(self, value: date | None) -> str | None:
        return None if value is None else self.text(value.isoformat())


def _copy(table: Table, rows: list[dict]) -> None:
    """COPY the rows into `table` inside the session's transaction, each value converted as the
    column's type would bind it (enums to their values, JSON to text, encrypted columns encrypted)."""
    dialect = db.session.get_bind().dialect
    tokens = db.session.info.get("generator_tokens")
    if tokens is None:
        tokens = db.session.info["generator_tokens"] = _Tokens()
    names = list(rows[0])
    # What an INSERT would add: the columns' Python-side defaults (COPY knows only the server's).
    defaults = {
        column.name: column.default.arg if column.default.is_scalar else column.default.arg(None)
        for column in table.c
        if column.name not in rows[0] and column.default is not None and not column.default.is_sequence
    }
    if defaults:
        rows = [{**defaults, **row} for row in rows]
        names = list(rows[0])
    converters: list[Callable[[Any], Any] | None] = []
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, EncryptedText):
            converters.append(tokens.text)
        elif isinstance(column_type, EncryptedDate):
            converters.append(tokens.date)
        else:
            converters.append(column_type.bind_processor(dialect))
    pairs = list(zip(names, converters, strict=True))
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] if convert is None else convert(row[name]) for name, convert in pairs])


# --- The audit log ---------------------------------------------------------------------------------

STAGING = Table(
    "audit_entry_generated",
    MetaData(),
    Column("n", BigInteger),
    *(Column(name, AuditEntry.__table__.c[name].type) for name in (*chain.CONTENT, "hash")),
)
FIELDS = {  # what the app records as changed for each action (names only, as always)
    "referral.submit": ["number", "state", "submitted_at", "received_at", "acknowledge_due_at", "feedback_due_at"],
    "referral.transfer": ["district_id", "received_at", "acknowledge_due_at"],
    "referral.acknowledge": ["acknowledged_at", "acknowledged_by_id", "ack_minutes", "ack_working_minutes", "state"],
    "referral.take_over": ["assignee_id", "state"],
    "referral.ask": ["message (neu)", "state"],
    "referral.answer": ["message (neu)", "state"],
    "referral.record_assessment": ["assessment (neu)"],
    "referral.give_feedback": [
        "feedback (neu)",
        "feedback_at",
        "feedback_minutes",
        "feedback_working_minutes",
        "state",
    ],
    "referral.close": ["closed_at", "state"],
    "consultation.request": ["observations", "question", "urgency", "contact_way"],
    "consultation.accept": ["insofa_id", "accepted_at", "state"],
    "consultation.answer": ["recommendation", "recommendation_note", "answered_at", "state"],
    "consultation.cancel": ["cancelled_at", "state"],
}


class Audit:
    """The audit entries the app would have written, collected in a staging table (in any order) and
    moved into the log in time order at the end: the log's ids give its order, as in a real log."""

    def __init__(self, rng, people: dict[int, tuple[str, str]]):
        self.rng = rng
        self.people = people  # user id -> (role, scope) of the membership used
        self.rows = Rows()
        self.count = 0

    def create_staging(self) -> None:
        connection = db.session.connection()
        STAGING.drop(connection, checkfirst=True)  # left over by an interrupted run
        STAGING.create(connection)
        db.session.commit()

    def add(self, at: datetime, actor: int | None, action: str, kind: str, object_id: int, school, district) -> None:
        role, scope = self.people.get(actor, ("", "")) if actor is not None else ("system", "")
        values: dict[str, Any] = {
            "at": at,
            "actor_id": actor,
            "actor_role": role,
            "actor_scope": scope,
            "action": action,
            "object_type": kind,
            "object_id": str(object_id),
            "school_id": school,
            "district_id": district,
            "fields": FIELDS.get(action, []),
            "request_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
        }
        values["hash"] = chain.entry_hash(values)
        self.count += 1
        self.rows.add(STAGING, n=self.count, **values)

    def flush(self) -> None:
        self.rows.flush(force=True)

    def write_log(self, report) -> int:
        """Into the log in time order (the database numbers them), then sealed into blocks."""
        self.flush()
        names = ", ".join((*chain.CONTENT, "hash"))
        db.session.execute(text(f"INSERT INTO audit_entry ({names}) SELECT {names} FROM {STAGING.name} ORDER BY at, n"))
        STAGING.drop(db.session.connection())
        db.session.commit()
        report(f"{self.count} audit entries written; sealing them into blocks")
        # Statistics first: planned as an empty table, the sealer's "unsealed entries after id N"
        # became a bitmap AND over 1.6 M rows per block of 1,000 (0.7 s each, 19 min in all).
        _analyze(vacuum=False)
        while chain.seal_pending(limit=100_000):  # each call on its own connection, committed
            pass
        return self.count


def _people(city) -> dict[int, tuple[str, str]]:
    people = {}
    for entry in city:
        for user in [*entry["staff"], *(u for users in entry["teachers"].values() for u in users)]:
            membership = user.memberships[0]
            people[user.id] = (membership.role.value, membership.scope_label[:60])
    for user_id in db.session.scalars(select(Membership.user_id).where(Membership.role == Role.INSOFA)):
        people[user_id] = (Role.INSOFA.value, "Stadt")
    return people


def _referral_audit(rng, audit: Audit, rid: int, values: dict, home, history, asked, now: datetime) -> None:
    """Each change of the history by its actor, the assessment before the feedback, the question and
    answer, and views: the ASD reading before acknowledging and while assessing, the school reading
    the feedback."""
    school, district = values["school_id"], values["district_id"]
    for action, _, _, actor, at, source, _ in history:
        if action is Action.ASK and asked is not None:
            continue  # recorded with the question below
        where = source if action is Action.TRANSFER else (home if action is Action.SUBMIT else district)
        if action is Action.ACKNOWLEDGE and rng.random() < 0.3:
            audit.add(
                at - timedelta(minutes=rng.uniform(1, 30)), actor, "referral.view", "referral", rid, school, district
            )
        if action is Action.GIVE_FEEDBACK:
            audit.add(at - timedelta(hours=1), actor, "referral.record_assessment", "referral", rid, school, district)
        audit.add(at, actor, f"referral.{action.value}", "referral", rid, school, where)
        if action is Action.TAKE_OVER and rng.random() < 0.2:
            audit.add(
                min(at + timedelta(hours=rng.uniform(0.1, 4)), now),
                actor,
                "referral.view",
                "referral",
                rid,
                school,
                district,
            )
        if action is Action.GIVE_FEEDBACK and rng.random() < 0.3:
            reader = values["author_id"]
            audit.add(
                min(at + timedelta(hours=rng.uniform(1, 48)), now),
                reader,
                "referral.view",
                "referral",
                rid,
                school,
                district,
            )
    if asked is not None:
        asked_at, answered_at = asked
        audit.add(asked_at, values["assignee_id"], "referral.ask", "referral", rid, school, district)
        if answered_at is not None:
            audit.add(answered_at, values["author_id"], "referral.answer", "referral", rid, school, district)


def _referrals(rng, city, total: int, years: int, now: datetime, settings, report, audit: Audit) -> dict[str, int]:
    rows = Rows()
    referral_id = (db.session.scalar(select(func.max(Referral.id))) or 0) + 1
    assessment_id = (db.session.scalar(select(func.max(Assessment.id))) or 0) + 1
    numbers: dict[tuple[int, int], int] = {}
    span = years * 365 * 24 * 3600
    made = {"referrals": 0, "transfers": 0}
    # In the order of submission, so that ids and case numbers grow with time as in a real database;
    # the first ones cover every state, so that even a small data set shows all.
    starts: list[tuple[datetime, State | None]] = sorted(
        [(now - timedelta(days=rng.uniform(3, 12)), state) for state in EVERY_STATE[:total]]
        + [(now - timedelta(seconds=rng.random() * span), None) for _ in range(max(0, total - len(EVERY_STATE)))],
        key=lambda start: start[0],
    )
    for i, (submitted, forced) in enumerate(starts):
        home = rng.choice(city)
        school = rng.choice(home["schools"])
        author = rng.choice(home["teacher_ids"][school.id])
        urgency = rng.choices([Urgency.ACUTE, Urgency.URGENT, Urgency.CLARIFY], [10, 45, 45])[0]
        state = forced or _state_for(rng, (now - submitted).total_seconds() / 86400)
        district = home
        received = submitted
        rid = referral_id + i
        history = [(Action.SUBMIT, State.DRAFT, State.SUBMITTED, author, submitted, None, None)]
        if rng.random() < 0.04 and len(city) > 1:  # the parents live elsewhere (§ 86 SGB VIII)
            district = rng.choice([d for d in city if d is not home])
            received = submitted + timedelta(hours=rng.uniform(1, 30))
            if received > now:
                received = now
            history.append(
                (
                    Action.TRANSFER,
                    State.SUBMITTED,
                    State.SUBMITTED,
                    rng.choice(home["staff_ids"]),
                    received,
                    home["district"].id,
                    district["district"].id,
                )
            )
            made["transfers"] += 1
        year = to_local(submitted).year
        key = (home["district"].id, year)
        numbers[key] = numbers.get(key, 0) + 1
        values = _referral_values(
            rng,
            rid,
            state,
            school,
            home,
            district,
            author,
            urgency,
            submitted,
            received,
            now,
            settings,
            numbers[key],
            history,
        )
        rows.add(Referral, **values)
        asked = _parts(rng, rows, rid, state, values, district, author, history)
        _referral_audit(rng, audit, rid, values, home["district"].id, history, asked, now)
        if values["feedback_at"] is not None:
            _assessment(rng, rows, assessment_id, rid, values, district)
            assessment_id += 1
        for action, before, after, actor, at, source, target in history:
            rows.add(
                StateChange,
                referral_id=rid,
                action=action,
                from_state=before,
                to_state=after,
                actor_id=actor,
                at=at,
                reason="Eltern wohnen im anderen Bezirk." if action is Action.TRANSFER else None,
                from_district_id=source,
                to_district_id=target,
                assignee_id=values["assignee_id"] if action in (Action.TAKE_OVER, Action.ASSIGN) else None,
            )
        made["referrals"] += 1
        if len(rows.tables.get(Referral, [])) >= BATCH:
            rows.flush(force=True)
            audit.flush()
            db.session.commit()
            if made["referrals"] % 10000 == 0:
                report(f"{made['referrals']} referrals")
    rows.flush(force=True)
    audit.flush()
    for (district_id, year), last in numbers.items():
        counter = db.session.get(CaseCounter, (district_id, year))
        if counter is None:
            db.session.add(CaseCounter(district_id=district_id, year=year, last_number=last))
        else:
            counter.last_number = max(counter.last_number, last)
    db.session.commit()
    return made


def _referral_values(
    rng, rid, state, school, home, district, author, urgency, submitted, received, now, settings, number, history
) -> dict:
    staff = district["staff_ids"]
    ack_due = process.acknowledge_due(received, urgency, settings)
    feedback_due = process.feedback_due(submitted, settings)
    acknowledged = assignee = feedback = closed = None
    if state is not State.SUBMITTED:
        delay = rng.expovariate(1 / 1.2) if urgency is Urgency.ACUTE else rng.lognormvariate(2.6, 0.9)  # hours
        acknowledged = min(received + timedelta(hours=delay), now)
        history.append(
            (Action.ACKNOWLEDGE, State.SUBMITTED, State.ACKNOWLEDGED, rng.choice(staff), acknowledged, None, None)
        )
    if state not in (State.SUBMITTED, State.ACKNOWLEDGED):
        assignee = rng.choice(staff)
        history.append(
            (
                Action.TAKE_OVER,
                State.ACKNOWLEDGED,
                State.IN_ASSESSMENT,
                assignee,
                min(acknowledged + timedelta(hours=rng.uniform(0.5, 24)), now),
                None,
                None,
            )
        )
    if state is State.INFO_REQUESTED:
        history.append(
            (Action.ASK, State.IN_ASSESSMENT, State.INFO_REQUESTED, assignee, now - timedelta(hours=2), None, None)
        )
    if state in (State.FEEDBACK_GIVEN, State.CLOSED):
        feedback = min(submitted + timedelta(days=rng.lognormvariate(2.0, 0.5)), now)
        feedback = max(feedback, acknowledged + timedelta(hours=1))
        history.append(
            (Action.GIVE_FEEDBACK, State.IN_ASSESSMENT, State.FEEDBACK_GIVEN, assignee, feedback, None, None)
        )
    if state is State.CLOSED:
        closed = min(feedback + timedelta(days=rng.uniform(1, 30)), now)
        history.append((Action.CLOSE, State.FEEDBACK_GIVEN, State.CLOSED, assignee, closed, None, None))
    informed = rng.choices(list(InformedStatus), [70, 15, 15])[0]
    return dict(
        id=rid,
        version=1,
        number=f"{home['district'].code}-{to_local(submitted).year}-{number:05d}",
        state=state,
        school_id=school.id,
        district_id=district["district"].id,
        author_id=author,
        assignee_id=assignee,
        acknowledged_by_id=next((h[3] for h in history if h[0] is Action.ACKNOWLEDGE), None),
        created_at=submitted - timedelta(minutes=rng.uniform(5, 120)),
        updated_at=closed or feedback or acknowledged or received,
        submitted_at=submitted,
        received_at=received,
        acknowledged_at=acknowledged,
        feedback_at=feedback,
        closed_at=closed,
        acknowledge_due_at=ack_due,
        feedback_due_at=feedback_due,
        ack_minutes=None if acknowledged is None else int((acknowledged - received).total_seconds() // 60),
        ack_working_minutes=None if acknowledged is None else working_minutes_between(received, acknowledged),
        feedback_minutes=None if feedback is None else int((feedback - submitted).total_seconds() // 60),
        feedback_working_minutes=None if feedback is None else working_minutes_between(submitted, feedback),
        child_first_name=rng.choice(FIRST),
        child_last_name=rng.choice(LAST),
        child_birth_date=date(to_local(submitted).year - rng.randint(6, 10), rng.randint(1, 12), rng.randint(1, 28)),
        child_class=f"{rng.randint(1, 4)}{rng.choice('abc')}",
        child_address=f"{rng.choice(PLACES)}weg {rng.randint(1, 90)}",
        observed_on=to_local(submitted).date() - timedelta(days=rng.randint(0, 10)),
        observed_by="Klassenlehrkraft",
        observation=rng.choice(OBSERVATIONS),
        urgency=urgency,
        phone_call_at=submitted - timedelta(minutes=30) if urgency is Urgency.ACUTE else None,
        phone_call_with="Bereitschaftsdienst" if urgency is Urgency.ACUTE else None,
        affected_informed=informed,
        affected_informed_on=to_local(submitted).date() if informed is InformedStatus.YES else None,
        affected_informed_reason="" if informed is InformedStatus.YES else "Gefährdung des Kindes",
        reporter_name="Lehrkraft",
        reporter_function=ReporterFunction.TEACHER,
        reporter_phone="02323 555",
    )


def _parts(
    rng, rows: Rows, rid: int, state: State, values: dict, district, author: int, history
) -> tuple[datetime, datetime | None] | None:
    """The referral's parts; the times of the ASD's question and the school's answer, if there are."""
    for category in rng.sample(list(Category), rng.choices([1, 2, 3], [60, 30, 10])[0]):
        rows.add(ReferralCategory, referral_id=rid, category=category)
    day = values["submitted_at"].date()
    consulted = rng.random() < 0.35
    for kind in SchoolActionKind:
        done = consulted if kind is SchoolActionKind.INSOFA_CONSULTED else rng.random() < 0.7
        rows.add(
            SchoolAction,
            referral_id=rid,
            kind=kind,
            done=done,
            done_on=day - timedelta(days=2) if done else None,
            reason="" if done else "Noch nicht möglich.",
            detail="",
        )
    rows.add(
        Person,
        referral_id=rid,
        position=0,
        kind=PersonKind.MOTHER,
        first_name=rng.choice(FIRST),
        last_name=values["child_last_name"],
        address="",
        phone="",
        relation=Relation.BIRTH,
        custody=True,
    )
    if not (values["assignee_id"] and rng.random() < 0.25):
        return None
    asked = values["submitted_at"] + timedelta(days=1)
    rows.add(
        Message,
        referral_id=rid,
        kind=MessageKind.QUESTION,
        body="Gibt es Geschwister an Ihrer Schule?",
        author_id=values["assignee_id"],
        created_at=asked,
    )
    if state is not State.INFO_REQUESTED:
        rows.add(
            Message,
            referral_id=rid,
            kind=MessageKind.ANSWER,
            body="Ja, einen Bruder in Klasse 1.",
            author_id=author,
            created_at=asked + timedelta(hours=5),
        )
        return asked, asked + timedelta(hours=5)
    return asked, None


def _assessment(rng, rows: Rows, assessment_id: int, rid: int, values: dict, district) -> None:
    result = rng.choices(list(AssessmentResult), [8, 22, 45, 25])[0]
    rows.add(
        Assessment,
        id=assessment_id,
        referral_id=rid,
        result=result,
        other_specialists="",
        school_involved=rng.random() < 0.6,
        recorded_by_id=values["assignee_id"],
        recorded_at=values["feedback_at"] - timedelta(hours=1),
    )
    rows.add(AssessmentMeasure, assessment_id=assessment_id, measure=rng.choice(list(Measure)))
    rows.add(
        Feedback,
        referral_id=rid,
        indications_confirmed=result in (AssessmentResult.ACUTE, AssessmentResult.LATENT),
        asd_became_active=result is not AssessmentResult.NO_RISK,
        asd_still_active=values["closed_at"] is None,
        contact_name="ASD-Fachkraft",
        contact_phone="02323 16",
        affected_informed=InformedStatus.YES,
        affected_informed_on=values["feedback_at"].date(),
        affected_informed_reason="",
        given_by_id=values["assignee_id"],
        given_at=values["feedback_at"],
    )


def _consultations(rng, city, total: int, years: int, now: datetime, settings, audit: Audit) -> int:
    rows = Rows()
    first_id = (db.session.scalar(select(func.max(Consultation.id))) or 0) + 1
    insofas = list(db.session.scalars(select(Membership.user_id).where(Membership.role == Role.INSOFA)))
    span = years * 365 * 24 * 3600
    # Numbers continue the city's series of each year.
    per_year: dict[int, int] = dict(
        db.session.execute(select(ConsultationCounter.year, ConsultationCounter.last_number)).all()
    )
    # In the order of the requests (ids and numbers grow with time); every state at least once.
    starts: list[tuple[datetime, ConsultationState | None]] = sorted(
        [(now - timedelta(days=rng.uniform(1, 4)), state) for state in list(ConsultationState)[:total]]
        + [(now - timedelta(seconds=rng.random() * span), None) for _ in range(max(0, total - len(ConsultationState)))],
        key=lambda start: start[0],
    )
    for i, (requested, forced) in enumerate(starts):
        home = rng.choice(city)
        school = rng.choice(home["schools"])
        age = (now - requested).days
        state = (
            rng.choices(list(ConsultationState), [10, 20, 65, 5])[0]
            if age < 7
            else rng.choices([ConsultationState.ANSWERED, ConsultationState.CANCELLED], [93, 7])[0]
        )
        state = forced or state
        accepted = (
            requested + timedelta(hours=rng.lognormvariate(2.5, 0.8))
            if state in (ConsultationState.ACCEPTED, ConsultationState.ANSWERED)
            else None
        )
        accepted = min(accepted, now) if accepted else None
        answered = (
            min(accepted + timedelta(days=rng.uniform(0.5, 5)), now) if state is ConsultationState.ANSWERED else None
        )
        year = to_local(requested).year
        per_year[year] = per_year.get(year, 0) + 1
        cid = first_id + i
        author = rng.choice(home["teacher_ids"][school.id])
        insofa = rng.choice(insofas) if accepted else None
        cancelled = requested + timedelta(hours=3) if state is ConsultationState.CANCELLED else None
        where = (school.id, home["district"].id)
        audit.add(requested, author, f"consultation.{ConsultationAction.REQUEST.value}", "consultation", cid, *where)
        if accepted:
            audit.add(accepted, insofa, f"consultation.{ConsultationAction.ACCEPT.value}", "consultation", cid, *where)
        if answered:
            audit.add(answered - timedelta(minutes=20), insofa, "consultation.view", "consultation", cid, *where)
            audit.add(answered, insofa, f"consultation.{ConsultationAction.ANSWER.value}", "consultation", cid, *where)
        if cancelled:
            audit.add(cancelled, author, f"consultation.{ConsultationAction.CANCEL.value}", "consultation", cid, *where)
        rows.add(
            Consultation,
            id=cid,
            version=1,
            number=f"FB-{year}-{per_year[year]:05d}",
            state=state,
            school_id=school.id,
            district_id=home["district"].id,
            author_id=author,
            insofa_id=insofa,
            requested_at=requested,
            accept_due_at=end_of_nth_working_day(requested, settings["consultation_accept_working_days"]),
            accepted_at=accepted,
            answered_at=answered,
            cancelled_at=cancelled,
            child_age=rng.randint(6, 10),
            class_level=str(rng.randint(1, 4)),
            observations=rng.choice(OBSERVATIONS),
            question="Reicht das für eine Mitteilung?",
            urgency=rng.choice(list(ConsultationUrgency)),
            contact_way=rng.choice(list(ContactWay)),
            contact_phone="02323 555",
            reachable="vormittags",
            recommendation=rng.choice(list(Recommendation)) if answered else None,
            recommendation_note="",
        )
        rows.add(ConsultationCategory, consultation_id=cid, category=rng.choice(list(Category)))
        rows.flush()
        if len(audit.rows.tables.get(STAGING, [])) >= BATCH * 5:
            audit.flush()
    rows.flush(force=True)
    audit.flush()
    for year, last in per_year.items():
        counter = db.session.get(ConsultationCounter, year)
        if counter is None:
            db.session.add(ConsultationCounter(year=year, last_number=last))
        else:
            counter.last_number = max(counter.last_number, last)
    db.session.commit()
    return total


def _bump_sequences() -> None:
    """Rows were written with explicit ids: PostgreSQL's sequences must continue after them."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in ("referral", "assessment", "consultation", "state_change", "message", "person", "school_action"):
        db.session.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(max(id), 1) FROM {table}))")
        )
