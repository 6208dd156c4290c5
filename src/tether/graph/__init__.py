"""Building graphs: StateGraph, schemas to channels, and the add_messages reducer."""

from tether._messages import add_messages
from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledGraph

__all__ = ["CompiledGraph", "StateGraph", "add_messages"]
