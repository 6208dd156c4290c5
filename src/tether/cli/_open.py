"""Open the DB argument as a saver, and a ``--graph module:attr`` bound to that saver.

The DB argument is a SQLite file path (or ``sqlite:///path``); ``postgresql://`` /
``postgres://`` DSNs open a ``PostgresSaver`` and ``redis://`` / ``rediss://`` URLs a
``RedisSaver``. The server backends are imported only when named, so their drivers stay
optional. Read commands never create a database (a missing file is an error) and open a
SQLite file read-only, so they work on a file or directory this user cannot write. With
``TETHER_ENCRYPTION_KEYS`` set, an encrypted database is read (and written) with those keys.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tether.checkpoint import Saver, SqliteSaver
from tether.checkpoint._sqlite_open import read_only_connection
from tether.cli._errors import EXIT_USAGE, CliError
from tether.graph import CompiledGraph, StateGraph
from tether.serde import EncryptedSerializer, Serializer
from tether.serde._crypto import ENV_VAR

_POSTGRES = ("postgresql://", "postgres://")
_REDIS = ("redis://", "rediss://", "unix://")


def _sqlite_path(db: str) -> str:
    return db.removeprefix("sqlite:///")


def _check_sqlite(path: str) -> None:
    """Refuse a missing file, or a SQLite file that is not a tether database, without
    writing to it (opening a SqliteSaver would create or migrate it)."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such database file", EXIT_USAGE)
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, not a database file", EXIT_USAGE)
    try:
        conn = read_only_connection(path)
        try:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_schema'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CliError(f"{path}: not a SQLite database ({exc})", EXIT_USAGE) from exc
    if row is None:
        raise CliError(f"{path}: not a tether checkpoint database", EXIT_USAGE)


def _serde() -> Serializer | None:
    """With ``TETHER_ENCRYPTION_KEYS`` set (``kid:base64key,...``, as for
    ``EncryptedSerializer.from_env``), the database is read and written through those keys."""
    if not os.environ.get(ENV_VAR, "").strip():
        return None
    return EncryptedSerializer.from_env()


def _server_saver(db: str, serde: Serializer | None) -> Saver:
    import tether.checkpoint as checkpoint

    name = "PostgresSaver" if db.startswith(_POSTGRES) else "RedisSaver"
    try:
        cls: Any = getattr(checkpoint, name)
    except (ImportError, AttributeError) as exc:
        raise CliError(f"{db.split('://')[0]}:// needs {name}: {exc}", EXIT_USAGE) from exc
    saver: Saver = cls(db, serde=serde)
    return saver


@contextmanager
def open_saver(db: str, *, create: bool = False, read_only: bool = False) -> Iterator[Saver]:
    """The saver for ``db``, closed on exit. ``create``: a missing SQLite file is created
    (only ``import`` does this). ``read_only``: a SQLite file is opened read-only (the read
    commands); the server backends ignore it."""
    serde = _serde()
    if db.startswith(_POSTGRES + _REDIS):
        saver = _server_saver(db, serde)
    else:
        path = _sqlite_path(db)
        if not create or os.path.exists(path):
            _check_sqlite(path)
        saver = SqliteSaver(path, read_only=read_only, serde=serde)
    try:
        yield saver
    finally:
        saver.close()


def require_thread(saver: Saver, db: str, thread_id: str) -> None:
    """Fail clearly when ``thread_id`` has no head in ``db``."""
    if saver.get_head(thread_id) is not None:
        return
    known = saver.list_threads()
    hint = f" (threads: {', '.join(known[:5])}{', ...' if len(known) > 5 else ''})" if known else ""
    raise CliError(f"thread {thread_id!r} not found in {db}{hint}")


def _import_module(module: str, ref: str) -> Any:
    try:
        if module.endswith(".py"):
            spec = importlib.util.spec_from_file_location(
                os.path.splitext(os.path.basename(module))[0], module
            )
            if spec is None or spec.loader is None or not os.path.isfile(module):
                raise ImportError(f"no such file {module!r}")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
        # Like `python -m`, look in the working directory first.
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        return importlib.import_module(module)
    except Exception as exc:
        raise CliError(
            f"--graph {ref}: cannot import {module!r}: {type(exc).__name__}: {exc}", EXIT_USAGE
        ) from exc


def load_graph(ref: str, saver: Saver) -> CompiledGraph:
    """Import ``module:attr`` (or ``path/to/file.py:attr``) and bind it to ``saver``.

    A ``CompiledGraph`` is re-bound by building a new one over the same spec and hooks with
    ``saver`` as its checkpointer (the engine gains no API for this); a ``StateGraph`` is
    compiled with ``saver``.
    """
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise CliError(f"--graph {ref!r}: expected module:attr, e.g. myapp.agent:graph", EXIT_USAGE)
    obj: Any = _import_module(module, ref)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(
                f"--graph {ref}: {module!r} has no attribute {attr!r}", EXIT_USAGE
            ) from None
    if isinstance(obj, StateGraph):
        return obj.compile(checkpointer=saver)
    if not isinstance(obj, CompiledGraph):
        raise CliError(
            f"--graph {ref}: {attr!r} is a {type(obj).__name__}, not a compiled graph "
            "(expected the result of StateGraph.compile() or @entrypoint)",
            EXIT_USAGE,
        )
    return obj.with_checkpointer(saver)
