"""A failing SQL statement is logged and raised without its parameters: names, dates, keyed hashes
and ciphertexts of a referral never reach the log (issue 12, `hide_parameters`)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from referral.crypto import child_key
from referral.extensions import db

from . import factories

REPORTER = "Reinhild Meldestein-Unikat"
TOKEN = "tok-7F3kQ9zX2mP8wL5vN1cB6hJ4"


def test_an_integrity_error_logs_and_raises_no_parameter_values(app, world, caplog):
    teacher = world.users["teacher"]
    first = factories.complete_draft(teacher)
    first.client_token = TOKEN
    db.session.add(first)
    db.session.commit()

    second = factories.complete_draft(teacher, first="Jolanda", last="Unikatkind")
    second.client_token = TOKEN  # the same form token: uq_referral_client_token refuses it
    second.reporter_name = REPORTER
    db.session.add(second)
    second.child_key = child_key("Unikatkind", "Jolanda", second.child_birth_date)
    secrets = [REPORTER, TOKEN, second.child_key, "Unikatkind", "Teststraße", "2018-03-01"]

    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG, logger=app.logger.name)
    with pytest.raises(IntegrityError) as raised:
        db.session.commit()
    db.session.rollback()
    app.logger.exception("commit failed", exc_info=raised.value)

    assert "INSERT INTO referral" in caplog.text, "the statements were not logged: the test would see nothing"
    assert "uq_referral_client_token" in str(raised.value) or "UNIQUE" in str(raised.value)
    for value in secrets:
        assert value not in caplog.text
        assert value not in str(raised.value)
    assert "parameters hidden" in str(raised.value)
