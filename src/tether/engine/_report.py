"""What a run shows its stream as it goes, in LangGraph's order: each task's start, each
task's update or pause the moment it ends (not at the end of its step), the pauses a run
leaves waiting, and the checkpoint each step starts from.

The loop calls a ``Reporter`` at those points; it yields events and never touches storage.
Events only "tasks", "checkpoints" or "debug" need are built only when one of them is
streamed (see engine/_events.py for their shapes).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import Any

from tether.engine._events import (
    CheckpointEvent,
    Paused,
    langgraph_order,
    now_iso,
    task_result,
    task_start,
    triggers_of,
)
from tether.engine._planner import PlannedTask, TaskOutput, apply_writes
from tether.engine._runner import Outcome
from tether.engine._spec import GraphSpec
from tether.engine._status import TaskLog
from tether.engine._store import ThreadState
from tether.errors import InvalidUpdateError

Event = tuple[str, Any]


class Reporter:
    """The stream's view of one run."""

    def __init__(
        self,
        spec: GraphSpec,
        config: Mapping[str, Any],
        *,
        task_events: bool,
        checkpoint_events: bool,
    ) -> None:
        self.spec = spec
        self.config = config
        self.task_events = task_events
        self.checkpoint_events = checkpoint_events
        self.parent_id: str | None = None
        """Exit mode: the checkpoint before the one in memory (which is not stored)."""

    def step_started(
        self, state: ThreadState, logs: Mapping[str, TaskLog], values: dict[str, Any]
    ) -> Iterator[Event]:
        """Each task's start ("tasks"); then, as LangGraph shows them again, the updates of
        tasks that finished before the run paused (marked cached)."""
        if not self.task_events and not logs:
            return
        ordered = langgraph_order(state.tasks)
        if self.task_events:
            step = state.step + 1
            for t in ordered:
                node_input = t.arg if t.is_send else self.spec.schema.to_input(values)
                triggers = triggers_of(self.spec.triggers, t)
                config = self._config_of(t.node)
                yield "tasks", task_start(step, t.id, t.node, node_input, triggers, config)
        for t in ordered:
            out = logs[t.id].output if t.id in logs else None
            if out is not None:
                yield "updates", {t.node: dict(out.writes), "__metadata__": {"cached": True}}

    def _config_of(self, node: str) -> Mapping[str, Any]:
        extra = self.spec.node_metadata.get(node)
        if not extra:
            return self.config
        return {**self.config, "metadata": {**(self.config.get("metadata") or {}), **extra}}

    def task_ended(self, o: Outcome, state: ThreadState) -> Iterator[Event]:
        """A task's update or pause, then its result ("tasks")."""
        step, task = state.step + 1, o.task
        if o.kind == "done" and o.output is not None:
            chunk = {task.node: o.output.update}
            if o.cached:  # as LangGraph marks an update that came from the cache
                chunk["__metadata__"] = {"cached": True}
            yield "updates", chunk
            if self.task_events and not o.cached:
                writes = o.output.writes
                yield "tasks", task_result(step, task.id, task.node, writes=writes)
        elif o.kind == "paused" and o.interrupt is not None:
            yield "interrupt", Paused(state.output_values(), (o.interrupt,))
            if self.task_events:
                pause = (o.interrupt,)
                yield "tasks", task_result(step, task.id, task.node, interrupts=pause)
        elif o.kind == "failed" and self.task_events:
            yield "tasks", task_result(step, task.id, task.node, error=o.error)

    def still_paused(
        self, state: ThreadState, logs: Mapping[str, TaskLog], ran: set[str]
    ) -> Iterator[Event]:
        """The pauses of tasks that did not run (no answer yet): shown again, as LangGraph
        shows them when it runs such a task again."""
        step = state.step + 1
        for t in state.tasks:
            pending = tuple(logs.get(t.id, TaskLog()).pending_interrupts())
            if t.id not in ran and pending:
                yield "interrupt", Paused(state.output_values(), pending)
                if self.task_events:
                    yield "tasks", task_result(step, t.id, t.node, interrupts=pending)

    def values_with_finished(
        self, state: ThreadState, logs: Mapping[str, TaskLog]
    ) -> dict[str, Any] | None:
        """A paused step's output with its finished tasks' writes folded in, as LangGraph's
        last "values" chunk and invoke's result show it; None when they change no output key.
        The checkpoint keeps the step's start: the writes count for good when the step
        completes."""
        done: list[tuple[PlannedTask, TaskOutput]] = []
        for t in state.tasks:
            out = logs[t.id].output if t.id in logs else None
            if out is not None:
                done.append((t, out))
        if not done:
            return None
        values = dict(state.values)
        try:
            changed = apply_writes(self.spec, values, done)
        except InvalidUpdateError:
            return None  # conflicting writes: the step raises it when it completes
        if not set(changed) & set(self.spec.output_keys):
            return None
        return {k: values[k] for k in self.spec.output_keys if k in values}

    def checkpoint(self, state: ThreadState, logs: Mapping[str, TaskLog]) -> Iterator[Event]:
        """The checkpoint a step starts from, or the run's last one."""
        if not self.checkpoint_events:
            return
        view = state
        if state.checkpoint_id != state.committed_id:
            # exit mode: the checkpoint lives in memory until the run ends (as LangGraph's)
            view = dataclasses.replace(
                state,
                committed_id=state.checkpoint_id,
                parent_id=self.parent_id,
                metadata={"source": "loop", "step": state.step, "parents": {}},
                created_at=time.time(),
            )
        yield "checkpoints", CheckpointEvent(view, dict(logs), now_iso())
