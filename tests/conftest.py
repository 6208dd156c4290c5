"""Session-wide fixtures: real PostgreSQL and Redis servers (see tests/_servers.py)."""

from tests._parity import api  # noqa: F401  (the fixture running a test on tether and LangGraph)
from tests._servers import (  # noqa: F401  (fixtures, found by pytest through this import)
    _private_postgres_server,
    _private_redis_server,
    postgres_dsn,
    private_postgres,
    private_redis,
    redis_url,
)
