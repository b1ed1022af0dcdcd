"""The audit log: each audited event writes its entry; the chain shows tampering; writers never fork it."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from referral.audit import chain
from referral.audit.log import record
from referral.audit.models import AuditBlock, AuditEntry
from referral.cases.process import State
from referral.extensions import db

from . import factories
from .conftest import csrf_token


def log(action: str | None = None) -> list[AuditEntry]:
    db.session.expire_all()
    statement = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        statement = statement.where(AuditEntry.action == action)
    return db.session.scalars(statement).all()


def test_logins_failures_and_logouts_are_recorded(client, world, login):
    client.post(
        "/login", data={"email": world.teacher.email, "password": "falsch", "csrf_token": csrf_token(client, "/login")}
    )
    client.post(
        "/login", data={"email": "niemand@test.example", "password": "x", "csrf_token": csrf_token(client, "/login")}
    )
    login(world.teacher)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/school")})
    failures = log("login.failure")
    assert [f.object_id for f in failures] == [str(world.teacher.id), "unbekannt"]
    assert all(f.actor_id is None for f in failures)
    assert "niemand" not in str([(f.object_id, f.fields) for f in failures]), "an unknown address is not stored"
    [success] = log("login.success")
    assert success.actor_id == world.teacher.id and success.request_id
    assert log("logout")[0].actor_id == world.teacher.id


def test_views_downloads_and_changes_are_recorded_with_role_and_scope(as_user, world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    attachment = factories.services.add_attachment(referral, world.teacher, "a.pdf", b"%PDF-1.4 x")
    db.session.commit()
    asd = as_user(world.asd)
    asd.get(f"/referrals/{referral.id}")
    asd.get(f"/referrals/{referral.id}/attachments/{attachment.id}")
    asd.post(f"/referrals/{referral.id}/acknowledge", data={"csrf_token": csrf_token(asd, f"/referrals/{referral.id}")})

    views = [e for e in log("referral.view") if e.actor_id == world.asd.id]
    assert views and views[0].object_type == "referral" and views[0].object_id == str(referral.id)
    assert views[0].actor_role == "asd_worker" and views[0].actor_scope == "Bezirk Wanne-Eickel"
    assert views[0].school_id == world.schools["a"].id and views[0].district_id == world.districts["we"].id
    assert log("attachment.download")[0].fields == [f"attachment {attachment.id}"]
    [acknowledged] = log("referral.acknowledge")
    assert acknowledged.actor_id == world.asd.id and {"state", "acknowledged_at"} <= set(acknowledged.fields)


def test_changed_fields_are_named_never_their_values(as_user, world):
    from .test_permissions import draft_form

    teacher = as_user(world.teacher)
    teacher.post(
        "/referrals/new",
        data={
            **draft_form(world),
            "child_last_name": "Quastenflosser",
            "csrf_token": csrf_token(teacher, "/referrals/new"),
        },
    )
    [saved] = log("referral.edit")
    assert "child_last_name" in saved.fields and "child_first_name" in saved.fields
    raw = db.session.execute(text("SELECT * FROM audit_entry")).all()
    assert "Quastenflosser" not in str(raw) and "Geändert" not in str(raw)


def test_denials_are_recorded(as_user, world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    assert as_user(world.teacher_b).get(f"/referrals/{referral.id}").status_code == 404
    assert as_user(world.teacher).get("/inbox").status_code == 403
    denials = log("access.denied")
    assert [(d.actor_id, d.object_type, d.object_id, d.fields[0]) for d in denials] == [
        (world.teacher_b.id, "referral", str(referral.id), "404"),
        (world.teacher.id, "page", "/inbox", "403"),
    ]


def test_if_the_log_cannot_be_written_the_action_fails(as_user, world, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    before = len(log())

    def broken(entry):
        raise RuntimeError("log disk full")

    monkeypatch.setattr(chain, "append", broken)
    asd = as_user(world.asd)
    token = csrf_token(asd, "/inbox")
    response = asd.post(f"/referrals/{referral.id}/acknowledge", data={"csrf_token": token})
    assert response.status_code == 500
    db.session.expire_all()
    assert db.session.get(type(referral), referral.id).state is State.SUBMITTED and len(log()) == before


# --- The chain -------------------------------------------------------------------------------


def some_entries(n: int = 5, seal: bool = True) -> list[AuditEntry]:
    for i in range(n):
        record(
            "settings.update", object_type="setting", object_id=f"test-{i}", fields=["x"], role="admin", scope="Stadt"
        )
    db.session.commit()
    if seal:
        chain.seal_pending()
    return log()


def tamper(*statements: str, **params) -> None:
    """An attacker with the database owner's rights: lifts the guard, changes rows, puts it back."""
    db.session.rollback()  # the test's own reads must not hold a lock the attacker waits for
    with db.engine.begin() as connection:
        chain.set_guard(connection, False)
        for statement in statements:
            connection.execute(text(statement), params)
        chain.set_guard(connection, True)


