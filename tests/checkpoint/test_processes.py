"""Several processes on one store (SQLite file, PostgreSQL schema): two processes advancing
one thread, exactly one wins and the other gets ThreadBusyError, or with on_busy="wait" runs
after it; nothing is lost. And the async entry points (ainvoke / astream) on the same savers,
with an async node and an interrupt answered in a later call."""

from __future__ import annotations

import asyncio
import json
import operator
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Command, StateGraph, interrupt
from tether.checkpoint import Saver, SqliteSaver

CHILD = str(Path(__file__).with_name("busy_child.py"))
BUSY_EXIT = 3
T = "shared-thread"
TIMEOUT = 60.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "shared.db")}
    return {
        "kind": "postgres",
        "dsn": request.getfixturevalue("postgres_dsn"),
        "schema": f"p_{uuid.uuid4().hex[:10]}",
    }


def open_saver(store: dict[str, Any]) -> Saver:
    if store["kind"] == "sqlite":
        return SqliteSaver(store["path"])
    from tether.checkpoint import PostgresSaver

    return PostgresSaver(store["dsn"], schema=store["schema"])  # type: ignore[no-any-return]


@pytest.fixture
def saver(store: dict[str, Any]) -> Iterator[Saver]:
    s = open_saver(store)
    yield s
    s.close()


def spawn(store: dict[str, Any], **args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, CHILD, json.dumps({**store, "thread": T, **args})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def wait_for_file(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``path`` exists; fails at once if ``proc`` exits first."""
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            code, out, err = finish(proc)
            pytest.fail(f"child exited ({code}) before writing {path.name}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]


def reader(saver: Saver) -> Any:
    g = StateGraph(Log)
    g.add_node("work", lambda s: {})
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(checkpointer=saver)


def test_second_process_gets_thread_busy(
    store: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    entered, release = tmp_path / "entered", tmp_path / "release"
    a = spawn(store, role="hold", label="A", entered=str(entered), release=str(release))
    try:
        wait_for_file(entered, a)
        code, out, err = finish(spawn(store, role="push", label="B"))
        assert code == BUSY_EXIT, (code, out, err)
        assert out.startswith("BUSY") and T in out
    finally:
        release.write_text("go")  # B has finished: let A go on
        code, out, err = finish(a)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1]) == {"log": ["A:in", "A:work"]}

    app = reader(saver)
    assert app.get_state(cfg()).values == {"log": ["A:in", "A:work"]}
    # A's input checkpoint, START's step and A's step: B stored nothing at all
    assert len(list(app.get_state_history(cfg()))) == 3
    # nothing is lost: B, run again now, goes on from A's result
    code, out, err = finish(spawn(store, role="push", label="B"))
    assert code == 0, err
    both = {"log": ["A:in", "A:work", "B:in", "B:work"]}
    assert json.loads(out.splitlines()[-1]) == both
    assert app.get_state(cfg()).values == both


def test_second_process_waits_with_on_busy_wait(
    store: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    entered, release, waiting = tmp_path / "entered", tmp_path / "release", tmp_path / "waiting"
    a = spawn(store, role="hold", label="A", entered=str(entered), release=str(release))
    b: subprocess.Popen[str] | None = None
    try:
        wait_for_file(entered, a)
        b = spawn(store, role="push", label="B", on_busy="wait", waiting=str(waiting))
        wait_for_file(waiting, b)  # B found the thread busy and keeps trying
        assert b.poll() is None
    finally:
        release.write_text("go")
        code_a, out_a, err_a = finish(a)
    assert code_a == 0, err_a
    assert json.loads(out_a.splitlines()[-1]) == {"log": ["A:in", "A:work"]}
    code_b, out_b, err_b = finish(b)
    assert code_b == 0, (out_b, err_b)
    both = {"log": ["A:in", "A:work", "B:in", "B:work"]}
    assert json.loads(out_b.splitlines()[-1]) == both
    app = reader(saver)
    assert app.get_state(cfg()).values == both
    assert [h.metadata["source"] for h in app.get_state_history(cfg())] == [
        "loop",
        "loop",
        "input",
        "loop",
        "loop",
        "input",
    ]


def cfg(thread: str = T) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


# -- async entry points ----------------------------------------------------------------------


def async_graph(saver: Saver) -> Any:
    async def draft(state: Log) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"log": ["draft"]}

    async def review(state: Log) -> dict[str, Any]:
        await asyncio.sleep(0)
        answer = interrupt({"review": state["log"][-1]})
        return {"log": [f"review:{answer}"]}

    async def publish(state: Log) -> dict[str, Any]:
        return {"log": ["published"]}

    g = StateGraph(Log)
    g.add_node("draft", draft)
    g.add_node("review", review)
    g.add_node("publish", publish)
    g.add_edge(START, "draft")
    g.add_edge("draft", "review")
    g.add_edge("review", "publish")
    g.add_edge("publish", END)
    return g.compile(checkpointer=saver)


def test_ainvoke_and_astream_with_interrupt_and_resume(store: dict[str, Any], saver: Saver) -> None:
    app = async_graph(saver)

    async def main() -> dict[str, Any]:
        # ainvoke to the pause, resume with astream
        first = await app.ainvoke({"log": ["in"]}, cfg("a1"), durability="sync")
        assert [i.value for i in first["__interrupt__"]] == [{"review": "draft"}]
        snap = await app.aget_state(cfg("a1"))
        assert snap.next == ("review",) and len(snap.interrupts) == 1
        chunks = [c async for c in app.astream(Command(resume="ok"), cfg("a1"), durability="sync")]
        assert chunks == [{"review": {"log": ["review:ok"]}}, {"publish": {"log": ["published"]}}]

        # astream to the pause, resume with ainvoke
        values = [c async for c in app.astream({"log": ["in"]}, cfg("a2"), stream_mode="values")]
        assert values[-1]["log"] == ["in", "draft"] and "__interrupt__" in values[-1]
        done = await app.ainvoke(Command(resume="fine"), cfg("a2"))
        assert done == {"log": ["in", "draft", "review:fine", "published"]}
        return {"a1": (await app.aget_state(cfg("a1"))).values, "a2": done}

    result = asyncio.run(main())
    assert result["a1"] == {"log": ["in", "draft", "review:ok", "published"]}
    # a fresh saver object on the same store reads what the async runs committed
    other = open_saver(store)
    try:
        again = async_graph(other)
        assert again.get_state(cfg("a1")).values == result["a1"]
        assert again.get_state(cfg("a2")).values == result["a2"]
        assert again.get_state(cfg("a2")).next == ()
    finally:
        other.close()
