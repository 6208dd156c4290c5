"""``tether.config``: the running node's config, stream writer and store, read from inside
a node, router, ``@task`` or ``@entrypoint`` (LangGraph's ``langgraph.config``)."""

from tether.engine._context import get_config, get_store
from tether.engine._runtime import get_stream_writer

__all__ = ["get_config", "get_store", "get_stream_writer"]
