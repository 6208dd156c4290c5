"""interrupt(): pausing, surfacing, ids, replay-from-first-line and every resume rule."""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import Api, tether_api

from tether import (
    END,
    START,
    Command,
    Interrupt,
    InterruptError,
    InvalidUpdateError,
    StateGraph,
    interrupt,
)
from tether.checkpoint import InMemorySaver


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    note: str


def cfg(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def chain(nodes: dict[str, Any], saver: Any = None, *, parallel: bool = False) -> Any:
    """START -> each node (in parallel, or as a sequence) -> END."""
    g = StateGraph(S)
    names = list(nodes)
    for name, fn in nodes.items():
        g.add_node(name, fn)
    if parallel:
        for name in names:
            g.add_edge(START, name)
            g.add_edge(name, END)
    else:
        g.add_edge(START, names[0])
        for a, b in itertools.pairwise(names):
            g.add_edge(a, b)
        g.add_edge(names[-1], END)
    return g.compile(checkpointer=saver if saver is not None else InMemorySaver())


def single_asker(calls: Counter[str], *, iid: str | None = None) -> Any:
    def ask(state: S) -> dict[str, Any]:
        calls["ask"] += 1
        answer = interrupt("approve?", id=iid) if iid else interrupt("approve?")
        calls["after"] += 1
        return {"log": [answer]}

    return ask


# -- pausing and ids -----------------------------------------------------------------------


def test_interrupt_pauses_and_surfaces_value_as_list_of_interrupt() -> None:
    calls: Counter[str] = Counter()
    app = chain({"ask": single_asker(calls)})
    out = app.invoke({"log": ["start"]}, cfg())
    assert out["log"] == ["start"]
    intrs = out["__interrupt__"]
    assert isinstance(intrs, list) and len(intrs) == 1
    assert isinstance(intrs[0], Interrupt)
    assert intrs[0].value == "approve?"
    assert isinstance(intrs[0].id, str) and intrs[0].id
    assert calls == Counter({"ask": 1})


def test_interrupt_v2_result_has_interrupts_tuple() -> None:
    app = chain({"ask": single_asker(Counter())})
    res = app.invoke({"log": []}, cfg(), version="v2")
    assert res.value == {"log": []}
    assert isinstance(res.interrupts, tuple) and len(res.interrupts) == 1
    assert res.interrupts[0].value == "approve?"


def test_explicit_id_is_used_exactly() -> None:
    app = chain({"ask": single_asker(Counter(), iid="my-approval")})
    out = app.invoke({"log": []}, cfg())
    assert out["__interrupt__"] == [Interrupt("approve?", "my-approval")]


def test_derived_id_is_deterministic_for_same_graph_and_thread() -> None:
    a = chain({"ask": single_asker(Counter())}, InMemorySaver()).invoke({"log": []}, cfg("same"))
    b = chain({"ask": single_asker(Counter())}, InMemorySaver()).invoke({"log": []}, cfg("same"))
    assert a["__interrupt__"][0].id == b["__interrupt__"][0].id


def test_derived_id_differs_between_threads() -> None:
    app = chain({"ask": single_asker(Counter())})
    a = app.invoke({"log": []}, cfg("thread-a"))["__interrupt__"][0].id
    b = app.invoke({"log": []}, cfg("thread-b"))["__interrupt__"][0].id
    assert a != b


def test_derived_ids_differ_between_call_positions_in_one_node() -> None:
    def two(state: S) -> dict[str, Any]:
        x = interrupt("first")
        y = interrupt("second")
        return {"log": [x, y]}

    app = chain({"two": two})
    first = app.invoke({"log": []}, cfg())["__interrupt__"][0]
    second = app.invoke(Command(resume=1), cfg())["__interrupt__"][0]
    assert first.value == "first" and second.value == "second"
    assert first.id != second.id
    assert app.invoke(Command(resume=2), cfg()) == {"log": [1, 2]}


# -- resume replays the node from its first line ------------------------------------------


def test_resume_replays_node_from_first_line_and_interrupt_returns_answer() -> None:
    calls: Counter[str] = Counter()
    app = chain({"ask": single_asker(calls)})
    app.invoke({"log": []}, cfg())
    assert calls == Counter({"ask": 1})
    out = app.invoke(Command(resume="yes"), cfg())
    assert out == {"log": ["yes"]}
    assert "__interrupt__" not in out
    assert calls == Counter({"ask": 2, "after": 1})
    snap = app.get_state(cfg())
    assert snap.next == () and snap.interrupts == ()


def test_nodes_before_the_interrupting_node_do_not_rerun_on_resume() -> None:
    calls: Counter[str] = Counter()

    def first(state: S) -> dict[str, Any]:
        calls["first"] += 1
        return {"log": ["first"]}

    app = chain({"first": first, "ask": single_asker(calls)})
    app.invoke({"log": []}, cfg())
    out = app.invoke(Command(resume="ok"), cfg())
    assert out == {"log": ["first", "ok"]}
    assert calls["first"] == 1
    assert calls["ask"] == 2


def test_sequential_explicit_interrupts_resumed_one_map_at_a_time() -> None:
    calls: Counter[str] = Counter()

    def node(state: S) -> dict[str, Any]:
        calls["top"] += 1
        a = interrupt("approval1", id="interrupt-1")
        calls["between"] += 1
        b = interrupt("approval2", id="interrupt-2")
        return {"log": [a, b]}

    app = chain({"node": node})
    out = app.invoke({"log": []}, cfg())
    assert out["__interrupt__"] == [Interrupt("approval1", "interrupt-1")]
    out = app.invoke(Command(resume={"interrupt-1": True}), cfg())
    assert out["__interrupt__"] == [Interrupt("approval2", "interrupt-2")]
    assert app.get_state(cfg()).interrupts == (Interrupt("approval2", "interrupt-2"),)
    out = app.invoke(Command(resume={"interrupt-2": False}), cfg())
    assert out == {"log": [True, False]}
    assert calls == Counter({"top": 3, "between": 2})


def parallel_askers(calls: Counter[str]) -> Any:
    def a(state: S) -> dict[str, Any]:
        calls["a"] += 1
        return {"log": ["a:" + str(interrupt("qa", id="ia"))]}

    def b(state: S) -> dict[str, Any]:
        calls["b"] += 1
        return {"log": ["b:" + str(interrupt("qb", id="ib"))]}

    return chain({"a": a, "b": b}, parallel=True)


def test_parallel_branches_both_interrupts_surface() -> None:
    calls: Counter[str] = Counter()
    app = parallel_askers(calls)
    out = app.invoke({"log": []}, cfg())
    assert sorted(out["__interrupt__"], key=lambda i: i.id) == [
        Interrupt("qa", "ia"),
        Interrupt("qb", "ib"),
    ]
    snap = app.get_state(cfg())
    assert sorted(snap.next) == ["a", "b"]
    assert {i.id for i in snap.interrupts} == {"ia", "ib"}
    assert calls == Counter({"a": 1, "b": 1})


def test_parallel_branches_resumed_one_at_a_time() -> None:
    calls: Counter[str] = Counter()
    app = parallel_askers(calls)
    app.invoke({"log": []}, cfg())
    out = app.invoke(Command(resume={"ib": 2}), cfg())
    assert out["__interrupt__"] == [Interrupt("qa", "ia")]
    # as in LangGraph, a runs again and asks again (it was not answered)
    assert calls == Counter({"a": 2, "b": 2})
    snap = app.get_state(cfg())
    assert snap.next == ("a",)
    assert snap.interrupts == (Interrupt("qa", "ia"),)
    out = app.invoke(Command(resume={"ia": 1}), cfg())
    assert out == {"log": ["a:1", "b:2"]}  # folded in node-name order
    assert calls == Counter({"a": 3, "b": 2})  # b finished: not re-run


def test_parallel_branches_single_remaining_resumed_with_plain_value() -> None:
    calls: Counter[str] = Counter()
    app = parallel_askers(calls)
    app.invoke({"log": []}, cfg())
    app.invoke(Command(resume={"ia": "x"}), cfg())
    out = app.invoke(Command(resume="y"), cfg())
    assert out == {"log": ["a:x", "b:y"]}


def test_parallel_branches_resumed_together_with_two_key_map() -> None:
    calls: Counter[str] = Counter()
    app = parallel_askers(calls)
    app.invoke({"log": []}, cfg())
    out = app.invoke(Command(resume={"ia": 1, "ib": 2}), cfg())
    assert out == {"log": ["a:1", "b:2"]}
    assert calls == Counter({"a": 2, "b": 2})


def test_plain_resume_value_with_exactly_one_pending() -> None:
    app = chain({"ask": single_asker(Counter())})
    app.invoke({"log": []}, cfg())
    assert app.invoke(Command(resume={"approved": True}), cfg()) == {"log": [{"approved": True}]}


# -- resume errors: rejected before anything runs --------------------------------------------


def assert_unchanged(
    app: Any, before: Any, calls: Counter[str], calls_before: Counter[str]
) -> None:
    after = app.get_state(cfg())
    assert after.values == before.values
    assert after.next == before.next
    assert set(after.interrupts) == set(before.interrupts)
    assert after.config == before.config
    assert calls == calls_before


def test_single_value_while_several_pending_is_rejected_naming_ids() -> None:
    calls: Counter[str] = Counter()
    app = parallel_askers(calls)
    app.invoke({"log": []}, cfg())
    before, calls_before = app.get_state(cfg()), Counter(calls)
    with pytest.raises(InterruptError) as ei:
        app.invoke(Command(resume="yes"), cfg())
    assert "ia" in str(ei.value) and "ib" in str(ei.value)
    assert_unchanged(app, before, calls, calls_before)


def two_step_parallel(calls: Counter[str]) -> Any:
    """a asks a1 then a2; b asks b1. Initially pending: a1, b1."""

    def a(state: S) -> dict[str, Any]:
        calls["a"] += 1
        x = interrupt("qa1", id="a1")
        y = interrupt("qa2", id="a2")
        return {"log": [f"a:{x},{y}"]}

    def b(state: S) -> dict[str, Any]:
        calls["b"] += 1
        return {"log": [f"b:{interrupt('qb1', id='b1')}"]}

    return chain({"a": a, "b": b}, parallel=True)


@pytest.mark.parametrize(
    "resume",
    [
        {"a2": 1},  # not yet asked
        {"nope": 1},  # unknown
        {"b1": 1, "nope": 2},  # one valid, one unknown: whole command rejected
        {"a1": 1, "a2": 2},  # one valid, one not yet asked
    ],
    ids=["not-yet-asked", "unknown", "valid-plus-unknown", "valid-plus-not-yet-asked"],
)
def test_map_naming_non_pending_id_rejected_nothing_consumed(resume: dict[str, Any]) -> None:
    calls: Counter[str] = Counter()
    app = two_step_parallel(calls)
    app.invoke({"log": []}, cfg())
    before, calls_before = app.get_state(cfg()), Counter(calls)
    assert {i.id for i in before.interrupts} == {"a1", "b1"}
    with pytest.raises(InterruptError) as ei:
        app.invoke(Command(resume=resume), cfg())
    msg = str(ei.value)
    assert "a1" in msg and "b1" in msg  # names the pending ids
    assert_unchanged(app, before, calls, calls_before)
    # nothing consumed: a correct resume still works afterwards, answering both
    out = app.invoke(Command(resume={"a1": "x", "b1": "z"}), cfg())
    assert out["__interrupt__"] == [Interrupt("qa2", "a2")]
    out = app.invoke(Command(resume={"a2": "y"}), cfg())
    assert out == {"log": ["a:x,y", "b:z"]}


def test_map_naming_already_answered_id_rejected_with_several_pending() -> None:
    calls: Counter[str] = Counter()
    app = two_step_parallel(calls)
    app.invoke({"log": []}, cfg())
    app.invoke(Command(resume={"a1": "x"}), cfg())  # now pending: a2, b1
    before, calls_before = app.get_state(cfg()), Counter(calls)
    assert {i.id for i in before.interrupts} == {"a2", "b1"}
    with pytest.raises(InterruptError) as ei:
        app.invoke(Command(resume={"a1": "again"}), cfg())
    assert "a2" in str(ei.value) and "b1" in str(ei.value)
    assert_unchanged(app, before, calls, calls_before)


def test_map_naming_not_yet_asked_id_with_one_pending_is_rejected() -> None:
    calls: Counter[str] = Counter()

    def node(state: S) -> dict[str, Any]:
        calls["n"] += 1
        a = interrupt("approval1", id="interrupt-1")
        b = interrupt("approval2", id="interrupt-2")
        return {"log": [a, b]}

    app = chain({"node": node})
    app.invoke({"log": []}, cfg())
    before, calls_before = app.get_state(cfg()), Counter(calls)
    with pytest.raises(InterruptError, match="interrupt-1"):
        app.invoke(Command(resume={"interrupt-2": False}), cfg())
    assert_unchanged(app, before, calls, calls_before)


def test_map_naming_already_answered_id_with_one_pending_is_rejected() -> None:
    calls: Counter[str] = Counter()

    def node(state: S) -> dict[str, Any]:
        calls["n"] += 1
        a = interrupt("approval1", id="interrupt-1")
        b = interrupt("approval2", id="interrupt-2")
        return {"log": [a, b]}

    app = chain({"node": node})
    app.invoke({"log": []}, cfg())
    app.invoke(Command(resume={"interrupt-1": True}), cfg())
    before, calls_before = app.get_state(cfg()), Counter(calls)
    with pytest.raises(InterruptError, match="interrupt-2"):
        app.invoke(Command(resume={"interrupt-1": True}), cfg())
    assert_unchanged(app, before, calls, calls_before)


def test_resume_thread_with_nothing_pending() -> None:
    calls: Counter[str] = Counter()
    app = chain({"ask": single_asker(calls)})
    app.invoke({"log": []}, cfg())
    app.invoke(Command(resume="done"), cfg())
    before, calls_before = app.get_state(cfg()), Counter(calls)
    with pytest.raises(InterruptError, match="no pending interrupt"):
        app.invoke(Command(resume="again"), cfg())
    assert_unchanged(app, before, calls, calls_before)


def test_resume_thread_with_nothing_pending_never_interrupted() -> None:
    def plain(state: S) -> dict[str, Any]:
        return {"log": ["p"]}

    app = chain({"plain": plain})
    app.invoke({"log": []}, cfg())
    with pytest.raises(InterruptError):
        app.invoke(Command(resume=1), cfg())
    assert app.get_state(cfg()).values == {"log": ["p"]}


def test_resume_thread_that_does_not_exist() -> None:
    calls: Counter[str] = Counter()
    app = chain({"ask": single_asker(calls)})
    with pytest.raises(InterruptError, match="ghost"):
        app.invoke(Command(resume="x"), cfg("ghost"))
    assert calls == Counter()
    assert app.get_state(cfg("ghost")).values == {}
    assert list(app.get_state_history(cfg("ghost"))) == []


def test_interrupt_without_checkpointer_fails_naming_checkpointer() -> None:
    calls: Counter[str] = Counter()
    g = StateGraph(S)
    g.add_node("ask", single_asker(calls))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    app = g.compile()
    with pytest.raises(InterruptError, match="checkpointer"):
        app.invoke({"log": []})
    assert calls["after"] == 0


# -- inspecting and re-surfacing a pause --------------------------------------------------------


def test_get_state_while_paused_shows_next_tasks_and_interrupts() -> None:
    def first(state: S) -> dict[str, Any]:
        return {"log": ["first"]}

    app = chain({"first": first, "ask": single_asker(Counter(), iid="q")})
    app.invoke({"log": []}, cfg())
    snap = app.get_state(cfg())
    assert snap.values == {"log": ["first"]}
    assert snap.next == ("ask",)
    assert len(snap.tasks) == 1
    assert snap.tasks[0].name == "ask"
    assert snap.tasks[0].interrupts == (Interrupt("approve?", "q"),)
    assert snap.interrupts == (Interrupt("approve?", "q"),)


def test_invoke_none_on_paused_thread_runs_the_node_again_and_asks_again() -> None:
    calls: Counter[str] = Counter()
    app = chain({"ask": single_asker(calls)})
    first = app.invoke({"log": ["x"]}, cfg())
    again = app.invoke(None, cfg())
    assert again["__interrupt__"] == first["__interrupt__"]  # same id, same question
    assert again["log"] == ["x"]
    assert calls == Counter({"ask": 2})  # as in LangGraph, the node ran again
    assert app.get_state(cfg()).interrupts == tuple(first["__interrupt__"])
    # still resumable afterwards
    assert app.invoke(Command(resume="ok"), cfg()) == {"log": ["x", "ok"]}


def test_except_exception_around_interrupt_does_not_swallow_pause() -> None:
    calls: Counter[str] = Counter()

    def sneaky(state: S) -> dict[str, Any]:
        try:
            answer = interrupt("q")
        except Exception:
            calls["swallowed"] += 1
            answer = "swallowed"
        return {"log": [answer]}

    app = chain({"sneaky": sneaky})
    out = app.invoke({"log": []}, cfg())
    assert "__interrupt__" in out
    assert calls["swallowed"] == 0
    assert app.invoke(Command(resume="real"), cfg()) == {"log": ["real"]}


def test_new_input_on_paused_thread_starts_new_run_and_drops_old_interrupt() -> None:
    calls: Counter[str] = Counter()

    def first(state: S) -> dict[str, Any]:
        calls["first"] += 1
        return {"log": ["first"]}

    def ask(state: S) -> dict[str, Any]:
        calls["ask"] += 1
        n = calls["ask"]
        return {"log": [interrupt(f"q{n}")]}

    app = chain({"first": first, "ask": ask})
    old = app.invoke({"log": ["in1"]}, cfg())["__interrupt__"][0]
    new = app.invoke({"log": ["in2"]}, cfg())
    assert calls == Counter({"first": 2, "ask": 2})  # ran again from START
    assert new["log"] == ["in1", "first", "in2", "first"]
    assert new["__interrupt__"][0].value == "q2"
    snap = app.get_state(cfg())
    assert snap.interrupts == tuple(new["__interrupt__"])
    assert [i.value for i in snap.interrupts] == ["q2"]  # the old "q1" pause is gone
    assert old.value == "q1"
    out = app.invoke(Command(resume="now"), cfg())
    assert out == {"log": ["in1", "first", "in2", "first", "now"]}


def test_node_refusing_an_answer_keeps_the_interrupt_pending() -> None:
    from tether import InvalidAnswerError

    runs: list[object] = []

    class S(TypedDict, total=False):
        answer: int

    def ask(state: S) -> dict[str, object]:
        value = interrupt("a number, please", id="n")
        runs.append(value)
        if not isinstance(value, int):
            raise InvalidAnswerError(f"interrupt 'n' wants an int, got {value!r}")
        return {"answer": value}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    app = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "refuse"}}
    app.invoke({}, cfg)
    with pytest.raises(InvalidAnswerError, match="wants an int"):
        app.invoke(Command(resume={"n": "seven"}), cfg)
    assert [i.id for i in app.get_state(cfg).interrupts] == ["n"]
    # invoke(None) does not replay the refused answer: it surfaces the pause again
    again = app.invoke(None, cfg)
    assert [i.id for i in again["__interrupt__"]] == ["n"]
    assert app.invoke(Command(resume={"n": 7}), cfg) == {"answer": 7}
    assert runs == ["seven", 7]


