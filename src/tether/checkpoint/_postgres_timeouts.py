"""How long PostgresSaver waits for its server, and what it raises when the wait is over.

Invariant: no saver call waits on the server longer than its deadline. A frozen server
(SIGSTOP, a paused VM, a wedged host) still has its kernel acknowledge TCP, so keepalives
and ``tcp_user_timeout`` never fire and a server-side ``statement_timeout`` cannot: the
``Watchdog`` shuts the call's socket down from this side when the deadline passes, the call
fails with StoreTimeoutError, and the connection is discarded, never reused.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from tether.errors import CheckpointError, StoreTimeoutError


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The waits a PostgresSaver allows; each default is documented on PostgresSaver."""

    connect: int  # libpq connect_timeout, whole seconds (libpq makes anything under 2 into 2)
    statement: float | None  # client-side deadline of one saver call; None: no deadline
    keepalive_idle: int | None  # silence before TCP keepalive probes start; None: OS defaults
    pool_wait: float  # how long a call waits for a free pooled connection

    def libpq(self, conninfo: str) -> dict[str, Any]:
        """The libpq parameters these timeouts set, except those ``conninfo`` sets itself (a
        value written in the DSN wins)."""
        wanted: dict[str, Any] = {"connect_timeout": max(2, self.connect)}
        if self.keepalive_idle is not None:
            idle = max(1, self.keepalive_idle)
            wanted.update(
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=max(1, idle // 3),
                keepalives_count=3,
                # Also bounds how long sent data may stay unacknowledged (a dead network).
                tcp_user_timeout=2 * idle * 1000,
            )
        given = _parsed(conninfo)
        return {k: v for k, v in wanted.items() if k not in given}

    def connect_seconds(self, conninfo: str) -> int:
        given = _parsed(conninfo).get("connect_timeout")
        try:
            return max(2, int(float(str(given))))
        except ValueError:
            return max(2, self.connect)


def _parsed(conninfo: str) -> dict[str, Any]:
    """The DSN's parameters; none for a malformed one (connecting then says what is wrong)."""
    try:
        return conninfo_to_dict(conninfo) if conninfo else {}
    except psycopg.Error:
        return {}


@dataclass(slots=True)
class Alarm:
    """One armed deadline: a duplicate of the call's socket, so that shutting it down can
    never hit a descriptor number libpq has closed and the OS has handed to someone else."""

    fd: int
    deadline: float
    fired: bool = field(default=False)


class Watchdog:
    """One daemon thread that shuts down the socket of every call past its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._alarms: dict[int, Alarm] = {}
        self._sleeping_until = math.inf  # when the thread wakes next (inf: when told)
        self._thread: threading.Thread | None = None

    def arm(self, conn: psycopg.Connection[Any], seconds: float) -> Alarm:
        alarm = Alarm(os.dup(conn.fileno()), time.monotonic() + seconds)
        with self._cond:
            self._alarms[id(alarm)] = alarm
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tether-postgres-watchdog", daemon=True
                )
                self._thread.start()
            elif alarm.deadline < self._sleeping_until:
                self._cond.notify()
        return alarm

    def disarm(self, alarm: Alarm) -> None:
        """After this returns the watchdog never touches the call's socket again."""
        with self._cond:
            self._alarms.pop(id(alarm), None)
        os.close(alarm.fd)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, alarm in list(self._alarms.items()):
                    if alarm.deadline <= now:
                        del self._alarms[key]
                        alarm.fired = True
                        _shut_down(alarm.fd)
                nearest = min((a.deadline for a in self._alarms.values()), default=math.inf)
                self._sleeping_until = nearest
                self._cond.wait(None if nearest == math.inf else nearest - now)


def _shut_down(fd: int) -> None:
    """End the connection under libpq: its wait returns, the read finds EOF, the call fails
    with OperationalError and psycopg marks the connection broken."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer
    finally:
        sock.detach()  # the descriptor stays ours until disarm closes it


WATCHDOG = Watchdog()


# psycopg 3.1 raises a plain OperationalError on connect_timeout; later versions this.
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(psycopg.errors, "ConnectionTimeout", None),) if t is not None
)


def _is_connect_timeout(exc: psycopg.Error) -> bool:
    return isinstance(exc, _CONNECT_TIMEOUT) or "timeout expired" in str(exc)


def store_error(
    exc: psycopg.Error,
    *,
    what: str,
    thread_id: str | None,
    server: str,
    timeouts: Timeouts,
    fired: bool,
    connect_seconds: int,
) -> CheckpointError:
    """The tether error for a failed call: StoreTimeoutError naming the setting that ran
    out, else CheckpointError."""
    where = f" on thread {thread_id!r}" if thread_id is not None else ""
    doing = f"PostgresSaver: {what}{where}"
    if fired:
        setting = f"statement_timeout={timeouts.statement:g} s"
        hint = "PostgresSaver(statement_timeout=...)"
    elif _is_connect_timeout(exc):
        setting = f"connect_timeout={connect_seconds} s"
        hint = "PostgresSaver(connect_timeout=...), or connect_timeout in the DSN (which wins)"
    elif isinstance(exc, PoolTimeout):
        setting = f"timeout={timeouts.pool_wait:g} s"
        hint = "PostgresSaver(timeout=...) or max_size=, if all pooled connections were busy"
    else:
        return CheckpointError(f"{doing} failed: {exc}")
    return StoreTimeoutError(
        f"{doing} timed out: the server at {server} did not answer within {setting}. It may "
        "be frozen, overloaded or unreachable, and a write that timed out may still be "
        f"applied if it wakes up. If the server is only slow, raise the limit: {hint}"
    )
