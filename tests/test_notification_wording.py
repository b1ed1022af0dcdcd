"""Every notification read from its reader's side: subject and first line per kind and recipient role.

One run drives every event that notifies anyone (through the same operations as the pages, reminders
through the CLI), then compares every e-mail in the outbox with the table below, which names, for
each kind of notification and each role it can go to, the exact subject and first line. The in-app
notification shares the subject. No e-mail and no in-app text carries anything about the child,
the family or any free text (PROCESS.md, *Notifications*).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from referral.accounts.models import Role
from referral.cases import services
from referral.cases.process import State
from referral.cases.vocabulary import Urgency
from referral.consultations import services as consult
from referral.consultations.process import ConsultationState as C
from referral.consultations.vocabulary import ContactWay, Recommendation
from referral.extensions import db
from referral.notifications.kinds import BY_ROLE
from referral.notifications.kinds import EventKind as K
from referral.notifications.models import Notification, OutboxMail

from . import factories

INBOX = "district inbox"  # the district's shared address: not a user, gets what the district's staff get
WE, HM = "Wanne-Eickel", "Herne-Mitte"
QUESTION, ANSWER, ADDENDUM = "Rückfrage-Text-8101", "Antwort-Text-8102", "Nachtrag-Text-8103"
TRANSFER_REASON = "Mutter mit Kind ins Frauenhaus gezogen"
MOTHER = "Mechthild Kranichsteiner"

# (kind, recipient role, subject, first line of the e-mail). {R1} a referral of Schule A, dringend, in
# Wanne-Eickel; {R2} one, akut, transferred from Wanne-Eickel to Herne-Mitte; {C1} a teacher's and {C2}
# the school lead's consultation, {C3} one nobody accepted; {since} how long overdue.
TABLE = [
    (
        K.NEW_REFERRAL,
        Role.ASD_WORKER,
        "{R1}: Neue Mitteilung im Eingang – dringend",
        f"Neue Mitteilung im Eingang des ASD {WE}: {{R1}} der Schule A.",
    ),
    (
        K.NEW_REFERRAL,
        Role.ASD_LEAD,
        "{R1}: Neue Mitteilung im Eingang – dringend",
        f"Neue Mitteilung im Eingang des ASD {WE}: {{R1}} der Schule A.",
    ),
    (
        K.NEW_REFERRAL,
        INBOX,
        "{R1}: Neue Mitteilung im Eingang – dringend",
        f"Neue Mitteilung im Eingang des ASD {WE}: {{R1}} der Schule A.",
    ),
    (
        K.NEW_REFERRAL,
        Role.ASD_WORKER,
        "{R2}: Neue Mitteilung im Eingang – akut",
        f"Neue Mitteilung im Eingang des ASD {WE}: {{R2}} der Schule A.",
    ),
    (
        K.NEW_REFERRAL,
        Role.ASD_LEAD,
        "{R2}: Neue Mitteilung im Eingang – akut",
        f"Neue Mitteilung im Eingang des ASD {WE}: {{R2}} der Schule A.",
    ),
    (
        K.NEW_REFERRAL,
        INBOX,
        "{R2}: Neue Mitteilung im Eingang – akut",
        f"Neue Mitteilung im Eingang des ASD {WE}: {{R2}} der Schule A.",
    ),
    # The receiving district received a case; it did not give one away.
    (
        K.NEW_REFERRAL,
        Role.ASD_WORKER,
        f"{{R2}}: Mitteilung aus Bezirk {WE} erhalten – akut",
        f"Der ASD {WE} hat die Mitteilung {{R2}} der Schule A an den ASD {HM} abgegeben (§ 86 SGB VIII); "
        "sie liegt jetzt in Ihrem Eingang, bitte den Eingang bestätigen.",
    ),
    (
        K.NEW_REFERRAL,
        Role.ASD_LEAD,
        f"{{R2}}: Mitteilung aus Bezirk {WE} erhalten – akut",
        f"Der ASD {WE} hat die Mitteilung {{R2}} der Schule A an den ASD {HM} abgegeben (§ 86 SGB VIII); "
        "sie liegt jetzt in Ihrem Eingang, bitte den Eingang bestätigen.",
    ),
    (
        K.NEW_REFERRAL,
        INBOX,
        f"{{R2}}: Mitteilung aus Bezirk {WE} erhalten – akut",
        f"Der ASD {WE} hat die Mitteilung {{R2}} der Schule A an den ASD {HM} abgegeben (§ 86 SGB VIII); "
        "sie liegt jetzt in Ihrem Eingang, bitte den Eingang bestätigen.",
    ),
    # The school lead hears of a submission from the school, not in the ASD's words.
    (
        K.SCHOOL_SUBMISSION,
        Role.SCHOOL_LEAD,
        "{R1}: Mitteilung Ihrer Schule an den ASD übermittelt",
        f"Aus Ihrer Schule (Schule A) wurde die Mitteilung {{R1}} an den ASD {WE} übermittelt.",
    ),
    (
        K.SCHOOL_SUBMISSION,
        Role.SCHOOL_LEAD,
        "{R2}: Mitteilung Ihrer Schule an den ASD übermittelt",
        f"Aus Ihrer Schule (Schule A) wurde die Mitteilung {{R2}} an den ASD {WE} übermittelt.",
    ),
    *[
        (
            K.ACKNOWLEDGED,
            role,
            "{R1}: Eingang vom ASD bestätigt",
            f"Der ASD {WE} hat den Eingang der Mitteilung {{R1}} der Schule A bestätigt.",
        )
        for role in (Role.TEACHER, Role.SCHOOL_LEAD)
    ],
    *[
        (
            K.QUESTION,
            role,
            "{R1}: Rückfrage des ASD",
            f"Der ASD {WE} hat eine Rückfrage zur Mitteilung {{R1}} der Schule A.",
        )
        for role in (Role.TEACHER, Role.SCHOOL_LEAD)
    ],
    *[
        (
            K.FEEDBACK,
            role,
            "{R1}: Rückmeldung des ASD",
            f"Der ASD {WE} hat die Rückmeldung zur Mitteilung {{R1}} der Schule A gegeben (§ 4 Abs. 4 KKG).",
        )
        for role in (Role.TEACHER, Role.SCHOOL_LEAD)
    ],
    # The school learns that and to which district, never why.
    *[
        (
            K.TRANSFER,
            role,
            f"{{R2}}: An den ASD {HM} abgegeben",
            f"Der ASD {WE} hat die Mitteilung {{R2}} der Schule A an den ASD {HM} abgegeben; "
            "dieser ist jetzt für sie zuständig.",
        )
        for role in (Role.TEACHER, Role.SCHOOL_LEAD)
    ],
    (
        K.SCHOOL_REPLY,
        Role.ASD_WORKER,
        "{R1}: Antwort der Schule auf die Rückfrage",
        "Die Schule A hat die Rückfrage zur Mitteilung {R1} beantwortet.",
    ),
    (
        K.SCHOOL_REPLY,
        Role.ASD_WORKER,
        "{R2}: Nachtrag der Schule",
        "Die Schule A hat zur Mitteilung {R2} einen Nachtrag gesendet.",
    ),
    (
        K.SCHOOL_REPLY,
        Role.ASD_LEAD,
        "{R2}: Nachtrag der Schule",
        "Die Schule A hat zur Mitteilung {R2} einen Nachtrag gesendet.",
    ),
    (
        K.OVERDUE,
        Role.ASD_LEAD,
        "Erinnerung {R2}: Eingangsbestätigung überfällig",
        "Erinnerung: Eingangsbestätigung überfällig ({since}) – {R2} der Schule A.",
    ),
    (
        K.OVERDUE,
        Role.ASD_LEAD,
        "Erinnerung {R2}: Rückmeldung an die Schule überfällig",
        "Erinnerung: Rückmeldung an die Schule überfällig ({since}) – {R2} der Schule A.",
    ),
    (
        K.OVERDUE,
        Role.INSOFA,
        "Erinnerung {C3}: Annahme der Fachberatung überfällig",
        "Erinnerung: Annahme der Fachberatung überfällig ({since}) – {C3} der Schule A.",
    ),
    *[
        (
            K.NEW_CONSULTATION,
            Role.INSOFA,
            f"{{{c}}}: Neue Anfrage zur Fachberatung",
            f"Neue Anfrage zur Fachberatung im Pool: {{{c}}} der Schule A.",
        )
        for c in ("C1", "C2", "C3")
    ],
    *[
        (
            K.CONSULTATION_UPDATE,
            role,
            f"{{{c}}}: Ihre Anfrage wurde angenommen",
            f"Eine insoweit erfahrene Fachkraft hat Ihre Anfrage {{{c}}} der Schule A angenommen.",
        )
        for c, role in (("C1", Role.TEACHER), ("C2", Role.SCHOOL_LEAD))
    ],
    (
        K.CONSULTATION_UPDATE,
        Role.TEACHER,
        "{C1}: Termin für Ihre Fachberatung",
        "Für Ihre Fachberatung {C1} der Schule A ist ein Termin vereinbart.",
    ),
    (
        K.CONSULTATION_UPDATE,
        Role.TEACHER,
        "{C1}: Empfehlung zu Ihrer Fachberatung",
        "Die insoweit erfahrene Fachkraft hat zu Ihrer Fachberatung {C1} der Schule A eine Empfehlung gegeben.",
    ),
]
# What a subject must never say to a reader on the other side of the event.
WRONG_SIDE = {
    INBOX: "abgegeben",
    Role.ASD_WORKER: "abgegeben",
    Role.ASD_LEAD: "abgegeben",
    Role.SCHOOL_LEAD: "im Eingang",
    Role.TEACHER: "im Eingang",
}


def drive_every_event(world, runner) -> dict[str, str]:
    """Every event that notifies someone; returns the placeholders' case numbers."""
    day = datetime(2026, 11, 5, 9, 0)
    world.districts["we"].inbox_email = "asd-we@stadt.example"
    world.districts["hm"].inbox_email = "asd-hm@stadt.example"
    db.session.commit()
    r1 = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, urgency=Urgency.URGENT, now=day)
    services.acknowledge(r1, world.asd, now=day + timedelta(hours=1))
    services.take_over(r1, world.asd)
    services.ask(r1, world.asd, QUESTION)
    services.answer(r1, world.teacher, ANSWER)
    factories.record_assessment(r1, world.asd, world.asd_lead)
    services.give_feedback(r1, world.asd, now=day + timedelta(days=2), **factories.feedback_values(world.asd))
    r2 = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, urgency=Urgency.ACUTE, now=day)
    services.transfer(r2, world.asd, world.districts["hm"], TRANSFER_REASON, now=day + timedelta(hours=1))
    services.add_addendum(r2, world.teacher, ADDENDUM)  # not yet assigned: to the whole district
    for referral in (r1, r2):
        referral.persons[0].first_name, referral.persons[0].last_name = MOTHER.split()
    db.session.commit()

    c1 = factories.consultation_in(C.ACCEPTED, world.teacher, world.insofa)
    consult.arrange(c1, world.insofa, at=datetime(2026, 11, 9, 10, 0), way=ContactWay.PHONE)
    consult.answer(c1, world.insofa, recommendation=Recommendation.INFORM_ASD, note="Bitte ASD informieren.")
    c2 = factories.consultation_in(C.ACCEPTED, world.school_lead, world.insofa)
    c3 = factories.consultation_in(C.REQUESTED, world.teacher)
    db.session.commit()
    result = runner.invoke(args=["reminders", "send"])
    assert result.exit_code == 0 and "3 overdue item(s) reminded" in result.output, result.output
    return {"R1": r1.number, "R2": r2.number, "C1": c1.number, "C2": c2.number, "C3": c3.number}


