#!/usr/bin/env bash
# daemon_day (issue 16, "Done when"): a day's work through the daemon from a second terminal,
# as a new user would do it, with the real kurer, kurer-admin and kurer-relay on 127.0.0.1
# (port 0) and a daemon for each home:
#   - alice's `kurer recv --wait` (a second terminal) listens while she sends, reads the
#     history and lists her conversations: read and write at once;
#   - bob's device is re-enrolled in the middle (new keys through his daemon: kurer rekey,
#     kurer-admin issue --replace, kurer import): alice keeps writing to it, is told once
#     of the key change, and bob reads what she wrote;
#   - the relay is stopped: alice composes a message (exit 3, "queued"; kurer outbox lists
#     it); the relay starts again; the daemon sends it, bob reads it, and alice's recv --wait
#     says once that the relay went and goes on;
#   - the daemons run throughout and stop cleanly.
# Every wait is bounded; everything started is stopped by PID on exit.
# usage: daemon_day.sh KURER KURER_ADMIN KURER_RELAY
set -uo pipefail
if [ -z "${DAEMON_DAY_DETACHED:-}" ]; then
    export DAEMON_DAY_DETACHED=1 # no terminal: a missing passphrase is refused, not prompted
    exec setsid -w "$0" "$@" </dev/null
