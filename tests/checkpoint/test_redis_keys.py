"""RedisSaver's key layout on a real Redis: nested prefixes and odd thread ids never share a
key, data in the old layout is refused, a thread's keys keep one TTL, and a thread that lost
a key (evicted, here deleted by hand to pick which) raises CorruptionError on every read and
write, writing nothing, until it is deleted."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from tether.checkpoint import CheckpointRow, Head, Owner, RedisSaver, ValueRow, WriteRow
from tether.errors import CheckpointError, ConfigError, CorruptionError

T = "thread-1"
PARTS = ("head", "cp", "cpv", "val", "w", "wx")


def cp(version: int, thread_id: str = T) -> CheckpointRow:
    parent = f"cp-{version - 1}" if version > 1 else None
    return CheckpointRow(thread_id, f"cp-{version}", parent, version, version, 1.0, b"body")


def advance(saver: RedisSaver, version: int, thread_id: str = T, *, payload: bytes = b"") -> None:
    saver.commit(
        thread_id,
        expected_version=version - 1 if version > 1 else None,
        checkpoint=cp(version, thread_id),
        values=[ValueRow("x", version, None, version, payload or b"v%d" % version)],
        writes=[WriteRow("task", "output", "", b"w%d" % version)],
        lease_seconds=30.0,
        durable=True,
    )


def prefix() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def key(p: str, part: str, thread_id: str = T) -> str:
    return f"{p}:{{{thread_id}}}:{part}"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


# -- no two threads share a key -------------------------------------------------------------


def test_nested_prefixes_do_not_collide(redis_url: str, client: redis.Redis) -> None:
    root = prefix()
    # prefix p + thread "a:t" and prefix "p:a" + thread "t" were both "p:a:t:head"
    with (
        RedisSaver(redis_url, prefix=root) as outer,
        RedisSaver(redis_url, prefix=f"{root}:a") as inner,
    ):
        advance(outer, 1, "a:t", payload=b"outer")
        advance(inner, 1, "t", payload=b"inner")
        advance(inner, 2, "t", payload=b"inner2")
        assert outer.get_head("a:t") == Head("cp-1", 1)
        assert inner.get_head("t") == Head("cp-2", 2)
        assert outer.get_values("a:t", {"x": 1})["x"][0].payload == b"outer"
        assert inner.get_values("t", {"x": 2})["x"][0].payload == b"inner2"
        assert outer.list_threads() == ["a:t"]
        assert inner.list_threads() == ["t"]
        outer.delete_thread("a:t")
        assert inner.get_head("t") == Head("cp-2", 2)
        assert client.exists(key(root, "head", "a:t")) == 0
        assert client.exists(key(f"{root}:a", "head", "t")) == 1


@pytest.mark.parametrize("odd", ["}:head", "a}:{b", "{x}", "t:head", "thread-list", "é\x00z"])
def test_thread_ids_with_separators_stay_apart(redis_url: str, odd: str) -> None:
    with RedisSaver(redis_url, prefix=prefix()) as s:
        advance(s, 1, T)
        advance(s, 1, odd, payload=b"odd")
        advance(s, 2, odd, payload=b"odd2")
        assert s.get_head(T) == Head("cp-1", 1)
        assert s.get_head(odd) == Head("cp-2", 2)
        assert s.get_values(odd, {"x": 2})["x"][0].payload == b"odd2"
        assert s.list_threads() == sorted([T, odd])


@pytest.mark.parametrize("bad", ["p{x}", "p}", "{tag}"])
def test_prefix_with_braces_is_refused(redis_url: str, bad: str) -> None:
    with pytest.raises(ConfigError, match="brace"):
        RedisSaver(redis_url, prefix=bad)


def test_data_in_the_old_layout_is_refused(redis_url: str, client: redis.Redis) -> None:
    p = prefix()
    client.zadd(f"{p}:threads", {T: float("inf")})  # what tether's first layout wrote
    client.hset(f"{p}:{T}:head", mapping={"cp": "cp-1", "ver": "1"})
    with pytest.raises(CheckpointError, match="earlier key layout") as info:
        RedisSaver(redis_url, prefix=p)
    assert f"{p}:threads" in str(info.value)
    assert "tether export" in str(info.value)
    with RedisSaver(redis_url, prefix=f"{p}:new") as s:  # a prefix below it is not that data
        advance(s, 1)


# -- one TTL for all of a thread's keys -----------------------------------------------------


def thread_keys(client: redis.Redis, p: str) -> list[bytes]:
    """The keys of prefix ``p`` but its thread list, found by scanning (whatever the layout)."""
    found = client.keys(f"{p}:*")
    return [k for k in found if not k.endswith((b":thread-list", b":threads"))]


def expiries(client: redis.Redis, p: str) -> set[int]:
    """The absolute expiry times (ms; -1 for none) of the thread's keys."""
    keys = thread_keys(client, p)
    assert len(keys) == len(PARTS)
    return {int(client.pexpiretime(k)) for k in keys}


def test_every_write_gives_all_keys_one_expiry(redis_url: str, client: redis.Redis) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p, ttl=100) as s:
        advance(s, 1)
        first = expiries(client, p)
        assert len(first) == 1 and min(first) > 0
        client.pexpire(thread_keys(client, p)[0], 5000)  # drift one apart; writes realign
        s.put_writes(T, [WriteRow("t2", "journal", "0", b"j")], durable=True)
        assert len(expiries(client, p)) == 1
        s.claim(T, Owner("run-1"), 30)
        s.release(T, Owner("run-1"))
        advance(s, 2)
        assert len(expiries(client, p)) == 1


