"""Permission matrix: every route × every role × own scope / other school / other district.

One table, ROUTES, says for each (endpoint, method) who may use it; `test_every_route_is_in_the_table`
fails as soon as a route (or a method on a route) exists that the table does not list.

The referral a row is about belongs to school A (district WE), was written by `teacher` and, once it
has one, is assigned to `asd`. The users of the `world` fixture cover each role in the referral's own
scope, in another school of the same district and in another district (see USERS). Expected:

- user listed in `allowed`                          → 200, or 302 to a page other than the login
- user who may read the referral, but not act      → 403
- user who could act, but the referral has moved on → 302 back with a German explanation (REFUSED):
  a submitted referral is no longer edited by its author, an assigned case is worked on by its
  assignee or the lead (an autosave, which the page's script sends, answers 409 with it in JSON)
- user who may not read the referral               → 404, exactly as for an id that does not exist
- route not about one referral, user not allowed   → 403
- anonymous                                        → 302 to /login
A request that is not an allowed change leaves the database as it was; an allowed change is checked
to have happened.
"""

from __future__ import annotations

import enum
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select

from referral.accounts.models import Membership, User
from referral.api.models import ApiClient
from referral.audit.models import AuditEntry
from referral.cases import services
from referral.cases.models import Assessment, Attachment, Feedback, Message, Referral, StateChange
from referral.cases.process import State
from referral.cases.vocabulary import AssessmentResult, SchoolActionKind
from referral.consultations.models import Consultation
from referral.consultations.process import ConsultationState
from referral.extensions import db
from referral.guide.models import GuideVersion
from referral.kernel.settings import Setting
from referral.organisation.models import District, School
from referral.signon.models import SignOnIdentity
from referral.timeutil import utcnow

from . import factories

MISSING_ID = 999_999
# The load balancer's probes answer everyone alike (tests/test_health.py).
EXEMPT_ENDPOINTS = {"static", "bootstrap.static", "security.static", "health.healthz", "health.readyz"}
# The REST API authenticates clients by bearer token, not users by session: its own matrix (every API
# route × scope × own/other district, draft, transferred away; expired, revoked, malformed tokens) is in
# tests/test_api_read.py (test_permission_matrix and the token tests) and tests/test_api_actions.py.
EXEMPT_BLUEPRINTS = {"api"}


# --- Who ------------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
USERS = {  # world user key → role and scope, relative to the referral of `teacher` at school A
    "teacher": "teacher, school A, author",
    "teacher_other": "teacher, school A, not the author",
    "school_lead": "school_lead, school A",
    "teacher_a2": "teacher, other school A2 (same district)",
    "lead_a2": "school_lead, other school A2 (same district)",
    "teacher_b": "teacher, school B in the other district",
    "asd": "asd_worker, district WE, assignee",
    "asd2": "asd_worker, district WE, not the assignee",
    "asd_lead": "asd_lead, district WE",
    "asd_hm": "asd_worker, other district HM",
    "asd_lead_hm": "asd_lead, other district HM",
    "insofa": "insofa, city (accepts the consultation a row is about)",
    "insofa2": "insofa, city, another one of the pool",
    "coordinator": "coordinator, city",
    "admin": "admin, city",
    ANONYMOUS: "not signed in",
}
EVERYONE = frozenset(USERS) - {ANONYMOUS}
SCHOOL_STAFF = frozenset({"teacher", "teacher_other", "school_lead", "teacher_a2", "lead_a2", "teacher_b"})
ASD_STAFF = frozenset({"asd", "asd2", "asd_lead", "asd_hm", "asd_lead_hm"})
AUTHOR = frozenset({"teacher"})
SCHOOL_SIDE = frozenset({"teacher", "school_lead"})  # the author and the lead of the referral's school
ASD_WE = frozenset({"asd", "asd2", "asd_lead"})  # ASD staff of the referral's district
CASE_OWNERS = frozenset({"asd", "asd_lead"})  # the assignee and the district's lead
OTHER_ASD_WE = ASD_WE - CASE_OWNERS  # ASD staff of the district whose colleague has the case
NOBODY: frozenset[str] = frozenset()


INSOFAS = frozenset({"insofa", "insofa2"})


def consultation_readers(state: ConsultationState) -> frozenset[str]:
    """The consultation of `teacher`: its author and school lead; the whole pool while it is open,
    then the InsoFa who accepted."""
    if state is ConsultationState.REQUESTED:
        return SCHOOL_SIDE | INSOFAS
    if state is ConsultationState.CANCELLED:
        return SCHOOL_SIDE
    return SCHOOL_SIDE | {"insofa"}


def readers(state: State) -> frozenset[str]:
    """Who may read the referral in `state`: drafts only their author, then both sides of it."""
    return AUTHOR if state is State.DRAFT else SCHOOL_SIDE | ASD_WE


# --- Outcomes -------------------------------------------------------------------------------


class Outcome(enum.Enum):
    ALLOW = "allowed (200, or 302 not to the login)"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    LOGIN = "302 to /login"
    REFUSED = "302 with an explanation, nothing changed"


def outcome_of(response) -> Outcome | str:
    if response.status_code == 200:
        return Outcome.ALLOW
    if response.status_code == 302:
        return Outcome.LOGIN if urlsplit(response.location).path == "/login" else Outcome.ALLOW
    known = {403: Outcome.FORBIDDEN, 404: Outcome.NOT_FOUND}
    return known.get(response.status_code, f"HTTP {response.status_code} {response.location or ''}".strip())


# --- Form data for the POSTs ----------------------------------------------------------------

ANSWER, ADDENDUM, QUESTION = "Antwort der Schule", "Nachtrag der Schule", "Frage des ASD"


def draft_form(world) -> dict:
    data = {"save": "Entwurf speichern", "persons-0-kind": "mother", "child_first_name": "Geändert"}
    for i, kind in enumerate(SchoolActionKind):
        data[f"school_actions-{i}-kind"] = kind.value
    return data


def upload_form(world) -> dict:
    return {"file": (io.BytesIO(b"%PDF-1.4 upload"), "b.pdf")}


def assessment_form(world) -> dict:
    return {
        "result": AssessmentResult.LATENT.value,
        "specialists": [world.asd.id, world.asd2.id],
        "school_involved": "yes",
        "measures": ["help_offer"],
    }


