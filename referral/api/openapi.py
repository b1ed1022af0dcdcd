"""The OpenAPI 3.1 document of the API, written as data: every route, parameter, response and problem,
each field described in German and English, the vocabularies as enums generated from their classes.

The page /api/v1/docs is rendered from the same document (templates/api/docs.html). The contract tests
(tests/test_api_contract.py) run Schemathesis against it, and every object schema forbids properties it
does not name, so the serializer (serialize.py) and this description cannot drift apart unnoticed.
"""

from __future__ import annotations

import enum
from functools import cache
from typing import Any

from ..cases.process import RULES, STATE_LABELS, Action, State
from ..cases.vocabulary import (
    AssessmentResult,
    BodyRegion,
    BodySide,
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
from . import webhooks
from .models import SCOPES

VERSION = "1.0.0"
PROBLEM = "application/problem+json"

# The webhook events, named once in webhooks.py; here what each means, in German and English.
WEBHOOK_EVENTS = {
    webhooks.SUBMITTED: (
        "Eine Mitteilung wurde eingereicht und ist im Bezirk eingegangen",
        "a referral was submitted and arrived in the district",
    ),
    webhooks.TRANSFERRED_IN: (
        "Ein anderer Bezirk hat eine Mitteilung an diesen Bezirk abgegeben",
        "another district transferred a referral to this district",
    ),
    webhooks.TRANSFERRED_OUT: (
        "Eine Mitteilung wurde an einen anderen Bezirk abgegeben; dieser Zugang sieht sie nicht mehr",
        "a referral was transferred to another district; this client no longer sees it",
    ),
    webhooks.MESSAGE_RECEIVED: (
        "Die Schule hat eine Rückfrage beantwortet oder einen Nachtrag gesendet",
        "the school answered a question or sent an addendum",
    ),
    webhooks.FEEDBACK_DUE_SOON: (
        "Die Rückmeldung an die Schule (§ 4 Abs. 4 KKG) wird bald fällig",
        "the feedback to the school (§ 4 (4) KKG) is due soon",
    ),
}
assert set(WEBHOOK_EVENTS) == set(webhooks.EVENT_TYPES), "every event described, none invented"


def d(german: str, english: str) -> str:
    """A description in German and English."""
    return f"{german} / {english}"


def _labels(kind: type[enum.Enum], exclude: frozenset[enum.Enum] = frozenset()) -> dict[str, str]:
    if kind is State:
        return {s.value: STATE_LABELS[s] for s in State if s not in exclude}
    if kind is Action:
        return {a.value: RULES[a].label for a in Action if a not in exclude}
    return {m.value: m.label for m in kind if m not in exclude}  # type: ignore[attr-defined]


def vocabulary(
    kind: type[enum.Enum],
    german: str,
    english: str,
    *,
    nullable: bool = False,
    exclude: frozenset[enum.Enum] = frozenset(),
) -> dict[str, Any]:
    """An enum generated from the vocabulary class, its German labels listed in the description."""
    labels = _labels(kind, exclude)
    values: list[Any] = list(labels)
    listed = "; ".join(f"{value} = {label}" for value, label in labels.items())
    schema: dict[str, Any] = {
        "type": ["string", "null"] if nullable else "string",
        "enum": values + [None] if nullable else values,
        "description": d(german, english) + f" ({listed})",
    }
    return schema


def text(german: str, english: str, *, nullable: bool = False, **more: Any) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "description": d(german, english), **more}


def integer(german: str, english: str, *, nullable: bool = False, **more: Any) -> dict[str, Any]:
    return {"type": ["integer", "null"] if nullable else "integer", "description": d(german, english), **more}


def boolean(german: str, english: str, *, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["boolean", "null"] if nullable else "boolean", "description": d(german, english)}


def moment(german: str, english: str, *, nullable: bool = True) -> dict[str, Any]:
    return text(german + " (UTC)", english + " (UTC)", nullable=nullable, format="date-time")


def day(german: str, english: str, *, nullable: bool = True) -> dict[str, Any]:
    return text(german, english, nullable=nullable, format="date")


def ref(name: str, german: str = "", english: str = "") -> dict[str, Any]:
    # OpenAPI 3.1 (JSON Schema 2020-12) allows a description next to $ref.
    return {"$ref": f"#/components/schemas/{name}", **({"description": d(german, english)} if german else {})}


