"""``tether.constants``, as ``langgraph.constants``: the names of the virtual first and last
nodes, and the tags LangGraph reserves."""

from tether.types import END, START

TAG_NOSTREAM = "nostream"
"""Tag of a chat model whose tokens are not streamed (LangGraph's value)."""
TAG_HIDDEN = "langsmith:hidden"
"""Tag that hides a node from tracing and streaming (LangGraph's value)."""
CONF = "configurable"
"""The config key that holds ``thread_id``, ``checkpoint_id`` and user settings."""

__all__ = ["CONF", "END", "START", "TAG_HIDDEN", "TAG_NOSTREAM"]
