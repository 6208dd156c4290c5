"""``tether.graph.state``, as ``langgraph.graph.state``: the builder and the graph it compiles
into (``CompiledStateGraph`` is LangGraph's name for tether's ``CompiledGraph``)."""

from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledGraph

CompiledStateGraph = CompiledGraph

__all__ = ["CompiledGraph", "CompiledStateGraph", "StateGraph"]
