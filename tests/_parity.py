"""One program, two engines. The ``api`` fixture runs a test on tether and, when LangGraph is
installed, on LangGraph, so a test asserts that a ported program behaves the same; ``load(lib)``
gives the names a test needs, imported from either library by the same paths.

tests/conftest.py makes the fixture available to every test module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest


@dataclass(frozen=True)
class Api:
    """The names a LangGraph program imports, from one engine."""

    name: str
    StateGraph: Any
    START: str
    END: str
    Command: Any
    Send: Any
    interrupt: Any
    RetryPolicy: Any
    entrypoint: Any
    task: Any
    InMemorySaver: Any
    Runtime: Any
    get_runtime: Any
    get_config: Any
    get_store: Any
    get_stream_writer: Any

    @property
    def is_tether(self) -> bool:
        return self.name == "tether"


def _load(root: str, saver_module: str) -> Api:
    def mod(name: str) -> Any:
        return importlib.import_module(f"{root}.{name}" if name else root)

    # tether's top level holds the names these tests need from langgraph.types / .graph
    types = mod("types") if root == "langgraph" else mod("")
    consts = mod("graph") if root == "langgraph" else mod("")
    graph, func, runtime, config = mod("graph"), mod("func"), mod("runtime"), mod("config")
    return Api(
        name=root,
        StateGraph=graph.StateGraph,
        START=consts.START,
        END=consts.END,
        Command=types.Command,
        Send=types.Send,
        interrupt=types.interrupt,
        RetryPolicy=types.RetryPolicy,
        entrypoint=func.entrypoint,
        task=func.task,
        InMemorySaver=importlib.import_module(saver_module).InMemorySaver,
        Runtime=runtime.Runtime,
        get_runtime=runtime.get_runtime,
        get_config=config.get_config,
        get_store=config.get_store,
        get_stream_writer=config.get_stream_writer,
    )


def tether_api() -> Api:
    return _load("tether", "tether.checkpoint")


@pytest.fixture(params=["tether", "langgraph"])
def api(request: pytest.FixtureRequest) -> Api:
    if request.param == "langgraph":
        pytest.importorskip("langgraph")
        return _load("langgraph", "langgraph.checkpoint.memory")
    return tether_api()


# -- names by path, for tests that parametrize over LIBS ------------------------------------

LIBS = ["tether", "langgraph"]

_NAMES = {
    "graph": ["StateGraph", "START", "END"],
    "types": [
        "Command",
        "Send",
        "Overwrite",
        "CachePolicy",
        "RetryPolicy",
        "StateUpdate",
        "GraphOutput",
        "interrupt",
        "TimeoutPolicy",
    ],
    "errors": [
        "InvalidUpdateError",
        "GraphRecursionError",
        "NodeInterrupt",
        "GraphInterrupt",
        "NodeTimeoutError",
    ],
    "runtime": ["Runtime"],
    "config": ["get_stream_writer"],
    "func": ["task", "entrypoint"],
    "managed": ["RemainingSteps", "IsLastStep"],
    "checkpoint.memory": ["InMemorySaver"],
    "cache.memory": ["InMemoryCache"],
}


def load(lib: str) -> SimpleNamespace:
    """The names of ``_NAMES`` from ``lib``; skips the test when LangGraph is absent."""
    if lib == "langgraph":
        pytest.importorskip("langgraph")
    found = {}
    for path, names in _NAMES.items():
        module = importlib.import_module(f"{lib}.{path}")
        found.update({n: getattr(module, n) for n in names})
    return SimpleNamespace(name=lib, **found)


def thread(tid: str = "t") -> dict[str, object]:
    return {"configurable": {"thread_id": tid}}
