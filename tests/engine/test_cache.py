"""CheckpointCache: least recently used entries go first, and an entry is only ever returned
for the saver instance and serializer it was made with."""

from __future__ import annotations

from tether.checkpoint import InMemorySaver, Saver
from tether.engine._cache import CheckpointCache, _Key
from tether.serde import MsgpackSerializer


def test_least_recently_used_entries_go_first() -> None:
    saver = InMemorySaver()
    cache: CheckpointCache[str] = CheckpointCache(budget=400)
    for name in ("a", "b", "c"):
        cache.put(saver, "t", name, name, 100)
    assert cache.get(saver, "t", "a") == "a"  # now the most recently used
    cache.put(saver, "t", "d", "d", 100)
    cache.put(saver, "t", "e", "e", 100)
    assert [cache.get(saver, "t", k) for k in "abcde"] == ["a", None, "c", "d", "e"]
    cache.put(saver, "t", "f", "f", 100)  # "a" was used least recently now
    assert [cache.get(saver, "t", k) for k in "acdef"] == [None, "c", "d", "e", "f"]
    cache.put(saver, "t", "big", "big", 101)  # over a quarter of the budget: not kept
    assert cache.get(saver, "t", "big") is None
    cache.clear()
    assert len(cache) == 0


def test_an_entry_is_for_one_saver_and_one_serializer() -> None:
    class SameKeyForEverySaver(CheckpointCache[str]):
        """As if a new saver got the id of a collected one."""

        @staticmethod
        def _key(saver: Saver, thread_id: str, checkpoint_id: str) -> _Key:
            return (0, 0, thread_id, checkpoint_id)

    first, second = InMemorySaver(), InMemorySaver()
    cache = SameKeyForEverySaver()
    cache.put(first, "t", "c", "value", 10)
    assert cache.get(second, "t", "c") is None
    cache.put(first, "t", "c", "value", 10)
    first.serde = MsgpackSerializer()  # a swapped serializer could not decode the entry
    assert cache.get(first, "t", "c") is None
