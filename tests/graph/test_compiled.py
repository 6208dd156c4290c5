"""CompiledGraph: invoke/stream/ainvoke/astream, stream modes, parallel folding, Command and
Send, errors, recursion limit, durability modes, sync and async nodes."""

import asyncio
import itertools
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Command,
    ConfigError,
    GraphRecursionError,
    Interrupt,
    InvalidUpdateError,
    RunResult,
    Send,
    StateGraph,
    get_stream_writer,
    interrupt,
)
from tether.checkpoint import InMemorySaver

WAIT = 10.0  # generous upper bound on Event waits: a hang fails the test instead of blocking


class State(TypedDict):
    log: Annotated[list, operator.add]
    value: int


def _append(name: str):
    def fn(state: Any) -> dict:
        return {"log": [name]}

    return fn


def _chain(*names: str, checkpointer: Any = None):
    g = StateGraph(State)
    for n in names:
        g.add_node(n, _append(n))
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile(checkpointer=checkpointer)


def _cfg(thread: str = "t", **extra: Any) -> dict:
    return {"configurable": {"thread_id": thread}, **extra}


def _approval_graph(checkpointer: Any):
    def draft(state: State) -> dict:
        return {"log": ["draft"]}

    def approve(state: State) -> dict:
        answer = interrupt("ok?")
        return {"log": [f"answer:{answer}"]}

    g = StateGraph(State)
    g.add_node("draft", draft)
    g.add_node("approve", approve)
    g.add_edge(START, "draft")
    g.add_edge("draft", "approve")
    g.add_edge("approve", END)
    return g.compile(checkpointer=checkpointer)


# -- invoke / stream / ainvoke / astream ---------------------------------------------------


def test_invoke_returns_final_state() -> None:
    assert _chain("a", "b").invoke({"value": 1}) == {"log": ["a", "b"], "value": 1}


def test_stream_default_mode_is_updates() -> None:
    chunks = list(_chain("a", "b", "c").stream({"value": 1}))
    assert chunks == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}, {"c": {"log": ["c"]}}]


def test_stream_updates_node_returning_none() -> None:
    g = StateGraph(State)
    g.add_node("quiet", lambda s: None)
    g.add_edge(START, "quiet")
    assert list(g.compile().stream({})) == [{"quiet": None}]


def test_stream_values() -> None:
    chunks = list(_chain("a", "b").stream({"value": 1}, stream_mode="values"))
    # first the input state (the empty reducer key may be absent), then one item per step
    assert len(chunks) == 3
    assert chunks[0].get("value") == 1 and chunks[0].get("log", []) == []
    assert chunks[1:] == [{"log": ["a"], "value": 1}, {"log": ["a", "b"], "value": 1}]


def test_stream_values_last_item_equals_invoke() -> None:
    app = _chain("a", "b", "c")
    assert list(app.stream({"value": 2}, stream_mode="values"))[-1] == app.invoke({"value": 2})


def test_stream_custom_from_a_node() -> None:
    def talker(state: State) -> dict:
        write = get_stream_writer()
        write({"progress": 1})
        write("halfway")
        return {"log": ["talker"]}

    g = StateGraph(State)
    g.add_node("talker", talker)
    g.add_edge(START, "talker")
    assert list(g.compile().stream({}, stream_mode="custom")) == [{"progress": 1}, "halfway"]


def test_stream_writer_is_a_noop_without_custom_mode() -> None:
    def talker(state: State) -> dict:
        get_stream_writer()("ignored")
        return {"log": ["talker"]}

    g = StateGraph(State)
    g.add_node("talker", talker)
    g.add_edge(START, "talker")
    app = g.compile()
    assert app.invoke({}) == {"log": ["talker"]}
    assert list(app.stream({})) == [{"talker": {"log": ["talker"]}}]


def test_stream_custom_from_parallel_branches() -> None:
    both_started = threading.Barrier(2, timeout=WAIT)

    def make(name: str):
        def node(state: State) -> dict:
            write = get_stream_writer()
            write((name, 1))
            both_started.wait()  # the two branches really run at the same time
            write((name, 2))
            return {"log": [name]}

        return node

    g = StateGraph(State)
    g.add_node("left", make("left"))
    g.add_node("right", make("right"))
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    chunks = list(g.compile().stream({}, stream_mode="custom"))
    assert sorted(chunks) == [("left", 1), ("left", 2), ("right", 1), ("right", 2)]
    for name in ("left", "right"):
        mine = [c for c in chunks if c[0] == name]
        assert mine == [(name, 1), (name, 2)]


