"""The Saver contract, run against every backend: the head compare-and-swap, value chains,
write upserts, leases, deletion and export/import behave the same everywhere."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tether.checkpoint import (
    CheckpointRow,
    Fence,
    Head,
    Owner,
    Saver,
    ThreadDump,
    ValueRow,
    WriteRow,
    _lease,
)
from tether.checkpoint._lease import this_process
from tether.errors import CheckpointError, LeaseLostError, ThreadBusyError

SaverFactory = Callable[..., Saver]

T = "thread-1"


def cp(version: int, parent: str | None = None, *, cid: str | None = None) -> CheckpointRow:
    return CheckpointRow(
        thread_id=T,
        checkpoint_id=cid or f"cp-{version}",
        parent_id=parent,
        version=version,
        step=version - 1,
        created_at=1_700_000_000.0 + version,
        body=b"body-%d" % version,
    )


def full(channel: str, version: int, payload: bytes) -> ValueRow:
    return ValueRow(channel, version, None, version, payload)


def delta(channel: str, version: int, prev: int, base: int, payload: bytes) -> ValueRow:
    return ValueRow(channel, version, prev, base, payload)


def commit(
    saver: Saver,
    checkpoint: CheckpointRow,
    *,
    expected: int | None,
    values: list[ValueRow] | None = None,
    writes: list[WriteRow] | None = None,
    fence: Fence | None = None,
    lease_seconds: float = 60.0,
    thread_id: str = T,
    durable: bool = False,
) -> None:
    saver.commit(
        thread_id,
        expected_version=expected,
        checkpoint=dataclasses.replace(checkpoint, thread_id=thread_id),
        values=values or [],
        writes=writes or [],
        fence=fence,
        lease_seconds=lease_seconds,
        durable=durable,
    )


def versions(saver: Saver, **kwargs: int) -> list[int]:
    return [c.version for c in saver.list_checkpoints(T, **kwargs)]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- head and checkpoints ----------------------------------------------------------------


def test_is_a_saver(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    assert isinstance(saver, Saver)
    assert isinstance(saver.blocking, bool)


def test_commit_then_read_head_and_checkpoint(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    assert saver.get_head(T) is None
    first = cp(1)
    commit(saver, first, expected=None, durable=True)
    assert saver.get_head(T) == Head("cp-1", 1)
    assert saver.get_checkpoint(T, "cp-1") == first
    assert saver.get_checkpoint(T, "nope") is None
    assert saver.get_checkpoint("other-thread", "cp-1") is None
    second = cp(2, "cp-1")
    commit(saver, second, expected=1)
    assert saver.get_head(T) == Head("cp-2", 2)
    assert saver.get_checkpoint(T, "cp-2") == second
    assert saver.list_threads() == [T]


def test_second_connection_sees_commits(saver_factory: SaverFactory) -> None:
    a = saver_factory()
    b = saver_factory(same=True)
    commit(a, cp(1), expected=None, values=[full("x", 1, b"v")])
    assert b.get_head(T) == Head("cp-1", 1)
    assert b.get_values(T, {"x": 1}) == {"x": [full("x", 1, b"v")]}
    commit(b, cp(2, "cp-1"), expected=1)
    assert a.get_head(T) == Head("cp-2", 2)
    with pytest.raises(ThreadBusyError):
        commit(a, cp(2, "cp-1", cid="late"), expected=1)


def test_list_checkpoints_newest_first_across_branches(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    # 1 <- 2 <- 3, and a fork 2 <- 4 <- 5 (e.g. update_state on an older checkpoint).
    parents = {1: None, 2: "cp-1", 3: "cp-2", 4: "cp-2", 5: "cp-4"}
    for v, parent in parents.items():
        commit(saver, cp(v, parent), expected=v - 1 if v > 1 else None)
    assert versions(saver) == [5, 4, 3, 2, 1]
    assert versions(saver, limit=2) == [5, 4]
    assert versions(saver, before_version=4) == [3, 2, 1]
    assert versions(saver, before_version=4, limit=1) == [3]
    assert versions(saver, before_version=1) == []
    assert versions(saver, limit=0) == []
    rows = list(saver.list_checkpoints(T))
    assert [r.parent_id for r in rows] == ["cp-4", "cp-2", "cp-2", "cp-1", None]
    assert rows[0] == cp(5, "cp-4")
    assert list(saver.list_checkpoints("unknown")) == []


def test_threads_are_listed_sorted_and_kept_apart(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    for tid in ["b", "c", "a"]:
        commit(saver, cp(1), expected=None, thread_id=tid, values=[full("x", 1, tid.encode())])
    assert saver.list_threads() == ["a", "b", "c"]
    assert saver.get_values("b", {"x": 1})["x"][0].payload == b"b"
    assert saver.get_checkpoint("a", "cp-1") == dataclasses.replace(cp(1), thread_id="a")


# -- compare-and-swap --------------------------------------------------------------------


def test_stale_commit_raises_and_stores_nothing(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    with pytest.raises(ThreadBusyError):
        commit(saver, cp(2), expected=1)  # the thread has no head yet
    assert saver.get_head(T) is None
    assert saver.list_threads() == []
    commit(saver, cp(1), expected=None, values=[full("x", 1, b"one")])
    stale = cp(2, "cp-1", cid="stale")
    for expected in (None, 0, 2, 7):
        with pytest.raises(ThreadBusyError):
            commit(
                saver,
                stale,
                expected=expected,
                values=[full("x", 2, b"two"), full("y", 2, b"new")],
                writes=[WriteRow("task-stale", "output", "", b"w")],
            )
    assert saver.get_head(T) == Head("cp-1", 1)
    assert saver.get_checkpoint(T, "stale") is None
    assert versions(saver) == [1]
    assert saver.get_writes(T, ["task-stale"]) == []
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"x": 2})
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"y": 2})
    assert saver.get_values(T, {"x": 1}) == {"x": [full("x", 1, b"one")]}


@pytest.mark.parametrize("connections", ["one saver", "two savers"])
def test_racing_writers_never_lose_or_duplicate(
    saver_factory: SaverFactory, connections: str
) -> None:
    first = saver_factory()
    savers = [first, first if connections == "one saver" else saver_factory(same=True)]
    per_writer = 25
    barrier = threading.Barrier(2)
    won: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        saver = savers[n]
        try:
            barrier.wait()
            for i in range(per_writer):
                head = saver.get_head(T)
                version = head.version + 1 if head is not None else 1
                row = cp(version, head.checkpoint_id if head else None, cid=f"w{n}-{i}")
                try:
                    commit(
                        saver,
                        row,
                        expected=head.version if head else None,
                        values=[full(f"ch{n}", version, b"%d" % i)],
                        writes=[WriteRow(f"w{n}-{i}", "output", "", b"x")],
                    )
                except ThreadBusyError:
                    continue
                won[n].append(row.checkpoint_id)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    winners = won[0] + won[1]
    rows = list(first.list_checkpoints(T))
    k = len(rows)
    assert k == len(winners) >= per_writer  # the head moves every round, someone wins it
    assert [r.version for r in rows] == list(range(k, 0, -1))
    assert sorted(r.checkpoint_id for r in rows) == sorted(winners)
    assert first.get_head(T) == Head(rows[0].checkpoint_id, k)
    # Each checkpoint's parent is the one committed just before it: no lost turn.
    for newer, older in itertools.pairwise(rows):
        assert newer.parent_id == older.checkpoint_id
    stored = first.get_writes(T, [f"w{n}-{i}" for n in range(2) for i in range(per_writer)])
    assert sorted(w.task_id for w in stored) == sorted(winners)


# -- value chains ------------------------------------------------------------------------


def test_value_chains_with_deltas_snapshots_and_branches(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    rows = {
        1: [full("msgs", 1, b"[a]"), full("last", 1, b"L1")],
        2: [delta("msgs", 2, 1, 1, b"+b")],
        3: [delta("msgs", 3, 2, 1, b"+c"), full("last", 3, b"L3")],
        # A fork from version 2: a second chain sharing the full value at 1.
        4: [delta("msgs", 4, 2, 1, b"+d")],
        5: [full("msgs", 5, b"[a,b,d,e]")],
        6: [delta("msgs", 6, 5, 5, b"+f")],
    }
    for v, vals in rows.items():
        commit(saver, cp(v), expected=v - 1 if v > 1 else None, values=vals)
    get = saver.get_values
    assert get(T, {}) == {}
    assert get(T, {"msgs": 1}) == {"msgs": rows[1][:1]}
    assert get(T, {"msgs": 3}) == {"msgs": [rows[1][0], rows[2][0], rows[3][0]]}
    assert get(T, {"msgs": 4}) == {"msgs": [rows[1][0], rows[2][0], rows[4][0]]}
    assert get(T, {"msgs": 6, "last": 3}) == {
        "msgs": [rows[5][0], rows[6][0]],
        "last": [rows[3][1]],
    }
    assert get(T, {"msgs": 2, "last": 1}) == {
        "msgs": [rows[1][0], rows[2][0]],
        "last": [rows[1][1]],
    }


def test_missing_value_row_raises_checkpoint_error(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    commit(saver, cp(1), expected=None, values=[full("msgs", 1, b"[a]")])
    commit(saver, cp(2, "cp-1"), expected=1, values=[delta("msgs", 2, 1, 1, b"+b")])
    commit(saver, cp(3, "cp-2"), expected=2, values=[delta("msgs", 3, 2, 1, b"+c")])
    saver.delete_checkpoints(T, [], [("msgs", 2)], [])
    with pytest.raises(CheckpointError, match="msgs"):
        saver.get_values(T, {"msgs": 3})
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"msgs": 9})
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"unknown": 1})
    with pytest.raises(CheckpointError):
        saver.get_values("no-such-thread", {"msgs": 1})
    assert saver.get_values(T, {"msgs": 1}) == {"msgs": [full("msgs", 1, b"[a]")]}


# -- writes ------------------------------------------------------------------------------


def test_writes_upsert_by_key_and_filter_by_task(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    assert saver.get_writes(T, ["a"]) == []
    saver.put_writes(
        T,
        [
            WriteRow("a", "journal", "0", b"j0"),
            WriteRow("a", "journal", "1", b"j1"),
            WriteRow("a", "interrupt", "0", b"i0"),
            WriteRow("b", "output", "", b"out-b"),
        ],
        durable=False,
    )
    saver.put_writes(T, [WriteRow("a", "journal", "1", b"j1-again")], durable=True)
    got = sorted(saver.get_writes(T, ["a"]), key=lambda w: (w.kind, w.key))
    assert got == [
        WriteRow("a", "interrupt", "0", b"i0"),
        WriteRow("a", "journal", "0", b"j0"),
        WriteRow("a", "journal", "1", b"j1-again"),
    ]
    assert saver.get_writes(T, ["b", "zzz"]) == [WriteRow("b", "output", "", b"out-b")]
    assert len(saver.get_writes(T, ["a", "b"])) == 4
    assert saver.get_writes(T, []) == []
    assert saver.get_writes("other", ["a"]) == []
    # Pending writes do not make a head.
    assert saver.get_head(T) is None
    assert saver.list_threads() == []
    # A commit may carry writes too, and upserts the same way.
    commit(saver, cp(1), expected=None, writes=[WriteRow("b", "output", "", b"out-b2")])
    assert saver.get_writes(T, ["b"]) == [WriteRow("b", "output", "", b"out-b2")]
    assert len(saver.get_writes(T, ["a"])) == 3


# -- leases ------------------------------------------------------------------------------


def test_claim_excludes_other_owners_until_release(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    other_saver = saver_factory(same=True)
    a, b = Owner("run-a"), Owner("run-b")
    assert saver.claim(T, a, 60).head is None
    # Two first runs exclude each other, even before the thread has a head.
    with pytest.raises(ThreadBusyError, match="run-a"):
        other_saver.claim(T, b, 60)
    assert saver.get_head(T) is None
    assert saver.list_threads() == []
    fence = saver.claim(T, a, 60).fence  # the same run may claim again
    commit(saver, cp(1), expected=None, fence=fence)
    with pytest.raises(ThreadBusyError):
        other_saver.claim(T, b, 60)
    saver.release(T, b)  # not the holder: no effect, no error
    with pytest.raises(ThreadBusyError):
        other_saver.claim(T, b, 60)
    saver.release(T, a)
    assert other_saver.claim(T, b, 60).head == Head("cp-1", 1)
    with pytest.raises(ThreadBusyError, match="run-b"):
        saver.claim(T, a, 60)


def test_release_of_claim_without_commit_leaves_no_thread(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    a = Owner("run-a")
    saver.claim(T, a, 60)
    saver.release(T, a)
    assert saver.get_head(T) is None
    assert saver.list_threads() == []
    assert saver.dump_thread(T).head is None
    saver.release("never-seen", a)
    commit(saver, cp(1), expected=None)
    assert saver.get_head(T) == Head("cp-1", 1)


def test_expired_lease_can_be_taken(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    saver.claim(T, Owner("run-a"), -1)  # expired the moment it was taken
    fence = saver.claim(T, Owner("run-b"), -1).fence
    commit(saver, cp(1), expected=None, fence=fence, lease_seconds=-1)
    assert saver.claim(T, Owner("run-d"), 60).head == Head("cp-1", 1)


def test_lease_of_dead_process_can_be_taken(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    here = this_process()
    dead = dataclasses.replace(here, pid=dead_pid())
    saver.claim(T, Owner("run-dead", dead), 3600)
    assert saver.claim(T, Owner("run-b"), 60).head is None
    # A dead pid on another machine (another boot) proves nothing: that lease still holds.
    far = dataclasses.replace(dead, host="elsewhere.invalid", boot_id="another-boot")
    saver.claim("t2", Owner("run-far", far), 3600)
    with pytest.raises(ThreadBusyError, match=r"elsewhere\.invalid"):
        saver.claim("t2", Owner("run-b"), 60)
    # Nor does one in another pid namespace, even on this host.
    saver.claim("t3", Owner("run-ns", dataclasses.replace(dead, pid_ns=here.pid_ns + 1)), 3600)
    with pytest.raises(ThreadBusyError, match="run-ns"):
        saver.claim("t3", Owner("run-b"), 60)


def test_commit_respects_a_live_lease(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    a = Owner("run-a")
    fence = saver.claim(T, a, 60).fence
    with pytest.raises(LeaseLostError, match="run-a"):  # a fence the store never issued
        commit(saver, cp(1), expected=None, fence=Fence("run-b", fence.epoch))
    with pytest.raises(LeaseLostError, match="run-a"):
        commit(saver, cp(1), expected=None, fence=Fence("run-a", fence.epoch + 1))
    with pytest.raises(ThreadBusyError, match="run-a"):
        commit(saver, cp(1), expected=None, values=[full("x", 1, b"b")])  # unleased
    assert saver.get_head(T) is None
    assert saver.dump_thread(T).checkpoints == []
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"x": 1})
    commit(saver, cp(1), expected=None, fence=fence)
    # The lease belongs to the run, whichever process (saver) of it commits.
    commit(saver_factory(same=True), cp(2, "cp-1"), expected=1, fence=fence)
    with pytest.raises(ThreadBusyError):
        saver.claim(T, Owner("run-b"), 60)
    saver.release(T, a)
    commit(saver, cp(3, "cp-2"), expected=2)
    assert saver.claim(T, Owner("run-b"), 60).head == Head("cp-3", 3)


def test_commit_renews_the_lease(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    a, b = Owner("run-a"), Owner("run-b")
    fence = saver.claim(T, a, -1).fence
    commit(saver, cp(1), expected=None, fence=fence, lease_seconds=60)
    with pytest.raises(ThreadBusyError, match="run-a"):
        saver.claim(T, b, 60)
    commit(saver, cp(2, "cp-1"), expected=1, fence=fence, lease_seconds=-1)
    assert saver.claim(T, b, 60).head == Head("cp-2", 2)


def test_unleased_commit_after_lease_expired(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    saver.claim(T, Owner("run-gone"), -1)
    commit(saver, cp(1), expected=None)
    assert saver.get_head(T) == Head("cp-1", 1)
    assert saver.claim(T, Owner("run-b"), 60).head == Head("cp-1", 1)


# -- fencing -----------------------------------------------------------------------------


def test_claim_bumps_the_epoch_only_when_the_lease_changes_hands(
    saver_factory: SaverFactory,
) -> None:
    saver = saver_factory()
    a, b = Owner("run-a"), Owner("run-b")
    first = saver.claim(T, a, -1).fence
    assert first.run_id == "run-a"
    assert saver.claim(T, a, -1).fence == first  # its own lease, even expired: kept
    second = saver.claim(T, b, 60).fence
    assert second == Fence("run-b", first.epoch + 1)
    commit(saver, cp(1), expected=None, fence=second)
    saver.release(T, b)
    # Released, the lease keeps its epoch; the next holder, even an earlier run, bumps it.
    third = saver.claim(T, a, 60).fence
    assert third == Fence("run-a", second.epoch + 1)


def test_a_run_whose_lease_was_taken_over_writes_nothing(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    stale = saver.claim(T, Owner("run-a"), -1).fence  # "stalls" past its lease
    fresh = saver.claim(T, Owner("run-b"), 60).fence
    saver.put_writes(T, [WriteRow("task", "journal", "0", b"b")], fence=fresh, durable=False)
    with pytest.raises(LeaseLostError, match=r"'thread-1'.*run-a.*run-b"):
        saver.put_writes(T, [WriteRow("task", "journal", "0", b"a")], fence=stale, durable=False)
    with pytest.raises(LeaseLostError, match="run-b"):
        commit(saver, cp(1), expected=None, fence=stale, writes=[WriteRow("x", "output", "", b"")])
    with pytest.raises(LeaseLostError):
        saver.renew(T, stale, 60)
    assert saver.get_writes(T, ["task", "x"]) == [WriteRow("task", "journal", "0", b"b")]
    assert saver.get_head(T) is None
    commit(saver, cp(1), expected=None, fence=fresh)
    assert saver.get_head(T) == Head("cp-1", 1)


def test_an_expired_lease_nobody_took_still_writes(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    fence = saver.claim(T, Owner("run-a"), -1).fence
    saver.put_writes(T, [WriteRow("task", "journal", "0", b"a")], fence=fence, durable=False)
    commit(saver, cp(1), expected=None, fence=fence)  # and renews it
    with pytest.raises(ThreadBusyError, match="run-a"):
        saver.claim(T, Owner("run-b"), 60)


def test_renew_extends_only_its_own_lease(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    a = saver.claim(T, Owner("run-a"), -1).fence
    saver.renew(T, a, 60)
    with pytest.raises(ThreadBusyError, match="run-a"):
        saver.claim(T, Owner("run-b"), 60)
    saver.renew(T, a, -1)
    b = saver.claim(T, Owner("run-b"), 60).fence
    commit(saver, cp(1), expected=None, fence=b)
    saver.release(T, Owner("run-b"))
    # The stalled run's heartbeat finds the lease released: it must not take it back.
    with pytest.raises(LeaseLostError, match="released"):
        saver.renew(T, a, 60)
    assert saver.claim(T, Owner("run-c"), 60).fence == Fence("run-c", b.epoch + 1)


def test_a_deleted_thread_fences_its_old_runs(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    fence = saver.claim(T, Owner("run-a"), 60).fence
    commit(saver, cp(1), expected=None, fence=fence)
    saver.delete_thread(T)
    with pytest.raises(LeaseLostError):
        saver.put_writes(T, [WriteRow("task", "journal", "0", b"a")], fence=fence, durable=False)
    assert saver.dump_thread(T) == ThreadDump(T, None, [], [], [])


# -- waiting in line ---------------------------------------------------------------------


def test_a_free_lease_goes_to_the_oldest_waiter(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    other = saver_factory(same=True)
    holder, first, second, newcomer = (Owner(r) for r in ("holder", "w1", "w2", "newcomer"))
    saver.claim(T, holder, 60)
    for waiter in (first, second):
        with pytest.raises(ThreadBusyError, match="run holder"):
            other.claim(T, waiter, 60, waiting=True)
    saver.release(T, holder)
    with pytest.raises(ThreadBusyError, match="1 earlier run is waiting"):
        other.claim(T, second, 60, waiting=True)  # free, but w1 asked first
    with pytest.raises(ThreadBusyError, match="2 earlier runs are waiting"):
        saver.claim(T, newcomer, 60)  # a run that does not wait goes after both
    assert other.claim(T, first, 60, waiting=True).fence.run_id == "w1"
    commit(saver, cp(1), expected=None, fence=saver.claim(T, first, 60).fence)
    saver.release(T, first)
    assert other.claim(T, second, 60, waiting=True).head == Head("cp-1", 1)
    saver.release(T, second)
    assert saver.claim(T, newcomer, 60).fence.run_id == "newcomer"  # the line is empty


def test_a_waiter_that_gives_up_or_goes_silent_loses_its_place(
    saver_factory: SaverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_lease, "TICKET_SECONDS", 1.5)
    saver = saver_factory()
    holder = Owner("holder")
    saver.claim(T, holder, 60)
    for waiter in ("quitter", "silent"):
        with pytest.raises(ThreadBusyError):
            saver.claim(T, Owner(waiter), 60, waiting=True)
    saver.release(T, Owner("quitter"))  # gave up waiting: its ticket goes at once
    saver.release(T, holder)
    with pytest.raises(ThreadBusyError, match="1 earlier run is waiting"):
        saver.claim(T, Owner("late"), 60)
    # "silent" stopped asking (it died): once its ticket lapses, the lease is free for all.
    deadline = time.monotonic() + 30
    while True:
        try:
            claim = saver.claim(T, Owner("late"), 60)
            break
        except ThreadBusyError:
            assert time.monotonic() < deadline, "the silent waiter's ticket never lapsed"
            time.sleep(0.05)
    assert claim.fence.run_id == "late"
    saver.release(T, Owner("late"))
    assert saver.list_threads() == []
    assert saver.get_head(T) is None


# -- deletion ----------------------------------------------------------------------------


def fill(saver: Saver, thread_id: str = T) -> None:
    commit(
        saver,
        cp(1),
        expected=None,
        thread_id=thread_id,
        values=[full("msgs", 1, b"[a]"), full("last", 1, b"L")],
        writes=[WriteRow("t1", "output", "", b"o1")],
    )
    commit(
        saver,
        cp(2, "cp-1"),
        expected=1,
        thread_id=thread_id,
        values=[delta("msgs", 2, 1, 1, b"+b")],
        writes=[WriteRow("t2", "output", "", b"o2"), WriteRow("t2", "journal", "0", b"j")],
    )
    saver.put_writes(thread_id, [WriteRow("t3", "error", "", b"boom")], durable=False)


def test_delete_thread_removes_everything(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    fill(saver)
    fill(saver, "keep")
    saver.claim(T, Owner("run-a"), 60)
    saver.delete_thread(T)
    saver.delete_thread("never-existed")
    assert saver.get_head(T) is None
    assert saver.list_threads() == ["keep"]
    assert saver.get_checkpoint(T, "cp-1") is None
    assert list(saver.list_checkpoints(T)) == []
    assert saver.get_writes(T, ["t1", "t2", "t3"]) == []
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"last": 1})
    assert saver.dump_thread(T) == ThreadDump(T, None, [], [], [])
    # The lease went with it, and the id can be used afresh.
    fence = saver.claim(T, Owner("run-b"), 60).fence
    commit(saver, cp(1), expected=None, fence=fence)
    assert versions(saver) == [1]
    assert saver.get_values("keep", {"msgs": 2})["msgs"][1].payload == b"+b"


def test_delete_checkpoints_removes_only_what_is_named(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    fill(saver)
    fill(saver, "other")
    saver.delete_checkpoints(T, ["cp-1", "nope"], [("last", 1), ("nope", 3)], ["t2", "zzz"])
    saver.delete_checkpoints("never-existed", ["cp-1"], [("msgs", 1)], ["t1"])
    assert saver.get_checkpoint(T, "cp-1") is None
    assert versions(saver) == [2]
    assert saver.get_head(T) == Head("cp-2", 2)
    with pytest.raises(CheckpointError):
        saver.get_values(T, {"last": 1})
    assert len(saver.get_values(T, {"msgs": 2})["msgs"]) == 2
    assert sorted(w.task_id for w in saver.get_writes(T, ["t1", "t2", "t3"])) == ["t1", "t3"]
    assert len(saver.dump_thread("other").checkpoints) == 2
    assert len(saver.get_writes("other", ["t2"])) == 2


# -- export / import ---------------------------------------------------------------------


def canonical(dump: ThreadDump) -> ThreadDump:
    return dataclasses.replace(
        dump,
        thread_id="*",
        checkpoints=sorted(
            (dataclasses.replace(c, thread_id="*") for c in dump.checkpoints),
            key=lambda c: c.version,
        ),
        values=sorted(dump.values, key=lambda v: (v.channel, v.version)),
        writes=sorted(dump.writes, key=lambda w: (w.task_id, w.kind, w.key)),
    )


def relabel(dump: ThreadDump, thread_id: str) -> ThreadDump:
    return dataclasses.replace(
        dump,
        thread_id=thread_id,
        checkpoints=[dataclasses.replace(c, thread_id=thread_id) for c in dump.checkpoints],
    )


def test_dump_and_load_round_trip(saver_factory: SaverFactory) -> None:
    source = saver_factory()
    fill(source)
    dump = source.dump_thread(T)
    assert dump.thread_id == T
    assert dump.head == Head("cp-2", 2)
    assert [c.version for c in sorted(dump.checkpoints, key=lambda c: c.version)] == [1, 2]
    assert len(dump.values) == 3
    assert len(dump.writes) == 4
    assert source.dump_thread("nothing") == ThreadDump("nothing", None, [], [], [])

    target = saver_factory()  # a second store (the same file or server for disk backends)
    target.load_thread(relabel(dump, "imported"))
    again = target.dump_thread("imported")
    assert canonical(again) == canonical(dump)
    assert target.get_head("imported") == Head("cp-2", 2)
    assert target.get_checkpoint("imported", "cp-2") == dataclasses.replace(
        cp(2, "cp-1"), thread_id="imported"
    )
    assert [v.payload for v in target.get_values("imported", {"msgs": 2})["msgs"]] == [
        b"[a]",
        b"+b",
    ]
    assert "imported" in target.list_threads()
    # The imported thread goes on like the original.
    commit(target, cp(3, "cp-2"), expected=2, thread_id="imported")
    assert target.get_head("imported") == Head("cp-3", 3)


def test_load_into_an_existing_thread_is_refused(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    fill(saver)
    dump = saver.dump_thread(T)
    with pytest.raises(CheckpointError, match="already exists"):
        saver.load_thread(dump)
    fill(saver, "other")
    with pytest.raises(CheckpointError, match="already exists"):
        saver.load_thread(relabel(dump, "other"))
    assert canonical(saver.dump_thread(T)) == canonical(dump)


def test_close_is_idempotent(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    commit(saver, cp(1), expected=None)
    saver.close()
    saver.close()
    assert saver_factory(same=True).get_head(T) == Head("cp-1", 1)


def test_durable_and_non_durable_commits_both_persist(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    start = time.time()
    for v in range(1, 6):
        commit(saver, cp(v), expected=v - 1 if v > 1 else None, durable=v % 2 == 0)
    assert time.time() - start < 30
    assert versions(saver) == [5, 4, 3, 2, 1]
