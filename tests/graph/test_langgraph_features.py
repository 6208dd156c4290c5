"""LangGraph 1.x features, each run as one program against tether and (when installed)
against LangGraph, with the same observable result: Overwrite, defer, managed values,
NodeInterrupt, an empty Command, the checkpointer check.

No ``from __future__ import annotations``: the state classes are declared inside the tests,
and their annotations must be evaluated there."""

import operator
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import LIBS, load, thread


class State(TypedDict):
    log: Annotated[list, operator.add]
    n: int


def _writer(value: Any) -> Any:
    def node(state: State) -> dict[str, Any]:
        return {"log": value}

    return node


# -- Overwrite ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", LIBS)
def test_overwrite_replaces_a_reducer_value(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_node("b", _writer(lib.Overwrite(["B"])))
    g.add_node("c", _writer(["c"]))
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    assert g.compile().invoke({"log": ["in"]})["log"] == ["B", "c"]


@pytest.mark.parametrize("name", LIBS)
def test_overwrite_drops_the_other_writes_of_its_step(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_node("b", _writer(lib.Overwrite(["B"])))
    g.add_node("z", _writer(["z"]))
    for node in ("a", "b", "z"):
        g.add_edge(lib.START, node)
    assert g.compile().invoke({"log": ["in"]})["log"] == ["B"]


@pytest.mark.parametrize("name", LIBS)
def test_two_overwrites_of_one_key_in_a_step_are_an_error(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(State)
    g.add_node("a", _writer(lib.Overwrite(["A"])))
    g.add_node("b", _writer(lib.Overwrite(["B"])))
    g.add_edge(lib.START, "a")
    g.add_edge(lib.START, "b")
    with pytest.raises(lib.InvalidUpdateError, match="Overwrite"):
        g.compile().invoke({"log": []})


@pytest.mark.parametrize("name", LIBS)
def test_overwrite_in_dict_form_and_in_update_state(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(State)
    g.add_node("a", _writer({"__overwrite__": ["A"]}))
    g.add_edge(lib.START, "a")
    app = g.compile(checkpointer=lib.InMemorySaver())
    assert app.invoke({"log": ["in"]}, thread())["log"] == ["A"]
    app.update_state(thread(), {"log": lib.Overwrite(["U"])})
    assert app.get_state(thread()).values["log"] == ["U"]


def test_an_overwritten_delta_chain_reads_back_from_storage() -> None:
    # Regression for the storage: an Overwrite after deltas is stored as a snapshot, so a
    # fresh load (another process) folds to the same value.
    lib = load("tether")
    saver = lib.InMemorySaver()
    g = lib.StateGraph(State)
    g.add_node("grow", _writer(["x"]))
    g.add_edge(lib.START, "grow")
    app = g.compile(checkpointer=saver)
    for _ in range(3):
        app.invoke({"log": ["in"]}, thread())
    app.update_state(thread(), {"log": lib.Overwrite(["reset"])})
    app.invoke({"log": ["after"]}, thread())
    fresh = g.compile(checkpointer=saver)
    assert fresh.get_state(thread()).values["log"] == ["reset", "after", "x"]


def test_overwrite_of_a_key_without_reducer_is_its_value() -> None:
    # LangGraph stores the Overwrite object itself in a plain key; tether stores the value.
    lib = load("tether")
    g = lib.StateGraph(State)
    g.add_node("a", lambda s: {"n": lib.Overwrite(5)})
    g.add_edge(lib.START, "a")
    assert g.compile().invoke({"log": [], "n": 1})["n"] == 5


# -- defer --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LIBS)
def test_a_deferred_node_runs_once_everything_else_is_done(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_node("b", _writer(["b"]))
    g.add_node("b2", _writer(["b2"]))
    g.add_node("b3", _writer(["b3"]))
    g.add_node("last", lambda s: {"log": [f"last saw {len(s['log'])}"]}, defer=True)
    g.add_edge(lib.START, "a")
    g.add_edge(lib.START, "b")
    g.add_edge("a", "last")
    g.add_edge("b", "b2")
    g.add_edge("b2", "b3")
    g.add_edge("b2", "last")
    out = g.compile().invoke({"log": []})
    assert out["log"] == ["a", "b", "b2", "b3", "last saw 4"]


@pytest.mark.parametrize("name", LIBS)
def test_a_deferred_node_with_nothing_else_to_run_runs_at_once(name: str) -> None:
    lib = load(name)
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_node("last", _writer(["last"]), defer=True)
    g.add_edge(lib.START, "a")
    g.add_edge("a", "last")
    app = g.compile(checkpointer=lib.InMemorySaver())
    assert app.invoke({"log": []}, thread())["log"] == ["a", "last"]
    steps = [s.next for s in app.get_state_history(thread())]
    assert ("last",) in steps


def test_a_deferred_node_waits_across_a_pause() -> None:
    # The waiting node is stored with the checkpoint: a run resumed in another process
    # still runs it at the end.
    lib = load("tether")
    saver = lib.InMemorySaver()
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_node("b", _writer(["b"]))
    g.add_node("b2", _writer(["b2"]))
    g.add_node("last", _writer(["last"]), defer=True)
    g.add_edge(lib.START, "a")
    g.add_edge(lib.START, "b")
    g.add_edge("a", "last")
    g.add_edge("b", "b2")
    g.compile(checkpointer=saver, interrupt_before=["b2"]).invoke({"log": []}, thread())
    out = g.compile(checkpointer=saver).invoke(None, thread())
    assert out["log"] == ["a", "b", "b2", "last"]


# -- managed values -----------------------------------------------------------------------


@pytest.mark.parametrize("name", LIBS)
def test_managed_values_count_down_to_the_recursion_limit(name: str) -> None:
    lib = load(name)

    class Loop(TypedDict):
        log: Annotated[list, operator.add]
        remaining: lib.RemainingSteps  # type: ignore[name-defined]
        last: lib.IsLastStep  # type: ignore[name-defined]

    def step(state: Loop) -> dict[str, Any]:
        return {"log": [(state["remaining"], state["last"])]}

    g = lib.StateGraph(Loop)
    g.add_node("step", step)
    g.add_edge(lib.START, "step")
    g.add_conditional_edges("step", lambda s: lib.END if s["last"] else "step")
    out = g.compile().invoke({"log": []}, {"recursion_limit": 5})
    assert out == {"log": [(4, False), (3, False), (2, False), (1, True)]}


@pytest.mark.parametrize("name", LIBS)
def test_managed_values_are_not_state(name: str) -> None:
    lib = load(name)

    class Loop(TypedDict):
        log: Annotated[list, operator.add]
        remaining: lib.RemainingSteps  # type: ignore[name-defined]

    g = lib.StateGraph(Loop)
    g.add_node("a", lambda s: {"log": [s["remaining"]]})
    g.add_edge(lib.START, "a")
    app = g.compile(checkpointer=lib.InMemorySaver())
    out = app.invoke({"log": []}, {**thread(), "recursion_limit": 10})
    assert out == {"log": [9]}
    assert app.get_state(thread()).values == {"log": [9]}


def test_writing_a_managed_value_is_an_error_naming_it() -> None:
    from tether.managed import RemainingSteps

    lib = load("tether")

    class Loop(TypedDict):
        log: Annotated[list, operator.add]
        remaining: RemainingSteps

    g = lib.StateGraph(Loop)
    g.add_node("a", lambda s: {"remaining": 3})
    g.add_edge(lib.START, "a")
    with pytest.raises(lib.InvalidUpdateError, match="'remaining', a managed value"):
        g.compile().invoke({"log": []})


def test_pydantic_state_reads_managed_values_and_returns_itself() -> None:
    import pydantic

    from tether.managed import RemainingSteps

    lib = load("tether")

    class Model(pydantic.BaseModel):
        log: Annotated[list, operator.add] = []
        remaining: RemainingSteps = 0

    def node(state: Model) -> Model:
        return Model(log=[state.remaining], remaining=state.remaining)

    g = lib.StateGraph(Model)
    g.add_node("a", node)
    g.add_edge(lib.START, "a")
    assert g.compile().invoke({"log": []}, {"recursion_limit": 7})["log"] == [6]


# -- NodeInterrupt ------------------------------------------------------------------------


@pytest.mark.parametrize("name", LIBS)
def test_node_interrupt_pauses_with_its_value_and_reruns_the_node(name: str) -> None:
    lib = load(name)
    runs: list[int] = []

    def guard(state: State) -> dict[str, Any]:
        runs.append(state["n"])
        if state["n"] > 5:
            raise lib.NodeInterrupt(f"n={state['n']} is too big")
        return {"log": ["ok"]}

    g = lib.StateGraph(State)
    g.add_node("guard", guard)
    g.add_edge(lib.START, "guard")
    app = g.compile(checkpointer=lib.InMemorySaver())
    with pytest.warns() if name == "langgraph" else _no_warning():
        out = app.invoke({"log": [], "n": 9}, thread())
    [pause] = out["__interrupt__"]
    assert pause.value == "n=9 is too big"
    assert app.get_state(thread()).next == ("guard",)
    app.update_state(thread(), {"n": 1})
    assert app.invoke(None, thread())["log"] == ["ok"]
    assert runs[-1] == 1


def test_node_interrupt_raised_again_after_an_answer_pauses_anew() -> None:
    lib = load("tether")
    from tether import Command

    def guard(state: State) -> dict[str, Any]:
        raise lib.NodeInterrupt("still no")

    g = lib.StateGraph(State)
    g.add_node("guard", guard)
    g.add_edge(lib.START, "guard")
    app = g.compile(checkpointer=lib.InMemorySaver())
    first = app.invoke({"log": []}, thread())["__interrupt__"][0]
    second = app.invoke(Command(resume="go"), thread())["__interrupt__"][0]
    assert second.value == "still no"
    assert second.id != first.id


def test_except_exception_cannot_swallow_a_pause_but_except_graph_interrupt_can_see_it() -> None:
    from tether import interrupt

    lib = load("tether")
    seen: list[str] = []

    def node(state: State) -> dict[str, Any]:
        try:
            interrupt("question")
        except Exception:  # must not catch the pause
            seen.append("exception")
        except lib.GraphInterrupt:
            seen.append("graph-interrupt")
            raise
        return {"log": ["answered"]}

    g = lib.StateGraph(State)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    out = g.compile(checkpointer=lib.InMemorySaver()).invoke({"log": []}, thread())
    assert out["__interrupt__"][0].value == "question"
    assert seen == ["graph-interrupt"]


class _no_warning:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- input and compile checks -------------------------------------------------------------


def test_an_empty_command_is_an_error_naming_it() -> None:
    from tether import Command, EmptyInputError

    lib = load("tether")
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_edge(lib.START, "a")
    app = g.compile(checkpointer=lib.InMemorySaver())
    app.invoke({"log": []}, thread())
    with pytest.raises(EmptyInputError, match=r"empty Command\(\)"):
        app.invoke(Command(), thread())
    assert app.get_state(thread()).values["log"] == ["a"]  # nothing ran


@pytest.mark.parametrize("bad", [object(), "memory", True])
def test_compile_refuses_what_is_not_a_saver(bad: object) -> None:
    from tether import ConfigError

    lib = load("tether")
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_edge(lib.START, "a")
    with pytest.raises(ConfigError, match="tether saver"):
        g.compile(checkpointer=bad)


def test_compile_takes_false_as_no_checkpointer() -> None:
    lib = load("tether")
    g = lib.StateGraph(State)
    g.add_node("a", _writer(["a"]))
    g.add_edge(lib.START, "a")
    app = g.compile(checkpointer=False)
    assert app.checkpointer is None
    assert app.invoke({"log": []})["log"] == ["a"]
