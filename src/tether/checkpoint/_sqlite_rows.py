"""How protocol rows map to SQLite rows: compact ids, checkpoint rowids, and the statements
that read and write them.

Invariant: every conversion here round-trips exactly (``unpack_id(pack_id(s)) == s``).
"""

from __future__ import annotations

import sqlite3
import string
import uuid
from collections.abc import Sequence
from typing import Any, cast

from tether.checkpoint._base import CheckpointRow, Head, ValueRow, WriteKind, WriteRow
from tether.checkpoint._lease import Lease, Owner, Process
from tether.checkpoint._sqlite_schema import MAX_TID, VERSION_BITS, VERSION_MASK
from tether.errors import CheckpointError

HEAD_SQL = (
    "SELECT tid, checkpoint_id, version, lease_run, lease_host, lease_pid, lease_expires, "
    "lease_epoch, lease_proc FROM heads WHERE thread_id = ?"
)
# A checkpoint row has no version column: the version is the low bits of its rowid.
CHECKPOINT_COLS = (
    f"c.checkpoint_id, c.parent_id, c.rowid & {VERSION_MASK}, c.step, c.created_at, c.body"
)
INSERT_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoints "
    "(rowid, tid, checkpoint_id, parent_id, step, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_VALUE = (
    "INSERT OR REPLACE INTO vals (tid, channel, version, prev, base, payload) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_WRITE = (
    "INSERT OR REPLACE INTO writes (tid, task_id, kind, key, payload) VALUES (?, ?, ?, ?, ?)"
)


def lease_of(row: tuple[Any, ...] | None) -> Lease | None:
    """The lease held in a ``HEAD_SQL`` row (columns 3-8), or None when it is free."""
    if row is None or row[3] is None:
        return None
    owner = Owner(row[3], Process.from_stored(row[4], int(row[5]), row[8]))
    return Lease(owner, float(row[6]), int(row[7]))


def epoch_of(row: tuple[Any, ...] | None) -> int:
    """The lease epoch of a ``HEAD_SQL`` row, held or not (0 for a new thread)."""
    return 0 if row is None else int(row[7])


def head_of(row: tuple[Any, ...] | None) -> Head | None:
    if row is None or row[1] is None:
        return None
    return Head(cast(str, unpack_id(row[1])), int(row[2]))


def checkpoint_of(thread_id: str, row: tuple[Any, ...]) -> CheckpointRow:
    return CheckpointRow(thread_id, cast(str, unpack_id(row[0])), unpack_id(row[1]), *row[2:])


def write_of(row: tuple[Any, ...]) -> WriteRow:
    return WriteRow(cast(str, unpack_id(row[0])), cast(WriteKind, row[1]), row[2], row[3])


def checkpoint_rowid(thread_id: str, tid: int, version: int) -> int:
    if not 0 <= version <= VERSION_MASK:
        raise CheckpointError(
            f"thread {thread_id!r}: checkpoint version {version} is out of range for SQLite"
        )
    return tid << VERSION_BITS | version


def allocate_tid(conn: sqlite3.Connection) -> int:
    """A thread key never used before in this file (inside a write transaction)."""
    row = conn.execute("SELECT value FROM tether_schema WHERE name = 'next_tid'").fetchone()
    tid = int(row[0])
    if tid > MAX_TID:
        raise CheckpointError("the checkpoint database has run out of thread keys")
    conn.execute("UPDATE tether_schema SET value = ? WHERE name = 'next_tid'", (tid + 1,))
    return tid


def new_thread(conn: sqlite3.Connection, thread_id: str) -> int:
    tid = allocate_tid(conn)
    conn.execute("INSERT INTO heads (thread_id, tid, version) VALUES (?, ?, 0)", (thread_id, tid))
    return tid


def insert_rows(
    conn: sqlite3.Connection,
    thread_id: str,
    tid: int,
    checkpoints: Sequence[CheckpointRow],
    values: Sequence[ValueRow],
    writes: Sequence[WriteRow],
) -> None:
    conn.executemany(
        INSERT_CHECKPOINT,
        [
            (
                checkpoint_rowid(thread_id, tid, c.version),
                tid,
                pack_id(c.checkpoint_id),
                pack_id(c.parent_id) if c.parent_id is not None else None,
                c.step,
                c.created_at,
                c.body,
            )
            for c in checkpoints
        ],
    )
    conn.executemany(
        INSERT_VALUE, [(tid, v.channel, v.version, v.prev, v.base, v.payload) for v in values]
    )
    conn.executemany(
        INSERT_WRITE, [(tid, pack_id(w.task_id), w.kind, w.key, w.payload) for w in writes]
    )


_UUID_TAG = 1
_HEX_TAG = 2
_HEX_DIGITS = frozenset(string.hexdigits.lower())


def pack_id(value: str) -> str | bytes:
    """A canonical UUID string (the engine's checkpoint ids) or even-length lowercase hex
    (its task ids) stored as tagged bytes, at about half the size; anything else as text.
    TEXT and BLOB never compare equal in SQLite, so the two forms cannot collide."""
    n = len(value)
    if n == 36 and value[8] == "-":
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return value
        if str(parsed) == value:
            return bytes((_UUID_TAG,)) + parsed.bytes
    elif n >= 8 and n % 2 == 0 and _HEX_DIGITS.issuperset(value):
        return bytes((_HEX_TAG,)) + bytes.fromhex(value)
    return value


def unpack_id(stored: str | bytes | None) -> str | None:
    if stored is None or isinstance(stored, str):
        return stored
    if stored[:1] == bytes((_UUID_TAG,)) and len(stored) == 17:
        return str(uuid.UUID(bytes=bytes(stored[1:])))
    if stored[:1] == bytes((_HEX_TAG,)):
        return bytes(stored[1:]).hex()
    raise CheckpointError(f"an id is stored in an unknown encoding: {bytes(stored)!r}")
