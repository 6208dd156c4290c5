"""``tether.runtime``: what a node can reach besides its state (LangGraph's
``langgraph.runtime``).

Declare ``runtime: Runtime[Ctx]`` as a node parameter, or call ``get_runtime()`` inside a
node, router, ``@task`` or ``@entrypoint``.
"""

from tether.engine._context import ExecutionInfo, Runtime, StreamWriter, get_runtime

__all__ = ["ExecutionInfo", "Runtime", "StreamWriter", "get_runtime"]
