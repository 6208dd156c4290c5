"""Opening a Redis server for RedisSaver: the URL, and whether the server may evict tether.

Invariant: a malformed URL is a ConfigError naming the URL without its password, before any
connection; a server whose ``maxmemory-policy`` may evict tether's keys (or cannot be read)
is refused with a ConfigError unless the caller passed ``allow_eviction=True``, which turns
the refusal into a RuntimeWarning.
"""

from __future__ import annotations

import re
import urllib.parse
import warnings

import redis

from tether.errors import CheckpointError, ConfigError

_SCHEMES = ("redis", "rediss", "unix")
URL_FORM = "redis://[[user]:password@]host[:port][/db] (rediss:// for TLS, unix:///path?db=N)"


def _password(url: str) -> str | None:
    """The password as written in the URL (text between the user's ``:`` and the last ``@``
    of the authority), found without parsing, so that a URL too broken to parse still
    hides it."""
    _scheme, sep, rest = url.partition("//")
    at = rest.rfind("@")
    if not sep or at < 0:
        return None
    _user, colon, password = rest[:at].partition(":")
    return password if colon else None


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages. Never raises."""
    password = _password(url)
    if not password:
        return url
    head, _, rest = url.partition("//")
    at = rest.rfind("@")
    user = rest[:at].partition(":")[0]
    return f"{head}//{user}:***@{rest[at + 1 :]}"


def _url_problem(url: str) -> str | None:
    """Why the URL cannot name a Redis server, or None. redis-py ignores some mistakes (a
    database path that is not a number, port 0) and would silently use database 0 or port
    6379; these are refused here."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in _SCHEMES:
        return f"the scheme must be redis://, rediss:// or unix://, not {parts.scheme!r}"
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    if port == 0:
        return "port 0 is not a port (1-65535)"
    if parts.path not in ("", "/") and not re.fullmatch(r"/\d+", parts.path):
        return f"the path must be a database number such as /0, not {parts.path!r}"
    return None


def open_client(url: str, timeout: float) -> redis.Redis:
    """A client for ``url`` (not yet connected); ConfigError for a malformed URL."""
    password = _password(url)

    def hidden(text: str) -> str:
        return text.replace(password, "***") if password else text

    problem = _url_problem(url)
    if problem is None:
        try:
            return redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 30.0)
            )
        except ValueError as exc:
            problem = str(exc)
    raise ConfigError(
        f"RedisSaver: invalid Redis URL {safe_url(url)!r}: {hidden(problem)}; expected {URL_FORM}"
    ) from None


def server_name(client: redis.Redis) -> str:
    """``host:port/db`` (or the socket path) of the client's server, for messages."""
    kw = client.connection_pool.connection_kwargs
    where = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
    return f"{where}/{kw.get('db', 0)}"


# -- eviction -----------------------------------------------------------------------------


def read_policy(client: redis.Redis) -> str | None:
    """The server's ``maxmemory-policy``: from CONFIG GET, else from INFO (managed services
    often forbid CONFIG but allow INFO); None when neither is allowed."""
    try:
        got = client.config_get("maxmemory-policy")
        value = got.get("maxmemory-policy", got.get(b"maxmemory-policy"))  # type: ignore[call-overload]
        if value:
            return value.decode() if isinstance(value, bytes) else str(value)
    except redis.ResponseError:
        pass  # CONFIG renamed or forbidden by an ACL
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except redis.ResponseError:
        return None
    return str(policy) if policy else None


def eviction_risk(policy: str | None, ttl: bool) -> str | None:
    """Why Redis may evict tether's keys under ``policy``, or None when it cannot. volatile-*
    policies evict only keys with a TTL, which tether's keys have only with ``ttl=``."""
    if policy == "noeviction":
        return None
    if policy is None:
        return "its maxmemory-policy cannot be read (CONFIG GET and INFO are refused)"
    if policy.startswith("volatile-"):
        if not ttl:
            return None
        return (
            f"its maxmemory-policy is {policy!r}, which evicts keys that have a TTL, and "
            "ttl= gives every key of a thread one"
        )
    if policy.startswith("allkeys-"):
        return f"its maxmemory-policy is {policy!r}, which evicts any key"
    return f"its maxmemory-policy is {policy!r}, which tether does not know"


def check_eviction(policy: str | None, ttl: bool, server: str, allow: bool) -> None:
    """Refuse (or, with ``allow``, warn about) a server that may evict tether's keys."""
    why = eviction_risk(policy, ttl)
    if why is None:
        return
    fix = "set maxmemory-policy to noeviction on the server (CONFIG SET, redis.conf or the "
    fix += "provider's parameter group)"
    if ttl and (policy is None or policy.startswith("volatile-")):
        fix += ", or drop ttl= (volatile-* policies never evict keys without a TTL)"
    risk = (
        f"RedisSaver: Redis {server} may evict tether's keys: {why}. Redis evicts single "
        "keys, so an evicted thread loses part of its state and cannot resume"
    )
    if allow:
        warnings.warn(
            f"{risk}; allow_eviction=True: a thread that loses a key raises CorruptionError "
            f"when it is read. To remove the risk, {fix}",
            RuntimeWarning,
            stacklevel=4,
        )
        return
    raise ConfigError(
        f"{risk}. {fix[0].upper()}{fix[1:]}; or pass allow_eviction=True to accept the risk "
        "(a thread that loses a key then raises CorruptionError when it is read)"
    )


def out_of_memory(server: str, what: str, where: str, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"RedisSaver: {what}{where} failed: Redis {server} is out of memory (used memory is "
        f"over maxmemory and the server refuses writes: {exc}); nothing was written. Raise "
        "maxmemory, or delete threads you no longer need (or give new ones a ttl=), then retry"
    )
