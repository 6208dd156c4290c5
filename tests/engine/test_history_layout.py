"""The checkpoints a run writes, laid out as LangGraph lays them out: an input checkpoint at
step -1, one per step, "update" and "fork" checkpoints one step past their base, configs with
``checkpoint_ns``. Each test runs on both engines (the ``api`` fixture)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any, TypedDict

from tests._parity import Api


class S(TypedDict, total=False):
    n: int
    note: str


def cfg(tid: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": tid}}


def linear(api: Api) -> Any:
    g = api.StateGraph(S)
    g.add_node("a", lambda s: {"n": s["n"] + 1})
    g.add_node("b", lambda s: {"n": s["n"] * 10})
    g.add_edge(api.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", api.END)
    return g.compile(checkpointer=api.InMemorySaver())


def test_a_run_writes_an_input_checkpoint_then_one_per_step(api: Api) -> None:
    app = linear(api)
    app.invoke({"n": 1}, cfg())
    hist = list(app.get_state_history(cfg()))
    assert [h.metadata["step"] for h in hist] == [2, 1, 0, -1]
    assert [h.metadata["source"] for h in hist] == ["loop", "loop", "loop", "input"]
    assert [h.next for h in hist] == [(), ("b",), ("a",), ("__start__",)]
    assert [h.values for h in hist] == [{"n": 20}, {"n": 2}, {"n": 1}, {}]
    assert all(h.metadata["parents"] == {} for h in hist)
    first = hist[-1]
    assert [(t.name, t.result) for t in first.tasks] == [("__start__", {"n": 1})]
    assert first.parent_config is None
    for newer, older in itertools.pairwise(hist):
        assert newer.config["configurable"]["checkpoint_ns"] == ""
        assert newer.parent_config == older.config
    # a tutorial's index lands on the same checkpoint: the state right after the input
    assert hist[-2].values == {"n": 1} and hist[-2].next == ("a",)


def test_a_second_input_continues_the_numbering(api: Api) -> None:
    app = linear(api)
    app.invoke({"n": 1}, cfg())
    app.invoke({"n": 3}, cfg())
    hist = list(app.get_state_history(cfg()))
    assert [h.metadata["step"] for h in hist][:4] == [6, 5, 4, 3]
    assert hist[3].metadata["source"] == "input" and hist[3].values == {"n": 20}
    assert hist[2].values == {"n": 3}


def test_replay_from_an_old_checkpoint_numbers_the_branch_onwards(api: Api) -> None:
    app = linear(api)
    app.invoke({"n": 1}, cfg())
    before_b = next(h for h in app.get_state_history(cfg()) if h.next == ("b",))
    assert app.invoke(None, before_b.config) == {"n": 20}
    hist = list(app.get_state_history(cfg()))
    fork, end = hist[1], hist[0]
    assert fork.metadata["source"] == "fork"
    assert fork.metadata["step"] == before_b.metadata["step"] + 1
    assert end.metadata["step"] == fork.metadata["step"] + 1
    assert fork.parent_config == before_b.config and end.parent_config == fork.config


def test_update_state_is_one_step_past_its_base(api: Api) -> None:
    app = linear(api)
    app.invoke({"n": 1}, cfg())
    hist = list(app.get_state_history(cfg()))
    before_a = hist[-2]
    new = app.update_state(before_a.config, {"n": 5})
    assert new["configurable"]["checkpoint_ns"] == ""
    snap = app.get_state(new)
    assert snap.metadata["source"] == "update" and snap.next == ("a",)
    assert snap.metadata["step"] == before_a.metadata["step"] + 1
    app.update_state(cfg(), {"n": 7})  # at the head too
    assert app.get_state(cfg()).metadata["step"] == snap.metadata["step"] + 1
    assert app.invoke(None, cfg()) == {"n": 80}


def interrupting(api: Api, calls: Counter[str]) -> Any:
    @api.task
    def side_effect(n: int) -> int:
        calls["task"] += 1
        return n + 100

    def ask(s: S) -> dict[str, Any]:
        answer = api.interrupt("note?")
        return {"note": answer, "n": side_effect(s["n"]).result()}

    g = api.StateGraph(S)
    g.add_node("a", lambda s: {"n": s["n"] + 1})
    g.add_node("ask", ask)
    g.add_edge(api.START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", api.END)
    return g.compile(checkpointer=api.InMemorySaver())


def test_a_fork_by_update_state_asks_again_and_reruns_tasks(api: Api) -> None:
    calls: Counter[str] = Counter()
    app = interrupting(api, calls)
    app.invoke({"n": 1}, cfg())
    assert app.invoke(api.Command(resume="first"), cfg()) == {"n": 102, "note": "first"}
    assert calls["task"] == 1
    before_ask = next(h for h in app.get_state_history(cfg()) if h.next == ("ask",))
    forked = app.update_state(before_ask.config, {"n": 5})
    out = app.invoke(None, forked)
    assert "__interrupt__" in out  # the old branch's answer is not reused
    assert out["n"] == 5 and calls["task"] == 1
    assert app.invoke(api.Command(resume="second"), cfg()) == {"n": 105, "note": "second"}
    assert calls["task"] == 2  # the @task ran again on the new branch


def test_a_replay_from_before_an_interrupt_asks_again(api: Api) -> None:
    calls: Counter[str] = Counter()
    app = interrupting(api, calls)
    app.invoke({"n": 1}, cfg())
    app.invoke(api.Command(resume="first"), cfg())
    before_ask = next(h for h in app.get_state_history(cfg()) if h.next == ("ask",))
    out = app.invoke(None, before_ask.config)
    assert "__interrupt__" in out and out["n"] == 2
    assert app.invoke(api.Command(resume="again"), cfg()) == {"n": 102, "note": "again"}
    assert calls["task"] == 2


def test_aget_state_history_is_an_async_iterator(api: Api) -> None:
    app = linear(api)
    app.invoke({"n": 1}, cfg())

    async def collect(**kw: Any) -> list[Any]:
        return [s async for s in app.aget_state_history(cfg(), **kw)]

    sync = list(app.get_state_history(cfg()))
    assert [s.config for s in asyncio.run(collect())] == [s.config for s in sync]
    assert [s.config for s in asyncio.run(collect(limit=2))] == [s.config for s in sync[:2]]
    inputs = asyncio.run(collect(filter={"source": "input"}))
    assert [s.config for s in inputs] == [sync[-1].config]
