"""RedisSaver: the Saver protocol on plain Redis 7 (no modules), through redis-py.

Invariant: every write to a thread is one Lua script that checks the head version and lease
first and writes nothing when the check fails; so ``commit`` is atomic and one round trip.
Every read and write first checks that none of the thread's keys is gone (evicted), and a
thread that lost one raises CorruptionError instead of resuming from part of its state.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import msgpack
import redis
from redis.commands.core import Script

from tether.checkpoint import _redis_scripts as lua
from tether.checkpoint._base import CheckpointRow, Head, ThreadDump, ValueRow, WriteKind, WriteRow
from tether.checkpoint._chains import walk_chain
from tether.checkpoint._lease import (
    DEFAULT_LEASE_SECONDS,
    Claim,
    Fence,
    Lease,
    LeaseState,
    Owner,
    Process,
    Ticket,
    advanced_error,
    check_lease_seconds,
    decide_claim,
    lost_error,
    write_refusal,
)
from tether.checkpoint._redis_keys import (
    OLD_LIST_SUFFIX,
    check_prefix,
    keys_of,
    list_key,
    missing_key_error,
    old_layout_error,
)
from tether.checkpoint._redis_setup import (
    check_eviction,
    open_client,
    out_of_memory,
    read_policy,
    server_name,
)
from tether.checkpoint._saver import Saver
from tether.checkpoint._unreadable import unreadable
from tether.errors import CheckpointError, ThreadBusyError
from tether.serde import Serializer

_SEP = "\x00"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """A hash from a script's flat ``HGETALL`` reply."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _pack(value: object) -> bytes:
    return cast(bytes, msgpack.packb(value, use_bin_type=True))


def _unpack(data: bytes) -> list[Any]:
    return cast(list[Any], msgpack.unpackb(data, raw=False))


def _write_field(w: WriteRow) -> str:
    return f"{w.task_id}{_SEP}{w.kind}{_SEP}{w.key}"


def _write_of(field: bytes, payload: bytes) -> WriteRow:
    task_id, kind, key = _s(field).split(_SEP, 2)
    return WriteRow(task_id, cast(WriteKind, kind), key, bytes(payload))


def _pack_value(v: ValueRow) -> bytes:
    """``prev|`` in text (read by the GET_VALUES script), then msgpack ``[base, payload]``."""
    head = b"" if v.prev is None else str(v.prev).encode()
    return head + b"|" + _pack([v.base, v.payload])


def _value_of(thread_id: str, channel: str, version: int, raw: bytes) -> ValueRow:
    try:
        head, sep, rest = bytes(raw).partition(b"|")
        base, payload = _unpack(rest)
        if not sep or type(base) is not int or type(payload) is not bytes:
            raise ValueError("not a value row")
        return ValueRow(channel, version, int(head) if head else None, base, payload)
    except Exception as exc:
        what = f"the value of channel {channel!r} at version {version}"
        raise unreadable(exc, thread_id, what) from exc


def _checkpoint_of(thread_id: str, checkpoint_id: str, raw: bytes) -> CheckpointRow:
    try:
        parent, version, step, created_at, body = _unpack(raw)
        if type(version) is not int or type(step) is not int or type(body) is not bytes:
            raise ValueError("not a checkpoint row")
        return CheckpointRow(thread_id, checkpoint_id, parent, version, step, created_at, body)
    except Exception as exc:
        raise unreadable(exc, thread_id, f"checkpoint {checkpoint_id!r}") from exc


def _lease_of(fields: Sequence[bytes | None]) -> Lease | None:
    """The lease held in ``[run, host, pid, expires, epoch, process]`` (a script's busy
    reply from its third item on, or the head's fields), or None when it is free."""
    if not fields[0]:
        return None
    process = Process.from_stored(_s(fields[1] or b""), int(fields[2] or 0), _s(fields[5] or b""))
    return Lease(Owner(_s(fields[0]), process), float(fields[3] or 0), int(fields[4] or 0))


