"""The run loop: durability modes, failure recovery, input errors, one writer per thread,
history, update_state, time travel and storage size."""

from __future__ import annotations

import dataclasses
import itertools
import operator
import threading
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    CheckpointError,
    Command,
    ConfigError,
    EmptyInputError,
    InterruptError,
    InvalidUpdateError,
    RetryPolicy,
    StateGraph,
    ThreadBusyError,
    interrupt,
    task,
)
from tether.checkpoint import InMemorySaver

MODES = ["sync", "async", "exit"]
FAST = RetryPolicy(initial_interval=0.0, max_interval=0.0, jitter=False, max_attempts=2)


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    note: str
    n: int


def cfg(thread: str = "t1", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **extra}}


def recorder(name: str, calls: Counter[str]) -> Any:
    def node(state: S) -> dict[str, Any]:
        calls[name] += 1
        return {"log": [f"{name}{calls[name]}"]}

    return node


def linear(calls: Counter[str], names: tuple[str, ...] = ("a", "b", "c"), saver: Any = None) -> Any:
    g = StateGraph(S)
    for name in names:
        g.add_node(name, recorder(name, calls))
    g.add_edge(START, names[0])
    for x, y in itertools.pairwise(names):
        g.add_edge(x, y)
    g.add_edge(names[-1], END)
    return g.compile(checkpointer=saver if saver is not None else InMemorySaver())


def sources(app: Any, config: dict[str, Any]) -> list[str]:
    return [h.metadata["source"] for h in app.get_state_history(config)]


# -- durability modes ------------------------------------------------------------------------


def rich_graph(saver: Any) -> Any:
    """Fan-out to a and b, join at c, then loop d three times."""

    def a(state: S) -> dict[str, Any]:
        return {"log": ["a"], "note": "from-a"}

    def b(state: S) -> dict[str, Any]:
        return {"log": ["b"]}

    def c(state: S) -> dict[str, Any]:
        return {"log": ["c"], "n": 0}

    def d(state: S) -> dict[str, Any]:
        return {"log": [f"d{state['n']}"], "n": state["n"] + 1}

    g = StateGraph(S)
    for name, fn in {"a": a, "b": b, "c": c, "d": d}.items():
        g.add_node(name, fn)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "c")
    g.add_edge("c", "d")
    g.add_conditional_edges("d", lambda s: "d" if s["n"] < 3 else END)
    return g.compile(checkpointer=saver)


def test_durability_modes_give_same_final_state() -> None:
    results = {}
    for mode in MODES:
        app = rich_graph(InMemorySaver())
        out = app.invoke({"log": ["in"]}, cfg(), durability=mode)
        results[mode] = (out, app.get_state(cfg()).values, app.get_state(cfg()).next)
    expected = {"log": ["in", "a", "b", "c", "d0", "d1", "d2"], "note": "from-a", "n": 3}
    for mode in MODES:
        out, values, nxt = results[mode]
        assert out == expected, mode
        assert values == expected, mode
        assert nxt == (), mode


def test_durability_default_is_async_and_invalid_mode_rejected() -> None:
    app = rich_graph(InMemorySaver())
    with pytest.raises(ConfigError, match="durability"):
        app.invoke({"log": []}, cfg(), durability="never")  # type: ignore[arg-type]


