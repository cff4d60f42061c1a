#!/usr/bin/env bash
# client_receipts_<case> (issue 11, items 6 and 7): delivered and read receipts between real
# kurer processes (anna writes to bob, who has two devices), synced to bob's other device; a
# disappearing-message timer set by anna that every device honours, and the text gone from
# every store afterwards. Real kurer, kurer-admin and kurer-relay on 127.0.0.1 (port 0), with
# the helpers of client_flow.sh (sourced); every wait is bounded.
#
# How "gone from the store" is checked: SQLCipher encrypts every page, so a grep of store.db or
# store.db-wal would never find the text, whether it is there or not. store_pages opens the
# store with the passphrase through our own store code and writes every page as SQLCipher
# decrypts it (sqlite_dbpage, through the pager and its codec: live, free and unused space
# alike); the test greps that. It first shows the grep finding the word while the message is
# stored, so the check can fail. The WAL: the expiry ends with a truncating checkpoint, so
# while kurer recv still holds the home the test checks store.db-wal has no frames left (no
# older page image that could hold the text), and afterwards the decrypted pages.
#
# usage: client_receipts.sh CASE KURER KURER_ADMIN KURER_RELAY CLIENT_HELPER STORE_PAGES
set -uo pipefail
if [ -z "${CLIENT_FLOW_DETACHED:-}" ]; then
    export CLIENT_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
CLIENT_FLOW_LIB=1
# shellcheck source=client_flow.sh
source "$(dirname "$(realpath "$0")")/client_flow.sh" "$@"
PAGES=$CHAT # (client_flow.sh's sixth argument) tests/integration/store_pages.c

# in_store NAME N HOME WORD: the decrypted pages of HOME's store hold WORD N times (0 or more)
in_store() {
    local n
    if ! "$PAGES" "$3" pages.bin >/dev/null; then
        fail "$1: store_pages could not read $3"
        return
    fi
    n=$(grep -a -o -- "$4" pages.bin | wc -l)
    if { [ "$2" -eq 0 ] && [ "$n" -ne 0 ]; } || { [ "$2" -ne 0 ] && [ "$n" -eq 0 ]; }; then
        fail "$1: '$4' found $n times in the decrypted pages of $3"
    else
        ok "$1"
    fi
    rm -f pages.bin
}


# start_daemon HOME: kurer daemon in the background until it says where it serves (DSOCK)
start_daemon() {
    "$K" daemon --home "$1" >"$1.daemon.out" 2>"$1.daemon.err" &
    BG_PIDS+=($!)
    wait_for "$1.daemon.err" "daemon for" 15 || { echo "daemon for $1 did not start"; exit 1; }
    DSOCK=$(sed -n 's/^kurer: daemon for .* on \(.*\) (pid [0-9]*)$/\1/p' "$1.daemon.err")
}

# A JSON-RPC client of the daemon from docs/client.md alone (Python's standard library):
# subscribes to receipts, then makes the calls given as JSON lines on stdin and prints each
# response and the receipt notifications (until two came, or 30 s) as JSON lines.
cat >rpc.py <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
buf, n = b"", 0
def send(method, params):
    global n
    n += 1
    s.sendall((json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}) + "\n").encode())
def line(deadline):
    global buf
    while b"\n" not in buf:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        c = s.recv(65536)
        if not c:
            return None
        buf += c
    raw, buf = buf.split(b"\n", 1)
    return json.loads(raw)
send("subscribe", {"events": ["receipt"]})
deadline = time.monotonic() + 30
print(json.dumps(line(deadline)), flush=True)
for req in sys.stdin:
    r = json.loads(req)
    send(r["method"], r["params"])
notes = 0
while notes < int(sys.argv[2]) and time.monotonic() < deadline:
    try:
        m = line(deadline)
    except socket.timeout:
        break
    if m is None:
        break
    print(json.dumps(m), flush=True)
    notes += "id" not in m
PY

case $CASE in
receipts)
    setup
    device bob2 bob@sk.dk 2 sk
    expect "anna sends" 0 "sent to bob@sk.dk" "$K" send --home anna --to bob@sk.dk "kvittering bitte"
    expect "bob receives" 0 "kvittering bitte" "$K" recv --home bob
    expect "bob2 receives" 0 "kvittering bitte" "$K" recv --home bob2
    expect "anna gets the receipts" 0 "" "$K" recv --home anna
    expect "delivered to both devices" 0 "kvittering bitte (delivered to 2 devices)" \
        "$K" history --home anna
    expect "unread on bob" 0 "kvittering bitte" "$K" history --home bob
    count "not read yet" 0 "(read)" "$out"
    expect "bob reads" 0 "marked 1 message read" "$K" read --home bob anna@fm.dk --all
    expect "nothing left to read" 0 "marked 0 messages read" "$K" read --home bob anna@fm.dk --all
    expect "read on bob" 0 "kvittering bitte (read)" "$K" history --home bob
    expect "anna gets the read receipt" 0 "" "$K" recv --home anna
    expect "read on one of two" 0 "kvittering bitte (delivered to 2 devices, read on 1)" \
        "$K" history --home anna
    expect "verbose: device 1 read it" 0 "bob@sk.dk device 1: delivered" \
        "$K" history --home anna --verbose
    count "device 1 read" 1 "bob@sk.dk device 1: delivered .* read " "$out"
    count "device 2 did not" 1 "bob@sk.dk device 2: delivered [^r]*$" "$out"
    expect "json counts" 0 '"read_devices":1' "$K" history --home anna --json
    expect "bob2 gets the sync" 0 "" "$K" recv --home bob2
    expect "read on bob2 too" 0 "kvittering bitte (read)" "$K" history --home bob2
    # A receipt is never receipted: anna sent nothing back for it.
    expect "bob gets nothing" 0 "" "$K" recv --home bob
    count "no message for bob" 0 "anna@fm.dk" "$out"
    expect "read by time" 0 "sent_at" "$K" history --home bob --verbose
    expect "usage: neither" 2 "SENT_AT" "$K" read --home bob anna@fm.dk
    ;;
