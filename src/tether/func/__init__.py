"""The functional API: ``@task`` durable steps and ``@entrypoint`` workflows."""

from tether.func._entrypoint import entrypoint
from tether.func._task import TaskFunction, TaskFuture, task

__all__ = ["TaskFunction", "TaskFuture", "entrypoint", "task"]
