"""update_state, bulk_update_state and what snapshots show of finished tasks, each run
against tether and (when installed) LangGraph: the same program, the same observable result.

No ``from __future__ import annotations``: the state class is declared here, and its
annotations must be evaluated at run time by both engines."""

import operator
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import LIBS, load, thread

from tether import InvalidUpdateError, StateGraph
from tether.checkpoint import InMemorySaver


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    x: int


def _abc(lib: Any, saver: Any = None, **compiled: Any) -> Any:
    g = lib.StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s, name=name: {"log": [name]})
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g.compile(checkpointer=saver or lib.InMemorySaver(), **compiled)


def _id(config: Any) -> str:
    return str(config["configurable"]["checkpoint_id"])


@pytest.mark.parametrize("name", LIBS)
def test_history_shows_what_each_finished_task_wrote(name: str) -> None:
    # Bug 6: history showed result=None for every finished task of a one-task step.
    lib = load(name)
    app = _abc(lib)
    app.invoke({"log": [], "x": 0}, thread())
    results = {t.name: t.result for snap in app.get_state_history(thread()) for t in snap.tasks}
    assert {k: results[k] for k in "abc"} == {
        "a": {"log": ["a"]},
        "b": {"log": ["b"]},
        "c": {"log": ["c"]},
    }
    # history lists every task of a step; get_state only what is still to run
    nexts = [snap.next for snap in app.get_state_history(thread())]
    assert ("b",) in nexts and ("c",) in nexts
    assert app.get_state(thread()).next == ()


class Mixed(TypedDict, total=False):
    log: Annotated[list, operator.add]
    x: int
    text: str


@pytest.mark.parametrize("name", LIBS)
def test_history_results_of_every_kind_of_write(name: str) -> None:
    # one-task steps store no copy of what their value rows hold: a reducer's delta, a long
    # last value; small values and reducer snapshots (an Overwrite) are recorded as written
    lib = load(name)
    long = "a last value too long to ride inline in the checkpoint body"
    updates = {
        "a": {"log": ["a"], "x": 1},
        "b": {"log": lib.Overwrite(["B"])},
        "c": {"text": long, "log": ["c"]},
        "d": None,
    }
    g = lib.StateGraph(Mixed)
    for node, update in updates.items():
        g.add_node(node, lambda s, update=update: update)
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "d")
    app = g.compile(checkpointer=lib.InMemorySaver())
    app.invoke({"log": [], "x": 0}, thread())
    history = list(app.get_state_history(thread()))
    results = {t.name: t.result for snap in history for t in snap.tasks}
    assert {k: results[k] for k in updates} == {
        "a": {"log": ["a"], "x": 1},
        "b": {"log": lib.Overwrite(["B"])},
        "c": {"text": long, "log": ["c"]},
        "d": {},
    }
    # the same, reading one old checkpoint by its id
    at_c = next(snap for snap in history if snap.next == ("c",))
    old = app.get_state(at_c.config)
    assert old.next == ("c",)
    assert old.tasks[0].result == {"text": long, "log": ["c"]}


