"""The benchmark scenarios, each written once against an ``engines.Engine``.

Every scenario function takes the engine, the backend, the durability mode and its size, runs
once, checks the result (a wrong result raises ``WrongResult``) and returns its metrics as a
dict ``{metric: value}``; times are in milliseconds.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

from benchmarks.engines import Engine, Store, delete_redis_prefix, load

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_BYTES = 200
FANOUT = 8
CHAIN_NODES = 10


class WrongResult(AssertionError):
    """An engine returned a result the scenario did not expect."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise WrongResult(what)


def cfg(thread: str, limit: int = 100) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": limit}


def _ms(seconds: float) -> float:
    return seconds * 1000.0


class Where:
    """Where a scenario's store lives: a fresh SQLite file, Postgres schema or Redis key prefix
    per open. Redis prefixes all start with ``redis_prefix`` (one per run), so a run can
    delete whatever it left behind and nothing else."""

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir)
        self.redis_prefix = f"tether-bench-{uuid.uuid4().hex[:12]}"

    def location(self, engine: Engine, backend: str, scenario: str) -> str:
        if backend == "sqlite":
            return str(self.workdir / f"{engine.name}-{scenario}-{uuid.uuid4().hex[:8]}.db")
        if backend == "postgres":
            return f"bench_{engine.name}_{scenario}"
        if backend == "redis":
            return f"{self.redis_prefix}:{engine.name}-{scenario}-{uuid.uuid4().hex[:8]}"
        return ""


def _cleanup(store: Store) -> None:
    if store.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(store.location + suffix)
            except FileNotFoundError:
                pass
    elif store.backend == "redis":
        delete_redis_prefix(store.location)


# -- graphs ----------------------------------------------------------------------------------


class LoopState(TypedDict):
    i: int
    n: int


def build_loop(e: Engine) -> Any:
    def step(s: LoopState) -> dict[str, Any]:
        return {"i": s["i"] + 1}

    def route(s: LoopState) -> str:
        return "step" if s["i"] < s["n"] else e.END

    g = e.StateGraph(LoopState)
    g.add_node("step", step)
    g.add_edge(e.START, "step")
    g.add_conditional_edges("step", route)
    return g


class ChainState(TypedDict):
    i: int


def build_chain(e: Engine) -> Any:
    def bump(s: ChainState) -> dict[str, Any]:
        return {"i": s["i"] + 1}

    g = e.StateGraph(ChainState)
    names = [f"n{k}" for k in range(CHAIN_NODES)]
    for name in names:
        g.add_node(name, bump)
    g.add_edge(e.START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], e.END)
    return g


class FanState(TypedDict):
    items: Annotated[list[Any], operator.add]


def build_fanout(e: Engine) -> Any:
    def split(s: FanState) -> dict[str, Any]:
        return {"items": ["split"]}

    def branch(k: int) -> Any:
        def run(s: FanState) -> dict[str, Any]:
            return {"items": [k]}

        return run

    def join(s: FanState) -> dict[str, Any]:
        return {"items": ["join"]}

    g = e.StateGraph(FanState)
    g.add_node("split", split)
    g.add_node("join", join)
    g.add_edge(e.START, "split")
    for k in range(FANOUT):
        g.add_node(f"b{k}", branch(k))
        g.add_edge("split", f"b{k}")
        g.add_edge(f"b{k}", "join")
    g.add_edge("join", e.END)
    return g


class MsgState(TypedDict):
    messages: Annotated[list[Any], operator.add]
    i: int
    n: int


def message(i: int) -> dict[str, Any]:
    """About MESSAGE_BYTES bytes of text in a chat-like dict."""
    head = f"message {i:06d}: "
    return {"role": "assistant", "content": head + "x" * (MESSAGE_BYTES - 40 - len(head))}


def build_messages(e: Engine, per_step: int = 1) -> Any:
    """Append ``per_step`` messages a step until ``n`` (the last step may append fewer)."""

    def chat(s: MsgState) -> dict[str, Any]:
        upto = min(s["i"] + per_step, s["n"])
        return {"messages": [message(k) for k in range(s["i"], upto)], "i": upto}

    def route(s: MsgState) -> str:
        return "chat" if s["i"] < s["n"] else e.END

    g = e.StateGraph(MsgState)
    g.add_node("chat", chat)
    g.add_edge(e.START, "chat")
    g.add_conditional_edges("chat", route)
    return g


class ResumeState(TypedDict, total=False):
    i: int
    n: int
    answer: Any


def build_resume(e: Engine) -> Any:
    def work(s: ResumeState) -> dict[str, Any]:
        return {"i": s["i"] + 1}

    def route(s: ResumeState) -> str:
        return "work" if s["i"] < s["n"] else "ask"

    def ask(s: ResumeState) -> dict[str, Any]:
        return {"answer": e.interrupt("approve?")}

    g = e.StateGraph(ResumeState)
    g.add_node("work", work)
    g.add_node("ask", ask)
    g.add_edge(e.START, "work")
    g.add_conditional_edges("work", route)
    g.add_edge("ask", e.END)
    return g


