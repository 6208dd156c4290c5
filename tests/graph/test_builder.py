"""StateGraph: schemas, reducers, nodes, edges, joins, conditional edges and compile errors."""

import dataclasses
import itertools
import operator
from typing import Annotated, Any, Literal, TypedDict

import pydantic
import pytest

from tether import (
    END,
    START,
    Command,
    GraphError,
    InvalidUpdateError,
    Send,
    StateGraph,
)


def _concat(left: list, right: list) -> list:
    return [*left, *right]


class State(TypedDict):
    log: Annotated[list, operator.add]
    value: int


def _append(name: str):
    def fn(state: Any) -> dict:
        return {"log": [name]}

    fn.__name__ = name
    return fn


def _chain(*names: str) -> StateGraph:
    g = StateGraph(State)
    for n in names:
        g.add_node(n, _append(n))
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g


# -- schemas -------------------------------------------------------------------------------


def test_typeddict_schema_nodes_get_a_dict() -> None:
    seen: list[Any] = []

    def node(state: State) -> dict:
        seen.append(state)
        return {"value": state["value"] + 1, "log": ["node"]}

    g = StateGraph(State)
    g.add_node("node", node)
    g.add_edge(START, "node")
    out = g.compile().invoke({"value": 1, "log": ["in"]})
    assert out == {"value": 2, "log": ["in", "node"]}
    assert isinstance(seen[0], dict)
    assert seen[0] == {"value": 1, "log": ["in"]}


def test_dataclass_schema_nodes_get_an_instance() -> None:
    @dataclasses.dataclass
    class DState:
        items: Annotated[list, operator.add] = dataclasses.field(default_factory=list)
        name: str = ""

    seen: list[Any] = []

    def node(state: DState) -> dict:
        seen.append(state)
        return {"items": [state.name], "name": state.name.upper()}

    g = StateGraph(DState)
    g.add_node("node", node)
    g.add_edge(START, "node")
    out = g.compile().invoke({"name": "x", "items": [1]})
    assert isinstance(seen[0], DState)
    assert seen[0].name == "x" and seen[0].items == [1]
    assert out == {"items": [1, "x"], "name": "X"}


def test_pydantic_schema_nodes_get_a_model() -> None:
    class PState(pydantic.BaseModel):
        items: Annotated[list[str], operator.add] = []
        count: int = 0

    seen: list[Any] = []

    def node(state: PState) -> dict:
        seen.append(state)
        return {"items": ["n"], "count": state.count + 1}

    g = StateGraph(PState)
    g.add_node("a", node)
    g.add_node("b", node)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    out = g.compile().invoke({"count": 5})
    assert all(isinstance(s, PState) for s in seen)
    assert [s.count for s in seen] == [5, 6]
    assert out["items"] == ["n", "n"]
    assert out["count"] == 7


def test_a_class_without_annotated_keys_is_a_graph_error() -> None:
    class NotASchema:
        x = 1

    with pytest.raises(GraphError, match="TypedDict, dataclass, pydantic model or a class"):
        StateGraph(NotASchema)
    with pytest.raises(GraphError, match="TypedDict, dataclass, pydantic model or a class"):
        StateGraph(int)


def test_reducer_operator_add_and_last_value() -> None:
    g = _chain("a", "b", "c")
    out = g.compile().invoke({"log": ["start"], "value": 3})
    assert out == {"log": ["start", "a", "b", "c"], "value": 3}


def test_custom_two_argument_reducer() -> None:
    calls: list[tuple[Any, Any]] = []

    def keep_max(current: int, new: int) -> int:
        calls.append((current, new))
        return max(current, new)

    class S(TypedDict):
        best: Annotated[int, keep_max]
        trail: Annotated[list, _concat]

    def low(state: S) -> dict:
        return {"best": 2, "trail": ["low"]}

    def high(state: S) -> dict:
        return {"best": 9, "trail": ["high"]}

    g = StateGraph(S)
    g.add_node("high", high)
    g.add_node("low", low)
    g.add_edge(START, "high")
    g.add_edge("high", "low")
    out = g.compile().invoke({"best": 5})
    assert out["best"] == 9
    assert out["trail"] == ["high", "low"]
    assert (9, 2) in calls