# -- a Command that resumes and writes, and continuing after update_state (LangGraph parity) --


class Asking(TypedDict, total=False):
    log: Annotated[list, operator.add]
    x: int


def _asking(api: Api, calls: Counter[str]) -> Any:
    def a(state: Asking) -> dict[str, Any]:
        return {"log": ["a"]}

    def ask(state: Asking) -> dict[str, Any]:
        calls["ask"] += 1
        answer = api.interrupt(f"x is {state.get('x')}")
        return {"log": [f"ask:{answer}:{state.get('x')}"]}

    g = api.StateGraph(Asking)
    for name, fn in (("a", a), ("ask", ask)):
        g.add_node(name, fn)
    g.add_node("c", lambda s: {"log": ["c"]})
    g.add_node("d", lambda s: {"log": ["d"]})
    g.add_edge(api.START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", "c")
    return g.compile(checkpointer=api.InMemorySaver())


def test_resume_with_update_applies_the_update_before_the_node_runs_again(api: Api) -> None:
    calls: Counter[str] = Counter()
    app = _asking(api, calls)
    app.invoke({"log": [], "x": 0}, cfg())
    out = app.invoke(api.Command(resume="yes", update={"x": 5, "log": ["upd"]}), cfg())
    assert out == {"log": ["a", "upd", "ask:yes:5", "c"], "x": 5}
    assert calls["ask"] == 2


def test_resume_with_goto_runs_the_target_beside_the_resumed_node(api: Api) -> None:
    calls: Counter[str] = Counter()
    app = _asking(api, calls)
    app.invoke({"log": [], "x": 0}, cfg())
    out = app.invoke(api.Command(resume="yes", goto="d", update={"x": 9}), cfg())
    assert out == {"log": ["a", "ask:yes:9", "d", "c"], "x": 9}


def test_a_command_update_at_an_interrupt_asks_again_from_the_new_state(api: Api) -> None:
    calls: Counter[str] = Counter()
    app = _asking(api, calls)
    first = app.invoke({"log": [], "x": 0}, cfg())
    out = app.invoke(api.Command(update={"x": 3}), cfg())
    assert [i.value for i in out["__interrupt__"]] == ["x is 3"]
    assert out["__interrupt__"][0].id == first["__interrupt__"][0].id
    assert app.invoke(api.Command(resume="ok"), cfg())["log"] == ["a", "ask:ok:3", "c"]


def test_after_update_state_at_an_interrupt_none_runs_the_node_again(api: Api) -> None:
    # Bug 4: invoke(None) returned the old interrupt, built from the old state.
    calls: Counter[str] = Counter()
    app = _asking(api, calls)
    app.invoke({"log": [], "x": 0}, cfg())
    app.update_state(cfg(), {"x": 7})
    out = app.invoke(None, cfg())
    assert [i.value for i in out["__interrupt__"]] == ["x is 7"]
    assert calls["ask"] == 2
    assert app.get_state(cfg()).interrupts[0].value == "x is 7"
    assert app.invoke(api.Command(resume="ok"), cfg())["log"] == ["a", "ask:ok:7", "c"]


def test_a_resume_with_an_update_is_checked_before_anything_is_stored() -> None:
    calls: Counter[str] = Counter()
    app = _asking(tether_api(), calls)
    app.invoke({"log": [], "x": 0}, cfg())
    before = app.get_state(cfg())
    with pytest.raises(InvalidUpdateError, match="'nope'"):
        app.invoke(Command(resume="yes", update={"nope": 1}), cfg())
    with pytest.raises(InterruptError, match="not pending"):
        app.invoke(Command(resume={"0" * 32: 1}, update={"x": 1}), cfg())
    after = app.get_state(cfg())
    assert after.config == before.config and after.values == before.values
    assert calls["ask"] == 1
