"""``tether.checkpoint.sqlite``, as ``langgraph.checkpoint.sqlite``: the SQLite saver."""

from tether.checkpoint._sqlite import SqliteSaver

__all__ = ["SqliteSaver"]