def obj(german: str, english: str, properties: dict[str, Any], *, nullable: bool = False) -> dict[str, Any]:
    schema = {
        "type": ["object", "null"] if nullable else "object",
        "description": d(german, english),
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return schema


def array(german: str, english: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "description": d(german, english), "items": items}


def nullable_ref(name: str, german: str, english: str) -> dict[str, Any]:
    return {"description": d(german, english), "oneOf": [ref(name), {"type": "null"}]}


SUBMITTED = frozenset({State.DRAFT})


def _summary_properties() -> dict[str, Any]:
    return {
        "id": integer("Kennung der Mitteilung", "id of the referral"),
        "number": text("Fallnummer (Bezirk-Jahr-Nummer)", "case number (district-year-number)"),
        "version": integer(
            "Version; jede Änderung erhöht sie (ETag, If-Match)", "version; every change increments it (ETag, If-Match)"
        ),
        "state": vocabulary(State, "Bearbeitungsstand", "state of the referral", exclude=SUBMITTED),
        "urgency": vocabulary(Urgency, "Dringlichkeit", "urgency"),
        "school": obj(
            "Meldende Schule",
            "reporting school",
            {"id": integer("Kennung der Schule", "id of the school"), "name": text("Name der Schule", "school name")},
        ),
        "district": ref("District", "Zuständiger Bezirk", "district in charge"),
        "case_reference": text(
            "Aktenzeichen der Fachsoftware (falls eingetragen)",
            "file number in the case software (if recorded)",
            nullable=True,
        ),
        "submitted_at": moment("Eingereicht am", "submitted at"),
        "received_at": moment(
            "Eingang im jetzigen Bezirk (nach Abgabe anders)",
            "arrival in the current district (differs after transfer)",
        ),
        "acknowledge_due_at": moment("Eingangsbestätigung fällig bis", "acknowledgement due by"),
        "acknowledged_at": moment("Eingang bestätigt am", "acknowledged at"),
        "feedback_due_at": moment("Rückmeldung an die Schule fällig bis", "feedback to the school due by"),
        "feedback_at": moment("Rückmeldung gegeben am", "feedback given at"),
        "closed_at": moment("Abgeschlossen am", "closed at"),
        "updated_at": moment("Letzte Änderung", "last change", nullable=False),
    }


def schemas() -> dict[str, Any]:
    summary = _summary_properties()
    detail = {
        **summary,
        "assignee": text("Zuständige Fachkraft des ASD", "ASD worker in charge", nullable=True),
        "acknowledged_by": text("Eingang bestätigt von", "acknowledged by", nullable=True),
        "purged_at": moment(
            "Daten nach Ablauf der Aufbewahrungsfrist gelöscht am (Texte sind dann leer)",
            "data purged after the retention period at (texts are then empty)",
        ),
        "child": ref("Child", "1. Kind", "1. child"),
        "household": array("2. Eltern und Haushalt", "2. parents and household", ref("HouseholdMember")),
        "observations": ref("Observations", "3. Beobachtungen", "3. observations"),
        "school_actions": array(
            "4. Was die Schule bereits getan hat", "4. what the school already did", ref("SchoolAction")
        ),
        "affected_informed": ref("AffectedInformed", "5. Information der Betroffenen", "5. those affected informed"),
        "phone_call": nullable_ref(
            "PhoneCall",
            "Telefonat mit dem ASD (bei Dringlichkeit akut)",
            "phone call with the ASD (for acute urgency)",
        ),
        "reporter": ref("Reporter", "7. Meldende Person", "7. reporting person"),
        "attachments": array("8. Anhänge", "8. attachments", ref("Attachment")),
        "messages": array("Rückfragen und Nachträge", "questions and addenda", ref("Message")),
        "history": array("Verlauf (Zustandswechsel)", "history (state changes)", ref("HistoryEntry")),
        "assessment": nullable_ref("Assessment", "Gefährdungseinschätzung (nur ASD)", "risk assessment (ASD only)"),
        "feedback": nullable_ref("Feedback", "Rückmeldung an die Schule", "feedback to the school"),
    }
    return {
        "Problem": {
            "type": "object",
            "description": d("Fehler nach RFC 9457 (detail auf Deutsch)", "error per RFC 9457 (detail in German)"),
            "properties": {
                "type": text("Art des Fehlers (URI)", "kind of error (URI)"),
                "title": text("Kurzname", "short name"),
                "status": integer("HTTP-Status", "HTTP status"),
                "detail": text("Erklärung auf Deutsch", "explanation in German"),
                "parameter": text("Der ungültige Parameter", "the invalid parameter"),
                "error": text("OAuth-2.0-Fehlercode (nur am Token-Endpunkt)", "OAuth 2.0 error code (token endpoint)"),
            },
            "required": ["type", "title", "status", "detail"],
        },
        "Token": obj(
            "Zugriffstoken",
            "access token",
            {
                "access_token": text("Das Token (Authorization: Bearer …)", "the token (Authorization: Bearer …)"),
                "token_type": text("Immer Bearer", "always Bearer", enum=["Bearer"]),
                "expires_in": integer("Gültigkeit in Sekunden", "lifetime in seconds"),
                "scope": text(
                    "Gewährte Berechtigungen, durch Leerzeichen getrennt", "granted scopes, separated by spaces"
                ),
            },
        ),
        "District": obj(
            "Zuständiger Bezirk (ASD)",
            "district in charge (ASD)",
            {
                "id": integer("Kennung des Bezirks", "id of the district"),
                "code": text("Kürzel des Bezirks", "district code"),
                "name": text("Name des Bezirks", "district name"),
            },
        ),
        "ReferralSummary": obj("Mitteilung in der Liste", "referral in the list", summary),
        "ReferralList": obj(
            "Eine Seite der Liste",
            "one page of the list",
            {
                "items": array("Mitteilungen dieser Seite", "referrals of this page", ref("ReferralSummary")),
                "next_cursor": text(
                    "Für die nächste Seite als cursor senden; null: keine weitere Seite",
                    "send as cursor for the next page; null: no further page",
                    nullable=True,
                ),
                "sync_cursor": text(
                    "Speichern und später als changed_since senden: liefert alles, was sich seitdem geändert hat",
                    "store and later send as changed_since: returns everything changed since",
                ),
            },
        ),
        "Referral": obj("Eine Mitteilung mit allen Abschnitten", "a referral with every section", detail),
        "Child": obj(
            "1. Kind",
            "1. child",
            {
                "first_name": text("Vorname des Kindes", "child's first name"),
                "last_name": text("Nachname des Kindes", "child's last name"),
                "birth_date": day("Geburtsdatum des Kindes", "child's date of birth"),
                "gender": text("Geschlecht (freie Angabe)", "gender (free text)"),
                "school_class": text("Klasse", "school class"),
                "address": text("Anschrift des Kindes", "child's address"),
                "language": text("Familiensprache", "language spoken in the family"),
                "interpreter_needed": boolean("Dolmetschung nötig", "interpreter needed", nullable=True),
            },
        ),
        "HouseholdMember": obj(
            "Elternteil, Bezugsperson oder weitere Person im Haushalt",
            "parent, carer or other person in the household",
            {
                "kind": vocabulary(PersonKind, "Art der Person", "kind of person"),
                "first_name": text("Vorname", "first name"),
                "last_name": text("Nachname", "last name"),
                "birth_date": day("Geburtsdatum", "date of birth"),
                "relation": vocabulary(Relation, "Beziehung zum Kind", "relation to the child", nullable=True),
                "custody": boolean("Sorgeberechtigt", "has custody", nullable=True),
                "address": text("Anschrift, falls anders als die des Kindes", "address, if different from the child's"),
                "phone": text("Telefon", "phone"),
            },
        ),
        "Observations": obj(
            "3. Beobachtungen",
            "3. observations",
            {
                "categories": array(
                    "Kategorien der Anhaltspunkte",
                    "categories of the indications",
                    vocabulary(Category, "Kategorie", "category"),
                ),
                "observed_on": day("Beobachtet am", "observed on"),
                "observed_by": text("Beobachtet von", "observed by"),
                "source": text("Quelle der Beobachtung", "source of the observation"),
                "description": text("Beschreibung der Beobachtungen", "description of the observations"),
                "child_words": text("Äußerungen des Kindes (wörtlich)", "the child's own words (verbatim)"),
                "body_marks": array("Körperskizze: markierte Stellen", "body map: marked regions", ref("BodyMark")),
            },
        ),
        "BodyMark": obj(
            "Markierte Stelle der Körperskizze",
            "marked region of the body map",
            {
                "side": vocabulary(BodySide, "Seite der Skizze", "side of the outline"),
                "region": vocabulary(BodyRegion, "Körperregion", "body region"),
            },
        ),
        "SchoolAction": obj(
            "Schritt der Schule: ja mit Datum, nein mit Grund",
            "a step of the school: yes with a date, no with the reason",
            {
                "kind": vocabulary(SchoolActionKind, "Schritt", "step"),
                "done": boolean("Erfolgt", "done", nullable=True),
                "done_on": day("Erfolgt am", "done on"),
                "reason": text("Grund, falls nicht erfolgt", "reason, if not done"),
                "detail": text(
                    "Ergänzung (Ergebnis, Name der InsoFa, Fachkräfte, Hilfe)",
                    "detail (outcome, name of the InsoFa, professionals, help)",
                ),
            },
        ),
        "AffectedInformed": obj(
            "5. Information der Betroffenen vor der Mitteilung",
            "5. those affected informed before the referral",
            {
                "status": vocabulary(InformedStatus, "Informiert?", "informed?", nullable=True),
                "informed_on": day("Informiert am", "informed on"),
                "reason": text("Grund, falls nicht informiert", "reason, if not informed"),
            },
        ),
        "PhoneCall": obj(
            "6. Telefonat mit dem ASD",
            "6. phone call with the ASD",
            {
                "at": moment("Zeitpunkt des Telefonats", "time of the call"),
                "with": text("Gesprächspartner beim ASD", "who at the ASD"),
            },
        ),
        "Reporter": obj(
            "7. Meldende Person",
            "7. reporting person",
            {
                "name": text("Name", "name"),
                "function": vocabulary(ReporterFunction, "Funktion", "function", nullable=True),
                "phone": text("Telefon", "phone"),
                "reachable": text("Erreichbarkeit", "when reachable"),
            },
        ),
        "Attachment": obj(
            "Anhang",
            "attachment",
            {
                "id": integer("Kennung des Anhangs", "id of the attachment"),
                "filename": text("Dateiname", "file name"),
                "content_type": text("Dateityp", "content type", enum=["application/pdf", "image/jpeg", "image/png"]),
                "size": integer("Größe in Bytes", "size in bytes", minimum=0),
                "uploaded_at": moment("Hochgeladen am", "uploaded at", nullable=False),
            },
        ),
        "Message": obj(
            "Rückfrage des ASD, Antwort oder Nachtrag der Schule",
            "question of the ASD, answer or addendum of the school",
            {
                "id": integer("Kennung der Nachricht", "id of the message"),
                "kind": vocabulary(MessageKind, "Art der Nachricht", "kind of message"),
                "body": text("Text", "text"),
                "author": text("Verfasst von", "written by"),
                "created_at": moment("Gesendet am", "sent at", nullable=False),
            },
        ),
        "HistoryEntry": obj(
            "Eintrag im Verlauf",
            "history entry",
            {
                "at": moment("Zeitpunkt", "time", nullable=False),
                "action": vocabulary(Action, "Aktion", "action"),
                "from_state": vocabulary(State, "Stand vorher", "state before", nullable=True),
                "to_state": vocabulary(State, "Stand nachher", "state after"),
                "actor": text("Wer", "who"),
                "assignee": text("Zugewiesen an", "assigned to", nullable=True),
                "from_district": text(
                    "Abgegeben von Bezirk (Kürzel)", "transferred from district (code)", nullable=True
                ),
                "to_district": text("Abgegeben an Bezirk (Kürzel)", "transferred to district (code)", nullable=True),
                "reason": text("Grund (z. B. der Abgabe)", "reason (e.g. of a transfer)", nullable=True),
            },
        ),
        "Assessment": obj(
            "Gefährdungseinschätzung nach § 8a SGB VIII",
            "risk assessment per § 8a SGB VIII",
            {
                "result": vocabulary(AssessmentResult, "Ergebnis", "result"),
                "specialists": array("Beteiligte Fachkräfte", "specialists involved", {"type": "string"}),
                "school_involved": boolean("Schule einbezogen", "school involved"),
                "measures": array("Maßnahmen", "measures", vocabulary(Measure, "Maßnahme", "measure")),
                "recorded_at": moment("Erfasst am", "recorded at", nullable=False),
            },
        ),
        "Feedback": obj(
            "Rückmeldung an die Schule (§ 4 Abs. 4 KKG)",
            "feedback to the school (§ 4 (4) KKG)",
            {
                "indications_confirmed": boolean("Anhaltspunkte bestätigt", "indications confirmed"),
                "asd_became_active": boolean("ASD ist tätig geworden", "ASD became active"),
                "asd_still_active": boolean("ASD ist weiterhin tätig", "ASD still active"),
                "contact_name": text("Ansprechperson", "contact person"),
                "contact_phone": text("Telefon der Ansprechperson", "contact's phone"),
                "affected_informed": vocabulary(
                    InformedStatus, "Betroffene vorab informiert", "those affected informed beforehand"
                ),
                "affected_informed_on": day("Informiert am", "informed on"),
                "affected_informed_reason": text("Grund, falls nicht informiert", "reason, if not informed"),
                "given_at": moment("Gegeben am", "given at", nullable=False),
            },
        ),
        "WriteResult": obj(
            "Die geänderte Mitteilung, knapp (ohne Daten des Kindes: die Antwort wird für Wiederholungen mit "
            "demselben Idempotency-Key gespeichert); alles Weitere mit GET /referrals/{id}",
            "the changed referral, brief (no child data: the answer is stored for retries with the same "
            "Idempotency-Key); everything else with GET /referrals/{id}",
            {
                "id": integer("Kennung der Mitteilung", "id of the referral"),
                "case_number": text("Fallnummer", "case number"),
                "state": summary["state"],
                "case_reference": summary["case_reference"],
                "version": integer("Version (auch im ETag)", "version (also in the ETag)"),
            },
        ),
        "AcknowledgeRequest": obj(
            "Eingang bestätigen im Namen einer ASD-Fachkraft",
            "acknowledge on behalf of an ASD worker",
            {
                "asd_worker_email": text(
                    "E-Mail-Adresse der ASD-Fachkraft des Bezirks", "e-mail address of the district's ASD worker"
                )
            },
        ),
        "CaseReferenceRequest": obj(
            "Aktenzeichen der Fachsoftware",
            "file number of the case software",
            {
                "case_reference": text(
                    "Aktenzeichen (höchstens 60 Zeichen)", "file number (at most 60 characters)", maxLength=60
                )
            },
        ),
        "WebhookEvent": obj(
            "Ereignis eines Webhooks (nur Kennungen, keine Daten des Kindes)",
            "webhook event (ids only, no child data)",
            {
                "id": text("Kennung des Ereignisses (zum Entdoppeln)", "event id (for deduplication)"),
                "type": text("Art des Ereignisses", "event type", enum=list(WEBHOOK_EVENTS)),
                "timestamp": moment("Zeitpunkt des Ereignisses", "time of the event", nullable=False),
                "data": obj(
                    "Worum es geht",
                    "what it is about",
                    {
                        "referral_id": integer("Kennung der Mitteilung", "id of the referral"),
                        "case_number": text("Fallnummer", "case number"),
                    },
                ),
            },
        ),
    }


def _problem(german: str, english: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": d(german, english),
        "content": {PROBLEM: {"schema": ref("Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {
    "Retry-After": {
        "description": d("Sekunden bis zum nächsten Versuch", "seconds until the next attempt"),
        "required": True,
        "schema": {"type": "string"},
    }
}
ETAG = {
    "ETag": {
        "description": d("Version der Mitteilung (für If-Match)", "version of the referral (for If-Match)"),
        "required": True,
        "schema": {"type": "string"},
    }
}


def _common_problems(*codes: int) -> dict[str, Any]:
    known = {
        400: _problem("Ungültiger Parameter", "invalid parameter"),
        401: _problem(
            "Kein gültiges Token (fehlt, abgelaufen, widerrufen)",
            "no valid token (missing, expired, revoked)",
            {
                "WWW-Authenticate": {
                    "description": d("Bearer-Challenge", "bearer challenge"),
                    "schema": {"type": "string"},
                }
            },
        ),
        403: _problem(
            "Berechtigung (scope) fehlt, oder Aufruf ohne HTTPS im Betrieb",
            "scope missing, or a call without HTTPS in production",
        ),
        404: _problem(
            "Nicht vorhanden oder nicht in den Bezirken des Zugangs (auch Entwürfe)",
            "does not exist or not in the client's districts (drafts too)",
        ),
        405: _problem("Methode nicht erlaubt", "method not allowed"),
        409: _problem(
            "Konflikt: im jetzigen Stand nicht möglich, oder Idempotency-Key mit anderem Inhalt",
            "conflict: not possible in the current state, or Idempotency-Key reused with another body",
        ),
        412: _problem("If-Match passt nicht zur aktuellen Version", "If-Match does not match the current version"),
        413: _problem("Anfrage zu groß", "request too large"),
        415: _problem("Format nicht unterstützt", "unsupported media type"),
        422: _problem("Inhalt ungültig", "invalid content"),
        428: _problem("If-Match fehlt", "If-Match missing"),
        429: _problem("Zu viele Anfragen dieses Zugangs", "too many requests of this client", RETRY_AFTER),
        500: _problem("Interner Fehler", "internal error"),
        503: _problem(
            "Vorübergehend nicht erreichbar (Datenbank, Inhalt nicht lesbar, PDF nicht erstellt)",
            "temporarily unavailable (database, content unreadable, PDF not made)",
        ),
    }
    return {str(code): known[code] for code in codes}


def _security(scope: str) -> list[dict[str, list[str]]]:
    return [{"oauth2": [scope]}, {"bearer": []}]


REFERRAL_ID = {
    "name": "referral_id",
    "in": "path",
    "required": True,
    "description": d("Kennung der Mitteilung", "id of the referral"),
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
}
ATTACHMENT_ID = {
    **REFERRAL_ID,
    "name": "attachment_id",
    "description": d("Kennung des Anhangs", "id of the attachment"),
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": d(
        "Eindeutiger Schlüssel je Vorgang; eine Wiederholung mit demselben Schlüssel wirkt nicht zweimal",
        "unique key per operation; a retry with the same key never acts twice",
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": d("ETag der zuletzt gelesenen Version", "ETag of the version last read"),
    "schema": {"type": "string"},
}


def _write_operation(summary: tuple[str, str], operation_id: str, scope: str, body: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": d(*summary),
        "tags": ["Mitteilungen / referrals"],
        "security": _security(scope),
        "parameters": [REFERRAL_ID, IDEMPOTENCY_KEY, IF_MATCH],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref(body)}}},
        "responses": {
            "200": {
                "description": d("Die geänderte Mitteilung", "the changed referral"),
                "headers": ETAG,
                "content": {"application/json": {"schema": ref("WriteResult")}},
            },
            **_common_problems(400, 401, 403, 404, 409, 412, 422, 428, 429, 500, 503),
        },
    }


def paths() -> dict[str, Any]:
    referrals_tag = ["Mitteilungen / referrals"]
    return {
        "/token": {
            "post": {
                "operationId": "issueToken",
                "summary": d(
                    "Zugriffstoken holen (OAuth 2.0 Client Credentials)",
                    "get an access token (OAuth 2.0 client credentials)",
                ),
                "description": d(
                    "client_id und client_secret per HTTP Basic (client_secret_basic) oder im Formular "
                    "(client_secret_post). Ohne scope gelten alle Berechtigungen des Zugangs.",
                    "client_id and client_secret via HTTP Basic (client_secret_basic) or in the form "
                    "(client_secret_post). Without scope, all of the client's scopes are granted.",
                ),
                "tags": ["Anmeldung / authentication"],
                "security": [{"clientSecretBasic": []}, {}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "grant_type": text(
                                        "Immer client_credentials",
                                        "always client_credentials",
                                        enum=["client_credentials"],
                                    ),
                                    "scope": text(
                                        "Gewünschte Berechtigungen, durch Leerzeichen getrennt (optional)",
                                        "requested scopes, separated by spaces (optional)",
                                    ),
                                    "client_id": text("Nur bei client_secret_post", "only for client_secret_post"),
                                    "client_secret": text("Nur bei client_secret_post", "only for client_secret_post"),
                                },
                                "required": ["grant_type"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": d("Das Token", "the token"),
                        "content": {"application/json": {"schema": ref("Token")}},
                    },
                    **_common_problems(400, 401, 403, 413, 429, 500, 503),
                },
            }
        },
        "/referrals": {
            "get": {
                "operationId": "listReferrals",
                "summary": d("Mitteilungen der eigenen Bezirke", "referrals of the client's districts"),
                "description": d(
                    "Ohne Cursor: neueste Änderungen zuerst, weiter mit next_cursor. Mit changed_since (dem "
                    "sync_cursor einer früheren Antwort): alles, was sich seitdem geändert hat, älteste Änderung "
                    "zuerst; eine Mitteilung kann dabei mehrfach kommen (nach id und version entdoppeln). Die "
                    "letzten Sekunden erscheinen erst beim nächsten Abruf.",
                    "Without a cursor: newest changes first, continue with next_cursor. With changed_since (the "
                    "sync_cursor of an earlier response): everything changed since, oldest change first; a "
                    "referral may come more than once (deduplicate by id and version). The last few seconds "
                    "appear with the next call.",
                ),
                "tags": referrals_tag,
                "security": _security("referrals:read"),
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "description": d("Nur dieser Stand", "only this state"),
                        "schema": vocabulary(State, "Stand", "state", exclude=SUBMITTED),
                    },
                    {
                        "name": "urgency",
                        "in": "query",
                        "description": d("Nur diese Dringlichkeit", "only this urgency"),
                        "schema": vocabulary(Urgency, "Dringlichkeit", "urgency"),
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "description": d("Einträge je Seite (1–200, Vorgabe 50)", "items per page (1–200, default 50)"),
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": d("next_cursor der vorigen Seite", "next_cursor of the previous page"),
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "changed_since",
                        "in": "query",
                        "description": d("sync_cursor einer früheren Antwort", "sync_cursor of an earlier response"),
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": d("Eine Seite", "one page"),
                        "content": {"application/json": {"schema": ref("ReferralList")}},
                    },
                    **_common_problems(400, 401, 403, 429, 500, 503),
                },
            }
        },
        "/referrals/{referral_id}": {
            "get": {
                "operationId": "getReferral",
                "summary": d("Eine Mitteilung mit allen Abschnitten", "one referral with every section"),
                "tags": referrals_tag,
                "security": _security("referrals:read"),
                "parameters": [REFERRAL_ID],
                "responses": {
                    "200": {
                        "description": d("Die Mitteilung", "the referral"),
                        "headers": ETAG,
                        "content": {"application/json": {"schema": ref("Referral")}},
                    },
                    **_common_problems(401, 403, 404, 429, 500, 503),
                },
            }
        },
        "/referrals/{referral_id}/attachments/{attachment_id}": {
            "get": {
                "operationId": "getAttachment",
                "summary": d("Inhalt eines Anhangs (gestreamt)", "content of an attachment (streamed)"),
                "tags": referrals_tag,
                "security": _security("referrals:read"),
                "parameters": [REFERRAL_ID, ATTACHMENT_ID],
                "responses": {
                    "200": {
                        "description": d("Die Datei", "the file"),
                        "headers": {
                            "Content-Length": {
                                "description": d("Größe in Bytes", "size in bytes"),
                                "required": True,
                                "schema": {"type": "integer"},
                            },
                            "Content-Disposition": {
                                "description": d("Dateiname", "file name"),
                                "required": True,
                                "schema": {"type": "string"},
                            },
                        },
                        "content": {
                            kind: {"schema": {"type": "string", "contentMediaType": kind}}
                            for kind in ("application/pdf", "image/jpeg", "image/png")
                        },
                    },
                    **_common_problems(401, 403, 404, 429, 500, 503),
                },
            }
        },
        "/referrals/{referral_id}/pdf": {
            "get": {
                "operationId": "getReferralPdf",
                "summary": d(
                    "Das PDF der Mitteilung (PDF/A-2a, für die Akte)", "the referral's PDF of record (PDF/A-2a)"
                ),
                "tags": referrals_tag,
                "security": _security("referrals:read"),
                "parameters": [REFERRAL_ID],
                "responses": {
                    "200": {
                        "description": d("Das PDF", "the PDF"),
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}}
                        },
                    },
                    **_common_problems(401, 403, 404, 429, 500, 503),
                },
            }
        },
        "/referrals/{referral_id}/acknowledge": {
            "post": _write_operation(
                ("Eingang bestätigen im Namen einer ASD-Fachkraft", "acknowledge on behalf of an ASD worker"),
                "acknowledgeReferral",
                "referrals:acknowledge",
                "AcknowledgeRequest",
            )
        },
        "/referrals/{referral_id}/case-reference": {
            "put": _write_operation(
                ("Aktenzeichen der Fachsoftware eintragen", "record the case software's file number"),
                "setCaseReference",
                "referrals:reference",
                "CaseReferenceRequest",
            )
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": d("Diese Beschreibung (OpenAPI 3.1)", "this description (OpenAPI 3.1)"),
                "tags": ["Beschreibung / description"],
                "security": [],
                "responses": {
                    "200": {
                        "description": d("Das Dokument", "the document"),
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "operationId": "getDocs",
                "summary": d("Die Dokumentation als Seite", "the documentation as a page"),
                "tags": ["Beschreibung / description"],
                "security": [],
                "responses": {
                    "200": {
                        "description": d("Die Seite", "the page"),
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def webhooks() -> dict[str, Any]:
    headers = [
        ("webhook-id", "Kennung des Ereignisses (gleich bei Wiederholung)", "event id (the same on a retry)"),
        ("webhook-timestamp", "Zeitpunkt des Versands (Unix-Sekunden)", "time of sending (Unix seconds)"),
        (
            "webhook-signature",
            "v1,<Base64 von HMAC-SHA256 über „id.timestamp.body“ mit dem Schlüssel (Base64-Teil nach whsec_)>",
            "v1,<base64 of HMAC-SHA256 over “id.timestamp.body” keyed with the secret (base64 part after whsec_)>",
        ),
    ]
    return {
        event: {
            "post": {
                "operationId": "webhook_" + event.replace(".", "_"),
                "summary": d(*meaning),
                "description": d(
                    "Signiert nach dem Standard-Webhooks-Verfahren; mindestens einmal zugestellt, mit "
                    "Wiederholungen. Eine Antwort 2xx bestätigt den Empfang.",
                    "signed in the manner of Standard Webhooks; delivered at least once, with retries. "
                    "A 2xx answer confirms receipt.",
                ),
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "description": d(de, en),
                        "schema": {"type": "string"},
                    }
                    for name, de, en in headers
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("WebhookEvent")}}},
                "responses": {"2XX": {"description": d("Empfang bestätigt", "receipt confirmed")}},
            }
        }
        for event, meaning in WEBHOOK_EVENTS.items()
    }


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Mitteilungen Schule–ASD: Schnittstelle für die Fachsoftware / interface for the case software",
            "version": VERSION,
            "description": d(
                "Die Fachsoftware des Jugendamts liest die Mitteilungen ihrer Bezirke (genau das, was der ASD "
                "dieser Bezirke sieht, nie Entwürfe), bestätigt den Eingang und trägt ihr Aktenzeichen ein. "
                "Anmeldung: OAuth 2.0 Client Credentials am Token-Endpunkt; Tokens gelten 10 Minuten. "
                "Fehler als RFC 9457 Problem Details mit deutscher Erklärung. Nur über HTTPS.",
                "The Jugendamt's case software reads its districts' referrals (exactly what the ASD of these "
                "districts sees, never drafts), acknowledges them and records its file number. Authentication: "
                "OAuth 2.0 client credentials at the token endpoint; tokens last 10 minutes. Errors as RFC 9457 "
                "problem details with a German explanation. HTTPS only.",
            ),
        },
        "servers": [{"url": "/api/v1", "description": d("Diese Installation", "this installation")}],
        "tags": [
            {"name": "Anmeldung / authentication"},
            {"name": "Mitteilungen / referrals"},
            {"name": "Beschreibung / description"},
        ],
        "security": [],
        "paths": paths(),
        "webhooks": webhooks(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": d(
                        "Client Credentials am Token-Endpunkt", "client credentials at the token endpoint"
                    ),
                    "flows": {"clientCredentials": {"tokenUrl": "/api/v1/token", "scopes": dict(SCOPES)}},
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": d("Das Token vom Token-Endpunkt", "the token from the token endpoint"),
                },
                "clientSecretBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": d(
                        "client_id und client_secret (nur am Token-Endpunkt)",
                        "client_id and client_secret (token endpoint only)",
                    ),
                },
            },
        },
    }


