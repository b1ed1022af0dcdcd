"""Test data, built through the same operations as the app (services), and committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from flask_security import hash_password

from referral.accounts.models import Membership, Role, User
from referral.cases import services
from referral.cases.models import Person, Referral, ReferralCategory
from referral.cases.process import State
from referral.cases.vocabulary import (
    AssessmentResult,
    Category,
    InformedStatus,
    Measure,
    PersonKind,
    Relation,
    ReporterFunction,
    Urgency,
)
from referral.extensions import db
from referral.organisation.models import District, School

PASSWORD = "Richtig-Langes-Passwort-1"
CHILD_FIRST, CHILD_LAST = "Henrietta", "Quastenflosser"


@lru_cache(maxsize=1)
def _password_hash() -> str:
    # argon2 is slow on purpose; hash once per run and share it between test users.
    return hash_password(PASSWORD)


@dataclass
class World:
    districts: dict[str, District] = field(default_factory=dict)
    schools: dict[str, School] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def __getattr__(self, name):
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]
        raise AttributeError(name)


def user(email: str, name: str, *memberships: tuple[Role, School | District | None]) -> User:
    account = User(email=email, name=name, phone="0123 456", password=_password_hash(), active=True)
    for role, scope in memberships:
        account.memberships.append(
            Membership(
                role=role,
                school=scope if isinstance(scope, School) else None,
                district=scope if isinstance(scope, District) else None,
            )
        )
    db.session.add(account)
    return account


# The world: two districts with schools and one user per role and scope (keys as in the tests).
DISTRICTS = {
    "we": dict(code="WE", name="Wanne-Eickel", duty_phone="02325 111", duty_hours="Mo–Fr 8–16"),
    "hm": dict(code="HM", name="Herne-Mitte", duty_phone="02323 222"),
}
SCHOOLS = {"a": ("Schule A", "we"), "a2": ("Schule A2", "we"), "b": ("Schule B", "hm")}
USERS = {  # key → name, memberships as (role, school key or district key or None)
    "teacher": ("Tina Teacher", [(Role.TEACHER, "a")]),
    "teacher_other": ("Olga Otherteacher", [(Role.TEACHER, "a")]),
    "school_lead": ("Lena Lead", [(Role.SCHOOL_LEAD, "a")]),
    "teacher_a2": ("Anton A2", [(Role.TEACHER, "a2")]),
    "lead_a2": ("Lisa LeadA2", [(Role.SCHOOL_LEAD, "a2")]),
    "teacher_b": ("Bernd B", [(Role.TEACHER, "b")]),
    "asd": ("Anna ASD", [(Role.ASD_WORKER, "we")]),
    "asd2": ("Ben ASD", [(Role.ASD_WORKER, "we")]),
    "asd_lead": ("Lars ASDLead", [(Role.ASD_LEAD, "we")]),
    "asd_hm": ("Mira HM", [(Role.ASD_WORKER, "hm")]),
    "asd_lead_hm": ("Hans HMLead", [(Role.ASD_LEAD, "hm")]),
    "insofa": ("Ines Insofa", [(Role.INSOFA, None)]),
    "insofa2": ("Igor Insofa", [(Role.INSOFA, None)]),
    "coordinator": ("Klara Koord", [(Role.COORDINATOR, None)]),
    "admin": ("Adam Admin", [(Role.ADMIN, None)]),
}


def email_of(key: str) -> str:
    return f"{key}@test.example"


def build_world() -> World:
    """Builds the world through the models and commits it (the test set-up does this once per run and
    restores the rows before each test that asks for the `world`; see tests/conftest.py)."""
    w = World()
    for key, values in DISTRICTS.items():
        w.districts[key] = District(**values)
    for key, (name, district) in SCHOOLS.items():
        w.schools[key] = School(name=name, district=w.districts[district])
    db.session.add_all([*w.districts.values(), *w.schools.values()])
    scopes = {**w.schools, **w.districts}
    for key, (name, memberships) in USERS.items():
        w.users[key] = user(email_of(key), name, *((role, scopes.get(scope)) for role, scope in memberships))
    db.session.commit()
    return w


def load_world() -> World:
    """The world as the database holds it (after the set-up restored it), in the current session."""
    from sqlalchemy import select

    w = World()
    districts = {d.code: d for d in db.session.scalars(select(District))}
    schools = {s.name: s for s in db.session.scalars(select(School))}
    users = {u.email: u for u in db.session.scalars(select(User))}
    w.districts.update({key: districts[values["code"]] for key, values in DISTRICTS.items()})
    w.schools.update({key: schools[name] for key, (name, _) in SCHOOLS.items()})
    w.users.update({key: users[email_of(key)] for key in USERS})
    return w


def complete_draft(
    author: User,
    *,
    urgency: Urgency = Urgency.URGENT,
    reporter=ReporterFunction.TEACHER,
    first=CHILD_FIRST,
    last=CHILD_LAST,
) -> Referral:
    referral = services.new_draft(author, author.memberships[0].school)
    referral.child_first_name, referral.child_last_name = first, last
    referral.child_birth_date = date(2018, 3, 1)
    referral.child_class = "2a"
    referral.child_address = "Teststraße 1"
    referral.persons = [
        Person(
            position=0,
            kind=PersonKind.MOTHER,
            first_name="Mutter",
            last_name=last,
            relation=Relation.BIRTH,
            custody=True,
        )
    ]
    referral.categories = [ReferralCategory(category=Category.NEGLECT)]
    referral.observed_on = date(2026, 11, 2)
    referral.observed_by = author.name
    referral.observation = "Kommt seit Wochen ohne Frühstück; Beobachtungstext-7731."
    for action in referral.school_actions:
        action.done, action.done_on = True, date(2026, 11, 1)
    referral.affected_informed = InformedStatus.YES
    referral.affected_informed_on = date(2026, 11, 3)
    referral.urgency = urgency
    if urgency is Urgency.ACUTE:
        referral.phone_call_at = datetime(2026, 11, 4, 9, 0)
        referral.phone_call_with = "Frau Bereitschaft"
    referral.reporter_name, referral.reporter_function, referral.reporter_phone = author.name, reporter, "0123"
    return referral


def referral_in(
    state: State, author: User, asd: User, *, lead: User | None = None, now: datetime | None = None, **draft_options
) -> Referral:
    """A referral of `author`'s school driven through the real operations into `state`, committed."""
    referral = complete_draft(author, **draft_options)
    if state is State.DRAFT:
        services.save_draft(referral, author)
        db.session.commit()
        return referral
    now = now or datetime(2026, 11, 5, 9, 0)
    services.submit(referral, author, now=now)
    steps = {
        State.ACKNOWLEDGED: lambda: services.acknowledge(referral, asd, now=now + timedelta(hours=1)),
        State.IN_ASSESSMENT: lambda: services.take_over(referral, asd),
        State.INFO_REQUESTED: lambda: services.ask(referral, asd, "Eine Rückfrage?"),
    }
    order = [State.ACKNOWLEDGED, State.IN_ASSESSMENT]
    if state is State.INFO_REQUESTED:
        order.append(State.INFO_REQUESTED)
    if state in (State.FEEDBACK_GIVEN, State.CLOSED):
        order = [State.ACKNOWLEDGED, State.IN_ASSESSMENT]
    if state is not State.SUBMITTED:
        for step in order:
            steps[step]()
            if step is state:
                break
    if state in (State.FEEDBACK_GIVEN, State.CLOSED):
        record_assessment(referral, asd, lead or asd)
        services.give_feedback(referral, asd, now=now + timedelta(days=2), **feedback_values(asd))
        if state is State.CLOSED:
            services.close(referral, asd, now=now + timedelta(days=3))
    db.session.commit()
    assert referral.state is state
    return referral


