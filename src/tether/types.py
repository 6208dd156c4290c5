"""The few shapes everything composes around: commands, sends, interrupts, snapshots, policies.

These are plain frozen values with no behaviour beyond validation, so they can cross threads,
processes and storage without surprises.
"""

from __future__ import annotations

import datetime
import pickle
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NamedTuple, TypeVar

START = "__start__"
END = "__end__"
INTERRUPT_KEY = "__interrupt__"
OVERWRITE_KEY = "__overwrite__"

Durability = Literal["sync", "async", "exit"]
StreamMode = Literal["values", "updates", "checkpoints", "tasks", "debug", "messages", "custom"]
"""What ``stream(stream_mode=...)`` yields, as in LangGraph:

- ``"values"``: the state after the input and after each step (with ``"__interrupt__"``
  when a node pauses);
- ``"updates"``: ``{node: update}`` as each node (and ``@task`` call) finishes;
- ``"custom"``: what nodes write with ``get_stream_writer()``;
- ``"messages"``: ``(message_chunk, metadata)`` for LLM tokens and the messages nodes return;
- ``"checkpoints"``: each checkpoint, shaped as ``get_state()`` shows it;
- ``"tasks"``: each task's start and result;
- ``"debug"``: ``"checkpoints"`` and ``"tasks"`` events wrapped with their step and time.
"""