def verify(runner):
    return runner.invoke(args=["audit", "verify"])


def blocks() -> list[AuditBlock]:
    db.session.expire_all()
    return db.session.scalars(select(AuditBlock).order_by(AuditBlock.id)).all()


def test_an_intact_chain_verifies(app, runner):
    some_entries(5)
    some_entries(2, seal=False)
    result = verify(runner)
    assert result.exit_code == 0 and "intact: 7 entries" in result.output
    assert "5 sealed in 1 blocks, 2 not yet sealed" in result.output
    assert "Checkpoints: not configured" in result.output


def test_entries_take_their_place_from_the_database_and_hash_their_content(app):
    """The hash format, by hand: other writers (the demo generator) compute it with entry_hash."""
    record("settings.update", object_type="setting", object_id="x", fields=["b", "a"], role="admin", scope="Stadt")
    db.session.commit()
    (entry,) = log()
    assert entry.seq is None and entry.prev_hash is None
    canonical = json.dumps(
        [
            "v2",
            entry.at.isoformat(timespec="microseconds"),
            None,
            "admin",
            "Stadt",
            "settings.update",
            "setting",
            "x",
            None,
            None,
            ["a", "b"],
            "",
        ],
        separators=(",", ":"),
    )
    assert entry.hash == hashlib.sha256(canonical.encode()).hexdigest()
    values = {c: getattr(entry, c) for c in chain.CONTENT}
    assert chain.entry_hash(values) == entry.hash
    assert chain.entry_hash({**values, "object_id": "y"}) != entry.hash


def test_an_entry_left_to_the_column_defaults_hashes_what_is_stored(app, runner):
    chain.append(AuditEntry(action="settings.update"))
    db.session.commit()
    (entry,) = log()
    assert (entry.actor_role, entry.fields, entry.at is not None) == ("", [], True)
    assert verify(runner).exit_code == 0


def test_blocks_link_the_entries_in_id_order_and_follow_each_other(app):
    first = some_entries(3)
    assert chain.seal_pending() == 0, "nothing left to seal"
    later = some_entries(2)[3:]
    block_1, block_2 = blocks()
    assert (block_1.first_entry_id, block_1.last_entry_id, block_1.entries) == (first[0].id, first[2].id, 3)
    by_hand = hashlib.sha256((chain.GENESIS + "".join(f"{e.id}:{e.hash}\n" for e in first)).encode()).hexdigest()
    assert block_1.prev_hash == chain.GENESIS and block_1.hash == by_hand
    assert block_2.prev_hash == block_1.hash and block_2.hash == chain.block_hash(
        block_1.hash, [(e.id, e.hash) for e in later]
    )


def test_a_backlog_is_sealed_in_blocks_up_to_the_limit(app, runner, monkeypatch):
    monkeypatch.setattr(chain, "BLOCK_SIZE", 2)
    monkeypatch.setattr(chain, "ROUND", 3)
    some_entries(7, seal=False)
    assert chain.seal_pending(limit=3) == 3
    assert chain.seal_pending() == 4
    assert [b.entries for b in blocks()] == [2, 1, 2, 1, 1]
    result = verify(runner)
    assert result.exit_code == 0 and "7 sealed in 5 blocks" in result.output


def entry_id(n: int) -> int:
    return log()[n - 1].id


def test_changed_content_is_detected(app, runner):
    some_entries()
    tamper("UPDATE audit_entry SET object_id = 'harmlos' WHERE id = :id", id=entry_id(3))
    result = verify(runner)
    assert result.exit_code == 1 and f"BROKEN at entry {entry_id(3)}" in result.output
    assert "content changed" in result.output


def test_changed_content_of_an_unsealed_entry_is_detected(app, runner):
    some_entries(3, seal=False)
    tamper("UPDATE audit_entry SET object_id = 'harmlos' WHERE id = :id", id=entry_id(2))
    result = verify(runner)
    assert result.exit_code == 1 and f"BROKEN at entry {entry_id(2)}: content changed" in result.output


