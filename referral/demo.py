"""Fictional demo data: district Wanne-Eickel with six primary schools, two more districts, one user
per role, and referrals in every state. Built with the same operations as the web pages."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, select

from .accounts import services as accounts
from .accounts.models import Role, User
from .cases import services
from .cases.models import Referral
from .cases.vocabulary import (
    AssessmentResult,
    BodyRegion,
    BodySide,
    Category,
    InformedStatus,
    Measure,
    PersonKind,
    Relation,
    ReporterFunction,
    Urgency,
)
from .extensions import db
from .organisation.models import District, School
from .timeutil import utcnow

PASSWORD = "Demo-Passwort-2026"

DISTRICTS = [
    (
        "WE",
        "Wanne-Eickel",
        "02325 16-1111",
        "Mo–Fr 8–16 Uhr, außerhalb: Rufbereitschaft über die Polizei (110)",
        "asd-wanne-eickel@demo.example",
    ),
    ("HM", "Herne-Mitte", "02323 16-2222", "Mo–Fr 8–16 Uhr", "asd-herne-mitte@demo.example"),
    ("SO", "Sodingen", "02323 16-3333", "Mo–Fr 8–16 Uhr", "asd-sodingen@demo.example"),
]
SCHOOLS = {
    "WE": [
        "Grundschule Am Lindenhof",
        "Grundschule Sonnenwinkel",
        "Kastanienschule",
        "Grundschule Regenbogen",
        "Grundschule Am Kanal",
        "Waldschule Eickel",
    ],
    "HM": ["Grundschule Am Marktplatz"],
    "SO": ["Grundschule Sodinger Heide"],
}
# (email, name, role, scope, phone)
USERS = [
    ("lehrkraft@demo.example", "Laura Lehmann", Role.TEACHER, "Grundschule Am Lindenhof", "02325 555-101"),
    ("schulleitung@demo.example", "Sabine Schulz", Role.SCHOOL_LEAD, "Grundschule Am Lindenhof", "02325 555-100"),
    ("asd@demo.example", "Anna Albers", Role.ASD_WORKER, "WE", "02325 16-1201"),
    ("asd2@demo.example", "Ben Brandt", Role.ASD_WORKER, "WE", "02325 16-1202"),
    ("asd-leitung@demo.example", "Lars Lorenz", Role.ASD_LEAD, "WE", "02325 16-1200"),
    ("insofa@demo.example", "Ines Ivanović", Role.INSOFA, None, "02323 16-4000"),
    ("koordination@demo.example", "Klara König", Role.COORDINATOR, None, "02323 16-5000"),
    ("admin@demo.example", "Adam Adler", Role.ADMIN, None, "02323 16-6000"),
    ("asd-mitte@demo.example", "Mira Meier", Role.ASD_WORKER, "HM", "02323 16-2201"),
]
# Fictional children; tests search for these names in pages that must not show them.
CHILDREN = [
    ("Emma", "Beispielkind", "3a"),
    ("Noah", "Musterfeld", "2b"),
    ("Mila", "Sonnenschein", "4c"),
    ("Paul", "Probst", "1a"),
    ("Lea", "Lindqvist", "3b"),
    ("Finn", "Fiktiv", "2a"),
    ("Ida", "Imaginär", "4a"),
    ("Tom", "Testmann", "1b"),
    ("Zoe", "Zufall", "3c"),
]


def has_data() -> bool:
    return db.session.scalar(select(District.id).limit(1)) is not None


def logins_text() -> str:
    lines = [f"Demo-Zugänge (Passwort für alle: {PASSWORD}):"]
    for email, name, role, scope, _ in USERS:
        lines.append(f"  {role.label:<32} {email:<28} {name}" + (f" – {scope}" if scope else ""))
    return "\n".join(lines)


def load() -> None:
    for code, name, phone, hours, inbox in DISTRICTS:
        district = District(
            code=code, name=name, duty_phone=phone, duty_hours=hours, inbox_email=inbox, model_project=code == "WE"
        )
        db.session.add(district)
        for school_name in SCHOOLS[code]:
            db.session.add(School(name=school_name, district=district))
    db.session.flush()
    people = {}
    for email, name, role, scope, phone in USERS:
        user = accounts.create_user(email, name, PASSWORD, phone)
        accounts.add_membership(user, role, scope)
        people[role if role not in people else email] = user
    db.session.flush()
    _contacts()
    _referrals(people)
    _consultations(people)
    _surveys(people)
    _api_client()
    _guide(people)
    # The demo's events are fictional: their e-mails are not sent (the in-app entries stay).
    from .notifications.models import OutboxMail

    db.session.execute(delete(OutboxMail))


def _guide(people) -> None:
    """Two versions of the guide, the second one unseen by everyone: the start pages show the notice,
    the guide lists what is new and marks the changed section, and the first version stays readable."""
    from .guide import operations as guide
    from .guide.defaults import DEFAULT_NOTE, DEFAULT_TEXTS

    coordinator = people[Role.COORDINATOR]
    first = guide.publish(coordinator, None, DEFAULT_NOTE, DEFAULT_TEXTS)
    first.published_at = utcnow() - timedelta(days=40)
    for user in db.session.scalars(select(User)):
        guide.mark_seen(user, first.number)
    observations = DEFAULT_TEXTS["beobachtungen"] + (
        "\nSchreiben Sie auch auf, wann und wo Sie etwas beobachtet haben (Unterricht, Pause, Ganztag).\n"
    )
    second = guide.publish(
        coordinator,
        first.number,
        "vereinbart im Seminar am 12. November: Ort und Zeit jeder Beobachtung angeben",
        {**DEFAULT_TEXTS, "beobachtungen": observations},
    )
    second.published_at = utcnow() - timedelta(days=3)


def _api_client() -> None:
    """A connection of the (fictional) case software for the model district, so that the admin sees one.
    Its secret is thrown away: whoever wants to try the API makes a client of their own (README, "API")."""
    from .accounts.operations import Actor
    from .api import clients

    district = db.session.scalar(select(District).where(District.code == "WE"))
    clients.create(
        Actor.operator(), "Fachsoftware Jugendamt (Demo)", [district], ["referrals:read", "referrals:acknowledge"]
    )


def _contacts() -> None:
    """Fictional directory entries: the ASD contact of each Wanne-Eickel school, one school's people, the pool."""
    from .directory.models import Contact, ContactKind

    asd_people = [("Anna Albers", "02325 16-1201"), ("Ben Brandt", "02325 16-1202")]
    schools = db.session.scalars(select(School).order_by(School.name)).all()
    for index, school in enumerate(s for s in schools if s.district.code == "WE"):
        name, phone = asd_people[index % 2]
        db.session.add(
            Contact(
                kind=ContactKind.ASD_CONTACT,
                school=school,
                name=name,
                phone=phone,
                email="asd-wanne-eickel@demo.example",
                reachable="Mo–Fr 8–16 Uhr",
            )
        )
    lindenhof = next(s for s in schools if s.name == "Grundschule Am Lindenhof")
    db.session.add_all(
        [
            Contact(kind=ContactKind.SCHOOL_LEAD, school=lindenhof, name="Sabine Schulz", phone="02325 555-100"),
            Contact(
                kind=ContactKind.SCHOOL_SOCIAL_WORK,
                school=lindenhof,
                name="Sami Sozial",
                phone="02325 555-120",
                reachable="Di und Do 8–13 Uhr",
            ),
            Contact(kind=ContactKind.CHILD_PROTECTION, school=lindenhof, name="Laura Lehmann", phone="02325 555-101"),
            Contact(
                kind=ContactKind.INSOFA,
                name="Ines Ivanović",
                phone="02323 16-4000",
                email="insofa@demo.example",
                reachable="Mo–Fr 9–15 Uhr",
            ),
            Contact(kind=ContactKind.INSOFA, name="Olaf Oberst", phone="02323 16-4001", reachable="Mo, Mi 9–12 Uhr"),
        ]
    )


