#!/usr/bin/env bash
# relay_cluster_group_<case> (issue 13, item 4, with issue 11's groups): two real kurer-relay
# nodes with `store = postgres` over a primary and a synchronous standby that the test starts
# (tests/pg/pg_cluster.sh), the real kurer (a `kurer daemon` per device, so each device stays
# connected to its node) and kurer-admin, and tests/integration/tcp_balancer.py in front of the
# nodes as a TCP balancer would be: frontend `a` goes to node A while it accepts, else to node B;
# frontend `b` the other way round. anna (device 1 on a, device 2 on b), bob (b) and carl (a)
# are the group. Every wait is bounded; everything started is stopped on exit.
#   exchange   every device sends group texts at once, every other member device gets each
#              once; a file to the group (the blob in PostgreSQL) saved through both nodes;
#              carl removed, then gets none of the later messages
#   kill_node  kill -9 of node A while anna (on A) and bob (on B) send group texts: anna's and
#              carl's daemons reconnect through the balancer to node B; every accepted message
#              reaches every other member device once
# Both print: sent, accepted, delivered (member devices reached), lost (an accepted message a
# member device never got), duplicated (shown twice on a device); lost and duplicated must be 0.
#
# usage: cluster_group.sh CASE KURER KURER_ADMIN KURER_RELAY CLIENT_HELPER PG_CLUSTER_SH
set -uo pipefail
if [ -z "${CLIENT_FLOW_DETACHED:-}" ]; then
    export CLIENT_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
CLIENT_FLOW_LIB=1
BAL="$(dirname "$(realpath "$0")")/tcp_balancer.py" # before client_flow.sh changes folder
PGC=$(realpath "${6:?usage: cluster_group.sh CASE K A R H PG_CLUSTER_SH}")
# shellcheck source=client_flow.sh
source "$(dirname "$(realpath "$0")")/client_flow.sh" "$@"
PG=$(mktemp -d /tmp/kurer-pgc-XXXXXX)
chmod 0755 "$PG"
mkdir -m 0700 run
export XDG_RUNTIME_DIR=$W/run
unset KURER_SOCKET
T0=$(date +%s%N)

cluster_cleanup() {
    local st=$?
    if [ "$st" -ne 0 ] || [ "$failed" -ne 0 ]; then
        for n in A B; do
            [ -f "node$n.log" ] && { echo "node $n log:"; tail -15 "node$n.log"; }
        done
        [ -f balancer.log ] && { echo "balancer:"; sort balancer.log | uniq -c; }
    fi
    local p
    for p in "${BG_PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null; done
    BG_PIDS=()
    "$PGC" stop "$PG" >/dev/null 2>&1
    rm -rf "$PG"
    (exit "$st")
    cleanup
}
trap cluster_cleanup EXIT

# start_node NAME DIR: a node on port 0 over the cluster; its port in NODE_<NAME>
start_node() {
    printf 'store = postgres\npg_conninfo = %s\nwake_poll_ms = 5000\n' "$(cat "$PG/conninfo")" \
        >"node$1.conf"
    : >"node$1.out"
    "$R" run --dir "$2" --listen 127.0.0.1:0 --root root/root.crt --crl fm/crl --crl sk/crl \
        --config "node$1.conf" >"node$1.out" 2>>"node$1.log" &
    eval "PID_$1=$!"
    BG_PIDS+=("$!")
    wait_for "node$1.out" "listening" 30 || { echo "node $1 did not start"; cat "node$1.log"; exit 1; }
    eval "NODE_$1=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' "node$1.out")"
}

daemon_start() { # HOME
    "$K" daemon --home "$1" >"$1.daemon.out" 2>"$1.daemon.err" &
    BG_PIDS+=("$!")
    eval "DPID_$1=$!"
    wait_for "$1.daemon.err" "daemon for" 15 || { echo "no daemon for $1"; cat "$1.daemon.err"; exit 1; }
}

