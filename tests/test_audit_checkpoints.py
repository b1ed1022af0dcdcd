"""Signed checkpoints: the database's owner can rewrite the whole chain from some entry on and
recompute every hash — the chain alone cannot show that, the checkpoints outside the database can."""

from __future__ import annotations

import json
import logging
import stat
from datetime import date
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select, text

from referral import config
from referral.audit import chain
from referral.audit.log import record
from referral.audit.models import AuditBlock, AuditEntry
from referral.extensions import db


def entries(n: int) -> None:
    for i in range(n):
        record("settings.update", object_type="setting", object_id=f"t-{i}", fields=["x"], role="admin", scope="Stadt")
    db.session.commit()
    chain.seal_pending()


@pytest.fixture
def keyed(app, runner, tmp_path):
    """A key made by `flask audit keygen`, checkpoints into a file and to the data-protection officer."""
    key = tmp_path / "audit-checkpoint.pem"
    made = runner.invoke(args=["audit", "keygen", str(key)])
    assert made.exit_code == 0, made.output
    public = made.output.split("AUDIT_CHECKPOINT_PUBLIC_KEY=")[1].strip()
    app.config.update(
        AUDIT_CHECKPOINT_KEY_FILE=str(key),
        AUDIT_CHECKPOINT_FILE=str(tmp_path / "checkpoints.jsonl"),
        AUDIT_CHECKPOINT_MAIL="datenschutz@stadt.example",
    )
    return key, public, tmp_path / "checkpoints.jsonl"


