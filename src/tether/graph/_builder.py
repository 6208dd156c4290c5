"""StateGraph: declare nodes and edges over a state schema, then ``compile`` into a runnable.

Every structural mistake (unknown node, reserved name, no entry point) is raised here, naming
the node, so that a run never discovers it halfway. A node without an edge into it is allowed:
it may be reached through ``Command(goto=...)``, which is checked when the run routes there.
"""

from __future__ import annotations

import itertools
import typing
import warnings
from collections.abc import Callable, Hashable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from tether.cache.base import BaseCache
from tether.engine._inject import injected_params
from tether.engine._spec import (
    Branch,
    GraphSpec,
    Join,
    NodeSpec,
    is_async_callable,
    retry_policies,
    timeout_policy,
)
from tether.errors import GraphError
from tether.graph._compiled import check_checkpointer
from tether.graph._schema import build_schema
from tether.types import END, START, CachePolicy, Command, RetryPolicy, TimeoutPolicy

if TYPE_CHECKING:
    from tether.checkpoint import Saver
    from tether.graph._compiled import CompiledGraph

RESERVED = frozenset({START, END, "__interrupt__", "__input__", "__previous__", "__return__"})


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise GraphError(f"node name must be a non-empty string, got {name!r}")
    if name in RESERVED:
        raise GraphError(f"node name {name!r} is reserved by tether; choose another name")
    if name.startswith("__") and name.endswith("__"):
        raise GraphError(f"node name {name!r} is reserved (names like '__x__' are tether's)")
    if ":" in name or "|" in name:
        raise GraphError(f"node name {name!r} must not contain ':' or '|' (used in task paths)")


