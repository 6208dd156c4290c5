"""What each finished task wrote, kept for history (``StateSnapshot.tasks[i].result``).

A step of several tasks stores each task's writes in an output row as the task finishes
(a crash must not lose them). A one-task step's commit already holds its task's writes: a
reducer key's delta is exactly those writes, a last value its row or its changed inline
value. So such a step stores no second copy: it stores an output row only for writes its
commit cannot show (a reducer snapshot, an inline value written unchanged), and refers to
the value rows for the rest (``StoredWrites``). Reading history derives the writes back from
the checkpoint the step committed; the result is the same as if every write were stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tether.checkpoint._base import ValueRow
from tether.checkpoint._body import decode_body
from tether.checkpoint._saver import Saver
from tether.checkpoint._unreadable import unreadable
from tether.engine._planner import MISSING, TaskOutput
from tether.engine._spec import GraphSpec
from tether.engine._status import StoredWrites, TaskLog
from tether.engine._store import ThreadState
from tether.errors import CheckpointError, TetherError

# -- writing: what a one-task step's output row must still record ---------------------------


def writes_to_record(
    spec: GraphSpec,
    writes: list[tuple[str, Any]],
    stored: dict[str, ValueRow],
    before: dict[str, Any],
) -> list[tuple[str, Any]] | None:
    """The writes of a one-task step's output row: each key its commit's value rows hold
    as one ``StoredWrites``, the others as written. None when the commit shows them all
    (``stored``: its value rows by key; ``before``: the written keys' values before it)."""
    out: list[tuple[str, Any]] = []
    referred: set[str] = set()
    shown = True
    for key, value in writes:
        row = stored.get(key)
        last_value = spec.channels[key].reducer is None
        if row is not None and (row.prev is not None or last_value):
            if key not in referred:
                referred.add(key)
                out.append((key, StoredWrites(row.version)))
            continue
        out.append((key, value))
        # an inline last value shows as a change of value (an equal one does not show)
        shown = shown and row is None and last_value and before.get(key, MISSING) != value
    return None if shown else out


# -- reading: the writes of the tasks of a page of history -----------------------------------


class RowMemo:
    """A saver whose ``get_values`` remembers the rows it returned: the rows read to load a
    page of history hold the writes of its one-task steps, so resolving their
    ``StoredWrites`` reads nothing more."""

    def __init__(self, saver: Saver) -> None:
        self.saver = saver
        self.rows: dict[tuple[str, int], ValueRow] = {}

    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        chains = self.saver.get_values(thread_id, wanted)
        for channel, chain in chains.items():
            for row in chain:
                self.rows[(channel, row.version)] = row
        return chains

    def __getattr__(self, name: str) -> Any:
        return getattr(self.saver, name)


def attach_step_results(
    saver: Saver,
    thread_id: str,
    states: Sequence[ThreadState],
    logs: dict[str, TaskLog],
    known: Mapping[tuple[str, int], ValueRow] | None = None,
) -> None:
    """Complete ``logs`` (by task id) with what the tasks of ``states`` wrote: a one-task
    step that stored no output row gets the writes its commit shows (the checkpoint one step
    later, source "loop", whose parent it is, when it is among ``states``); then every
    ``StoredWrites`` is read from its value row (``known``: rows read already)."""
    children = {
        s.parent_id: s
        for s in states
        if s.parent_id is not None and s.metadata.get("source") == "loop"
    }
    for state in states:
        child = children.get(state.committed_id) if state.committed_id is not None else None
        if child is not None and child.step == state.step + 1 and len(state.tasks) == 1:
            log = logs.setdefault(state.tasks[0].id, TaskLog())
            if log.output is None:
                log.output = TaskOutput(_shown_writes(state, child), [])
    resolve_stored_writes(saver, thread_id, logs, known)


def _shown_writes(state: ThreadState, child: ThreadState) -> list[tuple[str, Any]]:
    """The writes the commit of ``child`` shows over ``state``: keys with a new version
    (read from the row), and inline values that changed."""
    writes: list[tuple[str, Any]] = [
        (key, StoredWrites(version))
        for key, version in child.versions.items()
        if state.versions.get(key) != version
    ]
    for key, value in child.values.items():
        if key in child.versions or key not in child.spec.channels:
            continue
        if key in state.versions or state.values.get(key, MISSING) != value:
            writes.append((key, value))
    return writes


def loop_child(saver: Saver, spec: GraphSpec, state: ThreadState) -> ThreadState | None:
    """The checkpoint committed by the step planned at ``state``, if any (it is newer)."""
    for row in saver.list_checkpoints(state.thread_id):
        if row.checkpoint_id == state.committed_id:
            return None
        if row.parent_id != state.committed_id or row.step != state.step + 1:
            continue
        body = decode_body(saver.serde, state.thread_id, row.checkpoint_id, row.body)
        if body.metadata.get("source") == "loop":
            child = ThreadState(spec, saver, state.thread_id, step=row.step)
            child.parent_id, child.metadata = row.parent_id, dict(body.metadata)
            child.versions, child.values = dict(body.versions), dict(body.inline)
            return child
    return None


def resolve_stored_writes(
    saver: Saver,
    thread_id: str,
    logs: dict[str, TaskLog],
    known: Mapping[tuple[str, int], ValueRow] | None = None,
) -> None:
    """Replace the ``StoredWrites`` in recorded outputs by the writes they refer to, read
    from the value rows: ``known`` ones first, the others a chain at a time."""
    rows = dict(known or {})
    wanted: dict[str, set[int]] = {}
    for log in logs.values():
        for key, value in log.output.writes if log.output is not None else ():
            if isinstance(value, StoredWrites) and (key, value.version) not in rows:
                wanted.setdefault(key, set()).add(value.version)
    while wanted:
        newest = {k: max(v) for k, v in wanted.items()}
        chains = saver.get_values(thread_id, newest)
        for key, version in newest.items():
            for row in chains.get(key, ()):
                if row.version in wanted[key]:
                    rows[(key, row.version)] = row
                    wanted[key].discard(row.version)
            if version in wanted[key]:  # else this loop would never end
                raise CheckpointError(
                    f"thread {thread_id!r}: the saver returned no row for state key {key!r} "
                    f"at version {version}"
                )
        wanted = {k: v for k, v in wanted.items() if v}
    for log in logs.values():
        if log.output is not None:
            log.output.writes = _expand(saver, thread_id, log.output.writes, rows)


def _expand(
    saver: Saver,
    thread_id: str,
    writes: list[tuple[str, Any]],
    rows: dict[tuple[str, int], ValueRow],
) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in writes:
        if not isinstance(value, StoredWrites):
            out.append((key, value))
            continue
        row = rows[(key, value.version)]
        try:
            stored: Any = saver.serde.loads(row.payload)
        except TetherError as exc:
            what = f"the stored value of state key {key!r} (version {row.version})"
            raise unreadable(exc, thread_id, what) from exc
        if row.prev is not None:  # a delta: [reducer code, writes]
            out.extend((key, w) for w in stored[1])
        else:  # a full row: the value written
            out.append((key, stored))
    return out


# -- showing ---------------------------------------------------------------------------------


def task_result(spec: GraphSpec, output: TaskOutput | None) -> Any:
    """What a finished task wrote to the state, as LangGraph shows it in a snapshot:
    ``{key: value}``, with ``{"$writes": [...]}`` for a key written more than once, ``{}``
    when it wrote nothing; None for a task that has not finished."""
    if output is None:
        return None
    result: dict[str, Any] = {}
    for key, value in output.writes:
        if key not in spec.channels:
            continue
        if key in result:
            earlier = result[key]
            many = earlier["$writes"] if _is_many(earlier) else [earlier]
            result[key] = {"$writes": [*many, value]}
        else:
            result[key] = value
    return result


def _is_many(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$writes"}