def test_stream_list_of_modes_yields_pairs() -> None:
    def talker(state: State) -> dict:
        get_stream_writer()("hi")
        return {"log": ["talker"]}

    g = StateGraph(State)
    g.add_node("talker", talker)
    g.add_edge(START, "talker")
    chunks = list(g.compile().stream({}, stream_mode=["updates", "custom", "values"]))
    assert all(isinstance(c, tuple) and len(c) == 2 for c in chunks)
    assert ("custom", "hi") in chunks
    assert ("updates", {"talker": {"log": ["talker"]}}) in chunks
    assert chunks[-1] == ("values", {"log": ["talker"]})
    # the custom chunk is written while the node runs, before its update
    assert chunks.index(("custom", "hi")) < chunks.index(
        ("updates", {"talker": {"log": ["talker"]}})
    )


def test_stream_list_with_one_mode_still_yields_pairs() -> None:
    chunks = list(_chain("a").stream({}, stream_mode=["updates"]))
    assert chunks == [("updates", {"a": {"log": ["a"]}})]


def test_stream_v2_yields_typed_dicts() -> None:
    chunks = list(_chain("a", "b").stream({}, stream_mode=["updates", "values"], version="v2"))
    # as LangGraph's StreamPart types: only a "values" part carries interrupts
    assert all(set(c) == {"type", "ns", "data"} for c in chunks if c["type"] == "updates")
    assert all(c["interrupts"] == () for c in chunks if c["type"] == "values")
    assert all(c["ns"] == () for c in chunks)
    updates = [c["data"] for c in chunks if c["type"] == "updates"]
    assert updates == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    assert [c for c in chunks if c["type"] == "values"][-1]["data"] == {"log": ["a", "b"]}


def test_stream_v2_single_mode() -> None:
    chunks = list(_chain("a").stream({}, version="v2"))
    assert chunks == [{"type": "updates", "ns": (), "data": {"a": {"log": ["a"]}}}]


def test_unknown_stream_mode_and_version() -> None:
    app = _chain("a")
    with pytest.raises(ConfigError, match="events"):
        list(app.stream({}, stream_mode="events"))
    with pytest.raises(ConfigError):
        app.invoke({}, version="v3")


def test_pause_in_updates_and_values_stream() -> None:
    app = _approval_graph(InMemorySaver())
    updates = list(app.stream({}, _cfg("u")))
    assert updates[0] == {"draft": {"log": ["draft"]}}
    last = updates[-1]
    assert set(last) == {"__interrupt__"}
    assert isinstance(last["__interrupt__"], tuple)
    (intr,) = last["__interrupt__"]
    assert isinstance(intr, Interrupt) and intr.value == "ok?" and intr.id

    values = list(_approval_graph(InMemorySaver()).stream({}, _cfg("v"), stream_mode="values"))
    assert values[-1]["log"] == ["draft"]
    assert [i.value for i in values[-1]["__interrupt__"]] == ["ok?"]
    assert all("__interrupt__" not in v for v in values[:-1])


def test_invoke_pause_and_resume_v1_and_v2() -> None:
    app = _approval_graph(InMemorySaver())
    out = app.invoke({}, _cfg())
    assert out["log"] == ["draft"]
    assert [i.value for i in out["__interrupt__"]] == ["ok?"]
    assert isinstance(out["__interrupt__"][0], Interrupt)

    res = app.invoke(Command(resume="yes"), _cfg(), version="v2")
    assert isinstance(res, RunResult)
    assert res.interrupts == ()
    assert res.value == {"log": ["draft", "answer:yes"]}


def test_invoke_v2_while_paused() -> None:
    app = _approval_graph(InMemorySaver())
    res = app.invoke({}, _cfg(), version="v2")
    assert isinstance(res, RunResult)
    assert isinstance(res.interrupts, tuple)
    assert [i.value for i in res.interrupts] == ["ok?"]
    assert "__interrupt__" not in res.value
    assert res.value == {"log": ["draft"]}


def test_invoke_v2_without_pause() -> None:
    res = _chain("a").invoke({}, version="v2")
    assert res == RunResult({"log": ["a"]}, ())


