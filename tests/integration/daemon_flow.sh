#!/usr/bin/env bash
# daemon_<case>: `kurer daemon` with the real kurer, kurer-admin and kurer-relay on 127.0.0.1
# (port 0). Every wait is bounded; everything started is stopped by PID on exit.
#   rpc          tests/integration/daemon_rpc.py (Python's standard library only) drives two
#                daemons: a conversation, notifications, history, verify; malformed requests
#   same_output  send, history, recv, verify, whoami print the same and exit the same with and
#                without a daemon holding the home
#   recv_send    kurer recv --wait through the daemon while kurer send and history run beside it
#   socket       the socket's safety: 0600, a second daemon refused, a stale socket replaced,
#                a file or a link at the path refused, SIGTERM stops it, other commands refused
#   relay_down   with the relay gone, send and history the same with and without a daemon;
#                a send waiting for a relay that does not answer is answered when the daemon stops
#   relay_restart  the relay restarts during recv --wait through the daemon
#   same_day     outbox (list, retry, cancel), contacts, conversations, import and rekey print the
#                same and exit the same with and without a daemon; then a rekey and the import of
#                the new chain through the daemon, which connects with the new keys
#
# usage: daemon_flow.sh CASE KURER KURER_ADMIN KURER_RELAY PYTHON3 CLIENT_HELPER
set -uo pipefail
if [ -z "${DAEMON_FLOW_DETACHED:-}" ]; then
    export DAEMON_FLOW_DETACHED=1 # no terminal: a missing passphrase is refused, not prompted
    exec setsid -w "$0" "$@" </dev/null
fi
CASE=$1
K=$(realpath "$2")
A=$(realpath "$3")
R=$(realpath "$4")
PY=$5
H=$(realpath "$6")
SRC=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/kurer-daemon-test-XXXXXX)
RELAY_PID=
BG_PIDS=()
cleanup() {
    local st=$?
    if [ "$st" -ne 0 ] && [ -f "$W/relay.log" ]; then tail -20 "$W/relay.log"; fi
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ -n "$RELAY_PID" ]; then kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; fi
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1
export KURER_ADMIN_PASSPHRASE=admin-passphrase-1 KURER_ADMIN_ROOT_PASSPHRASE=root-passphrase-1
export KURER_PASSPHRASE=user-passphrase-1
mkdir -m 0700 run
export XDG_RUNTIME_DIR=$W/run
unset KURER_SOCKET
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
ok() { echo "ok   $*"; }

# expect NAME CODE SUBSTRING CMD...: exit code and a part of stdout+stderr
expect() {
    local name=$1 code=$2 sub=$3 out st
    shift 3
    out=$("$@" </dev/null 2>&1)
    st=$?
    if [ "$st" -ne "$code" ] || [[ "$out" != *"$sub"* ]]; then
        fail "$name: exit $st (want $code), output:"
        echo "$out" | sed 's/^/    /'
        echo "    (wanted it to contain: $sub)"
    else
        ok "$name"
    fi
}

