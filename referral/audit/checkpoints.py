"""Signed checkpoints of the audit chain, kept where the database's owner cannot change them.

Whoever owns the database can rewrite the log from some entry on and recompute every hash and
block: the chain alone cannot show that. A checkpoint — the newest block's id, its last entry and
its hash, signed with an Ed25519 key that is not on the database server — is appended to a file
(AUDIT_CHECKPOINT_FILE, e.g. on another machine's mount or a write-once store) and/or mailed to
the data-protection officer (AUDIT_CHECKPOINT_MAIL). `flask audit verify` checks every checkpoint's
signature with the public key and that the chain still holds each checkpointed block with the same
hash, so a rewrite of anything up to the last checkpoint is found.

The signed text is the checkpoint without its signature as compact JSON with sorted keys.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..timeutil import utcnow
from .models import AuditBlock

SIGNED = ("v", "block", "last_entry_id", "entries", "hash", "at")


class CheckpointError(Exception):
    pass


# --- Keys ----------------------------------------------------------------------------------------


def public_text(key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes: short enough for AUDIT_CHECKPOINT_PUBLIC_KEY."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def generate(path: Path) -> str:
    """A new private key, written to `path` (PEM, mode 0600, never overwriting); its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise CheckpointError(f"{path} exists already; a key is never overwritten.") from error
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return public_text(key.public_key())


def private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"AUDIT_CHECKPOINT_KEY_FILE {path}: cannot read an Ed25519 key ({error}).") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"AUDIT_CHECKPOINT_KEY_FILE {path}: not an Ed25519 key.")
    return key


def public_key() -> Ed25519PublicKey | None:
    """AUDIT_CHECKPOINT_PUBLIC_KEY, else derived from the key file; None when neither is set."""
    config = current_app.config
    if text := config.get("AUDIT_CHECKPOINT_PUBLIC_KEY"):
        try:
            return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
        except ValueError as error:
            raise CheckpointError("AUDIT_CHECKPOINT_PUBLIC_KEY is not a base64 Ed25519 public key.") from error
    if path := config.get("AUDIT_CHECKPOINT_KEY_FILE"):
        return private_key(path).public_key()
    return None


# --- Writing -------------------------------------------------------------------------------------


def _message(checkpoint: dict[str, Any]) -> bytes:
    return json.dumps({k: checkpoint[k] for k in SIGNED}, sort_keys=True, separators=(",", ":")).encode()


def make(key: Ed25519PrivateKey) -> dict[str, Any] | None:
    """The signed checkpoint of the newest block (None: nothing sealed yet)."""
    block = db.session.execute(
        select(AuditBlock.id, AuditBlock.last_entry_id, AuditBlock.hash).order_by(AuditBlock.id.desc()).limit(1)
    ).first()
    if block is None:
        return None
    entries = db.session.scalar(select(db.func.coalesce(db.func.sum(AuditBlock.entries), 0)))
    checkpoint: dict[str, Any] = {
        "v": 1,
        "block": int(block[0]),
        "last_entry_id": int(block[1]),
        "entries": int(entries or 0),  # sealed entries up to this block (legacy ones not counted)
        "hash": str(block[2]),
        "at": utcnow().isoformat(timespec="seconds") + "Z",
    }
    checkpoint["signature"] = base64.b64encode(key.sign(_message(checkpoint))).decode()
    return checkpoint


def publish() -> dict[str, Any] | None:
    """Sign the chain's head and append it to AUDIT_CHECKPOINT_FILE and/or queue the mail to
    AUDIT_CHECKPOINT_MAIL (in the caller's transaction: sent when it commits). None when no key is
    configured or nothing is sealed yet."""
    config = current_app.config
    if not config.get("AUDIT_CHECKPOINT_KEY_FILE"):
        return None
    checkpoint = make(private_key(config["AUDIT_CHECKPOINT_KEY_FILE"]))
    if checkpoint is None:
        return None
    line = json.dumps(checkpoint, sort_keys=True, separators=(",", ":"))
    if path := config.get("AUDIT_CHECKPOINT_FILE"):
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(descriptor, "a") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
    if recipient := config.get("AUDIT_CHECKPOINT_MAIL"):
        from ..notifications.delivery import enqueue

        enqueue(
            recipient,
            f"Prüfpunkt des Protokolls: Block {checkpoint['block']}",
            "Signierter Prüfpunkt der Protokollkette (bitte unverändert aufbewahren; "
            "`flask audit verify --checkpoints DATEI` prüft die Kette dagegen):\n\n" + line + "\n",
        )
    return checkpoint


# --- Checking ------------------------------------------------------------------------------------


@dataclass
class Pinned:
    """What the checkpoints require of the chain: block id -> (last entry id, hash)."""

    blocks: dict[int, tuple[int, str]] = field(default_factory=dict)
    problem: str = ""
    configured: bool = True
    count: int = 0
    newest: dict[str, Any] | None = None

    def summary(self) -> str:
        if not self.configured:
            return "Checkpoints: not configured (no AUDIT_CHECKPOINT_PUBLIC_KEY or key file, or no checkpoint file)."
        if not self.count:
            return "Checkpoints: none written yet."
        newest = self.newest or {}
        return (
            f"Checkpoints: {self.count} signed, all match; newest: block {newest.get('block')} "
            f"(entry {newest.get('last_entry_id')}) of {newest.get('at')}."
        )


def read(path: Path, key: Ed25519PublicKey) -> Pinned:
    pinned = Pinned()
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return pinned
    except OSError as error:
        return Pinned(problem=f"checkpoint file {path}: {error}")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            checkpoint = json.loads(line)
            key.verify(base64.b64decode(checkpoint["signature"]), _message(checkpoint))
            block, last, hashed = int(checkpoint["block"]), int(checkpoint["last_entry_id"]), str(checkpoint["hash"])
        except InvalidSignature:
            return Pinned(problem=f"checkpoint line {number}: the signature does not match (forged or changed)")
        except (ValueError, KeyError, TypeError) as error:
            return Pinned(problem=f"checkpoint line {number}: unreadable ({type(error).__name__})")
        if pinned.blocks.get(block, (last, hashed)) != (last, hashed):
            return Pinned(problem=f"checkpoint line {number}: two checkpoints name block {block} differently")
        pinned.blocks[block] = (last, hashed)
        pinned.count += 1
        pinned.newest = checkpoint
    return pinned


def configured(path: str | None = None) -> Pinned:
    """The checkpoints of AUDIT_CHECKPOINT_FILE (or `path`), checked against the public key."""
    path = path or current_app.config.get("AUDIT_CHECKPOINT_FILE")
    try:
        key = public_key()
    except CheckpointError as error:
        return Pinned(problem=str(error))
    if key is None or not path:
        return Pinned(configured=False)
    return read(Path(path), key)