# --- The page --------------------------------------------------------------------------------------


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " oder ".join(_type_of(s) for s in schema["oneOf"])
    kind = schema.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    if "array" in kinds:
        return "Liste von " + _type_of(schema.get("items", {}))
    shown = " oder ".join(k for k in kinds if k)
    if schema.get("format"):
        shown += f" ({schema['format']})"
    return shown


def _values(schema: dict[str, Any]) -> list[str]:
    if schema.get("type") == "array":
        return _values(schema.get("items", {}))
    return [str(v) for v in schema.get("enum", []) if v is not None]


def for_page(doc: dict[str, Any]) -> dict[str, Any]:
    """The document arranged for templates/api/docs.html."""
    operations = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            security = operation.get("security", doc.get("security", []))
            scopes = sorted({scope for requirement in security for scope in requirement.get("oauth2", [])})
            operations.append(
                {
                    "id": operation["operationId"],
                    "method": method.upper(),
                    "path": "/api/v1" + path,
                    "summary": operation["summary"],
                    "description": operation.get("description", ""),
                    "scopes": scopes,
                    "public": not security,
                    "parameters": [
                        {
                            "name": p["name"],
                            "where": {"path": "Pfad", "query": "Abfrage", "header": "Kopfzeile"}[p["in"]],
                            "required": p.get("required", False),
                            "type": _type_of(p["schema"]),
                            "description": p.get("description", ""),
                            "allowed": _values(p["schema"]),
                        }
                        for p in operation.get("parameters", [])
                    ],
                    "body": [
                        _type_of(media["schema"]) + f" ({kind})"
                        for kind, media in operation.get("requestBody", {}).get("content", {}).items()
                    ],
                    "responses": [
                        {
                            "status": status,
                            "description": response["description"],
                            "types": ", ".join(response.get("content", {})),
                            "schema": next(
                                (_type_of(m["schema"]) for m in response.get("content", {}).values() if "schema" in m),
                                "",
                            ),
                        }
                        for status, response in operation["responses"].items()
                    ],
                }
            )
    schemas_ = [
        {
            "name": name,
            "description": schema.get("description", ""),
            "fields": [
                {
                    "name": field,
                    "type": _type_of(spec),
                    "description": spec.get("description", ""),
                    "allowed": _values(spec),
                    "required": field in schema.get("required", []),
                }
                for field, spec in schema.get("properties", {}).items()
            ],
        }
        for name, schema in doc["components"]["schemas"].items()
    ]
    events = [
        {"type": event, "summary": hook["post"]["summary"], "headers": hook["post"]["parameters"]}
        for event, hook in doc["webhooks"].items()
    ]
    return {
        "info": doc["info"],
        "operations": operations,
        "schemas": schemas_,
        "events": events,
        "scopes": doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"],
    }
