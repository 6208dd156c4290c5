"""Stream modes and shapes (graph/_stream.py): "tasks", "checkpoints", "debug", v2 stream
parts, lists of modes, ``subgraphs``, updates and pauses yielded as each node ends. Tests
taking ``api`` run the same program on LangGraph, so the shapes asserted are LangGraph's
(ids and timestamps aside)."""

from __future__ import annotations

import itertools
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import BaseModel
from tests._parity import Api, tether_api, thread

from tether import ConfigError, StateGraph
from tether.graph._stream import STREAM_MODES

WAIT = 10.0  # upper bound on an Event wait: a hang fails the test instead of blocking


class AnyStr(str):
    """Equal to any string: stands for ids and timestamps, which differ between runs."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY = AnyStr()


class State(TypedDict):
    log: Annotated[list, operator.add]


def _node(name: str) -> Any:
    def fn(state: State) -> dict:
        return {"log": [name]}

    return fn


def _chain(api: Api, *names: str, **compile_kw: Any) -> Any:
    g = api.StateGraph(State)
    for n in names:
        g.add_node(n, _node(n))
    g.add_edge(api.START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    return g.compile(**compile_kw)


def _interrupts(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """The interrupts of a task result, without fields only LangGraph has."""
    return [{"value": i["value"], "id": i["id"]} for i in chunk["interrupts"]]


# -- updates as each node finishes -------------------------------------------------------------


def _race(api: Api, release: threading.Event) -> Any:
    """The node "slow" finishes only once the consumer has seen "fast"'s update: a stream that held
    updates to the end of the step would never release it."""

    def slow(state: State) -> dict:
        assert release.wait(WAIT), "fast's update was not streamed before the step ended"
        return {"log": ["slow"]}

    g = api.StateGraph(State)
    g.add_node("fast", _node("fast"))
    g.add_node("slow", slow)
    g.add_edge(api.START, "fast")
    g.add_edge(api.START, "slow")
    return g.compile()


def test_an_update_streams_as_soon_as_its_node_finishes(api: Api) -> None:
    release = threading.Event()
    chunks = []
    for chunk in _race(api, release).stream({"log": []}, stream_mode=["updates", "values"]):
        chunks.append(chunk)
        if chunk == ("updates", {"fast": {"log": ["fast"]}}):
            release.set()
    assert [c for c in chunks if c[0] == "updates"] == [
        ("updates", {"fast": {"log": ["fast"]}}),
        ("updates", {"slow": {"log": ["slow"]}}),
    ]
    # "values" stays one chunk per step: the input, then the step of both nodes
    assert [c[1] for c in chunks if c[0] == "values"] == [
        {"log": []},
        {"log": ["fast", "slow"]},
    ]


def test_a_pause_streams_as_soon_as_its_node_pauses() -> None:
    # tether only: LangGraph streams the pause at once in most runs (this order), but not
    # in all, so the wait below would make the test flaky there
    api = tether_api()
    release = threading.Event()

    def ask(state: State) -> dict:
        return {"log": [api.interrupt("ok?")]}

    def slow(state: State) -> dict:
        assert release.wait(WAIT), "the pause was not streamed before the step ended"
        return {"log": ["slow"]}

    g = api.StateGraph(State)
    g.add_node("ask", ask)
    g.add_node("slow", slow)
    g.add_edge(api.START, "ask")
    g.add_edge(api.START, "slow")
    app = g.compile(checkpointer=api.InMemorySaver())
    chunks = []
    for chunk in app.stream({"log": []}, thread(), stream_mode=["updates", "values"]):
        chunks.append(chunk)
        if chunk[0] == "updates" and "__interrupt__" in chunk[1]:
            release.set()
    (pause,) = chunks[1][1]["__interrupt__"]
    assert pause.value == "ok?"
    assert chunks == [
        ("values", {"log": []}),
        ("updates", {"__interrupt__": (pause,)}),
        ("values", {"log": [], "__interrupt__": (pause,)}),  # the state as the step began
        ("updates", {"slow": {"log": ["slow"]}}),
        ("values", {"log": ["slow"]}),  # the paused step, with what finished folded in
    ]


def test_a_paused_step_returns_what_finished_and_resumes_it_as_cached(api: Api) -> None:
    def ask(state: State) -> dict:
        return {"log": [f"ask:{api.interrupt('ok?')}"]}

    g = api.StateGraph(State)
    g.add_node("ask", ask)
    g.add_node("other", _node("other"))
    g.add_edge(api.START, "ask")
    g.add_edge(api.START, "other")
    app = g.compile(checkpointer=api.InMemorySaver())
    out = app.invoke({"log": []}, thread())
    assert out["log"] == ["other"]
    assert [i.value for i in out["__interrupt__"]] == ["ok?"]

    resumed = list(app.stream(api.Command(resume="y"), thread(), stream_mode="updates"))
    assert resumed == [
        {"other": {"log": ["other"]}, "__metadata__": {"cached": True}},
        {"ask": {"log": ["ask:y"]}},
    ]


def test_a_breakpoint_streams_an_empty_interrupt(api: Api) -> None:
    for where in ("interrupt_before", "interrupt_after"):
        target = "b" if where == "interrupt_before" else "a"
        app = _chain(api, "a", "b", checkpointer=api.InMemorySaver(), **{where: [target]})
        chunks = list(app.stream({"log": []}, thread(where), stream_mode=["updates", "values"]))
        assert chunks == [
            ("values", {"log": []}),
            ("updates", {"a": {"log": ["a"]}}),
            ("values", {"log": ["a"]}),
            ("updates", {"__interrupt__": ()}),
        ]
        assert app.invoke(None, thread(where)) == {"log": ["a", "b"]}


# -- tasks -------------------------------------------------------------------------------------


def test_tasks_mode_shows_each_task_start_and_result(api: Api) -> None:
    class S(TypedDict):
        log: Annotated[list, operator.add]
        n: int

    g = api.StateGraph(S)
    g.add_node("a", lambda s: {"n": 1, "log": ["a"]}, metadata={"team": "x"})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("c", lambda s: {"log": ["c"]})
    g.add_node("sent", lambda arg: {"log": [arg]})
    g.add_node("joined", lambda s: {"log": ["joined"]})
    g.add_edge(api.START, "a")
    g.add_conditional_edges("a", lambda s: ["b", "c", api.Send("sent", "payload")])
    g.add_edge(["b", "c"], "joined")
    config = {"metadata": {"user": "u"}, "tags": ["t1"]}
    chunks = list(g.compile().stream({"log": [], "n": 0}, config, stream_mode="tasks"))
    starts = [c for c in chunks if "input" in c]
    results = [c for c in chunks if "result" in c]
    assert starts == [
        {
            "id": ANY,
            "name": "a",
            "input": {"log": [], "n": 0},
            "triggers": ("branch:to:a",),
            "metadata": {"user": "u", "team": "x", "tags": ["t1"]},
        },
        # a Send runs before the step's other tasks, as LangGraph lists them
        {
            "id": ANY,
            "name": "sent",
            "input": "payload",
            "triggers": ("__pregel_push",),
            "metadata": {"user": "u", "tags": ["t1"]},
        },
        {
            "id": ANY,
            "name": "b",
            "input": {"log": ["a"], "n": 1},
            "triggers": ("branch:to:b",),
            "metadata": {"user": "u", "tags": ["t1"]},
        },
        {
            "id": ANY,
            "name": "c",
            "input": {"log": ["a"], "n": 1},
            "triggers": ("branch:to:c",),
            "metadata": {"user": "u", "tags": ["t1"]},
        },
        {
            "id": ANY,
            "name": "joined",
            "input": {"log": ["a", "b", "c", "payload"], "n": 1},
            "triggers": ("branch:to:joined", "join:b+c:joined"),
            "metadata": {"user": "u", "tags": ["t1"]},
        },
    ]
    by_name = {c["name"]: c for c in results}
    assert by_name["a"] == {
        "id": ANY,
        "name": "a",
        "error": None,
        "result": {"n": 1, "log": ["a"]},
        "interrupts": [],
    }
    assert by_name["sent"]["result"] == {"log": ["payload"]}
    assert {c["id"] for c in starts} == {c["id"] for c in results}  # each start has its end


def test_tasks_mode_shows_a_pause_and_an_error(api: Api) -> None:
    def ask(state: State) -> dict:
        return {"log": [api.interrupt("ok?")]}

    def boom(state: State) -> dict:
        raise ValueError("boom")

    g = api.StateGraph(State)
    g.add_node("ask", ask)
    g.add_edge(api.START, "ask")
    app = g.compile(checkpointer=api.InMemorySaver())
    chunks = list(app.stream({"log": []}, thread(), stream_mode="tasks"))
    assert chunks[1]["result"] == {} and chunks[1]["error"] is None
    (pause,) = app.get_state(thread()).interrupts
    assert _interrupts(chunks[1]) == [{"value": "ok?", "id": pause.id}]

    g = api.StateGraph(State)
    g.add_node("boom", boom)
    g.add_edge(api.START, "boom")
    seen: list[Any] = []
    with pytest.raises(ValueError, match="boom"):
        for chunk in g.compile().stream({"log": []}, stream_mode="tasks"):
            seen.append(chunk)
    assert isinstance(seen[1]["error"], ValueError) and seen[1]["result"] == {}


def test_a_task_writing_a_key_twice_shows_both_writes(api: Api) -> None:
    g = api.StateGraph(State)
    g.add_node("twice", lambda s: api.Command(update=[("log", ["x"]), ("log", ["y"])]))
    g.add_edge(api.START, "twice")
    chunks = list(g.compile().stream({"log": []}, stream_mode="tasks"))
    assert chunks[1]["result"] == {"log": {"$writes": [["x"], ["y"]]}}


def test_functional_api_tasks_show_the_input_and_the_return_value(api: Api) -> None:
    @api.task
    def double(x: int) -> int:
        return 2 * x

    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> dict:
        return {"y": double(x).result()}

    chunks = list(wf.stream(3, thread(), stream_mode=["tasks", "updates"]))
    assert chunks == [
        ("tasks", {"id": ANY, "name": "wf", "input": 3, "triggers": ("__start__",)}),
        (
            "tasks",
            {"id": ANY, "name": "double", "input": ((3,), {}), "triggers": ("__pregel_push",)},
        ),
        ("updates", {"double": 6}),
        (
            "tasks",
            {
                "id": ANY,
                "name": "double",
                "error": None,
                "result": {"__return__": 6},
                "interrupts": [],
            },
        ),
        ("updates", {"wf": {"y": 6}}),
        (
            "tasks",
            {
                "id": ANY,
                "name": "wf",
                "error": None,
                "result": {"__end__": {"y": 6}},
                "interrupts": [],
            },
        ),
    ]
    assert chunks[1][1]["id"] == chunks[3][1]["id"]


# -- checkpoints and debug ---------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_checkpoints_mode_shows_each_checkpoint_as_get_state_does(
    api: Api, durability: str
) -> None:
    app = _chain(api, "a", "b", checkpointer=api.InMemorySaver())
    chunks = list(
        app.stream({"log": []}, thread(), stream_mode="checkpoints", durability=durability)
    )
    assert all(
        set(c) == {"config", "parent_config", "values", "metadata", "next", "tasks"} for c in chunks
    )
    last = chunks[-1]
    head = app.get_state(thread())
    assert (last["config"], last["metadata"], last["values"]) == (
        head.config,
        head.metadata,
        head.values,
    )
    assert last["next"] == [] and last["tasks"] == []
    # each checkpoint names the tasks it plans
    assert [c["next"] for c in chunks][-3:] == [["a"], ["b"], []]
    assert chunks[-2]["tasks"] == [{"id": ANY, "name": "b", "interrupts": (), "state": None}]
    if durability != "exit":  # every streamed checkpoint is the one stored, in order
        for before, after in itertools.pairwise(chunks):
            assert after["parent_config"] == before["config"]
        history = list(app.get_state_history(thread()))
        stored = [(s.config, s.parent_config, s.metadata, s.values) for s in reversed(history)]
        streamed = [(c["config"], c["parent_config"], c["metadata"], c["values"]) for c in chunks]
        assert streamed == stored


def test_no_checkpointer_no_checkpoints(api: Api) -> None:
    chunks = list(_chain(api, "a").stream({"log": []}, stream_mode=["checkpoints", "updates"]))
    assert chunks == [("updates", {"a": {"log": ["a"]}})]


def test_checkpoints_of_a_resumed_step_show_what_its_tasks_recorded(api: Api) -> None:
    def ask(state: State) -> dict:
        return {"log": [api.interrupt("ok?")]}

    g = api.StateGraph(State)
    g.add_node("ask", ask)
    g.add_node("other", _node("other"))
    g.add_edge(api.START, "ask")
    g.add_edge(api.START, "other")
    app = g.compile(checkpointer=api.InMemorySaver())
    app.invoke({"log": []}, thread())
    (pause,) = app.get_state(thread()).interrupts
    first, *_ = app.stream(api.Command(resume="y"), thread(), stream_mode="checkpoints")
    assert first["next"] == ["ask", "other"]
    ask_task, other_task = first["tasks"]
    assert [i["id"] for i in ask_task["interrupts"]] == [pause.id]
    assert other_task["result"] == {"log": ["other"]}


def test_debug_wraps_checkpoints_and_tasks_with_their_step(api: Api) -> None:
    app = _chain(api, "a", "b", checkpointer=api.InMemorySaver())
    modes = ["checkpoints", "tasks", "debug"]
    chunks = list(app.stream({"log": []}, thread(), stream_mode=modes))
    debug = [c for m, c in chunks if m == "debug"]
    others = [c for m, c in chunks if m != "debug"]
    assert [d["payload"] for d in debug] == others
    assert all(set(d) == {"step", "timestamp", "type", "payload"} for d in debug)
    kinds = [d["type"] for d in debug]
    assert kinds[-7:] == [
        "checkpoint",
        "task",
        "task_result",
        "checkpoint",
        "task",
        "task_result",
        "checkpoint",
    ]
    for d in debug:
        if d["type"] == "checkpoint":
            step = d["payload"]["metadata"]["step"]
            assert d["step"] == step
        else:  # a task runs in the step after the checkpoint that planned it
            assert d["step"] == step + 1


# -- v2, lists of modes, subgraphs -------------------------------------------------------------


def _normal(value: Any) -> Any:
    """``value`` with ids and timestamps blanked, to compare two runs."""
    if isinstance(value, dict):
        return {
            k: "*" if k in ("id", "checkpoint_id", "thread_id", "timestamp") else _normal(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_normal(v) for v in value)
    return value


def test_v2_parts_for_every_mode(api: Api) -> None:
    modes = ["values", "updates", "custom", "checkpoints", "tasks", "debug"]

    def talk(state: State) -> dict:
        api.get_stream_writer()("hi")
        return {"log": ["talk"]}

    g = api.StateGraph(State)
    g.add_node("talk", talk)
    g.add_edge(api.START, "talk")
    app = g.compile(checkpointer=api.InMemorySaver())
    v1 = list(app.stream({"log": []}, thread("v1"), stream_mode=modes))
    v2 = list(app.stream({"log": []}, thread("v2"), stream_mode=modes, version="v2"))
    assert {p["type"] for p in v2} == set(modes)
    for part in v2:
        expected = {"type", "ns", "data", "interrupts"} if part["type"] == "values" else None
        assert set(part) == (expected or {"type", "ns", "data"})
        assert part["ns"] == ()
    assert [(p["type"], _normal(p["data"])) for p in v2] == [(m, _normal(c)) for m, c in v1]
    single = list(app.stream({"log": []}, thread("s"), stream_mode="custom", version="v2"))
    assert single == [{"type": "custom", "ns": (), "data": "hi"}]


def test_v2_values_take_the_interrupts_out_of_the_data(api: Api) -> None:
    def ask(state: State) -> dict:
        return {"log": [api.interrupt("ok?")]}

    g = api.StateGraph(State)
    g.add_node("ask", ask)
    g.add_edge(api.START, "ask")
    app = g.compile(checkpointer=api.InMemorySaver())
    parts = list(app.stream({"log": []}, thread(), stream_mode="values", version="v2"))
    assert [p["data"] for p in parts] == [{"log": []}, {"log": []}]
    assert parts[0]["interrupts"] == ()
    assert [i.value for i in parts[1]["interrupts"]] == ["ok?"]


def test_v2_values_are_instances_of_a_pydantic_schema(api: Api) -> None:
    class S(BaseModel):
        x: int = 0
        y: str = ""

    g = api.StateGraph(S)
    g.add_node("inc", lambda s: {"x": s.x + 1})
    g.add_edge(api.START, "inc")
    app = g.compile(checkpointer=api.InMemorySaver())
    parts = list(app.stream({"x": 1}, thread(), stream_mode="values", version="v2"))
    assert [p["data"] for p in parts] == [S(x=1), S(x=2)]
    assert app.invoke({"x": 5}, thread("i"), version="v2").value == S(x=6)
    assert list(app.stream({"x": 1}, thread("v1"), stream_mode="values")) == [{"x": 1}, {"x": 2}]


def test_subgraphs_true_puts_the_root_namespace_first(api: Api) -> None:
    app = _chain(api, "a")
    one = list(app.stream({"log": []}, stream_mode="updates", subgraphs=True))
    assert one == [((), {"a": {"log": ["a"]}})]
    many = list(app.stream({"log": []}, stream_mode=["updates"], subgraphs=True))
    assert many == [((), "updates", {"a": {"log": ["a"]}})]


def test_invoke_with_another_stream_mode_returns_the_chunks(api: Api) -> None:
    app = _chain(api, "a", "b")
    assert app.invoke({"log": []}, stream_mode="updates") == [
        {"a": {"log": ["a"]}},
        {"b": {"log": ["b"]}},
    ]
    parts = app.invoke({"log": []}, stream_mode="updates", version="v2")
    assert [p["data"] for p in parts] == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]


def test_stream_modes_are_langgraphs() -> None:
    langgraph_types = pytest.importorskip("langgraph.types")
    from tether.types import StreamMode

    assert set(STREAM_MODES) == set(StreamMode.__args__)
    assert set(STREAM_MODES) == set(langgraph_types.StreamMode.__args__)


def test_an_unknown_mode_is_refused_naming_the_modes() -> None:
    g = StateGraph(State)
    g.add_node("a", _node("a"))
    g.set_entry_point("a")
    with pytest.raises(ConfigError, match=r"'events'.*'messages'"):
        list(g.compile().stream({}, stream_mode=["updates", "events"]))
    with pytest.raises(ConfigError, match="at least one"):
        list(g.compile().stream({}, stream_mode=[]))
