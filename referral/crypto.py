"""Encryption at rest: identity, free text, messages and attachments (in chunks).

Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` package) under keys from the
environment: REFERRAL_DATA_KEYS holds one or more keys, newest first, separated by commas. New data
is encrypted with the newest; older keys still decrypt until `flask keys rotate` has re-encrypted
everything. The keyed hash for finding earlier referrals about the same child uses its own key,
derived from the newest data key, and is recomputed by the rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from datetime import date

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator


class DataKeyError(ValueError):
    pass


def parse_keys(value: str) -> list[bytes]:
    keys = [k.strip().encode() for k in value.split(",") if k.strip()]
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError) as error:
            raise DataKeyError(
                "REFERRAL_DATA_KEYS holds a value that is not a Fernet key "
                "(create one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')."
            ) from error
    return keys


class Vault:
    """The keys of one app: encrypt with the newest, decrypt with any."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise DataKeyError("No data key: set REFERRAL_DATA_KEYS.")
        self.keys = keys
        self.newest = Fernet(keys[0])
        self.all = MultiFernet([Fernet(k) for k in keys])
        self.match_key = hashlib.sha256(b"child-match:" + keys[0]).digest()

    def encrypt(self, data: bytes) -> bytes:
        return self.newest.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        return self.all.decrypt(token)

    def is_current(self, token: bytes) -> bool:
        try:
            self.newest.decrypt(token)
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        return self.all.rotate(token)


# --- Attachment content in chunks --------------------------------------------------------------
#
# Each chunk is a Fernet token of its own (stored as raw bytes, not base64: a third less space).
# Fernet authenticates the whole plaintext but has no associated data, so the plaintext starts with
# a header that binds the chunk to its attachment and its place: magic, a hash of the attachment's
# storage key, the sequence number and whether it is the last chunk. A chunk moved to another
# attachment or another place, or a content cut short, fails to open instead of being served.

CHUNK_MAGIC = b"RAC1"
_SEQ_BYTES = 4


class ChunkError(ValueError):
    pass


def chunk_binding(storage_key: str) -> bytes:
    return hashlib.sha256(b"attachment-chunk:" + storage_key.encode()).digest()


def _chunk_header(binding: bytes, seq: int, last: bool) -> bytes:
    return CHUNK_MAGIC + binding + seq.to_bytes(_SEQ_BYTES, "big") + (b"\x01" if last else b"\x00")


def seal_chunk(keys: Vault, binding: bytes, seq: int, last: bool, data: bytes) -> bytes:
    token = keys.encrypt(_chunk_header(binding, seq, last) + data)
    return base64.urlsafe_b64decode(token)


def open_chunk(keys: Vault, binding: bytes, seq: int, sealed: bytes) -> tuple[bytes, bool]:
    """The chunk's content and whether it is the last one; ChunkError if it is not the one expected."""
    try:
        plain = keys.decrypt(base64.urlsafe_b64encode(sealed))
    except InvalidToken as error:
        raise ChunkError(f"chunk {seq} cannot be decrypted with the configured keys") from error
    size = len(CHUNK_MAGIC) + len(binding) + _SEQ_BYTES + 1
    header = plain[:size]
    if header[:-1] != _chunk_header(binding, seq, False)[:-1] or header[-1:] not in (b"\x00", b"\x01"):
        raise ChunkError(f"chunk {seq} does not belong here")
    return plain[size:], header[-1:] == b"\x01"


def chunk_is_current(keys: Vault, sealed: bytes) -> bool:
    return keys.is_current(base64.urlsafe_b64encode(sealed))


def rotate_chunk(keys: Vault, sealed: bytes) -> bytes:
    """Re-encrypted under the newest key; the header inside (attachment, place) stays as it was."""
    return base64.urlsafe_b64decode(keys.rotate(base64.urlsafe_b64encode(sealed)))


def vault() -> Vault:
    found: Vault = current_app.extensions["referral_vault"]
    return found


class EncryptedText(TypeDecorator[str]):
    """Text stored encrypted. Empty text stays empty, so that "nothing given" remains checkable."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == "":
            return value
        return vault().encrypt(value.encode()).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == "":
            return value
        return vault().decrypt(value.encode()).decode()


class EncryptedDate(TypeDecorator[date]):
    """A date stored encrypted (the date of birth identifies a child)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return vault().encrypt(value.isoformat().encode()).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> date | None:
        if value is None:
            return None
        return date.fromisoformat(vault().decrypt(value.encode()).decode())


GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def normalise_name(value: str) -> str:
    """Müller = Mueller = MÜLLER = " müller ": lower case, umlauts spelt out, accents and spaces dropped."""
    value = unicodedata.normalize("NFC", value or "").strip().lower().translate(GERMAN)
    value = unicodedata.normalize("NFKD", value)
    value = "".join(c for c in value if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "", value)


def child_key(last_name: str, first_name: str, birth_date: date | None, key: bytes | None = None) -> str | None:
    """Keyed hash of (last name, first name, date of birth), or None while one of them is missing."""
    last, first = normalise_name(last_name), normalise_name(first_name)
    if not (last and first and birth_date):
        return None
    message = f"{last}|{first}|{birth_date.isoformat()}".encode()
    digest = hmac.new(key or vault().match_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
