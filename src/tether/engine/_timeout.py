"""Timeouts of async node, ``@task`` and ``@entrypoint`` attempts (``TimeoutPolicy``).

An attempt runs as an asyncio task watched on its own loop: past ``run_timeout`` since it
started, or ``idle_timeout`` since its last progress, it is cancelled and the attempt raises
``NodeTimeoutError``. Progress is ``runtime.heartbeat()``, and with ``refresh_on="auto"``
also a stream-writer chunk or a ``@task`` call. Once the attempt has timed out its clock is
closed: the cancelled code, if it keeps running, writes no more chunks and starts no tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any, Literal

from tether.errors import NodeTimeoutError
from tether.types import TimeoutPolicy


class AttemptClock:
    """When one timed attempt last made progress, and whether it has timed out."""

    __slots__ = ("auto", "closed", "last", "policy")

    def __init__(self, policy: TimeoutPolicy) -> None:
        self.policy = policy
        self.auto = policy.refresh_on == "auto"
        self.last = time.monotonic()
        self.closed = False

    def heartbeat(self) -> None:
        """``runtime.heartbeat()``: progress under every ``refresh_on``."""
        self.last = time.monotonic()

    def progress(self) -> None:
        """A chunk written or a task started: progress under ``refresh_on="auto"``."""
        if self.auto:
            self.last = time.monotonic()

    def next_limit(self, started: float) -> tuple[float, Literal["idle", "run"]]:
        """The earliest moment a limit fires, and which limit that is."""
        limits: list[tuple[float, Literal["idle", "run"]]] = []
        if self.policy.run_timeout is not None:
            limits.append((started + _float(self.policy.run_timeout), "run"))
        if self.policy.idle_timeout is not None:
            limits.append((self.last + _float(self.policy.idle_timeout), "idle"))
        return min(limits)


def _float(value: Any) -> float:
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


async def run_timed(coro: Coroutine[Any, Any, Any], clock: AttemptClock, name: str) -> Any:
    """Await ``coro`` under ``clock``'s policy; raise NodeTimeoutError naming ``name`` when a
    limit fires (the coroutine is cancelled, not awaited: it may ignore the cancellation)."""
    started = time.monotonic()
    work = asyncio.ensure_future(coro)
    try:
        while True:
            deadline, kind = clock.next_limit(started)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, _ = await asyncio.wait({work}, timeout=remaining)
            if done:
                return work.result()
    except asyncio.CancelledError:
        work.cancel()
        raise
    clock.closed = True
    work.cancel()
    work.add_done_callback(_drain)
    policy = clock.policy
    raise NodeTimeoutError(
        name,
        time.monotonic() - started,
        kind=kind,
        run_timeout=None if policy.run_timeout is None else _float(policy.run_timeout),
        idle_timeout=None if policy.idle_timeout is None else _float(policy.idle_timeout),
    )


def _drain(task: asyncio.Future[Any]) -> None:
    """Mark the abandoned attempt's outcome as seen, so asyncio does not log it."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.exception()