def test_ainvoke_and_astream() -> None:
    app = _chain("a", "b")

    async def main() -> tuple[Any, list, list]:
        out = await app.ainvoke({"value": 3})
        chunks = [c async for c in app.astream({"value": 3})]
        values = [c async for c in app.astream({"value": 3}, stream_mode="values")]
        return out, chunks, values

    out, chunks, values = asyncio.run(main())
    assert out == {"log": ["a", "b"], "value": 3}
    assert chunks == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    assert values[-1] == out


def test_ainvoke_runs_async_nodes_on_the_callers_loop() -> None:
    loops: list[Any] = []

    async def node(state: State) -> dict:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return {"log": ["async"]}

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    app = g.compile()

    async def main() -> tuple[Any, Any]:
        return await app.ainvoke({}), asyncio.get_running_loop()

    out, loop = asyncio.run(main())
    assert out == {"log": ["async"]}
    assert loops == [loop]


def test_astream_custom_and_v2() -> None:
    async def node(state: State) -> dict:
        get_stream_writer()("tok")
        return {"log": ["n"]}

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    app = g.compile()

    async def main() -> list:
        return [c async for c in app.astream({}, stream_mode=["custom", "updates"], version="v2")]

    chunks = asyncio.run(main())
    assert {"type": "custom", "ns": (), "data": "tok"} in chunks
    assert {"type": "updates", "ns": (), "data": {"node": {"log": ["n"]}}} in chunks


def test_ainvoke_with_checkpointer_and_interrupt() -> None:
    app = _approval_graph(InMemorySaver())

    async def main() -> tuple[Any, Any]:
        first = await app.ainvoke({}, _cfg())
        second = await app.ainvoke(Command(resume="fine"), _cfg())
        return first, second

    first, second = asyncio.run(main())
    assert [i.value for i in first["__interrupt__"]] == ["ok?"]
    assert second == {"log": ["draft", "answer:fine"]}


# -- parallel folding ----------------------------------------------------------------------

FAN = [f"n{i}" for i in range(8)]


def _fan_out_graph(order: list[str]):
    """Fan out to 8 nodes; node n_i finishes only after n_{i+1} finished, so the completion
    order is the reverse of the name order (earlier-named nodes are slower)."""
    done = {n: threading.Event() for n in FAN}
    finished: list[str] = []
    lock = threading.Lock()

    class S(TypedDict):
        log: Annotated[list, operator.add]
        seen: Annotated[list, operator.add]

    def make(i: int):
        name = FAN[i]

        def node(state: S) -> dict:
            if i + 1 < len(FAN):
                assert done[FAN[i + 1]].wait(WAIT), f"{FAN[i + 1]} never finished"
            with lock:
                finished.append(name)
            done[name].set()
            return {"log": [name]}

        return node

    def join(state: S) -> dict:
        return {"seen": [list(state["log"])]}

    g = StateGraph(S)
    g.add_node("fan", lambda s: {"log": ["fan"]})
    for i in order:
        g.add_node(FAN[int(i)], make(int(i)))
        g.add_edge("fan", FAN[int(i)])
    g.add_node("join", join)
    g.add_edge(START, "fan")
    g.add_edge(FAN, "join")
    g.add_edge("join", END)
    return g.compile(), finished


@pytest.mark.parametrize("order", ["01234567", "76543210", "35170264"])
def test_parallel_reducer_writes_fold_in_node_name_order(order: str) -> None:
    app, finished = _fan_out_graph(list(order))
    out = app.invoke({})
    assert finished == list(reversed(FAN))  # completion order really was reversed
    assert out["log"] == ["fan", *FAN]
    assert out["seen"] == [["fan", *FAN]]  # the join ran once, after all of them


def test_parallel_updates_stream_as_each_node_finishes() -> None:
    app, finished = _fan_out_graph(list("01234567"))
    chunks = list(app.stream({}, stream_mode=["updates", "values"]))
    names = [next(iter(c)) for mode, c in chunks if mode == "updates"]
    assert finished == list(reversed(FAN))
    assert names == ["fan", *reversed(FAN), "join"]  # the fast node's update first
    # "values" stays one chunk per step: input, fan, the 8 nodes together, join
    values = [c for mode, c in chunks if mode == "values"]
    assert [v.get("log") for v in values][1:] == [["fan"], ["fan", *FAN], ["fan", *FAN]]
    assert len(values) == 4
    assert values[-1]["seen"] == [["fan", *FAN]]