def test_exit_mode_saves_input_at_start_and_only_final_state_at_end() -> None:
    seen: list[Any] = []
    calls: Counter[str] = Counter()
    saver = InMemorySaver()
    app_box: list[Any] = []

    def a(state: S, config: dict[str, Any]) -> dict[str, Any]:
        snap = app_box[0].get_state(config)  # read the store while the run is in flight
        seen.append((snap.values, snap.metadata.get("source"), snap.next))
        calls["a"] += 1
        return {"log": ["a"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", recorder("b", calls))
    g.add_node("c", recorder("c", calls))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    app = g.compile(checkpointer=saver)
    app_box.append(app)
    out = app.invoke({"log": ["in"]}, cfg("exit"), durability="exit")
    assert out == {"log": ["in", "a", "b1", "c1"]}
    # the input checkpoint: the state before the input (a reducer channel reads [] from the
    # start, as on LangGraph), whose one task (START, done) holds it
    assert seen == [({"log": []}, "input", ())]
    seen.clear()
    exit_hist = list(app.get_state_history(cfg("exit")))
    assert [h.metadata["source"] for h in exit_hist] == ["loop", "input"]
    assert exit_hist[-1].values == {"log": []}
    assert exit_hist[-1].next == ("__start__",)
    assert exit_hist[-1].tasks[0].result == {"log": ["in"]}
    assert exit_hist[0].values == out and exit_hist[0].next == ()

    app.invoke({"log": ["in"]}, cfg("sync"), durability="sync")
    assert seen == [({"log": ["in"]}, "loop", ("a",))]
    sync_hist = list(app.get_state_history(cfg("sync")))
    assert len(sync_hist) == 5  # input, START's step, one per node step
    assert len(exit_hist) < len(sync_hist)
    assert sync_hist[0].values == {"log": ["in", "a", "b2", "c2"]}
    assert [h.metadata["source"] for h in sync_hist] == ["loop"] * 4 + ["input"]


@pytest.mark.parametrize("mode", MODES)
def test_interrupt_is_saved_before_invoke_returns(mode: str) -> None:
    saver = InMemorySaver()
    calls: Counter[str] = Counter()

    def ask(state: S) -> dict[str, Any]:
        calls["ask"] += 1
        return {"log": [interrupt("approve?")]}

    def build() -> Any:
        g = StateGraph(S)
        g.add_node("pre", recorder("pre", calls))
        g.add_node("ask", ask)
        g.add_edge(START, "pre")
        g.add_edge("pre", "ask")
        g.add_edge("ask", END)
        return g.compile(checkpointer=saver)

    out = build().invoke({"log": ["in"]}, cfg(), durability=mode)
    pending = out["__interrupt__"]
    other = build()  # a different graph object over the same store
    snap = other.get_state(cfg())
    assert snap.interrupts == tuple(pending)
    assert snap.next == ("ask",)
    assert snap.values == {"log": ["in", "pre1"]}
    assert other.invoke(Command(resume="ok"), cfg(), durability=mode) == {
        "log": ["in", "pre1", "ok"]
    }
    assert calls == Counter({"pre": 1, "ask": 2})


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_failed_node_resumes_without_rerunning_finished_parallel_siblings(mode: str) -> None:
    calls: Counter[str] = Counter()
    broken = {"on": True}

    def b(state: S) -> dict[str, Any]:
        calls["b"] += 1
        if broken["on"]:
            raise RuntimeError("b is down")
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("pre", recorder("pre", calls))
    g.add_node("a", recorder("a", calls))
    g.add_node("b", b, retry_policy=FAST)
    g.add_node("c", recorder("c", calls))
    g.add_node("d", recorder("d", calls))
    g.add_edge(START, "pre")
    for x in ("a", "b", "c"):
        g.add_edge("pre", x)
    g.add_edge(["a", "b", "c"], "d")
    g.add_edge("d", END)
    app = g.compile(checkpointer=InMemorySaver())

    with pytest.raises(RuntimeError, match="b is down"):
        app.invoke({"log": ["in"]}, cfg(), durability=mode)
    assert calls == Counter({"pre": 1, "a": 1, "b": 2, "c": 1})  # b tried max_attempts times
    snap = app.get_state(cfg())
    assert snap.next == ("b",)
    b_task = next(t for t in snap.tasks if t.name == "b")
    assert b_task.error is not None and "b is down" in b_task.error
    # live, as LangGraph's get_state: the finished siblings' writes show; the checkpoint
    # itself (its history entry) keeps the step's start
    assert snap.values == {"log": ["in", "pre1", "a1", "c1"]}
    assert next(iter(app.get_state_history(cfg()))).values == {"log": ["in", "pre1"]}

    broken["on"] = False
    out = app.invoke(None, cfg(), durability=mode)
    assert out == {"log": ["in", "pre1", "a1", "b", "c1", "d1"]}
    assert calls == Counter({"pre": 1, "a": 1, "b": 3, "c": 1, "d": 1})


def test_failed_node_in_chain_resumes_at_it() -> None:
    calls: Counter[str] = Counter()
    broken = {"on": True}

    def b(state: S) -> dict[str, Any]:
        calls["b"] += 1
        if broken["on"]:
            raise ConnectionError("flaky network")
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", recorder("a", calls))
    g.add_node("b", b)
    g.add_node("c", recorder("c", calls))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(ConnectionError):
        app.invoke({"log": []}, cfg())
    broken["on"] = False
    assert app.invoke(None, cfg()) == {"log": ["a1", "b", "c1"]}
    assert calls == Counter({"a": 1, "b": 2, "c": 1})


def test_new_input_on_failed_thread_starts_from_start() -> None:
    calls: Counter[str] = Counter()
    broken = {"on": True}

    def b(state: S) -> dict[str, Any]:
        calls["b"] += 1
        if broken["on"]:
            raise RuntimeError("down")
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", recorder("a", calls))
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError):
        app.invoke({"log": ["in1"]}, cfg())
    broken["on"] = False
    out = app.invoke({"log": ["in2"]}, cfg())
    assert calls == Counter({"a": 2, "b": 2})  # a ran again: a new run from START
    assert out == {"log": ["in1", "a1", "in2", "a2", "b"]}
    snap = app.get_state(cfg())
    assert snap.next == () and all(t.error is None for t in snap.tasks)
    # the abandoned step is not picked up later either
    assert app.invoke(None, cfg()) == out
    assert calls == Counter({"a": 2, "b": 2})


# -- input and config errors -------------------------------------------------------------------


def test_invoke_none_on_thread_that_never_ran() -> None:
    calls: Counter[str] = Counter()
    app = linear(calls)
    with pytest.raises(EmptyInputError):
        app.invoke(None, cfg("never"))
    assert calls == Counter()


@pytest.mark.parametrize("config", [None, {}, {"configurable": {}}, {"configurable": {"x": 1}}])
def test_checkpointer_without_thread_id_names_thread_id(config: Any) -> None:
    app = linear(Counter())
    with pytest.raises(ConfigError, match="thread_id"):
        app.invoke({"log": []}, config)


NOT_MAPPINGS = [[("log", ["x"])], "text", 5, ["a", "b"]]


@pytest.mark.parametrize("bad", NOT_MAPPINGS)
def test_input_not_a_mapping_is_invalid_update(bad: Any) -> None:
    calls: Counter[str] = Counter()
    app = linear(calls)
    with pytest.raises(InvalidUpdateError):
        app.invoke(bad, cfg())
    assert calls == Counter()


@dataclasses.dataclass
class DC:
    log: Annotated[list, operator.add] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("bad", NOT_MAPPINGS)
def test_input_not_a_mapping_is_invalid_update_dataclass_schema(bad: Any) -> None:
    g = StateGraph(DC)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    g.add_edge("a", END)
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(InvalidUpdateError):
        app.invoke(bad, cfg())


def test_node_result_not_a_mapping_is_invalid_update() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: ["not", "a", "mapping"])
    g.add_edge(START, "a")
    g.add_edge("a", END)
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(InvalidUpdateError, match="a"):
        app.invoke({"log": []}, cfg())


