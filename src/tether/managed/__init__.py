"""``tether.managed``, as ``langgraph.managed``: ``RemainingSteps`` and ``IsLastStep``."""

from tether.managed._values import IsLastStep, ManagedValue, RemainingSteps

__all__ = ["IsLastStep", "ManagedValue", "RemainingSteps"]