def test_changed_content_with_a_recomputed_hash_is_detected(app, runner):
    some_entries()
    entry = log()[2]
    forged = chain.entry_hash({**{c: getattr(entry, c) for c in chain.CONTENT}, "object_id": "harmlos"})
    tamper("UPDATE audit_entry SET object_id = 'harmlos', hash = :h WHERE id = :id", h=forged, id=entry.id)
    result = verify(runner)
    assert result.exit_code == 1 and f"BROKEN at block {blocks()[0].id}" in result.output
    assert "does not match its entries" in result.output


def test_a_deleted_entry_is_detected(app, runner):
    some_entries()
    tamper("DELETE FROM audit_entry WHERE id = :id", id=entry_id(2))
    result = verify(runner)
    assert result.exit_code == 1 and "does not match its entries" in result.output


def test_two_reordered_entries_are_detected(app, runner):
    some_entries()
    three, four = entry_id(3), entry_id(4)
    tamper(
        "UPDATE audit_entry SET id = -1 WHERE id = :three",
        "UPDATE audit_entry SET id = :three WHERE id = :four",
        "UPDATE audit_entry SET id = :four WHERE id = -1",
        three=three,
        four=four,
    )
    result = verify(runner)
    assert result.exit_code == 1 and "does not match its entries" in result.output


def test_an_inserted_entry_is_detected(app, runner):
    entries = some_entries()
    tamper(
        "INSERT INTO audit_entry (id, at, actor_role, actor_scope, action, object_type, object_id, fields, "
        "request_id, hash) SELECT 0, at, actor_role, actor_scope, action, object_type, object_id, fields, "
        "request_id, hash FROM audit_entry WHERE id = :id",
        id=entries[0].id,
    )
    result = verify(runner)
    assert result.exit_code == 1 and "BROKEN at entry 0: is in no block" in result.output


def test_a_deleted_or_changed_block_is_detected(app, runner):
    some_entries(2)
    some_entries(2)
    some_entries(2)
    middle = blocks()[1].id
    tamper("DELETE FROM audit_block WHERE id = :id", id=middle)
    result = verify(runner)
    assert result.exit_code == 1 and f"BROKEN at block {middle + 1}: does not follow" in result.output

    tamper("UPDATE audit_block SET hash = :h WHERE id = :id", h="f" * 64, id=blocks()[0].id)
    assert "does not match its entries" in verify(runner).output


def test_a_block_claiming_fewer_entries_is_detected(app, runner):
    some_entries(4)
    block = blocks()[0]
    tamper("UPDATE audit_block SET last_entry_id = last_entry_id - 1 WHERE id = :id", id=block.id)
    result = verify(runner)
    assert (
        result.exit_code == 1
        and f"BROKEN at entry {entry_id(4)}: is in no block" in result.output
        or ("does not match" in result.output)
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET action = 'x'",
        "DELETE FROM audit_entry",
        "UPDATE audit_block SET hash = 'x'",
        "DELETE FROM audit_block",
        "UPDATE audit_head SET seq = 7",
    ],
)
def test_the_database_refuses_to_change_or_delete_entries_and_blocks(app, statement):
    some_entries(1)
    db.session.rollback()
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as connection:
        connection.execute(text(statement))
    assert len(log()) == 1 and len(blocks()) == 1


def test_concurrent_writers_never_fork_the_chain(app, runner):
    """Two threads, each with its own connection and transaction, append at the same moments; two
    sealers run alongside them."""
    barrier = threading.Barrier(2)
    errors = []

    def writer(n: int):
        try:
            with app.app_context():
                for i in range(15):
                    barrier.wait(timeout=30)
                    record("settings.update", object_type="setting", object_id=f"{n}-{i}", role="admin", scope="Stadt")
                    db.session.commit()
                    if i % 5 == 4:
                        chain.seal_pending()
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    chain.seal_pending()
    entries = log()
    assert len({e.id for e in entries}) == 30
    assert sum(b.entries for b in blocks()) == 30
    assert verify(runner).exit_code == 0