wait_for() { # FILE SUBSTRING SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

setup() {
    KURER_ADMIN_PASSPHRASE=$KURER_ADMIN_ROOT_PASSPHRASE "$A" root init --dir root --name Rigsrod \
        --kdf-min >/dev/null || exit 1
    "$A" authority init --root root --dir fm --id fm.dk --name FM --clearance CONFIDENTIAL \
        --kdf-min >/dev/null || exit 1
    "$A" authority init --root root --dir sk --id sk.dk --name SK --clearance RESTRICTED \
        --kdf-min >/dev/null || exit 1
    "$R" init --dir relay >/dev/null || exit 1
    "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt --crl fm/crl --crl sk/crl \
        >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { echo "relay did not start"; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
    device anna anna@fm.dk fm CONFIDENTIAL
    device bob bob@sk.dk sk
}

device() { # HOME USER AUTHDIR [CLEARANCE]
    "$K" init --home "$1" --user "$2" --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key relay/relay.pub --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority "$3" --csr "$1/device.csr" --out "$1.chain" \
        ${4:+--clearance $4} >/dev/null || exit 1
    "$K" import --home "$1" "$1.chain" >/dev/null || exit 1
    "$K" recv --home "$1" >/dev/null || exit 1
}

# start_daemon HOME [ARGS...]: in the background, until its socket answers (DPID_<home>)
start_daemon() {
    local h=$1 i
    shift
    "$K" daemon --home "$h" "$@" >"$h.daemon.out" 2>"$h.daemon.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    eval "DPID_$h=$pid"
    wait_for "$h.daemon.err" "daemon for" 15 || {
        fail "daemon for $h did not start"
        cat "$h.daemon.err"
        return 1
    }
}

stop_daemon() { # HOME: SIGTERM, and its exit status in DST
    local pid
    eval "pid=\$DPID_$1"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    DST=$?
}

sock_of() { # HOME: the socket path the daemon said it serves on
    sed -n 's/^kurer: daemon for .* on \(.*\) (pid [0-9]*)$/\1/p' "$1.daemon.err"
}

# run_both NAME HOME CMD...: runs CMD (stdout, stderr, status) with no daemon, then with one
# on HOME, and compares. Text that names the time is kept: these run within one second is not
# assumed; callers pass commands whose output does not depend on the clock.
same() {
    local name=$1
    if [ "$(cat "$name.1.out")" == "$(cat "$name.2.out")" ] &&
        [ "$(cat "$name.1.err")" == "$(cat "$name.2.err")" ] &&
        [ "$(cat "$name.1.st")" == "$(cat "$name.2.st")" ]; then
        ok "$name: same output and exit status ($(cat "$name.1.st")) with and without a daemon"
    else
        fail "$name: differs with a daemon"
        for n in 1 2; do
            echo "    run $n: exit $(cat "$name.$n.st")"
            sed 's/^/    out: /' "$name.$n.out"
            sed 's/^/    err: /' "$name.$n.err"
        done
    fi
}

run() { # NAME N CMD...
    local name=$1 n=$2
    shift 2
    "$@" >"$name.$n.out" 2>"$name.$n.err" </dev/null
    echo $? >"$name.$n.st"
}

commands() { # N: the commands compared, run as round N
    run send_ok "$1" "$K" send --home anna --to bob@sk.dk "same text"
    run send_json "$1" "$K" send --home anna --to bob@sk.dk --json "same text"
    run send_self "$1" "$K" send --home anna --to anna@fm.dk "x"
    run send_level "$1" "$K" send --home anna --to bob@sk.dk --level CONFIDENTIAL "x"
    run send_level_json "$1" "$K" send --home anna --to bob@sk.dk --level CONFIDENTIAL --json "x"
    run send_unknown "$1" "$K" send --home anna --to nobody@fm.dk "x"
    run send_usage "$1" "$K" send --home anna --to Bob@SK.dk "x"
    run send_stdin "$1" sh -c "printf 'from stdin\n' | '$K' send --home anna --to bob@sk.dk -"
    run verify "$1" "$K" verify --home anna bob@sk.dk
    run verify_json "$1" "$K" verify --home anna --json bob@sk.dk
    run verify_none "$1" "$K" verify --home anna nobody@fm.dk --offline
    run whoami "$1" "$K" whoami --home anna
    run whoami_json "$1" "$K" whoami --home anna --json
    run backup "$1" "$K" backup --home anna --out "backup.$1"
    run backup_bad "$1" "$K" backup --home anna --out "nowhere/backup.$1"
}

case_same_output() {
    setup
    "$K" send --home bob --to anna@fm.dk "before" >/dev/null || fail "send before"
    # a peer's text with escapes and a byte that is not UTF-8 (a peer that ignores the rules,
    # played by client_helper): shown the same, escaped, through the daemon
    "$H" rogue-send anna bob@sk.dk 1 $'a\x1b[2Jb\xc2\x9bc\x9be\xe2\x80\xaef\nh' >/dev/null ||
        fail "rogue send"
    run recv_rogue 1 "$K" recv --home bob --json
    "$K" send --home anna --to bob@sk.dk "r1" >/dev/null || fail "send r1"
    run history_bob 1 "$K" history --home bob
    run history_bob_json 1 "$K" history --home bob --json
    # Anna's history without the receipts: bob's delivered receipt for r1 comes between the
    # rounds (when bob receives it), so the receipt counts of the same lines differ by time, not
    # by the daemon (the receipts themselves: client_receipts_*).
    local nr="sed -e 's/ (delivered to [^)]*)//' -e 's/,\"delivered_devices\":[0-9]*,\"read_devices\":[0-9]*,\"delivered_users\":[0-9]*,\"read_users\":[0-9]*//'"
    run history 1 sh -c "'$K' history --home anna | $nr"
    run history_json 1 sh -c "'$K' history --home anna --json | $nr"
    run history_with 1 sh -c "'$K' history --home anna --with bob@sk.dk | $nr"
    run recv 1 "$K" recv --home bob
    commands 1
    "$K" recv --home bob >/dev/null || fail "recv what round 1 sent"
    "$K" send --home anna --to bob@sk.dk "r1" >/dev/null || fail "send r1 again"
    # history as it was: the sends of round 1 are removed from the comparison by taking the
    # lines of round 1's history only (it grows by the same messages in both rounds)
    start_daemon anna || return
    start_daemon bob || return
    local n1
    n1=$(wc -l <history.1.out)
    run history 2 sh -c "'$K' history --home anna | $nr | head -n $n1"
    run history_json 2 sh -c "'$K' history --home anna --json | $nr | head -n $n1"
    run history_with 2 sh -c "'$K' history --home anna --with bob@sk.dk | $nr | head -n $n1"
    run recv 2 "$K" recv --home bob
    n1=$(wc -l <history_bob.1.out)
    run history_bob 2 sh -c "'$K' history --home bob | head -n $n1"
    run history_bob_json 2 sh -c "'$K' history --home bob --json | head -n $n1"
    commands 2
    # recv: the same line but for its time (one message each round, "r1")
    sed -i 's/^[0-9T:Z-]* //' recv.1.out recv.2.out
    grep -q 'a\\x1b\[2Jb\\u{009b}c\\x9be\\u{202e}f\\nh' history_bob.2.out &&
        ok "a peer's bytes escaped through the daemon" || fail "escapes: $(cat history_bob.2.out)"
    sed -i 's/backup\.[12]/backup.N/' backup.[12].out backup_bad.[12].err
    sed -i 's/"message_id":[0-9]*/"message_id":N/' send_json.[12].out
    for c in backup backup_bad history history_json history_with history_bob history_bob_json recv send_ok send_json send_self send_level \
        send_level_json send_unknown send_usage send_stdin verify verify_json verify_none \
        whoami whoami_json; do
        same "$c"
    done
    grep -q "r1" recv.2.out || fail "recv through the daemon printed no message"
    [ -s backup.2 ] && [ "$(stat -c %a backup.2)" = 600 ] && ok "the daemon wrote the backup (0600)" ||
        fail "no backup from the daemon"
    KURER_PASSPHRASE=user-passphrase-1 "$K" restore --home restored backup.2 >/dev/null &&
        ok "the daemon's backup restores" || fail "the daemon's backup does not restore"
    stop_daemon anna
    [ "$DST" -eq 0 ] && ok "SIGTERM: the daemon exits 0" || fail "daemon exit $DST"
    stop_daemon bob
}

day_commands() { # N
    run outbox "$1" "$K" outbox --home anna
    run outbox_json "$1" "$K" outbox --home anna --json
    run outbox_cancel_none "$1" "$K" outbox --home anna cancel 999999
    run outbox_retry_sent "$1" "$K" outbox --home anna retry 1
    run outbox_retry_json "$1" "$K" outbox --home anna retry 1 --json
    run outbox_bad_id "$1" "$K" outbox --home anna cancel x
    run contacts "$1" "$K" contacts --home anna
    run contacts_json "$1" "$K" contacts --home anna --json
    run conversations "$1" "$K" conversations --home anna
    run conversations_json "$1" "$K" conversations --home anna --json
    run conversations_empty "$1" "$K" conversations --home carl
    run import_peer "$1" "$K" import --home anna bob.chain
    run import_peer_json "$1" "$K" import --home anna --json bob.chain
    run import_crl "$1" "$K" import --home anna sk/crl
    run import_two "$1" "$K" import --home anna bob.chain nowhere.chain
    run import_request "$1" "$K" import --home anna anna.csr.asc
    run import_status "$1" "$K" import --home anna --invite-status
    run rekey_valid "$1" "$K" rekey --home anna
    run rekey_valid_json "$1" "$K" rekey --home anna --json
}

case_same_day() {
    setup
    device carl carl@fm.dk fm
    "$K" send --home anna --to bob@sk.dk "to bob" >/dev/null || fail "send"
    "$K" recv --home bob >/dev/null || fail "recv"
    "$K" send --home bob --to anna@fm.dk "to anna" >/dev/null || fail "send back"
    "$K" recv --home anna >/dev/null || fail "recv back"
    "$K" import --home anna sk/crl >/dev/null # held from now on: "not newer" both rounds
    # the request as armoured text (docs/protocol.md 2.6), made by Python, not by our code
    "$PY" - anna/device.csr anna.csr.asc <<'PY'
import base64, hashlib, sys
label, data = b"CERTIFICATE REQUEST", open(sys.argv[1], "rb").read()
s = base64.b64encode(hashlib.blake2b(b"kurer armor v1\0" + label + b"\0" + data,
                                     digest_size=32).digest()[:3]).decode()
b = base64.b64encode(data).decode()
body = "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
open(sys.argv[2], "w").write("-----BEGIN KURER CERTIFICATE REQUEST-----\n%s\n=%s\n"
                             "-----END KURER CERTIFICATE REQUEST-----\n" % (body, s))
PY
    day_commands 1
    start_daemon anna || return
    start_daemon carl || return
    day_commands 2
    for c in outbox outbox_json outbox_cancel_none outbox_retry_sent outbox_retry_json \
        outbox_bad_id contacts contacts_json conversations conversations_json conversations_empty \
        import_peer import_peer_json import_crl import_two import_request import_status \
        rekey_valid rekey_valid_json; do
        same "$c"
    done
    grep -q "bob@sk.dk  last contact" contacts.2.out && ok "contacts through the daemon list bob" ||
        fail "contacts: $(cat contacts.2.out contacts.2.err)"
    # A message composed with the relay gone: listed, retried and cancelled through the daemon
    kill -TERM "$RELAY_PID"
    wait "$RELAY_PID" 2>/dev/null
    expect "composed while the relay is down: queued" 3 "queued" \
        "$K" send --home anna --to bob@sk.dk --timeout 5 "held back"
    expect "the daemon's outbox lists it" 0 "pending" "$K" outbox --home anna
    local id
    id=$("$K" outbox --home anna --json | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    expect "retry through the daemon: still queued" 3 "message $id still queued" \
        "$K" outbox --home anna retry "$id" --timeout 3
    expect "cancel through the daemon" 0 "cancelled message $id to bob@sk.dk" \
        "$K" outbox --home anna cancel "$id"
    expect "the outbox is empty" 0 "the outbox is empty" "$K" outbox --home anna
    "$R" run --dir relay --listen "127.0.0.1:$PORT" --root root/root.crt --crl fm/crl \
        --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { fail "relay did not start again"; return; }
    # Re-enrolment through the daemon: rekey --force, issue --replace, import; it connects
    expect "rekey --force through the daemon" 0 "New keys for anna@fm.dk device 1" \
        "$K" rekey --home anna --force
    expect "sending now says why not" 1 "" "$K" send --home anna --to bob@sk.dk "too early"
    "$A" issue --authority fm --csr anna/device.csr --out anna.chain2 --replace >/dev/null ||
        fail "issue --replace"
    expect "import the new chain through the daemon" 0 "prekeys uploaded" \
        "$K" import --home anna anna.chain2
    expect "the daemon sends with the new keys" 0 "sent to bob@sk.dk" \
        "$K" send --home anna --to bob@sk.dk "with new keys"
    expect "bob is told of the key change and reads it" 0 "with new keys" "$K" recv --home bob
    stop_daemon anna
    [ "$DST" -eq 0 ] && ok "the daemon stops cleanly" || fail "exit $DST: $(tail anna.daemon.err)"
    stop_daemon carl
}

case_recv_send() {
    setup
    start_daemon bob || return
    "$K" recv --home bob --wait 25 >recv.out 2>recv.err &
    local rpid=$!
    BG_PIDS+=("$rpid")
    sleep 1
    expect "send while recv --wait runs" 0 "sent to anna@fm.dk" \
        "$K" send --home bob --to anna@fm.dk "while recv waits"
    expect "history while recv --wait runs" 0 "while recv waits" "$K" history --home bob
    expect "anna sends to bob" 0 "sent to bob@sk.dk" "$K" send --home anna --to bob@sk.dk "to the waiting recv"
    wait_for recv.out "to the waiting recv" 20 && ok "recv --wait through the daemon printed it" ||
        fail "recv --wait did not print the message: $(cat recv.out recv.err)"
    expect "verify while recv --wait runs" 0 "safety number" "$K" verify --home bob anna@fm.dk
    wait "$rpid"
    local st=$?
    [ "$st" -eq 0 ] && ok "recv --wait exits 0 when its wait ends connected" ||
        fail "recv --wait exit $st: $(cat recv.err)"
    local n
    n=$(grep -c "to the waiting recv" recv.out)
    [ "$n" -eq 1 ] && ok "printed once" || fail "printed $n times"
    # a second recv sees nothing new: the message was shown
    expect "recv after: nothing new" 0 "" "$K" recv --home bob
    [ -z "$("$K" recv --home bob 2>&1)" ] && ok "recv after prints nothing" || fail "recv printed again"
    # messages that came while nobody listened are given at the next recv
    "$K" send --home anna --to bob@sk.dk "while nobody listens" >/dev/null
    sleep 2
    expect "recv through the daemon gives what came meanwhile" 0 "while nobody listens" \
        "$K" recv --home bob
    stop_daemon bob
}

case_socket() {
    setup
    start_daemon anna || return
    local s
    s=$(sock_of anna)
    [ -S "$s" ] && [ "$(stat -c %a "$s")" = 600 ] && ok "socket $s is 0600" ||
        fail "socket mode $(stat -c %a "$s" 2>&1)"
    [[ "$s" == "$XDG_RUNTIME_DIR/kurer/"*.sock ]] && ok "socket in XDG_RUNTIME_DIR/kurer" ||
        fail "socket at $s"
    [ "$(stat -c %a "$XDG_RUNTIME_DIR/kurer")" = 700 ] && ok "its folder is 0700" || fail "folder"
    expect "a second daemon on the home is refused" 1 "held by \`kurer daemon\`" \
        "$K" daemon --home anna --socket "$W/other.sock"
    expect "import goes through the daemon" 0 "kept as a peer certificate" \
        "$K" import --home anna bob.chain
    expect "restore onto it is refused" 1 "" "$K" restore --home anna backup.none
    expect "passwd is refused" 1 "held by \`kurer daemon\`" "$K" passwd --home anna
    stop_daemon anna
    [ "$DST" -eq 0 ] && ok "SIGTERM: exit 0" || fail "exit $DST"
    [ ! -e "$s" ] && ok "socket removed at stop" || fail "socket left behind"
    # kill -9 leaves a stale socket: the next daemon replaces it
    start_daemon anna || return
    kill -9 "$DPID_anna"
    wait "$DPID_anna" 2>/dev/null
    [ -S "$s" ] && ok "stale socket after kill -9" || fail "no stale socket"
    start_daemon anna && ok "a stale socket is replaced"
    expect "and the new daemon answers" 0 "user             anna@fm.dk" "$K" whoami --home anna
    stop_daemon anna
    # a regular file, a link, a folder open to others: refused, left alone
    echo keep >"$W/file.sock"
    expect "a file at --socket is refused" 1 "not a socket of ours" \
        "$K" daemon --home anna --socket "$W/file.sock"
    [ "$(cat "$W/file.sock")" = keep ] && ok "the file is untouched" || fail "file changed"
    ln -s "$W/file.sock" "$W/link.sock"
    expect "a link at --socket is refused" 1 "not a socket of ours" \
        "$K" daemon --home anna --socket "$W/link.sock"
    mkdir -m 0777 "$W/open"
    expect "a folder open to others is refused" 1 "closed to others" \
        "$K" daemon --home anna --socket "$W/open/d.sock"
    # --socket elsewhere: clients find it with KURER_SOCKET
    start_daemon anna --socket "$W/custom.sock" || return
    KURER_SOCKET=$W/custom.sock expect "KURER_SOCKET finds a --socket daemon" 0 "anna@fm.dk" \
        "$K" whoami --home anna
    expect "without it, a clear refusal" 1 "KURER_SOCKET" "$K" whoami --home anna
    stop_daemon anna
    # no XDG_RUNTIME_DIR: the home's daemon.sock
    XDG_RUNTIME_DIR= start_daemon anna || return
    [ "$(sock_of anna)" = "anna/daemon.sock" ] && ok "H/daemon.sock without XDG_RUNTIME_DIR" ||
        fail "socket at $(sock_of anna)"
    XDG_RUNTIME_DIR= expect "found there" 0 "anna@fm.dk" "$K" whoami --home anna
    stop_daemon anna
}

# The relay gone: send says the same with and without a daemon (not sent: the recipient's
# devices cannot be looked up; or queued when they are known), and history shows it the same.
case_relay_down() {
    setup
    kill -TERM "$RELAY_PID"
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=
    run down_send 1 "$K" send --home anna --to bob@sk.dk --timeout 5 "while the relay is down"
    run down_history 1 "$K" history --home anna
    run down_recv 1 "$K" recv --home anna
    run down_recv_wait 1 "$K" recv --home anna --wait 2
    start_daemon anna || return
    sleep 1
    run down_recv 2 "$K" recv --home anna
    run down_recv_wait 2 "$K" recv --home anna --wait 2
    run down_send 2 "$K" send --home anna --to bob@sk.dk --timeout 5 "while the relay is down"
    n1=$(wc -l <down_history.1.out)
    run down_history 2 sh -c "'$K' history --home anna | head -n $n1"
    same down_send
    same down_history
    same down_recv
    same down_recv_wait
    stop_daemon anna
    # A send waiting for a relay that does not answer (stopped: TCP connects, nothing more)
    # when the daemon is stopped: it is answered before the daemon goes, never left guessing.
    "$R" run --dir relay --listen "127.0.0.1:$PORT" --root root/root.crt --crl fm/crl \
        --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { fail "relay did not start again"; return; }
    start_daemon anna || return
    sleep 1
    kill -STOP "$RELAY_PID"
    "$K" send --home anna --to bob@sk.dk --timeout 20 "stopped meanwhile" >stop.out 2>stop.err &
    local spid=$!
    sleep 2
    stop_daemon anna
    kill -CONT "$RELAY_PID"
    [ "$DST" -eq 0 ] && ok "SIGTERM with a send waiting: exit 0" || fail "daemon exit $DST"
    wait "$spid"
    local st=$?
    if { [ "$st" -eq 3 ] && grep -q "queued, not yet accepted" stop.err; } ||
        { [ "$st" -eq 1 ] && grep -q "not sent" stop.err; }; then
        ok "the waiting send was answered before the daemon stopped (exit $st)"
    else
        fail "the waiting send: exit $st: $(cat stop.out stop.err)"
    fi
}

# The relay restarts while recv --wait runs through the daemon: it says so once, the daemon
# reconnects by itself, a message sent after the restart is printed, and recv exits 0.
case_relay_restart() {
    setup
    start_daemon bob || return
    "$K" recv --home bob --wait 30 >recv.out 2>recv.err &
    local rpid=$!
    BG_PIDS+=("$rpid")
    sleep 1
    kill -TERM "$RELAY_PID"
    wait "$RELAY_PID" 2>/dev/null
    wait_for recv.err "reconnecting until the wait ends" 10 && ok "recv says the relay went" ||
        fail "recv did not say the relay went: $(cat recv.err)"
    "$R" run --dir relay --listen "127.0.0.1:$PORT" --root root/root.crt --crl fm/crl \
        --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { fail "relay did not start again"; return; }
    local i
    for ((i = 0; i < 100; i++)); do
        "$K" send --home anna --to bob@sk.dk "after the restart" >/dev/null 2>&1 && break
        sleep 0.2
    done
    wait_for recv.out "after the restart" 20 && ok "a message after the restart is printed" ||
        fail "recv did not print it: $(cat recv.out recv.err)"
    wait "$rpid"
    local st=$?
    [ "$st" -eq 0 ] && ok "recv --wait exits 0: connected when its wait ended" ||
        fail "recv --wait exit $st: $(cat recv.err)"
    [ "$(grep -c reconnecting recv.err)" -eq 1 ] && ok "said once" || fail "$(cat recv.err)"
    stop_daemon bob
}

case_rpc() {
    setup
    start_daemon anna || return
    start_daemon bob || return
    "$PY" "$SRC/daemon_rpc.py" "$(sock_of anna)" "$(sock_of bob)"
    [ $? -eq 0 ] && ok "daemon_rpc.py" || fail "daemon_rpc.py"
    kill -0 "$DPID_anna" 2>/dev/null && ok "anna's daemon still runs" || fail "anna's daemon died"
    stop_daemon anna
    [ "$DST" -eq 0 ] && ok "anna's daemon stops cleanly" || fail "exit $DST: $(tail anna.daemon.err)"
    stop_daemon bob
}

"case_$CASE"
[ "$failed" -eq 0 ] || { echo "$failed failed"; exit 1; }
