"""State schemas with LangGraph's semantics, each run against tether and (when installed)
LangGraph: plain annotated classes, what a returned model writes, an input_schema instance as
input, and reducer keys that read their empty value before any write.

No ``from __future__ import annotations``: the schema classes are declared inside the tests,
and their annotations must be evaluated there."""

import dataclasses
import operator
from typing import Annotated, Any, TypedDict

import pydantic
import pytest
from tests._parity import LIBS, load, thread


class Plain:
    x: int
    log: Annotated[list, operator.add]
    other: str


@pytest.mark.parametrize("name", LIBS)
def test_a_plain_annotated_class_is_a_schema_and_nodes_get_a_dict(name: str) -> None:
    lib = load(name)
    seen: list[Any] = []

    def node(state: Any) -> dict[str, Any]:
        seen.append(state)
        return {"x": 1}

    g = lib.StateGraph(Plain)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    app = g.compile(checkpointer=lib.InMemorySaver())
    assert app.invoke({"other": "o"}, thread()) == {"x": 1, "log": [], "other": "o"}
    assert seen == [{"log": [], "other": "o"}]


class Counted(TypedDict):
    x: int
    log: Annotated[list, operator.add]
    n: Annotated[int, operator.add]


@pytest.mark.parametrize("name", LIBS)
def test_reducer_keys_read_their_empty_value_before_any_write(name: str) -> None:
    lib = load(name)
    seen: list[Any] = []

    def node(state: Any) -> dict[str, Any]:
        seen.append(dict(state))
        return {"x": 1}

    g = lib.StateGraph(Counted)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    app = g.compile(checkpointer=lib.InMemorySaver())
    assert app.invoke({"x": 0}, thread()) == {"x": 1, "log": [], "n": 0}
    assert seen == [{"x": 0, "log": [], "n": 0}]
    assert app.get_state(thread()).values == {"x": 1, "log": [], "n": 0}
    # a thread that never ran has no values at all
    assert app.get_state(thread("never")).values == {}


class Model(pydantic.BaseModel):
    x: int = 0
    log: Annotated[list, operator.add] = []
    other: str = "default"
    note: str | None = None


@pytest.mark.parametrize("name", LIBS)
def test_a_returned_model_writes_what_it_set_and_fields_whose_default_is_not_none(
    name: str,
) -> None:
    lib = load(name)
    seen: list[Any] = []

    def first(state: Model) -> Model:
        seen.append(state)
        return Model(x=5)  # note stays None: not written; other's default is written

    def second(state: Model) -> dict[str, Any]:
        seen.append(state)
        return {"note": "kept"}

    def third(state: Model) -> Model:
        seen.append(state)
        return Model(x=6, note=None)  # set explicitly: written

    g = lib.StateGraph(Model)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_node("third", third)
    g.add_edge(lib.START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", "third")
    app = g.compile(checkpointer=lib.InMemorySaver())
    out = app.invoke({"other": "o", "log": ["i"]}, thread())
    assert seen[0] == Model(x=0, log=["i"], other="o")
    assert seen[1] == Model(x=5, log=["i"], other="default")
    assert seen[2] == Model(x=5, log=["i"], other="default", note="kept")
    assert out == {"x": 6, "log": ["i"], "other": "default", "note": None}


class Answer(TypedDict):
    question: str
    answer: str | None
    log: Annotated[list, operator.add]


class Asked(pydantic.BaseModel):
    question: str
    answer: str | None = None


@dataclasses.dataclass
class AskedDC:
    question: str
    answer: str | None = None


@pytest.mark.parametrize("name", LIBS)
@pytest.mark.parametrize("given", ["model", "dataclass"])
def test_an_instance_of_the_input_schema_is_accepted_as_input(name: str, given: str) -> None:
    lib = load(name)
    schema: Any = Asked if given == "model" else AskedDC
    seen: list[Any] = []

    def node(state: Any) -> dict[str, Any]:
        seen.append(dict(state))
        return {"log": [state["question"]]}

    g = lib.StateGraph(Answer, input_schema=schema)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    app = g.compile(checkpointer=lib.InMemorySaver())
    out = app.invoke(schema(question="why?"), thread())
    assert out["log"] == ["why?"]
    # a model does not write the None it left at its default; a dataclass writes every field
    expected = {"question": "why?", "log": []}
    if given == "dataclass":
        expected["answer"] = None
    assert seen == [expected]


@pytest.mark.parametrize("name", LIBS)
def test_a_node_may_return_a_model_of_another_class(name: str) -> None:
    lib = load(name)

    def node(state: Answer) -> Asked:
        return Asked(question="from a model")

    g = lib.StateGraph(Answer)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    out = g.compile().invoke({"question": "q", "answer": "kept"})
    assert out == {"question": "from a model", "answer": "kept", "log": []}


@pytest.mark.parametrize("name", LIBS)
def test_version_v2_gives_the_output_as_the_output_schema(name: str) -> None:
    lib = load(name)

    def node(state: Model) -> dict[str, Any]:
        return {"x": state.x + 1}

    g = lib.StateGraph(Model)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    app = g.compile()
    result = app.invoke({"x": 1}, version="v2")
    assert type(result).__name__ == "GraphOutput"
    assert isinstance(result, lib.GraphOutput)
    assert result.value == Model(x=2)
    assert result.interrupts == ()
    assert app.invoke({"x": 1}) == {"x": 2, "log": []}  # v1: a dict