def role_of(world) -> dict[str, object]:
    roles = {"asd-we@stadt.example": INBOX, "asd-hm@stadt.example": INBOX}
    for user in world.users.values():
        [membership] = user.memberships
        roles[user.email] = membership.role
    return roles


def normalised(text: str, numbers: dict[str, str]) -> str:
    for placeholder, number in numbers.items():
        text = text.replace(number, "{" + placeholder + "}")
    return re.sub(r"seit (heute|\d+ Tagen?)", "{since}", text)


def first_line(body: str) -> str:
    lines = body.splitlines()
    assert lines[0] == "Guten Tag," and lines[1] == "", body
    return lines[2]


def test_every_kind_of_notification_reads_right_for_every_role_it_goes_to(world, runner):
    # The table covers every kind each role can receive (a new kind or role must be added to it).
    covered = {(kind, role) for kind, role, _, _ in TABLE}
    assert {(kind, role) for role, kinds in BY_ROLE.items() for kind in kinds} | {(K.NEW_REFERRAL, INBOX)} == covered

    numbers = drive_every_event(world, runner)
    roles = role_of(world)
    mails = db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
    seen = {
        (roles[m.recipient], normalised(m.subject, numbers), normalised(first_line(m.body), numbers)) for m in mails
    }
    expected = {(role, subject, line) for _, role, subject, line in TABLE}
    assert seen - expected == set(), "worded unlike the table (role, subject, first line)"
    assert expected - seen == set(), "in the table but never sent"

    for mail in mails:
        assert WRONG_SIDE.get(roles[mail.recipient], "\0") not in mail.subject, (mail.recipient, mail.subject)

    # In the app each user reads the same headline as in the e-mail subject.
    subjects = {(role, subject) for _, role, subject, _ in TABLE}
    emails = {user.id: user.email for user in world.users.values()}
    for user_id, text in db.session.execute(select(Notification.user_id, Notification.text)):
        role = roles[emails[user_id]]
        text = normalised(text, numbers)
        assert any(text.startswith(subject) and text.endswith("Schule A)") for r, subject in subjects if r == role), (
            role,
            text,
        )


def test_no_notification_carries_child_data_or_free_text(world, runner):
    drive_every_event(world, runner)
    referral = factories.complete_draft(world.teacher)  # the same child data as the referrals above
    secrets = [
        factories.CHILD_FIRST,
        factories.CHILD_LAST,
        referral.child_address,
        referral.child_class + " ",
        "01.03.2018",
        "2018-03-01",
        "Beobachtungstext",
        *MOTHER.split(),
        QUESTION,
        ANSWER,
        ADDENDUM,
        TRANSFER_REASON,
        "Frauenhaus",
        factories.OBSERVATIONS[:20],
        "Reicht das",
        "Bitte ASD informieren",
        "0123 777",
        "Mo–Do 13–15 Uhr",
    ]
    db.session.rollback()  # the draft above was only for its values
    texts = [(m.recipient, m.subject + "\n" + m.body) for m in db.session.scalars(select(OutboxMail))]
    texts += [(f"in-app {n.user_id}", n.text) for n in db.session.scalars(select(Notification))]
    assert len(texts) > 40
    leaks = [(who, secret) for who, text in texts for secret in secrets if secret in text]
    assert not leaks, leaks
