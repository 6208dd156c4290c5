"""``update_state``, ``bulk_update_state`` and ``get_state``: edit and read a thread
outside a run.

An update goes through the reducers like a node's output and becomes a checkpoint of its own
(source "update"); with ``as_node`` the next step is the edges after that node, without it
the pending tasks (and their interrupts) stay as they were. ``as_node="__copy__"`` copies a
checkpoint as a sibling (source "fork"), ``as_node=END`` drops the pending step. Every update
of a call is checked before any is stored.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from tether.checkpoint._base import WriteRow
from tether.checkpoint._lease import Fence, Owner
from tether.checkpoint._saver import Saver
from tether.engine._claim import release_lease
from tether.engine._loop import DEFAULT_RECURSION_LIMIT, checkpoint_id_of, thread_id_of
from tether.engine._planner import (
    PlannedTask,
    TaskOutput,
    Trigger,
    apply_writes,
    assign_ids,
    normalize_output,
    plan_next,
    with_managed,
)
from tether.engine._results import (
    attach_step_results,
    loop_child,
    resolve_stored_writes,
    task_result,
)
from tether.engine._runner import evaluate_branches
from tether.engine._runtime import RunContext, TaskContext
from tether.engine._spec import GraphSpec
from tether.engine._status import TaskLog, collect_logs
from tether.engine._store import ThreadState, new_checkpoint_id
from tether.errors import ConfigError, InvalidUpdateError
from tether.types import END, START, Interrupt, StateSnapshot, StateTask, StateUpdate


def _require_saver(saver: Saver | None, what: str) -> Saver:
    if saver is None:
        raise ConfigError(
            f"{what} needs a checkpointer: compile the graph with compile(checkpointer=...)"
        )
    return saver


COPY = "__copy__"
"""``as_node`` that copies the checkpoint as a sibling of it (a fork with the same values)."""
INPUT = "__input__"
"""``as_node`` that writes the values as new input, like START."""
_SINGLE = (COPY, INPUT, END)


def update_state(
    spec: GraphSpec,
    saver: Saver | None,
    config: dict[str, Any],
    values: Any,
    as_node: str | None,
    task_id: str | None = None,
) -> dict[str, Any]:
    return bulk_update_state(spec, saver, config, [[StateUpdate(values, as_node, task_id)]])


def bulk_update_state(
    spec: GraphSpec, saver: Saver | None, config: dict[str, Any], supersteps: Any
) -> dict[str, Any]:
    """Apply ``supersteps`` in order, each as one checkpoint: the updates of a superstep
    are folded together like the outputs of the nodes of one step. Every update is checked
    before anything is stored."""
    saver = _require_saver(saver, "update_state")
    thread_id = thread_id_of(config, required=True)
    assert thread_id is not None
    steps = _check_supersteps(spec, supersteps)
    # An update is a write like any other: it takes the thread's lease for its commits.
    owner = Owner(uuid.uuid4().hex)
    claim = saver.claim(thread_id, owner, saver.lease_seconds)
    failed = True
    try:
        state = ThreadState.load(spec, saver, thread_id, claim.head, checkpoint_id_of(config))
        for updates in steps:
            first = updates[0]
            if first.as_node == COPY:
                _copy(state, claim.fence)
            elif first.as_node == END:
                _finish(state, claim.fence)
            else:
                _write(spec, config, state, updates, claim.fence)
        failed = False
    finally:
        release_lease(saver, thread_id, owner, failed=failed)
    assert state.committed_id is not None
    return checkpoint_config(thread_id, state.committed_id)


def checkpoint_config(thread_id: str, checkpoint_id: str) -> dict[str, Any]:
    """The config naming one checkpoint, shaped as LangGraph's (``checkpoint_ns`` is "" at
    the root graph, the only namespace tether writes)."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": checkpoint_id,
        }
    }


def _check_supersteps(spec: GraphSpec, supersteps: Any) -> list[list[_Update]]:
    """The supersteps as checked updates (a ``__copy__`` with a list of updates becomes
    the copy and then a superstep of those updates)."""
    if not isinstance(supersteps, Sequence) or not supersteps:
        raise InvalidUpdateError("bulk_update_state needs at least one superstep of updates")
    checked: list[list[_Update]] = []
    for i, superstep in enumerate(supersteps):
        updates = [_as_update(u) for u in superstep] if isinstance(superstep, Sequence) else []
        if not updates:
            raise InvalidUpdateError(f"superstep {i} of bulk_update_state has no updates")
        first = updates[0]
        if first.as_node == COPY and isinstance(first.values, list) and first.values:
            checked.append([_check(spec, StateUpdate(None, COPY), 1)])
            updates = [_as_update(u) for u in first.values]
        checked.append([_check(spec, u, len(updates)) for u in updates])
    return checked


