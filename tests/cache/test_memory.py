"""InMemoryCache: values are snapshots, expire after their ttl, and clear by namespace."""

from __future__ import annotations

import pytest

from tether.cache.memory import InMemoryCache


def test_get_returns_what_set_stored_as_a_copy() -> None:
    cache = InMemoryCache()
    value = {"xs": [1, 2]}
    cache.set({(("ns",), "k"): (value, None)})
    value["xs"].append(3)
    got = cache.get([(("ns",), "k"), (("ns",), "missing")])
    assert got == {(("ns",), "k"): {"xs": [1, 2]}}


def test_entries_expire_after_their_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    import tether.cache.memory as memory

    now = [1000.0]
    monkeypatch.setattr(memory.time, "time", lambda: now[0])
    cache = InMemoryCache()
    cache.set({(("ns",), "short"): (1, 5), (("ns",), "forever"): (2, None)})
    now[0] += 4.9
    assert len(cache.get([(("ns",), "short"), (("ns",), "forever")])) == 2
    now[0] += 0.2
    assert cache.get([(("ns",), "short"), (("ns",), "forever")]) == {(("ns",), "forever"): 2}


def test_clear_by_namespace_and_all() -> None:
    cache = InMemoryCache()
    cache.set({(("a",), "k"): (1, None), (("b",), "k"): (2, None)})
    cache.clear([("a",)])
    assert cache.get([(("a",), "k"), (("b",), "k")]) == {(("b",), "k"): 2}
    cache.clear()
    assert cache.get([(("b",), "k")]) == {}