def checkpoint(runner) -> dict:
    result = runner.invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    return json.loads(Path(current_app.config["AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()[-1])


def verify(runner):
    db.session.rollback()
    return runner.invoke(args=["audit", "verify"])


def rewrite_from(entry_id: int) -> None:
    """The attack: change an entry, recompute its hash and every block's hash and link after it."""
    db.session.rollback()
    with db.engine.begin() as connection:
        chain.set_guard(connection, False)
        connection.execute(text("UPDATE audit_entry SET object_id = 'harmlos' WHERE id = :id"), {"id": entry_id})
        row = connection.execute(select(AuditEntry.__table__).where(AuditEntry.id == entry_id)).mappings().one()
        connection.execute(
            text("UPDATE audit_entry SET hash = :h WHERE id = :id"), {"h": chain.entry_hash(row), "id": entry_id}
        )
        prev_hash = chain.GENESIS
        for block in connection.execute(select(AuditBlock.__table__).order_by(AuditBlock.id)).mappings().all():
            pairs = connection.execute(
                select(AuditEntry.id, AuditEntry.hash)
                .where(AuditEntry.id.between(block["first_entry_id"], block["last_entry_id"]))
                .order_by(AuditEntry.id)
            ).all()
            new_hash = chain.block_hash(prev_hash, pairs)
            connection.execute(
                text("UPDATE audit_block SET prev_hash = :p, hash = :h WHERE id = :id"),
                {"p": prev_hash, "h": new_hash, "id": block["id"]},
            )
            prev_hash = new_hash
        chain.set_guard(connection, True)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites_it(runner, keyed):
    key, public, _ = keyed
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and b"PRIVATE KEY" in key.read_bytes()
    assert len(public) == 44  # base64 of the 32-byte Ed25519 public key
    again = runner.invoke(args=["audit", "keygen", str(key)])
    assert again.exit_code != 0 and "never overwritten" in again.output


def test_a_checkpoint_goes_to_the_file_and_the_data_protection_officer(runner, keyed, outbox):
    entries(3)
    written = checkpoint(runner)
    block = db.session.scalars(select(AuditBlock)).one()
    assert (written["block"], written["last_entry_id"], written["hash"]) == (block.id, block.last_entry_id, block.hash)
    (mail,) = list(outbox)
    assert mail.to == ["datenschutz@stadt.example"] and written["signature"] in mail.body
    result = verify(runner)
    assert result.exit_code == 0 and "Checkpoints: 1 signed, all match" in result.output


def test_rewriting_the_chain_with_every_hash_recomputed_is_found_only_by_the_checkpoint(app, runner, keyed):
    entries(3)
    entries(3)
    checkpoint(runner)
    entries(2)
    first_of_second_block = db.session.scalars(select(AuditBlock).order_by(AuditBlock.id)).all()[1].first_entry_id
    rewrite_from(first_of_second_block)

    app.config["AUDIT_CHECKPOINT_FILE"] = ""
    unaware = verify(runner)
    assert unaware.exit_code == 0 and "intact" in unaware.output, "the chain alone cannot show it"

    app.config["AUDIT_CHECKPOINT_FILE"] = str(keyed[2])
    result = verify(runner)
    assert result.exit_code == 1 and "differs from the signed checkpoint" in result.output


def test_cutting_off_the_checkpointed_blocks_is_found(runner, keyed):
    entries(3)
    checkpoint(runner)
    db.session.rollback()
    with db.engine.begin() as connection:
        chain.set_guard(connection, False)
        connection.execute(text("DELETE FROM audit_block"))
        connection.execute(text("DELETE FROM audit_entry"))
        chain.set_guard(connection, True)
    result = verify(runner)
    assert result.exit_code == 1 and "no longer in the chain" in result.output


def test_a_forged_checkpoint_is_refused(runner, keyed):
    entries(3)
    written = checkpoint(runner)
    forged = {**written, "hash": "0" * 64}
    keyed[2].write_text(json.dumps(forged) + "\n")
    result = verify(runner)
    assert result.exit_code == 1 and "signature does not match" in result.output


def test_the_public_key_alone_verifies_and_a_wrong_one_refuses(app, runner, keyed, tmp_path):
    entries(2)
    checkpoint(runner)
    app.config.update(AUDIT_CHECKPOINT_KEY_FILE="", AUDIT_CHECKPOINT_PUBLIC_KEY=keyed[1])
    assert "1 signed, all match" in verify(runner).output
    other = runner.invoke(args=["audit", "keygen", str(tmp_path / "other.pem")])
    app.config["AUDIT_CHECKPOINT_PUBLIC_KEY"] = other.output.split("AUDIT_CHECKPOINT_PUBLIC_KEY=")[1].strip()
    assert verify(runner).exit_code == 1


def test_without_a_key_everything_works_and_verify_says_so(runner):
    entries(2)
    result = verify(runner)
    assert result.exit_code == 0 and "Checkpoints: not configured" in result.output
    refused = runner.invoke(args=["audit", "checkpoint"])
    assert refused.exit_code != 0 and "AUDIT_CHECKPOINT_KEY_FILE is not set" in refused.output


def test_the_daily_job_seals_and_signs(app, keyed):
    from referral.jobs import schedule

    record("settings.update", object_type="setting", object_id="x", role="admin", scope="Stadt")
    db.session.commit()
    run = schedule.run("audit-checkpoint", date.today())
    assert run is not None and run.outcome == "ok" and run.counts["versiegelt"] == 1
    assert json.loads(keyed[2].read_text())["block"] == run.counts["Block"]


def test_production_warns_without_a_checkpoint_key(tmp_path, caplog):
    env = {
        "REFERRAL_ENV": "production",
        "SECRET_KEY": "x" * 64,
        "DATABASE_URL": "postgresql://db/referral",
        "SERVER_NAME": "referral.example",
        "REFERRAL_DATA_KEYS": "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg=",
    }
    with caplog.at_level(logging.WARNING, logger="referral.config"):
        config.load(tmp_path, env)
    assert "AUDIT_CHECKPOINT_KEY_FILE is not set" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="referral.config"):
        loaded = config.load(tmp_path, {**env, "AUDIT_CHECKPOINT_KEY_FILE": "/etc/referral/audit.pem"})
    assert "AUDIT_CHECKPOINT_KEY_FILE" not in caplog.text and loaded["AUDIT_CHECKPOINT_KEY_FILE"]
