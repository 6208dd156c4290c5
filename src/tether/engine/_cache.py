"""A process-local cache of what a checkpoint's channel values decoded to.

Invariant: an entry can never be stale, and nothing a caller holds can change it.
- It is keyed by the saver instance, its serializer, the thread and the checkpoint id. A
  checkpoint id names one state forever: ids are UUIDv7 with 74 random bits, never reused, not
  even when a thread is deleted and created again under the same name (versions are reused
  then, which is why versions alone would not do). Value rows are never rewritten, and a
  pruned or deleted checkpoint is not found in storage before the cache is asked.
- Entries hold encoded bytes, so every hit decodes fresh objects that the caller may mutate.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Generic, TypeVar

from tether.checkpoint._saver import Saver
from tether.serde import Serializer

T = TypeVar("T")

CACHE_BYTES = 32 * 1024 * 1024
"""The most encoded bytes the cache holds, across savers and threads (least recently used
entries go first). An entry bigger than a quarter of this is not kept."""

_Key = tuple[int, int, str, str]
_Entry = tuple["weakref.ref[Saver]", Serializer, T, int]


class CheckpointCache(Generic[T]):
    """An LRU map from (saver, thread, checkpoint) to an entry of ``nbytes`` bytes."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, _Entry[T]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _key(saver: Saver, thread_id: str, checkpoint_id: str) -> _Key:
        return (id(saver), id(saver.serde), thread_id, checkpoint_id)

    def get(self, saver: Saver, thread_id: str, checkpoint_id: str) -> T | None:
        key = self._key(saver, thread_id, checkpoint_id)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            ref, serde, entry, _ = found
            # ids are reused once an object is gone: the entry must be for this very saver
            # and serializer (a swapped serializer could not decode it)
            if ref() is not saver or serde is not saver.serde:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, saver: Saver, thread_id: str, checkpoint_id: str, entry: T, nbytes: int) -> None:
        if nbytes > self.budget // 4:
            return
        try:
            ref = weakref.ref(saver)
        except TypeError:  # a saver that cannot be weakly referenced is not cached
            return
        key = self._key(saver, thread_id, checkpoint_id)
        with self._lock:
            self._drop(key)
            # the serializer is held strongly, so its id cannot be reused while the entry lives
            self._entries[key] = (ref, saver.serde, entry, nbytes)
            self._bytes += nbytes
            while self._bytes > self.budget:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: _Key) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= found[3]
