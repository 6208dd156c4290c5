"""The one shape every serializer has: values to bytes and back, nothing else.

A serializer may also decode many records at once (``loads_many``); ``loads_many`` below uses
that when it is there and decodes one record at a time otherwise, with the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    """Encodes values for storage. ``dumps`` fails on unregistered types (never guesses);
    ``loads`` never imports modules named by the data and never unpickles."""

    def dumps(self, value: object) -> bytes: ...

    def loads(self, data: bytes) -> object: ...


def loads_many(serde: Serializer, records: Sequence[bytes]) -> list[object]:
    """``[serde.loads(r) for r in records]``, in one pass when ``serde`` has ``loads_many``
    (reading a delta chain decodes hundreds of small records; the per-call cost dominates)."""
    many = getattr(serde, "loads_many", None)
    if many is not None:
        out: list[object] = many(records)
        return out
    return [serde.loads(r) for r in records]