class _Update(NamedTuple):
    as_node: str | None
    values: Any
    output: TaskOutput | None


def _as_update(item: Any) -> StateUpdate:
    if isinstance(item, StateUpdate):
        return item
    if isinstance(item, Sequence) and not isinstance(item, str) and 1 <= len(item) <= 3:
        return StateUpdate(*item)
    raise InvalidUpdateError(
        f"an update of bulk_update_state must be StateUpdate(values, as_node) or a "
        f"(values, as_node) tuple, got {item!r:.80}"
    )


def _check(spec: GraphSpec, update: StateUpdate, count: int) -> _Update:
    values, as_node = update.values, update.as_node
    where = f"update_state(as_node={as_node!r})"
    known = as_node is None or as_node in spec.nodes or as_node in (START, *_SINGLE)
    if not known:
        raise InvalidUpdateError(
            f"{where}: no such node (known nodes: {sorted(spec.nodes)}, or START, END, "
            f"{INPUT!r}, {COPY!r})"
        )
    if as_node in _SINGLE and count > 1:
        raise InvalidUpdateError(f"{where} must be the only update of its superstep")
    if as_node is None and count > 1:
        raise InvalidUpdateError(
            "as_node is required when a superstep applies several updates: name the node "
            "each update is written as"
        )
    if as_node == END and values is not None:
        raise InvalidUpdateError(
            f"{where} ends the pending step and takes no values (values=None); to write "
            "values, give the node that writes them"
        )
    if as_node in (COPY, END):
        return _Update(as_node, values, None)
    node = START if as_node == INPUT else as_node
    keys = spec.input_keys if node == START else spec.channels.keys()
    return _Update(as_node, values, normalize_output(spec, node or "", values, where, keys=keys))


def _copy(state: ThreadState, fence: Fence) -> None:
    """A sibling of the checkpoint: the same values and next tasks (with fresh ids, so a
    fresh journal) under the same parent, source "fork"."""
    if not state.exists:
        raise InvalidUpdateError(
            f"update_state(as_node={COPY!r}): thread {state.thread_id!r} has no checkpoint to copy"
        )
    cid = new_checkpoint_id()
    triggers = [Trigger(t.node, t.is_send, t.index, t.arg) for t in state.tasks]
    state.tasks = assign_ids(state.thread_id, cid, triggers)
    state.checkpoint_id = cid
    state.committed_id = state.parent_id
    state.step += 1
    state.commit(source="fork", fence=fence, durable=True)


def _finish(state: ThreadState, fence: Fence) -> None:
    """``as_node=END``: the pending step is dropped; the writes of its tasks that finished
    are kept."""
    saver = state.saver
    assert saver is not None
    rows = saver.get_writes(state.thread_id, [t.id for t in state.tasks]) if state.tasks else []
    logs = collect_logs(saver.serde, rows, state.thread_id)
    done = [(t, out) for t in state.tasks if (out := logs.get(t.id, TaskLog()).output)]
    state.record(apply_writes(state.spec, state.values, done))
    state.tasks = []
    state.joins = {}
    state.checkpoint_id = new_checkpoint_id()
    state.step += 1
    state.commit(source="update", fence=fence, durable=True)


