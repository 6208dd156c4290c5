"""Static breakpoints: compile(interrupt_before=..., interrupt_after=...)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, GraphError, StateGraph
from tether.checkpoint import InMemorySaver


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def graph() -> StateGraph:
    g = StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s, name=name: {"log": [name]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g


def cfg(t: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": t}}


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_interrupt_before_stops_and_none_continues(durability: str) -> None:
    app = graph().compile(checkpointer=InMemorySaver(), interrupt_before=["b"])
    out = app.invoke({"log": []}, cfg("t"), durability=durability)
    assert out == {"log": ["a"]} and "__interrupt__" not in out
    assert app.get_state(cfg("t")).next == ("b",)
    assert app.invoke(None, cfg("t"), durability=durability) == {"log": ["a", "b", "c"]}
    # new input stops at the breakpoint again
    assert app.invoke({"log": ["x"]}, cfg("t"), durability=durability)["log"][-1] == "a"
    assert app.get_state(cfg("t")).next == ("b",)


def test_interrupt_after_and_star() -> None:
    app = graph().compile(checkpointer=InMemorySaver(), interrupt_after="a")
    assert app.invoke({"log": []}, cfg("t")) == {"log": ["a"]}
    assert app.get_state(cfg("t")).next == ("b",)
    assert app.invoke(None, cfg("t")) == {"log": ["a", "b", "c"]}
    every = graph().compile(checkpointer=InMemorySaver(), interrupt_before="*")
    seen = [every.invoke({"log": []}, cfg("s"))["log"]]
    while every.get_state(cfg("s")).next:
        seen.append(every.invoke(None, cfg("s"))["log"])
    assert seen == [[], ["a"], ["a", "b"], ["a", "b", "c"]]


def test_breakpoints_are_checked_at_compile() -> None:
    with pytest.raises(GraphError, match="'nope'"):
        graph().compile(checkpointer=InMemorySaver(), interrupt_before=["nope"])
    with pytest.raises(GraphError, match="checkpointer"):
        graph().compile(interrupt_after=["a"])
