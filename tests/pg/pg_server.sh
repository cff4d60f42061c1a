#!/usr/bin/env bash
# A private PostgreSQL server for the tests (the postgres store backend): ctest's fixture `pg`
# runs `pg_server.sh start STATE` before the tests that need it and `pg_server.sh stop STATE`
# after them. STATE is a folder of the build tree; start writes there:
#   conninfo        a libpq connection string for the owner role kurer_owner (it owns the
#                   database kurer and may create schemas: the conformance suite makes one per case)
#   conninfo_relay  the same database as the role kurer_relay, which has only the grants
#                   docs/scale-out.md lists (the end-to-end test runs the relay with it)
#   data_dir        the server's temporary folder (data, socket, log), removed by stop
# The server listens on no TCP address, only on a Unix socket in its folder (with a private port
# number, picked free, in the socket's name). As root, initdb and the server run as the
# `postgres` user (PostgreSQL refuses root). PG_BIN overrides the binaries' folder.
set -euo pipefail
cmd=${1:?usage: pg_server.sh start|stop STATE}
state=${2:?usage: pg_server.sh start|stop STATE}
bin=${PG_BIN:-}
if [ -z "$bin" ]; then
    for v in 17 16 15; do
        [ -x /usr/lib/postgresql/$v/bin/initdb ] && { bin=/usr/lib/postgresql/$v/bin; break; }
    done
fi
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "pg_server: no PostgreSQL binaries (initdb)"; exit 1; }

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop() {
    [ -f "$state/data_dir" ] || return 0
    local dir
    dir=$(cat "$state/data_dir")
    if [ -d "$dir/data" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    rm -f "$state/data_dir" "$state/conninfo" "$state/conninfo_relay"
}

# A port no one listens on (the socket file's name carries it; TCP is off all the same).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "$cmd" in
stop)
    stop
    echo "pg_server: stopped"
    ;;
start)
    mkdir -p "$state"
    stop # a server left by an interrupted run
    dir=$(mktemp -d /tmp/kurer-pg.XXXXXX)
    echo "$dir" >"$state/data_dir"
    chmod 0755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    port=$(free_port)
    t0=$(date +%s%N)
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync --no-instructions \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
    # fsync stays on: commits are as durable as in production (the tests' speed allows it)
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses= -c max_connections=60" start >/dev/null ||
        { cat "$dir/server.log"; exit 1; }
    psql() { as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"; }
    psql -d postgres -c "CREATE ROLE kurer_owner LOGIN" -c "CREATE ROLE kurer_relay LOGIN" \
        -c "CREATE DATABASE kurer OWNER kurer_owner"
    echo "host=$dir port=$port user=kurer_owner dbname=kurer" >"$state/conninfo"
    echo "host=$dir port=$port user=kurer_relay dbname=kurer" >"$state/conninfo_relay"
    t1=$(date +%s%N)
    echo "pg_server: PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on $dir port $port" \
        "(started in $(((t1 - t0) / 1000000)) ms)"
    ;;
*)
    echo "usage: pg_server.sh start|stop STATE" >&2
    exit 2
    ;;
esac
