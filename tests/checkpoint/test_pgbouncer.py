"""PostgresSaver behind a real PgBouncer in transaction mode (the Debian package
``pgbouncer``, started by the ``pgbouncer`` fixture in tests/_servers.py with
``default_pool_size = 2``).

``prepare=False`` is the option for this setup: a real graph (reducer key, interrupt, @task)
runs from more Python threads than PgBouncer has server connections, on many thread ids at
once, pauses, resumes and reads its state and history back. The second part shows why the
option exists: with ``prepare=True`` psycopg prepares a statement it has run 5 times on one
server connection, and transaction pooling later hands the client another server connection,
where that prepared statement does not exist. The server connections are pinned explicitly
(PgBouncer never has more than 2), so which one the saver gets is deterministic.
"""

from __future__ import annotations

import operator
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from tests._servers import PgBouncer, pgbouncer  # noqa: F401  (the fixture)

from tether import END, START, Command, StateGraph, interrupt, task
from tether.checkpoint import PostgresSaver
from tether.errors import CheckpointError

WORKERS = 6  # Python threads, against a PgBouncer pool of 2 server connections
THREADS_PER_WORKER = 3
POOL_SIZE = 2

_calls: Counter[str] = Counter()
_calls_lock = threading.Lock()


def _count(what: str) -> None:
    with _calls_lock:
        _calls[what] += 1


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    total: int


@task
def price(units: int) -> int:
    _count("task:price")
    return units * 7


def prep(state: S) -> dict[str, Any]:
    _count("node:prep")
    units = len(state["log"])
    return {"log": ["prep"], "total": price(units).result()}


def ask(state: S) -> dict[str, Any]:
    _count("node:ask")
    answer = interrupt({"question": "approve?", "total": state["total"]})
    return {"log": [f"answer:{answer}"]}


def done(state: S) -> dict[str, Any]:
    _count("node:done")
    return {"log": ["done"], "total": state["total"] + 1}


