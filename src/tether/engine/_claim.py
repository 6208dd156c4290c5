"""How a run takes a thread's lease and gives it back (the rules: checkpoint/_lease.py).

A run claims once; with ``on_busy="wait"`` it waits in line, trying again at most every
``WAIT_POLL_SECONDS`` so its ticket never lapses, and gives its place up if it stops waiting.
"""

from __future__ import annotations

import contextlib
import time

from tether.checkpoint._lease import Claim, Owner, mark_run_ended
from tether.checkpoint._saver import Saver
from tether.errors import CheckpointError, ThreadBusyError

WAIT_POLL_SECONDS = 0.25
"""The longest pause between two claims of a run waiting for a thread (on_busy="wait"); it
stays well under _lease.TICKET_SECONDS, so a waiting run never loses its place in line."""


def claim_thread(
    saver: Saver, thread_id: str, owner: Owner, on_busy: str, wait_timeout: float
) -> Claim:
    """Take the thread's lease. With ``on_busy="wait"``, wait in line: each refused claim
    keeps the run's ticket fresh, and the lease goes to the oldest waiter (see
    checkpoint/_lease.py), so newcomers polling faster cannot overtake older waiters."""
    waiting = on_busy == "wait"
    deadline = time.monotonic() + wait_timeout
    delay = 0.005
    try:
        while True:
            try:
                return saver.claim(thread_id, owner, saver.lease_seconds, waiting=waiting)
            except ThreadBusyError:
                if not waiting or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, WAIT_POLL_SECONDS)
    except BaseException:
        if waiting:  # give up the place in line now rather than when the ticket lapses
            with contextlib.suppress(CheckpointError):
                saver.release(thread_id, owner)
        raise


def release_lease(saver: Saver, thread_id: str, owner: Owner, *, failed: bool) -> None:
    """Drop the lease. If that fails after the work failed, the work's own error is the one
    to see (this process treats the lease as free anyway; others wait for it to expire)."""
    try:
        saver.release(thread_id, owner)
    except CheckpointError as exc:
        mark_run_ended(owner.run_id)
        if failed:
            return
        raise CheckpointError(
            f"thread {thread_id!r}: the run finished and was saved, but releasing its lease "
            f"failed ({exc}); other processes see the thread busy until the lease expires"
        ) from exc
