"""What ``stream()`` yields: a run's events in the modes asked for, shaped as LangGraph 1.x
shapes them.

- ``version="v1"``: the chunk itself for one mode, ``(mode, chunk)`` for a list of modes;
  with ``subgraphs=True`` the namespace comes first (``()``: tether runs no subgraphs yet).
- ``version="v2"``: ``StreamPart`` dicts ``{"type", "ns", "data"}``; a "values" part also
  has ``"interrupts"`` (taken out of its data), and its data (like a checkpoint's values)
  is an instance of the schema when the schema is a dataclass or pydantic model.

Nothing is built for a mode that was not asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from tether.checkpoint._saver import Saver
from tether.engine import _update
from tether.engine._events import CheckpointEvent, Paused, checkpoint_tasks, langgraph_order
from tether.errors import ConfigError
from tether.types import INTERRUPT_KEY, START, Interrupt, StreamMode

STREAM_MODES: tuple[str, ...] = get_args(StreamMode)
_METADATA_KEY = "__metadata__"


def parse_modes(stream_mode: str | Sequence[str]) -> tuple[list[str], bool]:
    """The modes asked for, and whether one was named alone (its chunks are then bare)."""
    single = isinstance(stream_mode, str)
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
    for m in modes:
        if m not in STREAM_MODES:
            raise ConfigError(
                f"stream_mode {m!r} is not supported; use one of {list(STREAM_MODES)}"
            )
    if not modes:
        raise ConfigError("stream_mode must name at least one mode")
    return modes, single


def check_version(version: str) -> None:
    if version not in ("v1", "v2"):
        raise ConfigError(f"version must be 'v1' or 'v2', got {version!r}")


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class View:
    """How a graph shows its state to callers; the functional API shows its return value
    where a StateGraph shows its state."""

    output: Callable[[dict[str, Any]], Any] = dict
    """The output of a "values" chunk (and of invoke) from the output keys' values."""
    state: Callable[[dict[str, Any]], Any] = _identity
    """The values of a checkpoint payload from all channels' values."""
    update: Callable[[Any], Any] | None = None
    """A node's update as "updates" shows it."""
    typed_output: Callable[[Any], Any] | None = None
    """v2: the output as an instance of the output schema."""
    typed_state: Callable[[Any], Any] | None = None
    """v2: a checkpoint's values as an instance of the state schema."""
    entry: str | None = None
    """The functional API's entrypoint node, whose task events show its input and return
    value (``entry_input``, ``entry_result``) rather than tether's channels."""
    entry_input: Callable[[Any], Any] = _identity
    entry_result: Callable[[dict[str, Any]], dict[str, Any]] = _identity


def with_interrupts(output: Any, interrupts: Sequence[Interrupt]) -> dict[str, Any]:
    """A "values" chunk of a pause in v1: the output, when it is a dict, plus the
    interrupts."""
    if isinstance(output, dict):
        return {**output, INTERRUPT_KEY: interrupts}
    return {INTERRUPT_KEY: interrupts}


