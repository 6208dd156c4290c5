"""``@entrypoint``: the functional API, a one-node graph over the same engine.

The function receives the run input (and ``previous``, the value saved by the last run of
the thread); what it returns is the run's output and, unless ``entrypoint.final`` says
otherwise, what the next run sees as ``previous``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tether.checkpoint._saver import Saver
from tether.engine._spec import Channel, GraphSpec, NodeSpec, Schema, is_async_callable
from tether.graph._compiled import CompiledGraph
from tether.types import START, Command, RetryPolicy

V = TypeVar("V")
S = TypeVar("S")

INPUT, RETURN, PREVIOUS = "__input__", "__return__", "__previous__"


def _wants(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class entrypoint:
    """``@entrypoint(checkpointer=...)`` turns ``fn(input, *, previous=None)`` into a
    runnable with ``invoke``/``stream``/``get_state`` like a compiled graph."""

    @dataclass(frozen=True, slots=True)
    class final(Generic[V, S]):
        """Return ``value`` to the caller but save ``save`` as the next run's ``previous``."""

        value: V
        save: S

    def __init__(
        self,
        checkpointer: Saver | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.checkpointer = checkpointer
        self.retry_policy = retry_policy

    def __call__(self, fn: Callable[..., Any]) -> CompiledGraph:
        name = getattr(fn, "__name__", "entrypoint")
        wants_previous = _wants(fn, "previous")
        wants_config = _wants(fn, "config")

        def split(result: Any) -> dict[str, Any]:
            if isinstance(result, entrypoint.final):
                return {RETURN: result.value, PREVIOUS: result.save}
            return {RETURN: result, PREVIOUS: result}

        def kwargs_for(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
            kw: dict[str, Any] = {}
            if wants_previous:
                kw["previous"] = state.get(PREVIOUS)
            if wants_config:
                kw["config"] = config
            return kw

        node: Callable[..., Any]
        if is_async_callable(fn):

            async def anode(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
                return split(await fn(state.get(INPUT), **kwargs_for(state, config)))

            node = anode
        else:

            def snode(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
                return split(fn(state.get(INPUT), **kwargs_for(state, config)))

            node = snode
        channels = {k: Channel(k, None, None) for k in (INPUT, RETURN, PREVIOUS)}
        spec = GraphSpec(
            schema=Schema(dict, channels, "dict"),
            input_keys=frozenset({INPUT, RETURN}),
            output_keys=(RETURN,),
            nodes={name: NodeSpec(name, node, True, is_async_callable(node), self.retry_policy)},
            edges={START: (name,)},
            branches={},
            joins=(),
        )

        def prepare(value: Any) -> Any:
            if value is None or isinstance(value, Command):
                return value
            return {INPUT: value, RETURN: None}

        return CompiledGraph(
            spec,
            self.checkpointer,
            name=name,
            present=lambda values: values.get(RETURN),
            state_view=lambda values: values.get(PREVIOUS),
            prepare_input=prepare,
            present_update=lambda update: update.get(RETURN) if isinstance(update, dict) else None,
        )