def _write(
    spec: GraphSpec,
    config: dict[str, Any],
    state: ThreadState,
    updates: list[_Update],
    fence: Fence,
) -> None:
    """Fold the updates in as the outputs of their nodes. With the nodes named, the next
    step is what follows them; without (one update, no ``as_node``) the pending tasks stay as
    they were (on an older checkpoint with fresh ids), so the ids of their interrupts stay
    valid. The new checkpoint is one step past its base, as LangGraph numbers them."""
    if len(updates) == 1 and updates[0].as_node is None and not state.exists:
        updates = [updates[0]._replace(as_node=START)]
    names = [START if u.as_node == INPUT else u.as_node or "update_state" for u in updates]
    writers = [PlannedTask("", name, i, False) for i, name in enumerate(names)]
    outputs = [u.output for u in updates if u.output is not None]
    state.record(apply_writes(spec, state.values, list(zip(writers, outputs, strict=True))))
    cid = new_checkpoint_id()
    if state.head is not None and state.committed_id != state.head.checkpoint_id:
        # an update of an older checkpoint forks: its pending tasks start afresh on the new
        # branch (new ids), so they neither see the old branch's interrupt answers nor its
        # @task results
        triggers = [Trigger(t.node, t.is_send, t.index, t.arg) for t in state.tasks]
        state.tasks = assign_ids(state.thread_id, cid, triggers)
    state.step += 1
    if updates[0].as_node is not None:
        serde = state.saver.serde if state.saver is not None else None
        run = RunContext(state.thread_id, serde, dict(config), _no_record, None)
        limit = config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        values = with_managed(spec, state.values, limit - 1)
        for writer, out in zip(writers, outputs, strict=True):
            ctx = TaskContext(run, writer, TaskLog(), writer.node)
            evaluate_branches(spec, writer.node, values, out, ctx)
        restart = any(w.node == START for w in writers)
        finished = list(zip(writers, outputs, strict=True))
        triggers, joins = plan_next(spec, finished, {} if restart else state.joins)
        state.joins = joins
        state.tasks = assign_ids(state.thread_id, cid, triggers)
    state.checkpoint_id = cid
    source = "input" if updates[0].as_node == INPUT else "update"
    state.commit(source=source, fence=fence, durable=True)


def _no_record(_rows: list[WriteRow]) -> None:
    return None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat()


def snapshot(
    state: ThreadState, saver: Saver, logs: dict[str, TaskLog] | None = None, *, live: bool = True
) -> StateSnapshot:
    """A StateSnapshot of a loaded thread state, with its pending tasks' interrupts
    (``logs``: the task logs, when the caller fetched them already). ``live`` (get_state):
    ``next`` leaves out tasks that finished; a history entry (``live=False``) lists every
    task the checkpoint planned, as LangGraph's history does."""
    thread_id = state.thread_id
    if not state.exists:
        return StateSnapshot({}, (), {"configurable": {"thread_id": thread_id}}, {}, None, None)
    if logs is None:
        rows = saver.get_writes(thread_id, [t.id for t in state.tasks])
        logs = collect_logs(saver.serde, rows, thread_id)
        resolve_stored_writes(saver, thread_id, logs)
    tasks: list[StateTask] = []
    interrupts: list[Interrupt] = []
    for t in state.tasks:
        log = logs.get(t.id, TaskLog())
        pending = tuple(log.pending_interrupts())
        interrupts.extend(pending)
        tasks.append(
            StateTask(
                t.id,
                t.node,
                t.path,
                log.error,
                pending,
                task_result(state.spec, log.output),
            )
        )
    nxt = tuple(
        t.name
        for t, p in zip(tasks, state.tasks, strict=True)
        if not live or logs.get(p.id, TaskLog()).status != "done"
    )
    assert state.committed_id is not None
    config = checkpoint_config(thread_id, state.committed_id)
    parent = checkpoint_config(thread_id, state.parent_id) if state.parent_id else None
    return StateSnapshot(
        state.snapshot_values(),
        nxt,
        config,
        dict(state.metadata),
        _iso(state.created_at),
        parent,
        tuple(tasks),
        tuple(interrupts),
    )


def get_state(spec: GraphSpec, saver: Saver | None, config: dict[str, Any]) -> StateSnapshot:
    saver = _require_saver(saver, "get_state")
    thread_id = thread_id_of(config, required=True)
    assert thread_id is not None
    head = saver.get_head(thread_id)
    target = checkpoint_id_of(config)
    state = ThreadState.load(spec, saver, thread_id, head, target, remember=target is None)
    if not state.exists:
        return snapshot(state, saver)
    if target is None:
        # the head is live, as LangGraph's: a paused or failed step shows its finished
        # tasks' writes
        logs = collect_logs(
            saver.serde, saver.get_writes(thread_id, [t.id for t in state.tasks]), thread_id
        )
        resolve_stored_writes(saver, thread_id, logs)
        done = [
            (t, out) for t in state.tasks if (out := logs.get(t.id, TaskLog()).output) is not None
        ]
        if done and len(done) < len(state.tasks):
            apply_writes(spec, state.values, done)
        return snapshot(state, saver, logs, live=True)
    # an older checkpoint: a record of its step, with what its tasks wrote
    logs = collect_logs(
        saver.serde, saver.get_writes(thread_id, [t.id for t in state.tasks]), thread_id
    )
    child = loop_child(saver, spec, state) if len(state.tasks) == 1 else None
    attach_step_results(saver, thread_id, [state, child] if child else [state], logs)
    return snapshot(state, saver, logs, live=False)
