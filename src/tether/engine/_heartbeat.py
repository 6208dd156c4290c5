"""Keeping a running thread's lease alive while a long node runs.

Commits renew the lease; a node that runs longer than the lease without a commit would let
another process take the thread over. One daemon thread per process renews the lease of
every active run every third of its saver's ``lease_seconds``, so a live run keeps its thread
however long its nodes take. A renewal is fenced (``Saver.renew``): it only extends the
run's own lease at its own epoch, never claims. One that finds the lease gone (taken over
while this process stalled, and perhaps released since) marks the run lost; the run then
stops with LeaseLostError at its next write, and writes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tether.checkpoint._lease import Fence
from tether.checkpoint._saver import Saver
from tether.errors import CheckpointError, LeaseLostError


@dataclass(slots=True)
class _Lease:
    saver: Saver
    thread_id: str
    fence: Fence
    on_lost: Callable[[LeaseLostError], None]
    due: float
    active: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)


class Heartbeat:
    """Renews registered leases, each every third of its saver's lease, on one daemon
    thread."""

    def __init__(self) -> None:
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    def register(
        self,
        saver: Saver,
        thread_id: str,
        fence: Fence,
        on_lost: Callable[[LeaseLostError], None],
    ) -> None:
        """Renew ``fence``'s lease until ``unregister``; call ``on_lost`` if it is gone."""
        due = time.monotonic() + saver.lease_seconds / 3
        with self._lock:
            self._leases[fence.run_id] = _Lease(saver, thread_id, fence, on_lost, due)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tether-lease-heartbeat", daemon=True
                )
                self._thread.start()
        self._wake.set()  # the new lease may be due sooner than the daemon's next tick

    def unregister(self, run_id: str) -> None:
        """Stop renewing; once this returns, no renewal of this run is in flight, so the
        run's release cannot be undone by a late renewal."""
        with self._lock:
            lease = self._leases.pop(run_id, None)
        if lease is not None:
            with lease.lock:
                lease.active = False

    def renew_now(self, *, only_due: bool = False) -> None:
        """Renew every registered lease once (``only_due``: those whose time has come). The
        daemon's tick; tests call it directly."""
        now = time.monotonic()
        with self._lock:
            leases = [x for x in self._leases.values() if not only_due or x.due <= now]
        for lease in leases:
            self._renew(lease)

    def _renew(self, lease: _Lease) -> None:
        with lease.lock:
            lease.due = time.monotonic() + lease.saver.lease_seconds / 3
            if not lease.active:
                return
            try:
                lease.saver.renew(lease.thread_id, lease.fence, lease.saver.lease_seconds)
                self.renewals += 1
            except LeaseLostError as exc:
                lease.active = False  # never fight for it: the run is fenced
                lease.on_lost(exc)
            except CheckpointError:
                pass  # the store is unreachable now; try again at the next tick

    def _next_due(self) -> float:
        with self._lock:
            dues = [x.due for x in self._leases.values() if x.active]
        return min(dues, default=time.monotonic() + 60.0)

    def _run(self) -> None:
        while True:
            self._wake.wait(max(0.0, self._next_due() - time.monotonic()))
            self._wake.clear()
            self.renew_now(only_due=True)
