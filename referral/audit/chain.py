"""The audit log's tamper evidence: entries are appended without any lock, the worker seals them into
a chain of blocks, `verify` walks everything as a stream, and signed checkpoints (checkpoints.py)
pin the chain from outside the database.

Writing. `append` queues an entry in the session; at the commit (`write_pending`, before_commit) it
is inserted with `hash` = SHA-256 of its content (`entry_hash`). Its place in the log is its id, from
the database (a sequence on PostgreSQL, the rowid on SQLite): no head row, so no writer ever waits
for another one's commit.

Sealing. `seal_pending` (the worker, every round) links the committed entries in id order into
`audit_block`s: a block's hash covers the previous block's hash and the (id, hash) pairs of all its
entries, so changing, deleting, inserting or reordering an entry, or deleting or changing a block,
breaks a block hash or the link between blocks. The first block follows the legacy chain (entries
written before blocks existed, each hashed with the one before it, see `legacy_hash`).

What sealing must never do is seal past an id that an open transaction still holds: that entry would
commit later inside a sealed range, outside the chain. See `_settled_up_to` for how that is ruled
out on PostgreSQL (without making writers wait); SQLite has one writer at a time, whose ids are
always above every committed one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Text, cast, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from ..extensions import db
from ..timeutil import utcnow
from .models import AuditBlock, AuditEntry, AuditHead

GENESIS = "0" * 64
BLOCK_SIZE = 1000  # entries per block at most: a broken block points to at most this many entries
CONTENT = (
    "at",
    "actor_id",
    "actor_role",
    "actor_scope",
    "action",
    "object_type",
    "object_id",
    "school_id",
    "district_id",
    "fields",
    "request_id",
)

# --- Hashing -------------------------------------------------------------------------------------

# One JSON array in a fixed order, compact, ASCII-only: canonical for these types (ints, None,
# strings, a list of strings) and encoded in C, about ten times cheaper than the legacy form's
# sorted dict. The leading "v2" keeps it apart from anything hashed by another rule.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _at(value: datetime | str) -> str:
    if isinstance(value, str):  # a raw SQLite value
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds")


def _v2(*values: Any) -> str:
    """The hash of (at, actor_id, actor_role, actor_scope, action, object_type, object_id,
    school_id, district_id, fields, request_id)."""
    (
        at,
        actor_id,
        actor_role,
        actor_scope,
        action,
        object_type,
        object_id,
        school_id,
        district_id,
        fields,
        request_id,
    ) = values
    content = [
        "v2",
        _at(at),
        actor_id,
        actor_role,
        actor_scope,
        action,
        object_type,
        object_id,
        school_id,
        district_id,
        list(fields or ()),
        request_id,
    ]
    return hashlib.sha256(_encode(content).encode()).hexdigest()


def entry_hash(values: Mapping[str, Any]) -> str:
    """The hash of an entry's content; `values` keyed by AuditEntry's column names (CONTENT; others
    are ignored). Computed in Python before the insert, by the app and by bulk writers alike."""
    return _v2(*(values.get(name) for name in CONTENT))


def legacy_hash(values: Mapping[str, Any]) -> str:
    """The rule of entries written before blocks existed: content, `seq` and `prev_hash`, as a
    sorted JSON object."""
    content = {name: values.get(name) for name in (*CONTENT, "seq", "prev_hash")}
    content["at"] = _at(values["at"])
    content["fields"] = list(values.get("fields") or [])
    return hashlib.sha256(_encode_sorted(content).encode()).hexdigest()


_encode_sorted = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode  # json.dumps(…) of the old code


def block_hash(prev_hash: str, pairs: Iterable[tuple[int, str]]) -> str:
    """SHA-256 over the previous block's hash (64 hex digits) followed by "<id>:<hash>\\n" for each
    entry of the block in id order."""
    digest = hashlib.sha256(prev_hash.encode())
    digest.update(b"".join(b"%d:%s\n" % (entry_id, entry_hash.encode()) for entry_id, entry_hash in pairs))
    return digest.hexdigest()


# --- Writing -------------------------------------------------------------------------------------

PENDING = "audit_pending"


def append(entry: AuditEntry) -> AuditEntry:
    """Queue `entry` for the current transaction; it is inserted when the transaction commits.

    Entries wait outside the session until the commit, so that recording (e.g. "viewed", before a page
    is rendered) writes nothing yet; an entry recorded in a nested transaction that is rolled back
    goes with it (`_discard`).
    """
    session = db.session()
    session.info.setdefault(PENDING, []).append((entry, session.get_nested_transaction()))
    return entry


def write_pending(session: Session) -> None:
    """Before a commit: the transaction's queued entries, hashed, go into the session in the order
    recorded (the commit's flush inserts them; the database gives the ids)."""
    pending = session.info.pop(PENDING, [])
    for entry, _ in pending:
        _apply_defaults(entry)
        entry.hash = entry_hash(entry.__dict__)
        session.add(entry)


def _apply_defaults(entry: AuditEntry) -> None:
    """The columns' Python defaults, set now: the hash must cover the values the insert will store."""
    for name in CONTENT:
        default = AuditEntry.__table__.c[name].default
        if entry.__dict__.get(name) is None and default is not None:
            setattr(entry, name, default.arg(None) if default.is_callable else default.arg)


def _discard(session: Session, previous_transaction: SessionTransaction) -> None:
    """After a rollback: entries recorded inside the rolled-back (nested) transaction go with it."""
    pending = session.info.get(PENDING)
    if not pending:
        return
    if not previous_transaction.nested:
        session.info.pop(PENDING, None)
        return

    def inside(transaction: SessionTransaction | None) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    session.info[PENDING] = [(entry, tx) for entry, tx in pending if not inside(tx)]


def register() -> None:
    if not event.contains(Session, "before_commit", write_pending):
        event.listen(Session, "before_commit", write_pending)
        event.listen(Session, "after_soft_rollback", _discard)


# --- Sealing -------------------------------------------------------------------------------------

SEAL_LOCK = 0x61756469  # the sealers' advisory lock on PostgreSQL (writers never take it)


class _NotSettled(Exception):
    """A transaction that may still commit an entry below the others has not ended in time."""


def _settled_up_to(connection: Connection, wait: float) -> int | None:
    """The highest id up to which no entry can appear any more (None: no bound); _NotSettled when
    the transactions that might still add one did not end within `wait` seconds.

    PostgreSQL hands out ids from the sequence at the insert; the inserting transaction may commit
    seconds later, after entries with higher ids. So: (1) read how far the sequence has handed out
    ids, L; (2) list the transactions that hold the insert lock (ROW EXCLUSIVE) on audit_entry — an
    INSERT takes it before it draws its id, and keeps it until the transaction ends, so every
    transaction that drew an id <= L has ended or is on that list; (3) wait until all of them have
    ended (each holds the lock on its own virtual transaction id until then). After that every id
    <= L is committed or never will be. This reads pg_locks and waits for nobody's locks; writers
    never wait for the sealer. It relies on the sequence's CACHE 1 (the migration sets it): with a
    per-session cache, a session could insert a cached id <= L later. A time margin would be simpler
    but is only a guess about how long a commit may take.

    SQLite: one writer at a time, and a new row's id is above every row (committed or its own), so
    all committed entries are final.
    """
    if connection.dialect.name != "postgresql":
        return None
    sequence = connection.execute(text("SELECT pg_get_serial_sequence('audit_entry', 'id')")).scalar_one()
    last, called = connection.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
    upto = int(last) if called else int(last) - 1
    holders = list(
        connection.execute(
            text(
                "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'relation' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND relation = 'audit_entry'::regclass AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
            )
        ).scalars()
    )
    deadline = time.monotonic() + wait
    while holders:
        holders = list(
            connection.execute(
                text("SELECT virtualxid FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY(:v)"),
                {"v": holders},
            ).scalars()
        )
        if not holders:
            break
        if time.monotonic() >= deadline:
            raise _NotSettled
        time.sleep(0.02)
    return upto


def _chain_end(connection: Connection) -> tuple[int, str]:
    """The id after which unsealed entries start and the hash the next block follows."""
    last = connection.execute(
        select(AuditBlock.last_entry_id, AuditBlock.hash).order_by(AuditBlock.id.desc()).limit(1)
    ).first()
    if last is not None:
        return int(last[0]), str(last[1])
    after = connection.execute(select(func.max(AuditEntry.id)).where(AuditEntry.seq.is_not(None))).scalar()
    head = connection.execute(select(AuditHead.last_hash).where(AuditHead.id == 1)).scalar()
    return int(after or 0), str(head or GENESIS)


def _seal(connection: Connection, limit: int | None, wait: float) -> int:
    postgres = connection.dialect.name == "postgresql"
    raw = connection.connection.driver_connection
    if not postgres and not getattr(raw, "in_transaction", True):
        # SQLite: take the write lock first. A sealer that read first and then wanted to write while
        # a writer waits to commit would be refused at once ("database is locked", SQLite's way out
        # of that deadlock); waiting for the lock up front just queues it like any writer.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    if postgres and not connection.execute(text(f"SELECT pg_try_advisory_xact_lock({SEAL_LOCK})")).scalar():
        return 0  # another sealer is at it; unique prev_hash would refuse the second block anyway
    try:
        upto = _settled_up_to(connection, wait)
    except _NotSettled:
        return 0
    after, prev_hash = _chain_end(connection)
    # Two sealers (on SQLite, where they do not exclude each other beforehand) may both build the
    # next block: the unique prev_hash and first_entry_id let only one of them in; the other seals
    # nothing this time. The savepoint keeps a caller's transaction usable.
    sealed, now = 0, utcnow()
    try:
        with connection.begin_nested():
            while limit is None or sealed < limit:
                size = BLOCK_SIZE if limit is None else min(BLOCK_SIZE, limit - sealed)
                statement = (
                    select(AuditEntry.id, AuditEntry.hash)
                    .where(AuditEntry.id > after, AuditEntry.seq.is_(None))
                    .order_by(AuditEntry.id)
                    .limit(size)
                )
                if upto is not None:
                    statement = statement.where(AuditEntry.id <= upto)
                pairs = [(int(i), str(h)) for i, h in connection.execute(statement)]
                if not pairs:
                    break
                prev_hash, previous = block_hash(prev_hash, pairs), prev_hash
                connection.execute(
                    AuditBlock.__table__.insert().values(
                        first_entry_id=pairs[0][0],
                        last_entry_id=pairs[-1][0],
                        entries=len(pairs),
                        prev_hash=previous,
                        hash=prev_hash,
                        sealed_at=now,
                    )
                )
                sealed, after = sealed + len(pairs), pairs[-1][0]
    except IntegrityError:
        return 0
    return sealed


ROUND = 100_000  # entries per transaction when seal_pending commits itself


def seal_due(seconds: float, now: datetime | None = None) -> bool:
    """Whether sealing is due: a full block waiting, or the oldest unsealed entry older than `seconds`."""
    connection = db.session.connection()
    after, _ = _chain_end(connection)
    waiting = (
        select(AuditEntry.at)
        .where(AuditEntry.id > after, AuditEntry.seq.is_(None))
        .order_by(AuditEntry.id)
        .limit(BLOCK_SIZE)
        .subquery()
    )
    oldest, count = connection.execute(select(func.min(waiting.c.at), func.count()).select_from(waiting)).one()
    if not count:
        return False
    return bool(count >= BLOCK_SIZE or oldest <= (now or utcnow()) - timedelta(seconds=seconds))


def seal_pending(
    session_or_connection: Session | Connection | None = None, limit: int | None = None, wait: float = 5.0
) -> int:
    """Link the committed, not yet sealed entries in id order into blocks; the number sealed.

    Without an argument: on a connection of its own, committed here. With a Session or Connection:
    inside its transaction, which the caller commits (entries that transaction inserted itself are
    sealed with it). `wait`: how long to wait for transactions that may still commit an entry below
    the others (PostgreSQL); if they take longer, nothing is sealed this time.
    """
    if session_or_connection is None:
        engine: Engine = db.engine
        total = 0
        while limit is None or total < limit:  # a backlog in transactions of ROUND entries
            size = ROUND if limit is None else min(ROUND, limit - total)
            with engine.begin() as connection:
                sealed = _seal(connection, size, wait)
            total += sealed
            if sealed < size:
                break
        return total
    if isinstance(session_or_connection, Session):
        return _seal(session_or_connection.connection(), limit, wait)
    return _seal(session_or_connection, limit, wait)


# --- Verifying -----------------------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    checked: int  # entries whose content and place were checked
    problem: str = ""
    entry: int | None = None  # the entry where the log breaks (its id; a legacy entry's seq)
    block: int | None = None  # the block where it breaks
    legacy: int = 0
    blocks: int = 0
    unsealed: int = 0
    oldest_unsealed: datetime | None = None
    checkpoints: str = ""  # what the signed checkpoints said, a sentence

    @property
    def where(self) -> str:
        if self.entry is not None:
            return f"entry {self.entry}"
        return f"block {self.block}" if self.block is not None else "the end of the log"

    @property
    def stelle(self) -> str:
        """`where`, for the German page."""
        if self.entry is not None:
            return f"Eintrag Nr. {self.entry}"
        return f"Block {self.block}" if self.block is not None else "Ende des Protokolls"

    def __str__(self) -> str:
        if not self.ok:
            return f"Audit log BROKEN at {self.where}: {self.problem} ({self.checked} entries checked before it)."
        lines = [
            f"Audit log intact: {self.checked} entries ({self.legacy} in the legacy chain, "
            f"{self.checked - self.legacy - self.unsealed} sealed in {self.blocks} blocks, "
            f"{self.unsealed} not yet sealed)."
        ]
        if self.oldest_unsealed is not None:
            lines.append(f"Oldest unsealed entry written at {self.oldest_unsealed:%Y-%m-%d %H:%M:%S} UTC.")
        if self.checkpoints:
            lines.append(self.checkpoints)
        return "\n".join(lines)


class Broken(Exception):
    def __init__(self, problem: str, entry: int | None = None, block: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.entry, self.block = problem, entry, block


_ENTRY = AuditEntry.__table__.c
_BLOCK = AuditBlock.__table__.c


def _column(name: str) -> Any:
    # `fields` as its stored JSON text: most are "[]" or repeat, parsed once each (_fields)
    return cast(_ENTRY.fields, Text).label("fields") if name == "fields" else _ENTRY[name]


def _stream(connection: Connection, statement: Select[Any], batch: int) -> Iterator[Any]:
    """Plain rows of `statement`, streamed in batches. PostgreSQL: psycopg's own server-side cursor
    in binary format (values parsed in C, `batch` rows per FETCH), about three times cheaper than
    SQLAlchemy's row buffering on top of it."""
    if connection.dialect.name == "postgresql":
        sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        raw = connection.connection.driver_connection
        with raw.cursor(name=f"audit_verify_{id(statement)}", binary=True) as cursor:  # type: ignore[union-attr]
            cursor.execute(sql)
            yield from _prefetched(cursor, batch)
        return
    result = connection.execute(statement, execution_options={"stream_results": True, "yield_per": batch})
    for partition in result.partitions():
        yield from partition


def _prefetched(cursor: Any, batch: int) -> Iterator[Any]:
    """The cursor's rows, the next batch fetched by a thread while this one's rows are hashed: the
    server reads and sends while Python computes (psycopg waits for the network without the GIL).
    Only that thread uses the connection until the stream is read or closed."""
    batches: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = cursor.fetchmany(batch)
                batches.put(rows)
                if not rows:
                    return
        except Exception as error:  # noqa: BLE001 - raised in the reading thread
            batches.put(error)

    thread = threading.Thread(target=fetch, name="audit-verify-fetch", daemon=True)
    thread.start()
    try:
        while True:
            rows = batches.get()
            if isinstance(rows, Exception):
                raise rows
            if not rows:
                return
            yield from rows
    finally:
        stop.set()
        while thread.is_alive():  # let it finish a put it may be blocked in
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.05)
        thread.join()


class _Fields(dict[str, list[str]]):
    """Stored `fields` JSON text -> the list, decoded once per distinct text."""

    def __missing__(self, raw: str) -> list[str]:
        value: list[str] = json.loads(raw) if raw else []
        self[raw] = value
        return value


def _verify_legacy(connection: Connection, batch: int, state: dict[str, Any]) -> None:
    statement = (
        select(_ENTRY.seq, _ENTRY.prev_hash, _ENTRY.hash, *(_column(name) for name in CONTENT))
        .where(_ENTRY.seq.is_not(None))
        .order_by(_ENTRY.seq)
    )
    expected, prev_hash, fields = 1, GENESIS, _Fields()
    sha256, encode = hashlib.sha256, _encode_sorted
    for row in _stream(connection, statement, batch):
        (
            seq,
            stored_prev,
            stored_hash,
            at,
            actor_id,
            role,
            scope,
            action,
            otype,
            oid,
            school,
            district,
            raw,
            request,
        ) = row
        if seq != expected:
            raise Broken(f"legacy entry {expected} is missing (next is {seq})", entry=expected)
        if stored_prev != prev_hash:
            raise Broken("does not follow the entry before it (deleted, inserted or reordered)", entry=seq)
        content = {  # legacy_hash inlined
            "seq": seq,
            "at": (at if at.tzinfo is None else at.replace(tzinfo=None)).isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor_role": role,
            "actor_scope": scope,
            "action": action,
            "object_type": otype,
            "object_id": oid,
            "school_id": school,
            "district_id": district,
            "fields": fields[raw],
            "request_id": request,
            "prev_hash": stored_prev,
        }
        if sha256(encode(content).encode()).hexdigest() != stored_hash:
            raise Broken("content changed after it was written", entry=seq)
        prev_hash, expected = stored_hash, expected + 1
        state["checked"] += 1
    head = connection.execute(select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)).first()
    if head is None or head[0] != expected - 1 or head[1] != prev_hash:
        raise Broken("the newest legacy entries are missing (the head names a later end)", entry=expected)
    state["legacy"], state["prev_hash"] = expected - 1, prev_hash


