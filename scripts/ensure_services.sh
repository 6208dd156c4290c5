#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer before the tests,
# and that pgbouncer is installed (the tests start their own). Idempotent. Starts the machine's own services when they are down, installing the Debian
# packages first when they are missing and we are root. Never fails the build: if a service
# cannot be had, the pytest fixtures (tests/_servers.py) start a private server from the
# installed binaries, or fail saying what to install.
set -u

say() { echo "ensure_services: $*"; }

answers() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # port seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        answers 127.0.0.1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

apt_updated=0
install_pkgs() { # packages...
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing $*; install with: sudo apt-get install -y $*"
        return 1
    fi
    if [ "$apt_updated" = 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || true
        apt_updated=1
    fi
    say "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

ensure_postgres() {
    if answers 127.0.0.1 5432; then
        say "PostgreSQL answers on 127.0.0.1:5432"
        return 0
    fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        install_pkgs postgresql || return 0
    fi
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then
        say "no PostgreSQL cluster in /etc/postgresql; tests will start a private server"
        return 0
    fi
    say "starting PostgreSQL $version/main"
    if [ "$(id -u)" = 0 ]; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    else
        pg_ctlcluster "$version" main start || true
    fi
    if wait_for 5432 30; then
        say "PostgreSQL answers on 127.0.0.1:5432"
    else
        say "PostgreSQL did not come up on 127.0.0.1:5432; tests will start a private server"
    fi
}

ensure_redis() {
    if answers 127.0.0.1 6379; then
        say "Redis answers on 127.0.0.1:6379"
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        install_pkgs redis-server || return 0
    fi
    say "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        >/dev/null 2>&1 || true
    if wait_for 6379 10; then
        say "Redis answers on 127.0.0.1:6379"
    else
        say "Redis did not come up on 127.0.0.1:6379; tests will start a private server"
    fi
}

ensure_pgbouncer() { # only installed: the tests start their own (tests/_servers.py)
    if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
        say "pgbouncer is installed"
        return 0
    fi
    install_pkgs pgbouncer || {
        say "the PgBouncer tests will be skipped"
        return 0
    }
}

ensure_postgres || true
ensure_redis || true
ensure_pgbouncer || true
exit 0
