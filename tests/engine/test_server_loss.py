"""A checkpoint server that goes away in the middle of a run, at the engine level.

Graph: START -> a -> b -> c -> END, where node b stops the (private) server. The commit after
b cannot happen, so invoke raises a tether CheckpointError naming the thread (not a raw
psycopg / redis exception). After the server is started again, ``invoke(None, config)``
resumes from the last checkpoint that was stored: a does not run again, b runs again (its
step never committed), c runs, the final state is right, and the history from before the
outage is intact. Also: a DSN / URL to a closed localhost port is a CheckpointError that does
not show the password.
"""

from __future__ import annotations

import operator
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
import redis
from tests._servers import PrivatePostgres, PrivateRedis, free_port

from tether import END, START, Command, StateGraph, interrupt, task
from tether.checkpoint import Owner, PostgresSaver, RedisSaver, Saver
from tether.engine._heartbeat import Heartbeat
from tether.errors import CheckpointError, ConfigError, StoreTimeoutError

SECRET = "s3cret-pw-0b5c"


class S(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]
    n: int


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def build(saver: Saver, calls: Counter[str], stop_server: Callable[[], None]) -> Any:
    """a -> b -> c; b stops the server the first time it runs."""

    def a(state: S) -> dict[str, Any]:
        calls["a"] += 1
        return {"trail": ["a"], "n": state.get("n", 0) + 1}

    def b(state: S) -> dict[str, Any]:
        calls["b"] += 1
        if calls["b"] == 1:
            stop_server()
        return {"trail": ["b"], "n": state["n"] * 10}

    def c(state: S) -> dict[str, Any]:
        calls["c"] += 1
        return {"trail": ["c"], "n": state["n"] + 3}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g.compile(checkpointer=saver)


@pytest.fixture(params=["postgres", "redis"])
def backend(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Saver, Callable[[], None], Callable[[], None]]]:
    """(saver on a private server, stop the server, start it again)."""
    namespace = f"t_{uuid.uuid4().hex[:12]}"
    saver: Saver
    if request.param == "postgres":
        pg: PrivatePostgres = request.getfixturevalue("private_postgres")
        saver = PostgresSaver(pg.dsn, schema=namespace, timeout=5)
        stop, start = pg.stop, pg.start
    else:
        rd: PrivateRedis = request.getfixturevalue("private_redis")
        saver = RedisSaver(rd.url, prefix=namespace, timeout=2)
        stop, start = rd.stop, rd.start
    try:
        yield saver, stop, start
    finally:
        start()  # the fixture restarts it too; make sure close() finds a server
        saver.close()


def lose_server_after_b(
    app: Any, saver: Saver, start: Callable[[], None], calls: Counter[str], thread: str, d: str
) -> list[Any]:
    """Run until b stops the server; check the error; start it again. The history then."""
    with pytest.raises(CheckpointError) as info:
        app.invoke({"trail": ["in"]}, cfg(thread), durability=d)
    assert thread in str(info.value)
    assert not isinstance(info.value, (psycopg.Error, redis.RedisError))
    assert calls == Counter({"a": 1, "b": 1})
    start()
    before = list(app.get_state_history(cfg(thread)))
    assert before, "the checkpoints from before the outage are gone"
    head = app.get_state(cfg(thread))
    assert head.next == ("b",)
    assert head.values == {"trail": ["in", "a"], "n": 1}
    return before


def resume_and_check(app: Any, calls: Counter[str], thread: str, d: str, before: list[Any]) -> None:
    out = app.invoke(None, cfg(thread), durability=d)
    assert calls == Counter({"a": 1, "b": 2, "c": 1})
    assert out == {"trail": ["in", "a", "b", "c"], "n": 13}
    final = app.get_state(cfg(thread))
    assert final.next == ()
    assert final.values == out
    after = list(app.get_state_history(cfg(thread)))
    ids = [s.config["configurable"]["checkpoint_id"] for s in after]
    old = [s.config["configurable"]["checkpoint_id"] for s in before]
    assert ids[-len(old) :] == old  # the pre-outage checkpoints, unchanged, at the bottom
    assert [s.values for s in after[-len(old) :]] == [s.values for s in before]
    assert [s.next for s in after[: len(after) - len(old)]] == [(), ("c",)]


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_server_lost_after_b_then_resume(
    backend: tuple[Saver, Callable[[], None], Callable[[], None]], durability: str
) -> None:
    saver, stop, start = backend
    thread = f"outage-{uuid.uuid4().hex[:6]}"
    calls: Counter[str] = Counter()
    app = build(saver, calls, stop)
    before = lose_server_after_b(app, saver, start, calls, thread, durability)
    resume_and_check(app, calls, thread, durability, before)


