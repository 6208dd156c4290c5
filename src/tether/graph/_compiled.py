"""CompiledGraph: the runnable a StateGraph compiles into.

``invoke``, ``stream``, ``ainvoke`` and ``astream`` are four views of one engine: each
consumes the events of one ``Run``; the async pair steps the same loop on a worker thread.
What a stream yields for each event is graph/_stream.py's business.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from tether.checkpoint._saver import Saver
from tether.engine import _update
from tether.engine._context import coerce_context
from tether.engine._history import get_state_history
from tether.engine._loop import Run, thread_id_of
from tether.engine._metrics import ThreadMetrics, read_metrics
from tether.engine._spec import GraphSpec
from tether.errors import ConfigError
from tether.graph._stream import Shaper, View, check_version, parse_modes
from tether.types import INTERRUPT_KEY, Command, Durability, RunResult, StateSnapshot

_RUN_POOL = ThreadPoolExecutor(max_workers=512, thread_name_prefix="tether-run")
"""Steps the loop of ``ainvoke``/``astream`` runs. Its own pool, so that many concurrent
async runs (each blocking a thread while an async node awaits on the caller's loop) are not
capped by the event loop's small default executor."""
_DONE: Any = object()


def _advance(events: Iterator[Any]) -> Any:
    return next(events, _DONE)


def _is_new_input(input: Any) -> bool:
    return input is not None and not (isinstance(input, Command) and input.has_resume)


def check_checkpointer(checkpointer: Any) -> Saver | None:
    """The saver a graph is bound to: a tether saver, or None (also given as ``False``, as
    LangGraph spells "no checkpointer"). Anything else is refused before the graph exists."""
    if checkpointer is None or checkpointer is False:
        return None
    if isinstance(checkpointer, Saver):
        return checkpointer
    if checkpointer is True:
        raise ConfigError(
            "checkpointer=True gives a subgraph checkpoints of its own in LangGraph; tether "
            "does not run subgraphs yet. Pass a tether saver (InMemorySaver(), "
            "SqliteSaver(...), PostgresSaver(...), RedisSaver(...)) or None"
        )
    raise ConfigError(
        f"checkpointer must be a tether saver (InMemorySaver(), SqliteSaver(...), "
        f"PostgresSaver(...), RedisSaver(...) from tether.checkpoint) or None, got "
        f"{type(checkpointer).__name__} {checkpointer!r:.60}"
    )


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
        store: Any = None,
        context_schema: Any = None,
        values_on_input: bool = True,
        view: View | None = None,
    ) -> None:
        self.spec = spec
        self.checkpointer = check_checkpointer(checkpointer)
        self.name = name
        self.store = store
        self.context_schema = context_schema
        self._values_on_input = values_on_input
        self.builder: Any = None
        """The StateGraph this was compiled from (None for an ``@entrypoint``)."""
        self._present = present
        self._state_view = state_view
        self._prepare_input = prepare_input
        self._present_update = present_update
        self._stream_view = view

    def with_checkpointer(self, checkpointer: Saver | None) -> CompiledGraph:
        """The same graph bound to another saver (the CLI binds a user's graph to a DB)."""
        clone = copy.copy(self)
        clone.checkpointer = check_checkpointer(checkpointer)
        return clone

    # -- running ---------------------------------------------------------------------------

    def _run(
        self,
        input: Any,
        config: dict[str, Any] | None,
        durability: Durability,
        modes: Sequence[str],
        on_busy: str,
        context: Any,
        loop: Any = None,
        breakpoints: tuple[Any, Any] = (None, None),
    ) -> Run:
        if self._prepare_input is not None:
            input = self._prepare_input(input)
        return Run(
            self.spec,
            self.checkpointer,
            input,
            config,
            durability=durability,
            modes=frozenset(modes),
            on_busy=on_busy,
            loop=loop,
            context=coerce_context(self.context_schema, context),
            store=self.store,
            interrupt_before=breakpoints[0],
            interrupt_after=breakpoints[1],
        )

    def _output(self, run: Run) -> Any:
        return self._present(run.values) if self._present is not None else dict(run.values)

    def _shown_as(self) -> View:
        """How streams show this graph's state (the functional API passes its own)."""
        if self._stream_view is not None:
            return self._stream_view
        view = View(output=self._present or dict, update=self._present_update)
        if self._state_view is not None:
            view = replace(view, state=self._state_view)
        builder = self.builder
        if builder is None:
            return view
        output_schema = builder._output_schema or builder._schema
        state_schema = builder._schema
        typed = ("dataclass", "pydantic")
        return replace(
            view,
            typed_output=output_schema.to_input if output_schema.kind in typed else None,
            typed_state=state_schema.to_input if state_schema.kind in typed else None,
        )

    def _stream_iter(
        self,
        input: Any,
        config: dict[str, Any] | None,
        stream_mode: str | Sequence[str],
        durability: Durability,
        version: str,
        on_busy: str,
        context: Any,
        loop: Any = None,
        subgraphs: bool = False,
        breakpoints: tuple[Any, Any] = (None, None),
    ) -> Generator[Any, None, None]:
        modes, single = parse_modes(stream_mode)
        check_version(version)
        run = self._run(input, config, durability, modes, on_busy, context, loop, breakpoints)
        shaper = Shaper(
            modes,
            single=single,
            version=version,
            subgraphs=subgraphs,
            view=self._shown_as(),
            saver=self.checkpointer,
        )
        # The functional API's output is its return value: new input does not change it, so
        # (as in LangGraph) no "values" chunk precedes the run; a resume shows the current one.
        skip_input_values = not self._values_on_input and _is_new_input(input)
        for kind, payload in run.events():
            if kind == "values" and skip_input_values:
                skip_input_values = False
                continue
            yield from shaper.chunks(kind, payload)

    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
        context: Any = None,
        subgraphs: bool = False,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
    ) -> Iterator[Any]:
        """Run and yield chunks, as LangGraph does (see ``tether.types.StreamMode``):
        ``{node: update}`` as each node finishes and ``{task: result}`` per ``@task`` call
        ("updates", the default), the state after each step ("values"), what nodes write
        ("custom"), LLM tokens ("messages"), checkpoints, task starts and results ("tasks",
        "checkpoints", "debug"). A list of modes yields ``(mode, chunk)`` pairs;
        ``version="v2"`` yields ``{"type", "ns", "data"}`` parts. ``subgraphs=True`` puts the
        namespace first, always ``()`` (tether runs no subgraphs). ``context`` is the
        run-scoped context nodes read as ``runtime.context`` (not stored: pass it again
        when resuming). ``interrupt_before`` / ``interrupt_after`` replace the compiled
        breakpoints for this run."""
        return self._stream_iter(
            input,
            config,
            stream_mode,
            durability,
            version,
            on_busy,
            context,
            None,
            subgraphs,
            (interrupt_before, interrupt_after),
        )

    def invoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
        context: Any = None,
        stream_mode: str | Sequence[str] = "values",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
    ) -> Any:
        """Run to END or to a pause. Returns the state (with ``"__interrupt__"`` when
        paused), or with ``version="v2"`` a ``GraphOutput(value, interrupts)``. Another
        ``stream_mode`` returns the list of chunks ``stream`` would yield. ``context`` and
        breakpoints: see ``stream``."""
        check_version(version)
        if stream_mode != "values":
            chunks = self.stream(
                input,
                config,
                stream_mode=stream_mode,
                durability=durability,
                version=version,
                on_busy=on_busy,
                context=context,
                interrupt_before=interrupt_before,
                interrupt_after=interrupt_after,
            )
            return list(chunks)
        breakpoints = (interrupt_before, interrupt_after)
        run = self._run(input, config, durability, (), on_busy, context, None, breakpoints)
        for _ in run.events():
            pass
        return self._finish(run, version)

    def _finish(self, run: Run, version: str) -> Any:
        value = self._output(run)
        if version == "v2":
            typed = self._shown_as().typed_output
            if typed is not None and isinstance(value, dict):
                value = typed(value)
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
        context: Any = None,
        subgraphs: bool = False,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
    ) -> AsyncIterator[Any]:
        """``stream`` for asyncio: the same loop, stepped on a worker thread; async nodes run
        on the caller's event loop."""
        loop = asyncio.get_running_loop()
        gen = self._stream_iter(
            input,
            config,
            stream_mode,
            durability,
            version,
            on_busy,
            context,
            loop,
            subgraphs,
            (interrupt_before, interrupt_after),
        )
        # The loop steps on pool threads; it runs in a copy of the caller's contextvars.
        ctx = contextvars.copy_context()
        try:
            while True:
                item = await loop.run_in_executor(_RUN_POOL, ctx.run, _advance, gen)
                if item is _DONE:
                    return
                yield item
        finally:
            await loop.run_in_executor(_RUN_POOL, ctx.run, gen.close)

    async def ainvoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability = "async",
        version: str = "v1",
        on_busy: str = "raise",
        context: Any = None,
        stream_mode: str | Sequence[str] = "values",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
    ) -> Any:
        """``invoke`` for asyncio (see ``astream``)."""
        check_version(version)
        if stream_mode != "values":
            chunks = self.astream(
                input,
                config,
                stream_mode=stream_mode,
                durability=durability,
                version=version,
                on_busy=on_busy,
                context=context,
                interrupt_before=interrupt_before,
                interrupt_after=interrupt_after,
            )
            return [c async for c in chunks]
        loop = asyncio.get_running_loop()
        breakpoints = (interrupt_before, interrupt_after)
        run = self._run(input, config, durability, (), on_busy, context, loop, breakpoints)
        events = run.events()
        ctx = contextvars.copy_context()
        try:
            while await loop.run_in_executor(_RUN_POOL, ctx.run, _advance, events) is not _DONE:
                pass
        finally:
            await loop.run_in_executor(_RUN_POOL, ctx.run, events.close)
        return self._finish(run, version)

    # -- drawing ---------------------------------------------------------------------------

    def get_graph(self, config: dict[str, Any] | None = None, *, xray: bool | int = False) -> Any:
        """The graph's nodes and edges, as LangGraph's ``get_graph()`` gives them:
        langchain-core's ``Graph`` when it is installed (``draw_mermaid()``,
        ``draw_mermaid_png()``, ``draw_ascii()``), else a ``DrawableGraph`` with
        ``draw_mermaid()``. ``config`` and ``xray`` are accepted for LangGraph's signature;
        tether has no subgraphs to expand."""
        from tether.graph._drawing import draw_graph

        builder = self.builder
        if builder is None:
            return draw_graph(self.spec, {}, {})
        destinations = {
            name: {t: builder._labels.get(name, {}).get(t) for t in dests}
            for name, dests in builder._destinations.items()
            if dests
        }
        return draw_graph(self.spec, destinations, builder._metadata)

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
        """The thread's checkpoints, newest first, across branches. Values are read as the
        iterator advances, a page of checkpoints at a time."""
        snaps = get_state_history(
            self.spec, self.checkpointer, config, limit=limit, before=before, filter=filter
        )
        return snaps if self._state_view is None else (self._view(s) for s in snaps)

    async def aget_state_history(
        self,
        config: dict[str, Any],
        *,
        limit: int | None = None,
        before: dict[str, Any] | None = None,
        filter: dict[str, Any] | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """``get_state_history`` as an async iterator: each page is read on a worker thread,
        so the event loop never waits on storage, and reading stays lazy."""
        snaps = await asyncio.to_thread(
            self.get_state_history, config, limit=limit, before=before, filter=filter
        )
        while True:
            snap = await asyncio.to_thread(next, snaps, None)
            if snap is None:
                return
            yield snap

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
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Write ``values`` through the reducers as a new checkpoint, as if node ``as_node``
        had returned them; returns its config. ``as_node="__copy__"`` copies the checkpoint
        as a sibling (a fork), ``as_node=END`` with ``values=None`` drops the pending step.
        ``task_id`` is accepted for LangGraph's signature and not used."""
        return _update.update_state(self.spec, self.checkpointer, config, values, as_node, task_id)

    def bulk_update_state(
        self, config: dict[str, Any], supersteps: Sequence[Sequence[Any]]
    ) -> dict[str, Any]:
        """Apply supersteps of updates (``StateUpdate(values, as_node)`` or tuples), one
        checkpoint per superstep, in order; returns the last one's config. All updates are
        checked before any is stored."""
        return _update.bulk_update_state(self.spec, self.checkpointer, config, supersteps)

    async def abulk_update_state(
        self, config: dict[str, Any], supersteps: Sequence[Sequence[Any]]
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.bulk_update_state, config, supersteps)

    async def aget_state(self, config: dict[str, Any]) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config)

    async def aupdate_state(
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.update_state, config, values, as_node, task_id)

    def _view(self, snap: StateSnapshot) -> StateSnapshot:
        if self._state_view is None:
            return snap
        from dataclasses import replace

        return replace(snap, values=self._state_view(snap.values))
