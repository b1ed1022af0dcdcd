"""Integers from URLs and query strings beyond what the database holds end in 404 or a normal page,
never in a 500 (issue 12: OverflowError on SQLite, NumericValueOutOfRange on PostgreSQL)."""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter

from referral.integers import DB_INT_MAX, BoundedIntConverter, query_int

# Beyond PostgreSQL's INTEGER, beyond a 64-bit integer (SQLite, Python's C long), far beyond, negative.
OUT_OF_RANGE = [str(2**31), str(2**63), "99999999999999999999", "-1"]
BEYOND_BOTH = str(2**63)  # too large for PostgreSQL's BIGINT and for SQLite: fails on both without the check
ROLES = ["teacher", "school_lead", "asd", "asd_lead", "insofa", "coordinator", "admin"]
# In URLs, one role of each side with the widest view of its side: enough to reach every view.
URL_ROLES = ["school_lead", "asd_lead", "insofa", "coordinator", "admin"]
FILTERS = ["page", "school", "district", "assignee"]


def _int_arguments(rule) -> list[str]:
    return [name for name, c in rule._converters.items() if isinstance(c, IntegerConverter)]


def _int_rules(app):
    return [rule for rule in app.url_map.iter_rules() if _int_arguments(rule)]


def test_every_int_argument_in_the_url_map_is_bounded(app):
    rules = _int_rules(app)
    assert len(rules) >= 40
    unbounded = [
        str(rule)
        for rule in rules
        for name in _int_arguments(rule)
        if not isinstance(rule._converters[name], BoundedIntConverter)
    ]
    assert unbounded == []


def test_out_of_range_ids_in_urls_are_not_found(app, world, as_user, client):
    app.config["WTF_CSRF_ENABLED"] = False  # so that POSTs reach the view, as a forged form would
    clients = [client] + [as_user(world.users[role]) for role in URL_ROLES]
    rules = _int_rules(app)
    checked = 0
    for rule in rules:
        int_args = _int_arguments(rule)
        for value in OUT_OF_RANGE:
            path = rule.rule
            for name in int_args:
                path = path.replace(f"<int:{name}>", value)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                # Signed in (each 404 is written to the audit log, which is slow): the one value that
                # overflows every database; anonymous: all of them.
                for each in clients if value == BEYOND_BOTH else clients[:1]:
                    response = each.open(path, method=method)
                    assert response.status_code < 500, (method, path, response.status_code)
                    if value.lstrip("-").isdigit() and not value.startswith("-"):
                        assert response.status_code in (302, 404), (method, path, response.status_code)
                    checked += 1
    assert checked > 250


def test_out_of_range_query_integers_fall_back_to_the_default(app, world, as_user, client):
    lists = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and not rule.rule.startswith("/static")
        # /readyz answers 503 by design while a check fails, here the jobs that never ran (test_health.py).
        and rule.endpoint != "health.readyz"
    ]
    reached = 0
    for role in ROLES:
        for path in lists:
            each = as_user(world.users[role])  # afresh: a page such as /verify may end the session
            for value in (str(2**31), "99999999999999999999"):
                query = "&".join(f"{name}={value}" for name in FILTERS)
                response = each.get(f"{path}?{query}")
                assert response.status_code < 500, (role, path, value, response.status_code)
                reached += response.status_code == 200
    assert reached > 100


def test_query_int_accepts_the_range_and_rejects_the_rest():
    assert query_int("42") == 42
    assert query_int(str(DB_INT_MAX)) == DB_INT_MAX
    for value in (str(DB_INT_MAX + 1), str(2**63), "-" + str(DB_INT_MAX + 1), "x"):
        with pytest.raises(ValueError):
            query_int(value)