def feedback_form(world) -> dict:
    return {
        "indications_confirmed": "yes",
        "asd_became_active": "yes",
        "asd_still_active": "no",
        "contact_name": "Anna ASD",
        "contact_phone": "0234 999",
        "affected_informed": "yes",
        "affected_informed_on": (date.today() - timedelta(days=2)).isoformat(),
        "confirm": "y",
    }


def recorded(action: str) -> Callable:
    """The effect of an admin change: it happened and was recorded (who, what) in the same transaction."""

    def effect(referral, user, world) -> bool:
        return (
            db.session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.actor_id == user.id)
            )
            == 1
        )

    return effect


def invite_form(world) -> dict:
    return {
        "email": "neu@schule-a.example",
        "name": "Nora Neu",
        "role": "teacher",
        "scope": f"school:{world.schools['a'].id}",
    }


def district_form(world) -> dict:
    return {"name": "Herne-Mitte Neu", "code": "HMN", "duty_phone": "02323 999"}


def school_form(world) -> dict:
    return {"name": "Schule B neu", "district_id": world.districts["hm"].id}


def deadlines_form(world) -> dict:
    return {
        "ack_acute_hours": 3,
        "ack_working_days": 1,
        "feedback_working_days": 12,
        "consultation_accept_working_days": 2,
        "retention_days": 180,
        "draft_retention_days": 90,
    }


ADMIN = frozenset({"admin"})
# Who sees school B's and district HM's directory pages: its people, the other district's ASD, the city.
SEE_B = frozenset({"teacher_b", "asd_hm", "asd_lead_hm", "coordinator", "admin"})


def consultation_form(world) -> dict:
    return {
        "child_age": "8",
        "class_level": "2",
        "observations": "Kommt ohne Frühstück.",
        "question": "Was tun?",
        "urgency": "normal",
        "contact_way": "phone",
        "contact_phone": "0234 5678",
        "pseudonymised": "y",
    }