def test_reducer_lambda_is_accepted() -> None:
    class S(TypedDict):
        total: Annotated[int, lambda a, b: a * 10 + b]

    def one(state: S) -> dict:
        return {"total": 1}

    g = StateGraph(S)
    g.add_node("one", one)
    g.add_edge(START, "one")
    assert g.compile().invoke({"total": 4}) == {"total": 41}


def test_reducer_with_one_argument_is_rejected_naming_the_key() -> None:
    def bad(x: list) -> list:
        return x

    class S(TypedDict):
        things: Annotated[list, bad]

    with pytest.raises(GraphError, match="things"):
        StateGraph(S)


# -- input / output schemas ----------------------------------------------------------------


class Full(TypedDict):
    question: str
    scratch: Annotated[list, operator.add]
    answer: str


class In(TypedDict):
    question: str


class Out(TypedDict):
    answer: str


def _qa_graph() -> StateGraph:
    def think(state: Full) -> dict:
        return {"scratch": ["thought"], "answer": state["question"].upper()}

    g = StateGraph(Full, input_schema=In, output_schema=Out)
    g.add_node("think", think)
    g.add_edge(START, "think")
    g.add_edge("think", END)
    return g


def test_output_schema_filters_the_result() -> None:
    out = _qa_graph().compile().invoke({"question": "why"})
    assert out == {"answer": "WHY"}


def test_output_schema_filters_stream_values() -> None:
    chunks = list(_qa_graph().compile().stream({"question": "why"}, stream_mode="values"))
    assert chunks[-1] == {"answer": "WHY"}
    assert all(set(c) <= {"answer"} for c in chunks)


def test_input_key_outside_input_schema_is_rejected() -> None:
    app = _qa_graph().compile()
    with pytest.raises(InvalidUpdateError, match="scratch"):
        app.invoke({"question": "q", "scratch": ["injected"]})


def test_io_schema_keys_must_be_in_state_schema() -> None:
    class Stray(TypedDict):
        nope: int

    with pytest.raises(GraphError, match="nope"):
        StateGraph(Full, input_schema=Stray)
    with pytest.raises(GraphError, match="nope"):
        StateGraph(Full, output_schema=Stray)


# -- nodes ---------------------------------------------------------------------------------


def test_add_node_infers_name_from_function() -> None:
    def my_step(state: State) -> dict:
        return {"log": ["my_step"]}

    g = StateGraph(State)
    g.add_node(my_step)
    g.add_edge(START, "my_step")
    assert g.compile().invoke({})["log"] == ["my_step"]


def test_add_node_lambda_without_name_is_rejected() -> None:
    g = StateGraph(State)
    with pytest.raises(GraphError):
        g.add_node(lambda s: {})


def test_node_with_config_argument_receives_the_config() -> None:
    got: list[Any] = []

    def with_config(state: State, config: dict) -> dict:
        got.append(config["configurable"]["user"])
        return {"log": ["cfg"]}

    def plain(state: State) -> dict:
        return {"log": ["plain"]}

    g = StateGraph(State)
    g.add_node("with_config", with_config)
    g.add_node("plain", plain)
    g.add_edge(START, "with_config")
    g.add_edge("with_config", "plain")
    out = g.compile().invoke({}, {"configurable": {"user": "ada"}})
    assert got == ["ada"]
    assert out["log"] == ["cfg", "plain"]


def test_async_and_sync_nodes() -> None:
    async def fetch(state: State) -> dict:
        return {"log": ["async"], "value": 1}

    def finish(state: State) -> dict:
        return {"log": ["sync"], "value": state["value"] + 1}

    async def also_config(state: State, config: dict) -> dict:
        return {"log": [config["configurable"]["tag"]]}

    g = StateGraph(State)
    g.add_node(fetch)
    g.add_node(finish)
    g.add_node(also_config)
    g.add_edge(START, "fetch")
    g.add_edge("fetch", "finish")
    g.add_edge("finish", "also_config")
    out = g.compile().invoke({}, {"configurable": {"tag": "t"}})
    assert out == {"log": ["async", "sync", "t"], "value": 2}