def _command_destinations(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """Nodes named by a ``-> Command[Literal["a", "b"]]`` return annotation, if any."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    ret = hints.get("return")
    if ret is None or (get_origin(ret) is not Command and ret is not Command):
        return None
    args = get_args(ret)
    if not args or get_origin(args[0]) is not Literal:
        return None
    return tuple(str(a) for a in get_args(args[0]))


def _renamed(
    deprecated: dict[str, Any], context_schema: Any, input_schema: Any, output_schema: Any
) -> tuple[Any, Any, Any]:
    """LangGraph's old argument names, mapped onto the new ones."""
    new = {"config_schema": "context_schema", "input": "input_schema", "output": "output_schema"}
    unknown = sorted(set(deprecated) - set(new))
    if unknown:
        raise GraphError(
            f"StateGraph() got unknown arguments {unknown}; it takes state_schema, "
            "context_schema, input_schema and output_schema"
        )
    given = {"context_schema": context_schema, "input_schema": input_schema}
    given["output_schema"] = output_schema
    for old, value in deprecated.items():
        warnings.warn(
            f"StateGraph({old}=...) is deprecated; use {new[old]}=...",
            DeprecationWarning,
            stacklevel=3,
        )
        if given[new[old]] is None:
            given[new[old]] = value
    return given["context_schema"], given["input_schema"], given["output_schema"]


class StateGraph:
    """A graph of nodes over a shared state.

    ``StateGraph(State)`` where ``State`` is a TypedDict, dataclass or pydantic model;
    ``context_schema`` types the run-scoped ``context=`` nodes read as ``runtime.context``
    (a dict given for a dataclass or pydantic schema is turned into one); ``input_schema``
    limits which keys the run input may set, ``output_schema`` which keys ``invoke`` returns.
    LangGraph's deprecated ``config_schema=``, ``input=`` and ``output=`` are accepted, with a
    DeprecationWarning.
    """

    def __init__(
        self,
        state_schema: Any,
        context_schema: Any = None,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
        **deprecated: Any,
    ) -> None:
        context_schema, input_schema, output_schema = _renamed(
            deprecated, context_schema, input_schema, output_schema
        )
        self._context_schema = context_schema
        self._schema = build_schema(state_schema)
        self._input_schema = build_schema(input_schema) if input_schema is not None else None
        self._output_schema = build_schema(output_schema) if output_schema is not None else None
        for extra in (self._input_schema, self._output_schema):
            if extra is None:
                continue
            unknown = extra.keys() - self._schema.keys()
            if unknown:
                raise GraphError(
                    f"keys {sorted(unknown)} of {extra.cls.__name__} are not in the state "
                    f"schema {self._schema.cls.__name__}; add them to the state schema"
                )
        self._nodes: dict[str, NodeSpec] = {}
        self._destinations: dict[str, tuple[str, ...] | None] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._metadata: dict[str, dict[str, Any]] = {}
        self._edges: list[tuple[str, str]] = []
        self._joins: list[tuple[tuple[str, ...], str]] = []
        self._branches: list[Branch] = []

    # -- nodes -----------------------------------------------------------------------------

    def add_node(
        self,
        node: str | Callable[..., Any],
        action: Callable[..., Any] | None = None,
        *,
        defer: bool = False,
        metadata: dict[str, Any] | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        cache_policy: CachePolicy | None = None,
        destinations: dict[str, str] | Sequence[str] | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> StateGraph:
        """Add a node. ``add_node(fn)`` names it after the function.

        - ``defer``: run the node only when nothing else is left to run in the run.
        - ``metadata``: shown on the node in ``get_graph()``.
        - ``retry_policy``: retry the node after an exception; with a list of policies, the
          first whose ``retry_on`` matches the exception applies.
        - ``cache_policy``: reuse the node's result for the same input (needs
          ``compile(cache=...)``).
        - ``destinations``: where a node that returns ``Command(goto=...)`` may go, drawn in
          ``get_graph()`` (a dict maps each to an edge label). Also read from a
          ``-> Command[Literal[...]]`` annotation. Nodes reached only through ``goto`` need
          not be declared.
        - ``timeout``: for an async node, how long each attempt may run (seconds or a
          timedelta: a ``run_timeout``) or go without progress (``TimeoutPolicy``); past it
          the attempt is cancelled with ``NodeTimeoutError``."""
        if action is None:
            if not callable(node):
                raise GraphError(f"add_node({node!r}) needs a function to run")
            action = node
            name = getattr(node, "__name__", None)
            if not isinstance(name, str) or name == "<lambda>":
                raise GraphError("add_node(fn) needs a named function; pass a name first")
        else:
            if not isinstance(node, str):
                raise GraphError(f"node name must be a string, got {node!r}")
            name = node
        _check_name(name)
        if name in self._nodes:
            raise GraphError(f"node {name!r} is already in the graph; node names are unique")
        if not callable(action):
            raise GraphError(f"node {name!r}: {action!r} is not callable")
        retry = retry_policies(retry_policy, f"node {name!r}")
        is_async = is_async_callable(action)
        limit = timeout_policy(timeout, f"node {name!r}", is_async)
        if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
            raise GraphError(
                f"node {name!r}: cache_policy must be a CachePolicy, got {cache_policy!r}"
            )
        self._nodes[name] = NodeSpec(
            name,
            action,
            injected_params(action, f"node {name!r}"),
            is_async,
            retry,
            defer=defer,
            cache_policy=cache_policy,
            timeout=limit,
        )
        self._metadata[name] = dict(metadata or {})
        if isinstance(destinations, dict):
            self._destinations[name] = tuple(destinations)
            self._labels[name] = dict(destinations)
        else:
            self._destinations[name] = (
                tuple(destinations) if destinations is not None else _command_destinations(action)
            )
        return self

    def add_sequence(
        self, nodes: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]]
    ) -> StateGraph:
        """Add nodes and chain them with edges in the given order."""
        if not nodes:
            raise GraphError("add_sequence needs at least one node")
        names: list[str] = []
        for item in nodes:
            if isinstance(item, tuple):
                self.add_node(item[0], item[1])
                names.append(item[0])
            else:
                self.add_node(item)
                names.append(item.__name__)
        for a, b in itertools.pairwise(names):
            self.add_edge(a, b)
        return self

    # -- edges -----------------------------------------------------------------------------

    def add_edge(self, start: str | Sequence[str], end: str) -> StateGraph:
        """``add_edge(a, b)``: b runs after a. ``add_edge([a, b], c)``: c runs once both a
        and b have finished."""
        if end == START:
            raise GraphError("START cannot be the end of an edge")
        if isinstance(start, str):
            if start == END:
                raise GraphError(f"END cannot be the start of an edge (edge END -> {end!r})")
            self._edges.append((start, end))
        else:
            sources = tuple(start)
            if not sources:
                raise GraphError(f"add_edge([...], {end!r}) needs at least one source")
            if START in sources or END in sources:
                raise GraphError(f"a join edge into {end!r} cannot start at START or END")
            self._joins.append((sources, end))
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        return self.add_edge(node, END)

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: dict[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After ``source``, call ``path(state)``: it returns a node name, a list of names,
        ``END`` or ``Send``s; ``path_map`` translates its return values into node names."""
        if source == END:
            raise GraphError("END cannot be the source of a conditional edge")
        if not callable(path):
            raise GraphError(f"conditional edge from {source!r}: router {path!r} is not callable")
        mapping: dict[Hashable, str] | None
        if path_map is None:
            mapping = None
        elif isinstance(path_map, dict):
            mapping = dict(path_map)
        else:
            mapping = {name: name for name in path_map}
        what = f"the router of the conditional edge from {source!r}"
        self._branches.append(
            Branch(source, path, mapping, injected_params(path, what), is_async_callable(path))
        )
        return self

    # -- compile ---------------------------------------------------------------------------

    def _validate(self) -> None:
        known = set(self._nodes)

        def check(name: str, where: str, *, allow_start: bool = False) -> None:
            if name == END or (allow_start and name == START) or name in known:
                return
            raise GraphError(
                f"{where} names node {name!r}, which is not in the graph; add it with "
                f"add_node({name!r}, ...) (known nodes: {sorted(known)})"
            )

        for a, b in self._edges:
            check(a, f"edge {a!r} -> {b!r}", allow_start=True)
            check(b, f"edge {a!r} -> {b!r}")
        for sources, target in self._joins:
            for s in sources:
                check(s, f"join edge {list(sources)} -> {target!r}")
            check(target, f"join edge {list(sources)} -> {target!r}")
        for br in self._branches:
            check(br.source, f"conditional edge from {br.source!r}", allow_start=True)
            for target in (br.path_map or {}).values():
                check(target, f"path_map of the conditional edge from {br.source!r}")
        for name, dests in self._destinations.items():
            for d in dests or ():
                check(d, f"destinations of node {name!r}")
        if not any(a == START for a, _ in self._edges) and not any(
            br.source == START for br in self._branches
        ):
            raise GraphError(
                "graph has no entry point: add an edge from START, e.g. "
                "add_edge(START, 'first_node')"
            )

    def _breakpoints(
        self, what: str, names: Sequence[str] | str | None, checkpointer: Saver | None
    ) -> frozenset[str]:
        if not names:
            return frozenset()
        if checkpointer is None:
            raise GraphError(
                f"{what} needs a checkpointer to remember where the run stopped: "
                "compile(checkpointer=..., ...)"
            )
        if names == "*":
            return frozenset(self._nodes)
        listed = [names] if isinstance(names, str) else list(names)
        for n in listed:
            if n not in self._nodes:
                raise GraphError(
                    f"{what} names node {n!r}, which is not in the graph "
                    f"(known nodes: {sorted(self._nodes)})"
                )
        return frozenset(listed)

    def spec(self) -> GraphSpec:
        self._validate()
        edges: dict[str, list[str]] = {}
        for a, b in self._edges:
            if b not in edges.setdefault(a, []):
                edges[a].append(b)
        branches: dict[str, list[Branch]] = {}
        for br in self._branches:
            branches.setdefault(br.source, []).append(br)
        joins = tuple(
            Join(f"join:{'+'.join(sorted(s))}->{t}", frozenset(s), t) for s, t in self._joins
        )
        by_source: dict[str, list[Join]] = {}
        for j in joins:
            for s in sorted(j.sources):
                by_source.setdefault(s, []).append(j)
        # LangGraph's names: a node's own branch channel, and a channel per waiting edge
        triggers = {n: [f"branch:to:{n}"] for n in self._nodes}
        for sources, target in self._joins:
            if target in triggers:
                triggers[target].append(f"join:{'+'.join(sources)}:{target}")
        schema = self._schema
        input_keys = (self._input_schema or schema).keys()
        output_keys = tuple((self._output_schema or schema).channels)
        return GraphSpec(
            schema=schema,
            input_keys=input_keys,
            output_keys=output_keys,
            nodes=dict(self._nodes),
            edges={k: tuple(v) for k, v in edges.items()},
            branches={k: tuple(v) for k, v in branches.items()},
            joins=joins,
            joins_by_source={k: tuple(v) for k, v in by_source.items()},
            triggers={n: tuple(sorted(t)) for n, t in triggers.items()},
            node_metadata={n: dict(m) for n, m in self._metadata.items() if m},
            input_schema=self._input_schema,
            output_schema=self._output_schema,
        )

    def compile(
        self,
        checkpointer: Saver | None = None,
        *,
        cache: BaseCache | None = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        name: str = "graph",
        store: Any = None,
        strict: bool = True,
    ) -> CompiledGraph:
        """Check the graph and return a runnable bound to ``checkpointer`` (None: no memory
        between invokes, and no interrupts).

        - ``cache``: where nodes with a ``cache_policy`` keep their results
          (``InMemoryCache()``).
        - ``interrupt_before`` / ``interrupt_after``: static breakpoints, node names (or "*"
          for all) where a run stops before or after the node; ``invoke(None, config)``
          continues it.
        - ``strict=False``: for porting. Writes to keys that are not in the state schema
          and goto, Send or router targets that are not nodes are dropped with a
          ``DroppedUpdateWarning``, as LangGraph drops them, instead of raising.
        - ``store``: handed to nodes as ``runtime.store``, a ``store`` parameter and
          ``get_store()``; tether passes it through untouched (any object: a LangGraph
          ``BaseStore`` works)."""
        from dataclasses import replace

        from tether.graph._compiled import CompiledGraph
        from tether.serde import default_registry

        checkpointer = check_checkpointer(checkpointer)
        if cache is not None and not isinstance(cache, BaseCache):
            raise GraphError(
                f"compile(cache=...) takes a tether cache such as InMemoryCache() from "
                f"tether.cache.memory, got {type(cache).__name__}"
            )
        spec = self.spec()
        before = self._breakpoints("interrupt_before", interrupt_before, checkpointer)
        after = self._breakpoints("interrupt_after", interrupt_after, checkpointer)
        spec = replace(
            spec,
            interrupt_before=before,
            interrupt_after=after,
            strict=bool(strict),
            cache=cache,
        )
        default_registry.register_schema(spec.schema.cls)
        compiled = CompiledGraph(
            spec, checkpointer, name=name, store=store, context_schema=self._context_schema
        )
        compiled.builder = self
        return compiled
