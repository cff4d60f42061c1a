#!/usr/bin/env bash
# A private PostgreSQL primary with one synchronous standby, for the relay's failover tests
# (tests/integration/relay_cluster_test.c): each test makes its own in a folder of its own.
#   pg_cluster.sh start DIR          initdb the primary (synchronous_standby_names = 'ANY 1
#                                    (standby1)', synchronous_commit = on), a standby made with
#                                    pg_basebackup -R that streams as standby1; writes
#                                    DIR/conninfo: both hosts, target_session_attrs=read-write
#   pg_cluster.sh kill-primary DIR   kill -9 of the primary's postmaster and every backend of it
#   pg_cluster.sh promote DIR        pg_ctl promote of the standby; then, as Patroni does without
#                                    synchronous_mode_strict when no standby is left, commits on
#                                    the new primary stop waiting for one
#   pg_cluster.sh stop-standby DIR / start-standby DIR
#   pg_cluster.sh sql DIR SQL        runs SQL on the primary (the first host) as postgres
#   pg_cluster.sh stop DIR           stops both (immediate) and removes DIR's servers
# Unix sockets only (in DIR/p and DIR/s), private port numbers, fsync on. As root the servers
# run as `postgres` (PostgreSQL refuses root). PG_BIN overrides the binaries' folder.
set -euo pipefail
cmd=${1:?usage: pg_cluster.sh start|kill-primary|promote|stop-standby|start-standby|sql|stop DIR}
dir=${2:?usage: pg_cluster.sh COMMAND DIR}
bin=${PG_BIN:-}
if [ -z "$bin" ]; then
    for v in 17 16 15; do
        [ -x /usr/lib/postgresql/$v/bin/initdb ] && { bin=/usr/lib/postgresql/$v/bin; break; }
    done
fi
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "pg_cluster: no PostgreSQL binaries (initdb)"; exit 1; }

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ctl_start() { # NAME PORT
    as_pg "$bin/pg_ctl" -D "$dir/$1/data" -l "$dir/$1/server.log" -w -t 60 \
        -o "-p $2 -k $dir/$1 -c listen_addresses= -c max_connections=40" start >/dev/null ||
        { cat "$dir/$1/server.log"; exit 1; }
}

psql_at() { # NAME PORT SQL...
    local name=$1 port=$2
    shift 2
    as_pg "$bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$dir/$name" -p "$port" -U postgres "$@"
}

start() {
    mkdir -p "$dir/p" "$dir/s"
    chmod 0755 "$dir" "$dir/p" "$dir/s"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/p" "$dir/s"
    local pp sp t0 t1
    pp=$(free_port)
    sp=$(free_port)
    echo "$pp" >"$dir/p/port"
    echo "$sp" >"$dir/s/port"
    t0=$(date +%s%N)
    as_pg "$bin/initdb" -D "$dir/p/data" -U postgres -A trust -E UTF8 --no-sync \
        --no-instructions >"$dir/p/initdb.log" 2>&1 || { cat "$dir/p/initdb.log"; exit 1; }
    cat >>"$dir/p/data/postgresql.conf" <<EOF
synchronous_commit = on
wal_level = replica
max_wal_senders = 4
wal_keep_size = 64MB
autovacuum_naptime = 2s
EOF
    ctl_start p "$pp"
    psql_at p "$pp" -d postgres -c "CREATE ROLE kurer_owner LOGIN" \
        -c "CREATE DATABASE kurer OWNER kurer_owner"
    as_pg "$bin/pg_basebackup" -h "$dir/p" -p "$pp" -U postgres -D "$dir/s/data" -R -X stream -c fast \
        >"$dir/s/basebackup.log" 2>&1 || { cat "$dir/s/basebackup.log"; exit 1; }
    # the standby names itself standby1, which the primary waits for
    cat >>"$dir/s/data/postgresql.auto.conf" <<EOF
primary_conninfo = 'host=$dir/p port=$pp user=postgres application_name=standby1'
EOF
    ctl_start s "$sp"
    # only now: the commits above would have waited for a standby that did not exist yet
    psql_at p "$pp" -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (standby1)'" \
        -c "SELECT pg_reload_conf()" >/dev/null
    # the standby streams and is synchronous before anything is written
    local i
    for i in $(seq 1 100); do
        [ "$(psql_at p "$pp" -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')")" = 1 ] && break
        sleep 0.1
    done
    [ "$i" -lt 100 ] || { echo "pg_cluster: the standby does not stream"; exit 1; }
    echo "host=$dir/p,$dir/s port=$pp,$sp user=kurer_owner dbname=kurer target_session_attrs=read-write connect_timeout=2" >"$dir/conninfo"
    t1=$(date +%s%N)
    echo "pg_cluster: primary port $pp, synchronous standby port $sp in $dir (started in $(((t1 - t0) / 1000000)) ms)"
}

case "$cmd" in
start) start ;;
kill-primary)
    pid=$(head -1 "$dir/p/data/postmaster.pid")
    # the postmaster and its children at once, as a crashed host would lose them
    kids=$(ps -o pid= --ppid "$pid" || true)
    kill -9 "$pid" $kids 2>/dev/null || true
    echo "pg_cluster: primary (postmaster $pid) killed"
    ;;
promote)
    as_pg "$bin/pg_ctl" -D "$dir/s/data" -w -t 60 promote >/dev/null
    psql_at s "$(cat "$dir/s/port")" -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = ''" \
        -c "SELECT pg_reload_conf()" >/dev/null
    echo "pg_cluster: standby promoted"
    ;;
stop-standby)
    as_pg "$bin/pg_ctl" -D "$dir/s/data" -m fast -w stop >/dev/null
    echo "pg_cluster: standby stopped"
    ;;
start-standby)
    ctl_start s "$(cat "$dir/s/port")"
    echo "pg_cluster: standby started"
    ;;
sql)
    psql_at p "$(cat "$dir/p/port")" -d kurer -c "${3:?sql}"
    ;;
stop)
    for n in p s; do
        [ -d "$dir/$n/data" ] && as_pg "$bin/pg_ctl" -D "$dir/$n/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    done
    rm -rf "$dir/p" "$dir/s"
    ;;
*)
    echo "usage: pg_cluster.sh start|kill-primary|promote|stop-standby|start-standby|sql|stop DIR" >&2
    exit 2
    ;;
esac
