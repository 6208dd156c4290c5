"""Keeping a running thread's lease alive while a long node runs.

Commits renew the lease; a node that runs longer than the lease without a commit would let
another process take the thread over. One daemon thread per process renews the leases of
all active runs every third of the lease, so a live run keeps its thread however long its
nodes take. A renewal that finds the lease taken stops renewing that run; the run's next
commit then fails with ThreadBusyError, and no turn is lost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tether.checkpoint._base import Owner
from tether.checkpoint._saver import Saver
from tether.errors import CheckpointError, ThreadBusyError


@dataclass(slots=True)
class _Lease:
    saver: Saver
    thread_id: str
    owner: Owner
    active: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)


class Heartbeat:
    """Renews registered leases every ``lease_seconds / 3`` on one daemon thread."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    def register(self, saver: Saver, thread_id: str, owner: Owner) -> None:
        with self._lock:
            self._leases[owner.run_id] = _Lease(saver, thread_id, owner)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tether-lease-heartbeat", daemon=True
                )
                self._thread.start()

    def unregister(self, run_id: str) -> None:
        """Stop renewing; once this returns, no renewal of this run is in flight, so the
        run's release cannot be undone by a late renewal."""
        with self._lock:
            lease = self._leases.pop(run_id, None)
        if lease is not None:
            with lease.lock:
                lease.active = False

    def renew_now(self) -> None:
        """Renew every registered lease once (the daemon's tick; tests call it directly)."""
        with self._lock:
            leases = list(self._leases.values())
        for lease in leases:
            with lease.lock:
                if not lease.active:
                    continue
                try:
                    lease.saver.claim(lease.thread_id, lease.owner, self.lease_seconds)
                    self.renewals += 1
                except ThreadBusyError:
                    lease.active = False  # taken over: the run's next commit says so
                except CheckpointError:
                    pass  # the store is unreachable now; try again at the next tick

    def _run(self) -> None:
        while not self._wake.wait(self.lease_seconds / 3):
            self.renew_now()
