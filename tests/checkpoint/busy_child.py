"""Child process for test_processes.py: advances one thread on a shared SQLite file or
PostgreSQL schema.

Role "hold": run the graph; its node writes the ``entered`` marker file and waits until the
parent writes the ``release`` marker file. Role "push": run the graph once, with
``on_busy`` as given; when the thread is busy, print BUSY and exit with BUSY_EXIT (in wait
mode it writes the ``waiting`` marker file the first time it finds the thread busy).
On success the last stdout line is the final state as JSON.
"""

from __future__ import annotations

import json
import operator
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from tether import END, START, StateGraph, ThreadBusyError
from tether.checkpoint import Saver

BUSY_EXIT = 3
ARGS: dict[str, Any] = json.loads(sys.argv[1]) if __name__ == "__main__" else {}


class State(TypedDict, total=False):
    log: Annotated[list, operator.add]


def open_saver() -> Saver:
    if ARGS["kind"] == "sqlite":
        from tether.checkpoint import SqliteSaver

        return SqliteSaver(ARGS["path"])
    from tether.checkpoint import PostgresSaver

    return PostgresSaver(ARGS["dsn"], schema=ARGS["schema"])  # type: ignore[no-any-return]


def wait_for(path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def build(saver: Saver) -> Any:
    label = ARGS["label"]

    def work(state: State) -> dict[str, Any]:
        if ARGS["role"] == "hold":
            Path(ARGS["entered"]).write_text("in the node")
            wait_for(ARGS["release"])
        return {"log": [f"{label}:work"]}

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(checkpointer=saver)


def main() -> int:
    saver = open_saver()
    if ARGS.get("waiting"):
        claim = saver.claim

        def watched(thread_id: str, owner: Any, lease_seconds: float, **kw: Any) -> Any:
            try:
                return claim(thread_id, owner, lease_seconds, **kw)
            except ThreadBusyError:
                Path(ARGS["waiting"]).touch()
                raise

        saver.claim = watched  # type: ignore[method-assign]
    try:
        out = build(saver).invoke(
            {"log": [f"{ARGS['label']}:in"]},
            {"configurable": {"thread_id": ARGS["thread"]}},
            durability="sync",
            on_busy=ARGS.get("on_busy", "raise"),
        )
    except ThreadBusyError as exc:
        print(f"BUSY {exc}")
        return BUSY_EXIT
    finally:
        saver.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
