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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from tests._servers import PrivateRedis, free_port

import tether
from tether.checkpoint import CheckpointRow, Head, RedisSaver, ValueRow, WriteRow
from tether.errors import CheckpointError, ConfigError

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
        fence=None,
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


SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.invalid/0", "scheme"),
        ("redis://127.0.0.1:notaport/0", "notaport"),
        (f"redis://user:{SECRET}@127.0.0.1:notaport/0", "notaport"),
        (f"redis://:{SECRET}@127.0.0.1:-1/0", "-1"),
        ("redis://127.0.0.1:99999/0", "out of range"),
        (f"redis://:{SECRET}@127.0.0.1:0/0", "port 0"),
        ("redis://127.0.0.1:6379/x", "database number"),  # redis-py would use db 0
        ("redis://127.0.0.1:6379/3/extra", "database number"),
        (f"redis://u:{SECRET}@[::1/0", "IPv6"),
        ("redis://127.0.0.1:6379/0?socket_timeout=abc", "socket_timeout"),
    ],
)
def test_malformed_url_is_a_config_error_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match="invalid Redis URL") as info:
        RedisSaver(url)
    message = str(info.value)
    assert reason in message
    assert SECRET not in message and SECRET not in repr(info.value.args)
    assert (url.replace(SECRET, "***") if SECRET in url else url) in message


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
    allowed = {"hget", "hmget", "hset", "hexists", "zadd", "expire", "time", "exists", "pttl"}
    assert set(calls) <= allowed, calls


# -- task writes are read and deleted through the per-task index, never by a scan ---------

SCANS = {"hgetall", "hscan", "hkeys", "hvals", "hlen", "scan", "keys"}


def crowd(s: RedisSaver, others: int) -> list[WriteRow]:
    """A thread with ``others`` other tasks' rows (two each) and three rows of "target"."""
    advance(s, 1)
    noise = [
        WriteRow(f"other-{i}", kind, key, b"x")
        for i in range(others)
        for kind, key in (("output", ""), ("journal", "0"))
    ]
    s.put_writes(T, noise, durable=True)
    mine = [
        WriteRow("target", "output", "", b"out"),
        WriteRow("target", "journal", "0", b"j0"),
        WriteRow("target", "interrupt", "k\x00\u00ff\u00e9", b"i"),
    ]
    s.put_writes(T, mine[:2], durable=True)
    s.commit(
        T,
        expected_version=1,
        checkpoint=cp(2),
        values=[],
        writes=mine[2:],
        fence=None,
        lease_seconds=30.0,
        durable=True,
    )
    return mine


def counted(url: str, fn: Callable[[], object]) -> dict[str, int]:
    """The commands Redis ran (inside scripts too) while ``fn`` ran, by name."""
    admin = redis.Redis.from_url(url)
    try:
        admin.config_resetstat()
        fn()
        stats = admin.info("commandstats")
    finally:
        admin.close()
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    calls.pop("config|resetstat", None)
    calls.pop("info", None)
    return calls


def read_one_task(url: str, others: int) -> dict[str, int]:
    with RedisSaver(url, prefix=prefix()) as s:
        mine = crowd(s, others)
        s.get_writes(T, ["nobody"])  # loads the script (NOSCRIPT fallback) once
        got: list[WriteRow] = []
        calls = counted(url, lambda: got.extend(s.get_writes(T, ["target"])))
        assert sorted(got, key=lambda w: w.kind) == sorted(mine, key=lambda w: w.kind)
        assert s.get_writes(T, ["other-3", "nobody"]) == [
            WriteRow("other-3", "output", "", b"x"),
            WriteRow("other-3", "journal", "0", b"x"),
        ]
    return calls


def test_get_writes_reads_only_the_requested_tasks(private_redis: PrivateRedis) -> None:
    calls = read_one_task(private_redis.url, 2000)
    assert calls.pop("evalsha") == 1
    assert not SCANS & set(calls), calls
    # the thread's key list and a check that its keys exist; the task's index entry, its rows
    assert calls == {"hget": 1, "exists": 1, "hmget": 2}
    # The same work whatever else the thread holds.
    assert read_one_task(private_redis.url, 5) == {"evalsha": 1, **calls}


