"""Managed values: state keys the engine computes for every step, never stored or written.

Declared in a state schema (``remaining_steps: RemainingSteps``), they read like any key in a
node or a router. Each one is a function of the steps the run may still take: ``remaining``
counts the steps that may run after the current one before ``GraphRecursionError``.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

V = TypeVar("V")


class ManagedValue(Generic[V]):
    """A value computed per step. Subclasses define ``get(remaining)``."""

    @staticmethod
    def get(remaining: int) -> V:
        raise NotImplementedError


class RemainingStepsManager(ManagedValue[int]):
    @staticmethod
    def get(remaining: int) -> int:
        return remaining


class IsLastStepManager(ManagedValue[bool]):
    # LangGraph's definition (step == stop - 1): one step is still allowed after it.
    @staticmethod
    def get(remaining: int) -> bool:
        return remaining == 1


RemainingSteps = Annotated[int, RemainingStepsManager]
"""Steps the run may still take after this one before the recursion limit (0 in the last)."""

IsLastStep = Annotated[bool, IsLastStepManager]
"""True when one step remains before the recursion limit, as in LangGraph."""


def is_managed(meta: object) -> bool:
    return isinstance(meta, type) and issubclass(meta, ManagedValue)
