"""Reading a channel's delta chain: from the wanted version back to its full value.

Shared by every backend so that all of them reject a broken chain the same way. Invariant:
a delta's ``prev`` is strictly older than its version, so a walk takes at most one step per
stored row and stops; a pointer that does not go back (a loop), a missing row, or rows whose
``base`` disagree with the chain they are in raise ``CorruptionError``.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.checkpoint._base import ValueRow
from tether.checkpoint._unreadable import RESTORE_HINT
from tether.errors import CorruptionError


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
            raise CorruptionError(
                f"thread {thread_id!r}: value of channel {channel!r} at version {current} is "
                f"missing from storage (pruned, evicted or corrupted); {RESTORE_HINT}"
            )
        prev = row.prev
        if row.version != current or (prev is not None and prev >= current):
            check_link(thread_id, channel, current, row)  # raises, naming the row
        chain.append(row)
        current = prev
    chain.reverse()
    _check_bases(thread_id, channel, chain)
    return chain


def check_link(thread_id: str, channel: str, version: int, row: ValueRow) -> None:
    """The row found for ``version`` is that version, and its ``prev`` points back in time."""
    if row.version != version or (row.prev is not None and row.prev >= version):
        raise CorruptionError(
            f"thread {thread_id!r}: the delta chain of channel {channel!r} is broken at "
            f"version {version}: it points back to version {row.prev}, which is not older, so "
            f"the chain would loop; {RESTORE_HINT}"
        )


def _check_bases(thread_id: str, channel: str, chain: list[ValueRow]) -> None:
    """Every row of a chain names the full value it starts from, and that value is its own
    base."""
    start = chain[0].version
    for row in chain:
        if row.base != start:
            raise CorruptionError(
                f"thread {thread_id!r}: value of channel {channel!r} at version {row.version} "
                f"says its chain starts at version {row.base}, but it starts at version "
                f"{start}; {RESTORE_HINT}"
            )


def chain_from_rows(
    thread_id: str, channel: str, version: int, rows: list[ValueRow]
) -> list[ValueRow]:
    """Pick one chain out of the rows of a range query (which may hold other branches)."""
    by_version = {r.version: r for r in rows}
    return walk_chain(thread_id, channel, version, lambda _c, v: by_version.get(v))