def _draft(
    author: User, child, urgency: Urgency, categories, reporter=ReporterFunction.TEACHER, days_ago: int = 0
) -> Referral:
    """A complete draft whose dates lie before its submission `days_ago` days ago."""
    first, last, school_class = child
    referral = services.new_draft(author, author.memberships[0].school)
    referral.child_first_name, referral.child_last_name, referral.child_class = first, last, school_class
    referral.child_birth_date = date(2017, 5, 14)
    referral.child_address = "Musterstraße 12, 44649 Herne"
    referral.child_language = "Deutsch"
    referral.interpreter_needed = False
    from .cases.models import BodyMark, Person, ReferralCategory

    referral.persons = [
        Person(
            position=0,
            kind=PersonKind.MOTHER,
            first_name="Maria",
            last_name=last,
            relation=Relation.BIRTH,
            custody=True,
            phone="0170 0000000",
        ),
        Person(
            position=1,
            kind=PersonKind.FATHER,
            first_name="Marco",
            last_name=last,
            relation=Relation.BIRTH,
            custody=True,
            address="unbekannt verzogen",
        ),
    ]
    referral.categories = [ReferralCategory(category=c) for c in categories]
    if Category.PHYSICAL_ABUSE in categories:
        referral.body_marks = [
            BodyMark(side=BodySide.BACK, region=BodyRegion.UPPER_BACK),
            BodyMark(side=BodySide.FRONT, region=BodyRegion.LEFT_UPPER_ARM),
        ]
    referral.observed_on = date.today() - timedelta(days=days_ago + 3)
    referral.observed_by = author.name
    referral.observation_source = "selbst gesehen"
    referral.observation = (
        f"{first} kam in den letzten zwei Wochen mehrfach ohne Frühstück und in durchnässter "
        "Kleidung zur Schule. Beim Sportunterricht fielen blaue Flecken am Oberarm auf."
    )
    referral.child_words = "„Mama schläft immer so lange, dann mach ich mir selber was.“"
    for action in referral.school_actions:
        action.done = action.kind.value != "insofa_consulted"
        if action.done:
            action.done_on = date.today() - timedelta(days=days_ago + 5)
        else:
            action.reason = "Die Lage wurde mit der Schulleitung als eindeutig eingeschätzt."
    referral.school_actions[
        0
    ].detail = "Mutter zeigte sich einsichtig, Termin bei der Erziehungsberatung wurde nicht wahrgenommen."
    referral.affected_informed = InformedStatus.YES
    referral.affected_informed_on = date.today() - timedelta(days=days_ago + 1)
    referral.urgency = urgency
    if urgency is Urgency.ACUTE:
        referral.phone_call_at = utcnow() - timedelta(minutes=40)
        referral.phone_call_with = "Herr Brandt, ASD Wanne-Eickel"
    referral.reporter_name = author.name
    referral.reporter_function = reporter
    referral.reporter_phone = author.phone
    referral.reporter_reachable = "Mo–Fr 7:45–13:30 Uhr"
    return referral