def test_send_results_fold_in_send_order() -> None:
    n = 6
    done = [threading.Event() for _ in range(n)]

    class S(TypedDict):
        results: Annotated[list, operator.add]

    def worker(arg: int) -> dict:
        # the first Send waits for the second, and so on: completion is in reverse
        if arg + 1 < n:
            assert done[arg + 1].wait(WAIT)
        done[arg].set()
        return {"results": [arg]}

    g = StateGraph(S)
    g.add_node("src", lambda s: None)
    g.add_node("worker", worker)
    g.add_edge(START, "src")
    g.add_conditional_edges("src", lambda s: [Send("worker", i) for i in range(n)])
    out = g.compile().invoke({})
    assert out["results"] == list(range(n))


def test_send_from_command_goto() -> None:
    class S(TypedDict):
        results: Annotated[list, operator.add]

    def src(state: S) -> Command:
        return Command(goto=[Send("worker", "x"), Send("worker", "y")], update={"results": ["s"]})

    g = StateGraph(S)
    g.add_node("src", src, destinations=["worker"])
    g.add_node("worker", lambda arg: {"results": [arg * 2]})
    g.add_edge(START, "src")
    assert g.compile().invoke({})["results"] == ["s", "xx", "yy"]


def test_parallel_last_value_conflict_names_key_and_nodes() -> None:
    g = StateGraph(State)
    g.add_node("left", lambda s: {"value": 1})
    g.add_node("right", lambda s: {"value": 2})
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    with pytest.raises(InvalidUpdateError) as err:
        g.compile().invoke({})
    msg = str(err.value)
    assert "'value'" in msg and "'left'" in msg and "'right'" in msg


def test_sync_and_async_node_in_one_parallel_step() -> None:
    both = threading.Barrier(2, timeout=WAIT)

    async def slow_async(state: State) -> dict:
        await asyncio.to_thread(both.wait)
        return {"log": ["async"]}

    def sync(state: State) -> dict:
        both.wait()
        return {"log": ["sync"]}

    g = StateGraph(State)
    g.add_node("b_async", slow_async)
    g.add_node("a_sync", sync)
    g.add_edge(START, "b_async")
    g.add_edge(START, "a_sync")
    app = g.compile()
    assert app.invoke({})["log"] == ["sync", "async"]

    async def main() -> Any:
        return await app.ainvoke({})

    assert asyncio.run(main())["log"] == ["sync", "async"]


def test_async_nodes_run() -> None:
    async def one(state: State) -> dict:
        await asyncio.sleep(0)
        return {"log": ["one"], "value": 1}

    async def two(state: State) -> dict:
        return {"value": state["value"] + 1}

    g = StateGraph(State)
    g.add_node(one)
    g.add_node(two)
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    assert g.compile().invoke({}) == {"log": ["one"], "value": 2}


def test_async_nodes_in_parallel_fold_in_name_order() -> None:
    async def a(state: State) -> dict:
        await asyncio.sleep(0)
        return {"log": ["a"]}

    async def b(state: State) -> dict:
        return {"log": ["b"]}

    g = StateGraph(State)
    g.add_node(b)
    g.add_node(a)
    g.add_edge(START, "b")
    g.add_edge(START, "a")
    app = g.compile()
    assert app.invoke({})["log"] == ["a", "b"]

    async def main() -> Any:
        return await app.ainvoke({})

    assert asyncio.run(main())["log"] == ["a", "b"]


# -- Command -------------------------------------------------------------------------------


def test_command_from_a_node() -> None:
    def router(state: State) -> Command:
        return Command(goto="right", update={"value": 42, "log": ["router"]})

    g = StateGraph(State)
    g.add_node("router", router, destinations=["left", "right"])
    g.add_node("left", _append("left"))
    g.add_node("right", lambda s: {"log": [f"right saw {s['value']}"]})
    g.add_edge(START, "router")
    out = g.compile().invoke({"value": 0})
    assert out == {"log": ["router", "right saw 42"], "value": 42}


def test_command_goto_list_and_end() -> None:
    def router(state: State) -> Command:
        return Command(goto=["b", "a"])

    g = StateGraph(State)
    g.add_node("router", router, destinations=["a", "b"])
    g.add_node("a", _append("a"))
    g.add_node("b", _append("b"))
    g.add_edge(START, "router")
    assert g.compile().invoke({})["log"] == ["a", "b"]

    g = StateGraph(State)
    g.add_node("stop", lambda s: Command(goto=END, update={"log": ["stop"]}))
    g.add_edge(START, "stop")
    assert g.compile().invoke({})["log"] == ["stop"]