expiry)
    setup
    device bob2 bob@sk.dk 2 sk
    expect "timer set" 0 "disappearing messages with bob@sk.dk: 3s after reading" \
        "$K" timer --home anna bob@sk.dk 3s
    expect "bob gets the notice" 0 "disappearing messages on" "$K" recv --home bob
    expect "bob2 gets the notice" 0 "disappearing messages on" "$K" recv --home bob2
    expect "anna sends" 0 "sent to bob@sk.dk" "$K" send --home anna --to bob@sk.dk \
        "kodeord zebra-4711"
    expect "anna's copy counts down" 0 "kodeord zebra-4711 (disappears" "$K" history --home anna
    expect "bob receives, timer kept" 0 "(disappears 3s after reading)" "$K" recv --home bob
    expect "bob2 receives" 0 "zebra-4711" "$K" recv --home bob2
    in_store "the word is in bob's decrypted pages" 1 bob "zebra-4711"
    in_store "and in bob2's" 1 bob2 "zebra-4711"
    expect "bob reads" 0 "marked 1 message read" "$K" read --home bob anna@fm.dk --all
    # bob2 learns of the read from bob's sync copy: its countdown starts then; its recv runs
    # on, and the engine's tick deletes the message while it holds the home.
    "$K" recv --home bob2 --wait 9 >bob2.out 2>&1 &
    BG_PIDS+=($!)
    sleep 1
    in_store "bob2 live (file and WAL), before the expiry" 1 bob2 "zebra-4711"
    sleep 6
    in_store "bob2 live (file and WAL), after the expiry" 0 bob2 "zebra-4711"
    if [ -s bob2/store.db-wal ]; then
        fail "bob2's WAL holds $(stat -c %s bob2/store.db-wal) bytes after the expiry"
    else
        ok "bob2's WAL truncated after the expiry"
    fi
    wait "${BG_PIDS[-1]}"
    sleep 1
    expect "gone from bob's history" 0 "" "$K" history --home bob
    count "no zebra for bob" 0 "zebra-4711" "$out"
    expect "gone from bob2's history" 0 "" "$K" history --home bob2
    count "no zebra for bob2" 0 "zebra-4711" "$out"
    expect "gone from anna's history" 0 "" "$K" history --home anna
    count "no zebra for anna" 0 "zebra-4711" "$out"
    in_store "not in bob's decrypted pages" 0 bob "zebra-4711"
    in_store "not in bob2's" 0 bob2 "zebra-4711"
    in_store "not in anna's" 0 anna "zebra-4711"
    expect "timer off" 0 "disappearing messages off" "$K" timer --home anna bob@sk.dk off
    expect "anna sends again" 0 "sent to bob@sk.dk" "$K" send --home anna --to bob@sk.dk \
        "bliver staaende"
    expect "kept without a timer" 0 "bliver staaende" "$K" recv --home bob
    count "no timer" 0 "disappears" "$out"
    ;;
daemon)
    # The same through kurer daemon: the commands run its methods read and timer, and a
    # JSON-RPC client subscribed to receipt hears both receipts of anna's message.
    setup
    start_daemon anna
    ASOCK=$DSOCK
    start_daemon bob
    printf '%s\n' '{"method":"read","params":{"all":true,"sent_at":[1]}}' \
        '{"method":"timer","params":{"peer":"bob@sk.dk"}}' |
        timeout 60 python3 rpc.py "$ASOCK" 2 >notes.out 2>&1 &
    BG_PIDS+=($!)
    RPC_PID=$!
    wait_for notes.out '"subscription"' 15 || fail "no subscription"
    expect "send through the daemon" 0 "sent to bob@sk.dk" "$K" send --home anna --to bob@sk.dk \
        "via daemonen"
    for ((i = 0; i < 100; i++)); do
        "$K" history --home bob 2>/dev/null | grep -q "via daemonen" && break
        sleep 0.1
    done
    expect "bob reads through his daemon" 0 "marked 1 message read" "$K" read --home bob \
        anna@fm.dk --all
    wait "$RPC_PID"
    out=$(cat notes.out)
    count "both sent_at and all: invalid params" 1 '"id": 2, "error": {"code": -32602' "$out"
    count "timer without seconds: invalid params" 1 '"id": 3, "error": {"code": -32602' "$out"
    count "a delivered receipt notified" 1 '"method": "receipt".*"type": "delivered"' "$out"
    count "a read receipt notified" 1 '"method": "receipt".*"type": "read"' "$out"
    count "from bob device 1" 2 '"user": "bob@sk.dk", "device": 1' "$out"
    expect "history through the daemon" 0 "via daemonen (delivered to 1 device, read on 1)" \
        "$K" history --home anna
    expect "timer through the daemon" 0 "disappearing messages with bob@sk.dk: 1h after reading" \
        "$K" timer --home anna bob@sk.dk 1h
    expect "bob's daemon took the notice" 0 "disappearing messages on: 1h" \
        "$K" history --home bob
    ;;
*)
    echo "unknown case $CASE"
    exit 2
    ;;
esac
[ "$failed" -eq 0 ] && echo "PASS client_receipts_$CASE" && exit 0
echo "$failed check(s) failed"
exit 1