def test_add_node_returns_the_builder_for_chaining() -> None:
    g = StateGraph(State)
    assert g.add_node("a", _append("a")) is g
    assert g.add_edge(START, "a") is g


# -- edges ---------------------------------------------------------------------------------


def test_fan_out_edges_run_in_one_step() -> None:
    g = StateGraph(State)
    for n in ("a", "b", "c"):
        g.add_node(n, _append(n))
    g.add_edge(START, "a")
    g.add_edge("a", "c")
    g.add_edge("a", "b")
    chunks = list(g.compile().stream({}))
    # b and c run in the same step (after a); updates come in node-name order
    assert chunks == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}, {"c": {"log": ["c"]}}]


def test_join_runs_target_once_after_both_in_same_step() -> None:
    calls: list[list] = []

    def c(state: State) -> dict:
        calls.append(list(state["log"]))
        return {"log": ["c"]}

    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_node("b", _append("b"))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "c")
    out = g.compile().invoke({})
    assert calls == [["a", "b"]]
    assert out["log"] == ["a", "b", "c"]


def test_join_waits_for_a_branch_that_finishes_in_a_later_step() -> None:
    calls: list[list] = []

    def c(state: State) -> dict:
        calls.append(list(state["log"]))
        return {"log": ["c"]}

    g = StateGraph(State)
    for n in ("a", "b1", "b2", "b3"):
        g.add_node(n, _append(n))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "b1")
    g.add_edge("b1", "b2")
    g.add_edge("b2", "b3")
    g.add_edge(["a", "b3"], "c")
    g.add_edge("c", END)
    out = g.compile().invoke({})
    assert len(calls) == 1
    assert calls[0] == ["a", "b1", "b2", "b3"]
    assert out["log"] == ["a", "b1", "b2", "b3", "c"]


def test_join_with_checkpointer_across_steps() -> None:
    from tether.checkpoint import InMemorySaver

    calls: list[int] = []

    def c(state: State) -> dict:
        calls.append(1)
        return {"log": ["c"]}

    g = StateGraph(State)
    for n in ("a", "b1", "b2"):
        g.add_node(n, _append(n))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "b1")
    g.add_edge("b1", "b2")
    g.add_edge(["a", "b2"], "c")
    app = g.compile(checkpointer=InMemorySaver())
    out = app.invoke({}, {"configurable": {"thread_id": "j"}})
    assert calls == [1]
    assert out["log"] == ["a", "b1", "b2", "c"]


def test_join_vs_plain_edges_plain_runs_target_twice() -> None:
    """Contrast: with two plain edges from steps of different depth, c runs after each."""
    calls: list[int] = []

    def c(state: State) -> dict:
        calls.append(1)
        return {}

    g = StateGraph(State)
    for n in ("a", "b1", "b2"):
        g.add_node(n, _append(n))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "b1")
    g.add_edge("b1", "b2")
    g.add_edge("a", "c")
    g.add_edge("b2", "c")
    g.compile().invoke({})
    assert len(calls) == 2


def test_add_sequence_chains_nodes() -> None:
    def one(state: State) -> dict:
        return {"log": ["one"]}

    def two(state: State) -> dict:
        return {"log": ["two"]}

    g = StateGraph(State)
    g.add_sequence([one, ("named", _append("named")), two])
    g.add_edge(START, "one")
    out = g.compile().invoke({})
    assert out["log"] == ["one", "named", "two"]


def test_add_sequence_empty_is_an_error() -> None:
    with pytest.raises(GraphError):
        StateGraph(State).add_sequence([])


def test_set_entry_and_finish_point() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.set_entry_point("a")
    g.set_finish_point("a")
    assert g.compile().invoke({})["log"] == ["a"]


