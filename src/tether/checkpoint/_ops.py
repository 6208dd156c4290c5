"""Thread maintenance shared by every saver: prune, export and import.

Built on the contract's primitives only; ``Saver`` (``_saver.py``) offers them as methods.
Pruning keeps every value row that a kept checkpoint's delta chains reach back to.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from tether.checkpoint._base import (
    CheckpointRow,
    Head,
    ThreadDump,
    ValueRow,
    WriteRow,
)
from tether.checkpoint._body import decode_body, encode_body
from tether.checkpoint._chains import check_link
from tether.checkpoint._unreadable import unreadable
from tether.errors import CheckpointError
from tether.serde._envelope import CorruptRecordError, verify

if TYPE_CHECKING:
    from tether.checkpoint._saver import Saver

EXPORT_FORMAT = "tether-thread"
EXPORT_VERSION = 1


def prune_thread(saver: Saver, thread_id: str, keep_last: int) -> int:
    """Delete all but the newest ``keep_last`` checkpoints; returns how many were deleted."""
    if keep_last < 1:
        raise CheckpointError(f"prune needs keep_last >= 1, got {keep_last}")
    dump = saver.dump_thread(thread_id)
    if dump.head is None:
        raise CheckpointError(f"thread {thread_id!r} does not exist; nothing to prune")
    ordered = sorted(dump.checkpoints, key=lambda r: -r.version)
    keep, drop = ordered[:keep_last], ordered[keep_last:]
    if not drop:
        return 0
    if all(r.checkpoint_id != dump.head.checkpoint_id for r in keep):
        keep.append(next(r for r in drop if r.checkpoint_id == dump.head.checkpoint_id))
        drop = [r for r in drop if r.checkpoint_id != dump.head.checkpoint_id]
    by_key = {(v.channel, v.version): v for v in dump.values}
    needed: set[tuple[str, int]] = set()
    kept_tasks: set[str] = set()
    for row in keep:
        body = decode_body(saver.serde, thread_id, row.checkpoint_id, row.body)
        kept_tasks.update(t.id for t in body.tasks)
        for channel, version in body.versions.items():
            current: int | None = version
            while current is not None and (channel, current) not in needed:
                needed.add((channel, current))
                value = by_key.get((channel, current))
                if value is not None:
                    check_link(thread_id, channel, current, value)
                current = value.prev if value is not None else None
    dropped_tasks: set[str] = set()
    for row in drop:
        body = decode_body(saver.serde, thread_id, row.checkpoint_id, row.body)
        dropped_tasks.update(t.id for t in body.tasks)
    saver.delete_checkpoints(
        thread_id,
        [r.checkpoint_id for r in drop],
        [k for k in by_key if k not in needed],
        sorted(dropped_tasks - kept_tasks),
    )
    return len(drop)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def check_records(dump: ThreadDump) -> None:
    """Every stored record of the dump passes its checksum, so an export or an import never
    carries damaged bytes on; raises ``CorruptionError`` naming the row. (Encrypted records
    are checked when decrypted; records from before checksums cannot be checked.)"""
    tid = dump.thread_id
    records = [(f"checkpoint {c.checkpoint_id!r}", c.body) for c in dump.checkpoints]
    records += [
        (f"the value of channel {v.channel!r} at version {v.version}", v.payload)
        for v in dump.values
    ]
    records += [
        (f"the {w.kind} record {w.key!r} of task {w.task_id!r}", w.payload) for w in dump.writes
    ]
    for what, data in records:
        try:
            verify(data)
        except CorruptRecordError as exc:
            raise unreadable(exc, tid, what) from exc


def export_lines(dump: ThreadDump) -> Iterable[str]:
    check_records(dump)
    head = None if dump.head is None else [dump.head.checkpoint_id, dump.head.version]
    yield json.dumps(
        {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "thread_id": dump.thread_id,
            "head": head,
        }
    )
    for c in dump.checkpoints:
        yield json.dumps(
            {
                "type": "checkpoint",
                "id": c.checkpoint_id,
                "parent": c.parent_id,
                "version": c.version,
                "step": c.step,
                "created_at": c.created_at,
                "body": _b64(c.body),
            }
        )
    for v in dump.values:
        yield json.dumps(
            {
                "type": "value",
                "channel": v.channel,
                "version": v.version,
                "prev": v.prev,
                "base": v.base,
                "payload": _b64(v.payload),
            }
        )
    for w in dump.writes:
        yield json.dumps(
            {
                "type": "write",
                "task": w.task_id,
                "kind": w.kind,
                "key": w.key,
                "payload": _b64(w.payload),
            }
        )


def parse_lines(lines: Iterable[str], thread_id: str | None = None) -> ThreadDump:
    """Read an export back; ``thread_id`` imports it under another id."""
    it = iter(lines)
    try:
        header = json.loads(next(it))
        if header.get("format") != EXPORT_FORMAT:
            raise CheckpointError("not a tether thread export (bad header line)")
        if header.get("version") != EXPORT_VERSION:
            raise CheckpointError(
                f"thread export version {header.get('version')} is not supported "
                f"(this tether reads version {EXPORT_VERSION})"
            )
        tid = thread_id or str(header["thread_id"])
        head = Head(header["head"][0], int(header["head"][1])) if header["head"] else None
        checkpoints: list[CheckpointRow] = []
        values: list[ValueRow] = []
        writes: list[WriteRow] = []
        for n, line in enumerate(it, start=2):
            if not line.strip():
                continue
            rec = json.loads(line)
            kind = rec.get("type")
            if kind == "checkpoint":
                checkpoints.append(
                    CheckpointRow(
                        tid,
                        rec["id"],
                        rec["parent"],
                        int(rec["version"]),
                        int(rec["step"]),
                        float(rec["created_at"]),
                        _unb64(rec["body"]),
                    )
                )
            elif kind == "value":
                values.append(
                    ValueRow(
                        rec["channel"],
                        int(rec["version"]),
                        rec["prev"],
                        int(rec["base"]),
                        _unb64(rec["payload"]),
                    )
                )
            elif kind == "write":
                writes.append(
                    WriteRow(rec["task"], rec["kind"], rec["key"], _unb64(rec["payload"]))
                )
            else:
                raise CheckpointError(f"thread export line {n}: unknown record type {kind!r}")
    except StopIteration:
        raise CheckpointError("thread export is empty") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"thread export is malformed: {exc}") from exc
    dump = ThreadDump(tid, head, checkpoints, values, writes, str(header["thread_id"]))
    check_records(dump)
    return dump


def renamed(saver: Saver, dump: ThreadDump) -> ThreadDump:
    """A dump read under a new thread id: task ids are derived from the thread id, so the
    bodies are re-encoded with the original ids spelled out, keeping every task's writes
    (and pending interrupts) attached."""
    original = dump.original_thread_id
    if original is None or original == dump.thread_id:
        return dump
    rows = []
    for c in dump.checkpoints:
        body = decode_body(saver.serde, original, c.checkpoint_id, c.body)
        data = encode_body(saver.serde, dump.thread_id, c.checkpoint_id, body)
        rows.append(replace(c, body=data))
    return replace(dump, checkpoints=rows)
