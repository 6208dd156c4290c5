"""Child process for the trading crash test: one step of the agent on a SQLite file.

argv[1] is JSON: {"db", "thread", "broker", "step": "start" | "approve" | "recover",
"crash_after_order": bool}. With ``crash_after_order`` the broker call is wrapped so that
the process SIGKILLs itself right after the broker answered, before the ``@task`` returns
(so its result is never journaled). The example code itself has no crash hook.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import examples.trading as trading

from tether import Command
from tether.checkpoint import SqliteSaver

ARGS: dict[str, Any] = json.loads(sys.argv[1])

if ARGS.get("crash_after_order"):
    real_send_order = trading.send_order

    def send_order_then_die(*args: Any, **kwargs: Any) -> dict[str, Any]:
        real_send_order(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: SIGKILL was sent")

    trading.send_order = send_order_then_die


def main() -> None:
    config = {"configurable": {"thread_id": ARGS["thread"]}}
    with SqliteSaver(ARGS["db"]) as saver:
        app = trading.build(saver, broker_url=ARGS["broker"])
        step = ARGS["step"]
        if step == "start":
            out = app.invoke(trading.initial_state(), config, durability="sync")
        elif step == "approve":
            out = app.invoke(Command(resume=True), config, durability="sync")
        elif step == "recover":
            out = app.invoke(None, config, durability="sync")
        else:
            raise SystemExit(f"unknown step {step!r}")
    out["__interrupt__"] = [i.id for i in out.get("__interrupt__", [])]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
