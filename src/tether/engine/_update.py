"""``update_state`` and ``get_state``: edit and read a thread outside a run.

An update goes through the reducers like a node's output and becomes a checkpoint of its own
(source "update"); with ``as_node`` the next step is the edges after that node, without it
the pending tasks (and their interrupts) stay as they were.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from tether.checkpoint._lease import Claim, Owner
from tether.checkpoint._saver import Saver
from tether.engine._claim import release_lease
from tether.engine._loop import DEFAULT_RECURSION_LIMIT, checkpoint_id_of, thread_id_of
from tether.engine._planner import (
    PlannedTask,
    apply_writes,
    assign_ids,
    normalize_output,
    plan_next,
    with_managed,
)
from tether.engine._runner import evaluate_branches
from tether.engine._runtime import RunContext, TaskContext
from tether.engine._spec import GraphSpec
from tether.engine._status import TaskLog, collect_logs
from tether.engine._store import ThreadState, new_checkpoint_id
from tether.errors import ConfigError, InvalidUpdateError
from tether.types import START, Interrupt, StateSnapshot, StateTask


def _require_saver(saver: Saver | None, what: str) -> Saver:
    if saver is None:
        raise ConfigError(
            f"{what} needs a checkpointer: compile the graph with compile(checkpointer=...)"
        )
    return saver


def update_state(
    spec: GraphSpec,
    saver: Saver | None,
    config: dict[str, Any],
    values: Any,
    as_node: str | None,
) -> dict[str, Any]:
    saver = _require_saver(saver, "update_state")
    thread_id = thread_id_of(config, required=True)
    assert thread_id is not None
    if as_node is not None and as_node != START and as_node not in spec.nodes:
        raise InvalidUpdateError(
            f"update_state(as_node={as_node!r}): no such node (known nodes: {sorted(spec.nodes)})"
        )
    # An update is a write like any other: it takes the thread's lease for its one commit.
    owner = Owner(uuid.uuid4().hex)
    claim = saver.claim(thread_id, owner, saver.lease_seconds)
    failed = True
    try:
        cid = _update(spec, saver, thread_id, config, values, as_node, claim)
        failed = False
    finally:
        release_lease(saver, thread_id, owner, failed=failed)
    return {"configurable": {"thread_id": thread_id, "checkpoint_id": cid}}


def _update(
    spec: GraphSpec,
    saver: Saver,
    thread_id: str,
    config: dict[str, Any],
    values: Any,
    as_node: str | None,
    claim: Claim,
) -> str:
    state = ThreadState.load(spec, saver, thread_id, claim.head, checkpoint_id_of(config))
    node = as_node if as_node is not None else (None if state.exists else START)
    where = f"update_state(as_node={as_node!r})"
    out = normalize_output(spec, node or "update_state", values, where)
    writer = PlannedTask("", node or "update_state", 0, False)
    per_key = apply_writes(spec, state.values, [(writer, out)])
    state.record(per_key)
    cid = new_checkpoint_id()
    if node is not None:
        run = RunContext(thread_id, saver.serde, dict(config), lambda _rows: None, None)
        limit = config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        values = with_managed(spec, state.values, limit - 1)
        evaluate_branches(spec, node, values, out, TaskContext(run, writer, TaskLog(), node))
        triggers, joins = plan_next(spec, [(writer, out)], {} if node == START else state.joins)
        state.joins = joins
        state.tasks = assign_ids(thread_id, cid, triggers)
        # without as_node, pending tasks keep their step, so the ids of their interrupts
        # (derived from the step) stay valid
        state.step += 1
    state.checkpoint_id = cid
    state.commit(source="update", fence=claim.fence, durable=True)
    return cid


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat()


def snapshot(
    state: ThreadState, saver: Saver, logs: dict[str, TaskLog] | None = None
) -> StateSnapshot:
    """A StateSnapshot of a loaded thread state, with its pending tasks' interrupts
    (``logs``: the task logs, when the caller fetched them already)."""
    thread_id = state.thread_id
    if not state.exists:
        return StateSnapshot({}, (), {"configurable": {"thread_id": thread_id}}, {}, None, None)
    if logs is None:
        rows = saver.get_writes(thread_id, [t.id for t in state.tasks])
        logs = collect_logs(saver.serde, rows, thread_id)
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
                dict(log.output.writes) if log.output is not None else None,
            )
        )
    nxt = tuple(
        t.name
        for t, p in zip(tasks, state.tasks, strict=True)
        if logs.get(p.id, TaskLog()).status != "done"
    )
    config = {"configurable": {"thread_id": thread_id, "checkpoint_id": state.committed_id}}
    parent = (
        {"configurable": {"thread_id": thread_id, "checkpoint_id": state.parent_id}}
        if state.parent_id
        else None
    )
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
    state = ThreadState.load(spec, saver, thread_id, head, checkpoint_id_of(config), remember=True)
    return snapshot(state, saver)