def appointment_form(world) -> dict:
    from referral.timeutil import to_local, utcnow

    return {"at": (to_local(utcnow()) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"), "way": "phone"}


def contact_form(world) -> dict:
    return {"name": "Bea Beraterin", "phone": "02323 1234"}


def guide_form(world) -> dict:
    from referral.guide.forms import field_name
    from referral.guide.sections import KEYS

    return {"base": "", "note": "vereinbart im Seminar", **{field_name(key): f"Text {key}" for key in KEYS}}


# --- The table ------------------------------------------------------------------------------

Effect = Callable[[Referral | None, object, object], bool]  # (referral after the request, user, world)


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    allowed: frozenset[str]
    state: State | None = None  # state of the referral the route is about; None: not about one referral
    setup: tuple[str, ...] = ()  # "attachment", "assessment": added to the referral before the request
    data: Callable[[object], dict] | None = None
    effect: Effect | None = None  # holds once an allowed request took effect
    anonymous: Outcome = Outcome.LOGIN
    others: Outcome | None = None  # outcome for users not allowed, if not derived from scope
    refused: frozenset[str] = frozenset()  # users sent back with an explanation instead
    not_found: frozenset[str] = frozenset()  # users for whom the object is out of scope (404)
    consultation: ConsultationState | None = None  # state of the consultation the route is about

    @property
    def id(self) -> str:
        about = self.state or self.consultation
        return f"{self.endpoint}:{self.method}" + (f":{about.value}" if about else "")

    def expected(self, key: str) -> Outcome:
        if key == ANONYMOUS:
            return self.anonymous
        if key in self.allowed:
            return Outcome.ALLOW
        if key in self.refused:
            return Outcome.REFUSED
        if key in self.not_found:
            return Outcome.NOT_FOUND
        if self.others is not None:
            return self.others
        if self.consultation is not None:
            if key in consultation_readers(self.consultation):
                return Outcome.FORBIDDEN
            # An InsoFa of the pool who had the request open is told where it went (on the list).
            return Outcome.REFUSED if key in INSOFAS else Outcome.NOT_FOUND
        if self.state is None:
            return Outcome.FORBIDDEN
        return Outcome.FORBIDDEN if key in readers(self.state) else Outcome.NOT_FOUND


ROUTES = [
    # Start pages and lists
    Route("home.index", "GET", EVERYONE),
    Route("home.school_start", "GET", SCHOOL_STAFF),
    Route("cases.my_referrals", "GET", SCHOOL_STAFF),
    Route("cases.new", "GET", SCHOOL_STAFF),
    Route(
        "cases.new",
        "POST",
        SCHOOL_STAFF,
        data=draft_form,
        effect=lambda r, user, world: (
            db.session.scalar(
                select(func.count())
                .select_from(Referral)
                .where(Referral.author_id == user.id, Referral.state == State.DRAFT)
            )
            == 1
        ),
    ),
    Route(
        "cases.autosave_new",
        "POST",
        SCHOOL_STAFF,
        data=draft_form,
        effect=lambda r, user, world: (
            db.session.scalar(
                select(func.count())
                .select_from(Referral)
                .where(Referral.author_id == user.id, Referral.state == State.DRAFT)
            )
            == 1
        ),
    ),
    Route("cases.inbox", "GET", ASD_STAFF),
    Route("coordination.referrals", "GET", frozenset({"coordinator"})),
    # Evaluation: the coordinator's figures (export and print recorded); each ASD lead's own district
    Route("evaluation.index", "GET", frozenset({"coordinator"})),
    Route("evaluation.printable", "GET", frozenset({"coordinator"}), effect=recorded("evaluation.print")),
    Route("evaluation.export", "GET", frozenset({"coordinator"}), effect=recorded("export.evaluation")),
    Route("evaluation.district_overview", "GET", frozenset({"asd_lead", "asd_lead_hm"})),
    # Administration: only the admin; another user's account, districts and schools of the other district
    Route("administration.overview", "GET", ADMIN),
    Route("administration.users", "GET", ADMIN),
    Route("administration.users_csv", "GET", ADMIN, effect=recorded("export.users")),
    Route("administration.invite", "GET", ADMIN),
    Route("administration.invite", "POST", ADMIN, data=invite_form, effect=recorded("user.invite")),
    Route("administration.user", "GET", ADMIN),
    Route(
        "administration.user",
        "POST",
        ADMIN,
        data=lambda w: {"name": "Tina Umbenannt", "phone": ""},
        effect=recorded("user.update"),
    ),
    Route(
        "administration.add_membership",
        "POST",
        ADMIN,
        data=lambda w: {"role": "school_lead", "scope": f"school:{w.schools['a'].id}"},
        effect=recorded("membership.add"),
    ),
    Route("administration.remove_membership", "POST", ADMIN, effect=recorded("membership.remove")),
    Route("administration.deactivate", "POST", ADMIN, effect=recorded("user.deactivate")),
    Route("administration.reactivate", "POST", ADMIN, effect=recorded("user.reactivate")),
    Route("administration.reset_two_factor", "POST", ADMIN, effect=recorded("user.reset_two_factor")),
    Route("administration.end_sessions", "POST", ADMIN, effect=recorded("user.end_sessions")),
    Route("administration.invite_again", "POST", ADMIN),  # the account has a password: told, nothing sent
    Route("administration.districts", "GET", ADMIN),
    Route("administration.district", "GET", ADMIN),
    Route("administration.district", "POST", ADMIN, data=district_form, effect=recorded("district.update")),
    Route("administration.schools", "GET", ADMIN),
    Route("administration.school", "GET", ADMIN),
    Route("administration.school", "POST", ADMIN, data=school_form, effect=recorded("school.update")),
    Route("administration.deadlines", "GET", ADMIN),
    Route("administration.deadlines", "POST", ADMIN, data=deadlines_form, effect=recorded("settings.update")),
    Route("administration.changes", "GET", ADMIN),
    # API clients: the admin's; the client a row is about is made in the set-up
    Route("administration.api_clients", "GET", ADMIN),
    Route("administration.new_api_client", "GET", ADMIN),
    Route(
        "administration.new_api_client",
        "POST",
        ADMIN,
        data=lambda w: {"name": "Fachsoftware", "districts": [w.districts["we"].id], "scopes": ["referrals:read"]},
        effect=recorded("api_client.create"),
    ),
    Route("administration.api_client", "GET", ADMIN, setup=("api_client",)),
    Route(
        "administration.update_api_client",
        "POST",
        ADMIN,
        setup=("api_client",),
        data=lambda w: {"districts": [w.districts["hm"].id], "scopes": ["referrals:read"]},
        effect=recorded("api_client.update"),
    ),
    Route(
        "administration.rotate_api_client", "POST", ADMIN, setup=("api_client",), effect=recorded("api_client.rotate")
    ),
    Route(
        "administration.revoke_api_client", "POST", ADMIN, setup=("api_client",), effect=recorded("api_client.revoke")
    ),
    Route("administration.jobs", "GET", ADMIN),
    # The audit log: the coordinator's search, export and check; each referral's access history
    # The guide (issue 17): everyone with a role reads it, the coordinator edits it.
    Route("guide.index", "GET", EVERYONE),
    Route("guide.versions", "GET", EVERYONE),
    Route("guide.old_version", "GET", EVERYONE, setup=("guide_version",)),
    Route("guide.edit", "GET", frozenset({"coordinator"})),
    Route("guide.edit", "POST", frozenset({"coordinator"}), data=guide_form, effect=recorded("guide.publish")),
    Route("audit.search", "GET", frozenset({"coordinator"})),
    Route("audit.export", "GET", frozenset({"coordinator"}), effect=recorded("export.audit")),
    Route("audit.verify", "POST", frozenset({"coordinator"}), effect=recorded("audit.verify")),
    *[
        Route(
            "audit.access_history",
            "GET",
            frozenset({"asd_lead", "coordinator"}) if state is not State.DRAFT else NOBODY,
            state=state,
            others=Outcome.NOT_FOUND,
        )
        for state in (State.DRAFT, State.SUBMITTED, State.CLOSED)
    ],
    # Contact directory (school B, district HM, the pool): read by scope, maintained by the admin
    Route("directory.index", "GET", EVERYONE),
    Route("directory.pool", "GET", EVERYONE),
    Route("directory.school", "GET", SEE_B, others=Outcome.NOT_FOUND),
    Route("directory.district", "GET", SEE_B, others=Outcome.NOT_FOUND),
    Route("directory.new", "GET", ADMIN),
    Route("directory.new", "POST", ADMIN, data=contact_form, effect=recorded("contact.create")),
    Route("directory.edit", "GET", ADMIN, setup=("contact",), not_found=EVERYONE - SEE_B),
    Route(
        "directory.edit",
        "POST",
        ADMIN,
        setup=("contact",),
        not_found=EVERYONE - SEE_B,
        data=contact_form,
        effect=recorded("contact.update"),
    ),
    Route(
        "directory.delete",
        "POST",
        ADMIN,
        setup=("contact",),
        not_found=EVERYONE - SEE_B,
        effect=recorded("contact.delete"),
    ),
    # Notifications: one's own list and e-mail choices; an entry only for its addressee
    Route("notifications.index", "GET", EVERYONE),
    Route("notifications.email_choices", "GET", EVERYONE),
    Route("notifications.email_choices", "POST", EVERYONE),
    Route("notifications.open_", "GET", AUTHOR, setup=("notification",), others=Outcome.NOT_FOUND),
    # Own account: invitation links (a wrong token is 404 for everyone), reset and change of password
    Route("accounts.accept_invitation", "GET", NOBODY, others=Outcome.NOT_FOUND, anonymous=Outcome.NOT_FOUND),
    Route("accounts.accept_invitation", "POST", NOBODY, others=Outcome.NOT_FOUND, anonymous=Outcome.NOT_FOUND),
    Route("security.forgot_password", "GET", EVERYONE, anonymous=Outcome.ALLOW),
    Route("security.forgot_password", "POST", EVERYONE, anonymous=Outcome.ALLOW),  # empty form: shown again
    Route("security.reset_password", "GET", EVERYONE, anonymous=Outcome.ALLOW),  # wrong token: sent to ask again
    Route("security.reset_password", "POST", EVERYONE, anonymous=Outcome.ALLOW),
    Route("security.change_password", "GET", EVERYONE),
    Route("security.change_password", "POST", EVERYONE),  # empty form: shown again
    # Prometheus metrics: not for users at all; without METRICS_TOKEN/-NETWORKS (as here) they do not exist
    # (test_observability.py: with them)
    Route("observability.metrics", "GET", NOBODY, others=Outcome.NOT_FOUND, anonymous=Outcome.NOT_FOUND),
    # Single sign-on: a provider that is not configured does not exist for anyone (here none is; with a
    # real provider: tests/test_signon.py)
    Route("signon.start", "GET", NOBODY, others=Outcome.NOT_FOUND, anonymous=Outcome.NOT_FOUND),
    Route("signon.callback", "GET", NOBODY, others=Outcome.NOT_FOUND, anonymous=Outcome.NOT_FOUND),
    Route("signon.backchannel_logout", "POST", NOBODY, others=Outcome.NOT_FOUND, anonymous=Outcome.NOT_FOUND),
    # Linking an account to a provider identity, and unlinking it: the admin's
    Route(
        "administration.link_sign_on",
        "POST",
        ADMIN,
        setup=("sign_on",),
        data=lambda w: {"provider": "stadt", "subject": "kennung-neu"},
        effect=recorded("user.link_sign_on"),
    ),
    Route(
        "administration.unlink_sign_on",
        "POST",
        ADMIN,
        setup=("sign_on", "identity"),
        effect=recorded("user.unlink_sign_on"),
    ),
    # The webhook of an API client (the case software): the admin's
    Route(
        "administration.api_client_webhook",
        "POST",
        ADMIN,
        setup=("api_client",),
        data=lambda w: {"url": "https://fachsoftware.stadt.example/hooks"},
        effect=recorded("api_client.webhook"),
    ),
    # Login and logout (Flask-Security)
    Route("security.login", "GET", EVERYONE, anonymous=Outcome.ALLOW),
    Route("security.login", "POST", EVERYONE, anonymous=Outcome.ALLOW),  # empty form: shown again
    Route("security.verify", "GET", EVERYONE),
    Route("security.verify", "POST", EVERYONE),  # empty form: shown again
    Route("security.logout", "POST", NOBODY, others=Outcome.LOGIN),  # everyone lands on the login page
    # Two-factor authentication (Flask-Security): set-up and recovery codes ask signed-in users to
    # confirm their password first; the steps of a pending login send everyone else to the login.
    Route("security.two_factor_setup", "GET", EVERYONE),
    Route("security.two_factor_setup", "POST", EVERYONE),
    Route("security.two_factor_setup_validate", "POST", EVERYONE),
    Route("security.two_factor_token_validation", "GET", NOBODY, others=Outcome.LOGIN),
    Route("security.two_factor_token_validation", "POST", NOBODY, others=Outcome.LOGIN),
    Route("security.tf_select", "GET", NOBODY, others=Outcome.LOGIN),
    Route("security.tf_select", "POST", NOBODY, others=Outcome.LOGIN),
    Route("security.two_factor_rescue", "GET", EVERYONE),
    Route("security.two_factor_rescue", "POST", EVERYONE),
    Route("security.mf_recovery", "GET", EVERYONE),
    Route("security.mf_recovery", "POST", EVERYONE),
    Route("security.mf_recovery_codes", "GET", EVERYONE),
    Route("security.mf_recovery_codes", "POST", EVERYONE),
    # Fachberatung: the school side asks; the pool sees open requests; the InsoFa who accepted advises
    Route("consultations.index", "GET", SCHOOL_STAFF | INSOFAS),
    Route("consultations.new", "GET", SCHOOL_STAFF),
    Route(
        "consultations.new",
        "POST",
        SCHOOL_STAFF,
        data=consultation_form,
        effect=lambda c, user, world: (
            db.session.scalar(select(func.count()).select_from(Consultation).where(Consultation.author_id == user.id))
            == 1
        ),
    ),
    *[
        Route("consultations.show", "GET", consultation_readers(state), consultation=state)
        for state in ConsultationState
    ],
    Route(
        "consultations.cancel",
        "POST",
        SCHOOL_SIDE,
        consultation=ConsultationState.REQUESTED,
        effect=lambda c, user, world: c.state is ConsultationState.CANCELLED,
    ),
    Route("consultations.cancel", "POST", NOBODY, refused=SCHOOL_SIDE, consultation=ConsultationState.ACCEPTED),
    Route(
        "consultations.accept",
        "POST",
        INSOFAS,
        consultation=ConsultationState.REQUESTED,
        effect=lambda c, user, world: c.state is ConsultationState.ACCEPTED and c.insofa_id == user.id,
    ),
    Route(
        "consultations.accept", "POST", NOBODY, refused=frozenset({"insofa"}), consultation=ConsultationState.ACCEPTED
    ),
    Route(
        "consultations.appointment",
        "POST",
        frozenset({"insofa"}),
        consultation=ConsultationState.ACCEPTED,
        data=appointment_form,
        effect=lambda c, user, world: c.appointment_at is not None,
    ),
    Route("consultations.appointment", "POST", NOBODY, consultation=ConsultationState.REQUESTED, data=appointment_form),
    Route(
        "consultations.answer",
        "POST",
        frozenset({"insofa"}),
        consultation=ConsultationState.ACCEPTED,
        data=lambda w: {"recommendation": "talk_to_parents"},
        effect=lambda c, user, world: c.state is ConsultationState.ANSWERED,
    ),
    Route(
        "consultations.answer",
        "POST",
        NOBODY,
        refused=frozenset({"insofa"}),
        consultation=ConsultationState.ANSWERED,
        data=lambda w: {"recommendation": "talk_to_parents"},
    ),
    Route(
        "consultations.start_referral",
        "POST",
        SCHOOL_SIDE,
        consultation=ConsultationState.ANSWERED,
        effect=lambda c, user, world: (
            db.session.scalar(select(Referral.author_id).where(Referral.consultation_id == c.id)) == user.id
        ),
    ),
    Route(
        "consultations.start_referral", "POST", NOBODY, refused=SCHOOL_SIDE, consultation=ConsultationState.REQUESTED
    ),
    # Reading a referral, in every state
    *[Route("cases.show", "GET", readers(state), state=state) for state in State],
    Route("cases.download", "GET", readers(State.DRAFT), state=State.DRAFT, setup=("attachment",)),
    # The PDF for one's own files: whoever may read the submitted referral; a draft has none.
    Route("cases.pdf", "GET", NOBODY, state=State.DRAFT, others=Outcome.NOT_FOUND),
    Route("cases.pdf", "GET", readers(State.SUBMITTED), state=State.SUBMITTED),
    Route("cases.pdf", "GET", readers(State.CLOSED), state=State.CLOSED),
    Route("cases.download", "GET", readers(State.SUBMITTED), state=State.SUBMITTED, setup=("attachment",)),
    # Drafts: only their author
    Route("cases.edit", "GET", AUTHOR, state=State.DRAFT),
    Route(
        "cases.edit",
        "POST",
        AUTHOR,
        state=State.DRAFT,
        data=draft_form,
        effect=lambda r, user, world: r.child_first_name == "Geändert" and r.state is State.DRAFT,
    ),
    Route("cases.edit", "POST", NOBODY, state=State.SUBMITTED, data=draft_form, refused=AUTHOR),  # submitted: frozen
    Route(
        "cases.autosave",
        "POST",
        AUTHOR,
        state=State.DRAFT,
        data=draft_form,
        effect=lambda r, user, world: r.child_first_name == "Geändert" and r.state is State.DRAFT,
    ),
    Route("cases.autosave", "POST", NOBODY, state=State.SUBMITTED, data=draft_form, refused=AUTHOR),
    Route("cases.delete", "GET", AUTHOR, state=State.DRAFT),  # the confirmation page
    Route("cases.delete", "GET", NOBODY, state=State.SUBMITTED, refused=AUTHOR),
    Route(
        "cases.delete",
        "POST",
        AUTHOR,
        state=State.DRAFT,
        data=lambda w: {"confirmed": "yes"},
        effect=lambda r, user, world: r is None,
    ),
    Route("cases.delete", "POST", NOBODY, state=State.SUBMITTED, refused=AUTHOR),  # submitted: cannot be deleted
    # Drafts take their attachments with the form (cases.edit); this route is for submitted referrals.
    Route("cases.upload", "POST", NOBODY, state=State.DRAFT, data=upload_form, refused=AUTHOR),
    Route("cases.delete_attachment", "GET", AUTHOR, state=State.DRAFT, setup=("attachment",)),  # confirmation
    Route(
        "cases.delete_attachment",
        "POST",
        AUTHOR,
        state=State.DRAFT,
        setup=("attachment",),
        data=lambda w: {"confirmed": "yes"},
        effect=lambda r, user, world: not r.attachments,
    ),
    Route("cases.delete_attachment", "POST", NOBODY, state=State.SUBMITTED, setup=("attachment",), refused=AUTHOR),
    # School side of a submitted referral: its author and the school lead
    Route(
        "cases.upload",
        "POST",
        SCHOOL_SIDE,
        state=State.SUBMITTED,
        data=upload_form,
        effect=lambda r, user, world: len(r.attachments) == 1,
    ),
    Route(
        "cases.addendum",
        "POST",
        SCHOOL_SIDE,
        state=State.SUBMITTED,
        data=lambda w: {"addendum-body": ADDENDUM},
        effect=lambda r, user, world: [m.body for m in r.messages] == [ADDENDUM] and r.state is State.SUBMITTED,
    ),
    Route(
        "cases.answer",
        "POST",
        SCHOOL_SIDE,
        state=State.INFO_REQUESTED,
        data=lambda w: {"answer-body": ANSWER},
        effect=lambda r, user, world: r.state is State.IN_ASSESSMENT and r.messages[-1].body == ANSWER,
    ),
    # ASD of the district
    Route(
        "cases.acknowledge",
        "POST",
        ASD_WE,
        state=State.SUBMITTED,
        effect=lambda r, user, world: r.state is State.ACKNOWLEDGED and r.acknowledged_by_id == user.id,
    ),
    Route(
        "cases.transfer",
        "POST",
        ASD_WE,
        state=State.SUBMITTED,
        data=lambda w: {"to_district": w.districts["hm"].id, "reason": "Eltern wohnen in Herne-Mitte"},
        effect=lambda r, user, world: r.district_id == world.districts["hm"].id and r.state is State.SUBMITTED,
    ),
    # An assigned case is passed on only by its assignee or the lead.
    Route(
        "cases.transfer",
        "POST",
        CASE_OWNERS,
        refused=OTHER_ASD_WE,
        state=State.IN_ASSESSMENT,
        data=lambda w: {"to_district": w.districts["hm"].id, "reason": "Eltern wohnen in Herne-Mitte"},
        effect=lambda r, user, world: r.district_id == world.districts["hm"].id and r.assignee_id is None,
    ),
    Route(
        "cases.take_over",
        "POST",
        ASD_WE,
        state=State.ACKNOWLEDGED,
        effect=lambda r, user, world: r.state is State.IN_ASSESSMENT and r.assignee_id == user.id,
    ),
    # Assigning: only the district's lead
    Route(
        "cases.assign",
        "POST",
        frozenset({"asd_lead"}),
        state=State.ACKNOWLEDGED,
        data=lambda w: {"assignee": w.asd2.id},
        effect=lambda r, user, world: r.state is State.IN_ASSESSMENT and r.assignee_id == world.asd2.id,
    ),
    Route(
        "cases.assign",
        "POST",
        frozenset({"asd_lead"}),
        state=State.IN_ASSESSMENT,  # reassign
        data=lambda w: {"assignee": w.asd2.id},
        effect=lambda r, user, world: r.state is State.IN_ASSESSMENT and r.assignee_id == world.asd2.id,
    ),
    # The case itself: only the assignee and the district's lead
    Route(
        "cases.ask",
        "POST",
        CASE_OWNERS,
        refused=OTHER_ASD_WE,
        state=State.IN_ASSESSMENT,
        data=lambda w: {"ask-body": QUESTION},
        effect=lambda r, user, world: r.state is State.INFO_REQUESTED and r.messages[-1].body == QUESTION,
    ),
    Route("cases.assessment", "GET", CASE_OWNERS, refused=OTHER_ASD_WE, state=State.IN_ASSESSMENT),
    Route(
        "cases.assessment",
        "POST",
        CASE_OWNERS,
        refused=OTHER_ASD_WE,
        state=State.IN_ASSESSMENT,
        data=assessment_form,
        effect=lambda r, user, world: r.assessment is not None and r.assessment.result is AssessmentResult.LATENT,
    ),
    Route("cases.feedback", "GET", CASE_OWNERS, refused=OTHER_ASD_WE, state=State.IN_ASSESSMENT, setup=("assessment",)),
    Route(
        "cases.feedback",
        "POST",
        CASE_OWNERS,
        refused=OTHER_ASD_WE,
        state=State.IN_ASSESSMENT,
        setup=("assessment",),
        data=feedback_form,
        effect=lambda r, user, world: r.state is State.FEEDBACK_GIVEN and r.feedback is not None,
    ),
    Route(
        "cases.close",
        "POST",
        CASE_OWNERS,
        refused=OTHER_ASD_WE,
        state=State.FEEDBACK_GIVEN,
        effect=lambda r, user, world: r.state is State.CLOSED,
    ),
]


def survey_done(user, **where) -> bool:
    from referral.surveys.models import SurveyDone

    return db.session.scalar(select(func.count()).select_from(SurveyDone).filter_by(user_id=user.id, **where)) == 1


def survey_answers(world) -> dict:
    return {"choice": "answer", "a1": "4", "a2": "5"}


# Surveys (issue 17): after the feedback its author and school lead, after closing also the assignee,
# each once; the quarterly round (district WE) its school and ASD staff; rounds and free text the coordinator's.
WE_STAFF = frozenset({"teacher", "teacher_other", "school_lead", "teacher_a2", "lead_a2", "asd", "asd2", "asd_lead"})
OUTSIDE_THE_ROUND = frozenset({"teacher_b", "asd_hm", "asd_lead_hm"})
ROUTES += [
    Route("surveys.referral_survey", "GET", NOBODY, state=State.SUBMITTED, setup=("survey",)),
    *[
        route
        for state, invited in ((State.FEEDBACK_GIVEN, SCHOOL_SIDE), (State.CLOSED, SCHOOL_SIDE | {"asd"}))
        for route in (
            Route("surveys.referral_survey", "GET", invited, state=state, setup=("survey",)),
            Route(
                "surveys.referral_survey",
                "POST",
                invited,
                state=state,
                setup=("survey",),
                data=survey_answers,
                effect=lambda r, user, world: survey_done(user, referral_id=r.id),
            ),
        )
    ],
    Route("surveys.quarterly", "GET", WE_STAFF, setup=("round",), not_found=OUTSIDE_THE_ROUND),
    Route(
        "surveys.quarterly",
        "POST",
        WE_STAFF,
        setup=("round",),
        not_found=OUTSIDE_THE_ROUND,
        data=survey_answers,
        effect=lambda r, user, world: survey_done(user, referral_id=None),
    ),
    Route("surveys.rounds", "GET", frozenset({"coordinator"})),
    Route(
        "surveys.rounds",
        "POST",
        frozenset({"coordinator"}),
        data=lambda w: {"districts": [w.districts["we"].id]},
        effect=recorded("survey.open_round"),
    ),
    Route(
        "surveys.comments", "GET", frozenset({"coordinator"}), setup=("round",), effect=recorded("survey.read_comments")
    ),
]


def test_every_route_is_in_the_table(app):
    served = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in EXEMPT_ENDPOINTS and rule.endpoint.split(".")[0] not in EXEMPT_BLUEPRINTS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    listed = {(route.endpoint, route.method) for route in ROUTES}
    assert not served - listed, f"routes without a row in ROUTES: {sorted(served - listed)}"
    assert not listed - served, f"rows in ROUTES for routes that do not exist: {sorted(listed - served)}"


def test_table_rows_are_unique():
    ids = [route.id for route in ROUTES]
    assert len(ids) == len(set(ids)), f"duplicate rows: {sorted({i for i in ids if ids.count(i) > 1})}"


# --- Running one row ------------------------------------------------------------------------


@dataclass
class Target:
    referral_id: int | None = None
    attachment_id: int | None = None
    contact_id: int | None = None
    notification_id: int | None = None
    consultation_id: int | None = None
    identity_id: int | None = None
    api_client_id: int | None = None
    round_id: int | None = None


def build_target(world, route: Route) -> Target:
    if "api_client" in route.setup:
        from referral.accounts.operations import Actor
        from referral.api import clients

        client, _ = clients.create(Actor.operator(), "Fachsoftware", [world.districts["we"]], ["referrals:read"])
        db.session.commit()
        return Target(api_client_id=client.id)
    if "sign_on" in route.setup:
        from flask import current_app

        from referral.signon.models import SignOnIdentity
        from referral.signon.settings import Provider

        provider = Provider("stadt", "https://login.stadt.example", "rp", "geheim", "Stadt", frozenset(), None)
        current_app.config["OIDC_PROVIDERS"] = {"stadt": provider}  # put back after the test (app fixture)
        if "identity" not in route.setup:
            return Target()
        identity = SignOnIdentity(user=world.teacher, issuer=provider.issuer, subject="kennung-alt", linked_by="admin")
        db.session.add(identity)
        db.session.commit()
        return Target(identity_id=identity.id)
    if "notification" in route.setup:
        from referral.notifications.models import Notification

        entry = Notification(user_id=world.teacher.id, text="WE-2026-0001: Rückmeldung des ASD")
        db.session.add(entry)
        db.session.commit()
        return Target(notification_id=entry.id)
    if "guide_version" in route.setup:
        from referral.guide import operations

        operations.publish(world.coordinator, None, "Grundfassung", {})
        db.session.commit()
        return Target()
    if "contact" in route.setup:
        from referral.directory.models import Contact, ContactKind

        contact = Contact(kind=ContactKind.SCHOOL_SOCIAL_WORK, school=world.schools["b"], name="Sina Sozial")
        db.session.add(contact)
        db.session.commit()
        return Target(contact_id=contact.id)
    if "round" in route.setup:
        from referral.surveys.models import SurveyRound
        from referral.surveys.services import quarter_of

        quarter = quarter_of(utcnow())
        found = db.session.scalar(select(SurveyRound).where(SurveyRound.quarter == quarter))
        if found is None:
            found = SurveyRound(quarter=quarter, districts=[world.districts["we"]])
            db.session.add(found)
            db.session.commit()
        return Target(round_id=found.id)
    if route.consultation is not None:
        return Target(consultation_id=factories.consultation_in(route.consultation, world.teacher, world.insofa).id)
    if route.state is None:
        return Target()
    # A survey is offered about referrals of the last months only: this one's steps were days ago.
    recent = {"now": utcnow() - timedelta(days=5)} if "survey" in route.setup else {}
    referral = factories.referral_in(route.state, world.teacher, world.asd, lead=world.asd_lead, **recent)
    target = Target(referral.id)
    if "attachment" in route.setup:
        target.attachment_id = services.add_attachment(referral, world.teacher, "a.pdf", b"%PDF-1.4 test").id
    if "assessment" in route.setup:
        factories.record_assessment(referral, world.asd, world.asd_lead)
    db.session.commit()
    return target


def url(app, route: Route, target: Target, referral_id: int | None = None) -> str:
    # Where a route has a "new" and an "edit" rule, the edit rule (with an id) is the one tested.
    rule = max(
        (r for r in app.url_map.iter_rules() if r.endpoint == route.endpoint and route.method in r.methods),
        key=lambda r: len(r.arguments),
    )
    world_teacher = db.session.scalar(select(User).where(User.email == "teacher@test.example"))
    values = {
        "referral_id": referral_id or target.referral_id,
        "attachment_id": target.attachment_id,
        "token": "no-such-token",
        # Admin routes act on another user's account and on the other district's records.
        "user_id": world_teacher.id if world_teacher else None,
        "membership_id": world_teacher.memberships[0].id if world_teacher and world_teacher.memberships else MISSING_ID,
        "district_id": db.session.scalar(select(District.id).where(District.code == "HM")),
        "school_id": db.session.scalar(select(School.id).where(School.name == "Schule B")),
        "contact_id": target.contact_id,
        "kind": "school_social_work",
        "notification_id": target.notification_id,
        "consultation_id": (MISSING_ID if referral_id else target.consultation_id),
        "name": "unbekannt",
        "identity_id": target.identity_id,
        "client_id": target.api_client_id,
        "api_client_id": target.api_client_id,
        "number": 1,  # the guide's version published by the set-up "guide_version"
        "round_id": target.round_id,
    }
    path = url_for(route.endpoint, _external=False, **{k: v for k, v in values.items() if k in rule.arguments})
    if route.endpoint == "directory.new":  # an entry for school B
        path += f"?school={values['school_id']}"
    return path


def reload_target(target: Target):
    if target.consultation_id is not None:
        db.session.expire_all()
        return db.session.get(Consultation, target.consultation_id)
    return reload(target.referral_id)


def consultation_snapshot(consultation_id: int) -> tuple:
    row = db.session.execute(
        select(
            select(func.count()).select_from(Consultation).scalar_subquery(),
            select(func.count()).select_from(Referral).scalar_subquery(),
            Consultation.state,
            Consultation.version,
            Consultation.insofa_id,
            Consultation.appointment_at,
        ).where(Consultation.id == consultation_id)
    ).one_or_none()
    return tuple(row) if row else ("deleted",)


def reload(referral_id: int | None) -> Referral | None:
    db.session.expire_all()
    return db.session.get(Referral, referral_id) if referral_id else None


def snapshot(referral_id: int | None) -> tuple:
    """What a request that is not allowed must leave as it was, read in one query."""

    def rows_of(model):
        return select(func.count()).select_from(model).where(model.referral_id == referral_id).scalar_subquery()

    total = select(func.count()).select_from(Referral).scalar_subquery()
    if referral_id is None:
        # Routes not about one referral: accounts, districts, schools, settings and the record of changes.
        counts = [
            select(func.count()).select_from(m).scalar_subquery()
            for m in (
                Referral,
                Consultation,
                User,
                Membership,
                District,
                School,
                Setting,
                SignOnIdentity,
                ApiClient,
                GuideVersion,
            )
        ]
        # A forbidden rotation, revocation or edit of an API client changes its row.
        counts.append(
            select(func.count())
            .select_from(ApiClient)
            .where(ApiClient.revoked_at.is_not(None) | ApiClient.previous_secret_hash.is_not(None))
            .scalar_subquery()
        )
        accounts = select(
            func.group_concat(User.name + User.fs_uniquifier + func.cast(User.active, db.String))
            if db.engine.dialect.name == "sqlite"
            else func.string_agg(User.name + User.fs_uniquifier + func.cast(User.active, db.String), ",")
        ).scalar_subquery()
        return tuple(db.session.execute(select(*counts, accounts)).one())
    row = db.session.execute(
        select(
            total,
            Referral.state,
            Referral.version,
            Referral.district_id,
            Referral.assignee_id,
            Referral.child_first_name,
            *(rows_of(m) for m in (Message, Attachment, StateChange, Assessment, Feedback)),
        ).where(Referral.id == referral_id)
    ).one_or_none()
    return tuple(row) if row else ("deleted",)


def without_csrf_tokens(html: bytes) -> bytes:
    return re.sub(rb'(name="csrf_token"[^>]*value=")[^"]*"', rb'\1"', html)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.id)
def test_route_permissions(app, world, as_user, route):
    app.config["WTF_CSRF_ENABLED"] = False  # CSRF has its own test below
    app.config["ACCOUNT_STEPS_PER_ADDRESS"] = "1000 per minute"  # all users come from one address here
    clients = {key: app.test_client() if key == ANONYMOUS else as_user(world.users[key]) for key in USERS}
    problems = []
    target = None
    for key, who in USERS.items():
        if target is None:
            target = build_target(world, route)
        current = target
        user = world.users.get(key)
        expected = route.expected(key)
        where = f"{route.id} as {key} ({who})"

        state_of = (
            (lambda t: consultation_snapshot(t.consultation_id))
            if target.consultation_id
            else (lambda t: snapshot(t.referral_id))
        )
        before = state_of(target)
        data = route.data(world) if route.data else None
        response = clients[key].open(url(app, route, target), method=route.method, data=data)
        actual = outcome_of(response)
        if expected is Outcome.REFUSED and actual is Outcome.ALLOW and response.status_code == 302:
            actual = Outcome.REFUSED  # told apart from an allowed change by the unchanged database below
        if (
            expected is Outcome.REFUSED
            and response.status_code == 409
            and route.endpoint.startswith("cases.autosave")
            and response.is_json
            and response.json.get("saved") is False
            and response.json.get("message")
        ):
            actual = Outcome.REFUSED
        if actual != expected:
            problems.append(f"{where}: expected {expected.value}, got {getattr(actual, 'value', actual)}")
            target = None  # whatever happened, start the next user on a fresh referral
            continue

        if expected is Outcome.ALLOW and route.effect is not None:
            if not route.effect(reload_target(target), user, world):
                problems.append(f"{where}: allowed, but the change did not happen")
            target = None  # the referral moved on; the next user gets a fresh one
        elif state_of(target) != before:
            problems.append(f"{where}: {expected.value}, but the database changed")
            target = None

        if expected is Outcome.NOT_FOUND:
            data = route.data(world) if route.data else None
            missing = clients[key].open(url(app, route, current, MISSING_ID), method=route.method, data=data)
            if (missing.status_code, without_csrf_tokens(missing.data)) != (404, without_csrf_tokens(response.data)):
                problems.append(
                    f"{where}: 404 differs from the 404 for a referral that does not exist (HTTP {missing.status_code})"
                )
    assert not problems, "\n".join(problems)


# --- Around the matrix ----------------------------------------------------------------------


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_post_without_csrf_token_is_refused_and_changes_nothing(app, world, as_user):
    assert app.config.get("WTF_CSRF_ENABLED", True)
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, lead=world.asd_lead)
    referral_id = referral.id
    browser = as_user(world.asd)
    acknowledge = url_for("cases.acknowledge", referral_id=referral_id, _external=False)

    refused = browser.post(acknowledge)
    assert refused.status_code == 400
    assert reload(referral_id).state is State.SUBMITTED

    # The same click with the page's token works: the 400 above was about the token.
    page = browser.get(url_for("cases.show", referral_id=referral_id, _external=False))
    accepted = browser.post(acknowledge, data={"csrf_token": csrf_token(page.text)})
    assert accepted.status_code == 302
    assert reload(referral_id).state is State.ACKNOWLEDGED


