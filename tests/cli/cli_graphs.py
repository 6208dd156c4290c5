"""Graphs for the CLI tests, imported by ``--graph cli_graphs:<name>`` (tests/cli on sys.path).

``make_db(path)`` runs them against a SQLite file until each thread pauses:

- ``t1`` (``approval``): ``plan`` then ``ask``, which pauses once (derived interrupt id);
- ``p1`` (``parallel``): ``a`` and ``b`` run in one step and pause with ids ``ia`` and ``ib``;
- ``c1`` (``custom``): a custom reducer, so it can only be read with ``--graph``.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from tether import END, START, StateGraph, interrupt
from tether.checkpoint import SqliteSaver

LONG = "planned " + "x" * 500


class ApprovalState(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    answer: Any


def plan(state: ApprovalState) -> dict[str, Any]:
    return {"messages": [LONG]}


def ask(state: ApprovalState) -> dict[str, Any]:
    answer = interrupt({"question": "approve the refund?"})
    return {"messages": [f"answer: {answer}"], "answer": answer}


_approval = StateGraph(ApprovalState)
_approval.add_node("plan", plan)
_approval.add_node("ask", ask)
_approval.add_edge(START, "plan")
_approval.add_edge("plan", "ask")
_approval.add_edge("ask", END)
approval = _approval.compile()
approval_builder = _approval


class ParallelState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def node_a(state: ParallelState) -> dict[str, Any]:
    return {"log": [f"a={interrupt('need a', id='ia')}"]}


def node_b(state: ParallelState) -> dict[str, Any]:
    return {"log": [f"b={interrupt('need b', id='ib')}"]}


_parallel = StateGraph(ParallelState)
_parallel.add_node("a", node_a)
_parallel.add_node("b", node_b)
_parallel.add_edge(START, "a")
_parallel.add_edge(START, "b")
_parallel.add_edge("a", END)
_parallel.add_edge("b", END)
parallel = _parallel.compile()


def merge_sets(left: list[str], right: list[str]) -> list[str]:
    return sorted(set(left) | set(right))


class CustomState(TypedDict, total=False):
    tags: Annotated[list[str], merge_sets]


def tag(state: CustomState) -> dict[str, Any]:
    return {"tags": ["beta", "alpha"]}


def hold(state: CustomState) -> dict[str, Any]:
    return {"tags": [str(interrupt("more tags?", id="more"))]}


_custom = StateGraph(CustomState)
_custom.add_node("tag", tag)
_custom.add_node("hold", hold)
_custom.add_edge(START, "tag")
_custom.add_edge("tag", "hold")
_custom.add_edge("hold", END)
custom = _custom.compile()

not_a_graph = 42


def make_db(path: str) -> None:
    with SqliteSaver(path) as saver:
        for thread, graph, inp in (
            ("t1", approval, {"messages": ["hi"]}),
            ("p1", parallel, {"log": []}),
            ("c1", custom, {"tags": ["zeta"]}),
        ):
            bound = graph.__class__(graph.spec, saver, name=graph.name)
            bound.invoke(inp, {"configurable": {"thread_id": thread}}, durability="sync")
