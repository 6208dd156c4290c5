"""A port is ``s/langgraph/tether/``: every supported LangGraph 1.x import path exists under
tether with the same names."""

import importlib

import pytest

PATHS: dict[str, list[str]] = {
    "graph": ["StateGraph", "START", "END", "MessagesState", "add_messages"],
    "graph.message": ["MessagesState", "add_messages", "REMOVE_ALL_MESSAGES"],
    "graph.state": ["StateGraph", "CompiledStateGraph"],
    "types": [
        "Command",
        "Send",
        "interrupt",
        "Interrupt",
        "RetryPolicy",
        "CachePolicy",
        "StreamWriter",
        "StateSnapshot",
        "Overwrite",
        "Durability",
        "StreamMode",
        "GraphOutput",
        "StateUpdate",
        "TimeoutPolicy",
    ],
    "func": ["entrypoint", "task"],
    "managed": ["RemainingSteps", "IsLastStep"],
    "errors": [
        "GraphRecursionError",
        "InvalidUpdateError",
        "GraphInterrupt",
        "NodeInterrupt",
        "EmptyInputError",
        "GraphBubbleUp",
        "NodeTimeoutError",
    ],
    "constants": ["START", "END", "TAG_HIDDEN", "TAG_NOSTREAM", "CONF"],
    "cache.memory": ["InMemoryCache"],
    "checkpoint.memory": ["InMemorySaver", "MemorySaver"],
    "checkpoint.sqlite": ["SqliteSaver"],
    "checkpoint.postgres": ["PostgresSaver"],
}

CASES = [(path, name) for path, names in PATHS.items() for name in names]


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p}.{n}" for p, n in CASES])
def test_tether_offers_the_langgraph_name(path: str, name: str) -> None:
    module = importlib.import_module(f"tether.{path}")
    assert getattr(module, name) is not None
    exec(f"from tether.{path} import {name}", {})


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p}.{n}" for p, n in CASES])
def test_the_list_is_langgraphs(path: str, name: str) -> None:
    # Guards the list itself: each entry is a real LangGraph path and name.
    pytest.importorskip("langgraph")
    if path == "checkpoint.postgres":
        pytest.importorskip("langgraph.checkpoint.postgres")
    if path == "checkpoint.sqlite":
        pytest.importorskip("langgraph.checkpoint.sqlite")
    module = importlib.import_module(f"langgraph.{path}")
    assert hasattr(module, name)


def test_same_objects_under_both_paths() -> None:
    import tether
    from tether.checkpoint.memory import InMemorySaver, MemorySaver
    from tether.graph.state import CompiledStateGraph
    from tether.types import GraphOutput, RunResult

    assert MemorySaver is InMemorySaver is tether.checkpoint.InMemorySaver
    assert CompiledStateGraph is tether.CompiledGraph
    assert GraphOutput is RunResult is tether.RunResult


def test_constants_have_langgraphs_values() -> None:
    from tether.constants import CONF, END, START, TAG_HIDDEN, TAG_NOSTREAM
    from tether.graph.message import REMOVE_ALL_MESSAGES

    assert (START, END, CONF) == ("__start__", "__end__", "configurable")
    assert (TAG_NOSTREAM, TAG_HIDDEN) == ("nostream", "langsmith:hidden")
    assert REMOVE_ALL_MESSAGES == "__remove_all__"


def test_interrupt_from_tether_types_pauses_a_node() -> None:
    import operator
    from typing import Annotated, TypedDict

    from tether.checkpoint.memory import MemorySaver
    from tether.graph import START, StateGraph
    from tether.types import Command, interrupt

    class S(TypedDict):
        log: Annotated[list, operator.add]

    g = StateGraph(S)
    g.add_node("ask", lambda s: {"log": [interrupt("name?")]})
    g.add_edge(START, "ask")
    app = g.compile(checkpointer=MemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    assert app.invoke({"log": []}, config)["__interrupt__"][0].value == "name?"
    assert app.invoke(Command(resume="Ada"), config)["log"] == ["Ada"]
