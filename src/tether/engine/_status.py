"""A task's status, decided from its write log alone.

Rule: a task with an "output" row is done; else one with an "interrupt" row that has no
matching "resume" row is paused; everything else (never ran, failed, or answered) runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.checkpoint._base import WriteRow
from tether.checkpoint._unreadable import SHAPE_ERRORS, unreadable
from tether.engine._planner import TaskOutput
from tether.errors import TetherError
from tether.serde import Serializer
from tether.types import Interrupt, Overwrite, Send

Status = Literal["done", "paused", "runnable"]

RAISED = "raised"
"""The call position stored with a pause a node raised (``NodeInterrupt``) rather than asked
for with ``interrupt()`` (whose positions contain "#")."""

WITHDRAWN = "\x00tether:withdrawn-answer"
"""Stored over a resume row to take an answer back (the row is replaced, not deleted)."""


@dataclass(slots=True)
class TaskLog:
    """What one task recorded before its step committed."""

    output: TaskOutput | None = None
    journal: dict[str, tuple[str, str, Any]] = field(default_factory=dict)
    interrupts: dict[str, Interrupt] = field(default_factory=dict)
    positions: dict[str, str] = field(default_factory=dict)
    resumes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    running: dict[str, tuple[str, str, Any]] = field(default_factory=dict)
    """``@task`` calls started in this run and not journaled yet: (name, argument hash,
    future) by call key. Never stored."""

    @property
    def status(self) -> Status:
        if self.output is not None:
            return "done"
        if any(i not in self.resumes for i in self.interrupts):
            return "paused"
        return "runnable"

    def forget_unanswered(self) -> None:
        """Drop the pauses nobody answered: a run that continues the thread runs the task
        again, as LangGraph does, so it asks anew from the state as it is now (or passes,
        if the state was updated). A recorded id stays with its call position."""
        for iid in [i for i in self.interrupts if i not in self.resumes]:
            del self.interrupts[iid]

    def pending_interrupts(self) -> list[Interrupt]:
        if self.output is not None:
            return []
        return [i for k, i in self.interrupts.items() if k not in self.resumes]


@dataclass(frozen=True, slots=True)
class StoredWrites:
    """In a recorded output: the task's writes to this key are the value row stored at
    ``version`` (a delta's writes, or a last value). The commit of a one-task step stores
    exactly that task's writes as value rows, so its output row refers to them instead of
    storing them twice; reading history resolves the reference (engine/_update.py)."""

    version: int


_OVERWRITE, _STORED = 1, 2


def output_to_plain(out: TaskOutput) -> list[Any]:
    """A task's writes and gotos as plain lists (an Overwrite is ``[key, value, 1]``, a
    StoredWrites ``[key, version, 2]``), as stored in an output row and in a cache."""
    goto = [["s", g.node, g.arg] if isinstance(g, Send) else ["n", g] for g in out.goto]
    return [[_write_to_plain(k, v) for k, v in out.writes], goto]


def _write_to_plain(key: str, value: Any) -> list[Any]:
    if isinstance(value, Overwrite):
        return [key, value.value, _OVERWRITE]
    if isinstance(value, StoredWrites):
        return [key, value.version, _STORED]
    return [key, value]


def output_from_plain(plain: Any) -> TaskOutput:
    writes, goto = plain
    targets: list[str | Send] = [Send(g[1], g[2]) if g[0] == "s" else g[1] for g in goto]
    return TaskOutput([(w[0], _write_from_plain(w)) for w in writes], targets)


def _write_from_plain(write: list[Any]) -> Any:
    if len(write) == 2:
        return write[1]
    if write[2] == _STORED:
        return StoredWrites(write[1])
    return Overwrite(write[1])


def encode_output(serde: Serializer, out: TaskOutput) -> bytes:
    return serde.dumps(output_to_plain(out))


def decode_output(serde: Serializer, payload: bytes) -> TaskOutput:
    return output_from_plain(serde.loads(payload))


def collect_logs(serde: Serializer, rows: Iterable[WriteRow], thread_id: str) -> dict[str, TaskLog]:
    """Group write rows by task and decode them; a row that cannot be read is an error naming
    the thread, the task and the row (``checkpoint/_unreadable.py``)."""
    logs: dict[str, TaskLog] = {}
    for row in rows:
        log = logs.setdefault(row.task_id, TaskLog())
        try:
            _read_row(serde, log, row)
        except (TetherError, *SHAPE_ERRORS) as exc:
            raise unreadable(exc, thread_id, _describe(row)) from exc
    return logs


def _read_row(serde: Serializer, log: TaskLog, row: WriteRow) -> None:
    if row.kind == "output":
        log.output = decode_output(serde, row.payload)
    elif row.kind == "journal":
        entry: Any = serde.loads(row.payload)
        name, arg_hash, result = entry
        log.journal[row.key] = (name, arg_hash, result)
    elif row.kind == "interrupt":
        raised: Any = serde.loads(row.payload)
        value, where = raised
        log.interrupts[row.key] = Interrupt(value, row.key)
        if where:
            log.positions[where] = row.key
    elif row.kind == "resume":
        answer = serde.loads(row.payload)
        if answer != WITHDRAWN:
            log.resumes[row.key] = answer
    elif row.kind == "error":
        log.error = str(serde.loads(row.payload))


def _describe(row: WriteRow) -> str:
    task = f"task {row.task_id!r}"
    if row.kind == "interrupt":
        return f"interrupt {row.key!r} of {task}"
    if row.kind == "resume":
        return f"the answer to interrupt {row.key!r} of {task}"
    if row.kind == "journal":
        return f"the journal entry {row.key!r} (a @task result) of {task}"
    if row.kind == "output":
        return f"the recorded writes of {task}"
    return f"the {row.kind} record {row.key!r} of {task}"
