"""The API against its own OpenAPI document (Schemathesis): zero server errors and zero responses that
the document does not describe (status, content type, headers, body), with a valid client on the test
database (SQLite, or PostgreSQL with TEST_DATABASE_URL).

The data are real: referrals of the client's district in several states (with messages, an assessment,
feedback, an attachment), one of another district and a draft; generated ids hit them and miss them.
WRITE's operations (acknowledge, case reference) have their own tests (tests/test_api_actions.py).
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from referral.api.openapi import document
from referral.cases import services
from referral.cases.process import State
from referral.extensions import db

from . import factories
from .test_api_read import bearer, get_token, make_client

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]


class Run:
    """One Schemathesis run with a client's token: every answer checked, failures collected to the end."""

    SETTINGS = hypothesis.settings(
        max_examples=25,
        derandomize=True,  # a failure reproduces
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )

    def __init__(self, token: str):
        self.token = token
        self.failures: list[str] = []
        self.seen: dict[str, set[int]] = {}  # operation → the statuses it answered

    def check(self, case) -> None:
        response = case.call(headers=bearer(self.token))
        self.seen.setdefault(case.operation.definition.raw["operationId"], set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=bearer(self.token))
        except Exception as failure:  # noqa: BLE001 - collected, all reported at the end
            self.failures.append(f"{case.method} {case.formatted_path}: {failure}")

    def generated(self, operation) -> None:
        self.SETTINGS(hypothesis.given(case=operation.as_strategy())(self.check))()


READ_OPERATIONS = ["listReferrals", "getReferral", "getAttachment", "getReferralPdf", "issueToken", "getOpenApi"]


@pytest.fixture
def filled(app, world, client):
    own = [
        factories.referral_in(State.SUBMITTED, world.teacher, world.asd),
        factories.referral_in(State.INFO_REQUESTED, world.teacher, world.asd),
        factories.referral_in(State.CLOSED, world.teacher, world.asd),
    ]
    services.add_attachment(own[0], world.teacher, "befund.pdf", b"%PDF-1.4 test\n%%EOF\n")
    db.session.commit()
    factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    factories.referral_in(State.DRAFT, world.teacher, world.asd)
    client_id, secret = make_client(world, "we")
    return client_id, secret, get_token(client, client_id, secret)


def test_the_document_is_openapi_3_1_and_describes_every_route(app):
    doc = document()
    assert doc["openapi"].startswith("3.1")
    served = {
        (rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, methods in doc["paths"].items() for method in methods}
    assert served <= described, f"routes the document does not describe: {served - described}"
    assert set(doc["webhooks"]), "the webhook events belong in the document"


def _descriptions(node, where=""):
    """Every schema property's description, with where it is."""
    if isinstance(node, dict):
        for name, spec in node.get("properties", {}).items():
            yield f"{where}.{name}", spec.get("description", "")
        for key, value in node.items():
            yield from _descriptions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _descriptions(item, where)


def test_every_field_is_described_in_german_and_english():
    missing = [where for where, text in _descriptions(document()["components"]) if " / " not in text]
    assert not missing, missing


def test_vocabularies_are_enums_of_their_classes():
    from referral.cases.vocabulary import Category, Urgency

    schemas = document()["components"]["schemas"]
    assert schemas["ReferralSummary"]["properties"]["urgency"]["enum"] == [u.value for u in Urgency]
    categories = schemas["Observations"]["properties"]["categories"]["items"]["enum"]
    assert categories == [c.value for c in Category]
    assert "draft" not in schemas["ReferralSummary"]["properties"]["state"]["enum"]


def _real_cases(operation, filled):
    from sqlalchemy import select

    from referral.cases.models import Attachment, Referral

    operation_id = operation.definition.raw["operationId"]
    referral_ids = list(db.session.scalars(select(Referral.id)))
    if operation_id in ("getReferral", "getReferralPdf"):
        return [operation.Case(path_parameters={"referral_id": i}) for i in referral_ids]
    if operation_id == "getAttachment":
        return [
            operation.Case(path_parameters={"referral_id": a.referral_id, "attachment_id": a.id})
            for a in db.session.scalars(select(Attachment))
        ]
    if operation_id == "issueToken":
        client_id, secret, _ = filled
        return [
            operation.Case(body={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}),
            operation.Case(body={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"}),
        ]
    return []


def test_the_api_keeps_to_its_document(app, filled):
    """Schemathesis on every read operation; derandomized, so a failure reproduces."""
    _, _, token = filled
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(operation_id=READ_OPERATIONS)
    run = Run(token)
    check, seen, failures = run.check, run.seen, run.failures

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.definition.raw["operationId"] for op in operations} == set(READ_OPERATIONS)
    for operation in operations:
        run.generated(operation)
        # Generated ids seldom hit a stored one: each operation also runs with the real ids.
        for case in _real_cases(operation, filled):
            check(case)
    # The run reached the answers that matter, not only refusals.
    assert all(200 in statuses for statuses in seen.values()), seen
    assert not failures, "\n\n".join(failures[:10])


WRITE_OPERATIONS = ["acknowledgeReferral", "setCaseReference"]


def test_the_write_operations_keep_to_their_document(app, world, client):
    """Schemathesis on the two changing operations: generated bodies, keys and versions, and the real
    ones (a submitted referral acknowledged on behalf of its district's worker, a file number recorded)."""
    import uuid

    from referral.cases.models import Referral

    referrals = [factories.referral_in(State.SUBMITTED, world.teacher, world.asd) for _ in range(2)]
    db.session.commit()
    client_id, secret = make_client(
        world, "we", scopes=("referrals:read", "referrals:acknowledge", "referrals:reference")
    )
    token = get_token(client, client_id, secret)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(operation_id=WRITE_OPERATIONS)
    run = Run(token)
    check, seen, failures = run.check, run.seen, run.failures

    def current(referral_id: int) -> str:
        db.session.expire_all()
        return f'"{db.session.get(Referral, referral_id).version}"'

    operations = {result.ok().definition.raw["operationId"]: result.ok() for result in schema.get_all_operations()}
    assert set(operations) == set(WRITE_OPERATIONS)
    for operation in operations.values():
        run.generated(operation)
    for referral in referrals:
        headers = {"If-Match": current(referral.id), "Idempotency-Key": str(uuid.uuid4())}
        check(
            operations["acknowledgeReferral"].Case(
                path_parameters={"referral_id": referral.id},
                headers=headers,
                body={"asd_worker_email": world.asd.email},
            )
        )
        headers = {"If-Match": current(referral.id), "Idempotency-Key": str(uuid.uuid4())}
        check(
            operations["setCaseReference"].Case(
                path_parameters={"referral_id": referral.id}, headers=headers, body={"case_reference": "AZ 51-2026/17"}
            )
        )
    assert all(200 in statuses for statuses in seen.values()), seen
    assert not failures, "\n\n".join(failures[:10])