def _lease_state(head: Mapping[bytes, bytes]) -> LeaseState:
    """The lease, epoch and waiters' tickets (fields ``q:<run>`` = "since seen") of a head
    hash."""
    fields = [head.get(f) for f in (b"lrun", b"lhost", b"lpid", b"lexp", b"lep", b"lproc")]
    tickets = []
    for name, value in head.items():
        if name.startswith(b"q:"):
            since, seen = value.split()
            tickets.append(Ticket(_s(name[2:]), float(since), float(seen)))
    return LeaseState(_lease_of(fields), int(fields[4] or 0), tuple(tickets))


# The error reply of a script that found a key of the thread gone (see _redis_scripts).
_MISSING = "TETHER_MISSING "


class RedisSaver(Saver):
    """A Saver on Redis 7. ``with RedisSaver("redis://localhost:6379/0") as saver: ...``

    Keys, for prefix ``p`` (no braces) and thread ``t`` (see ``_redis_keys``): ``p:{t}:head``
    (hash: checkpoint id, version, lease with its epoch, ``q:<run>`` tickets of runs waiting
    for it, the list of the thread's other keys),
    ``p:{t}:cp`` (hash: checkpoint id -> row), ``p:{t}:cpv`` (sorted set of checkpoint ids by
    version), ``p:{t}:val`` (hash: ``channel\\0version`` -> row), ``p:{t}:w`` (hash:
    ``task\\0kind\\0key`` -> payload), ``p:{t}:wx`` (hash: task -> the names of its fields in
    ``p:{t}:w``, so that reading or deleting a task's writes costs its own rows, not the
    thread's) and ``p:thread-list`` (sorted set: thread -> expiry). With ``ttl=`` seconds,
    every write to a thread sets all its keys to expire ``ttl`` after it (without ``ttl=``,
    it removes any TTL they had), so they expire together.

    Eviction: Redis evicts single keys, which would leave a thread with part of its state.
    At connect the saver reads ``maxmemory-policy`` and refuses (ConfigError) a server that
    may evict its keys: ``allkeys-*``, ``volatile-*`` with ``ttl=``, or a policy it cannot
    read; ``allow_eviction=True`` turns the refusal into a RuntimeWarning. Either way a
    thread that lost a key raises CorruptionError when it is read or written.

    Durability is the server's, not per call: Redis acknowledges a write once it is in
    memory. With ``appendonly yes`` and ``appendfsync always`` a commit is on disk before the
    reply (``durable=True`` semantics); with ``appendfsync everysec`` (the default for AOF) an
    OS crash or power loss may drop the last second (``durable=False`` semantics); with RDB
    snapshots only or no persistence, everything since the last snapshot (or all of it) is
    gone after a Redis restart. ``durable`` is therefore accepted and has no effect here:
    configure the server for the guarantee you need. Not for Redis Cluster: a thread's
    keys share a hash slot, but the scripts also update the prefix's thread list, which
    lives in another.
    """

    blocking = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        prefix: str = "tether",
        ttl: float | None = None,
        serde: Serializer | None = None,
        timeout: float = 10.0,
        allow_eviction: bool = False,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if serde is None:
            from tether.serde import default_serializer  # type: ignore[attr-defined]

            serde = cast(Serializer, default_serializer())
        self.serde: Serializer = serde
        self.lease_seconds = check_lease_seconds(lease_seconds)
        if ttl is not None and ttl <= 0:
            raise CheckpointError(
                f"RedisSaver: ttl must be a positive number of seconds, not {ttl}"
            )
        self._ttl = "" if ttl is None else str(max(1, math.ceil(ttl)))
        self._prefix = check_prefix(prefix)
        self._closed = False
        self._own = client is None
        if client is None:
            url = url or os.environ.get("TETHER_REDIS_URL", "redis://127.0.0.1:6379/0")
            client = open_client(url, timeout)
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise CheckpointError(
                "RedisSaver: the client decodes responses; pass a client created with "
                "decode_responses=False (tether stores bytes)"
            )
        self._r = client
        self._server = server_name(client)
        self._policy: str | None = None
        self._scripts: dict[str, Script] = {
            name: client.register_script(getattr(lua, name))
            for name in (
                "COMMIT",
                "PUT_WRITES",
                "CLAIM",
                "RENEW",
                "RELEASE",
                "LIST_THREADS",
                "GET_HEAD",
                "GET_CHECKPOINT",
                "GET_VALUES",
                "GET_WRITES",
                "LIST_CHECKPOINTS",
                "DUMP_THREAD",
                "DELETE_CHECKPOINTS",
                "LOAD_THREAD",
            )
        }
        try:
            self._check_server(ttl is not None, allow_eviction)
        except BaseException:
            self.close()
            raise

    def _check_server(self, ttl: bool, allow_eviction: bool) -> None:
        """Connect; refuse data in the old key layout and a server that may evict keys."""
        r = self._r
        self._call("connecting", None, r.ping)
        if self._call("connecting", None, lambda: r.exists(f"{self._prefix}:{OLD_LIST_SUFFIX}")):
            raise old_layout_error(self._prefix, self._server)
        self._policy = self._call("connecting", None, lambda: read_policy(r))
        check_eviction(self._policy, ttl, self._server, allow_eviction)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._own:
            self._r.close()

    # plumbing

    def _call(self, what: str, thread_id: str | None, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; redis errors become CheckpointError naming the thread and the step."""
        if self._closed:
            raise CheckpointError(f"RedisSaver: {what}: the saver is closed")
        where = f" on thread {thread_id!r}" if thread_id is not None else ""
        try:
            return fn()
        except redis.exceptions.OutOfMemoryError as exc:
            raise out_of_memory(self._server, what, where, exc) from exc
        except redis.ResponseError as exc:
            if thread_id is not None and str(exc).startswith(_MISSING):
                index = int(str(exc).removeprefix(_MISSING))
                keys = keys_of(self._prefix, thread_id)
                raise missing_key_error(
                    keys, thread_id, index, self._server, self._policy
                ) from None
            raise CheckpointError(f"RedisSaver: {what}{where} failed: {exc}") from exc
        except redis.RedisError as exc:
            raise CheckpointError(f"RedisSaver: {what}{where} failed: {exc}") from exc

    def _keys(self, thread_id: str) -> list[str]:
        return list(keys_of(self._prefix, thread_id))

    def _script(
        self, name: str, what: str, thread_id: str | None, keys: list[str], args: list[Any]
    ) -> Any:
        script = self._scripts[name]
        return self._call(what, thread_id, lambda: script(keys=keys, args=args))

    # reads

    def _on_thread(self, name: str, what: str, thread_id: str, args: list[Any]) -> Any:
        """Run a script that takes all the thread's keys, and its id as the first argument."""
        return self._script(name, what, thread_id, self._keys(thread_id), [thread_id, *args])

    def get_head(self, thread_id: str) -> Head | None:
        cp, ver = self._on_thread("GET_HEAD", "reading the head", thread_id, [])
        return None if ver is None else Head(_s(cp), int(ver))

    def get_checkpoint(self, thread_id: str, checkpoint_id: str) -> CheckpointRow | None:
        raw = self._on_thread("GET_CHECKPOINT", "reading a checkpoint", thread_id, [checkpoint_id])
        return None if raw is None else _checkpoint_of(thread_id, checkpoint_id, raw)

    def list_checkpoints(
        self, thread_id: str, *, before_version: int | None = None, limit: int | None = None
    ) -> Iterator[CheckpointRow]:
        if limit is not None and limit <= 0:
            return iter([])
        top = "+inf" if before_version is None else f"({before_version}"
        ids, raws = self._on_thread(
            "LIST_CHECKPOINTS",
            "listing checkpoints",
            thread_id,
            [top, "" if limit is None else str(limit)],
        )
        return iter(
            [
                _checkpoint_of(thread_id, _s(i), raw)
                for i, raw in zip(ids, raws, strict=True)
                if raw is not None
            ]
        )

    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        if not wanted:
            return {}
        args: list[Any] = []
        for channel, version in wanted.items():
            args += [channel, str(version)]
        flat = self._on_thread("GET_VALUES", "reading channel values", thread_id, args)
        found: dict[tuple[str, int], ValueRow] = {}
        for i in range(0, len(flat), 3):
            channel, version = _s(flat[i]), int(flat[i + 1])
            found[(channel, version)] = _value_of(thread_id, channel, version, flat[i + 2])
        return {
            c: walk_chain(thread_id, c, v, lambda ch, ver: found.get((ch, ver)))
            for c, v in wanted.items()
        }

    def get_writes(self, thread_id: str, task_ids: Sequence[str]) -> list[WriteRow]:
        if not task_ids:
            return []
        tasks = list(dict.fromkeys(task_ids))
        flat = self._on_thread("GET_WRITES", "reading task writes", thread_id, tasks)
        return [_write_of(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    # writes

    def commit(
        self,
        thread_id: str,
        *,
        expected_version: int | None,
        checkpoint: CheckpointRow,
        values: Sequence[ValueRow],
        writes: Sequence[WriteRow],
        fence: Fence | None = None,
        lease_seconds: float,
        durable: bool,
    ) -> None:
        now = time.time()
        cp = checkpoint
        packed = _pack([cp.parent_id, cp.version, cp.step, cp.created_at, cp.body])
        args: list[Any] = [
            thread_id,
            "" if expected_version is None else str(expected_version),
            *self._fence_args(fence, now),
            repr(now + lease_seconds),
            cp.checkpoint_id,
            str(cp.version),
            packed,
            self._ttl,
            str(len(values)),
        ]
        for v in values:
            args += [f"{v.channel}{_SEP}{v.version}", _pack_value(v)]
        for w in writes:
            args += [_write_field(w), w.payload]
        reply = self._script(
            "COMMIT", "committing a checkpoint", thread_id, self._keys(thread_id), args
        )
        if reply[0] != 1:
            current = int(reply[1]) if reply[1] else None
            version_ok = current == expected_version
            raise self._refusal(thread_id, reply, fence, now, version_ok)

    @staticmethod
    def _fence_args(fence: Fence | None, now: float) -> list[str]:
        if fence is None:
            return [repr(now), "", ""]
        return [repr(now), fence.run_id, str(fence.epoch)]

    @staticmethod
    def _refusal(
        thread_id: str, reply: Sequence[Any], fence: Fence | None, now: float, version_ok: bool
    ) -> ThreadBusyError:
        lease = _lease_of(reply[2:8])
        return write_refusal(thread_id, lease, fence, now, version_ok) or advanced_error(thread_id)

    def put_writes(
        self,
        thread_id: str,
        writes: Sequence[WriteRow],
        *,
        fence: Fence | None = None,
        durable: bool,
    ) -> None:
        if not writes:
            return
        now = time.time()
        args: list[Any] = [thread_id, self._ttl, *self._fence_args(fence, now)]
        for w in writes:
            args += [_write_field(w), w.payload]
        reply = self._script(
            "PUT_WRITES", "storing task writes", thread_id, self._keys(thread_id), args
        )
        if reply[0] != 1:
            raise self._refusal(thread_id, reply, fence, now, True)

    def claim(
        self, thread_id: str, owner: Owner, lease_seconds: float, *, waiting: bool = False
    ) -> Claim:
        """Read the head hash, decide in Python (checkpoint/_lease.py), then store the
        decision only if the lease is still the one read; else read and decide again."""
        key = self._keys(thread_id)[0]
        for _attempt in range(100):
            now = time.time()
            stored = self._call("claiming the thread", thread_id, lambda: self._r.hgetall(key))
            state = _lease_state(stored)
            decision = decide_claim(thread_id, state, owner, now, lease_seconds, waiting=waiting)
            lease, ticket = decision.lease, decision.ticket
            args: list[Any] = [
                thread_id,
                _s(stored.get(b"lrun", b"")),
                _s(stored.get(b"lexp", b"")),
                str(state.epoch),
                self._ttl,
                "" if lease is None else "1",
                owner.run_id,
                owner.host,
                str(owner.pid),
                "" if lease is None else repr(lease.expires_at),
                "" if lease is None else str(lease.epoch),
                owner.process.token,
                "" if ticket is None else f"{ticket.since!r} {ticket.seen!r}",
                *decision.drop,
            ]
            reply = self._script(
                "CLAIM", "claiming the thread", thread_id, self._keys(thread_id), args
            )
            if reply[0] == 2:
                assert decision.error is not None
                raise decision.error
            if reply[0] == 1:
                assert lease is not None
                head = Head(_s(reply[1]), int(reply[2])) if reply[2] else None
                return Claim(head, Fence(owner.run_id, lease.epoch))
        raise ThreadBusyError(
            f"thread {thread_id!r}: its lease kept changing while this run tried to claim it; "
            "try again"
        )

    def renew(self, thread_id: str, fence: Fence, lease_seconds: float) -> None:
        args = [
            thread_id,
            fence.run_id,
            str(fence.epoch),
            repr(time.time() + lease_seconds),
            self._ttl,
        ]
        reply = self._script("RENEW", "renewing the lease", thread_id, self._keys(thread_id), args)
        if reply[0] != 1:
            raise lost_error(thread_id, fence, _lease_of(reply[2:8]))

    def release(self, thread_id: str, owner: Owner) -> None:
        k = self._keys(thread_id)
        self._script("RELEASE", "releasing the thread", thread_id, [k[0], k[4]], [owner.run_id])

    def list_threads(self) -> list[str]:
        found = self._script("LIST_THREADS", "listing threads", None, [list_key(self._prefix)], [])
        return sorted(_s(t) for t in found)

    def delete_thread(self, thread_id: str) -> None:
        k = self._keys(thread_id)

        def run() -> None:
            with self._r.pipeline(transaction=True) as pipe:
                pipe.delete(*k[:6])
                pipe.zrem(k[6], thread_id)
                pipe.execute()

        self._call("deleting the thread", thread_id, run)

    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoint_ids: Sequence[str],
        values: Sequence[tuple[str, int]],
        task_ids: Sequence[str],
    ) -> None:
        args: list[Any] = [str(len(checkpoint_ids)), *checkpoint_ids, str(len(values))]
        args += [f"{c}{_SEP}{v}" for c, v in values]
        args += list(dict.fromkeys(task_ids))
        self._on_thread("DELETE_CHECKPOINTS", "deleting checkpoints", thread_id, args)

    def dump_thread(self, thread_id: str) -> ThreadDump:
        flat = self._on_thread("DUMP_THREAD", "exporting the thread", thread_id, [])
        head, cps, vals, writes = (_pairs(f) for f in flat)
        ver = head.get(b"ver")
        checkpoints = [_checkpoint_of(thread_id, _s(i), raw) for i, raw in cps.items()]
        values = []
        for field, raw in vals.items():
            channel, version = _s(field).rsplit(_SEP, 1)
            values.append(_value_of(thread_id, channel, int(version), raw))
        return ThreadDump(
            thread_id,
            None if ver is None else Head(_s(head[b"cp"]), int(ver)),
            sorted(checkpoints, key=lambda c: c.version),
            sorted(values, key=lambda v: (v.channel, v.version)),
            [_write_of(f, p) for f, p in writes.items()],
        )

    def load_thread(self, dump: ThreadDump) -> None:
        head = dump.head
        args: list[Any] = [
            dump.thread_id,
            "" if head is None else head.checkpoint_id,
            "" if head is None else str(head.version),
            self._ttl,
            str(len(dump.checkpoints)),
        ]
        for c in dump.checkpoints:
            packed = _pack([c.parent_id, c.version, c.step, c.created_at, c.body])
            args += [c.checkpoint_id, str(c.version), packed]
        args.append(str(len(dump.values)))
        for v in dump.values:
            args += [f"{v.channel}{_SEP}{v.version}", _pack_value(v)]
        for w in dump.writes:
            args += [_write_field(w), w.payload]
        done = self._script(
            "LOAD_THREAD", "importing the thread", dump.thread_id, self._keys(dump.thread_id), args
        )
        if done == 0:
            raise CheckpointError(
                f"thread {dump.thread_id!r} already exists; delete it first or import under "
                "another thread id"
            )