daemon_stop() { # HOME
    local p
    p=$(eval echo "\$DPID_$1")
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

# The cluster, two nodes, the balancer, the four devices and the group (id in $ID).
cluster_setup() {
    pki
    "$PGC" start "$PG" >pg.log 2>&1 || { cat pg.log; exit 1; }
    mkdir -p nodeB
    cp -p relay/relay.key relay/store.key relay/relay.pub nodeB/
    start_node A relay
    start_node B nodeB
    "$BAL" bal.ports balancer.log "a=127.0.0.1:$NODE_A,127.0.0.1:$NODE_B" \
        "b=127.0.0.1:$NODE_B,127.0.0.1:$NODE_A" &
    BG_PIDS+=("$!")
    wait_for bal.ports "b " 10 || { echo "no balancer"; exit 1; }
    FRONT_a=$(sed -n 's/^a //p' bal.ports)
    FRONT_b=$(sed -n 's/^b //p' bal.ports)
    PORT=$FRONT_a device anna anna@fm.dk 1 fm CONFIDENTIAL
    PORT=$FRONT_b device anna2 anna@fm.dk 2 fm CONFIDENTIAL
    PORT=$FRONT_b device bob bob@sk.dk 1 sk
    PORT=$FRONT_a device carl carl@fm.dk 1 fm CONFIDENTIAL
    grep -q "^a -> 127.0.0.1:$NODE_A$" balancer.log && grep -q "^b -> 127.0.0.1:$NODE_B$" \
        balancer.log && ok "devices on both nodes" || fail "devices not on both nodes"
    expect "create" 0 "created group krisestab" "$K" group --home anna create krisestab \
        bob@sk.dk carl@fm.dk
    ID=$(printf '%s\n' "$out" | sed -n 's/^created group .* \([0-9a-f]\{64\}\)$/\1/p')
    [ -n "$ID" ] || { echo "no group id in: $out"; exit 1; }
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    : >sent.txt
    echo "relay_cluster_group: the servers, both nodes, four devices and the group set up in" \
        "$((($(date +%s%N) - T0) / 1000000)) ms"
}

# sendg HOME TEXT: a group text; "HOME TEXT accepted|failed" appended to sent.txt
sendg() {
    local o
    if o=$("$K" send --home "$1" --group "$ID" "$2" </dev/null 2>&1) &&
        [[ "$o" == *"sent to group $ID"* ]]; then
        echo "$1 $2 accepted" >>sent.txt
    else
        echo "$1 $2 failed" >>sent.txt
        printf '%s\n' "$o" | sed "s/^/    $1: /" >>send_errors.txt
    fi
}

# recv_all HOME...: every home's recv (through its daemon when one runs), appended to rx-HOME
recv_all() {
    local h
    for h in "$@"; do "$K" recv --home "$h" </dev/null >>"rx-$h" 2>&1; done
}

# tally NAME MEMBERS...: for every line of sent.txt, each member home but the sender's must have
# shown an accepted text once (a text not accepted at most once); prints the counts
tally() {
    local name=$1 h sender text state n sent=0 acc=0 del=0 lost=0 dup=0 notacc=0
    shift
    while read -r sender text state; do
        sent=$((sent + 1))
        [ "$state" = accepted ] && acc=$((acc + 1)) || notacc=$((notacc + 1))
        for h in "$@"; do
            [ "$h" = "$sender" ] && continue
            n=$(grep -c -E -- "in group ${ID:0:16} \\[UNCLASSIFIED\\] $text( \\(delivered [^)]*\\))?$" "rx-$h" 2>/dev/null)
            [ "$n" -ge 1 ] && del=$((del + 1))
            [ "$n" -gt 1 ] && dup=$((dup + n - 1))
            if [ "$n" -eq 0 ] && [ "$state" = accepted ]; then
                lost=$((lost + 1))
                echo "    lost: '$text' from $sender never shown on $h"
            fi
        done
    done <sent.txt
    echo "relay_cluster_group $name: sent $sent, accepted $acc, delivered $del, lost $lost," \
        "duplicated $dup (not accepted $notacc)"
    [ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] && [ "$acc" -gt 0 ] && ok "$name: nothing lost or twice" ||
        fail "$name: lost $lost, duplicated $dup, accepted $acc"
}

# wait_shown SECONDS MEMBERS...: recv on every member until every accepted text of sent.txt is
# shown on each member device but its sender (bounded)
wait_shown() {
    local end=$(($(date +%s) + $1)) h sender text state missing
    shift
    while :; do
        recv_all "$@"
        missing=0
        while read -r sender text state; do
            [ "$state" = accepted ] || continue
            for h in "$@"; do
                [ "$h" = "$sender" ] && continue
                grep -q -E -- "in group ${ID:0:16} \\[UNCLASSIFIED\\] $text( \\(delivered [^)]*\\))?$" "rx-$h" 2>/dev/null ||
                    missing=$((missing + 1))
            done
        done <sent.txt
        [ "$missing" -eq 0 ] && return 0
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.3
    done
}

case $CASE in
exchange)
    cluster_setup
    for h in anna anna2 bob carl; do daemon_start "$h"; done
    # Every device sends 3 texts, the four devices at once; each through its own node.
    for h in anna anna2 bob carl; do
        (for i in 1 2 3; do sendg "$h" "gm-$h-$i"; done) &
        SENDERS+=("$!")
    done
    for p in "${SENDERS[@]}"; do wait "$p"; done
    wait_shown 30 anna anna2 bob carl || fail "not every message shown in 30 s"
    # recv once more: nothing new arrives twice
    recv_all anna anna2 bob carl
    tally exchange anna anna2 bob carl
    # A file to the group from bob (node B): one blob in PostgreSQL, saved through node A (anna,
    # carl) and node B (anna2). recv --save-dir needs the home without its daemon.
    for h in anna anna2 bob carl; do daemon_stop "$h"; done
    head -c 300000 /dev/urandom >bilag.bin
    expect "a file to the group" 0 "sent to group $ID [UNCLASSIFIED] with 1 file" \
        env KURER_LOG_LEVEL=info "$K" send --home bob --group "$ID" --file bilag.bin "bilag"
    count "uploaded once" 1 "attachment_uploaded" "$out"
    for h in anna anna2 carl; do
        mkdir -p "files-$h"
        expect "$h saves it" 0 "attachment: bilag.bin (300000 bytes) saved" \
            "$K" recv --home "$h" --save-dir "files-$h"
        printf '%s\n' "$out" >>"rx-$h"
        cmp -s bilag.bin "files-$h/bilag.bin" && ok "$h has the same bytes" ||
            fail "$h: the saved file differs"
        count "$h: the file's message once" 1 "in group ${ID:0:16} \[UNCLASSIFIED\] bilag" \
            "$(cat "rx-$h")"
    done
    # carl removed (anna on node A): the later messages reach anna2 and bob, not carl.
    expect "remove carl" 0 "remove: done" "$K" group --home anna remove "$ID" carl@fm.dk
    recv_all anna2 bob carl
    : >sent.txt
    for i in 1 2; do sendg anna "after-anna-$i"; sendg bob "after-bob-$i"; done
    wait_shown 20 anna anna2 bob || fail "not every later message shown in 20 s"
    recv_all anna anna2 bob carl
    tally after_removal anna anna2 bob
    count "carl got none of the later messages" 0 "after-" "$(cat rx-carl)"
    expect "carl is out" 1 "not a member" "$K" send --home carl --group "$ID" "hallo?"
    ;;
