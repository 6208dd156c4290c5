"""Which parameters of a user function tether fills in: one rule for nodes, routers,
``@entrypoint`` and ``@task`` functions, with LangGraph's names.

    A parameter named ``config``, ``writer``, ``store``, ``runtime`` or ``previous`` receives
    the task's config, stream writer, store, Runtime or previous value, by name and whatever
    its annotation. The first positional parameter of a node, router or entrypoint is the
    state (or input) and is never filled; nor are positional-only parameters, ``*args`` and
    ``**kwargs``; nor, for a ``@task``, parameters the caller passed.

LangGraph also looks at the annotation and skips ``config: dict`` (with a warning) or
``writer: Callable``; tether fills them, since a program without langchain-core has no
``RunnableConfig`` to annotate with. A node, router or entrypoint with any other parameter
that has no default could never be called, so it is refused when the graph is built,
naming the parameter.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from tether.engine._context import config_of, no_op_writer, runtime_of
from tether.engine._runtime import TaskContext
from tether.errors import GraphError

INJECTABLE: tuple[str, ...] = ("config", "writer", "store", "runtime", "previous")

_P = inspect.Parameter
_BY_NAME = (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD, _P.VAR_POSITIONAL)


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: nothing to learn or fill
        return None


def injected_params(fn: Callable[..., Any], what: str | None = None) -> tuple[str, ...]:
    """The parameters of ``fn`` that tether fills, in signature order.

    ``what`` names a node, router or entrypoint (``"node 'plan'"``): its first positional
    parameter is the state, and every other parameter must be fillable or have a default.
    Without ``what`` (a ``@task``) every parameter is the caller's to pass or tether's to fill.
    """
    params = _parameters(fn)
    if params is None:
        return ()
    if what is not None:
        first = next((i for i, p in enumerate(params) if p.kind in _POSITIONAL), None)
        if first is None:
            raise GraphError(
                f"{what}: {_name(fn)} takes no positional parameter for its input; give it one "
                "(e.g. def node(state): ...)"
            )
        if params[first].kind != _P.VAR_POSITIONAL:
            params = params[:first] + params[first + 1 :]
        _check_fillable(fn, params, what)
    return tuple(p.name for p in params if p.name in INJECTABLE and p.kind in _BY_NAME)


def _check_fillable(fn: Callable[..., Any], params: list[inspect.Parameter], what: str) -> None:
    for p in params:
        if p.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD) or p.default is not _P.empty:
            continue
        if p.name in INJECTABLE and p.kind in _BY_NAME:
            continue
        raise GraphError(
            f"{what}: parameter {p.name!r} of {_name(fn)} has no default, and tether only "
            f"fills parameters named {', '.join(INJECTABLE)} (after the first, which is the "
            "input); rename it (e.g. to config to receive the run's config) or give it a default"
        )


def _name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{name}()"


def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The names a call's positional arguments bind to, in order."""
    params = _parameters(fn) or []
    return tuple(p.name for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD))


def unbound(
    names: Sequence[str], positional: Sequence[str], args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[str, ...]:
    """``names`` minus those a call with ``args`` and ``kwargs`` already binds."""
    taken = set(positional[: len(args)]) | set(kwargs)
    return tuple(n for n in names if n not in taken)


_VALUES: dict[str, Callable[[TaskContext], Any]] = {
    "config": config_of,
    "writer": lambda ctx: ctx.stream_writer() or no_op_writer,
    "store": lambda ctx: ctx.run.store,
    "runtime": runtime_of,
    "previous": lambda ctx: ctx.previous,
}


def inject(names: Sequence[str], ctx: TaskContext) -> dict[str, Any]:
    """The keyword arguments that fill ``names`` for the task ``ctx``."""
    return {name: _VALUES[name](ctx) for name in names}