def legacy_entries(n: int) -> None:
    """Entries as the old code wrote them: numbered, each hashed with the one before, the head row."""
    prev_hash = chain.GENESIS
    with db.engine.begin() as connection:
        chain.set_guard(connection, False)
        for seq in range(1, n + 1):
            values = {
                "at": datetime(2026, 1, 1, 10, seq),
                "actor_id": None,
                "actor_role": "admin",
                "actor_scope": "Stadt",
                "action": "settings.update",
                "object_type": "setting",
                "object_id": f"alt-{seq}",
                "school_id": None,
                "district_id": None,
                "fields": ["x"],
                "request_id": "",
                "seq": seq,
                "prev_hash": prev_hash,
            }
            values["hash"] = chain.legacy_hash(values)
            connection.execute(AuditEntry.__table__.insert().values(**values))
            prev_hash = values["hash"]
        connection.execute(text("UPDATE audit_head SET seq = :n, last_hash = :h"), {"n": n, "h": prev_hash})
        chain.set_guard(connection, True)


def test_the_legacy_chain_still_verifies_and_the_first_block_follows_it(app, runner):
    legacy_entries(3)
    some_entries(2)
    legacy_end = log()[2].hash
    assert blocks()[0].prev_hash == legacy_end and blocks()[0].first_entry_id == log()[3].id
    result = verify(runner)
    assert result.exit_code == 0 and "intact: 5 entries (3 in the legacy chain, 2 sealed in 1 blocks" in result.output


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE audit_entry SET object_id = 'harmlos' WHERE seq = 2", "BROKEN at entry 2: content changed"),
        ("DELETE FROM audit_entry WHERE seq = 2", "BROKEN at entry 2"),
        ("DELETE FROM audit_entry WHERE seq = 3", "newest legacy entries are missing"),
    ],
)
def test_tampering_with_the_legacy_chain_is_detected(app, runner, statement, message):
    legacy_entries(3)
    some_entries(1)
    tamper(statement)
    result = verify(runner)
    assert result.exit_code == 1 and message in result.output


def test_the_worker_seals_when_the_oldest_entry_has_waited(app):
    from referral.jobs import schedule

    some_entries(2, seal=False)
    app.config["AUDIT_SEAL_SECONDS"] = 3600
    assert schedule.seal_audit_log() == 0 and blocks() == []
    app.config["AUDIT_SEAL_SECONDS"] = 0
    assert schedule.seal_audit_log() == 2
    assert [b.entries for b in blocks()] == [2] and chain.verify().ok


def test_every_worker_round_seals(app, runner):
    some_entries(2, seal=False)
    app.config["AUDIT_SEAL_SECONDS"] = 0
    app.config["JOB_TIMES"] = {name: datetime.max.time() for name in app.config["JOB_TIMES"]}
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0 and sum(b.entries for b in blocks()) == 2


def test_the_seal_command_seals_everything(app, runner):
    some_entries(3, seal=False)
    result = runner.invoke(args=["audit", "seal"])
    assert result.exit_code == 0 and "3 entries sealed" in result.output and verify(runner).exit_code == 0


# --- The coordinator's pages -------------------------------------------------------------------