def delete_two_tasks(url: str, others: int) -> dict[str, int]:
    p = prefix()
    with RedisSaver(url, prefix=p) as s:
        crowd(s, others)
        s.delete_checkpoints(T, [], [], ["nobody"])  # loads the script once
        calls = counted(
            url, lambda: s.delete_checkpoints(T, ["cp-1"], [("x", 1)], ["target", "other-3"])
        )
        assert s.get_writes(T, ["target", "other-3"]) == []
        assert len(s.get_writes(T, ["other-2", "other-4"])) == 4
        assert [c.checkpoint_id for c in s.list_checkpoints(T)] == ["cp-2"]
        admin = redis.Redis.from_url(url)
        assert admin.hlen(f"{p}:{{{T}}}:w") == 2 * (others - 1) + 1  # + advance's own row
        assert admin.hlen(f"{p}:{{{T}}}:wx") == others  # others - 1, + "task"
        admin.close()
    return calls


def test_delete_checkpoints_touches_only_the_given_tasks(private_redis: PrivateRedis) -> None:
    calls = delete_two_tasks(private_redis.url, 2000)
    assert calls.pop("evalsha") == 1
    assert not SCANS & set(calls), calls
    # One HDEL each for the checkpoint, the value, the tasks' fields and their index entries;
    # the key list is read and its keys counted before (the check) and after (the seal),
    # which rewrites it (one EXISTS per key, one HSET): the only value row went, and its hash.
    assert calls == {"hmget": 1, "hdel": 4, "zrem": 1, "hget": 2, "exists": 7, "hset": 1}
    assert delete_two_tasks(private_redis.url, 5) == {"evalsha": 1, **calls}


def test_write_index_follows_upserts_deletes_and_imports(redis_url: str) -> None:
    with RedisSaver(redis_url, prefix=prefix()) as s:
        advance(s, 1)
        s.put_writes(T, [WriteRow("t", "journal", "0", b"a")], durable=True)
        s.put_writes(T, [WriteRow("t", "journal", "0", b"b")], durable=True)  # replaces
        s.put_writes(
            T,
            [WriteRow("t", "journal", "1", b"c"), WriteRow("t", "journal", "1", b"d")],
            durable=True,
        )
        assert sorted(s.get_writes(T, ["t", "t"]), key=lambda w: w.key) == [
            WriteRow("t", "journal", "0", b"b"),
            WriteRow("t", "journal", "1", b"d"),
        ]
        s.delete_checkpoints(T, [], [], ["t"])
        assert s.get_writes(T, ["t"]) == []
        s.put_writes(T, [WriteRow("t", "error", "", b"e")], durable=True)
        assert s.get_writes(T, ["t"]) == [WriteRow("t", "error", "", b"e")]
        dump = s.dump_thread(T)
        s.delete_thread(T)
        assert s.get_writes(T, ["t", "task"]) == []
        s.load_thread(dump)
        assert sorted(s.get_writes(T, ["t", "task"]), key=lambda w: w.task_id) == [
            WriteRow("t", "error", "", b"e"),
            WriteRow("task", "output", "", b"w1"),
        ]


# -- TTL and prefixes -----------------------------------------------------------------------


def test_ttl_is_set_on_every_key_and_refreshed(redis_url: str, client: redis.Redis) -> None:
    p = prefix()
    with RedisSaver(redis_url, prefix=p, ttl=100) as s:
        advance(s, 1)
        keys = [f"{p}:{{{T}}}:{k}" for k in ("head", "cp", "cpv", "val", "w", "wx")]
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
        assert client.ttl(f"{s._prefix}:{{{T}}}:head") == -1


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
                         fence=None, lease_seconds=30, durable=True)
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


def test_list_checkpoints_of_a_long_thread(redis_url: str) -> None:
    """More checkpoints than Lua's unpack() takes at once (about 8,000) list in one call."""
    import uuid as _uuid

    from tether.checkpoint import CheckpointRow, RedisSaver

    saver = RedisSaver(redis_url, prefix=f"long_{_uuid.uuid4().hex[:8]}")
    try:
        expected = None
        for n in range(1, 9001):
            row = CheckpointRow("t", f"c{n}", f"c{n - 1}" if n > 1 else None, n, n, 0.0, b"b")
            saver.commit(
                "t",
                expected_version=expected,
                checkpoint=row,
                values=[],
                writes=[],
                fence=None,
                lease_seconds=1,
                durable=False,
            )
            expected = n
        rows = list(saver.list_checkpoints("t"))
        assert len(rows) == 9000 and rows[0].checkpoint_id == "c9000"
    finally:
        saver.delete_thread("t")
        saver.close()
