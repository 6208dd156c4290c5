"""``tether.checkpoint.memory``, as ``langgraph.checkpoint.memory``: the in-process saver,
also under its older LangGraph name ``MemorySaver``."""

from tether.checkpoint._memory import InMemorySaver

MemorySaver = InMemorySaver

__all__ = ["InMemorySaver", "MemorySaver"]
