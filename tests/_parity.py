"""Run one program against tether and against LangGraph (when installed): the names a test
needs, imported from either library by the same paths."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

LIBS = ["tether", "langgraph"]

_NAMES = {
    "graph": ["StateGraph", "START", "END"],
    "types": ["Command", "Send", "Overwrite", "CachePolicy"],
    "errors": ["InvalidUpdateError", "GraphRecursionError", "NodeInterrupt", "GraphInterrupt"],
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