BLOCKS_PER_ROUND = 1000


def _verify_blocks(
    connection: Connection, batch: int, state: dict[str, Any], pinned: dict[int, tuple[int, str]]
) -> None:
    """The blocks in id order, a round of them at a time, each round with the entries of its id
    range (memory stays at one round of blocks); then the entries after the last block, not sealed
    yet."""
    entry_columns = (_ENTRY.id, *(_column(name) for name in CONTENT), _ENTRY.hash)
    fields, prev_hash, seen = _Fields(), state["prev_hash"], set[int]()
    # No lower bound at first: an entry slipped in below the first block (even at id 0) is found.
    after_block, after_entry = 0, -(2**31)
    while True:
        blocks = connection.execute(
            select(
                _BLOCK.id, _BLOCK.first_entry_id, _BLOCK.last_entry_id, _BLOCK.entries, _BLOCK.prev_hash, _BLOCK.hash
            )
            .where(_BLOCK.id > after_block)
            .order_by(_BLOCK.id)
            .limit(BLOCKS_PER_ROUND)
        ).all()
        if not blocks:
            break
        upto = max(after_entry, max(block[2] for block in blocks))
        entries = _stream(
            connection,
            select(*entry_columns)
            .where(_ENTRY.seq.is_(None), _ENTRY.id > after_entry, _ENTRY.id <= upto)
            .order_by(_ENTRY.id),
            batch,
        )
        prev_hash = _walk(blocks, entries, prev_hash, fields, state, pinned, seen)
        after_block, after_entry = blocks[-1][0], upto
    missing = sorted(set(pinned) - seen)
    if missing:
        raise Broken("is in a signed checkpoint but no longer in the chain (cut off or rewritten)", block=missing[0])
    unsealed = _stream(
        connection,
        select(*entry_columns).where(_ENTRY.seq.is_(None), _ENTRY.id > after_entry).order_by(_ENTRY.id),
        batch,
    )
    for row in unsealed:  # not sealed yet: the content is checked, the place not yet
        if state["oldest"] is None:
            state["oldest"] = row[1]
        if _v2(*row[1:10], fields[row[10]], row[11]) != row[12]:
            raise Broken("content changed after it was written", entry=row[0])
        state["checked"] += 1
        state["unsealed"] += 1


