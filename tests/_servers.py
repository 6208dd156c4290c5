"""Real PostgreSQL and Redis servers for the tests: the machine's own when they answer, else
private ones started from the installed binaries in a temp dir. Never mocks.

``postgres_dsn`` (session): a fresh database ``tether_test_<hex>`` on the server at
``$TETHER_TEST_POSTGRES_DSN`` or ``postgresql://postgres@127.0.0.1:5432/postgres``, dropped at
the end; on a private server when that one does not answer.

``redis_url`` (session): a Redis database number (1..15) that this run claims with a marker
key (``SET NX``) while it is empty, and flushes at the end only if the marker is still this
run's; concurrent runs on one machine thus never share or wipe each other's keys. The
savers' per-test ``prefix=`` isolates tests within the run. On a private server when the
machine's Redis (``$TETHER_TEST_REDIS_URL`` or ``redis://127.0.0.1:6379``) does not answer.

``private_postgres`` / ``private_redis`` (per test, on one server per session): always a
private server with ``.stop()`` / ``.start()`` (same port, data kept: Redis runs with
``appendonly yes``, ``appendfsync always``) and ``.dsn`` / ``.url``; restarted after the test
if it was left stopped.

``pgbouncer`` (session, imported by the modules that use it): a PgBouncer of our own in
transaction mode (``default_pool_size = 2``) in front of the ``postgres_dsn`` database;
``PgBouncer(dsn, pool_size=...)`` starts another one.

Missing binaries are installed with apt-get (``postgresql``, ``redis-server``, ``pgbouncer``)
when running as root; otherwise the fixture fails (PgBouncer: skips) saying what to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
REDIS_MARKER = "tether_test_run_owner"
_apt_lock = threading.Lock()
_apt_updated = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(package: str) -> bool:
    """Install a Debian package when we are root; False when we cannot."""
    global _apt_updated
    if not _is_root() or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _apt_lock:
        if not _apt_updated:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            _apt_updated = True
        done = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, check=False)
    return done.returncode == 0


def _pg_bin(name: str) -> str | None:
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return found[-1] if found else shutil.which(name)


def pg_binaries() -> tuple[str, str]:
    """Paths of initdb and pg_ctl, installing ``postgresql`` when root and missing."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if (initdb is None or pg_ctl is None) and _apt_install("postgresql"):
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.fail(
            "PostgreSQL is needed for these tests: no server answers at 127.0.0.1:5432 and "
            "initdb/pg_ctl are not installed. Install the Debian package `postgresql` "
            "(sudo apt-get install postgresql), or set TETHER_TEST_POSTGRES_DSN to a server.",
            pytrace=False,
        )
    return initdb, pg_ctl


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path is None and _apt_install("redis-server"):
        path = shutil.which("redis-server")
    if path is None:
        pytest.fail(
            "Redis is needed for these tests: no server answers at 127.0.0.1:6379 and "
            "redis-server is not installed. Install the Debian package `redis-server` "
            "(sudo apt-get install redis-server), or set TETHER_TEST_REDIS_URL to a server.",
            pytrace=False,
        )
    return path