def test_the_error_says_the_commit_failed_not_the_release(
    backend: tuple[Saver, Callable[[], None], Callable[[], None]],
) -> None:
    """The run's own failure (storing b's step) is what the caller should see."""
    saver, stop, _start = backend
    app = build(saver, Counter(), stop)
    with pytest.raises(CheckpointError) as info:
        app.invoke({"trail": []}, cfg("which-error"), durability="sync")
    assert "releasing" not in str(info.value), str(info.value)


def test_a_second_thread_works_after_the_outage(
    backend: tuple[Saver, Callable[[], None], Callable[[], None]],
) -> None:
    """After the restart the same saver object keeps serving new threads too."""
    saver, stop, start = backend
    calls: Counter[str] = Counter()
    app = build(saver, calls, stop)
    with pytest.raises(CheckpointError):
        app.invoke({"trail": []}, cfg("first"), durability="sync")
    start()
    calls["b"] = 1  # b does not stop the server again
    out = app.invoke({"trail": []}, cfg("second"), durability="sync")
    assert out == {"trail": ["a", "b", "c"], "n": 13}
    assert app.get_state(cfg("first")).next == ("b",)


# -- a server that is not there at all ---------------------------------------------------------


def _first_use_error(make: Callable[[], Saver]) -> CheckpointError:
    """The CheckpointError from constructing the saver, or else from its first use."""
    try:
        saver = make()
    except CheckpointError as exc:
        return exc
    try:
        app = build(saver, Counter(), lambda: None)
        with pytest.raises(CheckpointError) as info:
            app.invoke({"trail": []}, cfg("nowhere"))
        return info.value
    finally:
        saver.close()


def test_postgres_closed_port_is_a_checkpoint_error_without_the_password() -> None:
    dsn = f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/tether"
    err = _first_use_error(lambda: PostgresSaver(dsn, timeout=2))
    assert SECRET not in str(err)
    assert SECRET not in repr(err.args)


def test_postgres_closed_port_keyword_dsn_hides_the_password() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} dbname=tether user=postgres password={SECRET}"
    err = _first_use_error(lambda: PostgresSaver(dsn, timeout=2))
    assert SECRET not in str(err)


def test_redis_closed_port_is_a_checkpoint_error_without_the_password() -> None:
    url = f"redis://default:{SECRET}@127.0.0.1:{free_port()}/0"
    err = _first_use_error(lambda: RedisSaver(url, timeout=2))
    assert SECRET not in str(err)
    assert SECRET not in repr(err.args)


def test_redis_malformed_url_does_not_show_the_password() -> None:
    url = f"http://default:{SECRET}@127.0.0.1:{free_port()}/0"
    with pytest.raises(ConfigError, match="invalid Redis URL") as info:
        RedisSaver(url, timeout=2)
    assert SECRET not in str(info.value)


# -- a database server crash in async mode ---------------------------------------------------

# With these frozen, nothing writes the WAL out behind the backends' backs: an async commit
# stays in the server's shared memory until a durable commit flushes the log, and a crash
# loses exactly what was not made durable (no timing involved).
_WAL_WRITERS = ("walwriter", "background writer", "checkpointer", "autovacuum launcher")


@pytest.fixture
def crashing_postgres(private_postgres: PrivatePostgres) -> Iterator[PostgresSaver]:
    saver = PostgresSaver(private_postgres.dsn, schema=f"t_{uuid.uuid4().hex[:12]}", timeout=5)
    try:
        yield saver
    finally:
        private_postgres.thaw()
        private_postgres.wait_ready()
        saver.close()


