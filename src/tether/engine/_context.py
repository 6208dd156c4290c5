"""What a running node is handed besides its state: the ``Runtime`` and its config.

Both are built on demand from the task running in this context (``engine/_runtime.py``), so
the run's context object, store and stream writer reach nodes, routers and ``@task`` calls on
any thread without riding in the config under magic keys. Nothing here is stored: the context
and the store belong to one ``invoke`` and must be passed again on resume.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from tether.engine._events import triggers_of
from tether.engine._runtime import TaskContext, current_context
from tether.errors import ConfigError, TaskCallError
from tether.serde._auto import is_pydantic_model

ContextT = TypeVar("ContextT")

StreamWriter = Callable[[Any], None]
"""A function that emits one chunk to ``stream_mode="custom"``."""


def no_op_writer(_chunk: Any) -> None:
    return None


def _no_op_heartbeat() -> None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionInfo:
    """Read-only facts about the node (or ``@task`` call) running now."""

    checkpoint_id: str
    """The checkpoint that planned this task ("" before the thread's first checkpoint)."""
    checkpoint_ns: str
    """``"node:task_id"``: the task's namespace, as LangGraph names it."""
    task_id: str
    thread_id: str | None = None
    """The config's ``thread_id``; None when the run has none."""
    run_id: str | None = None
    """The config's ``run_id``; None when the config gives none."""
    node_attempt: int = 1
    """1 for the first attempt, 2 for the first retry, ..."""
    node_first_attempt_time: float | None = None
    """Unix time at which the first attempt started."""

    def patch(self, **overrides: Any) -> ExecutionInfo:
        return replace(self, **overrides)


# No slots: with them (as in LangGraph) ``Runtime[Ctx](...)`` fails on Python 3.11.
@dataclass(frozen=True, kw_only=True)
class Runtime(Generic[ContextT]):
    """Run-scoped dependencies of a node: declare a parameter ``runtime: Runtime[Ctx]``.

    ``config`` is not part of it; declare a ``config`` parameter or call ``get_config()``.
    """

    context: ContextT = field(default=None)  # type: ignore[assignment]
    """The ``context=`` given to ``invoke``/``stream`` (a dict turned into ``context_schema``
    when that is a dataclass or pydantic model); None when none was given."""
    store: Any = None
    """The ``store=`` given to ``compile`` / ``@entrypoint``; None when none was given."""
    stream_writer: StreamWriter = field(default=no_op_writer)
    """Emits a chunk to ``stream_mode="custom"``; a no-op when that mode is not streamed."""
    heartbeat: Callable[[], None] = field(default=_no_op_heartbeat)
    """Report progress: refreshes the ``idle_timeout`` of the node's (or task's)
    ``TimeoutPolicy``; a no-op without one. Leases are renewed by the engine, not by this."""
    previous: Any = None
    """The functional API's value saved by the thread's last run; None in graph nodes."""
    execution_info: ExecutionInfo | None = None
    server_info: Any = None
    """Always None: tether runs are not LangGraph Server deployments."""

    def merge(self, other: Runtime[ContextT]) -> Runtime[ContextT]:
        """``other``'s values where it sets them, this runtime's otherwise."""
        return Runtime(
            context=other.context or self.context,
            store=other.store or self.store,
            stream_writer=other.stream_writer
            if other.stream_writer is not no_op_writer
            else self.stream_writer,
            heartbeat=other.heartbeat
            if other.heartbeat is not _no_op_heartbeat
            else self.heartbeat,
            previous=self.previous if other.previous is None else other.previous,
            execution_info=other.execution_info or self.execution_info,
            server_info=other.server_info or self.server_info,
        )

    def override(self, **overrides: Any) -> Runtime[ContextT]:
        """A copy with the given fields replaced."""
        return replace(self, **overrides)

    def patch_execution_info(self, **overrides: Any) -> Runtime[ContextT]:
        if self.execution_info is None:
            raise TaskCallError("this Runtime has no execution_info to patch")
        return replace(self, execution_info=self.execution_info.patch(**overrides))


def _thread_id(config: dict[str, Any]) -> str | None:
    tid = (config.get("configurable") or {}).get("thread_id")
    return None if tid is None else str(tid)


def _namespace(ctx: TaskContext) -> str:
    return f"{ctx.name}:{ctx.task.id}"


def _path(ctx: TaskContext) -> tuple[Any, ...]:
    task = ctx.task
    node_path: tuple[Any, ...] = (
        ("__pregel_push", task.index, False) if task.is_send else ("__pregel_pull", task.node)
    )
    return ("__pregel_push", node_path, ctx.path) if ctx.path else node_path


def runtime_of(ctx: TaskContext) -> Runtime[Any]:
    """The Runtime of the node or ``@task`` call ``ctx``."""
    run = ctx.run
    return Runtime(
        context=run.context,
        store=run.store,
        stream_writer=ctx.stream_writer() or no_op_writer,
        heartbeat=ctx.clock.heartbeat if ctx.clock is not None else _no_op_heartbeat,
        previous=ctx.previous,
        execution_info=ExecutionInfo(
            checkpoint_id=run.checkpoint_id,
            checkpoint_ns=_namespace(ctx),
            task_id=ctx.task.id,
            thread_id=_thread_id(run.config),
            run_id=None if (rid := run.config.get("run_id")) is None else str(rid),
            node_attempt=ctx.attempt,
            node_first_attempt_time=ctx.first_attempt_at,
        ),
    )


def config_of(ctx: TaskContext) -> dict[str, Any]:
    """The config a node (or ``@task`` call) sees: a copy of the run's config whose
    ``metadata`` also names the node, step, triggers and task the way LangGraph's does, and
    whose ``configurable`` names the task's ``checkpoint_ns``. Values of ``configurable``
    are not copied into metadata (they may be secrets), ``thread_id`` aside. While messages
    are streamed, ``callbacks`` carries the handler that chat models report tokens to."""
    run = ctx.run
    config = run.config
    metadata = dict(config.get("metadata") or {})
    if not ctx.path:  # the node's own metadata; a @task call is not the node
        metadata.update(run.node_metadata.get(ctx.task.node, {}))
    thread_id = _thread_id(config)
    if thread_id is not None:
        metadata["thread_id"] = thread_id
    namespace = _namespace(ctx)
    metadata.update(
        # a task runs in the step after the checkpoint that planned it, as LangGraph counts
        langgraph_step=run.step + 1,
        langgraph_node=ctx.name,
        langgraph_triggers=triggers_of(run.node_triggers, ctx.task, ctx.path),
        langgraph_path=_path(ctx),
        langgraph_checkpoint_ns=namespace,
    )
    configurable = {**(config.get("configurable") or {}), "checkpoint_ns": namespace}
    out = {**config, "metadata": metadata, "configurable": configurable}
    if run.callbacks is not None:
        out["callbacks"] = run.callbacks
    return out


def enter_langchain(ctx: TaskContext) -> Callable[[], None] | None:
    """Make ``ctx``'s config the one langchain-core runnables called without a config
    inherit (its ``var_child_runnable_config``), as LangGraph does for a node: a chat model
    invoked in the node then streams to ``stream_mode="messages"`` and carries the node's
    metadata, tags and callbacks. Returns the undo, or None when langchain-core is not
    loaded (then nothing can read it)."""
    module = sys.modules.get("langchain_core.runnables.config")
    if module is None:
        return None
    var = module.var_child_runnable_config
    token = var.set(config_of(ctx))
    return lambda: var.reset(token)


def _current(what: str) -> TaskContext:
    ctx = current_context()
    if ctx is None:
        raise TaskCallError(
            f"{what} was called outside a running node, router, @task or @entrypoint; call it "
            "from code that the graph runs"
        )
    return ctx


def get_runtime(context_schema: type[ContextT] | None = None) -> Runtime[ContextT]:
    """The Runtime of the node running in this context (``context_schema`` only types the
    result)."""
    return runtime_of(_current("get_runtime()"))


def get_config() -> dict[str, Any]:
    """The config of the node running in this context (see ``config_of``)."""
    return config_of(_current("get_config()"))


def get_store() -> Any:
    """The store given to ``compile(store=...)`` / ``@entrypoint(store=...)``, or None."""
    return _current("get_store()").run.store


def coerce_context(context_schema: Any, context: Any) -> Any:
    """The ``context=`` of a run as nodes see it: a dict given for a dataclass or pydantic
    ``context_schema`` is turned into an instance; anything else is passed as is."""
    if context is None or context_schema is None or not isinstance(context, dict):
        return context
    if not isinstance(context_schema, type) or not (
        dataclasses.is_dataclass(context_schema) or is_pydantic_model(context_schema)
    ):
        return context
    try:
        return context_schema(**context)
    except Exception as exc:  # a TypeError or a pydantic ValidationError, named for the user
        raise ConfigError(
            f"context with keys {sorted(context)} does not fit context_schema "
            f"{context_schema.__qualname__}: {_without_values(exc)}"
        ) from exc


def _without_values(exc: Exception) -> str:
    """What went wrong, without the values given: context values are often credentials."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError prints the input values
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors())
    return f"{type(exc).__name__}: {exc}"
