"""``get_graph()``: the same nodes, edges and mermaid text as LangGraph's for the same graph.

The expected texts were produced by LangGraph 1.2 with langchain-core 1.x; when LangGraph is
installed the comparison is also made live."""

import operator
from typing import Annotated, Any, Literal, TypedDict

import pytest
from tests._parity import LIBS, load

BRANCHING = """---
config:
  flowchart:
    curve: linear
---
graph TD;
\t__start__([<p>__start__</p>]):::first
\ta(a)
\tb(b)
\tc(c)
\t__end__([<p>__end__</p>]):::last
\t__start__ --> a;
\ta -. &nbsp;end&nbsp; .-> __end__;
\ta -.-> b;
\ta -.-> c;
\tb --> __end__;
\tc --> __end__;
\tclassDef default fill:#f2f0ff,line-height:1.2
\tclassDef first fill-opacity:0
\tclassDef last fill:#bfb6fc
"""


class State(TypedDict):
    log: Annotated[list, operator.add]


def _node(state: State) -> dict[str, Any]:
    return {"log": ["x"]}


def _route(state: State) -> str:
    return "b"


def _literal_route(state: State) -> Literal["a", "b"]:
    return "b"


def branching(lib: Any) -> Any:
    g = lib.StateGraph(State)
    for name in ("a", "b", "c"):
        g.add_node(name, _node)
    g.add_edge(lib.START, "a")
    g.add_conditional_edges("a", _route, {"b": "b", "c": "c", "end": lib.END})
    g.add_edge("b", lib.END)
    g.add_edge("c", lib.END)
    return g.compile()


def join_defer_breakpoints(lib: Any) -> Any:
    g = lib.StateGraph(State)
    g.add_node("a", _node)
    g.add_node("b", _node, metadata={"k": 1})
    g.add_node("c", _node, defer=True)
    g.add_edge(lib.START, "a")
    g.add_edge(lib.START, "b")
    g.add_edge(["a", "b"], "c")
    g.add_edge("c", lib.END)
    return g.compile(
        checkpointer=lib.InMemorySaver(), interrupt_before=["a"], interrupt_after=["a", "b"]
    )


def command_destinations(lib: Any) -> Any:
    def hop(state: State) -> lib.Command[Literal["b", "c"]]:  # type: ignore[name-defined]
        return lib.Command(goto="b")

    g = lib.StateGraph(State)
    g.add_node("hop", hop)
    g.add_node("b", _node)
    g.add_node("c", _node, destinations={"b": "lbl"})
    g.add_edge(lib.START, "hop")
    return g.compile()


def start_router_and_loop(lib: Any) -> Any:
    g = lib.StateGraph(State)
    g.add_node("a", _node)
    g.add_node("b", _node)
    g.add_conditional_edges(lib.START, _literal_route)
    g.add_edge("b", "a")
    g.add_conditional_edges("a", _route, {"again": "b", "done": lib.END})
    return g.compile()


def test_branching_graph_draws_as_langgraph_does() -> None:
    pytest.importorskip("langchain_core")
    assert branching(load("tether")).get_graph().draw_mermaid() == BRANCHING


def test_the_fallback_without_langchain_core_draws_the_same_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "langchain_core.runnables.graph", None)
    graph = branching(load("tether")).get_graph()
    assert type(graph).__name__ == "DrawableGraph"
    assert graph.draw_mermaid() == BRANCHING
    assert [tuple(e) for e in graph.edges][:2] == [
        ("__start__", "a", None, False),
        ("a", "__end__", "end", True),
    ]
    with pytest.raises(ImportError, match="grandalf"):
        graph.draw_ascii()


SHAPES = [branching, join_defer_breakpoints, command_destinations, start_router_and_loop]


def _shape(graph: Any) -> tuple[list[Any], list[Any]]:
    nodes = [(n.id, n.metadata) for n in graph.nodes.values()]
    edges = [(e.source, e.target, e.data, e.conditional) for e in graph.edges]
    return nodes, edges


@pytest.mark.parametrize("build", SHAPES, ids=lambda f: f.__name__)
def test_nodes_edges_and_mermaid_match_langgraph(build: Any) -> None:
    ours = build(load("tether")).get_graph()
    theirs = build(load("langgraph")).get_graph()
    assert _shape(ours) == _shape(theirs)
    assert ours.draw_mermaid() == theirs.draw_mermaid()


@pytest.mark.parametrize("name", LIBS)
def test_join_defer_and_breakpoints_show_in_node_metadata(name: str) -> None:
    nodes, edges = _shape(join_defer_breakpoints(load(name)).get_graph())
    assert dict(nodes)["a"] == {"__interrupt": "before,after"}
    assert dict(nodes)["b"] == {"k": 1, "__interrupt": "after"}
    assert dict(nodes)["c"] == {"defer": True}
    assert ("a", "c", None, False) in edges and ("b", "c", None, False) in edges


def test_an_entrypoint_draws_as_one_node() -> None:
    from tether import entrypoint

    @entrypoint()
    def flow(x: int) -> int:
        return x

    _, edges = _shape(flow.get_graph())
    assert edges == [("__start__", "flow", None, False), ("flow", "__end__", None, False)]