def _wait(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temp dir, on a free localhost port. When we are
    root it runs as the ``postgres`` user (Postgres refuses to run as root)."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = pg_binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tether-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        self._frozen: set[int] = set()
        if _is_root():
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "running as root, and there is no `postgres` user to run a private "
                    "PostgreSQL server as: install the Debian package `postgresql`",
                    pytrace=False,
                )
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            [
                initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        self.running = False
        self.start()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run([*self._as, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}"
            )

    def start(self) -> None:
        if self.running:
            return
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(
            [
                self._pg_ctl,
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (like a crash)."""
        if not self.running:
            return
        self.thaw()
        self._run([self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])
        self.running = False

    # -- faults: processes frozen (SIGSTOP) and killed (SIGKILL) ---------------------------

    def pids(self, *roles: str) -> list[int]:
        """The server's processes whose title names one of ``roles`` (``"walwriter"``,
        ``"checkpointer"``, ...); with no roles, the postmaster and all its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = [pid for pid, ppid in _processes() if ppid == postmaster]
        if not roles:
            return [postmaster, *children]
        return [pid for pid in children if any(r in _title(pid) for r in roles)]

    def freeze(self, *roles: str) -> None:
        """SIGSTOP the processes of ``roles`` (all of the server's without roles): their
        kernel still accepts and acknowledges TCP, but nothing answers."""
        for pid in self.pids(*roles):
            os.kill(pid, signal.SIGSTOP)
            self._frozen.add(pid)

    def thaw(self) -> None:
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen.clear()

    def crash(self, *roles: str) -> None:
        """SIGKILL the processes of ``roles``, as the OOM killer would. The postmaster then
        resets: every other server process is stopped at once, shared memory (with WAL not
        yet written to the OS) is thrown away, and the server recovers from the WAL on disk.
        Returns when the server processes of before are gone; ``wait_ready`` waits for the
        recovered server."""
        assert roles, "name the processes to kill; the postmaster itself restarts the rest"
        _, *children = self.pids()
        victims = self.pids(*roles)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        self._frozen.difference_update(victims)
        self.thaw()
        old = set(children)
        _wait(lambda: not old & {pid for pid, _ in _processes()}, "the crashed server processes")

    def wait_ready(self, timeout: float = 60.0) -> None:
        _wait(lambda: _pg_answers(self.dsn), f"PostgreSQL on port {self.port}", timeout)

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every live process; zombies count as gone."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z":
            found.append((int(entry), int(fields[1])))
    return found


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class PrivateRedis:
    """A redis-server of our own on a free localhost port, persisting to an AOF in a temp dir
    (fsync on every write) so that a stop and start keeps the data. ``args`` are more
    command-line settings (``["--maxmemory", "8mb"]``)."""

    def __init__(self, args: Sequence[str] = ()) -> None:
        self._args = list(args)
        self._binary = redis_binary()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tether-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self) -> None:
        if self._proc is not None:
            return
        cmd = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--logfile",
            str(self.root / "server.log"),
            *self._args,
        ]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _redis_answers(self.url), f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        self._proc.wait(30)
        self._proc = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _pg_answers(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _redis_answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def _private_postgres_server() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _private_redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.close()


@pytest.fixture
def private_postgres(_private_postgres_server: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server that the test may stop and start, freeze and crash."""
    _private_postgres_server.start()
    yield _private_postgres_server
    _private_postgres_server.thaw()
    _private_postgres_server.start()
    _private_postgres_server.wait_ready()


@pytest.fixture
def private_redis(_private_redis_server: PrivateRedis) -> Iterator[PrivateRedis]:
    """A private Redis server that the test may stop and start."""
    _private_redis_server.start()
    yield _private_redis_server
    _private_redis_server.start()


@pytest.fixture(scope="session")
def postgres_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a database made for this test run (dropped at the end)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    admin = os.environ.get("TETHER_TEST_POSTGRES_DSN") or DEFAULT_PG
    if not _pg_answers(admin):
        admin = request.getfixturevalue("_private_postgres_server").dsn
    name = f"tether_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(admin, dbname=name)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # the server went away; a private one is removed with its directory


def _claim_redis_db(base: str, run_id: str) -> str | None:
    """The URL of the first empty database 1..15 we could mark as this run's, or None."""
    import redis

    for db in range(1, 16):
        url = _with_db(base, db)
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            if not client.set(REDIS_MARKER, run_id, nx=True, ex=6 * 3600):
                continue
            if client.dbsize() == 1:
                return url
            client.delete(REDIS_MARKER)  # leftovers of a crashed run: not ours to wipe
        except redis.ResponseError:
            return None  # the server has fewer databases
        finally:
            client.close()
    return None


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a Redis database number this run has to itself (flushed at the end)."""
    import redis

    base = os.environ.get("TETHER_TEST_REDIS_URL") or DEFAULT_REDIS
    run_id = uuid.uuid4().hex
    url = _claim_redis_db(base, run_id) if _redis_answers(_with_db(base, 0)) else None
    if url is None:
        yield request.getfixturevalue("_private_redis_server").url
        return
    yield url
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        if client.get(REDIS_MARKER) == run_id.encode():
            client.flushdb()
    except redis.RedisError:
        pass
    finally:
        client.close()


# -- PgBouncer --------------------------------------------------------------------------------


def pgbouncer_binary() -> str:
    """Path of pgbouncer, installing the Debian package when root and missing; else skip."""

    def find() -> str | None:
        return shutil.which("pgbouncer") or next(
            (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
        )

    path = find()
    if path is None and _apt_install("pgbouncer"):
        path = find()
    if path is None:
        pytest.skip(
            "PgBouncer is not installed: install the Debian package `pgbouncer` "
            "(sudo apt-get install pgbouncer) to run the PgBouncer tests"
        )
    return path


def _pgbouncer_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"PgBouncer (\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


class PgBouncer:
    """A pgbouncer of our own on a free localhost port, in front of the database of
    ``target_dsn``, with ``pool_mode = transaction`` and ``default_pool_size = pool_size``.
    Clients connect with trust auth as the target's user to ``.dsn``. When we are root it runs
    as the ``postgres`` user (``user =`` in its ini: pgbouncer refuses to run as root)."""

    def __init__(self, target_dsn: str, *, pool_size: int = 2) -> None:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        binary = pgbouncer_binary()
        target = conninfo_to_dict(target_dsn)
        self.user = str(target.get("user") or "postgres")
        self.dbname = str(target.get("dbname") or self.user)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tether-pgbouncer-"))
        self.log = self.root / "pgbouncer.log"
        server = {
            "host": str(target.get("host") or "127.0.0.1"),
            "port": str(target.get("port") or 5432),
            "dbname": self.dbname,
            "user": self.user,
        }
        if target.get("password"):
            server["password"] = str(target["password"])
        db_line = " ".join(f"{k}={v}" for k, v in server.items())
        (self.root / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{self.dbname} = {db_line}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.root}\n"
            "auth_type = trust\n"
            f"admin_users = {self.user}\n"
            f"auth_file = {self.root / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            "max_client_conn = 200\n"
            "server_round_robin = 0\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.root / 'pgbouncer.pid'}\n"
            # 1.21+ can track protocol-level prepared statements (on by default from 1.22);
            # keep plain transaction pooling, where they break, on every version
            + ("max_prepared_statements = 0\n" if _pgbouncer_version(binary) >= (1, 21) else "")
        )
        if _is_root():  # pgbouncer drops to this user itself (so SIGTERM reaches it directly)
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root, and there is no `postgres` user to run pgbouncer as")
            with (self.root / "pgbouncer.ini").open("a") as ini:
                ini.write("user = postgres\n")
            for path in self.root.iterdir():
                os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [binary, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.dsn = make_conninfo(
            host="127.0.0.1", port=str(self.port), dbname=self.dbname, user=self.user
        )
        # pgbouncer's admin console (SHOW POOLS, ...): simple query protocol only
        self.admin_dsn = make_conninfo(self.dsn, dbname="pgbouncer")
        try:
            _wait(self._answers, f"pgbouncer on port {self.port}", timeout=20)
        except RuntimeError as exc:
            self.close()
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{exc}:\n{log}") from None

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            err = self._proc.stderr.read().decode() if self._proc.stderr else ""
            raise RuntimeError(f"pgbouncer exited ({self._proc.returncode}): {err}")
        return _pg_answers(self.dsn)

    def close(self) -> None:
        try:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            self._proc = None
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(postgres_dsn: str) -> Iterator[PgBouncer]:
    """A PgBouncer (transaction pooling, ``default_pool_size = 2``) in front of the
    ``postgres_dsn`` database; ``.dsn`` connects through it. Skips if pgbouncer cannot be had."""
    bouncer = PgBouncer(postgres_dsn, pool_size=2)
    yield bouncer
    bouncer.close()
