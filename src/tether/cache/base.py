"""``tether.cache.base``: the contract of a result cache for nodes and tasks with a
``CachePolicy``.

A cache maps (namespace, key) to a value with an optional time to live. Values are encoded
with the cache's serializer when stored, so a cached result is a snapshot: a node that
mutates what it got from the cache cannot change the cache. Unlike checkpoints, a cache is
shared by every thread of the graphs compiled with it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from tether.serde import Serializer, default_serializer

Namespace = tuple[str, ...]
FullKey = tuple[Namespace, str]


class BaseCache(abc.ABC):
    """Where ``compile(cache=...)`` keeps cached results."""

    def __init__(self, *, serde: Serializer | None = None) -> None:
        self.serde: Serializer = serde if serde is not None else default_serializer()

    @abc.abstractmethod
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, object]:
        """The values stored under ``keys`` that have not expired (missing keys are left out)."""

    @abc.abstractmethod
    def set(self, pairs: Mapping[FullKey, tuple[object, float | None]]) -> None:
        """Store each value under its key, for ``ttl`` seconds (None: until cleared)."""

    @abc.abstractmethod
    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Drop the values of ``namespaces`` (None: all of them)."""

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, object]:
        return self.get(keys)

    async def aset(self, pairs: Mapping[FullKey, tuple[object, float | None]]) -> None:
        self.set(pairs)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.clear(namespaces)


__all__ = ["BaseCache", "FullKey", "Namespace"]