def _walk(
    blocks: Sequence[Any],
    entries: Iterator[Any],
    prev_hash: str,
    fields: _Fields,
    state: dict[str, Any],
    pinned: dict[int, tuple[int, str]],
    seen: set[int],
) -> str:
    """One round: each block against the entries of its range, which must be exactly its own."""
    sha256, encode = hashlib.sha256, _encode
    checked = state["checked"]
    row = next(entries, None)
    try:
        for block_id, first, last, count, block_prev, stored in blocks:
            if block_prev != prev_hash:
                raise Broken(
                    "does not follow the block before it (a block was deleted, inserted or changed)", block=block_id
                )
            digest, found = sha256(prev_hash.encode()), 0
            while row is not None and row[0] <= last:
                (entry_id, at, actor_id, role, scope, action, otype, oid, school, district, raw, request, hashed) = row
                if entry_id < first:
                    raise Broken("is in no block (inserted, or a block was deleted)", entry=entry_id)
                # entry_hash inlined: this loop is the whole cost of the check
                content = [
                    "v2",
                    (at if at.tzinfo is None else at.replace(tzinfo=None)).isoformat(timespec="microseconds"),
                    actor_id,
                    role,
                    scope,
                    action,
                    otype,
                    oid,
                    school,
                    district,
                    fields[raw],
                    request,
                ]
                if sha256(encode(content).encode()).hexdigest() != hashed:
                    raise Broken("content changed after it was written", entry=entry_id)
                digest.update(b"%d:%s\n" % (entry_id, hashed.encode()))
                found += 1
                row = next(entries, None)
            if found != count or digest.hexdigest() != stored:
                checked -= found
                raise Broken(
                    f"does not match its entries {first}–{last} (an entry was deleted, inserted, reordered "
                    "or its hash replaced)",
                    block=block_id,
                )
            checked += found
            if block_id in pinned:
                if pinned[block_id] != (last, stored):
                    raise Broken("differs from the signed checkpoint (the chain was rewritten)", block=block_id)
                seen.add(block_id)
            prev_hash = stored
            state["blocks"] += 1
        if row is not None:  # inside the round's range but after its last block: cannot happen
            raise Broken("is in no block (inserted, or a block was deleted)", entry=row[0])
    finally:
        state["checked"] = checked
        if hasattr(entries, "close"):
            entries.close()  # the server-side cursor goes at once, also when the walk broke off
    return prev_hash


