"""``tether.checkpoint.postgres``, as ``langgraph.checkpoint.postgres``: the Postgres saver.

psycopg is imported on first use of ``PostgresSaver``, so this module imports without it.
"""

from typing import TYPE_CHECKING, Any

import tether.checkpoint

if TYPE_CHECKING:
    from tether.checkpoint._postgres import PostgresSaver


def __getattr__(name: str) -> Any:
    if name != "PostgresSaver":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return tether.checkpoint.PostgresSaver


__all__ = ["PostgresSaver"]
