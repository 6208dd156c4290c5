"""RedisSaver on real Redis servers: bad URLs, a server that goes away and comes back (AOF),
TTLs, prefix isolation, races between processes, one script call per commit and threads in
parallel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests._servers import PrivateRedis, free_port

import tether
from tether.checkpoint import CheckpointRow, Head, RedisSaver, ValueRow, WriteRow
from tether.errors import CheckpointError

T = "thread-1"
SRC = str(Path(tether.__file__).resolve().parents[1])


def cp(version: int, thread_id: str = T) -> CheckpointRow:
    parent = f"cp-{version - 1}" if version > 1 else None
    return CheckpointRow(thread_id, f"cp-{version}", parent, version, version, 1.0, b"body")


def advance(saver: RedisSaver, version: int, thread_id: str = T) -> None:
    saver.commit(
        thread_id,
        expected_version=version - 1 if version > 1 else None,
        checkpoint=cp(version, thread_id),
        values=[ValueRow("x", version, None, version, b"v%d" % version)],
        writes=[WriteRow("task", "output", "", b"w%d" % version)],
        owner=None,
        lease_seconds=30.0,
        durable=True,
    )


def prefix() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


# -- bad input ------------------------------------------------------------------------------


def test_nothing_listening_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="connecting"):
        RedisSaver(f"redis://127.0.0.1:{free_port()}/0", timeout=2)


def test_malformed_url_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="invalid Redis URL"):
        RedisSaver("http://example.invalid/0")


def test_decoding_client_is_refused(redis_url: str) -> None:
    c = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(CheckpointError, match="decode_responses"):
        RedisSaver(client=c)
    c.close()


def test_closed_saver_raises_and_close_is_idempotent(redis_url: str) -> None:
    s = RedisSaver(redis_url, prefix=prefix())
    s.close()
    s.close()
    with pytest.raises(CheckpointError, match="closed"):
        s.get_head(T)


def test_bad_ttl_is_refused(redis_url: str) -> None:
    with pytest.raises(CheckpointError, match="ttl"):
        RedisSaver(redis_url, ttl=0)


# -- the server goes away ---------------------------------------------------------------------


def test_server_stopped_mid_run_then_back(private_redis: PrivateRedis) -> None:
    with RedisSaver(private_redis.url, prefix=prefix(), timeout=2) as s:
        advance(s, 1)
        advance(s, 2)
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises(CheckpointError, match=T):
            advance(s, 3)
        with pytest.raises(CheckpointError):
            s.get_head(T)
        assert time.monotonic() - started < 20
        private_redis.start()  # appendfsync always: every acknowledged commit is back
        assert s.get_head(T) == Head("cp-2", 2)
        assert s.get_values(T, {"x": 2})["x"] == [ValueRow("x", 2, None, 2, b"v2")]
        assert s.get_writes(T, ["task"]) == [WriteRow("task", "output", "", b"w2")]
        advance(s, 3)
        assert [c.version for c in s.list_checkpoints(T)] == [3, 2, 1]


def test_commit_is_one_script_call(  # one round trip
    private_redis: PrivateRedis,
) -> None:
    with RedisSaver(private_redis.url, prefix=prefix()) as s:
        advance(s, 1)  # loads the script (NOSCRIPT fallback) once
        admin = redis.Redis.from_url(private_redis.url)
        admin.config_resetstat()
        advance(s, 2)
        stats = admin.info("commandstats")
        admin.close()
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    assert calls.pop("evalsha") == 1
    calls.pop("config|resetstat", None)
    # Everything else ran inside the script (commandstats counts those too).
    assert set(calls) <= {"hget", "hmget", "hset", "hexists", "zadd", "expire", "time"}, calls


# -- TTL and prefixes -----------------------------------------------------------------------


def test_ttl_is_set_on_every_key_and_refreshed(redis_url: str, client: redis.Redis) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p, ttl=100) as s:
        advance(s, 1)
        keys = [f"{p}:{T}:{k}" for k in ("head", "cp", "cpv", "val", "w")]
        assert all(90 < client.ttl(k) <= 100 for k in keys)
        for k in keys:
            client.expire(k, 5)
        s.put_writes(T, [WriteRow("task2", "journal", "0", b"j")], durable=True)
        assert all(90 < client.ttl(k) <= 100 for k in keys)
        for k in keys:
            client.expire(k, 5)
        advance(s, 2)
        assert all(90 < client.ttl(k) <= 100 for k in keys)
    with RedisSaver(redis_url, prefix=prefix()) as s:  # no ttl: nothing expires
        advance(s, 1)
        assert client.ttl(f"{s._prefix}:{T}:head") == -1


def test_expired_thread_is_gone(redis_url: str) -> None:
    with RedisSaver(redis_url, prefix=prefix(), ttl=1) as s:
        advance(s, 1)
        assert s.list_threads() == [T]
        time.sleep(2.2)
        assert s.get_head(T) is None
        assert s.list_threads() == []
        advance(s, 1)  # a new thread under the same id
        assert s.list_threads() == [T]


def test_prefixes_are_isolated(redis_url: str, client: redis.Redis) -> None:
    with RedisSaver(redis_url, prefix=prefix()) as a, RedisSaver(redis_url, prefix=prefix()) as b:
        advance(a, 1)
        advance(a, 2)
        assert b.get_head(T) is None
        assert b.list_threads() == []
        advance(b, 1)
        assert a.get_head(T) == Head("cp-2", 2)
        assert b.get_head(T) == Head("cp-1", 1)
        a.delete_thread(T)
        assert a.list_threads() == []
        assert b.list_threads() == [T]
        assert b.get_values(T, {"x": 1})["x"][0].payload == b"v1"
        assert client.keys(f"{a._prefix}:*") == []


# -- races and parallelism ------------------------------------------------------------------


def test_two_processes_same_expected_version_exactly_one_wins(
    redis_url: str, tmp_path: Path
) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p) as s:
        advance(s, 1)
    go = tmp_path / "go"
    code = """
        import os, sys, time
        from tether.checkpoint import CheckpointRow, RedisSaver
        from tether.errors import ThreadBusyError
        saver = RedisSaver(sys.argv[1], prefix=sys.argv[2])
        row = CheckpointRow("thread-1", "cp-" + sys.argv[4], "cp-1", 2, 2, 1.0, b"x")
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.001)
        try:
            saver.commit("thread-1", expected_version=1, checkpoint=row, values=[], writes=[],
                         owner=None, lease_seconds=30, durable=True)
            print("won")
        except ThreadBusyError:
            print("busy")
    """
    path = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), redis_url, p, str(go), name],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": path},
        )
        for name in ("a", "b")
    ]
    time.sleep(1.0)
    go.touch()
    results = sorted(c.communicate(timeout=120)[0].strip() for c in children)
    assert results == ["busy", "won"]
    with RedisSaver(redis_url, prefix=p) as s:
        head = s.get_head(T)
        assert head is not None and head.version == 2
        assert len(list(s.list_checkpoints(T))) == 2


def test_many_threads_commit_in_parallel(redis_url: str) -> None:
    with RedisSaver(redis_url, prefix=prefix()) as s:
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for v in range(1, 21):
                    advance(s, v, thread_id=f"t{i}")
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert errors == []
        assert s.list_threads() == [f"t{i}" for i in range(8)]
        assert all(s.get_head(f"t{i}") == Head("cp-20", 20) for i in range(8))
