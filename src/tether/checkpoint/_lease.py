"""Who may write this thread: the lease rules, in one place. Every saver applies these.

A thread is written by one run at a time, the holder of its lease (owner, expiry, epoch).

- **Claim.** A run takes the lease when it is free, expired, already its own, or held by an
  owner that is provably gone (``Owner.is_gone``): a run of this process that has ended, or a
  process that is dead in our pid namespace on our boot (``Process.is_dead``; a process of
  another namespace or machine, even with our hostname, only loses its lease by expiry).
  Taking it for another run bumps the epoch; a run's claim of the lease it already holds
  keeps it. Releasing clears the holder and keeps the epoch.
- **Fence.** Every write of a run (``commit`` and ``put_writes``) carries the run's
  ``Fence`` (run id, epoch). The saver checks, in the same transaction as the write, that the
  stored lease still names that run and that epoch; if not it raises LeaseLostError and
  stores nothing. A lease that expired but that nobody took still passes: nobody else wrote
  in between, so its holder may go on (and its next commit renews it).
- **Renew.** The heartbeat extends only its own lease (``Saver.renew``), fenced like a write;
  it never claims.
- **Unleased writes** (tools and tests, no fence) are refused while an unexpired lease is
  held by anyone.
- **Waiting in line.** A claimant that waits (``on_busy="wait"``) leaves a ``Ticket`` when it
  is refused and refreshes it each time it tries again. A lease that is free goes only to
  the oldest live ticket; anyone else, waiting or not, is refused. A ticket not refreshed
  for ``TICKET_SECONDS`` (its waiter died or gave up) is ignored and dropped, so a waiter is
  overtaken only by runs whose tickets are older than its own, or after it stopped polling.

Where a saver cannot run Python inside its transaction (Postgres, Redis), it states the
fence as an equality on (run, epoch) in SQL or Lua, and the claim reads, decides here, and
writes under a row lock or a compare-and-set on the lease it read.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass, field

from tether.checkpoint._base import Head
from tether.errors import ConfigError, LeaseLostError, ThreadBusyError

HOSTNAME = socket.gethostname()

DEFAULT_LEASE_SECONDS = 300.0
"""How long a lease lasts without a commit or a renewal (``Saver(lease_seconds=...)``)."""

TICKET_SECONDS = 5.0
"""A waiter's place in line lapses when it has not tried to claim for this long (waiters try
at least every 0.25 s)."""

_ENDED_RUNS: set[str] = set()


def mark_run_ended(run_id: str) -> None:
    """Record that a run of this process has ended without releasing its lease (the release
    failed, say while the server was down): this process may take that lease at once."""
    _ENDED_RUNS.add(run_id)


def check_lease_seconds(value: float) -> float:
    """A lease length as given to a saver, checked."""
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"lease_seconds must be a positive number of seconds, got {value!r} (the default "
            f"is {DEFAULT_LEASE_SECONDS:g})"
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class Process:
    """A process, identified so that another process can tell whether it is still alive:
    the kernel boot (``/proc/sys/kernel/random/boot_id``), the pid namespace (inode of
    ``/proc/self/ns/pid``), the pid in that namespace, and the start time (clock ticks after
    boot, ``/proc/<pid>/stat`` field 22), which tells a reused pid apart. Off Linux the last
    three are unknown ("" and 0)."""

    host: str
    pid: int
    boot_id: str = ""
    pid_ns: int = 0
    started: int = 0

    @property
    def token(self) -> str:
        """The Linux identity as stored with a lease ("" when unknown)."""
        return f"{self.boot_id}/{self.pid_ns}/{self.started}" if self.boot_id else ""

    @classmethod
    def from_stored(cls, host: str, pid: int, token: str | None) -> Process:
        boot_id, ns, started = (token or "//").split("/", 2)
        return cls(host, pid, boot_id, int(ns or 0), int(started or 0))

    def is_dead(self) -> bool:
        """True only when this process provably no longer runs: it was a process of our
        boot and our pid namespace, and its pid is now free, a zombie, or another process
        (another start time). A process of another namespace or machine is never judged
        here, whatever its hostname: its lease ends by expiry."""
        here = this_process()
        if not (self.boot_id or here.boot_id):
            return self.host == here.host and _pid_gone(self.pid)  # no pid namespaces here
        if (self.boot_id, self.pid_ns) != (here.boot_id, here.pid_ns) or not self.started:
            return False
        return start_time(self.pid) != self.started


_THIS: dict[int, Process] = {}


def this_process() -> Process:
    """This process's identity (read once per pid, so a forked child gets its own)."""
    pid = os.getpid()
    found = _THIS.get(pid)
    if found is None:
        found = _THIS[pid] = Process(HOSTNAME, pid, *_linux_identity(pid))
    return found


def _linux_identity(pid: int) -> tuple[str, int, int]:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
        pid_ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "", 0, 0
    started = start_time(pid)
    return (boot_id, pid_ns, started) if started is not None else ("", 0, 0)


def start_time(pid: int) -> int | None:
    """When process ``pid`` of our pid namespace started (clock ticks after boot), or None
    when there is no such process or it is a zombie (it can never write again)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a thread's lease: a run, in a process (by default this one)."""

    run_id: str
    process: Process = field(default_factory=this_process)

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_gone(self) -> bool:
        """True when this owner can provably never write again: a run of this very process
        that has ended, or a process that is dead (``Process.is_dead``)."""
        if self.process == this_process():
            return self.run_id in _ENDED_RUNS
        return self.process.is_dead()


