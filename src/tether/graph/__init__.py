"""Building graphs: StateGraph, schemas to channels, and the add_messages reducer."""

from tether._messages import MessagesState, add_messages
from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledGraph
from tether.types import END, START

__all__ = ["END", "START", "CompiledGraph", "MessagesState", "StateGraph", "add_messages"]
