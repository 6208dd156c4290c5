"""Child process for the lease tests (test_fencing.py, test_lease_identity.py,
test_fair_wait.py). argv[1] is JSON: ``backend`` (kind + path / dsn+schema / url+prefix),
``thread``, ``label``, ``lease`` (seconds), ``role`` and the role's marker files.

Roles:
- "run": ``invoke(input)`` (or ``invoke(None)`` with ``resume_none``, ``Command(resume=...)``
  with ``answer``) of a graph whose node ``work`` calls ``@task effect`` (which appends the
  label to ``effects``, writes ``entered`` and, given ``go``, waits for that file) and then
  ``interrupt()``s when ``ask`` is set. With ``beats``, every heartbeat renewal appends "ok" or
  "lost" there. With ``waiting``, the first refused claim touches that file.
- "claim": claim the thread's lease with a fresh run, write ``entered`` (pid and run id as
  JSON), then wait for ``go`` (or exit at once, holding the lease as a dead process would,
  with ``exit``).
- "reuse" (run as pid 1 of a fresh pid namespace): a holder claims the lease and dies, a new
  process is given the holder's pid, then this process claims; prints whether it took the
  lease.

With ``next_pid`` (in a fresh pid namespace, as root) the process first starts itself again
as that pid, through ``/proc/sys/kernel/ns_last_pid``, and exits with the copy's code.

Exit codes: 0 done (last stdout line: the result as JSON), 3 ThreadBusyError, 4
LeaseLostError (stdout: LOST and the message).
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from tether import START, Command, LeaseLostError, StateGraph, ThreadBusyError, interrupt, task
from tether.checkpoint import Owner, Saver

BUSY_EXIT = 3
LOST_EXIT = 4
ARGS: dict[str, Any] = json.loads(sys.argv[1]) if __name__ == "__main__" else {}


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def open_saver() -> Saver:
    backend, lease = ARGS["backend"], float(ARGS.get("lease", 300))
    if backend["kind"] == "sqlite":
        from tether.checkpoint import SqliteSaver

        return SqliteSaver(backend["path"], lease_seconds=lease)
    if backend["kind"] == "postgres":
        from tether.checkpoint import PostgresSaver

        return PostgresSaver(  # type: ignore[no-any-return]
            backend["dsn"], schema=backend["schema"], lease_seconds=lease
        )
    from tether.checkpoint import RedisSaver

    return RedisSaver(  # type: ignore[no-any-return]
        backend["url"], prefix=backend["prefix"], lease_seconds=lease
    )


def wait_for(path: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def append(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


@task
def effect() -> str:
    label = ARGS["label"]
    if ARGS.get("effects"):
        append(ARGS["effects"], label)
    if ARGS.get("entered"):
        Path(ARGS["entered"]).write_text(str(os.getpid()))
    if ARGS.get("go"):
        wait_for(ARGS["go"])
    return f"{label}-result"


def build(saver: Saver) -> Any:
    def work(state: State) -> dict[str, Any]:
        result = effect().result()
        if ARGS.get("ask"):
            result += ":" + str(interrupt("ok?"))
        return {"log": [result]}

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_edge(START, "work")
    return g.compile(checkpointer=saver)


def watch(saver: Saver) -> None:
    """Report heartbeat renewals and refused claims through files."""
    if ARGS.get("beats"):
        renew = saver.renew

        def renew_logged(*args: Any) -> None:
            try:
                renew(*args)
            except LeaseLostError:
                append(ARGS["beats"], "lost")
                raise
            append(ARGS["beats"], "ok")

        saver.renew = renew_logged  # type: ignore[method-assign, assignment]
    if ARGS.get("waiting"):
        claim = saver.claim

        def claim_logged(*args: Any, **kwargs: Any) -> Any:
            try:
                return claim(*args, **kwargs)
            except ThreadBusyError:
                Path(ARGS["waiting"]).touch()
                raise

        saver.claim = claim_logged  # type: ignore[method-assign]


def run(saver: Saver) -> Any:
    config = {"configurable": {"thread_id": ARGS["thread"]}}
    inp: Any = {"log": [f"{ARGS['label']}:in"]}
    if ARGS.get("resume_none"):
        inp = None
    elif "answer" in ARGS:
        inp = Command(resume=ARGS["answer"])
    return build(saver).invoke(inp, config, on_busy=ARGS.get("on_busy", "raise"))


def hold(saver: Saver) -> Any:
    owner = Owner(uuid.uuid4().hex)
    saver.claim(ARGS["thread"], owner, saver.lease_seconds)
    Path(ARGS["entered"]).write_text(json.dumps({"pid": os.getpid(), "run": owner.run_id}))
    if ARGS.get("go"):
        wait_for(ARGS["go"])
    return {"pid": os.getpid()}


def start_as(pid: int, args: dict[str, Any], **popen: Any) -> subprocess.Popen[Any]:
    """Start this script with ``args`` as process ``pid`` of our pid namespace (pids are
    handed out in order after ``ns_last_pid``, and nothing else runs in a fresh namespace)."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    proc = subprocess.Popen([sys.executable, __file__, json.dumps(args)], **popen)
    assert proc.pid == pid, (proc.pid, pid)
    return proc


def reuse(saver: Saver) -> Any:
    entered = ARGS["entered"]
    holder = {**ARGS, "role": "claim", "exit": True}
    subprocess.run([sys.executable, __file__, json.dumps(holder)], check=True)
    dead = json.loads(Path(entered).read_text())
    sleeper = start_as(dead["pid"], {"role": "sleep"}, stdin=subprocess.PIPE)
    try:
        owner = Owner(uuid.uuid4().hex)
        try:
            saver.claim(ARGS["thread"], owner, saver.lease_seconds)
        except ThreadBusyError as exc:
            return {
                "holder": dead["pid"],
                "reused_by": sleeper.pid,
                "taken": False,
                "why": str(exc),
            }
        return {"holder": dead["pid"], "reused_by": sleeper.pid, "taken": True}
    finally:
        assert sleeper.stdin is not None
        sleeper.stdin.close()
        sleeper.wait()


def main() -> int:
    if ARGS["role"] == "sleep":
        sys.stdin.read()  # until the parent closes our stdin
        return 0
    if ARGS.get("next_pid"):
        return start_as(ARGS["next_pid"], {**ARGS, "next_pid": None}).wait()
    saver = open_saver()
    watch(saver)
    try:
        roles = {"claim": hold, "reuse": reuse, "run": run}
        out = roles[ARGS["role"]](saver)
    except LeaseLostError as exc:
        print(f"LOST {exc}")
        return LOST_EXIT
    except ThreadBusyError as exc:
        print(f"BUSY {exc}")
        return BUSY_EXIT
    if ARGS["role"] == "claim" and ARGS.get("exit"):
        os._exit(0)  # no close: the lease stays, as a killed process would leave it
    saver.close()
    print(json.dumps(out, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