def build(saver: PostgresSaver) -> Any:
    g = StateGraph(S)
    g.add_node("prep", prep)
    g.add_node("ask", ask)
    g.add_node("done", done)
    g.add_edge(START, "prep")
    g.add_edge("prep", "ask")
    g.add_edge("ask", "done")
    g.add_edge("done", END)
    return g.compile(checkpointer=saver)


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def admin_rows(bouncer: PgBouncer, command: str) -> list[dict[str, Any]]:
    """Rows of a PgBouncer admin console command (simple query protocol)."""
    with psycopg.connect(
        bouncer.admin_dsn, autocommit=True, cursor_factory=psycopg.ClientCursor
    ) as conn:
        cur = conn.execute(command)
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_bouncer_is_in_transaction_mode(pgbouncer: PgBouncer) -> None:  # noqa: F811
    (db,) = [r for r in admin_rows(pgbouncer, "SHOW DATABASES") if r["name"] == pgbouncer.dbname]
    assert int(db["pool_size"]) == POOL_SIZE
    assert db["pool_mode"] in (None, "transaction")  # None: the [pgbouncer] default applies
    config = {r["key"]: r["value"] for r in admin_rows(pgbouncer, "SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"


def run_one(app: Any, thread: str, n: int) -> None:
    """Start, pause at ask, check the paused state, resume, check the end and history."""
    first = app.invoke({"log": [f"start-{n}"]}, cfg(thread), durability="sync")
    assert first["log"] == [f"start-{n}", "prep"]
    assert first["total"] == 7
    (intr,) = first["__interrupt__"]
    assert intr.value == {"question": "approve?", "total": 7}

    paused = app.get_state(cfg(thread))
    assert paused.next == ("ask",)
    assert paused.values == {"log": [f"start-{n}", "prep"], "total": 7}
    assert [i.value for i in paused.interrupts] == [intr.value]

    out = app.invoke(Command(resume=f"yes-{n}"), cfg(thread))
    assert out == {"log": [f"start-{n}", "prep", f"answer:yes-{n}", "done"], "total": 8}

    final = app.get_state(cfg(thread))
    assert final.next == ()
    assert final.values == out
    history = list(app.get_state_history(cfg(thread)))
    assert [h.next for h in history] == [(), ("done",), ("ask",), ("prep",), ("__start__",)]
    assert [h.metadata["step"] for h in history] == [3, 2, 1, 0, -1]
    assert history[0].values == out
    assert history[1].values == {**out, "log": out["log"][:3], "total": 7}
    assert history[2].values == paused.values
    assert history[3].values == {"log": [f"start-{n}"]}
    assert history[3].metadata["source"] == "loop"  # START's step
    assert history[4].metadata["source"] == "input"
    assert history[4].tasks[0].result == {"log": [f"start-{n}"]}


@pytest.fixture
def bounced_saver(pgbouncer: PgBouncer) -> Iterator[PostgresSaver]:  # noqa: F811
    # more client connections (max_size) than PgBouncer's server connections (POOL_SIZE)
    with PostgresSaver(
        pgbouncer.dsn, schema=schema_name(), prepare=False, min_size=1, max_size=WORKERS
    ) as saver:
        yield saver


def test_graph_from_many_threads_through_transaction_pooling(
    bounced_saver: PostgresSaver,
    pgbouncer: PgBouncer,  # noqa: F811
) -> None:
    app = build(bounced_saver)
    _calls.clear()
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []
    run = uuid.uuid4().hex[:6]

    def worker(w: int) -> None:
        try:
            start.wait(timeout=30)
            for k in range(THREADS_PER_WORKER):
                run_one(app, f"{run}-w{w}-{k}", w * 10 + k)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not any(t.is_alive() for t in workers), "a worker hung"
    if errors:
        raise errors[0]

    n = WORKERS * THREADS_PER_WORKER
    # the task ran once per thread id: on resume it was replayed from its stored result
    assert _calls["task:price"] == n
    assert _calls["node:prep"] == n
    assert _calls["node:ask"] == 2 * n  # paused once, then ran again with the answer
    assert _calls["node:done"] == n
    threads = {f"{run}-w{w}-{k}" for w in range(WORKERS) for k in range(THREADS_PER_WORKER)}
    assert set(bounced_saver.list_threads()) >= threads

    # a fresh saver (another process would do the same) reads every thread back
    with PostgresSaver(pgbouncer.dsn, schema=bounced_saver._schema, prepare=False) as again:
        reread = build(again)
        for w in range(WORKERS):
            for k in range(THREADS_PER_WORKER):
                values = reread.get_state(cfg(f"{run}-w{w}-{k}")).values
                assert values["log"][-2:] == [f"answer:yes-{w * 10 + k}", "done"]
                assert values["total"] == 8

    (pool,) = [r for r in admin_rows(pgbouncer, "SHOW POOLS") if r["database"] == pgbouncer.dbname]
    assert int(pool["sv_active"]) + int(pool["sv_idle"]) + int(pool["sv_used"]) <= POOL_SIZE


@pytest.fixture
def own_bouncer(postgres_dsn: str) -> Iterator[PgBouncer]:
    """A PgBouncer for one test, so that no other client takes its 2 server connections."""
    bouncer = PgBouncer(postgres_dsn, pool_size=2)
    yield bouncer
    bouncer.close()


def _pin_server(dsn: str) -> tuple[psycopg.Connection[Any], int]:
    """A client in an open transaction: PgBouncer keeps its server connection for it."""
    conn = psycopg.connect(dsn, prepare_threshold=None)
    row = conn.execute("SELECT pg_backend_pid()").fetchone()  # BEGIN; ... (left open)
    assert row is not None
    return conn, int(row[0])


def _saver_pid(saver: PostgresSaver) -> int:
    with saver._pool.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("prepare", [True, False])
def test_prepared_statements_break_when_the_server_connection_changes(
    own_bouncer: PgBouncer, prepare: bool
) -> None:
    """Server connections X and Y (the pool's 2). Y is pinned while the saver runs one read
    10 times on X (psycopg prepares it on the 6th); then X is pinned and Y released, so the
    saver's next read runs on Y."""
    dsn = own_bouncer.dsn
    first, pid_y = _pin_server(dsn)
    second: psycopg.Connection[Any] | None = None
    try:
        with PostgresSaver(
            dsn, schema=schema_name(), prepare=prepare, min_size=1, max_size=1
        ) as saver:
            pid_x = _saver_pid(saver)
            assert pid_x != pid_y
            for _ in range(10):
                assert saver.get_head("t") is None
            second, pinned = _pin_server(dsn)  # the only free server connection: X
            assert pinned == pid_x
            first.commit()  # Y is free again, and the only one
            assert _saver_pid(saver) == pid_y
            if prepare:
                with pytest.raises(CheckpointError, match="prepared statement") as info:
                    saver.get_head("t")
                assert "'t'" in str(info.value)
            else:
                for _ in range(10):
                    assert saver.get_head("t") is None
    finally:
        first.close()
        if second is not None:
            second.close()