# -- conditional edges ---------------------------------------------------------------------


def _branching(router: Any, path_map: Any = None, targets: tuple[str, ...] = ("x", "y")):
    g = StateGraph(State)
    g.add_node("src", _append("src"))
    for t in targets:
        g.add_node(t, _append(t))
    g.add_edge(START, "src")
    g.add_conditional_edges("src", router, path_map)
    return g.compile()


def test_router_returns_a_name() -> None:
    app = _branching(lambda s: "y" if s["value"] > 0 else "x")
    assert app.invoke({"value": 1})["log"] == ["src", "y"]
    assert app.invoke({"value": 0})["log"] == ["src", "x"]


def test_router_sees_the_source_nodes_own_writes() -> None:
    def src(state: State) -> dict:
        return {"value": 7}

    g = StateGraph(State)
    g.add_node("src", src)
    g.add_node("x", _append("x"))
    g.add_node("y", _append("y"))
    g.add_edge(START, "src")
    g.add_conditional_edges("src", lambda s: "y" if s["value"] == 7 else "x")
    assert g.compile().invoke({"value": 0})["log"] == ["y"]


def test_router_returns_a_list() -> None:
    app = _branching(lambda s: ["y", "x"])
    chunks = list(app.stream({}))
    assert chunks[0] == {"src": {"log": ["src"]}}
    assert chunks[1:] == [{"x": {"log": ["x"]}}, {"y": {"log": ["y"]}}]


def test_router_returns_end() -> None:
    app = _branching(lambda s: END)
    assert app.invoke({})["log"] == ["src"]


def test_router_with_dict_path_map() -> None:
    app = _branching(lambda s: s["value"] > 0, {True: "y", False: "x"})
    assert app.invoke({"value": 1})["log"] == ["src", "y"]
    assert app.invoke({"value": -1})["log"] == ["src", "x"]


def test_router_with_dict_path_map_to_end() -> None:
    app = _branching(lambda s: "stop", {"stop": END, "go": "x"}, targets=("x",))
    assert app.invoke({})["log"] == ["src"]


def test_router_with_list_path_map() -> None:
    app = _branching(lambda s: "x", ["x", "y"])
    assert app.invoke({})["log"] == ["src", "x"]


def test_router_result_outside_path_map_is_invalid_update() -> None:
    app = _branching(lambda s: "z", {"x": "x", "y": "y"})
    with pytest.raises(InvalidUpdateError, match="'z'"):
        app.invoke({})


def test_router_returns_unknown_node_is_invalid_update() -> None:
    app = _branching(lambda s: "nowhere")
    with pytest.raises(InvalidUpdateError, match="nowhere"):
        app.invoke({})


def test_router_returns_sends_from_a_node() -> None:
    class S(TypedDict):
        results: Annotated[list, operator.add]

    def worker(arg: dict) -> dict:
        return {"results": [arg["n"] * 10]}

    g = StateGraph(S)
    g.add_node("src", lambda s: {"results": ["src"]})
    g.add_node("worker", worker)
    g.add_edge(START, "src")
    g.add_conditional_edges("src", lambda s: [Send("worker", {"n": n}) for n in (3, 1, 2)])
    assert g.compile().invoke({})["results"] == ["src", 30, 10, 20]


def test_start_router_called_once() -> None:
    calls: list[int] = []

    def router(state: State) -> str:
        calls.append(1)
        return "x"

    g = StateGraph(State)
    g.add_node("x", _append("x"))
    g.add_conditional_edges(START, router)
    g.compile().invoke({})
    assert calls == [1]


def test_router_returns_sends_from_start() -> None:
    class S(TypedDict):
        results: Annotated[list, operator.add]

    def worker(arg: dict) -> dict:
        return {"results": [arg["n"] * 10]}

    g = StateGraph(S)
    g.add_node("worker", worker)
    g.add_conditional_edges(START, lambda s: [Send("worker", {"n": n}) for n in (3, 1, 2)])
    assert g.compile().invoke({})["results"] == [30, 10, 20]


