"""Checkpoint backends: the Saver base class and its implementations."""

import importlib
from typing import TYPE_CHECKING, Any

from tether.checkpoint._base import CheckpointRow, Head, ThreadDump, ValueRow, WriteRow
from tether.checkpoint._lease import Claim, Fence, Lease, Owner
from tether.checkpoint._memory import InMemorySaver
from tether.checkpoint._saver import Saver
from tether.checkpoint._sqlite import SqliteSaver

if TYPE_CHECKING:
    from tether.checkpoint._postgres import PostgresSaver
    from tether.checkpoint._redis import RedisSaver

# The server backends import their drivers on first use, so psycopg and redis stay optional.
_LAZY = {
    "PostgresSaver": ("tether.checkpoint._postgres", "postgres", "psycopg"),
    "RedisSaver": ("tether.checkpoint._redis", "redis", "redis"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, extra, driver = _LAZY[name]
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] not in (driver, "psycopg_pool"):
            raise
        raise ImportError(
            f"tether.checkpoint.{name} needs the {driver!r} package: pip install 'tether[{extra}]'"
        ) from exc
    globals()[name] = value
    return value


__all__ = [
    "CheckpointRow",
    "Claim",
    "Fence",
    "Head",
    "InMemorySaver",
    "Lease",
    "Owner",
    "PostgresSaver",
    "RedisSaver",
    "Saver",
    "SqliteSaver",
    "ThreadDump",
    "ValueRow",
    "WriteRow",
]