def test_a_writer_without_ttl_makes_every_key_permanent(
    redis_url: str, client: redis.Redis
) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p, ttl=100) as s:
        s.commit(
            T,
            expected_version=None,
            checkpoint=cp(1),
            values=[ValueRow("x", 1, None, 1, b"v")],
            writes=[],  # so w and wx do not exist yet
            lease_seconds=30.0,
            durable=True,
        )
    with RedisSaver(redis_url, prefix=p) as s:
        s.put_writes(T, [WriteRow("t", "journal", "0", b"j")], durable=True)  # creates w, wx
        # Before, head/cp/cpv/val kept their TTL and w/wx had none: they expired apart.
        assert expiries(client, p) == {-1}
        assert client.zscore(f"{p}:thread-list", T) == float("inf")
    with RedisSaver(redis_url, prefix=p, ttl=100) as s:
        s.put_writes(T, [WriteRow("t", "journal", "1", b"j")], durable=True)
        assert len(expiries(client, p)) == 1 and min(expiries(client, p)) > 0


# -- a thread that lost a key ---------------------------------------------------------------


def damaged(redis_url: str, client: redis.Redis, part: str) -> tuple[RedisSaver, str]:
    """A saver on a new prefix whose thread has checkpoints, values and writes, with the key
    ``part`` deleted as eviction would."""
    p = prefix()
    s = RedisSaver(redis_url, prefix=p)
    advance(s, 1)
    advance(s, 2)
    s.put_writes(T, [WriteRow("recorded", "journal", "0", b"result")], durable=True)
    (gone,) = (k for k in thread_keys(client, p) if k.endswith(f":{part}".encode()))
    assert client.delete(gone) == 1
    return s, p


def reads_and_writes(s: RedisSaver) -> dict[str, Callable[[], object]]:
    owner = Owner("run-1")
    return {
        "get_head": lambda: s.get_head(T),
        "get_checkpoint": lambda: s.get_checkpoint(T, "cp-2"),
        "list_checkpoints": lambda: list(s.list_checkpoints(T)),
        "get_values": lambda: s.get_values(T, {"x": 2}),
        "get_writes": lambda: s.get_writes(T, ["recorded"]),
        "claim": lambda: s.claim(T, owner, 30),
        "commit": lambda: advance(s, 3),
        "put_writes": lambda: s.put_writes(T, [WriteRow("a", "output", "", b"x")], durable=True),
        "delete_checkpoints": lambda: s.delete_checkpoints(T, ["cp-1"], [("x", 1)], []),
        "dump_thread": lambda: s.dump_thread(T),
    }


def snapshot(client: redis.Redis, p: str) -> dict[bytes, bytes | None]:
    return {k: client.dump(k) for k in sorted(client.keys(f"{p}:*"))}


@pytest.mark.parametrize("part", list(PARTS))
def test_a_missing_key_is_a_corruption_error_everywhere(
    redis_url: str, client: redis.Redis, part: str
) -> None:
    s, p = damaged(redis_url, client, part)
    try:
        before = snapshot(client, p)
        for name, call in reads_and_writes(s).items():
            with pytest.raises(CorruptionError) as info:
                call()
            message = str(info.value)
            assert T in message and key(p, part) in message, (name, message)
            assert "evicted" in message and "noeviction" in message, (name, message)
            assert "delete_thread" in message, (name, message)
        assert snapshot(client, p) == before  # nothing was written
        s.delete_thread(T)  # the way out: start the thread over
        assert s.get_head(T) is None and s.list_threads() == []
        advance(s, 1)
        assert s.get_head(T) == Head("cp-1", 1)
    finally:
        s.close()


def test_a_thread_gone_but_still_listed_is_a_corruption_error(
    redis_url: str, client: redis.Redis
) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p, ttl=1000) as s:
        advance(s, 1)
        client.delete(*(key(p, part) for part in PARTS))  # every key evicted, listed still
        with pytest.raises(CorruptionError, match="head key"):
            s.claim(T, Owner("run-1"), 30)
        with pytest.raises(CorruptionError):
            advance(s, 1)  # would start the thread over
        assert s.list_threads() == [T]


def test_keys_emptied_by_pruning_are_not_missing(redis_url: str, client: redis.Redis) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p) as s:
        advance(s, 1)
        s.delete_checkpoints(T, [], [("x", 1)], ["task"])  # the only value row and task
        assert client.exists(key(p, "val"), key(p, "w"), key(p, "wx")) == 0
        assert s.get_head(T) == Head("cp-1", 1)
        assert s.get_writes(T, ["task"]) == []
        advance(s, 2)
        assert s.get_values(T, {"x": 2})["x"][0].payload == b"v2"


def test_writes_before_the_first_checkpoint_keep_the_head(
    redis_url: str, client: redis.Redis
) -> None:
    p = prefix()
    owner = Owner("run-1")
    with RedisSaver(redis_url, prefix=p) as s:
        claim = s.claim(T, owner, 30)
        assert claim.head is None
        s.put_writes(T, [WriteRow("first", "journal", "0", b"j")], fence=claim.fence, durable=True)
        s.release(T, owner)
        assert s.get_writes(T, ["first"]) == [WriteRow("first", "journal", "0", b"j")]
        client.delete(key(p, "wx"))
        with pytest.raises(CorruptionError, match="index of its task writes"):
            s.get_writes(T, ["first"])
