"""Cache keys and lookups for nodes and tasks with a ``CachePolicy``.

A key is (namespace, digest): the namespace names the function (and the node), the digest is
a hash of what ``CachePolicy.key_func`` made of the input. A cache hit stands for a finished
call: only results of calls that finished are stored, never errors or pauses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tether.types import CachePolicy

FullKey = tuple[tuple[str, ...], str]
MISS: Any = object()


def _identity(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _digest(policy: CachePolicy, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    raw = policy.key_func(*args, **kwargs)
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def node_key(node: str, fn: Callable[..., Any], policy: CachePolicy, node_input: Any) -> FullKey:
    return (("node", node, _identity(fn)), _digest(policy, (node_input,), {}))


def task_key(
    name: str,
    fn: Callable[..., Any],
    policy: CachePolicy,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> FullKey:
    return (("task", name, _identity(fn)), _digest(policy, args, kwargs))


def lookup(cache: Any, key: FullKey) -> Any:
    """The cached value under ``key``, or ``MISS``."""
    found: dict[FullKey, Any] = cache.get([key])
    return found.get(key, MISS)


def store(cache: Any, key: FullKey, value: Any, policy: CachePolicy) -> None:
    cache.set({key: (value, policy.ttl)})