def test_attachment_is_only_reachable_through_its_own_referral(app, world, as_user):
    app.config["WTF_CSRF_ENABLED"] = False
    with_file = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, lead=world.asd_lead)
    attachment_id = services.add_attachment(with_file, world.teacher, "a.pdf", b"%PDF-1.4 test").id
    db.session.commit()
    other = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, lead=world.asd_lead)
    browser = as_user(world.asd)

    own = browser.get(url_for("cases.download", referral_id=with_file.id, attachment_id=attachment_id, _external=False))
    assert own.status_code == 200 and own.data == b"%PDF-1.4 test"
    crossed = browser.get(url_for("cases.download", referral_id=other.id, attachment_id=attachment_id, _external=False))
    assert crossed.status_code == 404


def test_new_draft_stays_in_the_users_own_school(app, world, as_user):
    app.config["WTF_CSRF_ENABLED"] = False
    browser = as_user(world.teacher)
    response = browser.post(f"/referrals/new?school={world.schools['a2'].id}", data=draft_form(world))
    assert response.status_code == 302
    draft = db.session.scalars(select(Referral).where(Referral.author_id == world.teacher.id)).one()
    assert draft.school_id == world.schools["a"].id


def listed_referral_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'href="/referrals/(\d+)(?:/edit)?"', html)}