class Shaper:
    """Turns one run's events into the chunks of one ``stream()`` call."""

    def __init__(
        self,
        modes: Sequence[str],
        *,
        single: bool,
        version: str,
        subgraphs: bool,
        view: View,
        saver: Saver | None,
    ) -> None:
        self.modes = frozenset(modes)
        self.single = single
        self.v2 = version == "v2"
        self.subgraphs = subgraphs
        self.view = view
        self.saver = saver

    def chunks(self, kind: str, payload: Any) -> Iterator[Any]:
        """The chunks one engine event becomes (none when no mode asked for it)."""
        modes = self.modes
        if kind == "values" and "values" in modes:
            yield self._values(self.view.output(payload), ())
        elif kind == "updates" and "updates" in modes:
            yield self._part("updates", self._update(payload))
        elif kind == "task_result" and "updates" in modes:  # a @task's result
            yield self._part("updates", payload)
        elif kind in ("custom", "messages") and kind in modes:
            yield self._part(kind, payload)
        elif kind == "interrupt":
            yield from self._pause(payload)
        elif kind == "tasks":
            yield from self._task(payload)
        elif kind == "checkpoints":
            yield from self._checkpoint(payload)

    # -- parts -----------------------------------------------------------------------------

    def _part(self, mode: str, data: Any) -> Any:
        if self.v2:
            return {"type": mode, "ns": (), "data": data}
        if self.subgraphs:
            return ((), data) if self.single else ((), mode, data)
        return data if self.single else (mode, data)

    def _values(self, output: Any, interrupts: tuple[Interrupt, ...]) -> Any:
        if not self.v2:
            chunk = with_interrupts(output, interrupts) if interrupts else output
            return self._part("values", chunk)
        typed = self.view.typed_output
        if not isinstance(output, dict):
            # LangGraph's chunk of a pause whose output is no dict holds only the
            # interrupts, so its data is left empty once they are taken out
            data = {} if interrupts else output
        else:
            data = typed(output) if typed is not None else output
        return {"type": "values", "ns": (), "data": data, "interrupts": interrupts}

    def _update(self, chunk: dict[str, Any]) -> dict[str, Any]:
        present = self.view.update
        if present is None:
            return chunk
        return {k: v if k == _METADATA_KEY else present(v) for k, v in chunk.items()}

    def _pause(self, paused: Paused) -> Iterator[Any]:
        """A node paused (LangGraph shows its interrupts in "updates" and, with the state as
        of the step's start, in "values"), or the run stopped at a breakpoint ("updates"
        shows an empty tuple)."""
        if "updates" in self.modes:
            yield self._part("updates", {INTERRUPT_KEY: paused.interrupts})
        if "values" in self.modes and paused.interrupts:
            yield self._values(self.view.output(paused.values), paused.interrupts)

    def _task(self, envelope: dict[str, Any]) -> Iterator[Any]:
        if not {"tasks", "debug"} & self.modes:
            return
        payload = envelope["payload"]
        if self.view.entry is not None and payload["name"] == self.view.entry:
            payload = dict(payload)
            if envelope["type"] == "task":
                payload["input"] = self.view.entry_input(payload["input"])
            elif payload["result"]:
                payload["result"] = self.view.entry_result(payload["result"])
        if "tasks" in self.modes:
            yield self._part("tasks", payload)
        if "debug" in self.modes:
            yield self._part("debug", {**envelope, "payload": payload})

    def _checkpoint(self, event: CheckpointEvent) -> Iterator[Any]:
        if not {"checkpoints", "debug"} & self.modes or self.saver is None:
            return
        payload = checkpoint_payload(event, self.saver, self.view)
        if self.v2 and self.view.typed_state is not None and START not in payload["next"]:
            payload["values"] = self.view.typed_state(payload["values"])
        if "checkpoints" in self.modes:
            yield self._part("checkpoints", payload)
        if "debug" in self.modes:
            step = payload["metadata"].get("step")
            envelope = {"step": step, "timestamp": event.timestamp, "type": "checkpoint"}
            yield self._part("debug", {**envelope, "payload": payload})


def checkpoint_payload(event: CheckpointEvent, saver: Saver, view: View) -> dict[str, Any]:
    """A checkpoint as LangGraph's ``CheckpointPayload`` shows it: its config, metadata and
    values as ``get_state()`` gives them, every task of its step (by name in ``next``),
    and what each task recorded so far."""
    state = event.state
    snap = _update.snapshot(state, saver, dict(event.logs))
    return {
        "config": snap.config,
        "parent_config": snap.parent_config,
        "values": view.state(snap.values),
        "metadata": snap.metadata,
        "next": [t.node for t in langgraph_order(state.tasks)],
        "tasks": checkpoint_tasks(state.tasks, event.logs),
    }
