#!/usr/bin/env bash
# Patroni on one machine, for the relay's Patroni test (ctest relay_cluster_patroni: the case
# kill_primary of tests/integration/relay_cluster_test.c with this script in place of
# tests/pg/pg_cluster.sh, whose commands it has): one etcd, two PostgreSQL instances managed by
# Patroni with synchronous_mode on (the standby is synchronous before anything is written), in a
# folder of the test's own.
#   patroni_cluster.sh start DIR          etcd and two Patroni nodes (pg1, pg2); waits for a
#                                         leader and a synchronous standby; writes DIR/conninfo:
#                                         both hosts, target_session_attrs=read-write
#   patroni_cluster.sh kill-primary DIR   kill -9 of the leader's Patroni and of its postmaster
#                                         and backends at once, as a lost host; DIR/killed names it
#   patroni_cluster.sh promote DIR        promotes nothing (Patroni does): waits (60 s at most)
#                                         until Patroni promoted the other node, which answers
#                                         as primary; prints how long after the kill
#   patroni_cluster.sh sql DIR SQL        SQL on the current leader, database kurer, as postgres
#   patroni_cluster.sh stop DIR           stops everything started in DIR
# Ports are free ones on 127.0.0.1; as root the servers run as `postgres`. PG_BIN overrides the
# PostgreSQL binaries' folder. Patroni's timings are short on purpose (ttl 6 s, loop_wait 1 s,
# retry_timeout 2 s): production uses the defaults (docs/scale-out.md).
set -euo pipefail
cmd=${1:?usage: patroni_cluster.sh start|kill-primary|promote|sql|stop DIR}
dir=${2:?usage: patroni_cluster.sh COMMAND DIR}
bin=${PG_BIN:-}
if [ -z "$bin" ]; then
    for v in 17 16 15; do
        [ -x /usr/lib/postgresql/$v/bin/initdb ] && { bin=/usr/lib/postgresql/$v/bin; break; }
    done
fi
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "patroni_cluster: no PostgreSQL binaries"; exit 1; }
command -v patroni >/dev/null && command -v etcd >/dev/null ||
    { echo "patroni_cluster: patroni or etcd missing (apt-get install patroni etcd-server)"; exit 1; }

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# as_pg_exec CMD...: as as_pg, but the command replaces this process (its PID is $! of a job)
as_pg_exec() {
    if [ "$(id -u)" -eq 0 ]; then
        exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        exec "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ms() { echo $(($(date +%s%N) / 1000000)); }

# role NAME: what the node's PostgreSQL says it is (primary, standby, or down)
role() {
    local r
    r=$(as_pg "$bin/psql" -X -q -t -A -h 127.0.0.1 -p "$(cat "$dir/$1/pgport")" -U postgres \
        -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null) || { echo down; return; }
    [ "$r" = f ] && echo primary || echo standby
}

leader() {
    local n
    for n in pg1 pg2; do
        [ "$(role "$n")" = primary ] && { echo "$n"; return 0; }
    done
    return 1
}

psql_on() { # NAME DB SQL
    as_pg "$bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$dir/$1/pgport")" \
        -U postgres -d "$2" -c "$3"
}

node_conf() { # NAME
    local n=$1
    cat >"$dir/$n/patroni.yml" <<EOF
scope: kurer-test
name: $n
log:
  level: WARNING
  dir: $dir/$n
restapi:
  listen: 127.0.0.1:$(cat "$dir/$n/apiport")
  connect_address: 127.0.0.1:$(cat "$dir/$n/apiport")
etcd3:
  host: 127.0.0.1:$(cat "$dir/etcd/port")
bootstrap:
  dcs:
    ttl: 6
    loop_wait: 1
    retry_timeout: 2
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters:
        synchronous_commit: "on"
        wal_level: replica
        max_wal_senders: 6
        max_replication_slots: 6
        wal_keep_size: 64MB
        max_connections: 40
  initdb:
    - encoding: UTF8
    - auth: trust
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$(cat "$dir/$n/pgport")
  connect_address: 127.0.0.1:$(cat "$dir/$n/pgport")
  data_dir: $dir/$n/data
  bin_dir: $bin
  pgpass: $dir/$n/pgpass
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  parameters:
    unix_socket_directories: $dir/$n
tags:
  nofailover: false
EOF
}