@dataclass(frozen=True, slots=True)
class Lease:
    """A thread's lease as stored: the holder, the wall-clock time it expires, and the epoch
    (bumped each time the lease passes to another run)."""

    owner: Owner
    expires_at: float
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Fence:
    """What every write of a run carries: its run id and the epoch its claim returned."""

    run_id: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Claim:
    """What a successful claim returns: the thread's head and the run's fence."""

    head: Head | None
    fence: Fence


@dataclass(frozen=True, slots=True)
class Ticket:
    """A run waiting for a thread: when it first asked, and when it last asked."""

    run_id: str
    since: float
    seen: float


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What a thread stores about who may write it: the lease (None when free), the epoch
    (kept when the lease is released; 0 for a new thread) and the runs waiting for it."""

    lease: Lease | None
    epoch: int = 0
    tickets: tuple[Ticket, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    """What a claim changes. ``lease``: the lease to store when granted (None: refused, and
    ``error`` is what the claimant gets). ``ticket``: the claimant's place in line to store
    (upsert); ``drop``: run ids whose tickets to delete."""

    lease: Lease | None
    error: ThreadBusyError | None
    ticket: Ticket | None
    drop: tuple[str, ...]


def holds(lease: Lease | None, fence: Fence) -> bool:
    """True when the stored ``lease`` is still the one ``fence`` was issued for."""
    return lease is not None and lease.owner.run_id == fence.run_id and lease.epoch == fence.epoch


def in_force(lease: Lease | None, now: float) -> bool:
    """True when ``lease`` is held and has not expired (the rule unleased writes obey)."""
    return lease is not None and lease.expires_at > now


def blocks(lease: Lease | None, owner: Owner, now: float) -> bool:
    """True when ``lease`` keeps ``owner`` from taking the thread: held by another run,
    unexpired, and its owner not provably gone."""
    if not in_force(lease, now):
        return False
    assert lease is not None
    return lease.owner.run_id != owner.run_id and not lease.owner.is_gone()


def decide_claim(
    thread_id: str,
    state: LeaseState,
    owner: Owner,
    now: float,
    lease_seconds: float,
    *,
    waiting: bool,
) -> ClaimDecision:
    """The outcome of ``owner`` claiming a thread that stores ``state``; ``waiting``: the
    claimant waits its turn (``on_busy="wait"``) and keeps a ticket when refused."""
    lease, run = state.lease, owner.run_id
    live = [t for t in state.tickets if t.seen > now - TICKET_SECONDS]
    own = next((t for t in state.tickets if t.run_id == run), None)
    stale = tuple(t.run_id for t in state.tickets if t not in live and t.run_id != run)
    mine = lease is not None and lease.owner.run_id == run
    error: ThreadBusyError | None = None
    if not mine and blocks(lease, owner, now):
        error = busy_error(thread_id, lease)
    elif not mine:
        mark = (own.since, run) if own is not None else (math.inf, run)
        ahead = [t for t in live if t.run_id != run and (t.since, t.run_id) < mark]
        if ahead:
            error = queue_error(thread_id, len(ahead))
    if error is not None:
        ticket = Ticket(run, own.since if own else now, now) if waiting else None
        return ClaimDecision(None, error, ticket, stale)
    taken = Lease(owner, now + lease_seconds, state.epoch if mine else state.epoch + 1)
    return ClaimDecision(taken, None, None, stale + ((run,) if own else ()))


def write_refusal(
    thread_id: str, lease: Lease | None, fence: Fence | None, now: float, version_ok: bool
) -> ThreadBusyError | None:
    """Why a write to a thread whose stored lease is ``lease`` is refused, or None when it may
    go ahead. ``version_ok``: the head is at the version the write expects."""
    if fence is not None and not holds(lease, fence):
        return lost_error(thread_id, fence, lease)
    if fence is None and in_force(lease, now):
        return busy_error(thread_id, lease)
    if not version_ok:
        return advanced_error(thread_id)
    return None


def busy_error(thread_id: str, lease: Lease | None) -> ThreadBusyError:
    if lease is None:
        return advanced_error(thread_id)
    o = lease.owner
    return ThreadBusyError(
        f"thread {thread_id!r} is being run by run {o.run_id} (pid {o.pid} on {o.host}); "
        "wait for it to finish, or pass on_busy='wait'"
    )


def queue_error(thread_id: str, ahead: int) -> ThreadBusyError:
    runs = "run is" if ahead == 1 else "runs are"
    return ThreadBusyError(
        f"thread {thread_id!r} is free, but {ahead} earlier {runs} waiting for it and go "
        "first; pass on_busy='wait' to wait in line"
    )


def advanced_error(thread_id: str) -> ThreadBusyError:
    return ThreadBusyError(
        f"thread {thread_id!r} was advanced by another writer since this run read it; "
        "reload the thread (get_state) and try again"
    )


def lost_error(thread_id: str, fence: Fence, lease: Lease | None) -> LeaseLostError:
    """The run ``fence`` was issued to no longer holds the thread."""
    if lease is None:
        taker = "its lease was taken over and has since been released (or the thread deleted)"
    elif lease.owner.run_id == fence.run_id:
        taker = f"its lease was taken over, then claimed again at epoch {lease.epoch}"
    else:
        o = lease.owner
        taker = (
            f"run {o.run_id} (pid {o.pid} on {o.host}) took the thread over at epoch {lease.epoch}"
        )
    return LeaseLostError(
        f"thread {thread_id!r}: run {fence.run_id} lost its lease (epoch {fence.epoch}): "
        f"{taker}. The run stalled past its lease and was fenced; nothing it wrote after "
        "that was stored. Reload the thread (get_state) to see the other run's result"
    )
