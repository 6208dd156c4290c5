"""Static breakpoints: compile(interrupt_before=..., interrupt_after=...) or given to a run,
and Commands given to a thread stopped at one."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import Api, tether_api

from tether import END, START, ConfigError, GraphError, StateGraph
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


# -- breakpoints given to invoke/stream, and Commands at a breakpoint (LangGraph parity) ---


def _abc(api: Api, **compiled: Any) -> Any:
    g = api.StateGraph(S)
    for name in ("a", "b", "c", "d"):
        g.add_node(name, lambda s, name=name: {"log": [name]})
    g.add_edge(api.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g.compile(checkpointer=api.InMemorySaver(), **compiled)


def test_breakpoints_given_at_run_time_replace_the_compiled_ones(api: Api) -> None:
    app = _abc(api, interrupt_before=["b"])
    assert app.invoke({"log": []}, cfg("t"), interrupt_before=["c"]) == {"log": ["a", "b"]}
    assert app.get_state(cfg("t")).next == ("c",)
    assert app.invoke(None, cfg("t")) == {"log": ["a", "b", "c"]}
    chunks = list(app.stream({"log": []}, cfg("u"), interrupt_after=["a"], stream_mode="values"))
    assert chunks == [{"log": []}, {"log": ["a"]}]
    assert app.get_state(cfg("u")).next == ("b",)
    # continuing passes the breakpoint it stopped at, and stops at the next one given
    assert app.invoke(None, cfg("u"), interrupt_before="*") == {"log": ["a", "b"]}
    assert app.get_state(cfg("u")).next == ("c",)


def test_async_runs_take_breakpoints_too(api: Api) -> None:
    app = _abc(api)

    async def main() -> tuple[Any, list[Any]]:
        out = await app.ainvoke({"log": []}, cfg("t"), interrupt_after=["b"])
        return out, [c async for c in app.astream(None, cfg("t"), interrupt_before=["c"])]

    out, chunks = asyncio.run(main())
    assert out == {"log": ["a", "b"]}
    assert chunks == [{"c": {"log": ["c"]}}]  # it passed the breakpoint it stopped at


def test_run_time_breakpoints_name_nodes_of_the_graph() -> None:
    app = _abc(tether_api())
    with pytest.raises(ConfigError, match="'zzz'"):
        app.invoke({"log": []}, cfg("t"), interrupt_before=["zzz"])
    assert app.get_state(cfg("t")).values == {}  # refused before anything ran
    g = StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    with pytest.raises(ConfigError, match="checkpointer"):
        g.compile().invoke({"log": []}, interrupt_after=["a"])


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_command_update_at_a_breakpoint_runs_the_stopped_node_with_it(
    api: Api, where: str
) -> None:
    def b(state: dict[str, Any]) -> dict[str, Any]:
        return {"log": [f"b saw {state['log']}"]}

    g = api.StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", b)
    g.add_edge(api.START, "a")
    g.add_edge("a", "b")
    breakpoint = {"interrupt_before": ["b"]} if where == "before" else {"interrupt_after": ["a"]}
    app = g.compile(checkpointer=api.InMemorySaver(), **breakpoint)
    app.invoke({"log": []}, cfg("t"))
    out = app.invoke(api.Command(update={"log": ["fix"]}), cfg("t"))
    assert out == {"log": ["a", "fix", "b saw ['a', 'fix']"]}  # a did not run again
    assert app.get_state(cfg("t")).next == ()


@pytest.mark.parametrize("update", [None, {"log": ["fix"]}])
def test_a_command_goto_at_a_breakpoint_adds_its_node_to_the_stopped_step(
    api: Api, update: Any
) -> None:
    app = _abc(api, interrupt_before=["b"])
    app.invoke({"log": []}, cfg("t"))
    out = app.invoke(api.Command(goto="d", update=update), cfg("t"))
    fixed = ["fix"] if update else []
    assert out == {"log": ["a", *fixed, "b", "d", "c"]}  # b and d in one step, then c


def test_a_command_update_on_a_finished_thread_runs_nothing(api: Api) -> None:
    app = _abc(api)
    app.invoke({"log": []}, cfg("t"))
    assert app.invoke(api.Command(update={"log": ["late"]}), cfg("t")) == {
        "log": ["a", "b", "c", "late"]
    }
    assert app.invoke(api.Command(goto="d"), cfg("t")) == {"log": ["a", "b", "c", "late", "d"]}