def test_command_goto_plus_static_edge_runs_both() -> None:
    # LangGraph: Command(goto=...) adds to the node's static edges, it does not replace them
    g = StateGraph(State)
    g.add_node("src", lambda s: Command(goto="extra"), destinations=["extra"])
    g.add_node("next", _append("next"))
    g.add_node("extra", _append("extra"))
    g.add_edge(START, "src")
    g.add_edge("src", "next")
    assert g.compile().invoke({})["log"] == ["extra", "next"]


def test_command_update_as_list_of_pairs() -> None:
    g = StateGraph(State)
    g.add_node("src", lambda s: Command(update=[("log", ["x"]), ("log", ["y"])]))
    g.add_edge(START, "src")
    assert g.compile().invoke({})["log"] == ["x", "y"]


def test_command_goto_unknown_node_from_a_node() -> None:
    g = StateGraph(State)
    g.add_node("src", lambda s: Command(goto="nowhere"))
    g.add_edge(START, "src")
    with pytest.raises(InvalidUpdateError) as err:
        g.compile().invoke({})
    assert "'nowhere'" in str(err.value) and "'src'" in str(err.value)


def test_command_send_to_unknown_node() -> None:
    g = StateGraph(State)
    g.add_node("src", lambda s: Command(goto=Send("nowhere", 1)))
    g.add_edge(START, "src")
    with pytest.raises(InvalidUpdateError, match="nowhere"):
        g.compile().invoke({})


def test_command_as_input_applies_update_and_goto() -> None:
    seen: list[Any] = []

    def b(state: State) -> dict:
        seen.append(state["value"])
        return {"log": ["b"]}

    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    app = g.compile(checkpointer=InMemorySaver())
    app.invoke({"value": 1}, _cfg())
    out = app.invoke(Command(goto="b", update={"value": 2}), _cfg())
    assert out["value"] == 2
    assert seen[-1] == 2
    assert out["log"][:2] == ["a", "b"]


