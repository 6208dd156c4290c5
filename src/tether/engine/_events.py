"""What a run reports while it runs, beyond state: pauses, task starts and results, and
checkpoints, for the stream modes that look inside a run ("tasks", "checkpoints", "debug").

Task events are built as LangGraph's debug envelope (``step``, ``timestamp``, ``type``,
``payload``) around its ``TaskPayload`` / ``TaskResultPayload`` shapes: "tasks" streams the
payload, "debug" the envelope. A task runs in the step after the checkpoint that planned it
(LangGraph's ``langgraph_step``): ``planned_at + 1``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.engine._planner import PlannedTask
from tether.engine._status import TaskLog
from tether.engine._store import ThreadState
from tether.types import Interrupt

PUSH_TRIGGERS: tuple[str, ...] = ("__pregel_push",)
"""The triggers LangGraph names for a Send task or a ``@task`` call."""

RETURN_KEY = "__return__"
"""The key of a ``@task`` result in its task-result payload, as LangGraph names it."""

_FRAMEWORK_KEYS = frozenset(
    {
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    }
)
"""Metadata a task payload leaves out: its own fields say it already."""


@dataclass(frozen=True, slots=True)
class Paused:
    """A task paused (its interrupts), or the run stopped at a static breakpoint (none).
    ``values`` is the output as of the step's start, which a "values" chunk shows."""

    values: dict[str, Any]
    interrupts: tuple[Interrupt, ...]


@dataclass(frozen=True, slots=True)
class CheckpointEvent:
    """The checkpoint a step starts from (or the run's last one), with the records its
    tasks have so far. ``state`` is read when the event is handled, before the run moves on."""

    state: ThreadState
    logs: Mapping[str, TaskLog]
    timestamp: str


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def triggers_of(
    node_triggers: Mapping[str, tuple[str, ...]], task: PlannedTask, path: str = ""
) -> tuple[str, ...]:
    """Why a task runs, in LangGraph's channel names: ``("branch:to:node",)`` for a node an
    edge, router or goto leads to (plus ``"join:a+b:node"`` per waiting edge into it);
    ``("__pregel_push",)`` for a Send and for a ``@task`` call (``path`` set)."""
    if path or task.is_send:
        return PUSH_TRIGGERS
    return node_triggers.get(task.node) or (f"branch:to:{task.node}",)


def langgraph_order(tasks: Sequence[PlannedTask]) -> list[PlannedTask]:
    """Tasks in the order LangGraph lists a step's tasks: Sends first, then the others."""
    return [t for t in tasks if t.is_send] + [t for t in tasks if not t.is_send]


def user_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's own metadata and tags, without the keys the framework adds."""
    meta = {k: v for k, v in (config.get("metadata") or {}).items() if k not in _FRAMEWORK_KEYS}
    tags = [t for t in config.get("tags") or () if not str(t).startswith("seq:step")]
    if tags:
        meta["tags"] = tags
    return meta


def _envelope(kind: str, step: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"step": step, "timestamp": now_iso(), "type": kind, "payload": payload}


def task_start(
    step: int,
    task_id: str,
    name: str,
    input: Any,
    triggers: tuple[str, ...],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """A task is about to run (LangGraph's ``TaskPayload``, in its debug envelope)."""
    payload: dict[str, Any] = {"id": task_id, "name": name, "input": input, "triggers": triggers}
    meta = user_metadata(config)
    if meta:
        payload["metadata"] = meta
    return _envelope("task", step, payload)


def task_result(
    step: int,
    task_id: str,
    name: str,
    *,
    writes: Iterable[tuple[str, Any]] = (),
    error: BaseException | str | None = None,
    interrupts: Iterable[Interrupt] = (),
) -> dict[str, Any]:
    """A task finished, failed or paused (LangGraph's ``TaskResultPayload``, enveloped)."""
    payload = {
        "id": task_id,
        "name": name,
        "error": error,
        "result": writes_by_key(writes),
        "interrupts": [dataclasses.asdict(i) for i in interrupts],
    }
    return _envelope("task_result", step, payload)


def writes_by_key(writes: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``{key: value}``; a key written several times by one task holds
    ``{"$writes": [value, ...]}``, as LangGraph shows it."""
    out: dict[str, Any] = {}
    many: dict[str, list[Any]] = {}
    for key, value in writes:
        if key in many:
            many[key].append(value)
        elif key in out:
            many[key] = [out[key], value]
            out[key] = {"$writes": many[key]}
        else:
            out[key] = value
    return out


def checkpoint_tasks(
    tasks: Sequence[PlannedTask], logs: Mapping[str, TaskLog]
) -> list[dict[str, Any]]:
    """The ``tasks`` of a checkpoint payload: each with its error, or its result and the
    interrupts it raised in the step (answered ones included), or just those interrupts."""
    out: list[dict[str, Any]] = []
    for t in langgraph_order(tasks):
        log = logs.get(t.id, TaskLog())
        entry: dict[str, Any] = {"id": t.id, "name": t.node}
        result = writes_by_key(log.output.writes) if log.output is not None else {}
        if log.error is not None and log.output is None:
            entry["error"] = log.error
        else:
            if result:
                entry["result"] = result
            entry["interrupts"] = tuple(dataclasses.asdict(i) for i in log.interrupts.values())
        entry["state"] = None
        out.append(entry)
    return out
