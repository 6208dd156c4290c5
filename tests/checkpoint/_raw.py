"""Rewrite stored rows behind a saver's back, as disk damage or a hand edit would: straight
SQL on the SQLite file and the Postgres tables, HSET on the Redis hashes, the dicts of the
in-memory saver. Only for tests of what readers do with damaged storage."""

from __future__ import annotations

import sqlite3
from typing import Any

from tether.checkpoint import Saver, ValueRow, WriteRow


class RawStore:
    """Replace one stored row of a thread in place (the row must exist)."""

    def __init__(self, saver: Saver, backend: str) -> None:
        self.saver: Any = saver
        self.backend = backend
        self._conn: Any = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _sql(self) -> Any:
        if self._conn is None:
            if self.backend == "sqlite":
                self._conn = sqlite3.connect(self.saver.path, isolation_level=None)
            else:
                import psycopg

                self._conn = psycopg.connect(self.saver._conninfo, autocommit=True)
        return self._conn

    def _tid(self, thread_id: str) -> int:
        row = self._sql().execute("SELECT tid FROM heads WHERE thread_id = ?", (thread_id,))
        return int(row.fetchone()[0])

    def put_value(self, thread_id: str, row: ValueRow) -> None:
        if self.backend == "memory":
            self.saver._threads[thread_id].values[(row.channel, row.version)] = row
        elif self.backend == "sqlite":
            self._sql().execute(
                "UPDATE vals SET prev = ?, base = ?, payload = ? "
                "WHERE tid = ? AND channel = ? AND version = ?",
                (row.prev, row.base, row.payload, self._tid(thread_id), row.channel, row.version),
            )
        elif self.backend == "postgres":
            self._sql().execute(
                f"UPDATE {self.saver._s}.vals SET prev = %s, base = %s, payload = %s "
                "WHERE thread_id = %s AND channel = %s AND version = %s",
                (row.prev, row.base, row.payload, thread_id, row.channel, row.version),
            )
        else:
            from tether.checkpoint._redis import _SEP, _pack_value

            key = self.saver._keys(thread_id)[3]
            self.saver._r.hset(key, f"{row.channel}{_SEP}{row.version}", _pack_value(row))

    def put_body(self, thread_id: str, checkpoint_id: str, body: bytes) -> None:
        if self.backend == "memory":
            from dataclasses import replace

            cps = self.saver._threads[thread_id].checkpoints
            cps[checkpoint_id] = replace(cps[checkpoint_id], body=body)
        elif self.backend == "sqlite":
            from tether.checkpoint._sqlite_rows import pack_id

            self._sql().execute(
                "UPDATE checkpoints SET body = ? WHERE tid = ? AND checkpoint_id = ?",
                (body, self._tid(thread_id), pack_id(checkpoint_id)),
            )
        elif self.backend == "postgres":
            self._sql().execute(
                f"UPDATE {self.saver._s}.checkpoints SET body = %s "
                "WHERE thread_id = %s AND checkpoint_id = %s",
                (body, thread_id, checkpoint_id),
            )
        else:
            from tether.checkpoint._redis import _pack, _unpack

            key = self.saver._keys(thread_id)[1]
            fields = _unpack(self.saver._r.hget(key, checkpoint_id))
            self.saver._r.hset(key, checkpoint_id, _pack([*fields[:4], body]))

    def put_write(self, thread_id: str, row: WriteRow) -> None:
        if self.backend == "memory":
            self.saver._threads[thread_id].writes[row.task_id][(row.kind, row.key)] = row
        elif self.backend == "sqlite":
            from tether.checkpoint._sqlite_rows import pack_id

            self._sql().execute(
                "UPDATE writes SET payload = ? WHERE tid = ? AND task_id = ? AND kind = ? "
                "AND key = ?",
                (row.payload, self._tid(thread_id), pack_id(row.task_id), row.kind, row.key),
            )
        elif self.backend == "postgres":
            self._sql().execute(
                f"UPDATE {self.saver._s}.writes SET payload = %s "
                "WHERE thread_id = %s AND task_id = %s AND kind = %s AND key = %s",
                (row.payload, thread_id, row.task_id, row.kind, row.key),
            )
        else:
            from tether.checkpoint._redis import _write_field

            self.saver._r.hset(self.saver._keys(thread_id)[4], _write_field(row), row.payload)
