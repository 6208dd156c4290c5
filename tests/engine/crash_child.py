"""Child process for the crash tests: runs (or resumes) one graph and kills itself with
SIGKILL at a chosen point. Every node and task execution is appended to a log file first,
so the parent can count what ran, across processes."""

from __future__ import annotations

import json
import operator
import os
import signal
import sys
import threading
from typing import Annotated, Any, TypedDict

from tether import END, START, Command, StateGraph, interrupt, task
from tether.checkpoint import Saver

ARGS: dict[str, Any] = json.loads(sys.argv[1])
LOG = ARGS["log"]
CRASH = ARGS.get("crash") or ""


def log(event: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (event + "\n").encode())
    finally:
        os.close(fd)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_here(point: str) -> None:
    if point == CRASH and not os.path.exists(LOG + ".crashed"):
        with open(LOG + ".crashed", "w") as f:
            f.write(point)
        die()


class State(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]
    total: int
    answers: Annotated[list[Any], operator.add]


@task
def charge(amount: int) -> int:
    log("task:charge")
    crash_here("after_task:charge")
    return amount * 2


def node(name: str) -> Any:
    def run(state: State) -> dict[str, Any]:
        log(f"node:{name}")
        update: dict[str, Any] = {"trail": [name]}
        if name == "c":
            update["total"] = charge(21).result()
        if name == "ask" and ARGS.get("interrupts"):
            answers = [interrupt(f"question {i}", id=i) for i in ARGS["interrupts"]]
            update["answers"] = answers
        if name == "b2" and CRASH == "in_node:b2":
            OUTPUT_SAVED.wait(timeout=60)  # b1 finished and its writes are stored
        crash_here(f"in_node:{name}")
        return update

    run.__name__ = name
    return run


def build(saver: Saver) -> Any:
    g = StateGraph(State)
    for name in ("a", "b1", "b2", "c", "d"):
        g.add_node(name, node(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b1")
    g.add_edge("a", "b2")
    g.add_edge(["b1", "b2"], "c")
    g.add_edge("c", "d")
    g.add_edge("d", END)
    return g.compile(checkpointer=saver)


def build_interrupts(saver: Saver) -> Any:
    g = StateGraph(State)
    g.add_node("ask", node("ask"))
    g.add_node("left", node("left"))
    g.add_node("right", node("right"))
    g.add_node("approve_l", approver("approve_l"))
    g.add_node("approve_r", approver("approve_r"))
    g.add_edge(START, "ask")
    g.add_edge("ask", "left")
    g.add_edge("ask", "right")
    g.add_edge("left", "approve_l")
    g.add_edge("right", "approve_r")
    return g.compile(checkpointer=saver)


def approver(name: str) -> Any:
    def run(state: State) -> dict[str, Any]:
        log(f"node:{name}")
        return {"answers": [interrupt(f"{name}?")]}

    run.__name__ = name
    return run


def open_saver() -> Saver:
    backend = ARGS["backend"]
    kind = backend["kind"]
    if kind == "sqlite":
        from tether.checkpoint import SqliteSaver

        return SqliteSaver(backend["path"])
    if kind == "postgres":
        from tether.checkpoint import PostgresSaver

        return PostgresSaver(backend["dsn"], schema=backend["schema"])  # type: ignore[no-any-return]
    from tether.checkpoint import RedisSaver

    return RedisSaver(backend["url"], prefix=backend["prefix"])  # type: ignore[no-any-return]


OUTPUT_SAVED = threading.Event()


def wrap_commits(saver: Saver) -> None:
    """Crash points around the N-th commit of this process; and a signal when a finished
    task's writes have been saved (so a sibling can crash after it, deterministically)."""
    original = saver.commit
    original_put = saver.put_writes
    count = {"n": 0}

    def put_writes(thread_id: str, writes: Any, **kwargs: Any) -> None:
        original_put(thread_id, writes, **kwargs)
        if any(w.kind == "output" for w in writes):
            OUTPUT_SAVED.set()

    saver.put_writes = put_writes  # type: ignore[method-assign]

    def commit(*args: Any, **kwargs: Any) -> None:
        count["n"] += 1
        crash_here(f"before_commit:{count['n']}")
        original(*args, **kwargs)
        crash_here(f"after_commit:{count['n']}")

    saver.commit = commit  # type: ignore[method-assign]


def main() -> None:
    saver = open_saver()
    wrap_commits(saver)
    graph = ARGS.get("graph", "main")
    app = build(saver) if graph == "main" else build_interrupts(saver)
    config = {"configurable": {"thread_id": ARGS["thread"]}, "recursion_limit": 50}
    phase = ARGS["phase"]
    if phase == "run":
        inp: Any = {"trail": [], "total": 0}
    elif phase == "resume":
        inp = None
    else:
        inp = Command(resume=ARGS["resume"])
    result = app.invoke(inp, config, durability=ARGS["mode"])
    out = {
        k: ([[i.id, i.value] for i in v] if k == "__interrupt__" else v) for k, v in result.items()
    }
    print(json.dumps(out))
    saver.close()


if __name__ == "__main__":
    main()