kill_node)
    cluster_setup
    for h in anna anna2 bob carl; do daemon_start "$h"; done
    (for i in $(seq 1 15); do
        [ "$i" = 6 ] && echo go >kill.now
        sendg anna "k-anna-$i"
    done) &
    SENDERS+=("$!")
    (for i in $(seq 1 15); do sendg bob "k-bob-$i"; done) &
    SENDERS+=("$!")
    wait_for kill.now go 30 || fail "anna's first sends took over 30 s"
    { kill -9 "$PID_A" && wait "$PID_A"; } 2>/dev/null
    T_KILL=$(date +%s%N)
    echo "node A (pid $PID_A) killed"
    for p in "${SENDERS[@]}"; do wait "$p"; done
    T_SENT=$(date +%s%N)
    wait_shown 40 anna anna2 bob carl || fail "not every accepted message shown in 40 s"
    T_ALL=$(date +%s%N)
    recv_all anna anna2 bob carl
    echo "after the kill: the senders done in $(((T_SENT - T_KILL) / 1000000)) ms, every" \
        "accepted message shown in $(((T_ALL - T_KILL) / 1000000)) ms"
    grep -q "^a -> 127.0.0.1:$NODE_B$" balancer.log && ok "node A's devices reconnected to node B" ||
        fail "no connection of frontend a reached node B"
    tally kill_node anna anna2 bob carl
    [ -s send_errors.txt ] && { echo "sends not accepted:"; cat send_errors.txt; }
    ;;
*)
    echo "unknown case $CASE"
    exit 2
    ;;
esac
echo "relay_cluster_group $CASE: $((($(date +%s%N) - T0) / 1000000)) ms in all"
[ "$failed" -eq 0 ] || exit 1