def _referrals(people) -> None:
    teacher, lead = people[Role.TEACHER], people[Role.SCHOOL_LEAD]
    worker, lead_asd = people[Role.ASD_WORKER], people[Role.ASD_LEAD]
    second = people["asd2@demo.example"]
    now = utcnow()
    days = lambda n: now - timedelta(days=n)  # noqa: E731

    # A draft the teacher is still working on.
    draft = _draft(teacher, CHILDREN[0], Urgency.CLARIFY, [Category.NEGLECT])
    draft.observation = draft.observation[:80]
    services.save_draft(draft, teacher)

    # Submitted weeks ago and never acknowledged: overdue.
    services.submit(
        _draft(teacher, CHILDREN[1], Urgency.URGENT, [Category.NEGLECT, Category.SCHOOL_ABSENTEEISM], days_ago=16),
        teacher,
        now=days(16),
    )
    # Acute, just now.
    services.submit(
        _draft(lead, CHILDREN[2], Urgency.ACUTE, [Category.PHYSICAL_ABUSE], ReporterFunction.SCHOOL_LEAD),
        lead,
        now=now - timedelta(minutes=20),
    )

    acknowledged = _draft(teacher, CHILDREN[3], Urgency.URGENT, [Category.DOMESTIC_VIOLENCE], days_ago=2)
    services.submit(acknowledged, teacher, now=days(2))
    services.acknowledge(acknowledged, worker, now=days(1))

    in_assessment = _draft(
        teacher, CHILDREN[4], Urgency.URGENT, [Category.PHYSICAL_ABUSE, Category.PSYCHOLOGICAL_ABUSE], days_ago=6
    )
    services.submit(in_assessment, teacher, now=days(6))
    services.acknowledge(in_assessment, worker, now=days(6))
    services.take_over(in_assessment, worker, now=days(5))
    services.add_addendum(
        in_assessment, teacher, "Heute hat Lea erzählt, dass der Vater wieder zu Hause wohnt.", now=days(2)
    )

    asked = _draft(
        lead,
        CHILDREN[5],
        Urgency.CLARIFY,
        [Category.PARENTAL_ADDICTION_OR_ILLNESS],
        ReporterFunction.SCHOOL_LEAD,
        days_ago=5,
    )
    services.submit(asked, lead, now=days(5))
    services.acknowledge(asked, second, now=days(4))
    services.assign(asked, lead_asd, second, now=days(4))
    services.ask(asked, second, "Seit wann fehlt Finn regelmäßig am Montag? Gibt es Fehlzeitenlisten?", now=days(3))

    for child, closed in ((CHILDREN[6], False), (CHILDREN[7], True)):
        done = _draft(teacher, child, Urgency.URGENT, [Category.NEGLECT], days_ago=20)
        services.submit(done, teacher, now=days(20))
        services.acknowledge(done, worker, now=days(20))
        services.take_over(done, worker, now=days(19))
        services.ask(done, worker, "Gibt es Geschwister an Ihrer Schule?", now=days(19))
        services.answer(done, teacher, "Ja, einen Bruder in Klasse 1b.", now=days(18))
        services.record_assessment(
            done,
            worker,
            result=AssessmentResult.LATENT,
            specialists=[worker, lead_asd],
            other_specialists="",
            school_involved=True,
            measures=[Measure.HELP_OFFER],
            now=days(14),
        )
        services.give_feedback(
            done,
            worker,
            now=days(12),
            indications_confirmed=True,
            asd_became_active=True,
            asd_still_active=not closed,
            contact_name=worker.name,
            contact_phone=worker.phone,
            affected_informed=InformedStatus.YES,
            affected_informed_on=days(13).date(),
            affected_informed_reason="",
        )
        if closed:
            services.close(done, worker, now=days(10))

    # Passed on to the competent district: the parents live in Herne-Mitte.
    moved = _draft(teacher, CHILDREN[8], Urgency.CLARIFY, [Category.OTHER], days_ago=3)
    services.submit(moved, teacher, now=days(3))
    services.transfer(
        moved,
        worker,
        db.session.scalar(select(District).where(District.code == "HM")),
        "Die Eltern wohnen in Herne-Mitte (§ 86 SGB VIII).",
        now=days(2),
    )