fi
K=$(realpath "$1")
A=$(realpath "$2")
R=$(realpath "$3")
W=$(mktemp -d /tmp/kurer-day-test-XXXXXX)
RELAY_PID=
BG_PIDS=()
cleanup() {
    local st=$?
    if [ "$st" -ne 0 ]; then
        for f in relay.log alice.daemon.err bob.daemon.err recv.err; do
            [ -f "$W/$f" ] && { echo "--- $f"; tail -15 "$W/$f"; }
        done
    fi
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

# expect NAME CODE SUBSTRING CMD...: exit code and a part of stdout+stderr (in $OUT after)
expect() {
    local name=$1 code=$2 sub=$3 st
    shift 3
    OUT=$("$@" </dev/null 2>&1)
    st=$?
    if [ "$st" -ne "$code" ] || [[ "$OUT" != *"$sub"* ]]; then
        fail "$name: exit $st (want $code), output:"
        echo "$OUT" | sed 's/^/    /'
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

start_relay() { # on PORT when set (a restart), else port 0
    : >relay.out
    "$R" run --dir relay --listen "127.0.0.1:${PORT:-0}" --root root/root.crt --crl fm/crl \
        --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { echo "relay did not start"; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
}

stop_relay() {
    kill -TERM "$RELAY_PID" 2>/dev/null
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=
}

# device HOME USER AUTHDIR: as docs/admin.md has a new user do it
device() {
    "$K" init --home "$1" --user "$2" --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key relay/relay.pub --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority "$3" --csr "$1/device.csr" --out "$1.chain" >/dev/null || exit 1
    "$K" import --home "$1" "$1.chain" >/dev/null || exit 1
}

start_daemon() { # HOME: in the background, until it serves (DPID_<home>)
    "$K" daemon --home "$1" >"$1.daemon.out" 2>"$1.daemon.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    eval "DPID_$1=$pid"
    wait_for "$1.daemon.err" "daemon for" 15 || { fail "daemon for $1 did not start"; exit 1; }
}

stop_daemon() { # HOME: SIGTERM; its exit status in DST
    local pid
    eval "pid=\$DPID_$1"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    DST=$?
}

count() { grep -c -- "$1" "$2" 2>/dev/null || true; }

# ---- morning: enrolment, daemons, a second terminal
KURER_ADMIN_PASSPHRASE=$KURER_ADMIN_ROOT_PASSPHRASE "$A" root init --dir root --name Rigsrod \
    --kdf-min >/dev/null || exit 1
"$A" authority init --root root --dir fm --id fm.dk --name FM --clearance CONFIDENTIAL \
    --kdf-min >/dev/null || exit 1
"$A" authority init --root root --dir sk --id sk.dk --name SK --clearance RESTRICTED \
    --kdf-min >/dev/null || exit 1
"$R" init --dir relay >/dev/null || exit 1
start_relay
device alice alice@fm.dk fm
device bob bob@sk.dk sk
start_daemon alice
start_daemon bob
# the passphrase is the daemon's from now on: the second terminal needs none
unset KURER_PASSPHRASE
"$K" recv --home alice --wait 90 >recv.out 2>recv.err &
RECV_PID=$!
BG_PIDS+=("$RECV_PID")
sleep 1

# ---- read and write at once
expect "alice writes while her recv --wait listens" 0 "sent to bob@sk.dk [RESTRICTED]" \
    "$K" send --home alice --to bob@sk.dk --level RESTRICTED "Mødet er flyttet til 14."
expect "bob reads it through his daemon" 0 "alice@fm.dk [RESTRICTED] Mødet er flyttet til 14." \
    "$K" recv --home bob
expect "bob answers" 0 "sent to alice@fm.dk" "$K" send --home bob --to alice@fm.dk "Fint, vi ses."
wait_for recv.out "Fint, vi ses." 20 && ok "alice's recv --wait shows the answer" ||
    fail "recv --wait did not show it: $(cat recv.out recv.err)"
expect "her history has both, oldest first" 0 "Fint, vi ses." "$K" history --home alice
[[ "$OUT" == *"Mødet er flyttet til 14."*"Fint, vi ses."* ]] && ok "in order" ||
    fail "history: $OUT"
expect "text from standard input" 0 "sent to bob@sk.dk" \
    sh -c "printf 'Dagsorden:\n1. Budget\n' | '$K' send --home alice --to bob@sk.dk -"
expect "conversations" 0 "bob@sk.dk  last" "$K" conversations --home alice
expect "contacts" 0 "bob@sk.dk  last contact" "$K" contacts --home alice
expect "verify bob" 0 "safety number" "$K" verify --home alice bob@sk.dk
expect "a wrong level is refused, naming the certificate" 1 "clearance of bob@sk.dk device 1" \
    "$K" send --home alice --to bob@sk.dk --level CONFIDENTIAL "x"
expect "bob reads the agenda" 0 "1. Budget" "$K" recv --home bob

# ---- midday: bob's device re-enrolled with new keys, through his daemon
expect "bob: new keys through his daemon" 0 "New keys for bob@sk.dk device 1" \
    "$K" rekey --home bob --force
expect "his administrator issues them, superseding the old certificate" 0 "" \
    "$A" issue --authority sk --csr bob/device.csr --out bob.chain2 --replace
expect "bob imports the new chain through his daemon" 0 "prekeys uploaded" \
    "$K" import --home bob bob.chain2
"$K" send --home alice --to bob@sk.dk "Efter frokost" >send1.out 2>&1
st=$?
[ "$st" -eq 0 ] && grep -q "sent to bob@sk.dk" send1.out && ok "alice keeps writing to bob" ||
    fail "send after the re-enrolment: exit $st: $(cat send1.out)"
# Told once: by this send, or, when bob's new device's receipts reached her daemon first, by
# her recv --wait (which shows the daemon's key_change notifications).
said="bob@sk.dk device 1 has a new key: certificate [0-9]* issued by sk.dk"
for _ in $(seq 50); do
    grep -q "$said" send1.out recv.out && break
    sleep 0.1
done
grep -q "$said" send1.out recv.out && ok "she is told of the key change" ||
    fail "no key change said: $(cat send1.out recv.out)"
"$K" send --home alice --to bob@sk.dk "Og igen" >send2.out 2>&1 || fail "send 2: $(cat send2.out)"
[ "$(count "has a new key" send2.out)" -eq 0 ] && ok "... once: not again at the next send" ||
    fail "told again: $(cat send2.out)"
expect "bob reads both with his new keys" 0 "Og igen" "$K" recv --home bob
[[ "$OUT" == *"Efter frokost"* ]] && ok "both" || fail "bob: $OUT"
expect "bob writes back" 0 "sent to alice@fm.dk" "$K" send --home bob --to alice@fm.dk "Modtaget"
wait_for recv.out "Modtaget" 20 && ok "alice's recv --wait shows it" ||
    fail "recv --wait: $(cat recv.out recv.err)"

# ---- afternoon: the relay goes down, a message is composed, the relay comes back
stop_relay
wait_for recv.err "reconnecting until the wait ends" 15 &&
    ok "alice's recv --wait says the relay went" || fail "recv: $(cat recv.err)"
expect "composed while the relay is down: queued" 3 "queued, not yet accepted by the relay" \
    "$K" send --home alice --to bob@sk.dk --timeout 5 "Skrevet mens relayet var nede"
expect "her outbox lists it" 0 "pending" "$K" outbox --home alice
expect "her history shows it pending" 0 "pending" "$K" history --home alice --with bob@sk.dk
expect "reading works meanwhile" 0 "Modtaget" "$K" history --home alice
start_relay
ok=0
for ((i = 0; i < 60; i++)); do
    out=$("$K" outbox --home alice 2>&1)
    [[ "$out" == "the outbox is empty" ]] && { ok=1; break; }
    sleep 1
done
[ "$ok" = 1 ] && ok "the daemon sent it after the restart" || fail "still queued: $out"
for ((i = 0; i < 30; i++)); do
    "$K" recv --home bob >bob.recv 2>&1
    grep -q "Skrevet mens relayet var nede" bob.recv && break
    sleep 1
done
grep -q "Skrevet mens relayet var nede" bob.recv && ok "bob reads it" ||
    fail "bob did not get it: $(cat bob.recv)"
expect "bob answers after the restart" 0 "sent to alice@fm.dk" \
    "$K" send --home bob --to alice@fm.dk "Alt vel"
wait_for recv.out "Alt vel" 30 && ok "alice's recv --wait goes on after the restart" ||
    fail "recv --wait: $(cat recv.out recv.err)"
[ "$(count reconnecting recv.err)" -eq 1 ] && ok "it said so once" || fail "$(cat recv.err)"
for m in "Fint, vi ses." "Modtaget" "Alt vel"; do
    [ "$(count "$m" recv.out)" -eq 1 ] && ok "recv --wait printed '$m' once" ||
        fail "'$m' printed $(count "$m" recv.out) times"
done
expect "history: the day in order" 0 "Alt vel" "$K" history --home alice
[[ "$OUT" == *"Mødet"*"Fint"*"Efter frokost"*"Modtaget"*"Skrevet mens"*"Alt vel"* ]] &&
    ok "in order" || fail "history: $OUT"

# ---- evening: the daemons ran throughout, and stop
kill -0 "$DPID_alice" 2>/dev/null && kill -0 "$DPID_bob" 2>/dev/null &&
    ok "both daemons ran the whole day" || fail "a daemon died"
kill -TERM "$RECV_PID" 2>/dev/null
wait "$RECV_PID" 2>/dev/null
stop_daemon alice
[ "$DST" -eq 0 ] && ok "alice's daemon stops: exit 0" || fail "exit $DST"
stop_daemon bob
[ "$DST" -eq 0 ] && ok "bob's daemon stops: exit 0" || fail "exit $DST"
export KURER_PASSPHRASE=user-passphrase-1
expect "without the daemon the home opens as before" 0 "Alt vel" "$K" history --home alice
[ "$failed" -eq 0 ] || { echo "$failed failed"; exit 1; }