@pytest.mark.parametrize("name", LIBS)
def test_a_task_that_wrote_a_key_twice_shows_every_write(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(S)
    g.add_node("a", lambda s: lib.Command(update=[("log", ["1"]), ("log", ["2"])]))
    g.add_node("b", lambda s: None)
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    app = g.compile(checkpointer=lib.InMemorySaver())
    app.invoke({"log": []}, thread())
    results = {t.name: t.result for s in app.get_state_history(thread()) for t in s.tasks}
    assert results["a"] == {"log": {"$writes": [["1"], ["2"]]}}
    assert results["b"] == {}


@pytest.mark.parametrize("name", LIBS)
def test_bulk_update_state_applies_a_superstep_per_checkpoint(name: str) -> None:
    lib = load(name)
    app = _abc(lib, interrupt_before=["b"])
    app.invoke({"log": [], "x": 0}, thread())
    config = app.bulk_update_state(
        thread(),
        [
            [lib.StateUpdate({"log": ["u1"]}, "a"), lib.StateUpdate({"log": ["u2"]}, "c")],
            [lib.StateUpdate({"x": 9}, "b")],
        ],
    )
    snap = app.get_state(thread())
    assert _id(snap.config) == _id(config)
    assert snap.values == {"log": ["a", "u1", "u2"], "x": 9}
    assert snap.next == ("c",)  # after the last superstep, written as b
    sources = [s.metadata["source"] for s in app.get_state_history(thread())]
    assert sources[:2] == ["update", "update"]
    assert app.invoke(None, thread()) == {"log": ["a", "u1", "u2", "c"], "x": 9}


@pytest.mark.parametrize("name", LIBS)
def test_bulk_update_state_refuses_bad_supersteps(name: str) -> None:
    lib = load(name)
    app = _abc(lib)
    app.invoke({"log": [], "x": 0}, thread())
    bad: list[Any] = [
        [],
        [[]],
        [[lib.StateUpdate({"x": 1}, "a"), lib.StateUpdate({"x": 2}, "c")]],  # x has no reducer
    ]
    for supersteps in bad:
        with pytest.raises((ValueError, lib.InvalidUpdateError)):
            app.bulk_update_state(thread(), supersteps)
    assert app.get_state(thread()).values == {"log": ["a", "b", "c"], "x": 0}


@pytest.mark.parametrize("name", LIBS)
def test_copy_makes_a_sibling_fork_that_runs_on(name: str) -> None:
    lib = load(name)
    app = _abc(lib, interrupt_before=["b"])
    app.invoke({"log": [], "x": 0}, thread())
    original = app.get_state(thread())
    config = app.update_state(thread(), None, as_node="__copy__")
    copy = app.get_state(thread())
    assert _id(copy.config) == _id(config) != _id(original.config)
    assert copy.metadata["source"] == "fork"
    assert copy.metadata["step"] == original.metadata["step"] + 1
    assert _id(copy.parent_config) == _id(original.parent_config)
    assert (copy.values, copy.next) == (original.values, original.next)
    assert app.invoke(None, thread()) == {"log": ["a", "b", "c"], "x": 0}
    with pytest.raises(lib.InvalidUpdateError):
        app.update_state(thread("never-ran"), None, as_node="__copy__")


@pytest.mark.parametrize("name", LIBS)
def test_copy_with_a_list_of_updates_applies_them_to_the_copy(name: str) -> None:
    lib = load(name)
    app = _abc(lib, interrupt_before=["b"])
    app.invoke({"log": [], "x": 0}, thread())
    app.update_state(thread(), [({"x": 4}, "a")], as_node="__copy__")
    snap = app.get_state(thread())
    assert snap.values == {"log": ["a"], "x": 4}
    assert snap.metadata["source"] == "update"
    assert snap.next == ("b",)


@pytest.mark.parametrize("name", LIBS)
def test_update_as_end_drops_the_pending_step(name: str) -> None:
    lib = load(name)
    app = _abc(lib, interrupt_before=["b"])
    app.invoke({"log": [], "x": 0}, thread())
    app.update_state(thread(), None, as_node=lib.END)
    snap = app.get_state(thread())
    assert snap.next == () and snap.values == {"log": ["a"], "x": 0}
    assert app.invoke(None, thread()) == {"log": ["a"], "x": 0}


@pytest.mark.parametrize("name", LIBS)
def test_update_as_input_starts_the_thread_from_start(name: str) -> None:
    lib = load(name)
    app = _abc(lib)
    app.update_state(thread(), {"log": ["i"], "x": 1}, as_node="__input__")
    assert app.get_state(thread()).metadata["source"] == "input"
    assert app.invoke(None, thread()) == {"log": ["i", "a", "b", "c"], "x": 1}


def test_bulk_update_state_checks_every_update_before_storing_any() -> None:
    app = _abc(load("tether"), InMemorySaver())
    app.invoke({"log": [], "x": 0}, thread())
    head = app.get_state(thread()).config
    for supersteps, match in [
        ([[({"x": 1}, "a")], [({"nope": 1}, "b")]], "'nope'"),
        ([[({"x": 1}, "a")], [({"x": 1}, "zzz")]], "no such node"),
        ([[({"x": 1}, None), ({"x": 2}, None)]], "as_node is required"),
        ([[(None, "__copy__"), ({"x": 2}, "a")]], "only update"),
        ([[({"x": 1}, "__end__")]], "takes no values"),
        ([["not an update"]], "StateUpdate"),
    ]:
        with pytest.raises(InvalidUpdateError, match=match):
            app.bulk_update_state(thread(), supersteps)
    assert app.get_state(thread()).config == head


def test_update_state_without_a_checkpointer_is_refused() -> None:
    from tether import ConfigError

    g = StateGraph(S)
    g.add_node("a", lambda s: {})
    g.add_edge("__start__", "a")
    with pytest.raises(ConfigError, match="checkpointer"):
        g.compile().bulk_update_state(thread(), [[({"x": 1}, "a")]])


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def any_saver(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    import uuid

    from tether.checkpoint import PostgresSaver, RedisSaver, SqliteSaver

    kind, name = request.param, f"t{uuid.uuid4().hex[:10]}"
    if kind == "memory":
        yield InMemorySaver()
        return
    if kind == "sqlite":
        saver: Any = SqliteSaver(tmp_path / "h.db")
    elif kind == "postgres":
        saver = PostgresSaver(request.getfixturevalue("postgres_dsn"), schema=name)
    else:
        saver = RedisSaver(request.getfixturevalue("redis_url"), prefix=name)
    yield saver
    saver.close()


def test_history_results_read_back_from_every_saver(any_saver: Any) -> None:
    # 80 steps: the list's chain snapshots along the way, and results still come out exact
    g = StateGraph(S)
    g.add_node("step", lambda s: {"log": [len(s["log"])], "x": len(s["log"])})
    g.add_edge("__start__", "step")
    g.add_conditional_edges("step", lambda s: "step" if len(s["log"]) < 80 else "__end__")
    app = g.compile(checkpointer=any_saver)
    app.invoke({"log": []}, {**thread(), "recursion_limit": 100})
    history = list(app.get_state_history(thread()))
    results = [t.result for snap in reversed(history) for t in snap.tasks if t.name == "step"]
    assert results == [{"log": [n], "x": n} for n in range(80)]


def test_get_state_at_the_head_is_live(api: Any) -> None:
    """A paused or failed parallel step: get_state at the head shows the finished siblings'
    writes (LangGraph's live view); the step's checkpoint, read by id, does not."""
    import operator
    from typing import Annotated, TypedDict

    class L(TypedDict):
        log: Annotated[list[str], operator.add]

    def side(state: L) -> dict[str, Any]:
        return {"log": ["side"]}

    def ask(state: L) -> dict[str, Any]:
        api.interrupt("q")
        return {"log": ["ask"]}

    g = api.StateGraph(L)
    g.add_node("side", side)
    g.add_node("ask", ask)
    g.add_edge(api.START, "side")
    g.add_edge(api.START, "ask")
    app = g.compile(checkpointer=api.InMemorySaver())
    config = {"configurable": {"thread_id": "live"}}
    app.invoke({"log": ["in"]}, config)
    head = app.get_state(config)
    assert head.values == {"log": ["in", "side"]} and head.next == ("ask",)
    by_id = app.get_state(head.config)
    assert by_id.values == {"log": ["in"]}
