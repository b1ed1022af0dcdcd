"""What every signed-in request costs the app (issue 16): the user in one statement, the overdue rule
without SQL for a loaded referral, and gunicorn's workers with the loaded app out of the collector's way."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

from sqlalchemy import event

from referral.cases.deadlines import Late, overdue
from referral.cases.process import State
from referral.extensions import db

from . import factories
from .servers import ROOT


class Statements:
    def __init__(self):
        self.seen: list[str] = []

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self.note)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self.note)

    def note(self, connection, cursor, statement, *args):
        self.seen.append(" ".join(statement.split()))


def test_the_signed_in_user_comes_with_the_memberships_in_one_statement(world, as_user):
    client = as_user(world.asd)
    with Statements() as statements:
        page = client.get("/inbox")
    assert page.status_code == 200
    assert ">Eingang</a>" in page.get_data(as_text=True), "the menu was built from the memberships"
    loads = [s for s in statements.seen if "user_account.fs_uniquifier =" in s]
    assert len(loads) == 1 and "JOIN membership" in loads[0]
    assert not [s for s in statements.seen if "WHERE membership.user_id IN" in s], "no second statement"


def test_a_deactivated_user_loaded_this_way_is_signed_out(world, as_user):
    client = as_user(world.asd)
    world.asd.active = False
    db.session.commit()
    response = client.get("/inbox")
    assert response.status_code == 302 and "/login" in response.location


def test_the_overdue_rule_for_one_referral_agrees_with_its_sql(world):
    now = datetime(2026, 11, 20, 9)
    late = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=now - timedelta(days=30))
    fresh = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=now)
    closed = factories.referral_in(State.CLOSED, world.teacher, world.asd, now=now - timedelta(days=30))
    db.session.commit()
    from sqlalchemy import select

    from referral.cases.models import Referral

    for kinds in [(), (Late.ACKNOWLEDGE,), (Late.FEEDBACK,), (Late.ACKNOWLEDGE, Late.FEEDBACK)]:
        rule = overdue(now, *kinds)
        in_sql = set(db.session.scalars(select(Referral.id).where(rule.condition)))
        in_python = {r.id for r in (late, fresh, closed) if rule.applies(r)}
        assert in_python == in_sql & {late.id, fresh.id, closed.id}, kinds
    assert overdue(now, Late.ACKNOWLEDGE).applies(late) and "Eingangsbestätigung überfällig" in late.overdue(now)
    assert not overdue(now).applies(fresh) and not overdue(now).applies(closed)


def test_gunicorn_workers_freeze_the_loaded_app_for_the_collector(tmp_path):
    script = (
        "import gc, runpy; hooks = runpy.run_path('gunicorn.conf.py'); "
        "before = gc.get_freeze_count(); hooks['post_worker_init'](None); print(before, gc.get_freeze_count())"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    env.pop("REFERRAL_OWN_METRICS_DIR", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    before, after = (int(n) for n in done.stdout.split())
    assert before == 0 and after > 1000
