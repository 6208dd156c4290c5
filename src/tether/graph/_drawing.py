"""``get_graph()``: a compiled graph as nodes and edges, drawn as LangGraph draws it.

The edges are read from the declared structure: plain and join edges, conditional edges
(their ``path_map``, or a router's ``-> Literal[...]`` annotation), and the ``destinations``
of nodes that route with ``Command``; a node that routes nowhere known gets an edge to END.
With langchain-core installed the result is its ``Graph`` (``draw_mermaid``,
``draw_mermaid_png``, ``draw_ascii`` with grandalf), built from the same nodes and edges as
LangGraph's, so it draws the same text; without it, a small ``DrawableGraph`` that draws
mermaid the same way.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args, get_origin

from tether.engine._spec import GraphSpec
from tether.types import END, START


class Edge(NamedTuple):
    source: str
    target: str
    data: str | None = None
    conditional: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    data: Any
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class DrawableGraph:
    """The graph as nodes and edges, for when langchain-core is not installed."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add_node(self, data: Any, id: str, *, metadata: dict[str, Any] | None = None) -> Node:
        node = Node(id, id, data, metadata)
        self.nodes[id] = node
        return node

    def add_edge(
        self, source: Node, target: Node, data: str | None = None, conditional: bool = False
    ) -> Edge:
        edge = Edge(source.id, target.id, data, conditional)
        self.edges.append(edge)
        return edge

    def first_node(self) -> Node | None:
        """The one node no edge leads to (None if there is no single one)."""
        targets = {e.target for e in self.edges}
        found = [n for n in self.nodes.values() if n.id not in targets]
        return found[0] if len(found) == 1 else None

    def last_node(self) -> Node | None:
        """The one node no edge leaves (None if there is no single one)."""
        sources = {e.source for e in self.edges}
        found = [n for n in self.nodes.values() if n.id not in sources]
        return found[0] if len(found) == 1 else None

    def draw_mermaid(self, *, with_styles: bool = True) -> str:
        """Mermaid flowchart text, in langchain-core's layout."""
        first, last = self.first_node(), self.last_node()
        out = "---\nconfig:\n  flowchart:\n    curve: linear\n---\n" if with_styles else ""
        out += "graph TD;\n"
        if with_styles:
            for node in self.nodes.values():
                out += "\t" + _mermaid_node(node, first, last) + "\n"
        for e in self.edges:
            if e.data is not None:
                arrow = (
                    f" -. &nbsp;{e.data}&nbsp; .-> "
                    if e.conditional
                    else (f" -- &nbsp;{e.data}&nbsp; --> ")
                )
            else:
                arrow = " -.-> " if e.conditional else " --> "
            out += f"\t{_safe_id(e.source)}{arrow}{_safe_id(e.target)};\n"
        if with_styles:
            out += "\tclassDef default fill:#f2f0ff,line-height:1.2\n"
            out += "\tclassDef first fill-opacity:0\n"
            out += "\tclassDef last fill:#bfb6fc\n"
        return out

    def draw_ascii(self) -> str:
        raise ImportError(
            "draw_ascii needs langchain-core and grandalf, as in LangGraph: "
            "pip install langchain-core grandalf (draw_mermaid works without them)"
        )


def _safe_id(label: str) -> str:
    allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    return "".join(ch if ch in allowed else "\\" + format(ord(ch), "x") for ch in label)


def _mermaid_node(node: Node, first: Node | None, last: Node | None) -> str:
    label = node.name
    if label[:1] in "*_`" and label[-1:] in "*_`":
        label = f"<p>{label}</p>"
    lines = [f"{k} = {v}" for k, v in (node.metadata or {}).items() if v is not None]
    if lines:
        label += "<hr/><small><em>" + "\n".join(lines) + "</em></small>"
    if first is not None and node.id == first.id:
        return f"{_safe_id(node.id)}([{label}]):::first"
    if last is not None and node.id == last.id:
        return f"{_safe_id(node.id)}([{label}]):::last"
    return f"{_safe_id(node.id)}({label})"


def _literal_targets(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """Nodes named by a router's ``-> Literal["a", "b"]`` annotation, if it has one."""
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    if ret is None or get_origin(ret) is not Literal:
        return None
    return tuple(str(a) for a in get_args(ret))


def _edges(spec: GraphSpec, destinations: dict[str, dict[str, str | None]]) -> list[Edge]:
    """Every declared edge as (source, target, label, conditional), in LangGraph's order."""
    found: set[tuple[str, str, bool, str]] = set()
    for source, targets in spec.edges.items():
        found.update((source, t, False, "") for t in targets)
    for join in spec.joins:
        found.update((s, join.target, False, "") for s in join.sources)
    for source, branches in spec.branches.items():
        for br in branches:
            if br.path_map is not None:
                pairs = [(str(k), t) for k, t in br.path_map.items()]
            else:
                pairs = [(t, t) for t in _literal_targets(br.router) or ()]
            found.update((source, t, True, "" if label == t else label) for label, t in pairs)
    for source, labels in destinations.items():
        found.update((source, t, True, label or "") for t, label in labels.items())
    known = {*spec.nodes, END}
    edges = [Edge(s, t, label or None, cond) for s, t, cond, label in sorted(found) if t in known]
    ends = {e.target for e in edges if e.target != END} - {e.source for e in edges}
    return edges + [Edge(node, END) for node in sorted(ends)]


def _metadata(spec: GraphSpec, name: str, given: dict[str, Any]) -> dict[str, Any] | None:
    meta = dict(given)
    if spec.nodes[name].defer:
        meta["defer"] = True
    before, after = name in spec.interrupt_before, name in spec.interrupt_after
    if before or after:
        meta["__interrupt"] = ",".join(w for w, on in (("before", before), ("after", after)) if on)
    return meta or None


def draw_graph(
    spec: GraphSpec,
    destinations: dict[str, dict[str, str | None]],
    metadata: dict[str, dict[str, Any]],
) -> Any:
    """The graph as langchain-core's ``Graph`` when installed, else a ``DrawableGraph``."""
    graph: Any
    try:
        from langchain_core.runnables.graph import Graph
    except ImportError:
        graph = DrawableGraph()
    else:
        graph = Graph()
    graph.add_node(None, START)
    for name, node in spec.nodes.items():
        graph.add_node(node.fn, name, metadata=_metadata(spec, name, metadata.get(name, {})))
    for e in _edges(spec, destinations):
        if e.target not in graph.nodes:
            graph.add_node(None, e.target)
        graph.add_edge(graph.nodes[e.source], graph.nodes[e.target], e.data, e.conditional)
    return graph