# -- scenarios -------------------------------------------------------------------------------


def loop(e: Engine, backend: str, mode: str, n: int, where: Where) -> dict[str, float]:
    """One node looping on itself ``n`` times on one thread, one invoke."""
    with e.store(backend, where.location(e, backend, "loop")) as store:
        app = e.compile(build_loop(e), store)
        store.reset_counts()
        t0 = time.perf_counter()
        out = app.invoke({"i": 0, "n": n}, cfg("loop", n + 10), durability=mode)
        dt = time.perf_counter() - t0
        _check(out["i"] == n, f"loop: expected i == {n}, got {out!r:.200}")
        metrics = {
            "per step (ms)": _ms(dt) / n,
            "commits/step": store.persist_calls() / n,
        }
        if backend == "sqlite":
            metrics["SQLite tx/step"] = store.sql_commits / n
    _cleanup(store)
    return metrics


def _per_invoke(
    e: Engine, backend: str, mode: str, invokes: int, where: Where, name: str
) -> tuple[float, Store, list[Any]]:
    builder = build_chain(e) if name == "chain" else build_fanout(e)
    inp: dict[str, Any] = {"i": 0} if name == "chain" else {"items": []}
    outs: list[Any] = []
    with e.store(backend, where.location(e, backend, name)) as store:
        app = e.compile(builder, store)
        app.invoke(inp, cfg(f"{name}-warmup"), durability=mode)  # first-call costs apart
        store.reset_counts()
        t0 = time.perf_counter()
        for k in range(invokes):
            outs.append(app.invoke(inp, cfg(f"{name}-{k}"), durability=mode))
        dt = time.perf_counter() - t0
    _cleanup(store)
    return _ms(dt) / invokes, store, outs


def chain(e: Engine, backend: str, mode: str, invokes: int, where: Where) -> dict[str, float]:
    """A 10-node linear graph, ``invokes`` invokes on fresh threads."""
    per, store, outs = _per_invoke(e, backend, mode, invokes, where, "chain")
    for out in outs:
        _check(out["i"] == CHAIN_NODES, f"chain: expected i == {CHAIN_NODES}, got {out!r:.200}")
    return {"per invoke (ms)": per, "commits/invoke": store.persist_calls() / invokes}


def fanout(e: Engine, backend: str, mode: str, invokes: int, where: Where) -> dict[str, float]:
    """split -> 8 parallel branches writing an operator.add key -> join."""
    per, store, outs = _per_invoke(e, backend, mode, invokes, where, "fanout")
    want = sorted(map(str, ["split", *range(FANOUT), "join"]))
    for out in outs:
        got = sorted(map(str, out["items"]))
        _check(got == want, f"fanout: expected items {want}, got {got}")
    return {"per invoke (ms)": per, "commits/invoke": store.persist_calls() / invokes}


def messages(
    e: Engine, backend: str, mode: str, steps: int, where: Where, get_state_calls: int = 5
) -> dict[str, float]:
    """Append one ~200-byte message per step for ``steps`` steps on one thread."""
    with e.store(backend, where.location(e, backend, f"msg{steps}")) as store:
        app = e.compile(build_messages(e), store)
        config = cfg("messages", steps + 10)
        t0 = time.perf_counter()
        app.invoke({"messages": [], "i": 0, "n": steps}, config, durability=mode)
        run_ms = _ms(time.perf_counter() - t0)
        times = []
        for _ in range(get_state_calls):
            t0 = time.perf_counter()
            snap = app.get_state(config)
            times.append(_ms(time.perf_counter() - t0))
        msgs = snap.values["messages"]
        _check(len(msgs) == steps, f"messages: expected {steps} messages, got {len(msgs)}")
        _check(msgs[-1] == message(steps - 1), f"messages: last message is {msgs[-1]!r:.200}")
    metrics = {"get_state (ms)": statistics.median(times), "per step (ms)": run_ms / steps}
    if backend != "memory":
        metrics["bytes stored"] = float(e.bytes_stored(store))
    _cleanup(store)
    return metrics


GET_STATE_BUILD_STEPS = 40
"""How many steps build a get_state thread for an engine that stores the whole state in every
checkpoint (LangGraph): its read does not depend on how the list was built, and one message
per step would cost it quadratic storage (1.5 GB and ~100 s at 4,000 messages)."""