def _consultations(people) -> None:
    """One consultation in each state; the answered one recommends informing the ASD."""
    from .consultations import services as consult
    from .consultations.vocabulary import ConsultationUrgency, ContactWay, Recommendation

    teacher, lead, insofa = people[Role.TEACHER], people[Role.SCHOOL_LEAD], people[Role.INSOFA]
    now = utcnow()
    days = lambda n: now - timedelta(days=n)  # noqa: E731
    common = dict(contact_way=ContactWay.PHONE, contact_phone=teacher.phone, reachable="Mo–Do 13–15 Uhr")
    school = teacher.memberships[0].school

    consult.request(
        teacher,
        school,
        now=days(1),
        child_age=7,
        class_level="1",
        categories=[Category.NEGLECT],
        observations="Das Kind trägt seit Wochen dieselbe Kleidung und hat oft kein Frühstück dabei.",
        question="Sind das gewichtige Anhaltspunkte? Wie spreche ich die Eltern an?",
        urgency=ConsultationUrgency.NORMAL,
        **common,
    )
    consult.request(
        lead,
        school,
        now=days(6),
        child_age=9,
        class_level="3",
        categories=[Category.PSYCHOLOGICAL_ABUSE],
        observations="Das Kind wirkt verängstigt, wenn es abgeholt wird, und weint oft.",
        question="Sollen wir den ASD informieren?",
        urgency=ConsultationUrgency.URGENT,
        contact_way=ContactWay.IN_PERSON,
        contact_phone=lead.phone,
        reachable="vormittags",
    )
    accepted = consult.request(
        teacher,
        school,
        now=days(3),
        child_age=8,
        class_level="2",
        categories=[Category.DOMESTIC_VIOLENCE],
        observations="Das Kind erzählt von lautem Streit zu Hause und schläft im Unterricht ein.",
        question="Wie gehen wir weiter vor?",
        urgency=ConsultationUrgency.URGENT,
        **common,
    )
    consult.accept(accepted, insofa, now=days(2))
    consult.arrange(accepted, insofa, at=now + timedelta(days=1, hours=2), way=ContactWay.PHONE, now=days(2))
    answered = consult.request(
        teacher,
        school,
        now=days(9),
        child_age=10,
        class_level="4",
        categories=[Category.PHYSICAL_ABUSE],
        observations="Wiederholt blaue Flecken an den Oberarmen, das Kind weicht Fragen aus.",
        question="Reicht das für eine Mitteilung an den ASD?",
        urgency=ConsultationUrgency.URGENT,
        **common,
    )
    consult.accept(answered, insofa, now=days(9))
    consult.answer(
        answered,
        insofa,
        recommendation=Recommendation.INFORM_ASD,
        note="Bitte den ASD informieren und die Beobachtungen mit Datum festhalten.",
        now=days(8),
    )
    withdrawn = consult.request(
        teacher,
        school,
        now=days(12),
        child_age=6,
        class_level="other",
        categories=[],
        observations="Das Kind kommt oft zu spät.",
        question="Ist das schon ein Thema für Sie?",
        urgency=ConsultationUrgency.NORMAL,
        **common,
    )
    consult.cancel(withdrawn, teacher, now=days(11))