def verify(batch: int = 10000, checkpoints: Any = None) -> Verdict:
    """Walk the whole log once, as a stream of plain rows in one consistent snapshot: the legacy
    chain, every block with its entries, the unsealed entries' content, and the blocks the signed
    checkpoints name (`checkpoints`: a checkpoints.Pinned, or None to read the configured ones)."""
    from . import checkpoints as signed

    pinned = signed.configured() if checkpoints is None else checkpoints
    state: dict[str, Any] = {"checked": 0, "legacy": 0, "blocks": 0, "unsealed": 0, "oldest": None}
    engine: Engine = db.engine
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    try:
        with engine.connect().execution_options(**options) as connection:
            try:
                if connection.dialect.name == "postgresql":
                    # The walk is in id order: read along the primary key. Right after a bulk load
                    # (statistics not yet updated) the planner may otherwise sort the whole table
                    # on disk first, several times slower.
                    connection.exec_driver_sql("SET LOCAL enable_sort = off")
                if pinned.problem:
                    raise Broken(pinned.problem)
                _verify_legacy(connection, batch, state)
                _verify_blocks(connection, batch, state, pinned.blocks)
            finally:
                connection.rollback()
    except Broken as broken:
        return Verdict(False, state["checked"], broken.problem, broken.entry, broken.block)
    return Verdict(
        True,
        state["checked"],
        legacy=state["legacy"],
        blocks=state["blocks"],
        unsealed=state["unsealed"],
        oldest_unsealed=state["oldest"],
        checkpoints=pinned.summary(),
    )


# --- The append-only guard ---------------------------------------------------------------------
# Entries and blocks can only be inserted; the legacy head row is frozen.

GUARDED = ("audit_entry", "audit_block", "audit_head")


def guard_statements(dialect: str, on: bool) -> list[str]:
    if dialect == "postgresql":
        if not on:
            return [
                *(f"DROP TRIGGER IF EXISTS {t}_no_change ON {t}" for t in GUARDED),
                *(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}" for t in GUARDED),
                "DROP FUNCTION IF EXISTS audit_entry_append_only()",
            ]
        return [
            "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
            *(
                f"CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
                for t in GUARDED
            ),
            *(
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
                for t in GUARDED
            ),
        ]
    if not on:
        return [f"DROP TRIGGER IF EXISTS {t}_no_{what}" for t in GUARDED for what in ("update", "delete")]
    return [
        f"CREATE TRIGGER {t}_no_{what} BEFORE {what.upper()} ON {t} "
        f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
        for t in GUARDED
        for what in ("update", "delete")
    ]


def set_guard(connection: Connection, on: bool) -> None:
    """Used by the migrations, and by tests that play the attacker (who would need the owner's rights)."""
    for statement in guard_statements(connection.dialect.name, on):
        connection.execute(text(statement))