def record_assessment(referral: Referral, asd: User, colleague: User) -> None:
    services.record_assessment(
        referral,
        asd,
        result=AssessmentResult.LATENT,
        specialists=list({asd, colleague}),
        other_specialists="" if colleague is not asd else "Externe Fachkraft",
        school_involved=True,
        measures=[Measure.HELP_OFFER],
    )


def feedback_values(asd: User) -> dict:
    return {
        "indications_confirmed": True,
        "asd_became_active": True,
        "asd_still_active": False,
        "contact_name": asd.name,
        "contact_phone": "0234 999",
        "affected_informed": InformedStatus.YES,
        "affected_informed_on": date(2026, 11, 6),
        "affected_informed_reason": "",
    }


OBSERVATIONS = "Kommt oft hungrig; Beratungstext-5521."


def consultation_in(state, author: User, insofa: User | None = None, *, now: datetime | None = None, **fields):
    """A consultation of `author`'s school driven through the real operations into `state`, committed."""
    from referral.consultations import services as consult
    from referral.consultations.process import ConsultationState as S
    from referral.consultations.vocabulary import ConsultationUrgency, ContactWay, Recommendation

    now = now or datetime(2026, 11, 5, 9, 0)
    values = dict(
        child_age=8,
        class_level="2",
        observations=OBSERVATIONS,
        question="Reicht das für eine Mitteilung?",
        urgency=ConsultationUrgency.NORMAL,
        contact_way=ContactWay.PHONE,
        contact_phone="0123 777",
        reachable="Mo–Do 13–15 Uhr",
        categories=[Category.NEGLECT],
    )
    values.update(fields)
    consultation = consult.request(author, author.memberships[0].school, now=now, **values)
    if state is S.CANCELLED:
        consult.cancel(consultation, author, now=now + timedelta(hours=1))
    if state in (S.ACCEPTED, S.ANSWERED):
        consult.accept(consultation, insofa, now=now + timedelta(hours=2))
    if state is S.ANSWERED:
        consult.answer(
            consultation,
            insofa,
            recommendation=Recommendation.INFORM_ASD,
            note="Bitte ASD informieren.",
            now=now + timedelta(days=1),
        )
    db.session.commit()
    return consultation