def _surveys(people) -> None:
    """Anonymous answers of this quarter (enough for figures in WE, too few in HM), a few free texts,
    and the quarterly round open for WE. The referrals above with feedback and the closed one leave the
    invitations of the demo teacher, the school lead and the ASD worker open."""
    from .surveys import services as surveys
    from .surveys.models import SurveyAnswer, SurveyComment

    now = utcnow()
    quarter = surveys.quarter_of(now)
    we, hm = (db.session.scalar(select(District.id).where(District.code == code)) for code in ("WE", "HM"))
    pattern = [5, 4, 4, 3, 5, 2, 4, 5, 3, 4, None]
    sets = [("feedback", "school", we, 9), ("feedback", "school", hm, 3), ("closing", "asd", we, 6)]
    sets += [("quarter", "school", we, 8), ("quarter", "asd", we, 4)]
    for question_set, kind, district, n in sets:
        for i in range(n):
            db.session.add(
                SurveyAnswer(
                    question_set=question_set,
                    set_version=1,
                    role_kind=kind,
                    district_id=district,
                    quarter=quarter,
                    **{f"a{q}": pattern[(i + q) % len(pattern)] for q in range(1, 5)},
                )
            )
    for district, texts in (
        (
            we,
            [
                "Die Rückmeldung kam schnell, das hat uns sehr geholfen.",
                "Ein fester Ansprechpartner im ASD pro Schule wäre gut.",
                "Das Formular ist lang, aber klar gegliedert.",
                "Mehr Austausch zwischen Schulsozialarbeit und ASD, z. B. einmal im Halbjahr.",
                "Die Erreichbarkeit am Freitagnachmittag ist schwierig.",
                "Der Leitfaden sollte ein Beispiel für eine gute Mitteilung enthalten.",
            ],
        ),
        (hm, ["Gut, dass alles an einem Ort ist.", "Die Fristen sind nicht allen bekannt."]),
    ):
        db.session.add_all(SurveyComment(quarter=quarter, district_id=district, body=text) for text in texts)
    coordinator = people[Role.COORDINATOR]
    surveys.open_round(coordinator, [db.session.get(District, we)], now)