def test_lists_show_exactly_the_referrals_in_scope(app, world, as_user):
    """The lists filter by the same rules as the pages: what a user cannot open is not listed either."""
    made = {}
    for author in ("teacher", "teacher_other", "school_lead", "teacher_a2", "teacher_b"):
        for state in (State.DRAFT, State.SUBMITTED):
            made[author, state] = factories.referral_in(state, world.users[author], world.asd, lead=world.asd_lead).id
    submitted = {author: made[author, State.SUBMITTED] for author, state in made if state is State.SUBMITTED}
    school_a = {submitted["teacher"], submitted["teacher_other"], submitted["school_lead"]}
    expected = {
        "teacher": {made["teacher", State.DRAFT], submitted["teacher"]},
        "teacher_other": {made["teacher_other", State.DRAFT], submitted["teacher_other"]},
        "school_lead": {made["school_lead", State.DRAFT]} | school_a,
        "teacher_a2": {made["teacher_a2", State.DRAFT], submitted["teacher_a2"]},
        "lead_a2": {submitted["teacher_a2"]},
        "teacher_b": {made["teacher_b", State.DRAFT], submitted["teacher_b"]},
        "asd": school_a | {submitted["teacher_a2"]},
        "asd2": school_a | {submitted["teacher_a2"]},
        "asd_lead": school_a | {submitted["teacher_a2"]},
        "asd_hm": {submitted["teacher_b"]},
        "asd_lead_hm": {submitted["teacher_b"]},
    }
    problems = []
    for key, ids in expected.items():
        page = "/inbox?state=all" if key in ASD_STAFF else "/referrals"
        response = as_user(world.users[key]).get(page)
        assert response.status_code == 200, f"{page} as {key}"
        if listed_referral_ids(response.text) != ids:
            problems.append(
                f"{page} as {key} ({USERS[key]}): listed {sorted(listed_referral_ids(response.text))}, "
                f"expected {sorted(ids)}"
            )
    assert not problems, "\n".join(problems)


