"""``tether.cache.memory``: ``InMemoryCache``, a result cache in this process's memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from tether.cache.base import BaseCache, FullKey, Namespace
from tether.serde import Serializer


class InMemoryCache(BaseCache):
    """A thread-safe cache in a dict; expired entries are dropped when read."""

    def __init__(self, *, serde: Serializer | None = None) -> None:
        super().__init__(serde=serde)
        self._data: dict[Namespace, dict[str, tuple[bytes, float | None]]] = {}
        self._lock = threading.Lock()

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, object]:
        now = time.time()
        found: dict[FullKey, bytes] = {}
        with self._lock:
            for ns, key in keys:
                entry = self._data.get(ns, {}).get(key)
                if entry is None:
                    continue
                payload, expires = entry
                if expires is not None and now >= expires:
                    del self._data[ns][key]
                    continue
                found[(ns, key)] = payload
        return {k: self.serde.loads(v) for k, v in found.items()}

    def set(self, pairs: Mapping[FullKey, tuple[object, float | None]]) -> None:
        now = time.time()
        encoded = {k: (self.serde.dumps(v), ttl) for k, (v, ttl) in pairs.items()}
        with self._lock:
            for (ns, key), (payload, ttl) in encoded.items():
                expires = None if ttl is None else now + ttl
                self._data.setdefault(ns, {})[key] = (payload, expires)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        with self._lock:
            if namespaces is None:
                self._data.clear()
            else:
                for ns in namespaces:
                    self._data.pop(ns, None)


__all__ = ["InMemoryCache"]
