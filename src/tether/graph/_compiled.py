"""CompiledGraph: the runnable a StateGraph compiles into.

``invoke``, ``stream``, ``ainvoke`` and ``astream`` are four views of one engine: each
consumes the events of one ``Run``; the async pair steps the same loop on a worker thread.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tether.checkpoint._saver import Saver
from tether.engine import _update
from tether.engine._loop import Run, thread_id_of
from tether.engine._metrics import ThreadMetrics, read_metrics
from tether.engine._spec import GraphSpec
from tether.errors import ConfigError
from tether.types import INTERRUPT_KEY, Durability, RunResult, StateSnapshot

MODES = ("values", "updates", "custom")

_RUN_POOL = ThreadPoolExecutor(max_workers=512, thread_name_prefix="tether-run")
"""Steps the loop of ``ainvoke``/``astream`` runs. Its own pool, so that many concurrent
async runs (each blocking a thread while an async node awaits on the caller's loop) are not
capped by the event loop's small default executor."""
_DONE: Any = object()


def _modes(stream_mode: str | Sequence[str]) -> tuple[list[str], bool]:
    single = isinstance(stream_mode, str)
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
    for m in modes:
        if m not in MODES:
            raise ConfigError(f"stream_mode {m!r} is not supported; use one of {list(MODES)}")
    if not modes:
        raise ConfigError("stream_mode must name at least one mode")
    return modes, single


class CompiledGraph:
    """A graph ready to run. Thread-safe: one instance serves many threads and runs."""

    def __init__(
        self,
        spec: GraphSpec,
        checkpointer: Saver | None,
        *,
        name: str = "graph",
        present: Callable[[dict[str, Any]], Any] | None = None,
        state_view: Callable[[dict[str, Any]], Any] | None = None,
        prepare_input: Callable[[Any], Any] | None = None,
        present_update: Callable[[Any], Any] | None = None,
    ) -> None:
        self.spec = spec
        self.checkpointer = checkpointer
        self.name = name
        self._present = present
        self._state_view = state_view
        self._prepare_input = prepare_input
        self._present_update = present_update

    def with_checkpointer(self, checkpointer: Saver | None) -> CompiledGraph:
        """The same graph bound to another saver (the CLI binds a user's graph to a DB)."""
        clone = copy.copy(self)
        clone.checkpointer = checkpointer
        return clone

    # -- running ---------------------------------------------------------------------------

    def _run(
        self,
        input: Any,
        config: dict[str, Any] | None,
        durability: Durability,
        custom: bool,
        on_busy: str,
        loop: Any = None,
    ) -> Run:
        if self._prepare_input is not None:
            input = self._prepare_input(input)
        return Run(
            self.spec,
            self.checkpointer,
            input,
            config,
            durability=durability,
            custom=custom,
            on_busy=on_busy,
            loop=loop,
        )

    def _output(self, run: Run) -> Any:
        return self._present(run.values) if self._present is not None else dict(run.values)

    def _stream_iter(
        self,
        input: Any,
        config: dict[str, Any] | None,
        stream_mode: str | Sequence[str],
        durability: Durability,
        version: str,
        on_busy: str,
        loop: Any = None,
    ) -> Generator[Any, None, None]:
        modes, single = _modes(stream_mode)
        if version not in ("v1", "v2"):
            raise ConfigError(f"version must be 'v1' or 'v2', got {version!r}")
        run = self._run(input, config, durability, "custom" in modes, on_busy, loop)

        def shape(mode: str, chunk: Any) -> Any:
            if version == "v2":
                return {"type": mode, "ns": (), "data": chunk}
            return chunk if single else (mode, chunk)

        for kind, payload in run.events():
            if kind == "interrupts":
                if "updates" in modes:
                    yield shape("updates", {INTERRUPT_KEY: payload})
                if "values" in modes:
                    yield shape("values", {**self._output(run), INTERRUPT_KEY: payload})
            elif kind in modes:
                if kind == "values":
                    payload = self._output(run)
                elif kind == "updates" and self._present_update is not None:
                    payload = {k: self._present_update(v) for k, v in payload.items()}
                yield shape(kind, payload)

    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
    ) -> Iterator[Any]:
        """Run and yield chunks: ``{node: update}`` per node ("updates", the default), the
        whole state after each step ("values"), or what nodes write ("custom")."""
        return self._stream_iter(input, config, stream_mode, durability, version, on_busy)

    def invoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
    ) -> Any:
        """Run to END or to a pause. Returns the state (with ``"__interrupt__"`` when
        paused), or with ``version="v2"`` a ``RunResult(value, interrupts)``."""
        if version not in ("v1", "v2"):
            raise ConfigError(f"version must be 'v1' or 'v2', got {version!r}")
        run = self._run(input, config, durability, False, on_busy)
        for _ in run.events():
            pass
        return self._finish(run, version)

    def _finish(self, run: Run, version: str) -> Any:
        value = self._output(run)
        if version == "v2":
            return RunResult(value, run.interrupts)
        if run.interrupts:
            if isinstance(value, dict):
                return {**value, INTERRUPT_KEY: list(run.interrupts)}
            return {INTERRUPT_KEY: list(run.interrupts)}
        return value

    async def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
    ) -> AsyncIterator[Any]:
        """``stream`` for asyncio: the same loop, stepped on a worker thread; async nodes run
        on the caller's event loop."""
        loop = asyncio.get_running_loop()
        gen = self._stream_iter(input, config, stream_mode, durability, version, on_busy, loop)
        try:
            while True:
                item = await loop.run_in_executor(_RUN_POOL, next, gen, _DONE)
                if item is _DONE:
                    return
                yield item
        finally:
            await loop.run_in_executor(_RUN_POOL, gen.close)

    async def ainvoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
    ) -> Any:
        """``invoke`` for asyncio (see ``astream``)."""
        loop = asyncio.get_running_loop()
        run = self._run(input, config, durability, False, on_busy, loop)
        events = run.events()
        try:
            while await loop.run_in_executor(_RUN_POOL, next, events, _DONE) is not _DONE:
                pass
        finally:
            await loop.run_in_executor(_RUN_POOL, events.close)
        return self._finish(run, version)

    # -- state -----------------------------------------------------------------------------

    def get_state(self, config: dict[str, Any]) -> StateSnapshot:
        """The thread's state at its head (or at ``checkpoint_id`` in the config)."""
        snap = _update.get_state(self.spec, self.checkpointer, config)
        return self._view(snap)

    def get_state_history(
        self,
        config: dict[str, Any],
        *,
        limit: int | None = None,
        before: dict[str, Any] | None = None,
        filter: dict[str, Any] | None = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first, across branches."""
        snaps = _update.get_state_history(
            self.spec, self.checkpointer, config, limit=limit, before=before, filter=filter
        )
        return iter([self._view(s) for s in snaps])

    def get_metrics(self, config: dict[str, Any]) -> ThreadMetrics:
        """The thread's durability metrics: resume latency, checkpoint sizes, failure
        recovery and idempotency (see ``ThreadMetrics``)."""
        saver = self.checkpointer
        if saver is None:
            raise ConfigError("get_metrics needs a checkpointer: compile(checkpointer=...)")
        thread_id = thread_id_of(config, required=True)
        assert thread_id is not None
        return read_metrics(saver, thread_id)

    def update_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Write ``values`` through the reducers as a new checkpoint; returns its config."""
        return _update.update_state(self.spec, self.checkpointer, config, values, as_node)

    async def aget_state(self, config: dict[str, Any]) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config)

    async def aupdate_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.update_state, config, values, as_node)

    def _view(self, snap: StateSnapshot) -> StateSnapshot:
        if self._state_view is None:
            return snap
        from dataclasses import replace

        return replace(snap, values=self._state_view(snap.values))