def test_router_with_config_and_async_router() -> None:
    async def router(state: State, config: dict) -> str:
        return config["configurable"]["to"]

    app = _branching(router)
    assert app.invoke({}, {"configurable": {"to": "y"}})["log"] == ["src", "y"]


def test_conditional_edge_from_start() -> None:
    g = StateGraph(State)
    g.add_node("x", _append("x"))
    g.add_node("y", _append("y"))
    g.add_conditional_edges(START, lambda s: "x" if s["value"] else "y")
    app = g.compile()
    assert app.invoke({"value": 1})["log"] == ["x"]
    assert app.invoke({"value": 0})["log"] == ["y"]


# -- compile-time errors -------------------------------------------------------------------


def test_unknown_node_in_edge() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_edge(START, "a")
    g.add_edge("a", "ghost")
    with pytest.raises(GraphError, match="ghost"):
        g.compile()


def test_unknown_source_node_in_edge() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_edge(START, "a")
    g.add_edge("phantom", "a")
    with pytest.raises(GraphError, match="phantom"):
        g.compile()


def test_unknown_node_in_path_map() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "go", {"go": "ghost"})
    with pytest.raises(GraphError, match="ghost"):
        g.compile()


def test_unknown_node_in_path_map_list() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "ghost", ["ghost"])
    with pytest.raises(GraphError, match="ghost"):
        g.compile()


def test_unknown_source_of_conditional_edge() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_edge(START, "a")
    g.add_conditional_edges("phantom", lambda s: "a")
    with pytest.raises(GraphError, match="phantom"):
        g.compile()


def test_unknown_node_in_join() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_node("c", _append("c"))
    g.add_edge(START, "a")
    g.add_edge(["a", "ghost"], "c")
    with pytest.raises(GraphError, match="ghost"):
        g.compile()


def test_unknown_target_of_join() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_node("b", _append("b"))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "ghost")
    with pytest.raises(GraphError, match="ghost"):
        g.compile()


def test_a_node_without_edges_into_it_compiles_and_never_runs() -> None:
    # LangGraph accepts it (it may be reached through Command(goto=...)); so does tether.
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_node("island", _append("island"))
    g.add_edge(START, "a")
    assert g.compile().invoke({})["log"] == ["a"]


def _goto_graph(**node_kwargs: Any) -> StateGraph:
    def hop(state: State) -> Command:
        return Command(goto="target", update={"log": ["hop"]})

    g = StateGraph(State)
    g.add_node("hop", hop, **node_kwargs)
    g.add_node("target", _append("target"))
    g.add_edge(START, "hop")
    return g


def test_command_target_needs_no_declaration() -> None:
    app = _goto_graph().compile()
    assert app.invoke({})["log"] == ["hop", "target"]


def test_goto_to_an_unknown_node_fails_at_run_time_naming_it() -> None:
    def hop(state: State) -> Command:
        return Command(goto="nowhere", update={"log": ["hop"]})

    g = StateGraph(State)
    g.add_node("hop", hop)
    g.add_edge(START, "hop")
    with pytest.raises(InvalidUpdateError, match="'nowhere'"):
        g.compile().invoke({})


def test_destinations_make_a_node_reachable() -> None:
    app = _goto_graph(destinations=["target"]).compile()
    assert app.invoke({})["log"] == ["hop", "target"]


def test_destinations_naming_unknown_node_is_an_error() -> None:
    g = _goto_graph(destinations=["target", "ghost"])
    with pytest.raises(GraphError, match="ghost"):
        g.compile()


def _annotated_hop(state: State) -> Command[Literal["target", "other"]]:
    return Command(goto="other", update={"log": ["hop"]})


def test_command_literal_annotation_makes_nodes_reachable() -> None:
    g = StateGraph(State)
    g.add_node("hop", _annotated_hop)
    g.add_node("target", _append("target"))
    g.add_node("other", _append("other"))
    g.add_edge(START, "hop")
    assert g.compile().invoke({})["log"] == ["hop", "other"]