def test_command_as_input_runs_only_the_goto_target() -> None:
    calls: list[str] = []

    def make(name: str):
        def fn(state: State) -> dict:
            calls.append(name)
            return {"log": [name]}

        return fn

    g = StateGraph(State)
    g.add_node("a", make("a"))
    g.add_node("b", make("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    app = g.compile(checkpointer=InMemorySaver())
    app.invoke({"value": 1}, _cfg())
    calls.clear()
    out = app.invoke(Command(goto="b", update={"value": 2}), _cfg())
    assert calls == ["b"]
    assert out == {"log": ["a", "b", "b"], "value": 2}


def test_command_as_input_unknown_goto() -> None:
    with pytest.raises(InvalidUpdateError, match="nowhere"):
        _chain("a").invoke(Command(goto="nowhere"))


# -- invalid outputs and inputs ------------------------------------------------------------


def test_node_returning_unknown_key_names_node_and_key() -> None:
    g = StateGraph(State)
    g.add_node("sloppy", lambda s: {"log": ["x"], "typo": 1})
    g.add_edge(START, "sloppy")
    with pytest.raises(InvalidUpdateError) as err:
        g.compile().invoke({})
    assert "'sloppy'" in str(err.value) and "'typo'" in str(err.value)


@pytest.mark.parametrize("bad", ["text", 3, ["log"]])
def test_node_returning_non_mapping_typeddict(bad: Any) -> None:
    g = StateGraph(State)
    g.add_node("sloppy", lambda s: bad)
    g.add_edge(START, "sloppy")
    with pytest.raises(InvalidUpdateError, match="'sloppy'"):
        g.compile().invoke({})


@pytest.mark.parametrize("bad", ["text", 3, ["log"]])
def test_node_returning_non_mapping_pydantic(bad: Any) -> None:
    import pydantic

    class P(pydantic.BaseModel):
        log: list = []

    g = StateGraph(P)
    g.add_node("sloppy", lambda s: bad)
    g.add_edge(START, "sloppy")
    with pytest.raises(InvalidUpdateError, match="'sloppy'"):
        g.compile().invoke({})


def test_input_with_unknown_key() -> None:
    with pytest.raises(InvalidUpdateError, match="'bogus'"):
        _chain("a").invoke({"bogus": 1})


@pytest.mark.parametrize("bad", ["text", 3, [("log", [1])]])
def test_non_mapping_input_typeddict(bad: Any) -> None:
    with pytest.raises(InvalidUpdateError):
        _chain("a").invoke(bad)


def test_unknown_key_error_does_not_run_nodes() -> None:
    calls: list[int] = []
    g = StateGraph(State)
    g.add_node("a", lambda s: calls.append(1) or {})
    g.add_edge(START, "a")
    with pytest.raises(InvalidUpdateError):
        g.compile().invoke({"bogus": 1})
    assert calls == []


# -- recursion limit -----------------------------------------------------------------------


def _steps(n: int):
    return _chain(*[f"s{i:02d}" for i in range(n)])


def test_default_recursion_limit_allows_25_steps() -> None:
    assert len(_steps(25).invoke({})["log"]) == 25


def test_default_recursion_limit_stops_26_steps() -> None:
    with pytest.raises(GraphRecursionError, match="recursion_limit"):
        _steps(26).invoke({})


def test_custom_recursion_limit() -> None:
    app = _steps(5)
    assert len(app.invoke({}, {"recursion_limit": 5})["log"]) == 5
    with pytest.raises(GraphRecursionError):
        app.invoke({}, {"recursion_limit": 4})
    assert len(_steps(30).invoke({}, {"recursion_limit": 30})["log"]) == 30


def test_recursion_limit_on_a_loop() -> None:
    g = StateGraph(State)
    g.add_node("loop", lambda s: {"value": s.get("value", 0) + 1})
    g.add_edge(START, "loop")
    g.add_conditional_edges("loop", lambda s: "loop")
    with pytest.raises(GraphRecursionError):
        g.compile().invoke({"value": 0}, {"recursion_limit": 7})


@pytest.mark.parametrize("bad", [0, -1, "10", 2.5])
def test_bad_recursion_limit(bad: Any) -> None:
    with pytest.raises(ConfigError, match="recursion_limit"):
        _steps(1).invoke({}, {"recursion_limit": bad})


# -- checkpointer and thread_id ------------------------------------------------------------


def test_no_checkpointer_needs_no_thread_id() -> None:
    app = _chain("a")
    assert app.invoke({}) == {"log": ["a"]}
    assert app.invoke({}, {}) == {"log": ["a"]}
    assert app.invoke({}, {"configurable": {}}) == {"log": ["a"]}
    # each invoke starts fresh: nothing is remembered
    assert app.invoke({}, _cfg("x")) == {"log": ["a"]}
    assert app.invoke({}, _cfg("x")) == {"log": ["a"]}


def test_checkpointer_without_thread_id_is_config_error() -> None:
    app = _chain("a", checkpointer=InMemorySaver())
    for config in (None, {}, {"configurable": {}}):
        with pytest.raises(ConfigError, match="thread_id"):
            app.invoke({}, config)
    with pytest.raises(ConfigError, match="thread_id"):
        list(app.stream({}))


def test_checkpointer_remembers_the_thread() -> None:
    app = _chain("a", checkpointer=InMemorySaver())
    app.invoke({"value": 1}, _cfg("keep"))
    out = app.invoke({"value": 2}, _cfg("keep"))
    assert out == {"log": ["a", "a"], "value": 2}
    assert app.invoke({}, _cfg("other")) == {"log": ["a"]}


# -- durability ----------------------------------------------------------------------------


def _rich_graph(checkpointer: Any):
    class S(TypedDict):
        log: Annotated[list, operator.add]
        value: int

    g = StateGraph(S)
    g.add_node("start", lambda s: {"value": 1, "log": ["start"]})
    g.add_node("p1", lambda s: {"log": ["p1"]})
    g.add_node("p2", lambda s: {"log": ["p2"]})
    g.add_node("fan", lambda s: None)
    g.add_node("w", lambda a: {"log": [f"w{a}"]})
    g.add_node("end", lambda s: {"value": s["value"] + len(s["log"])})
    g.add_edge(START, "start")
    g.add_edge("start", "p1")
    g.add_edge("start", "p2")
    g.add_edge(["p1", "p2"], "fan")
    g.add_conditional_edges("fan", lambda s: [Send("w", i) for i in range(3)])
    g.add_edge("w", "end")
    return g.compile(checkpointer=checkpointer)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_modes_give_the_same_result(durability: str) -> None:
    reference = _rich_graph(None).invoke({})
    saver = InMemorySaver()
    app = _rich_graph(saver)
    out = app.invoke({}, _cfg(durability), durability=durability)
    assert out == reference
    assert app.get_state(_cfg(durability)).values == reference
    chunks = list(app.stream({}, _cfg(durability + "-s"), durability=durability))
    assert chunks == list(_rich_graph(None).stream({}))


def test_durability_modes_same_stream_with_interrupt() -> None:
    results = []
    for mode in ("sync", "async", "exit"):
        app = _approval_graph(InMemorySaver())
        first = list(app.stream({}, _cfg(), durability=mode))
        second = list(app.stream(Command(resume="y"), _cfg(), durability=mode))
        results.append((first, second, app.get_state(_cfg()).values))

    # interrupt ids depend on the thread's checkpoint ids, so compare everything but ids
    def strip(r: tuple) -> tuple:
        first, second, values = r
        first = [
            {"__interrupt__": [i.value for i in c["__interrupt__"]]} if "__interrupt__" in c else c
            for c in first
        ]
        return first, second, values

    assert strip(results[0]) == strip(results[1]) == strip(results[2])
    assert results[0][2] == {"log": ["draft", "answer:y"]}


def test_bad_durability() -> None:
    with pytest.raises(ConfigError, match="durability"):
        _chain("a").invoke({}, durability="never")  # type: ignore[arg-type]


def test_recursion_error_is_resumable_with_a_higher_limit() -> None:
    class S(TypedDict):
        value: int

    g = StateGraph(S)
    g.add_node("loop", lambda s: {"value": s["value"] + 1})
    g.add_edge(START, "loop")
    g.add_conditional_edges("loop", lambda s: "loop" if s["value"] < 10 else END)
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(GraphRecursionError):
        app.invoke({"value": 0}, _cfg(recursion_limit=4))
    assert app.get_state(_cfg()).values == {"value": 4}
    assert app.invoke(None, _cfg(recursion_limit=50)) == {"value": 10}


# -- streams that stop early ---------------------------------------------------------------


def test_sync_stream_closed_early_releases_the_thread() -> None:
    app = _chain("a", "b", checkpointer=InMemorySaver())
    stream = app.stream({}, _cfg())
    assert next(stream) == {"a": {"log": ["a"]}}
    stream.close()
    assert app.invoke({}, _cfg())["log"][-2:] == ["a", "b"]


def test_astream_closed_early_releases_the_thread() -> None:
    from contextlib import aclosing

    app = _chain("a", "b", checkpointer=InMemorySaver())

    async def main() -> Any:
        async with aclosing(app.astream({}, _cfg())) as stream:
            async for chunk in stream:
                assert chunk == {"a": {"log": ["a"]}}
                break
        return await app.ainvoke({}, _cfg())

    assert asyncio.run(main())["log"][-2:] == ["a", "b"]


# -- schema instances as input -------------------------------------------------------------


def test_dataclass_instance_as_input() -> None:
    import dataclasses

    @dataclasses.dataclass
    class D:
        items: Annotated[list, operator.add] = dataclasses.field(default_factory=list)
        name: str = ""

    g = StateGraph(D)
    g.add_node("n", lambda s: {"items": [s.name]})
    g.add_edge(START, "n")
    assert g.compile().invoke(D(name="x", items=[0])) == {"items": [0, "x"], "name": "x"}


def test_many_concurrent_ainvokes_with_async_nodes_all_progress() -> None:
    """More concurrent async runs than the event loop's default executor has threads: all of
    them are inside their node at once (a barrier proves it), none waits for another."""
    import asyncio

    class C(TypedDict, total=False):
        n: int

    runs = 24
    barrier = asyncio.Barrier(runs)

    async def node(state: C) -> dict[str, Any]:
        await asyncio.wait_for(barrier.wait(), timeout=30)
        return {"n": state.get("n", 0) + 1}

    g = StateGraph(C)
    g.add_node("node", node)
    g.add_edge(START, "node")
    app = g.compile(checkpointer=InMemorySaver())

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(app.ainvoke({"n": i}, {"configurable": {"thread_id": f"c{i}"}}) for i in range(runs))
        )

    assert asyncio.run(main()) == [{"n": i + 1} for i in range(runs)]
