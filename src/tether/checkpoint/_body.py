"""The checkpoint body: channel versions, small inline values, next tasks, joins, metadata.

Kept compact because every step writes one: a pull task whose id is the one derived from
its position stores only its node name, and tiny last-value values (counters, flags, short
strings) ride inside the body instead of costing a value row each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tether.checkpoint._unreadable import SHAPE_ERRORS, unreadable
from tether.errors import CheckpointError, TetherError
from tether.serde import Serializer

BODY_FORMAT = 1
INLINE_MAX_LEN = 32


def derive_task_id(thread_id: str, checkpoint_id: str, node: str, is_send: bool, index: int) -> str:
    """A task's id from its position: thread, the checkpoint that planned it, node, kind,
    Send index. Never from timing."""
    raw = f"{thread_id}|{checkpoint_id}|{node}|{int(is_send)}|{index}"
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()


def is_inline(value: Any) -> bool:
    """Values cheap enough to repeat in every body rather than store apart."""
    if value is None or isinstance(value, bool | int | float):
        return not isinstance(value, int) or -(2**63) <= value < 2**63
    if isinstance(value, str | bytes):
        return len(value) <= INLINE_MAX_LEN
    return False


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    node: str
    index: int
    is_send: bool
    arg: Any = None


@dataclass(slots=True)
class Body:
    versions: dict[str, int] = field(default_factory=dict)
    inline: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskRecord] = field(default_factory=list)
    joins: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def encode_body(serde: Serializer, thread_id: str, checkpoint_id: str, body: Body) -> bytes:
    tasks: list[list[Any]] = []
    for t in body.tasks:
        rec: list[Any] = [t.node, t.index, t.arg] if t.is_send else [t.node]
        if t.id != derive_task_id(thread_id, checkpoint_id, t.node, t.is_send, t.index):
            rec.append(t.id)
        tasks.append(rec)
    return serde.dumps([BODY_FORMAT, body.versions, body.inline, tasks, body.joins, body.metadata])


def decode_body(serde: Serializer, thread_id: str, checkpoint_id: str, data: bytes) -> Body:
    what = f"checkpoint {checkpoint_id!r}"
    try:
        raw: Any = serde.loads(data)
    except TetherError as exc:
        raise unreadable(exc, thread_id, what) from exc
    if not isinstance(raw, list) or not raw or raw[0] != BODY_FORMAT:
        fmt = raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], int) else None
        if fmt is not None and fmt > BODY_FORMAT:
            raise CheckpointError(
                f"thread {thread_id!r}: {what} has body format {fmt}, this tether reads format "
                f"{BODY_FORMAT}; upgrade tether"
            )
        raise unreadable(ValueError(f"not a format-{BODY_FORMAT} body"), thread_id, what)
    try:
        return _body_of(thread_id, checkpoint_id, raw)
    except SHAPE_ERRORS as exc:
        raise unreadable(exc, thread_id, what) from exc


def _body_of(thread_id: str, checkpoint_id: str, raw: list[Any]) -> Body:
    _fmt, versions, inline, tasks, joins, metadata = raw
    records: list[TaskRecord] = []
    for rec in tasks:
        is_send = len(rec) >= 3
        node, index = rec[0], (rec[1] if is_send else 0)
        arg = rec[2] if is_send else None
        explicit = rec[3] if is_send and len(rec) == 4 else (rec[1] if len(rec) == 2 else None)
        tid = explicit or derive_task_id(thread_id, checkpoint_id, node, is_send, index)
        records.append(TaskRecord(tid, node, index, is_send, arg))
    return Body(dict(versions), dict(inline), records, dict(joins), dict(metadata))