def get_state(
    e: Engine, backend: str, mode: str, size: int, where: Where, calls: int = 20
) -> dict[str, float]:
    """``get_state`` of a thread holding ``size`` ~200-byte messages. tether's thread is built
    one message per step (its longest delta chains); LangGraph's in GET_STATE_BUILD_STEPS
    steps. Cold: the first call on a freshly opened saver; warm: the median of the calls
    after it."""
    location = where.location(e, backend, f"gs{size}")
    per_step = -(-size // GET_STATE_BUILD_STEPS) if e.stores_whole_state else 1
    config = cfg("gs", size + 10)
    with e.store(backend, location) as store:
        app = e.compile(build_messages(e, per_step), store)
        app.invoke({"messages": [], "i": 0, "n": size}, config, durability=mode)
    with e.store(backend, location, fresh=False) as store:
        app = e.compile(build_messages(e, per_step), store)
        t0 = time.perf_counter()
        snap = app.get_state(config)
        cold = _ms(time.perf_counter() - t0)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            app.get_state(config)
            times.append(_ms(time.perf_counter() - t0))
    _cleanup(store)
    msgs = snap.values["messages"]
    _check(len(msgs) == size, f"get_state: expected {size} messages, got {len(msgs)}")
    _check(msgs[-1] == message(size - 1), f"get_state: last message is {msgs[-1]!r:.200}")
    return {"get_state cold (ms)": cold, "get_state warm (ms)": statistics.median(times)}


def _pause(app: Any, e: Engine, thread: str, prior: int) -> None:
    out = app.invoke({"i": 0, "n": prior}, cfg(thread, prior + 10), durability="async")
    _check("__interrupt__" in out, f"resume: setup did not pause: {out!r:.200}")


def _check_resumed(out: Any) -> None:
    _check(
        out.get("answer") is True and "__interrupt__" not in out,
        f"resume: expected answer True and no interrupt, got {out!r:.200}",
    )


def resume_warm(e: Engine, backend: str, mode: str, prior: int, where: Where) -> dict[str, float]:
    """A thread paused at interrupt() after ``prior`` steps; time the resume in-process."""
    with e.store(backend, where.location(e, backend, f"resume{prior}")) as store:
        app = e.compile(build_resume(e), store)
        _pause(app, e, "warmup", 1)  # first-call costs apart
        _check_resumed(app.invoke(e.Command(resume=True), cfg("warmup"), durability=mode))
        _pause(app, e, "r", prior)
        t0 = time.perf_counter()
        out = app.invoke(e.Command(resume=True), cfg("r", prior + 10), durability=mode)
        dt = time.perf_counter() - t0
        _check_resumed(out)
    _cleanup(store)
    return {"resume warm (ms)": _ms(dt)}


def resume_cold(e: Engine, backend: str, mode: str, prior: int, where: Where) -> dict[str, float]:
    """As ``resume_warm``, but the resume runs in a fresh Python process."""
    store = e.open(backend, where.location(e, backend, f"cold{prior}"))
    try:
        _pause(e.compile(build_resume(e), store), e, "r", prior)
    finally:
        store.close()
    job = {
        "engine": e.name,
        "backend": backend,
        "location": store.location,
        "thread": "r",
        "prior": prior,
        "mode": mode,
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._child", json.dumps(job)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - t0
    _cleanup(store)
    if proc.returncode != 0:
        raise RuntimeError(f"resume child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"resume fresh process (ms)": got["inner_ms"], "fresh process wall (ms)": _ms(wall)}


def child_main(argv: list[str]) -> int:
    """In a fresh process: open the saver, build the graph, resume; print the inner time."""
    job = json.loads(argv[0])
    e = load(job["engine"])
    t0 = time.perf_counter()
    store = e.open(job["backend"], job["location"], fresh=False)
    try:
        app = e.compile(build_resume(e), store)
        out = app.invoke(
            e.Command(resume=True), cfg(job["thread"], job["prior"] + 10), durability=job["mode"]
        )
        inner = time.perf_counter() - t0
        _check_resumed(out)
    finally:
        store.close()
    print(json.dumps({"inner_ms": _ms(inner)}))
    return 0


def fsync_floor(
    workdir: str | os.PathLike[str], count: int, sync: Callable[[int], None] = os.fsync
) -> list[float]:
    """Times (ms) of one 4 KB write + fsync (or ``sync``) to a file in ``workdir``."""
    path = Path(workdir) / "fsync-probe.bin"
    block = os.urandom(4096)
    times: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Preallocate, so the timed writes overwrite blocks in place (no size change).
        for _ in range(64):
            os.write(fd, block)
        os.fsync(fd)
        for k in range(count + 5):
            os.lseek(fd, (k % 64) * 4096, os.SEEK_SET)
            t0 = time.perf_counter()
            os.write(fd, block)
            sync(fd)
            if k >= 5:  # warm-up
                times.append(_ms(time.perf_counter() - t0))
    finally:
        os.close(fd)
        path.unlink()
    return times
