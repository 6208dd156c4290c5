"""Where RedisSaver keeps a thread: the key layout, and why no two threads share a key.

Invariant: for prefix ``p`` (which may not contain braces) and thread ``t``, the thread's keys
are ``p:{t}:<part>`` and the prefix's thread list is ``p:thread-list``. The first ``{`` of a
key ends the prefix and the last ``}:`` starts the part (parts have no ``:``), so a key names
exactly one (prefix, thread): ``p`` + ``a:t`` is ``p:{a:t}:head``, ``p:a`` + ``t`` is
``p:a:{t}:head``. The braces are also a Redis Cluster hash tag: one thread, one slot.
"""

from __future__ import annotations

from typing import NamedTuple

from tether.errors import CheckpointError, ConfigError, CorruptionError

# What each key of a thread holds, in the order the Lua scripts take them as KEYS[1..6].
PARTS = {
    "head": "its head: latest checkpoint id and version, lease, the list of its keys",
    "cp": "its checkpoints",
    "cpv": "its checkpoint ids by version",
    "val": "its state values",
    "w": "its task writes and @task journal",
    "wx": "the index of its task writes",
}
LIST_SUFFIX = "thread-list"
# The thread list of tether's first layout, ``p:<thread>:<part>`` (thread ids not delimited).
OLD_LIST_SUFFIX = "threads"


class ThreadKeys(NamedTuple):
    """A thread's keys, in the order the scripts take them (``KEYS[1..7]``)."""

    head: str
    cp: str
    cpv: str
    val: str
    w: str
    wx: str
    threads: str  # the prefix's thread list, shared by its threads


def check_prefix(prefix: str) -> str:
    if "{" in prefix or "}" in prefix:
        raise ConfigError(
            f"RedisSaver: prefix {prefix!r} contains a brace; tether delimits thread ids in "
            "keys with braces (p:{thread}:head), so the prefix may not contain '{' or '}'"
        )
    return prefix


def keys_of(prefix: str, thread_id: str) -> ThreadKeys:
    base = f"{prefix}:{{{thread_id}}}"
    head, cp, cpv, val, w, wx = (f"{base}:{part}" for part in PARTS)
    return ThreadKeys(head, cp, cpv, val, w, wx, list_key(prefix))


def list_key(prefix: str) -> str:
    return f"{prefix}:{LIST_SUFFIX}"


def old_layout_error(prefix: str, server: str) -> CheckpointError:
    old = f"{prefix}:{OLD_LIST_SUFFIX}"
    return CheckpointError(
        f"RedisSaver: prefix {prefix!r} on Redis {server} holds threads in tether's earlier "
        f"key layout ({old!r}, '{prefix}:<thread>:head', ...), which this version does not "
        f"read (thread ids are now delimited: '{prefix}:{{<thread>}}:head'). Export those "
        "threads with the tether version that wrote them (tether export) and import them "
        f"with this one, delete the old keys ({old!r} and '{prefix}:*:head|cp|cpv|val|w|wx'), "
        "or use another prefix"
    )


def missing_key_error(
    keys: ThreadKeys, thread_id: str, index: int, server: str, policy: str | None
) -> CorruptionError:
    """The error for a thread one of whose keys is gone (``index`` 1..6, as in KEYS)."""
    part = list(PARTS)[index - 1]
    key = keys[index - 1]
    if index == 1:
        what = (
            f"its head key {key!r} ({PARTS[part]}) is missing while its other keys or its "
            f"entry in {keys.threads!r} remain"
        )
    else:
        what = f"its key {key!r} ({PARTS[part]}) is missing while its head says it exists"
    cause = (
        f"maxmemory-policy was {policy!r} when this saver connected"
        if policy is not None
        else "its maxmemory-policy could not be read"
    )
    return CorruptionError(
        f"RedisSaver: thread {thread_id!r} on Redis {server} is damaged: {what}. Redis most "
        f"likely evicted it ({cause}), or it was deleted by hand. tether will not resume a "
        "thread from partial state (a recorded @task would run again). Restore the thread "
        f"from an export (import_thread), or delete it (saver.delete_thread({thread_id!r})) "
        "to start it over; set maxmemory-policy to noeviction so that Redis cannot evict "
        "tether's keys"
    )