# -- one writer per thread ------------------------------------------------------------------


class SignalSaver(InMemorySaver):
    """Sets ``busy_seen`` whenever a claim is refused because another run holds the thread."""

    def __init__(self) -> None:
        super().__init__()
        self.busy_seen = threading.Event()

    def claim(
        self, thread_id: str, owner: Any, lease_seconds: float, *, waiting: bool = False
    ) -> Any:
        try:
            return super().claim(thread_id, owner, lease_seconds, waiting=waiting)
        except ThreadBusyError:
            self.busy_seen.set()
            raise


def blocking_graph(saver: Any, started: threading.Event, proceed: threading.Event) -> Any:
    """Node a blocks until ``proceed`` when the input log starts with "block"."""

    def a(state: S) -> dict[str, Any]:
        if state["log"][:1] == ["block"]:
            started.set()
            assert proceed.wait(timeout=10), "test harness never released node a"
        return {"log": ["a"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_edge(START, "a")
    g.add_edge("a", END)
    return g.compile(checkpointer=saver)


def run_in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    return t, box


def test_concurrent_run_on_same_thread_gets_thread_busy() -> None:
    started, proceed = threading.Event(), threading.Event()
    app = blocking_graph(InMemorySaver(), started, proceed)
    first, box = run_in_thread(lambda: app.invoke({"log": ["block"]}, cfg("busy-thread")))
    try:
        assert started.wait(timeout=10)
        with pytest.raises(ThreadBusyError, match="busy-thread"):
            app.invoke({"log": ["two"]}, cfg("busy-thread"))
        with pytest.raises(ThreadBusyError, match="busy-thread"):
            app.invoke(None, cfg("busy-thread"))
    finally:
        proceed.set()
        first.join(timeout=10)
    assert "error" not in box
    assert box["result"] == {"log": ["block", "a"]}
    # the loser left no trace
    assert app.get_state(cfg("busy-thread")).values == {"log": ["block", "a"]}
    # and once the winner is done, the thread is free again
    assert app.invoke({"log": ["two"]}, cfg("busy-thread")) == {"log": ["block", "a", "two", "a"]}


def test_other_thread_ids_are_not_blocked_by_a_running_thread() -> None:
    started, proceed = threading.Event(), threading.Event()
    app = blocking_graph(InMemorySaver(), started, proceed)
    first, box = run_in_thread(lambda: app.invoke({"log": ["block"]}, cfg("x")))
    try:
        assert started.wait(timeout=10)
        assert app.invoke({"log": ["free"]}, cfg("y")) == {"log": ["free", "a"]}
    finally:
        proceed.set()
        first.join(timeout=10)
    assert box["result"] == {"log": ["block", "a"]}


def test_on_busy_wait_runs_after_the_first_run_finishes() -> None:
    saver = SignalSaver()
    calls: Counter[str] = Counter()
    first_in = threading.Event()

    def a(state: S) -> dict[str, Any]:
        calls["a"] += 1
        if calls["a"] == 1:
            first_in.set()
            # hold the thread until the second invoke has been refused at least once
            assert saver.busy_seen.wait(timeout=10), "second invoke never attempted"
        return {"log": [f"a{calls['a']}"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_edge(START, "a")
    g.add_edge("a", END)
    app = g.compile(checkpointer=saver)

    first, box1 = run_in_thread(lambda: app.invoke({"log": ["one"]}, cfg("w")))
    assert first_in.wait(timeout=10)
    second, box2 = run_in_thread(lambda: app.invoke({"log": ["two"]}, cfg("w"), on_busy="wait"))
    first.join(timeout=20)
    second.join(timeout=20)
    assert "error" not in box1 and "error" not in box2, (box1, box2)
    assert saver.busy_seen.is_set()
    assert box1["result"] == {"log": ["one", "a1"]}
    assert box2["result"] == {"log": ["one", "a1", "two", "a2"]}
    assert calls["a"] == 2


def test_invalid_on_busy_rejected() -> None:
    app = linear(Counter())
    with pytest.raises(ConfigError, match="on_busy"):
        app.invoke({"log": []}, cfg(), on_busy="sometimes")


# -- history -----------------------------------------------------------------------------------


def test_get_state_history_newest_first_with_limit_before_filter() -> None:
    app = linear(Counter())
    app.invoke({"log": ["in"]}, cfg(), durability="sync")
    hist = list(app.get_state_history(cfg()))
    assert len(hist) == 5
    steps = [h.metadata["step"] for h in hist]
    assert steps == [3, 2, 1, 0, -1]
    assert hist[0].values == app.get_state(cfg()).values
    assert hist[0].config == app.get_state(cfg()).config
    assert [h.next for h in hist] == [(), ("c",), ("b",), ("a",), ("__start__",)]
    assert [len(h.values.get("log", [])) for h in hist] == [4, 3, 2, 1, 0]
    # parent links follow the order
    for newer, older in itertools.pairwise(hist):
        assert newer.parent_config is not None
        assert (
            newer.parent_config["configurable"]["checkpoint_id"]
            == (older.config["configurable"]["checkpoint_id"])
        )

    limited = list(app.get_state_history(cfg(), limit=2))
    assert [h.config for h in limited] == [h.config for h in hist[:2]]

    before = list(app.get_state_history(cfg(), before=hist[1].config))
    assert [h.config for h in before] == [h.config for h in hist[2:]]

    both = list(app.get_state_history(cfg(), before=hist[0].config, limit=1))
    assert [h.config for h in both] == [hist[1].config]

    inputs = list(app.get_state_history(cfg(), filter={"source": "input"}))
    assert [h.config for h in inputs] == [hist[-1].config]
    loops = list(app.get_state_history(cfg(), filter={"source": "loop"}))
    assert [h.config for h in loops] == [h.config for h in hist[:4]]
    assert list(app.get_state_history(cfg(), filter={"source": "nope"})) == []


def test_history_of_unknown_thread_is_empty() -> None:
    app = linear(Counter())
    assert list(app.get_state_history(cfg("nobody"))) == []


# -- update_state ----------------------------------------------------------------------------


def test_update_state_goes_through_reducers() -> None:
    app = linear(Counter())
    app.invoke({"log": ["in"], "note": "orig"}, cfg())
    new_config = app.update_state(cfg(), {"log": ["manual"], "note": "edited"})
    assert new_config["configurable"]["thread_id"] == "t1"
    snap = app.get_state(cfg())
    assert snap.values == {"log": ["in", "a1", "b1", "c1", "manual"], "note": "edited"}
    assert (
        snap.config["configurable"]["checkpoint_id"]
        == (new_config["configurable"]["checkpoint_id"])
    )
    assert snap.metadata["source"] == "update"
    assert snap.next == ()


def test_update_state_unknown_key_rejected() -> None:
    app = linear(Counter())
    app.invoke({"log": []}, cfg())
    with pytest.raises(InvalidUpdateError):
        app.update_state(cfg(), {"bogus": 1})


def test_update_state_as_node_makes_next_step_edges_after_it() -> None:
    calls: Counter[str] = Counter()
    app = linear(calls)
    app.invoke({"log": ["in"]}, cfg())
    app.update_state(cfg(), {"log": ["manual"]}, as_node="a")
    snap = app.get_state(cfg())
    assert snap.next == ("b",)
    out = app.invoke(None, cfg())
    assert out == {"log": ["in", "a1", "b1", "c1", "manual", "b2", "c2"]}
    assert calls == Counter({"a": 1, "b": 2, "c": 2})


def test_update_state_on_fresh_thread_seeds_it() -> None:
    calls: Counter[str] = Counter()
    app = linear(calls)
    app.update_state(cfg("fresh"), {"log": ["seed"], "note": "n"})
    snap = app.get_state(cfg("fresh"))
    assert snap.values == {"log": ["seed"], "note": "n"}
    assert snap.next == ("a",)  # as if the update were the input (as_node=START)
    assert calls == Counter()
    assert app.invoke(None, cfg("fresh")) == {"log": ["seed", "a1", "b1", "c1"], "note": "n"}


def test_update_state_while_interrupt_pending_keeps_the_interrupt() -> None:
    calls: Counter[str] = Counter()

    def ask(state: S) -> dict[str, Any]:
        calls["ask"] += 1
        answer = interrupt("approve?")
        return {"log": [f"{answer}:{state.get('note')}"]}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    app = g.compile(checkpointer=InMemorySaver())
    pending = app.invoke({"log": []}, cfg())["__interrupt__"]
    app.update_state(cfg(), {"note": "edited"})
    snap = app.get_state(cfg())
    assert snap.interrupts == tuple(pending)
    assert snap.next == ("ask",)
    assert snap.tasks[0].interrupts == tuple(pending)
    assert snap.values == {"log": [], "note": "edited"}
    assert app.invoke(Command(resume="yes"), cfg()) == {"log": ["yes:edited"], "note": "edited"}
    assert calls["ask"] == 2


# -- time travel --------------------------------------------------------------------------------


def test_time_travel_replays_from_older_checkpoint_as_new_branch() -> None:
    calls: Counter[str] = Counter()
    app = linear(calls)
    first = app.invoke({"log": ["in"]}, cfg())
    assert first == {"log": ["in", "a1", "b1", "c1"]}
    old_hist = list(app.get_state_history(cfg()))
    old_head = old_hist[0]
    fork_point = next(h for h in old_hist if h.next == ("b",))
    assert fork_point.values == {"log": ["in", "a1"]}

    out = app.invoke(None, fork_point.config)
    assert out == {"log": ["in", "a1", "b2", "c2"]}
    assert calls == Counter({"a": 1, "b": 2, "c": 2})  # nodes after the fork ran again

    new_hist = list(app.get_state_history(cfg()))
    assert len(new_hist) > len(old_hist)
    new_ids = {h.config["configurable"]["checkpoint_id"] for h in new_hist}
    old_ids = {h.config["configurable"]["checkpoint_id"] for h in old_hist}
    assert old_ids <= new_ids  # the old branch stays
    # the head is the new branch, and its ancestry goes through the fork point
    head = app.get_state(cfg())
    assert head.values == out
    by_id = {h.config["configurable"]["checkpoint_id"]: h for h in new_hist}
    lineage = []
    node = head
    while node.parent_config is not None:
        pid = node.parent_config["configurable"]["checkpoint_id"]
        lineage.append(pid)
        node = by_id[pid]
    assert old_head.config["configurable"]["checkpoint_id"] not in lineage
    fork_values = [by_id[c].values for c in lineage]
    assert {"log": ["in", "a1"]} in fork_values
    # the old head is still readable, unchanged
    assert app.get_state(old_head.config).values == first


def test_get_state_at_older_checkpoint() -> None:
    app = linear(Counter())
    app.invoke({"log": ["in"]}, cfg())
    hist = list(app.get_state_history(cfg()))
    snap = app.get_state(hist[2].config)
    assert snap.values == hist[2].values
    assert snap.next == hist[2].next


# -- storage -------------------------------------------------------------------------------------


def test_storage_of_long_append_loop_is_linear() -> None:
    steps, size = 200, 200
    saver = InMemorySaver()

    def add(state: S) -> dict[str, Any]:
        i = len(state["log"])
        return {"log": [f"{i:04d}".ljust(size, "x")]}

    g = StateGraph(S)
    g.add_node("add", add)
    g.add_edge(START, "add")
    g.add_conditional_edges("add", lambda s: "add" if len(s["log"]) < steps else END)
    app = g.compile(checkpointer=saver)
    out = app.invoke({"log": []}, {**cfg("big"), "recursion_limit": steps + 10})
    assert len(out["log"]) == steps
    assert app.get_state(cfg("big")).values["log"] == out["log"]
    dump = saver.dump_thread("big")
    stored = sum(len(v.payload) for v in dump.values)
    raw = steps * size
    assert stored < 3 * raw, f"stored {stored} bytes for {raw} raw bytes"
    assert len(dump.checkpoints) >= steps  # every step was checkpointed


class _Opaque:
    """A type no serializer knows."""


def test_unstorable_values_are_named_before_anything_is_written() -> None:
    from tether import SerializationError

    class P(TypedDict, total=False):
        items: Annotated[list[Any], operator.add]

    def good(state: P) -> dict[str, Any]:
        return {"items": [1]}

    def bad(state: P) -> dict[str, Any]:
        return {"items": [_Opaque()]}

    g = StateGraph(P)
    g.add_node("good", good)
    g.add_node("bad", bad)
    g.add_edge(START, "good")
    g.add_edge(START, "bad")
    saver = InMemorySaver()
    app = g.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "opaque"}}
    with pytest.raises(SerializationError, match="node 'bad'") as info:
        app.invoke({"items": []}, cfg)
    assert "_Opaque" in str(info.value)
    assert app.get_state(cfg).values == {"items": []}

    def ask(state: P) -> dict[str, Any]:
        interrupt(_Opaque(), id="odd")
        return {}

    g2 = StateGraph(P)
    g2.add_node("ask", ask)
    g2.add_edge(START, "ask")
    app2 = g2.compile(checkpointer=InMemorySaver())
    with pytest.raises(SerializationError, match="interrupt 'odd' in node 'ask'"):
        app2.invoke({"items": []}, {"configurable": {"thread_id": "o2"}})


@dataclasses.dataclass
class _Node:
    value: int
    next: _Node | None = None


def _linked_list(length: int) -> _Node | None:
    head: _Node | None = None
    for i in range(length):
        head = _Node(i, head)
    return head


def test_values_nested_too_deeply_are_refused_at_write_naming_the_thread() -> None:
    # They used to store fine and then crash every reader of the thread with SIGSEGV.
    from tether import SerializationError, task
    from tether.serde import MAX_DEPTH, register_type

    register_type(_Node)

    class P(TypedDict, total=False):
        chain: Any
        nested: Any

    @task
    def fetch() -> Any:
        return _deep_tuple(MAX_DEPTH + 1)

    def linked(state: P) -> dict[str, Any]:
        return {"chain": _linked_list(250)}

    def via_task(state: P) -> dict[str, Any]:
        return {"nested": fetch().result()}

    def ask(state: P) -> dict[str, Any]:
        interrupt(_deep_tuple(300), id="deep")
        return {}

    cases = [
        (linked, r"thread 'deep-linked', state key 'chain'"),
        (via_task, r"thread 'deep-via_task'.*@task 'fetch'"),
        (ask, r"thread 'deep-ask', the value of interrupt 'deep' in node 'ask'"),
    ]
    for node, named in cases:
        g = StateGraph(P)
        g.add_node(node.__name__, node)
        g.add_edge(START, node.__name__)
        app = g.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": f"deep-{node.__name__}"}}
        with pytest.raises(SerializationError, match=named) as info:
            app.invoke({"nested": 1}, config)
        assert f"more than {MAX_DEPTH} levels" in str(info.value)
        assert app.get_state(config).values == {"nested": 1}  # nothing deep was stored


def _deep_tuple(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = (value,)
    return value


def test_resume_and_continue_need_a_checkpointer() -> None:

    class P(TypedDict, total=False):
        x: int

    g = StateGraph(P)
    g.add_node("a", lambda s: {"x": 1})
    g.add_edge(START, "a")
    app = g.compile()
    with pytest.raises(InterruptError, match="no checkpointer"):
        app.invoke(Command(resume=True))
    with pytest.raises(EmptyInputError, match="no checkpointer"):
        app.invoke(None)


def test_bad_input_is_refused_before_the_thread_is_touched() -> None:
    class P(TypedDict, total=False):
        x: int

    g = StateGraph(P)
    g.add_node("a", lambda s: {"x": 1})
    g.add_edge(START, "a")
    saver = InMemorySaver()
    claims: list[str] = []
    original = saver.claim

    def claim(*args: Any, **kwargs: Any) -> Any:
        claims.append(args[0])
        return original(*args, **kwargs)

    saver.claim = claim  # type: ignore[method-assign]
    app = g.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "untouched"}}
    for bad in ({"nope": 1}, "text", Command(resume=1, update={"nope": 2})):
        with pytest.raises((InvalidUpdateError, InterruptError)):
            app.invoke(bad, cfg)
    assert claims == []
    assert saver.dump_thread("untouched").head is None


# -- what waits for the disk -----------------------------------------------------------------


class DurabilitySaver(InMemorySaver):
    """Records, for every write, what it stored and whether it asked to wait for the disk."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, bool]] = []

    def commit(self, thread_id: str, **kwargs: Any) -> None:
        self.log.append(("commit", kwargs["durable"]))
        super().commit(thread_id, **kwargs)

    def put_writes(self, thread_id: str, writes: Any, **kwargs: Any) -> None:
        kinds = "+".join(sorted({w.kind for w in writes}))
        self.log.append((kinds, kwargs["durable"]))
        super().put_writes(thread_id, writes, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_task_results_and_answers_wait_for_the_disk_in_every_mode(mode: str) -> None:
    """A @task result and an interrupt answer cannot be recomputed: they are stored durably
    in async mode too (exit mode keeps @task results with the run's final commit)."""

    @task
    def send(text: str) -> str:
        return f"sent {text}"

    def ask(state: S) -> dict[str, Any]:
        return {"note": interrupt("send?")}

    def work(state: S) -> dict[str, Any]:
        return {"log": [send(state["note"]).result()]}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_node("work", work)
    g.add_edge(START, "ask")
    g.add_edge("ask", "work")
    g.add_edge("work", END)
    saver = DurabilitySaver()
    app = g.compile(checkpointer=saver)
    app.invoke({"log": []}, cfg(), durability=mode)
    out = app.invoke(Command(resume="hello"), cfg(), durability=mode)
    assert out["log"] == ["sent hello"]
    kept = {kind: durable for kind, durable in saver.log if kind != "metrics"}
    assert kept["resume"] is True
    if mode == "exit":
        assert "journal" not in kept  # buffered, stored by the final commit
    else:
        assert kept["journal"] is True
    sync = mode == "sync"
    if mode == "exit":
        assert "interrupt" not in kept  # stored by the commit of the paused step
    else:
        assert kept["interrupt"] is sync
    commits = [durable for kind, durable in saver.log if kind == "commit"]
    assert commits and set(commits) == {sync}


class FailingCommit(InMemorySaver):
    """Refuses the ``fail_at``-th commit (counted from 1), as a store that went away."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.commits = fail_at, 0

    def commit(self, thread_id: str, **kw: Any) -> None:
        self.commits += 1
        if self.commits == self.fail_at:
            raise CheckpointError(f"store went away at commit {self.commits}")
        super().commit(thread_id, **kw)


def test_a_crash_between_the_input_checkpoint_and_starts_step_is_completed_by_none() -> None:
    calls: Counter[str] = Counter()
    saver = FailingCommit(fail_at=2)  # the input checkpoint stores, START's step does not
    app = linear(calls, ("a", "b"), saver=saver)
    with pytest.raises(CheckpointError, match="commit 2"):
        app.invoke({"log": ["in"]}, cfg(), durability="sync")
    head = app.get_state(cfg())
    assert head.metadata["source"] == "input" and head.values == {"log": []}
    assert [(t.name, t.result) for t in head.tasks] == [("__start__", {"log": ["in"]})]
    assert calls == Counter()

    # the input recorded on the input checkpoint is folded in, and the run goes on from there
    assert app.invoke(None, cfg(), durability="sync") == {"log": ["in", "a1", "b1"]}
    hist = list(app.get_state_history(cfg()))
    assert [h.metadata["source"] for h in hist] == ["loop", "loop", "loop", "input"]
    assert [h.metadata["step"] for h in hist] == [2, 1, 0, -1]
    assert hist[2].values == {"log": ["in"]} and hist[2].next == ("a",)
    assert calls == Counter({"a": 1, "b": 1})


def test_a_goto_input_cut_off_before_starts_step_still_goes_only_there() -> None:
    calls: Counter[str] = Counter()
    app = linear(calls, ("a", "b"), saver=FailingCommit(fail_at=2))
    with pytest.raises(CheckpointError, match="commit 2"):
        app.invoke(Command(goto="b", update={"log": ["in"]}), cfg(), durability="sync")
    # START's step is taken as the input asked: straight to b, not along START's edge to a
    assert app.invoke(None, cfg(), durability="sync") == {"log": ["in", "b1"]}
    assert calls == Counter({"b": 1})