def test_conditional_edge_without_path_map_reaches_everything() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_node("b", _append("b"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: END)
    g.compile()  # b could be routed to: no error


@pytest.mark.parametrize("name", [START, END, "__x__", "__interrupt__", "a:b", "", "x|y"])
def test_reserved_or_bad_node_names(name: str) -> None:
    g = StateGraph(State)
    with pytest.raises(GraphError) as err:
        g.add_node(name, _append("n"))
    if name:
        assert repr(name) in str(err.value)


def test_duplicate_node() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    with pytest.raises(GraphError, match="'a'"):
        g.add_node("a", _append("a"))


def test_no_entry_point() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    g.add_edge("a", END)
    with pytest.raises(GraphError, match="entry point"):
        g.compile()


def test_empty_graph_has_no_entry_point() -> None:
    with pytest.raises(GraphError, match="entry point"):
        StateGraph(State).compile()


def test_edge_into_start_and_out_of_end_are_errors() -> None:
    g = StateGraph(State)
    g.add_node("a", _append("a"))
    with pytest.raises(GraphError):
        g.add_edge("a", START)
    with pytest.raises(GraphError):
        g.add_edge(END, "a")
    with pytest.raises(GraphError):
        g.add_edge([START, "a"], "a")
    with pytest.raises(GraphError):
        g.add_conditional_edges(END, lambda s: "a")


def test_non_callable_node_and_router() -> None:
    g = StateGraph(State)
    with pytest.raises(GraphError, match="'a'"):
        g.add_node("a", 42)  # type: ignore[arg-type]
    with pytest.raises(GraphError):
        g.add_conditional_edges(START, "not callable")  # type: ignore[arg-type]


def test_compile_does_not_run_anything() -> None:
    calls: list[int] = []

    def a(state: State) -> dict:
        calls.append(1)
        return {}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_edge(START, "a")
    g.compile()
    assert calls == []


# -- constructor arguments: context_schema and LangGraph's deprecated names -----------------


@dataclasses.dataclass
class _Ctx:
    user: str


def _context_app(g: StateGraph) -> Any:
    def n(state: State, runtime: Any) -> dict:
        return {"log": [runtime.context]}

    g.add_node("n", n)
    g.add_edge(START, "n")
    return g.compile()


def test_context_schema_is_the_second_positional_argument() -> None:
    app = _context_app(StateGraph(State, _Ctx))
    assert app.invoke({}, context={"user": "bob"})["log"] == [_Ctx("bob")]


@pytest.mark.parametrize(
    ("old", "value"), [("config_schema", _Ctx), ("input", State), ("output", State)]
)
def test_deprecated_argument_names_warn_and_still_work(old: str, value: Any) -> None:
    with pytest.warns(DeprecationWarning, match=f"StateGraph\\({old}=...\\) is deprecated"):
        g = StateGraph(State, **{old: value})
    out = _context_app(g).invoke({}, context={"user": "bob"})
    assert out["log"] == [_Ctx("bob") if old == "config_schema" else {"user": "bob"}]


def test_unknown_constructor_argument_is_a_graph_error() -> None:
    with pytest.raises(GraphError, match=r"unknown arguments \['state'\]"):
        StateGraph(State, state=State)


def test_compile_passes_the_store_through_untouched() -> None:
    store = object()
    g = StateGraph(State)
    g.add_node("n", lambda s, store: {"log": [store is not None]})
    g.add_edge(START, "n")
    assert g.compile(store=store).store is store
    assert g.compile(store=store).invoke({})["log"] == [True]
    assert g.compile().invoke({})["log"] == [False]


def test_add_node_refuses_what_is_not_a_retry_policy_by_name() -> None:
    from tether import RetryPolicy

    g = StateGraph(State)
    for bad in ([], [RetryPolicy(), "x"], "policy"):
        with pytest.raises(GraphError, match="'a': retry_policy must be a RetryPolicy"):
            g.add_node("a", _append("a"), retry_policy=bad)  # type: ignore[arg-type]
