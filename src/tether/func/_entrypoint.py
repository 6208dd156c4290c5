"""``@entrypoint``: the functional API, a one-node graph over the same engine.

The function receives the run input, plus the parameters tether fills by name (``previous``:
the value saved by the thread's last run; ``config``, ``writer``, ``store``, ``runtime``; see
engine/_inject.py). What it returns is the run's output and, unless ``entrypoint.final``
says otherwise, what the next run sees as ``previous``. As in LangGraph, the output stays
the last returned value until a run returns a new one.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from tether.checkpoint._saver import Saver
from tether.engine._inject import inject, injected_params
from tether.engine._runtime import TaskContext, current_context
from tether.engine._spec import (
    Channel,
    GraphSpec,
    NodeSpec,
    Schema,
    is_async_callable,
    retry_policies,
    timeout_policy,
)
from tether.errors import GraphError
from tether.graph._compiled import CompiledGraph
from tether.graph._stream import View
from tether.serde import default_registry
from tether.types import END, START, Command, RetryPolicy, TimeoutPolicy

V = TypeVar("V")
S = TypeVar("S")

INPUT, RETURN, PREVIOUS = "__input__", "__return__", "__previous__"


def _check_function(fn: Callable[..., Any], name: str) -> None:
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise GraphError(
            f"@entrypoint {name!r} is a generator function; the functional API needs a "
            "function that returns its result. Return the collected values, and stream "
            "intermediate ones with a writer parameter (writer(chunk), stream_mode='custom')"
        )


def _register_types(fn: Callable[..., Any]) -> None:
    """Register the dataclasses and pydantic models of the input and return annotations, so
    that their values can be stored without a register_type() call (as the state schema of a
    StateGraph is). Annotations that cannot be resolved here are skipped: storing such a value
    then fails with an error that names the type to register."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {k: v for k, v in fn.__annotations__.items() if not isinstance(v, str)}
    params = list(inspect.signature(fn).parameters)
    annotations = [hints.get(params[0])] if params else []
    returned = hints.get("return")
    if typing.get_origin(returned) is entrypoint.final:
        annotations += list(typing.get_args(returned))
    elif returned is not entrypoint.final:
        annotations.append(returned)
    for annotation in annotations:
        if annotation is not None:
            default_registry.register_schema(annotation)


class entrypoint:
    """``@entrypoint(checkpointer=...)`` turns ``fn(input, *, previous=None)`` into a
    runnable with ``invoke``/``stream``/``get_state`` like a compiled graph.

    ``store`` and ``context_schema`` work as for ``StateGraph.compile(store=...)`` and
    ``StateGraph(..., context_schema=...)``; ``retry_policy`` (one or a list) and
    ``timeout`` (an async function's, per attempt) as for ``add_node``."""

    @dataclass(frozen=True, slots=True)
    class final(Generic[V, S]):
        """Return ``value`` to the caller but save ``save`` as the next run's ``previous``."""

        value: V
        save: S

    def __init__(
        self,
        checkpointer: Saver | None = None,
        store: Any = None,
        *,
        context_schema: Any = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> None:
        self.checkpointer = checkpointer
        self.store = store
        self.context_schema = context_schema
        self.retry_policy = retry_policy
        self.timeout = timeout

    def __call__(self, fn: Callable[..., Any]) -> CompiledGraph:
        name = getattr(fn, "__name__", "entrypoint")
        _check_function(fn, name)
        fill = injected_params(fn, f"@entrypoint {name!r}")
        _register_types(fn)
        retry = retry_policies(self.retry_policy, f"@entrypoint {name!r}")
        limit = timeout_policy(self.timeout, f"@entrypoint {name!r}", is_async_callable(fn))

        def split(result: Any) -> dict[str, Any]:
            if isinstance(result, entrypoint.final):
                return {RETURN: result.value, PREVIOUS: result.save}
            return {RETURN: result, PREVIOUS: result}

        def arguments(state: dict[str, Any]) -> dict[str, Any]:
            ctx: TaskContext | None = current_context()
            assert ctx is not None  # the runner sets it around every node call
            ctx.previous = state.get(PREVIOUS)
            return inject(fill, ctx)

        node: Callable[..., Any]
        if is_async_callable(fn):

            async def anode(state: dict[str, Any]) -> dict[str, Any]:
                return split(await fn(state.get(INPUT), **arguments(state)))

            node = anode
        else:

            def snode(state: dict[str, Any]) -> dict[str, Any]:
                return split(fn(state.get(INPUT), **arguments(state)))

            node = snode
        channels = {k: Channel(k, None, None) for k in (INPUT, RETURN, PREVIOUS)}
        spec = GraphSpec(
            schema=Schema(dict, channels, "dict"),
            input_keys=frozenset({INPUT}),
            output_keys=(RETURN,),
            nodes={name: NodeSpec(name, node, (), is_async_callable(node), retry, timeout=limit)},
            edges={START: (name,)},
            branches={},
            joins=(),
            triggers={name: (START,)},  # as LangGraph's entrypoint, run by the input itself
        )

        def prepare(value: Any) -> Any:
            if value is None or isinstance(value, Command):
                return value
            return {INPUT: value}

        def returned(values: dict[str, Any]) -> Any:
            return values.get(RETURN)

        def update(update: Any) -> Any:
            return update.get(RETURN) if isinstance(update, dict) else None

        # Streams show the function's input and return value, as LangGraph's do.
        view = View(
            output=returned,
            state=returned,
            update=update,
            entry=name,
            entry_input=lambda state: state.get(INPUT) if isinstance(state, dict) else state,
            entry_result=lambda writes: {END: writes.get(RETURN)},
        )
        return CompiledGraph(
            spec,
            self.checkpointer,
            name=name,
            present=returned,
            state_view=returned,
            prepare_input=prepare,
            present_update=update,
            store=self.store,
            context_schema=self.context_schema,
            values_on_input=False,
            view=view,
        )