def test_transfer_moves_the_referral_to_the_other_districts_scope(app, world, as_user):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd, lead=world.asd_lead)
    services.transfer(referral, world.asd, world.districts["hm"], "Eltern wohnen in Herne-Mitte")
    db.session.commit()
    show = f"/referrals/{referral.id}"
    expected = {"asd": 404, "asd_lead": 404, "asd_hm": 200, "asd_lead_hm": 200, "teacher": 200, "school_lead": 200}
    seen = {key: as_user(world.users[key]).get(show).status_code for key in expected}
    assert seen == expected


# An action outside the user's role, tried in a state in which the action is not possible anyway.
WRONG_ROLE_AND_STATE = [
    ("teacher", "acknowledge", State.ACKNOWLEDGED, {}),
    ("school_lead", "close", State.IN_ASSESSMENT, {}),
    ("asd", "answer", State.IN_ASSESSMENT, {"answer-body": ANSWER}),
]
WRONG_IDS = [f"{key}-{action}-{state.value}" for key, action, state, data in WRONG_ROLE_AND_STATE]


@pytest.mark.parametrize("key, action, state, data", WRONG_ROLE_AND_STATE, ids=WRONG_IDS)
def test_wrong_role_in_wrong_state_is_403_and_changes_nothing(app, world, as_user, key, action, state, data):
    app.config["WTF_CSRF_ENABLED"] = False
    referral_id = factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead).id
    before = snapshot(referral_id)
    response = as_user(world.users[key]).post(f"/referrals/{referral_id}/{action}", data=data)
    assert response.status_code == 403
    assert snapshot(referral_id) == before
