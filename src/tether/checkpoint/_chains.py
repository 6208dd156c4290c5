"""Reading a channel's delta chain: from the wanted version back to its full value.

Shared by every backend so that all of them reject a broken chain the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.checkpoint._base import ValueRow
from tether.errors import CheckpointError


def walk_chain(
    thread_id: str,
    channel: str,
    version: int,
    lookup: Callable[[str, int], ValueRow | None],
) -> list[ValueRow]:
    """Follow ``prev`` pointers from ``version`` to the full value; return oldest first."""
    chain: list[ValueRow] = []
    current: int | None = version
    while current is not None:
        row = lookup(channel, current)
        if row is None:
            raise CheckpointError(
                f"thread {thread_id!r}: value of channel {channel!r} at version {current} is "
                "missing from storage (pruned or corrupted); restore from an export or delete "
                "the thread"
            )
        chain.append(row)
        current = row.prev
    chain.reverse()
    return chain


def chain_from_rows(
    thread_id: str, channel: str, version: int, rows: list[ValueRow]
) -> list[ValueRow]:
    """Pick one chain out of the rows of a range query (which may hold other branches)."""
    by_version = {r.version: r for r in rows}
    return walk_chain(thread_id, channel, version, lambda _c, v: by_version.get(v))