def test_the_coordinator_searches_the_log(as_user, world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    other = factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    as_user(world.asd).get(f"/referrals/{referral.id}")
    as_user(world.asd_hm).get(f"/referrals/{other.id}")
    coordinator = as_user(world.coordinator)

    def rows(**query):
        html = coordinator.get("/coordination/audit", query_string=query).get_data(as_text=True)
        return html.split("<tbody>")[1].split("</tbody>")[0]

    by_number = rows(case_number=referral.number)
    assert "Anna ASD" in by_number and "Mira HM" not in by_number and referral.number in by_number
    assert "Mira HM" in rows(district=str(world.districts["hm"].id), action="referral.view")
    assert "Anna ASD" not in rows(school=str(world.schools["b"].id))
    assert "Anna ASD" in rows(actor="anna")
    assert "Keine Einträge" in rows(date_from="2000-01-01", date_to="2000-01-02")
    assert "vor seinem Anfang" in coordinator.get(
        "/coordination/audit?date_from=2026-02-01&date_to=2026-01-01"
    ).get_data(as_text=True)
    assert factories.CHILD_LAST not in coordinator.get("/coordination/audit").get_data(as_text=True)


def test_the_log_exports_as_csv_and_the_export_is_logged(as_user, world):
    factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    response = as_user(world.coordinator).get("/coordination/audit.csv?action=referral.submit")
    body = response.get_data(as_text=True)
    assert response.mimetype == "text/csv" and body.startswith("\ufeffZeit;Person;")
    assert len(body.strip().splitlines()) == 2 and "Mitteilung eingereicht" in body
    assert log("export.audit")[0].fields == ["action"]


def test_the_coordinator_checks_the_chain_from_the_page(as_user, world):
    some_entries(3)
    coordinator = as_user(world.coordinator)
    ok = coordinator.post(
        "/coordination/audit/verify",
        data={"csrf_token": csrf_token(coordinator, "/coordination/audit")},
        follow_redirects=True,
    )
    assert "Das Protokoll ist unverändert" in ok.get_data(as_text=True)
    second = entry_id(2)
    tamper("UPDATE audit_entry SET fields = '[]' WHERE id = :id", id=second)
    broken = coordinator.post(
        "/coordination/audit/verify",
        data={"csrf_token": csrf_token(coordinator, "/coordination/audit")},
        follow_redirects=True,
    )
    assert f"Eintrag Nr. {second}" in broken.get_data(as_text=True)


def test_access_history_for_the_district_lead_and_the_coordinator(as_user, world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    as_user(world.asd).get(f"/referrals/{referral.id}")
    as_user(world.teacher_b).get(f"/referrals/{referral.id}")  # refused, and recorded
    for user in (world.asd_lead, world.coordinator):
        page = as_user(user).get(f"/referrals/{referral.id}/access")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "Anna ASD" in html and "Bernd B" in html and "Zugriff verweigert" in html
    for user in (world.asd, world.teacher, world.school_lead, world.asd_lead_hm, world.admin):
        assert as_user(user).get(f"/referrals/{referral.id}/access").status_code == 404
    assert "Zugriffsprotokoll dieser Mitteilung" in as_user(world.asd_lead).get(f"/referrals/{referral.id}").get_data(
        as_text=True
    )


# --- The migration ---------------------------------------------------------------------------

BEFORE_BLOCKS = "f2b6d0c8e4a1"


@pytest.fixture
def migrations(app):
    """As in test_migrations.py: back at the newest revision afterwards, rebuilt if need be."""
    yield
    db.session.remove()
    try:
        upgrade()
    except Exception:
        downgrade(revision="base")
        upgrade()


def old_rule(values: dict) -> str:
    """The hash as the code before blocks computed it (written out here, not taken from chain.py)."""
    content = {**values, "at": values["at"].isoformat(timespec="microseconds")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_the_migration_keeps_the_old_chain_and_its_downgrade_appends_the_new_entries_to_it(app, runner, migrations):
    db.session.remove()
    downgrade(revision=BEFORE_BLOCKS)
    prev_hash = chain.GENESIS
    with db.engine.begin() as connection:
        for seq in (1, 2):
            values = {
                "seq": seq,
                "at": datetime(2026, 11, 30, 8, seq, 0, 120),
                "actor_id": None,
                "actor_role": "admin",
                "actor_scope": "Stadt",
                "action": "settings.update",
                "object_type": "setting",
                "object_id": f"alt-{seq}",
                "school_id": None,
                "district_id": None,
                "fields": ["a"],
                "request_id": "",
                "prev_hash": prev_hash,
            }
            prev_hash = old_rule(values)
            connection.execute(
                text(
                    "INSERT INTO audit_entry (seq, at, actor_role, actor_scope, action, object_type, object_id, "
                    "fields, request_id, prev_hash, hash) VALUES (:seq, :at, 'admin', 'Stadt', 'settings.update', "
                    "'setting', :object_id, '[\"a\"]', '', :prev_hash, :hash)"
                ),
                {**values, "hash": prev_hash},
            )
        connection.execute(text("UPDATE audit_head SET seq = 2, last_hash = :h"), {"h": prev_hash})
    upgrade()

    some_entries(3)
    assert blocks()[0].prev_hash == prev_hash
    result = verify(runner)
    assert result.exit_code == 0 and "intact: 5 entries (2 in the legacy chain, 3 sealed in 1 blocks" in result.output

    db.session.remove()
    downgrade(revision=BEFORE_BLOCKS)
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT seq, prev_hash, hash FROM audit_entry ORDER BY seq")).all()
        head = connection.execute(text("SELECT seq, last_hash FROM audit_head")).one()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5] and tuple(head) == (5, rows[-1].hash)
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(rows, rows[1:], strict=False))
    upgrade()
    assert "intact: 5 entries (5 in the legacy chain" in verify(runner).output