StreamWriter = Callable[[Any], None]
"""What ``get_stream_writer()`` returns: call it with a chunk for ``stream_mode="custom"``."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Run ``node`` once with ``arg`` as its input (fan-out from an edge or a Command)."""

    node: str
    arg: Any

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A pause surfaced to the caller: the value passed to ``interrupt()`` and its id."""

    value: Any
    id: str


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """Steer a run: as input (``resume``, ``update``, ``goto``) or as a node's return value
    (``update`` and ``goto``).

    - ``resume``: the answer to the one pending interrupt, or ``{interrupt_id: answer}``.
    - ``update``: state writes, folded through reducers like a node's return value.
    - ``goto``: node name(s) or ``Send``s to run next.
    """

    update: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None
    goto: str | Send | Sequence[str | Send] = ()
    resume: Any = None
    has_resume: bool = field(default=False, repr=False, compare=False)

    def __init__(
        self,
        *,
        update: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        goto: str | Send | Sequence[str | Send] = (),
        resume: Any = ...,
    ) -> None:
        object.__setattr__(self, "update", update)
        object.__setattr__(self, "goto", goto)
        object.__setattr__(self, "has_resume", resume is not ...)
        object.__setattr__(self, "resume", None if resume is ... else resume)

    def goto_targets(self) -> list[str | Send]:
        if isinstance(self.goto, str | Send):
            return [self.goto]
        return list(self.goto)


def default_retry_on(exc: BaseException) -> bool:
    """Retry everything except programming errors and tether's own errors.

    Retried: ``ConnectionError``, ``TimeoutError``, ``OSError``, ``RuntimeError``,
    ``NodeTimeoutError`` (as in LangGraph) and any other ``Exception`` not listed below. Not
    retried (retrying cannot fix them): ``ValueError``, ``TypeError``, ``LookupError``,
    ``AttributeError``, ``NameError``, ``ArithmeticError``, ``AssertionError``,
    ``NotImplementedError``, ``ImportError``, ``SyntaxError`` and every other
    ``TetherError``.
    """
    from tether.errors import NodeTimeoutError, TetherError

    if isinstance(exc, NodeTimeoutError):
        return True
    if isinstance(exc, TetherError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, Exception) and not isinstance(
        exc,
        ValueError
        | TypeError
        | LookupError
        | AttributeError
        | NameError
        | ArithmeticError
        | AssertionError
        | NotImplementedError
        | ImportError
        | SyntaxError,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a node or ``@task`` is retried after an exception.

    The wait before attempt ``n + 1`` is ``min(max_interval, initial_interval *
    backoff_factor ** (n - 1))``, times a random factor in [1, 1.5) when ``jitter``.
    """

    initial_interval: float = 0.5
    """Seconds to wait before the first retry."""
    backoff_factor: float = 2.0
    """Multiplier of the wait after each retry."""
    max_interval: float = 128.0
    """Upper bound of a single wait, in seconds."""
    max_attempts: int = 3
    """Attempts in all, counting the first call."""
    jitter: bool = True
    """Spread waits randomly so that many retrying runs do not align."""
    retry_on: (
        type[BaseException] | Sequence[type[BaseException]] | Callable[[BaseException], bool]
    ) = default_retry_on
    """Exception classes to retry, or a predicate; the default is ``default_retry_on``."""

    def __post_init__(self) -> None:
        from tether.errors import ConfigError

        if self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_interval < 0 or self.max_interval < 0 or self.backoff_factor < 1:
            raise ConfigError(
                "RetryPolicy needs initial_interval >= 0, max_interval >= 0 and "
                f"backoff_factor >= 1 (got {self.initial_interval}, {self.max_interval}, "
                f"{self.backoff_factor})"
            )

    def should_retry(self, exc: BaseException) -> bool:
        rule = self.retry_on
        if isinstance(rule, type):
            return isinstance(exc, rule)
        if isinstance(rule, Sequence):
            return isinstance(exc, tuple(rule))
        return bool(rule(exc))

    def wait_before(self, attempt: int, rand: float) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry); ``rand`` in [0, 1)."""
        wait = min(self.max_interval, self.initial_interval * self.backoff_factor ** (attempt - 2))
        return wait * (1 + rand / 2) if self.jitter else wait


def _seconds(value: float | datetime.timedelta | None, field_name: str) -> float | None:
    from tether.errors import ConfigError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | datetime.timedelta):
        raise ConfigError(
            f"TimeoutPolicy.{field_name} must be seconds (a number or a timedelta), got "
            f"{value!r:.60}"
        )
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    if seconds <= 0:
        raise ConfigError(f"TimeoutPolicy.{field_name} must be greater than 0, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutPolicy:
    """How long one attempt of an async node, ``@task`` or ``@entrypoint`` may take; past
    it the attempt is cancelled with ``NodeTimeoutError`` (which a ``RetryPolicy`` retries
    by default). ``timeout=5`` or a ``timedelta`` means ``TimeoutPolicy(run_timeout=5)``.

    Cancellation is asyncio's: a node blocked in synchronous code is cancelled only when it
    next awaits. Sync nodes cannot be cancelled in-process and take no timeout."""

    run_timeout: float | datetime.timedelta | None = None
    """Seconds one attempt may run in all; never refreshed."""
    idle_timeout: float | datetime.timedelta | None = None
    """Seconds one attempt may go without progress: a ``runtime.heartbeat()`` call, or (with
    ``refresh_on="auto"``) a chunk written to the stream writer or a ``@task`` call."""
    refresh_on: Literal["auto", "heartbeat"] = "auto"
    """What counts as progress for ``idle_timeout``: ``"auto"`` (the default) every signal
    above, ``"heartbeat"`` only ``runtime.heartbeat()``."""

    @classmethod
    def coerce(
        cls, value: float | datetime.timedelta | TimeoutPolicy | None
    ) -> TimeoutPolicy | None:
        """A policy in seconds from what ``timeout=`` takes; None when it sets no timeout.
        A bad value is a ``ConfigError`` naming the field."""
        from tether.errors import ConfigError

        if value is None:
            return None
        policy = value if isinstance(value, TimeoutPolicy) else cls(run_timeout=value)
        if policy.refresh_on not in ("auto", "heartbeat"):
            raise ConfigError(
                f"TimeoutPolicy.refresh_on must be 'auto' or 'heartbeat', got {policy.refresh_on!r}"
            )
        run = _seconds(policy.run_timeout, "run_timeout")
        idle = _seconds(policy.idle_timeout, "idle_timeout")
        if run is None and idle is None:
            return None
        return cls(run_timeout=run, idle_timeout=idle, refresh_on=policy.refresh_on)


@dataclass(frozen=True)
class GraphOutput(Generic[T]):
    """What ``invoke(..., version="v2")`` returns: the output and the pending interrupts.

    ``result[key]`` and ``key in result`` read the output (and ``"__interrupt__"`` the
    interrupts) as LangGraph's ``GraphOutput`` still allows, with a DeprecationWarning."""

    value: T
    interrupts: tuple[Interrupt, ...] = ()

    def __getitem__(self, key: str) -> Any:
        _warn_item_access()
        if key == INTERRUPT_KEY:
            return self.interrupts
        if isinstance(self.value, dict):
            return self.value[key]
        try:
            return getattr(self.value, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        _warn_item_access()
        if key == INTERRUPT_KEY:
            return bool(self.interrupts)
        if isinstance(self.value, dict):
            return key in self.value
        return isinstance(key, str) and hasattr(self.value, key)


def _warn_item_access() -> None:
    warnings.warn(
        "reading a GraphOutput like a dict is deprecated: use result.value for the output "
        "and result.interrupts for the interrupts",
        DeprecationWarning,
        stacklevel=3,
    )


RunResult = GraphOutput
"""tether's earlier name of ``GraphOutput``."""


@dataclass(frozen=True, slots=True)
class Overwrite:
    """Write ``value`` to a key as is, bypassing its reducer (``{"xs": Overwrite([])}``
    empties a list that ``operator.add`` would append to).

    In one step a key takes at most one Overwrite (two are an ``InvalidUpdateError``); the
    Overwrite replaces the value, and the other writes to that key in the step are dropped.
    ``{"__overwrite__": value}`` is read the same way."""

    value: Any
    type: Literal["__overwrite__"] = "__overwrite__"


def _freeze(obj: Any, depth: int = 10) -> Any:
    """A value with equal parts giving an equal key: mappings sorted, sequences as tuples."""
    if depth <= 0 or (isinstance(obj, Hashable) and not isinstance(obj, tuple)):
        return obj
    if isinstance(obj, Mapping):
        return tuple(sorted(((k, _freeze(v, depth - 1)) for k, v in obj.items()), key=repr))
    if isinstance(obj, Sequence | set | frozenset):
        items = [_freeze(x, depth - 1) for x in obj]
        return tuple(sorted(items, key=repr) if isinstance(obj, set | frozenset) else items)
    return obj


def default_cache_key(*args: Any, **kwargs: Any) -> bytes:
    """The default ``CachePolicy.key_func``: the arguments, frozen (mappings sorted) and
    pickled. The bytes are only hashed into a key, never unpickled."""
    return pickle.dumps((_freeze(args), _freeze(kwargs)), protocol=5)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Cache a node's (or ``@task``'s) result: a later call whose input gives the same key
    reuses the result instead of running, within ``ttl``. Needs ``compile(cache=...)``."""

    key_func: Callable[..., str | bytes] = default_cache_key
    """Turns the node's input (the state it receives, or a Send's argument; a task's
    arguments) into the key. Default: ``default_cache_key``."""
    ttl: int | float | None = None
    """Seconds a cached result stays valid; None: until the cache is cleared."""


class StateUpdate(NamedTuple):
    """One update of ``bulk_update_state``: ``values`` written as if node ``as_node`` had
    returned them. ``task_id`` is accepted for LangGraph's signature and not used: tether
    derives task ids itself."""

    values: Any
    as_node: str | None = None
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class StateTask:
    """A task of a checkpoint's next step, as ``get_state`` shows it."""

    id: str
    name: str
    path: tuple[Any, ...]
    error: str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    result: Any = None


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """A thread's state at one checkpoint."""

    values: dict[str, Any]
    next: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str | None
    parent_config: dict[str, Any] | None
    tasks: tuple[StateTask, ...] = ()
    interrupts: tuple[Interrupt, ...] = ()


def interrupt(value: Any, *, id: str | None = None) -> Any:
    """Pause the running node and surface ``value``; on resume, return the answer (see
    ``tether.interrupt``, which this is)."""
    # This module is the bottom layer and must not import the engine when loaded; the call
    # happens only inside a running node, when the engine is loaded anyway.
    from tether.engine._runtime import interrupt as engine_interrupt

    return engine_interrupt(value, id=id)
