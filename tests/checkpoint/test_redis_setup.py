"""RedisSaver against private redis-servers with a memory limit: the eviction policy is
checked at connect (also through an ACL that forbids CONFIG, or INFO too), a server out of
memory under ``noeviction`` is a clear error that wrote nothing, and when Redis really evicts
keys (``volatile-lru``, ``ttl=``, ``allow_eviction=True``) every damaged thread raises
CorruptionError instead of resuming, and no recorded @task runs twice."""

from __future__ import annotations

import operator
import uuid
import warnings
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
import redis
from tests._servers import PrivateRedis

from tether import END, START, Command, StateGraph, interrupt, task
from tether.checkpoint import CheckpointRow, RedisSaver, ValueRow
from tether.errors import CheckpointError, ConfigError, CorruptionError

T = "thread-1"
PASSWORD = "acl-s3cret"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateRedis]:
    """A redis-server that evicts keys with a TTL once it holds 64 MB."""
    args = ["--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]
    srv = PrivateRedis(args)
    yield srv
    srv.close()


@pytest.fixture
def admin(server: PrivateRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.config_set("maxmemory-policy", "volatile-lru")
    client.config_set("maxmemory", "64mb")
    client.flushall()
    client.close()


def prefix() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def commit(saver: RedisSaver, version: int, payload: bytes = b"v") -> None:
    parent = f"cp-{version - 1}" if version > 1 else None
    saver.commit(
        T,
        expected_version=version - 1 if version > 1 else None,
        checkpoint=CheckpointRow(T, f"cp-{version}", parent, version, version, 1.0, b"body"),
        values=[ValueRow("x", version, None, version, payload)],
        writes=[],
        lease_seconds=30.0,
        durable=True,
    )


# -- the policy, checked at connect ---------------------------------------------------------


def test_volatile_policy_refuses_ttl_only(server: PrivateRedis, admin: redis.Redis) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RedisSaver(server.url, prefix=prefix()).close()  # keys without a TTL: never evicted
    with pytest.raises(ConfigError) as info:
        RedisSaver(server.url, prefix=prefix(), ttl=60)
    message = str(info.value)
    for part in ("'volatile-lru'", f"127.0.0.1:{server.port}/0", "noeviction", "drop ttl="):
        assert part in message, message
    assert "allow_eviction=True" in message


def test_allow_eviction_warns_and_connects(server: PrivateRedis, admin: redis.Redis) -> None:
    with pytest.warns(RuntimeWarning, match="volatile-lru.*CorruptionError"):
        saver = RedisSaver(server.url, prefix=prefix(), ttl=60, allow_eviction=True)
    with saver:
        commit(saver, 1)
        assert saver.get_head(T) is not None


@pytest.mark.parametrize(
    ("policy", "ttl", "refused"),
    [
        ("allkeys-lru", None, True),
        ("allkeys-lfu", None, True),
        ("allkeys-random", 60, True),
        ("volatile-ttl", 60, True),
        ("volatile-lfu", 60, True),
        ("volatile-random", None, False),
        ("noeviction", 60, False),
        ("noeviction", None, False),
    ],
)
def test_policies(
    server: PrivateRedis, admin: redis.Redis, policy: str, ttl: float | None, refused: bool
) -> None:
    admin.config_set("maxmemory-policy", policy)
    if refused:
        with pytest.raises(ConfigError, match=f"'{policy}'"):
            RedisSaver(server.url, prefix=prefix(), ttl=ttl)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RedisSaver(server.url, prefix=prefix(), ttl=ttl).close()


def acl_url(server: PrivateRedis, admin: redis.Redis, user: str, *forbidden: str) -> str:
    admin.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{PASSWORD}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", *(f"-{c}" for c in forbidden)],
        reset=True,
    )
    return f"redis://{user}:{PASSWORD}@127.0.0.1:{server.port}/0"


def test_without_config_the_policy_is_read_from_info(
    server: PrivateRedis, admin: redis.Redis
) -> None:
    url = acl_url(server, admin, "noconfig", "config")
    with pytest.raises(ConfigError, match="'volatile-lru'") as info:
        RedisSaver(url, prefix=prefix(), ttl=60)
    assert PASSWORD not in str(info.value)
    RedisSaver(url, prefix=prefix()).close()


def test_a_policy_that_cannot_be_read_is_refused_unless_allowed(
    server: PrivateRedis, admin: redis.Redis
) -> None:
    admin.config_set("maxmemory-policy", "noeviction")  # safe, but the user cannot see it
    url = acl_url(server, admin, "blind", "config", "info")
    with pytest.raises(ConfigError, match="cannot be read") as info:
        RedisSaver(url, prefix=prefix())
    assert PASSWORD not in str(info.value)
    assert "allow_eviction=True" in str(info.value)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        saver = RedisSaver(url, prefix=prefix(), allow_eviction=True)
    with saver:
        commit(saver, 1)


# -- out of memory under noeviction ---------------------------------------------------------


def test_out_of_memory_is_a_clear_error_that_wrote_nothing(
    server: PrivateRedis, admin: redis.Redis
) -> None:
    admin.config_set("maxmemory-policy", "noeviction")
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", str(used + 2 * 1024 * 1024))
    with RedisSaver(server.url, prefix=prefix()) as saver:
        version = 0
        with pytest.raises(CheckpointError, match="out of memory") as info:
            for version in range(1, 200):
                commit(saver, version, payload=b"x" * 100_000)
        message = str(info.value)
        assert T in message and f"127.0.0.1:{server.port}" in message and "maxmemory" in message
        assert not isinstance(info.value, CorruptionError)
        failed = version
        head = saver.get_head(T)
        assert head is not None and head.version == failed - 1  # the failed commit left nothing
        assert len(list(saver.list_checkpoints(T))) == failed - 1
        admin.config_set("maxmemory", "0")
        commit(saver, failed)


# -- real eviction --------------------------------------------------------------------------


class Pay(TypedDict, total=False):
    amount: int
    notes: str
    log: Annotated[list[str], operator.add]


def pay_graph(saver: RedisSaver, calls: dict[int, int], *, fail: bool) -> Any:
    """Charge (a recorded @task), then fail (the first time), then ask to confirm."""

    @task
    def charge(amount: int) -> int:
        calls[amount] = calls.get(amount, 0) + 1
        return amount

    def pay(state: Pay) -> dict[str, Any]:
        charged = charge(state["amount"]).result()
        if fail:
            raise RuntimeError("mail server down")
        return {"log": [f"{charged}:{interrupt({'confirm': charged})}"]}

    g = StateGraph(Pay)
    g.add_node("pay", pay)
    g.add_edge(START, "pay")
    g.add_edge("pay", END)
    return g.compile(checkpointer=saver)


def fill_until_evicted(admin: redis.Redis, evictions: int) -> int:
    """Write keys without a TTL (which volatile-lru never evicts) under a memory limit just
    above what is used, until Redis has evicted ``evictions`` keys (tether's, the only ones
    with a TTL) or refuses writes; then lift the limit. Returns the evicted count."""
    start = int(admin.info("stats")["evicted_keys"])
    admin.config_set("maxmemory", str(int(admin.info("memory")["used_memory"]) + 200_000))
    try:
        for i in range(10_000):
            try:
                admin.set(f"filler:{i}", b"f" * 8_000)
            except redis.exceptions.OutOfMemoryError:
                break
            if int(admin.info("stats")["evicted_keys"]) - start >= evictions:
                break
    finally:
        admin.config_set("maxmemory", "0")
    return int(admin.info("stats")["evicted_keys"]) - start


def test_evicted_threads_raise_corruption_and_no_task_runs_twice(
    server: PrivateRedis, admin: redis.Redis
) -> None:
    p, n = prefix(), 40
    calls: dict[int, int] = {}

    def saver() -> RedisSaver:
        with pytest.warns(RuntimeWarning, match="volatile-lru"):
            return RedisSaver(server.url, prefix=p, ttl=3600, allow_eviction=True)

    with saver() as first:
        app = pay_graph(first, calls, fail=True)
        for i in range(n):
            config = {"configurable": {"thread_id": f"t{i}"}}
            with pytest.raises(RuntimeError, match="mail server"):
                app.invoke({"amount": i, "notes": "n" * 4_000}, config)
    assert calls == {i: 1 for i in range(n)}  # each charge is recorded in the thread's journal

    assert fill_until_evicted(admin, evictions=30) > 0

    resumed, damaged = [], []
    with saver() as second:
        app = pay_graph(second, calls, fail=False)
        for i in range(n):
            config = {"configurable": {"thread_id": f"t{i}"}}
            try:
                out = app.invoke(None, config)  # continue the failed step: charge is replayed
                assert [x.value for x in out["__interrupt__"]] == [{"confirm": i}]
                out = app.invoke(Command(resume="ok"), config)
            except CorruptionError as exc:
                assert f"'t{i}'" in str(exc) and "evicted" in str(exc)
                with pytest.raises(CorruptionError):
                    app.get_state(config)
                damaged.append(i)
                continue
            assert out["log"] == [f"{i}:ok"]
            resumed.append(i)
    assert damaged, "Redis evicted keys, so some thread must have lost one"
    assert sorted(resumed + damaged) == list(range(n))
    assert calls == {i: 1 for i in range(n)}  # no recorded @task ran again