def test_async_task_result_survives_a_postgres_crash(
    private_postgres: PrivatePostgres, crashing_postgres: PostgresSaver
) -> None:
    """The server crashes (a process OOM-killed) after a @task returned, in async mode. On
    recovery the task's recorded result is replayed: the charge is not made twice."""
    pg, charges, crashed = private_postgres, Counter[int](), []

    @task
    def charge(amount: int) -> str:
        charges[amount] += 1
        return f"charged {amount}"

    def prepare(state: S) -> dict[str, Any]:
        return {"trail": ["prepared"]}

    def pay(state: S) -> dict[str, Any]:
        receipt = charge(42).result()
        if not crashed:
            crashed.append(True)
            pg.crash(*_WAL_WRITERS)
        return {"trail": [receipt]}

    g = StateGraph(S)
    g.add_node("prepare", prepare)
    g.add_node("pay", pay)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "pay")
    g.add_edge("pay", END)
    app = g.compile(checkpointer=crashing_postgres, interrupt_before=["pay"])
    config = cfg("pay-once")
    app.invoke({"trail": []}, config, durability="sync")  # on disk up to the breakpoint
    pg.freeze(*_WAL_WRITERS)
    with pytest.raises(CheckpointError, match="pay-once"):
        app.invoke(None, config, durability="async")
    assert charges == Counter({42: 1})
    pg.wait_ready()
    out = app.invoke(None, config, durability="async")
    assert out["trail"] == ["prepared", "charged 42"]
    assert charges == Counter({42: 1}), "the recorded @task ran again after the crash"


def test_async_answer_survives_a_postgres_crash(
    private_postgres: PrivatePostgres, crashing_postgres: PostgresSaver
) -> None:
    """The server crashes after an interrupt was answered in async mode: the answer stays
    recorded, so the thread goes on with it instead of asking again."""
    pg, crashed = private_postgres, []

    def ask(state: S) -> dict[str, Any]:
        return {"trail": [f"answer {interrupt('approve?')}"]}

    def after(state: S) -> dict[str, Any]:
        if not crashed:
            crashed.append(True)
            pg.crash(*_WAL_WRITERS)
        return {"trail": ["after"]}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_node("after", after)
    g.add_edge(START, "ask")
    g.add_edge("ask", "after")
    g.add_edge("after", END)
    app = g.compile(checkpointer=crashing_postgres)
    config = cfg("answered-once")
    app.invoke({"trail": []}, config, durability="sync")
    pg.freeze(*_WAL_WRITERS)
    with pytest.raises(CheckpointError, match="answered-once"):
        app.invoke(Command(resume="yes"), config, durability="async")
    pg.wait_ready()
    assert app.get_state(config).interrupts == (), "the answer was lost in the crash"
    out = app.invoke(None, config, durability="async")
    assert out["trail"] == ["answer yes", "after"]


# -- a frozen server --------------------------------------------------------------------------


def test_frozen_server_invoke_get_state_and_heartbeat_time_out(
    private_postgres: PrivatePostgres,
) -> None:
    """Every server process SIGSTOPped (its kernel still acknowledges TCP): invoke, get_state
    and the lease heartbeat's renewal each end with StoreTimeoutError instead of hanging, and
    the same app works again once the server is thawed."""
    pg = private_postgres
    saver = PostgresSaver(
        pg.dsn, schema=f"t_{uuid.uuid4().hex[:12]}", connect_timeout=2, statement_timeout=1.0
    )
    app = build(saver, Counter(), lambda: None)
    beat = Heartbeat()
    lost: list[Exception] = []
    try:
        assert app.invoke({"trail": []}, cfg("before"))["n"] == 13
        fence = saver.claim("beating", Owner("run-beating"), 60).fence
        beat.register(saver, "beating", fence, lost.append)
        pg.freeze()
        try:
            with pytest.raises(StoreTimeoutError, match="'during'"):
                app.invoke({"trail": []}, cfg("during"))
            with pytest.raises(StoreTimeoutError, match="'before'"):
                app.get_state(cfg("before"))
            beat.renew_now()  # swallows store errors; it must return, not hang
            assert beat.renewals == 0
            with pytest.raises(StoreTimeoutError, match="renewing the lease on thread 'beating'"):
                saver.renew("beating", fence, 60)  # what the renewal calls
        finally:
            pg.thaw()
        assert app.get_state(cfg("before")).values["n"] == 13
        assert app.invoke({"trail": []}, cfg("after"))["n"] == 13
        beat.renew_now()
        assert beat.renewals == 1 and lost == []
    finally:
        beat.unregister("run-beating")
        saver.close()
