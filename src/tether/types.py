"""The few shapes everything composes around: commands, sends, interrupts, snapshots, policies.

These are plain frozen values with no behaviour beyond validation, so they can cross threads,
processes and storage without surprises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

START = "__start__"
END = "__end__"
INTERRUPT_KEY = "__interrupt__"

Durability = Literal["sync", "async", "exit"]
StreamMode = Literal["values", "updates", "custom"]

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

    Retried: ``ConnectionError``, ``TimeoutError``, ``OSError``, ``RuntimeError`` and any other
    ``Exception`` not listed below. Not retried (retrying cannot fix them): ``ValueError``,
    ``TypeError``, ``LookupError``, ``AttributeError``, ``NameError``, ``ArithmeticError``,
    ``AssertionError``, ``NotImplementedError``, ``ImportError``, ``SyntaxError`` and every
    ``TetherError``.
    """
    from tether.errors import TetherError

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


@dataclass(frozen=True, slots=True)
class RunResult:
    """What ``invoke(..., version="v2")`` returns: the output and the pending interrupts."""

    value: Any
    interrupts: tuple[Interrupt, ...] = ()


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
