"""A compiled graph as plain data: nodes, edges, branches, joins and channels.

The builder produces it once at ``compile``; the planner and the loop only read it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.errors import ConfigError, GraphError
from tether.types import CachePolicy, RetryPolicy, TimeoutPolicy


def is_async_callable(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


def retry_policies(value: Any, what: str) -> tuple[RetryPolicy, ...]:
    """``retry_policy=`` as ``add_node``, ``@task`` and ``@entrypoint`` take it: one
    RetryPolicy or a sequence of them, of which (as in LangGraph) the first whose ``retry_on``
    matches an exception applies."""
    if value is None:
        return ()
    if isinstance(value, RetryPolicy):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(p, RetryPolicy) for p in value):
        return tuple(value)
    raise GraphError(
        f"{what}: retry_policy must be a RetryPolicy or a non-empty list of them, got {value!r:.80}"
    )


@dataclass(frozen=True, slots=True)
class Channel:
    """One state key. ``reducer`` folds writes; ``default`` makes the value a reducer starts
    from (None: the first write is taken as is)."""

    name: str
    reducer: Callable[[Any, Any], Any] | None
    default: Callable[[], Any] | None


@dataclass(frozen=True, slots=True)
class Schema:
    """A state schema turned into channels, and how to hand state to a node."""

    cls: Any
    channels: dict[str, Channel]
    kind: str  # "typeddict" | "dataclass" | "pydantic" | "class" | "dict"
    managed: dict[str, Callable[[int], Any]] = field(default_factory=dict)
    """Keys computed per step from the steps remaining (``RemainingSteps``), never stored."""

    def keys(self) -> frozenset[str]:
        return frozenset(self.channels)

    @property
    def builds_instances(self) -> bool:
        """Whether nodes receive the state as an instance of ``cls`` (dataclass, pydantic)
        rather than as a dict (TypedDict, plain annotated class)."""
        return self.kind in ("dataclass", "pydantic")

    def to_input(self, values: dict[str, Any]) -> Any:
        """The object a node receives: a dict for TypedDicts and plain classes, an instance
        of the dataclass or pydantic model otherwise."""
        if not self.builds_instances:
            return dict(values)
        known = {k: v for k, v in values.items() if k in self.channels or k in self.managed}
        return self.cls(**known)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node; ``inject`` lists the parameters tether fills (engine/_inject.py)."""

    name: str
    fn: Callable[..., Any]
    inject: tuple[str, ...]
    is_async: bool
    retry: tuple[RetryPolicy, ...] = ()
    """Tried in order after an exception: the first whose ``retry_on`` matches applies."""
    defer: bool = False
    """Run only once nothing else is left to run (``add_node(..., defer=True)``)."""
    cache_policy: CachePolicy | None = None
    timeout: TimeoutPolicy | None = None
    """Per attempt, for async nodes (``add_node(..., timeout=...)``, coerced)."""


def timeout_policy(value: Any, what: str, is_async: bool) -> TimeoutPolicy | None:
    """``timeout=`` as ``add_node``, ``@task`` and ``@entrypoint`` take it (seconds, a
    timedelta or a TimeoutPolicy), checked: only async functions can be cancelled."""
    try:
        policy = TimeoutPolicy.coerce(value)
    except ConfigError as exc:
        raise GraphError(f"{what}: {exc}") from None
    if policy is not None and not is_async:
        raise GraphError(
            f"{what} is sync, and timeouts need an async function: sync Python cannot be "
            "cancelled in-process. Make it `async def`, or drop timeout="
        )
    return policy


@dataclass(frozen=True, slots=True)
class Branch:
    """A conditional edge: ``router(state)`` names where to go, optionally via ``path_map``."""

    source: str
    router: Callable[..., Any]
    path_map: dict[Hashable, str] | None
    inject: tuple[str, ...]
    is_async: bool


@dataclass(frozen=True, slots=True)
class Join:
    """``add_edge([a, b], c)``: ``target`` runs once every source has finished."""

    id: str
    sources: frozenset[str]
    target: str


@dataclass(frozen=True)
class GraphSpec:
    schema: Schema
    input_keys: frozenset[str]
    output_keys: tuple[str, ...]
    nodes: dict[str, NodeSpec]
    edges: dict[str, tuple[str, ...]]
    branches: dict[str, tuple[Branch, ...]]
    joins: tuple[Join, ...]
    joins_by_source: dict[str, tuple[Join, ...]] = field(default_factory=dict)
    input_schema: Schema | None = None
    """The ``input_schema`` given to ``StateGraph``; None: the state schema."""
    output_schema: Schema | None = None
    """The ``output_schema`` given to ``StateGraph``; None: the state schema."""
    interrupt_before: frozenset[str] = frozenset()
    interrupt_after: frozenset[str] = frozenset()
    strict: bool = True
    """False (``compile(strict=False)``): unknown keys and goto targets are dropped with a
    ``DroppedUpdateWarning`` instead of raising."""
    cache: Any = None
    """The ``BaseCache`` given to ``compile(cache=...)``, for nodes with a cache policy."""
    triggers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per node, why it runs in LangGraph's channel names, shown in stream events and node
    metadata; a node not listed shows ``("branch:to:<node>",)``."""
    node_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``add_node(..., metadata=...)``: added to the node's config metadata (and so to its
    stream events), as LangGraph adds it."""

    @property
    def channels(self) -> dict[str, Channel]:
        return self.schema.channels


def reader_spec() -> GraphSpec:
    """A spec for reading threads without their graph (the CLI): no channels are known, so
    stored deltas are folded by the reducer code stored with them."""
    return GraphSpec(
        schema=Schema(dict, {}, "dict"),
        input_keys=frozenset(),
        output_keys=(),
        nodes={},
        edges={},
        branches={},
        joins=(),
    )