start() {
    mkdir -p "$dir/etcd" "$dir/pg1" "$dir/pg2"
    chmod 0755 "$dir"
    chmod 0700 "$dir/etcd" "$dir/pg1" "$dir/pg2"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/etcd" "$dir/pg1" "$dir/pg2"
    local t0 n i
    t0=$(ms)
    free_port >"$dir/etcd/port"
    free_port >"$dir/etcd/peer"
    for n in pg1 pg2; do
        free_port >"$dir/$n/pgport"
        free_port >"$dir/$n/apiport"
    done
    local ep pp
    ep=$(cat "$dir/etcd/port")
    pp=$(cat "$dir/etcd/peer")
    as_pg_exec etcd --name e1 --data-dir "$dir/etcd/data" \
        --listen-client-urls "http://127.0.0.1:$ep" --advertise-client-urls "http://127.0.0.1:$ep" \
        --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --initial-cluster "e1=http://127.0.0.1:$pp" --log-level warn \
        >"$dir/etcd/etcd.log" 2>&1 </dev/null &
    echo $! >"$dir/etcd/pid"
    for i in $(seq 1 100); do
        python3 -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)' \
            "http://127.0.0.1:$ep/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    [ "$i" -lt 100 ] || { cat "$dir/etcd/etcd.log"; echo "patroni_cluster: etcd did not start"; exit 1; }
    for n in pg1 pg2; do
        node_conf "$n"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/$n/patroni.yml"
    done
    # pg1 first, so that it bootstraps; pg2 then makes itself its replica
    as_pg_exec patroni "$dir/pg1/patroni.yml" >"$dir/pg1/patroni.out" 2>&1 </dev/null &
    echo $! >"$dir/pg1/patroni.pid"
    for i in $(seq 1 300); do
        [ "$(role pg1)" = primary ] && break
        sleep 0.1
    done
    [ "$i" -lt 300 ] || { tail -30 "$dir/pg1/patroni.out"; echo "patroni_cluster: no leader"; exit 1; }
    as_pg_exec patroni "$dir/pg2/patroni.yml" >"$dir/pg2/patroni.out" 2>&1 </dev/null &
    echo $! >"$dir/pg2/patroni.pid"
    # the synchronous standby streams before anything is written
    for i in $(seq 1 600); do
        [ "$(psql_on pg1 postgres "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'" 2>/dev/null)" = 1 ] && break
        sleep 0.1
    done
    [ "$i" -lt 600 ] || { tail -30 "$dir/pg2/patroni.out"; echo "patroni_cluster: no synchronous standby"; exit 1; }
    psql_on pg1 postgres "CREATE ROLE kurer_owner LOGIN" >/dev/null
    psql_on pg1 postgres "CREATE DATABASE kurer OWNER kurer_owner" >/dev/null
    echo "host=127.0.0.1,127.0.0.1 port=$(cat "$dir/pg1/pgport"),$(cat "$dir/pg2/pgport") user=kurer_owner dbname=kurer target_session_attrs=read-write connect_timeout=2" >"$dir/conninfo"
    echo "patroni_cluster: etcd $ep, pg1 $(cat "$dir/pg1/pgport") (leader), pg2 $(cat "$dir/pg2/pgport") (synchronous standby) in $(($(ms) - t0)) ms"
}

kill_primary() {
    local n pid kids
    n=$(leader) || { echo "patroni_cluster: no leader to kill"; exit 1; }
    pid=$(head -1 "$dir/$n/data/postmaster.pid")
    kids=$(ps -o pid= --ppid "$pid" || true)
    kill -9 "$(cat "$dir/$n/patroni.pid")" "$pid" $kids 2>/dev/null || true
    echo "$n $(ms)" >"$dir/killed"
    echo "patroni_cluster: $n (Patroni and postmaster $pid) killed"
}

wait_promoted() {
    local killed at other i
    read -r killed at <"$dir/killed"
    [ "$killed" = pg1 ] && other=pg2 || other=pg1
    for i in $(seq 1 600); do
        [ "$(role "$other")" = primary ] && break
        sleep 0.1
    done
    [ "$i" -lt 600 ] || { tail -30 "$dir/$other/patroni.out"; echo "patroni_cluster: $other not promoted"; exit 1; }
    echo "patroni_cluster: $other promoted by Patroni $(($(ms) - at)) ms after the kill"
}

stop() {
    local n f
    for n in pg1 pg2; do
        f=$dir/$n/patroni.pid
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    for n in pg1 pg2; do
        [ -f "$dir/$n/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/$n/data" -m immediate \
            -w stop >/dev/null 2>&1 || true
    done
    f=$dir/etcd/pid
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    rm -rf "$dir/etcd" "$dir/pg1" "$dir/pg2"
}

case "$cmd" in
start) start ;;
kill-primary) kill_primary ;;
promote) wait_promoted ;;
sql) psql_on "$(leader)" kurer "${3:?sql}" ;;
stop) stop ;;
*)
    echo "usage: patroni_cluster.sh start|kill-primary|promote|sql|stop DIR" >&2
    exit 2
    ;;
esac
