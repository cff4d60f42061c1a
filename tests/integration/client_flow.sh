#!/usr/bin/env bash
# client_<case>: the command-line client against a real kurer-relay on 127.0.0.1 (port 0), with
# certificates made by the real kurer-admin. Every wait is bounded; everything started is
# stopped by PID on exit.
#
# usage: client_flow.sh CASE KURER KURER_ADMIN KURER_RELAY CLIENT_HELPER [KURER_CHAT]
set -uo pipefail
if [ -z "${CLIENT_FLOW_DETACHED:-}" ]; then
    # No controlling terminal: a missing passphrase is refused instead of prompting.
    export CLIENT_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
CASE=$1
K=$(realpath "$2")
A=$(realpath "$3")
R=$(realpath "$4")
H=$(realpath "$5")
CHAT=${6:+$(realpath "$6")} # examples/chat.c, on libkurer.so (case example)
TAMPER=$CHAT                # or enrol_tamper.c (cases invite, invite_refusals)
STORE_EDIT=$CHAT            # or relay_store_edit.c (case invite_hostile_relay)
W=$(mktemp -d /tmp/kurer-client-test-XXXXXX)
RELAY_PID=
BG_PIDS=()
cleanup() {
    local st=$?
    # A setup step that failed exits at once: show what the relay said before it goes.
    if [ "$st" -ne 0 ] && [ -f "$W/relay.log" ]; then
        echo "relay log (exit $st):"
        tail -40 "$W/relay.log"
    fi
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ -n "$RELAY_PID" ]; then kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; fi
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1

export KURER_ADMIN_PASSPHRASE=admin-passphrase-1 KURER_ADMIN_ROOT_PASSPHRASE=root-passphrase-1
export KURER_PASSPHRASE=user-passphrase-1
failed=0

fail() { echo "FAIL $*"; failed=$((failed + 1)); }
ok() { echo "ok   $*"; }

# expect NAME CODE SUBSTRING CMD...: exit code and a part of stdout+stderr
expect() {
    local name=$1 code=$2 sub=$3
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

# count NAME N PATTERN TEXT: TEXT has exactly N lines matching PATTERN
count() {
    local n
    n=$(printf '%s\n' "$4" | grep -c -- "$3")
    if [ "$n" -ne "$2" ]; then
        fail "$1: $n lines match '$3', want $2:"
        printf '%s\n' "$4" | sed 's/^/    /'
    else
        ok "$1"
    fi
}

# wait_for FILE SUBSTRING SECONDS
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

pki() {
    KURER_ADMIN_PASSPHRASE=$KURER_ADMIN_ROOT_PASSPHRASE "$A" root init --dir root --name Rigsrod --kdf-min >/dev/null || exit 1
    "$A" authority init --root root --dir fm --id fm.dk --name FM --clearance CONFIDENTIAL \
        --kdf-min >/dev/null || exit 1
    "$A" authority init --root root --dir sk --id sk.dk --name SK --clearance RESTRICTED \
        --kdf-min >/dev/null || exit 1
    "$R" init --dir relay >/dev/null || exit 1
    RELAY_KEY=$(cat relay/relay.pub)
}

start_relay() {
    : >relay.out
    "$R" run --dir relay --listen "127.0.0.1:${PORT:-0}" --root root/root.crt --crl fm/crl \
        --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { echo "relay did not start"; cat relay.log; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
}

stop_relay() {
    kill -TERM "$RELAY_PID" 2>/dev/null
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=
}

# device HOME USER ID AUTHDIR [CLEARANCE]: init, issue, import, first connect (prekeys)
device() {
    "$K" init --home "$1" --user "$2" --device "$3" --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority "$4" --csr "$1/device.csr" --out "$1.chain" \
        ${5:+--clearance $5} >/dev/null || exit 1
    "$K" import --home "$1" "$1.chain" >/dev/null || exit 1
    "$K" recv --home "$1" >/dev/null || exit 1
}

# Online enrolment (cases invite, invite_refusals): an invitation of fm for USER DEVICE
# [EXPIRES], its code in $CODE.
invite() {
    local o
    o=$("$A" invite --authority fm --user "$1" --device "$2" --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" ${3:+--expires $3} --json) || { echo "invite: $o"; exit 1; }
    CODE=$(printf '%s' "$o" | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
    INVITE_ID=$(printf '%s' "$o" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
}
# enrol_init HOME USER DEVICE CODE [OPTION...]: kurer init --invite
enrol_init() {
    "$K" init --home "$1" --user "$2" --device "$3" --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min --invite "$4" "${@:5}"
}
admin_q() { # pending|approve|reject [ARG...]
    "$A" "$1" --authority fm --relay "127.0.0.1:$PORT" --relay-key "$RELAY_KEY" "${@:2}"
}
# armor_file LABEL IN OUT: IN as armoured text (docs/protocol.md 2.6), made by Python's base64
# and hashlib, not by our code.
armor_file() {
    python3 - "$1" "$2" "$3" <<'PY'
import base64, hashlib, sys
label, data = sys.argv[1].encode(), open(sys.argv[2], "rb").read()
s = base64.b64encode(hashlib.blake2b(b"kurer armor v1\0" + label + b"\0" + data,
                                     digest_size=32).digest()[:3]).decode()
b = base64.b64encode(data).decode()
body = "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
open(sys.argv[3], "w").write("-----BEGIN KURER %s-----\n%s\n=%s\n-----END KURER %s-----\n"
                             % (sys.argv[1], body, s, sys.argv[1]))
PY
}
# A code with a right check character that no authority made.
unknown_code() {
    python3 -c '
import hashlib, os
a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
s = os.urandom(10); b = int.from_bytes(s, "big")
d = "".join(a[(b >> (75 - 5 * i)) & 31] for i in range(16))
c = a[hashlib.blake2b(b"kurer invite check v1\0" + s, digest_size=32).digest()[0] & 31]
print("-".join([d[0:4], d[4:8], d[8:12], d[12:16], c]))'
}

setup() {
    pki
    start_relay
    device anna anna@fm.dk 1 fm CONFIDENTIAL
    device bob bob@sk.dk 1 sk
}

# tests/integration/client_day.sh sources this file for the helpers above (its own cases).
[ -n "${CLIENT_FLOW_LIB:-}" ] && return 0

case $CASE in
example)
    # examples/chat.c: the asynchronous API through libkurer.so, as an application uses it.
    setup
    expect "example sends" 0 "sent" "$CHAT" anna bob@sk.dk "Hej fra eksemplet"
    expect "kurer receives it" 0 "anna@fm.dk [UNCLASSIFIED] Hej fra eksemplet" "$K" recv --home bob
    expect "reply" 0 "sent" "$K" send --home bob --to anna@fm.dk "svar til eksemplet"
    expect "example receives" 0 "bob@sk.dk [UNCLASSIFIED] svar til eksemplet" "$CHAT" anna
    expect "example: nothing more" 0 "online" "$CHAT" anna
    count "no second copy" 0 "svar til eksemplet" "$out"
    expect "example: unknown user" 1 "not sent" "$CHAT" anna carl@sk.dk "hallo?"
    "$K" recv --home anna --wait 30 >/dev/null 2>&1 &
    BG_PIDS+=($!)
    wait_for anna/.lock "recv --wait" 15 || fail "recv --wait did not start"
    expect "example refused while kurer holds the home" 1 "open in another" "$CHAT" anna
    ;;
first_contact)
    setup
    expect "send first contact" 0 "sent to bob@sk.dk [RESTRICTED]" \
        "$K" send --home anna --to bob@sk.dk --level RESTRICTED "Hej Bob"
    expect "receive" 0 "anna@fm.dk [RESTRICTED] Hej Bob" "$K" recv --home bob
    expect "reply" 0 "sent" "$K" send --home bob --to anna@fm.dk "Tak, modtaget"
    expect "receive reply" 0 "bob@sk.dk [UNCLASSIFIED] Tak, modtaget" "$K" recv --home anna
    expect "json" 0 '"text":"Hej Bob"' "$K" history --home bob --json --with anna@fm.dk
    expect "history both ways" 0 "anna@fm.dk -> bob@sk.dk [RESTRICTED] Hej Bob" \
        "$K" history --home anna
    expect "verify" 0 "safety number" "$K" verify --home anna bob@sk.dk
    expect "unknown user" 1 "unknown user carl@sk.dk" \
        "$K" send --home anna --to carl@sk.dk "hello?"
    # User names are lower case: a name that is only in the wrong case says so (exit 2).
    expect "upper case refused, with the name meant" 2 \
        "user names are lower case (did you mean 'bob@sk.dk'?)" \
        "$K" send --home anna --to Bob@SK.dk "hello?"
    expect "upper case in verify" 2 "user names are lower case" "$K" verify --home anna BOB@sk.dk
    # The text from standard input ('-') and from a file (one final newline dropped).
    out=$(printf 'fra stdin\n' | "$K" send --home anna --to bob@sk.dk - 2>&1)
    [[ "$out" == *sent* ]] && ok "send - (standard input)" || fail "send -: $out"
    printf 'fra en fil\n' >msg.txt
    expect "send --text-file" 0 "sent" "$K" send --home anna --to bob@sk.dk --text-file msg.txt
    expect "both --text-file and TEXT" 2 "not both" "$K" send --home anna --to bob@sk.dk --text-file msg.txt x
    expect "receive both" 0 "anna@fm.dk [UNCLASSIFIED] fra en fil" "$K" recv --home bob
    [[ "$out" == *"anna@fm.dk [UNCLASSIFIED] fra stdin"* ]] && ok "the stdin one too" ||
        fail "stdin message not received: $out"
    expect "nothing new" 0 "" "$K" recv --home bob
    count "no second copy" 0 "Hej Bob" "$out"
    ;;
offline_delivery)
    setup
    for i in 1 2 3; do
        expect "send $i while bob is offline" 0 "sent" \
            "$K" send --home anna --to bob@sk.dk "offline $i"
    done
    # (A relay restart in between is relay_sigkill_restart's subject: restarting on the same
    # port here could race with other tests' relays taking the freed port.)
    expect "bob comes online" 0 "offline 1" "$K" recv --home bob
    count "all three, once, in order" 3 "anna@fm.dk \[UNCLASSIFIED\] offline [123]" "$out"
    [[ "$out" == *"offline 1"*"offline 2"*"offline 3"* ]] && ok "order" || fail "order: $out"
    ;;
multi_device)
    setup
    device bob2 bob@sk.dk 2 sk
    device anna2 anna@fm.dk 2 fm CONFIDENTIAL
    expect "fan-out send" 0 "sent" "$K" send --home anna --to bob@sk.dk --level RESTRICTED "til alle"
    expect "bob device 1" 0 "anna@fm.dk [RESTRICTED] til alle" "$K" recv --home bob
    expect "bob device 2" 0 "anna@fm.dk [RESTRICTED] til alle" "$K" recv --home bob2
    expect "anna's other device gets a sync copy" 0 \
        "anna@fm.dk -> bob@sk.dk [RESTRICTED] til alle" "$K" recv --home anna2
    expect "reply from bob device 2" 0 "sent" "$K" send --home bob2 --to anna@fm.dk "svar"
    expect "anna 1" 0 "bob@sk.dk [UNCLASSIFIED] svar" "$K" recv --home anna
    expect "anna 2" 0 "bob@sk.dk [UNCLASSIFIED] svar" "$K" recv --home anna2
    expect "bob device 1 sync copy" 0 "bob@sk.dk -> anna@fm.dk [UNCLASSIFIED] svar" \
        "$K" recv --home bob
    # A device enrolled after the sender last looked: the relay says STALE_DEVICES (or the
    # directory lists it) and the message reaches it too.
    device bob3 bob@sk.dk 3 sk
    expect "send after a new device" 0 "sent" "$K" send --home anna --to bob@sk.dk "ny enhed"
    expect "bob device 3" 0 "ny enhed" "$K" recv --home bob3
    expect "anna verify lists 3 devices" 0 "device 3" "$K" verify --home anna bob@sk.dk
    ;;
kill_receiver)
    setup
    for i in 1 2 3; do "$K" send --home anna --to bob@sk.dk "besked $i" >/dev/null || exit 1; done
    KURER_TEST_HOLD=committed "$K" recv --home bob >hold.out 2>hold.err &
    BG_PIDS+=($!)
    if wait_for hold.err "holding after commit" 15; then ok "receiver held after commit"; else
        fail "receiver never held"
    fi
    kill -9 "${BG_PIDS[-1]}"
    wait "${BG_PIDS[-1]}" 2>/dev/null
    count "first message shown before the kill" 1 "besked 1" "$(cat hold.out)"
    expect "restart receives the rest" 0 "besked 2" "$K" recv --home bob
    count "redelivered first message not shown again" 0 "besked 1" "$out"
    count "messages 2 and 3 once" 2 "besked [23]" "$out"
    expect "history" 0 "besked 3" "$K" history --home bob
    count "history: no loss, no duplicate" 3 "besked [123]" "$out"
    expect "queue empty afterwards" 0 "" "$K" recv --home bob
    count "nothing more" 0 "besked" "$out"
    ;;
kill_sender)
    setup
    hold_send() { # hold_send N: a send killed -9 after its outbox commit, before it sends
        KURER_TEST_HOLD=queued "$K" send --home anna --to bob@sk.dk "i udbakken $1" \
            >"hold$1.out" 2>&1 &
        BG_PIDS+=($!)
        if wait_for "hold$1.out" "queued" 15; then ok "sender $1 held after outbox commit"; else
            fail "sender $1 never held"
            cat "hold$1.out"
        fi
        kill -9 "${BG_PIDS[-1]}"
        wait "${BG_PIDS[-1]}" 2>/dev/null
    }
    hold_send 1
    expect "pending in history" 0 "i udbakken 1 (pending)" "$K" history --home anna
    expect "bob has nothing yet" 0 "" "$K" recv --home bob
    count "nothing yet" 0 "i udbakken" "$out"
    # The next start connects, and a connect sends what the crash left in the outbox; this one
    # is killed too, with its own message in the outbox.
    hold_send 2
    expect "first sent by the restart" 0 "i udbakken 2 (pending)" "$K" history --home anna
    count "only the second pending" 1 "(pending)" "$out"
    expect "restart flushes the outbox" 0 "" "$K" recv --home anna
    expect "sent in history" 0 "i udbakken 2" "$K" history --home anna
    count "none pending" 0 "(pending)" "$out"
    expect "bob receives both" 0 "i udbakken 1" "$K" recv --home bob
    count "both once" 2 "i udbakken [12]" "$out"
    ;;
wrong_passphrase)
    setup
    before=$(sha256sum anna/store.db anna/store.kdf)
    expect "wrong passphrase" 1 "wrong passphrase for anna" \
        env KURER_PASSPHRASE=not-the-passphrase "$K" history --home anna
    expect "wrong passphrase json" 1 '"code":"EPASSPHRASE"' \
        env KURER_PASSPHRASE=not-the-passphrase "$K" recv --home anna --json
    after=$(sha256sum anna/store.db anna/store.kdf)
    [ "$before" = "$after" ] && ok "store unchanged" || fail "store changed"
    expect "no passphrase, no terminal" 1 "set KURER_PASSPHRASE" \
        env -u KURER_PASSPHRASE "$K" history --home anna
    expect "passwd" 0 "passphrase changed" \
        env KURER_NEW_PASSPHRASE=another-passphrase-2 "$K" passwd --home anna
    expect "old passphrase refused" 1 "wrong passphrase" "$K" history --home anna
    expect "new passphrase works" 0 "" env KURER_PASSPHRASE=another-passphrase-2 "$K" \
        send --home anna --to bob@sk.dk "after passwd"
    expect "usage error" 2 "unknown option '--bogus'" "$K" send --bogus
    expect "help" 0 "usage: kurer send" "$K" send --help
    expect "version" 0 "kurer " "$K" --version
    ;;
classification)
    setup
    expect "recipient's certificate refuses" 1 \
        "CONFIDENTIAL is above the clearance of bob@sk.dk device 1 (RESTRICTED)" \
        "$K" send --home anna --to bob@sk.dk --level CONFIDENTIAL "fortroligt"
    expect "sender's certificate refuses" 1 \
        "CONFIDENTIAL is above your own certificate's clearance (RESTRICTED)" \
        "$K" send --home bob --to anna@fm.dk --level CONFIDENTIAL "fortroligt"
    expect "SECRET is never accepted" 1 "not accredited above CONFIDENTIAL" \
        "$K" send --home anna --to bob@sk.dk --level SECRET "x"
    expect "nothing stored for refused sends" 0 "" "$K" history --home anna
    count "no refused message in history" 0 "fortroligt" "$out"
    # The receiving side: a sender that ignores the policy (a test helper on libkurer's
    # internals) sends CONFIDENTIAL to a RESTRICTED device; it is quarantined, never shown.
    "$H" rogue-send anna bob@sk.dk 3 "skal ikke vises" || fail "rogue send"
    expect "quarantined on receive" 0 "[CONFIDENTIAL] (quarantined" "$K" recv --home bob
    count "body not shown" 0 "skal ikke vises" "$out"
    expect "quarantined json" 0 '"state":"quarantined"' "$K" history --home bob --json
    count "json has no text" 0 "skal ikke vises" "$out"
    ;;
revoked)
    setup
    expect "before revocation" 0 "sent" "$K" send --home anna --to bob@sk.dk "foer"
    expect "bob receives" 0 "foer" "$K" recv --home bob
    "$A" revoke --authority sk --cert bob.chain --reason device-lost >/dev/null || exit 1
    kill -HUP "$RELAY_PID"
    sleep 0.5
    expect "revoked device cannot receive" 1 "certificate revoked" "$K" recv --home bob
    expect "revoked device cannot send" 1 "certificate revoked" \
        "$K" send --home bob --to anna@fm.dk "efter"
    # A client that holds the list refuses on its own too, relay or not.
    expect "anna imports the list" 0 "revocation list imported" "$K" import --home anna sk/crl
    expect "verify shows it" 0 "certificate revoked" "$K" verify --home anna --offline bob@sk.dk
    expect "nobody can send to it" 1 "bob@sk.dk" "$K" send --home anna --to bob@sk.dk "efter"
    ;;
revoked_large)
    # A list of 100,000 serials (the format's bound), far larger than one frame: published in
    # chunks, served paged, fetched by every client at connect; nobody is locked out, before
    # or after a relay restart (the list is reloaded from the relay's store).
    setup
    device carl carl@sk.dk 1 sk
    expect "before revocation" 0 "sent" "$K" send --home anna --to bob@sk.dk "foer"
    expect "bob receives" 0 "foer" "$K" recv --home bob
    "$H" big-crl sk bob.chain 100000 big.crl || { fail "client_helper big-crl"; exit 1; }
    size=$(stat -c %s big.crl)
    [ "$size" -gt 65535 ] && ok "the list is $size bytes (over a frame)" || fail "list of $size bytes"
    expect "published in chunks" 0 "published" \
        "$A" publish --crl big.crl --relay "127.0.0.1:$PORT" --relay-key relay/relay.pub
    expect "anna connects and fetches it" 0 "" "$K" recv --home anna
    # (bob's delivered receipt, sent before the revocation, reaches anna after the list: she
    # refuses it and forgets bob's revoked device, so verify may know no device of his.)
    expect "anna holds it" 0 "not newer than the list held" "$K" import --home anna big.crl
    expect "anna refuses to send to bob" 1 "bob@sk.dk" "$K" send --home anna --to bob@sk.dk "x"
    expect "bob is refused" 1 "certificate revoked" "$K" recv --home bob
    stop_relay
    start_relay
    expect "after a restart carl connects (and fetches the list)" 0 "" "$K" recv --home carl
    expect "carl holds it too" 0 "not newer than the list held" "$K" import --home carl big.crl
    expect "carl writes to anna" 0 "sent" "$K" send --home carl --to anna@fm.dk "efter"
    expect "anna reads it" 0 "efter" "$K" recv --home anna
    ;;
outbox_revoked)
    # An item that waits in the outbox is checked again when it goes out: the recipient's
    # certificate was revoked meanwhile, and the relay has not been told (it lags, or hides the
    # list), so only the sending client can refuse.
    setup
    expect "before revocation" 0 "sent" "$K" send --home anna --to bob@sk.dk "foer"
    KURER_TEST_HOLD=queued "$K" send --home anna --to bob@sk.dk "efter spaerring" \
        >hold.out 2>&1 &
    BG_PIDS+=($!)
    if wait_for hold.out "queued" 15; then ok "sender held after outbox commit"; else
        fail "sender never held"
        cat hold.out
    fi
    kill -9 "${BG_PIDS[-1]}"
    wait "${BG_PIDS[-1]}" 2>/dev/null
    "$A" revoke --authority sk --cert bob.chain --reason device-lost >/dev/null || exit 1
    expect "anna imports the list" 0 "revocation list imported" "$K" import --home anna sk/crl
    expect "anna's restart flushes the outbox" 0 "" "$K" recv --home anna
    expect "not sent: failed in history" 0 "efter spaerring (failed)" "$K" history --home anna
    expect "bob's device (unrevoked at the relay) receives nothing" 0 "" "$K" recv --home bob
    count "not delivered to the revoked device" 0 "efter spaerring" "$out"
    ;;
escapes)
    # A peer's text reaches a terminal: escape sequences (ESC, and the 8-bit CSI and NEL that
    # terminals act on as C1 controls, raw or UTF-8 encoded), bidirectional overrides and
    # newlines must never be printed raw, in plain or JSON output; JSON must stay valid.
    setup
    body=$'a\x1b[2Jb\xc2\x9bc\xc2\x85d\x9be\xe2\x80\xaef\\g\nh'
    # kurer send refuses text that is not UTF-8 (the \x9b): a peer that ignores that is played
    # by client_helper (which first sends "(test setup)").
    expect "kurer send refuses invalid UTF-8" 1 "message text is not valid UTF-8" \
        "$K" send --home anna --to bob@sk.dk "$body"
    "$H" rogue-send anna bob@sk.dk 1 "$body" && ok "send control characters" || fail "rogue send"
    unsafe() { printf '%s' "$1" | LC_ALL=C grep -c -P '\x1b|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|[\x80-\xff]'; }
    expect "recv" 0 'a\x1b[2Jb\u{009b}c\u{0085}d\x9be\u{202e}f\\g\nh' "$K" recv --home bob
    count "recv: one line" 1 "anna@fm.dk.*a.x1b" "$out"
    count "recv: two messages, two lines" 2 "anna@fm.dk" "$out"
    [ "$(unsafe "$out")" -eq 0 ] && ok "recv: nothing raw" || fail "recv printed raw bytes: $out"
    expect "history" 0 'a\x1b[2Jb\u{009b}c\u{0085}d\x9be\u{202e}f\\g\nh' "$K" history --home bob
    [ "$(unsafe "$out")" -eq 0 ] && ok "history: nothing raw" || fail "history printed raw: $out"
    expect "history json" 0 '"text":' "$K" history --home bob --json
    [ "$(unsafe "$out")" -eq 0 ] && ok "json: nothing raw" || fail "json printed raw: $out"
    if printf '%s\n' "$out" | python3 -c '
import json, sys
want = "a\x1b[2Jb\x9bc\x85d\ufffde\u202ef\\g\nh"
lines = [json.loads(l) for l in sys.stdin.buffer.read().split(b"\n") if l]
lines = [m for m in lines if m["text"] != "(test setup)"]
assert [m["text"] for m in lines] == [want], lines
'; then ok "json: valid, text round-trips"; else fail "json: $out"; fi
    ;;
backup_restore)
    # kurer backup / restore: the copy is encrypted under the home's passphrase, restores into
    # an empty folder only, and the restored home takes the device over: the old copy is told.
    setup
    "$K" send --home anna --to bob@sk.dk "hemmelig besked en" >/dev/null || exit 1
    expect "bob receives before the backup" 0 "hemmelig besked en" "$K" recv --home bob
    expect "backup" 0 "written to bob.backup" "$K" backup --home bob --out bob.backup
    if head -c 16 bob.backup | grep -qa "SQLite format"; then fail "backup is plain SQLite"; else
        ok "backup is not plain SQLite"
    fi
    if grep -qa "hemmelig" bob.backup; then fail "message text in clear"; else ok "no text in clear"; fi
    [ "$(stat -c %a bob.backup)" = 600 ] && ok "backup mode 0600" || fail "mode $(stat -c %a bob.backup)"
    expect "restore refuses a home that is not empty" 1 "not empty" "$K" restore --home anna bob.backup
    expect "restore refuses a wrong passphrase" 1 "does not open" \
        env KURER_PASSPHRASE=wrong-passphrase "$K" restore --home bob-r bob.backup
    [ -z "$(ls -A bob-r 2>/dev/null)" ] && ok "nothing left after a refused restore" || fail "bob-r: $(ls -A bob-r)"
    expect "restore refuses what is no backup" 1 "not a backup" "$K" restore --home bob-x relay/relay.pub
    expect "restore" 0 "restored bob.backup into bob-r" "$K" restore --home bob-r bob.backup
    [ "$(stat -c %a bob-r)" = 700 ] && ok "restored home 0700" || fail "bob-r mode $(stat -c %a bob-r)"
    expect "restored history" 0 "hemmelig besked en" "$K" history --home bob-r
    "$K" send --home anna --to bob@sk.dk "efter restore" >/dev/null || exit 1
    expect "the restored home receives" 0 "efter restore" "$K" recv --home bob-r
    expect "the old copy is told" 1 "in use by another copy of this home" "$K" recv --home bob
    expect "the restored home goes on" 0 "" "$K" recv --home bob-r
    ;;
cloned_home)
    # A file copy of a home (same instance): the relay catches the two copies alternating and
    # tells both, instead of letting them split the device's messages; a restore mends it.
    setup
    cp -a bob bob-copy
    expect "original" 0 "" "$K" recv --home bob
    expect "the copy is refused" 1 "in use by another copy of this home" "$K" recv --home bob-copy
    expect "the original is told too" 1 "in use by another copy of this home" "$K" recv --home bob
    expect "backup of the one kept" 0 "written" "$K" backup --home bob --out keep.backup
    expect "restored as a new instance" 0 "restored" "$K" restore --home bob-new keep.backup
    "$K" send --home anna --to bob@sk.dk "til den nye" >/dev/null || exit 1
    expect "the new instance works" 0 "til den nye" "$K" recv --home bob-new
    expect "the copy stays refused" 1 "in use by another copy" "$K" recv --home bob-copy
    ;;
home_lock)
    # One process per home: a waiting `recv --wait` holds it; other commands are refused at
    # once instead of bumping it off the relay. Short commands wait for each other.
    setup
    "$K" recv --home bob --wait 30 >wait.out 2>wait.err &
    BG_PIDS+=($!)
    wait_for bob/.lock "recv --wait" 15 && ok "recv --wait holds the home" || fail "no lock"
    [ "$(stat -c %a bob/.lock)" = 600 ] && ok "lock file 0600" || fail "lock mode"
    expect "send refused while recv --wait holds the home" 1 \
        "is in use by \`kurer recv --wait\` (pid ${BG_PIDS[-1]})" \
        "$K" send --home bob --to anna@fm.dk "hej"
    expect "history refused too" 1 "one process per home" "$K" history --home bob
    kill -TERM "${BG_PIDS[-1]}"
    wait "${BG_PIDS[-1]}" 2>/dev/null
    expect "after it stopped" 0 "sent" "$K" send --home bob --to anna@fm.dk "hej"
    # A short command waits (bounded) for another short one.
    KURER_TEST_HOLD=queued "$K" send --home anna --to bob@sk.dk "holder" >hold.out 2>&1 &
    BG_PIDS+=($!)
    wait_for hold.out "queued" 15 || fail "holder never queued"
    expect "waits, then gives up" 1 "is in use by \`kurer send\`" \
        env KURER_LOCK_WAIT=1 "$K" history --home anna
    [[ "$out" == *"waiting for another kurer using anna"* ]] && ok "said it waits" ||
        fail "no waiting line: $out"
    kill -9 "${BG_PIDS[-1]}"
    wait "${BG_PIDS[-1]}" 2>/dev/null
    # A send whose message is committed but not accepted: exit 3, "queued", never "not sent".
    KURER_TEST_HOLD=queued-stop "$K" send --home anna --to bob@sk.dk "i udbakken" \
        >q.out 2>q.err &
    qpid=$!
    BG_PIDS+=($qpid)
    wait_for q.out "queued" 15 || fail "never queued"
    stop_relay
    kill -CONT "$qpid"
    wait "$qpid"
    st=$?
    [ "$st" -eq 3 ] && ok "exit 3 when queued" || fail "exit $st, want 3: $(cat q.err)"
    grep -q "queued, not yet accepted by the relay" q.err && ok "says queued" ||
        fail "stderr: $(cat q.err)"
    grep -q "not sent" q.err && fail "says not sent: $(cat q.err)" || ok "never 'not sent'"
    expect "pending in history" 0 "i udbakken (pending)" "$K" history --home anna
    expect "help documents exit 3" 0 "3 (send) queued" "$K" --help
    ;;
hostnames)
    # HOST:PORT with a DNS name everywhere (relay --listen/--metrics, kurer init --relay,
    # kurer-admin publish --relay); --relay-key as the path of relay.pub; the home keeps the
    # name as typed; `kurer relay` moves a home to another address.
    if ! getent hosts localhost >/dev/null; then
        echo "SKIP: this machine cannot resolve localhost (no /etc/hosts entry)"
        exit 77
    fi
    pki
    "$R" run --dir relay --listen localhost:0 --metrics localhost:0 --root root/root.crt \
        >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "metrics" 15 || { echo "relay did not start"; cat relay.log; exit 1; }
    ok "relay listens on localhost:0"
    PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' relay.out)
    for u in anna:anna@fm.dk:fm:CONFIDENTIAL bob:bob@sk.dk:sk:RESTRICTED; do
        IFS=: read -r h user auth cl <<<"$u"
        expect "init $h with a host name and relay.pub" 0 "device.csr" "$K" init --home "$h" \
            --user "$user" --device 1 --relay "localhost:$PORT" --relay-key relay/relay.pub \
            --root root/root.crt --kdf-min
        "$A" issue --authority "$auth" --csr "$h/device.csr" --out "$h.chain" \
            --clearance "$cl" >/dev/null || exit 1
        "$K" import --home "$h" "$h.chain" >/dev/null || exit 1
        expect "$h connects by name" 0 "" "$K" recv --home "$h"
    done
    expect "send by name" 0 "sent" "$K" send --home anna --to bob@sk.dk "via localhost"
    expect "receive by name" 0 "via localhost" "$K" recv --home bob
    expect "the home keeps the name" 0 "relay localhost:$PORT" "$K" relay --home anna
    expect "bad address" 2 "is not HOST:PORT" "$K" relay --home anna --relay "no port"
    expect "bad key file" 2 "neither 64 hex digits nor a readable file" \
        "$K" relay --home anna --relay-key /nonexistent
    expect "admin publish by name" 0 "" "$A" publish --crl sk/crl --relay "localhost:$PORT" \
        --relay-key relay/relay.pub
    # The relay moves: a send while it is away is queued (exit 3); after `kurer relay` points
    # the home at the new address, the next connection sends it.
    KURER_TEST_HOLD=queued-stop "$K" send --home anna --to bob@sk.dk "while moving" \
        >q.out 2>q.err &
    qpid=$!
    BG_PIDS+=($qpid)
    wait_for q.out "queued" 15 || fail "never queued"
    stop_relay
    kill -CONT "$qpid"
    wait "$qpid"
    st=$?
    [ "$st" -eq 3 ] && ok "queued while the relay is away (exit 3)" || fail "exit $st: $(cat q.err)"
    PORT=0
    start_relay
    expect "kurer relay moves the home" 0 "relay set to 127.0.0.1:$PORT" \
        "$K" relay --home anna --relay "127.0.0.1:$PORT"
    expect "the queued message goes with the next connection" 0 "" "$K" recv --home anna
    expect "no longer pending" 0 "while moving" "$K" history --home anna
    count "not pending" 0 "(pending)" "$out"
    "$K" relay --home bob --relay "localhost:$PORT" --relay-key "$RELAY_KEY" >/dev/null ||
        fail "bob relay"
    expect "bob receives it once" 0 "while moving" "$K" recv --home bob
    count "once" 1 "while moving" "$out"
    ;;
enrolment)
    # The administrator can compare the identity key: kurer init and kurer whoami print the
    # same hex as kurer-admin show prints for the request. A home folder that others may
    # enter is made 0700, and init says so.
    pki
    start_relay
    mkdir -m 0755 anna
    expect "init prints the identity key" 0 "identity key" "$K" init --home anna \
        --user anna@fm.dk --device 1 --relay "127.0.0.1:$PORT" --relay-key "$RELAY_KEY" \
        --root root/root.crt --kdf-min
    idk=$(printf '%s\n' "$out" | sed -n 's/^identity key *//p')
    [[ "$out" == *"anna had mode 0755; set to 0700"* ]] && ok "says the mode was fixed" ||
        fail "mode not reported: $out"
    [ "$(stat -c %a anna)" = 700 ] && ok "home is 0700" || fail "home mode $(stat -c %a anna)"
    expect "admin sees the same key" 0 "identity key $idk" "$A" show anna/device.csr
    expect "whoami before enrolment" 0 "not enrolled yet" "$K" whoami --home anna
    [[ "$out" == *"identity key     $idk"* && "$out" == *"relay            127.0.0.1:$PORT"* ]] &&
        ok "whoami: key and relay" || fail "whoami: $out"
    "$A" issue --authority fm --csr anna/device.csr --out anna.chain --clearance RESTRICTED \
        >/dev/null || exit 1
    expect "log shows the key fingerprint" 0 "key" "$A" log --authority fm
    fp=$("$K" whoami --home anna | sed -n 's/^key fingerprint *//p')
    [[ "$out" == *"key ${fp:0:16}"* ]] && ok "fingerprint matches the issuance log" ||
        fail "fingerprint ${fp:0:16} not in: $out"
    "$K" import --home anna anna.chain >/dev/null || exit 1
    expect "whoami after enrolment" 0 "valid, serial" "$K" whoami --home anna
    [[ "$out" == *"cleared for RESTRICTED"* ]] && ok "whoami: clearance" || fail "whoami: $out"
    expect "whoami json" 0 '"enrolled":true' "$K" whoami --home anna --json
    chmod 0750 anna
    expect "an opened home is made 0700 too" 0 "set to 0700" "$K" whoami --home anna
    ;;
armor)
    # Enrolment by text (issue 16, item 5): the request as armoured text, the comparison code
    # the administrator checks before signing, the chain back as text, the QR code as PNG;
    # damaged, mislabelled and trailing text refused with their own errors. The relay and init
    # take the root and the list as text too (armoured here by Python, not by our code).
    pki
    armor_file "CERTIFICATE" root/root.crt root.txt
    armor_file "REVOCATION LIST" fm/crl fm-crl.txt
    : >relay.out
    "$R" run --dir relay --listen 127.0.0.1:0 --root root.txt --crl fm-crl.txt >relay.out \
        2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { echo "relay did not start on text files"; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
    expect "init writes the armoured request" 0 "comparison code" "$K" init --home anna \
        --user anna@fm.dk --device 1 --relay "127.0.0.1:$PORT" --relay-key "$RELAY_KEY" \
        --root root.txt --kdf-min --qr-png anna.png
    code=$(printf '%s\n' "$out" | sed -n 's/^comparison code *//p')
    [[ "$code" =~ ^[0-9]{4}\ [0-9]{4}\ [0-9]{4}$ ]] && ok "code is 12 digits" || fail "code '$code'"
    head -1 anna/device.csr.txt | grep -qx -- "-----BEGIN KURER CERTIFICATE REQUEST-----" &&
        ok "BEGIN line" || fail "device.csr.txt: $(head -2 anna/device.csr.txt)"
    awk 'length($0) > 64 && !/^-----/ { bad = 1 } END { exit bad }' anna/device.csr.txt &&
        ok "lines of at most 64" || fail "a line over 64"
    [ "$(stat -c %a anna.png)" = 644 ] && head -c 8 anna.png | od -An -c | grep -q "P   N   G" &&
        ok "QR PNG, mode 0644" || fail "anna.png: $(stat -c %a anna.png)"
    expect "whoami shows the same code" 0 "comparison code  $code" "$K" whoami --home anna
    expect "whoami json" 0 "\"comparison_code\":\"$code\"" "$K" whoami --home anna --json
    expect "the PNG is not replaced" 1 "already exists" "$K" whoami --home anna --qr-png anna.png
    expect "unless --force" 0 "comparison code" "$K" whoami --home anna --qr-png anna.png --force
    expect "admin sees the text request" 0 "certificate request" "$A" show anna/device.csr.txt
    expect "a misheard code issues nothing" 1 "nothing issued" "$A" issue --authority fm \
        --csr anna/device.csr.txt --out anna.chain --code "1111 2222 3333"
    [ ! -e anna.chain ] && ok "no chain written" || fail "anna.chain written"
    expect "issue prints the code before it signs" 0 "comparison code      $code" "$A" issue \
        --authority fm --csr anna/device.csr.txt --out anna.chain --armor --code "${code// /}"
    head -1 anna.chain | grep -qx -- "-----BEGIN KURER CERTIFICATE CHAIN-----" &&
        ok "armoured chain" || fail "anna.chain: $(head -1 anna.chain)"
    expect "admin verifies the text chain" 0 "valid DEVICE certificate" "$A" verify \
        --root root/root.crt anna.chain
    # Damage: a changed character (checksum), junk after END, a line lost, a chain labelled
    # as a request with a correct checksum (what it holds decides).
    sed '2s/^\(.\)./\1A/;2s/^\(.\)AA/\1B/' anna.chain >damaged.chain
    cmp -s damaged.chain anna.chain && fail "damage did nothing"
    expect "damaged text" 1 "checksum does not match" "$K" import --home anna damaged.chain
    { cat anna.chain; echo "-- sent from my phone"; } >junk.chain
    expect "trailing junk" 1 "malformed armoured text" "$K" import --home anna junk.chain
    sed '3d' anna.chain >short.chain
    expect "a lost line" 1 "short.chain is not valid armoured text: armoured text is damaged" \
        "$K" import --home anna short.chain
    python3 - anna.chain anna.bin <<'PY' || fail "unarmour"
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
open(sys.argv[2], "wb").write(base64.b64decode(
    "".join(l for l in lines[1:] if l and not l.startswith(("=", "-")))))
PY
    armor_file "CERTIFICATE REQUEST" anna.bin relabel.chain
    expect "mislabelled text" 1 "certificate request" "$K" import --home anna relabel.chain
    expect "admin: mislabelled" 1 "labelled CERTIFICATE REQUEST but holds a certificate chain" \
        "$A" show relabel.chain
    expect "the armoured chain imports" 0 "imported this device's certificate chain" \
        "$K" import --home anna anna.chain
    expect "and the device is enrolled" 0 "valid, serial" "$K" whoami --home anna
    ;;
invite)
    # Online enrolment end to end (issue 16, item 5): invite -> init --invite (waiting) ->
    # pending -> approve -> the device imports its chain and sends a message; the later
    # import --invite-status path; a rejection.
    pki
    start_relay
    device bob bob@sk.dk 1 sk
    invite anna@fm.dk 1
    [[ "$CODE" =~ ^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}-[0-9A-HJKMNP-TV-Z]$ ]] &&
        ok "code: 16 base32 characters and a check character" || fail "code '$CODE'"
    ! grep -rq -- "$CODE" fm/invites && ok "the authority keeps no code" || fail "code in fm/invites"
    [ "$(stat -c %a "fm/invites/$INVITE_ID")" = 600 ] && ok "record 0600" || fail "record mode"
    # the QR code of a code is the code: 0600, and never written through a link
    "$A" invite --authority fm --user anna@fm.dk --device 11 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --qr-png code.png >/dev/null || fail "invite --qr-png"
    [ "$(stat -c %a code.png)" = 600 ] && ok "invitation QR PNG 0600" || fail "QR PNG mode"
    ln -s elsewhere.png link.png
    expect "a link as --qr-png is refused" 1 "EPERM" "$A" invite --authority fm --user \
        anna@fm.dk --device 12 --relay "127.0.0.1:$PORT" --relay-key "$RELAY_KEY" --qr-png \
        link.png --force --json
    [ ! -e elsewhere.png ] && ok "nothing written through the link" || fail "written via link"
    enrol_init anna anna@fm.dk 1 "$CODE" --wait 60 >anna.out 2>&1 &
    init_pid=$!
    BG_PIDS+=("$init_pid")
    for ((i = 0; i < 100; i++)); do
        out=$(admin_q pending 2>&1)
        [[ "$out" == *"bound to this authority's invitation"* ]] && break
        sleep 0.2
    done
    [[ "$out" == *"anna@fm.dk device 1"* && "$out" == *"1 request waiting"* ]] &&
        ok "pending lists the request" || fail "pending: $out"
    code=$(sed -n 's/^comparison code *//p' anna.out)
    [[ -n "$code" && "$out" == *"comparison code  $code"* ]] &&
        ok "pending shows the device's comparison code" || fail "code '$code' not in: $out"
    expect "pending json" 0 '"bound":true' admin_q pending --json
    expect "approve" 0 "approved anna@fm.dk device 1" admin_q approve "${INVITE_ID:0:8}" \
        --code "$code" --clearance RESTRICTED
    wait "$init_pid"
    st=$?
    [ "$st" = 0 ] && grep -q "approved: imported this device's certificate chain" anna.out &&
        ok "the waiting init imported its chain" || { fail "init exit $st:"; cat anna.out; }
    expect "anna is enrolled" 0 "cleared for RESTRICTED" "$K" whoami --home anna
    expect "anna sends" 0 "sent" "$K" send --home anna --to bob@sk.dk "hej fra en ny enhed"
    expect "bob receives it" 0 "hej fra en ny enhed" "$K" recv --home bob
    expect "the queue is empty" 0 "0 requests waiting" admin_q pending
    expect "approve again: nothing waits" 1 "no waiting request" admin_q approve \
        "${INVITE_ID:0:8}"
    # The other way: init returns at once, import --invite-status fetches the chain later.
    invite anna@fm.dk 2
    expect "init without --wait" 0 "not approved yet" enrol_init anna2 anna@fm.dk 2 "$CODE"
    expect "status: still waiting" 3 "not approved yet" "$K" import --home anna2 --invite-status
    expect "approve 2" 0 "approved" admin_q approve "$INVITE_ID"
    # Someone who learnt the id (not the code) polls with wrong proofs, more often than
    # invite_failures_max (5): refused each time, and the device still gets its chain (paced:
    # every poll is an NK handshake, nk_rate 4 a second from one address).
    for i in 1 2 3 4 5 6; do
        sleep 0.5
        expect "a wrong poll proof $i" 0 "EINVITEMAC" "$TAMPER" poll "127.0.0.1:$PORT" \
            "$RELAY_KEY" "$CODE"
    done
    expect "status: imported" 0 "imported this device's certificate chain" "$K" import \
        --home anna2 --invite-status
    expect "anna2 enrolled" 0 "valid, serial" "$K" whoami --home anna2
    # A rejection reaches the device as EREJECTED.
    invite anna@fm.dk 3
    enrol_init anna3 anna@fm.dk 3 "$CODE" >/dev/null 2>&1 || fail "init anna3"
    expect "reject" 0 "rejected anna@fm.dk device 3" admin_q reject "${INVITE_ID:0:10}"
    expect "the device is told" 1 '"code":"EREJECTED"' "$K" import --home anna3 \
        --invite-status --json
    # the relay's log names an invitation by a prefix of its id, never by the whole id
    grep -q "${INVITE_ID:0:8}" relay.log && ok "the log names the invitation by its prefix" ||
        fail "no ${INVITE_ID:0:8} in relay.log"
    ! grep -q "$INVITE_ID" relay.log && ok "the whole id is not logged" || fail "the id is logged"
    ;;
invite_refusals)
    # Every refusal with its typed error: a mistyped, a wrong, a reused and an expired code, a
    # request altered on the way to the relay (refused by the relay) and one swapped by a relay
    # (refused by the authority), another device than invited, and the rate limit. Every
    # refused submit or poll is charged to the address (here 127.0.0.1), whatever the reason.
    pki
    printf 'invite_rate = 10\ninvite_failures_max = 2\n' >relay.conf
    : >relay.out
    "$R" run --config relay.conf --dir relay --listen 127.0.0.1:0 --root root/root.crt \
        --crl fm/crl --metrics 127.0.0.1:0 >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { echo "relay did not start"; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
    invite anna@fm.dk 1
    good=$CODE
    expect "a mistyped code creates nothing" 1 "mistyped" enrol_init m anna@fm.dk 1 \
        "${good:0:20}$([ "${good:20}" = 0 ] && echo 1 || echo 0)"
    [ ! -e m ] && ok "no home left" || fail "home m created"
    # (refused attempts from this address: 1)
    expect "another device than invited" 1 '"code":"ESUBJECT"' enrol_init d anna@fm.dk 2 \
        "$good" --json
    # flip: altered after its MACs: the relay refuses it and the invitation stays unused (2)
    "$K" init --home t --user anna@fm.dk --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    expect "altered on the way: refused by the relay" 0 "EINVITEMAC" "$TAMPER" flip \
        "127.0.0.1:$PORT" "$RELAY_KEY" "$good" t/device.csr
    expect "the invitation still works" 0 "waiting for the administrator" enrol_init anna \
        anna@fm.dk 1 "$good"
    expect "a reused code" 1 '"code":"EINVITEUSED"' enrol_init r anna@fm.dk 1 "$good" --json # 3
    # swap: a relay's own request (it can make the relay MAC): taken, but not bound
    invite anna@fm.dk 5
    "$K" init --home s --user anna@fm.dk --device 5 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    "$K" init --home s2 --user anna@fm.dk --device 5 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    expect "a swapped request reaches the queue" 0 "OK" "$TAMPER" swap "127.0.0.1:$PORT" \
        "$RELAY_KEY" "$CODE" s/device.csr s2/device.csr
    expect "pending says it is not bound" 0 "NOT BOUND: altered on the way" admin_q pending
    expect "approve refuses it" 1 '"code":"EINVITEMAC"' admin_q approve "$INVITE_ID" --json
    count "nothing issued" 0 "device 5" "$("$A" log --authority fm 2>&1)"
    # an invitation takes invite_failures_max (2) wrong MACs, then it is locked (4, 5, 6)
    invite anna@fm.dk 6
    "$TAMPER" flip "127.0.0.1:$PORT" "$RELAY_KEY" "$CODE" t/device.csr >/dev/null
    "$TAMPER" flip "127.0.0.1:$PORT" "$RELAY_KEY" "$CODE" t/device.csr >/dev/null
    expect "a locked invitation" 1 '"code":"ERATE"' enrol_init l anna@fm.dk 6 "$CODE" --json
    invite anna@fm.dk 4 1s
    sleep 2.2
    expect "an expired code" 1 '"code":"EINVITEEXPIRED"' enrol_init e anna@fm.dk 4 "$CODE" \
        --json # 7
    # wrong codes: each counted against this address (8, 9, 10); at invite_rate (10) a
    # minute every attempt from it is refused with ERATE
    for i in 1 2 3; do
        expect "wrong code $i" 1 '"code":"EINVITE"' enrol_init "w$i" anna@fm.dk 1 \
            "$(unknown_code)" --json
    done
    expect "rate limit after 10 refusals" 1 '"code":"ERATE"' enrol_init w5 anna@fm.dk 1 \
        "$(unknown_code)" --json
    invite anna@fm.dk 7
    expect "also for a good code now" 1 '"code":"ERATE"' enrol_init w6 anna@fm.dk 7 "$CODE" \
        --json
    # counted: what was refused, why, and what was taken
    metrics=$(curl -s "http://$(sed -n 's/^metrics //p' relay.out)/metrics")
    for m in 'kurer_invite_attempts_rate_limited_total [1-9]' 'kurer_invites_registered_total 5' \
        'kurer_enrol_requests_submitted_total 2' 'kurer_enrol_attempts_refused_total [1-9]' \
        'kurer_rejections_total{reason="EINVITEMAC"} [1-9]' \
        'kurer_rejections_total{reason="EINVITE"} 3' \
        'kurer_rejections_total{reason="EINVITEUSED"} 1' \
        'kurer_rejections_total{reason="EINVITEEXPIRED"} 1'; do
        grep -q "^$m" <<<"$metrics" && ok "metric $m" || fail "metric $m not in: $(grep -i 'invite\|enrol' <<<"$metrics")"
    done
    ;;
invite_hostile_relay)
    # A code for anna@fm.dk device 8 used for a request for chief@fm.dk device 7 (both MACs
    # right: the code's holder can make them), let through by a relay that skips its own check
    # and lists it as the invitation's user and device (here: its store rewritten while it is
    # stopped, relay_store_edit.c). pending shows what the request names and that it is not
    # bound; approve refuses it (ESUBJECT) and issues nothing.
    pki
    start_relay
    invite anna@fm.dk 8
    stop_relay
    "$STORE_EDIT" relay "$INVITE_ID" chief@fm.dk 7 || fail "store edit to chief"
    start_relay
    expect "the relay takes a request for chief" 0 "not approved yet" enrol_init c chief@fm.dk \
        7 "$CODE"
    stop_relay
    "$STORE_EDIT" relay "$INVITE_ID" anna@fm.dk 8 || fail "store edit back to anna"
    start_relay
    expect "pending shows the request's own user and device" 0 "chief@fm.dk device 7" \
        admin_q pending
    count "never the relay's" 0 "anna@fm.dk device 8" "$out"
    [[ "$out" == *"NOT BOUND: it names another user or device than the invitation's"* ]] &&
        ok "pending says it is not bound" || fail "pending: $out"
    expect "pending json" 0 '"not_bound":"ESUBJECT"' admin_q pending --json
    expect "approve refuses it" 1 '"code":"ESUBJECT"' admin_q approve "$INVITE_ID" --json
    count "nothing issued" 0 "chief@fm.dk" "$("$A" log --authority fm 2>&1)"
    [ ! -e "fm/invites/$INVITE_ID.chain" ] && ok "no chain kept" || fail "a chain was kept"
    # the honest path through the same relay still works
    invite anna@fm.dk 9
    enrol_init a9 anna@fm.dk 9 "$CODE" >/dev/null 2>&1 || fail "init a9"
    expect "a bound request is approved" 0 "approved anna@fm.dk device 9" admin_q approve \
        "$INVITE_ID"
    ;;
net_errors)
    # Each network failure has its own words and code.
    setup
    "$K" relay --home anna --relay 127.0.0.1:1 >/dev/null || fail "relay change"
    expect "refused" 1 "cannot reach relay 127.0.0.1:1: connection refused" "$K" recv --home anna
    expect "refused json code" 1 '"code":"ECONNREFUSED"' "$K" recv --home anna --json
    "$K" relay --home anna --relay no-such-host.invalid:4000 >/dev/null 2>&1 || fail "relay name"
    expect "name resolution" 1 \
        "cannot reach relay no-such-host.invalid:4000: host name could not be resolved" \
        "$K" recv --home anna
    "$K" relay --home anna --relay "127.0.0.1:$PORT" --relay-key "$(printf '%064d' 7)" \
        >/dev/null || fail "relay key change"
    expect "wrong relay key" 1 \
        "relay 127.0.0.1:$PORT closed the handshake: wrong --relay-key, or not a Kurér relay" \
        "$K" recv --home anna
    expect "wrong key json" 1 '"code":"EHANDSHAKE"' "$K" recv --home anna --json
    expect "admin publish, wrong key" 1 "closed the handshake" "$A" publish --crl sk/crl \
        --relay "127.0.0.1:$PORT" --relay-key "$(printf '%064d' 7)"
    expect "admin publish, refused" 1 "cannot reach relay 127.0.0.1:1: connection refused" \
        "$A" publish --crl sk/crl --relay 127.0.0.1:1 --relay-key relay/relay.pub
    # Something that accepts and never answers: the handshake deadline (10 s).
    python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(60)' >silent.port &
    BG_PIDS+=($!)
    wait_for silent.port "[0-9]" 10 || fail "no silent listener"
    "$K" relay --home anna --relay "127.0.0.1:$(cat silent.port)" --relay-key "$RELAY_KEY" \
        >/dev/null || fail "relay change"
    expect "timeout" 1 "did not answer in time" "$K" recv --home anna
    "$K" relay --home anna --relay "127.0.0.1:$PORT" >/dev/null || fail "relay back"
    expect "back to normal" 0 "" "$K" recv --home anna
    # A second relay on a port in use.
    "$R" init --dir relay2 >/dev/null || exit 1
    expect "relay address in use" 1 "127.0.0.1:$PORT: address already in use" \
        "$R" run --dir relay2 --listen "127.0.0.1:$PORT" --root root/root.crt
    ;;
import_connects)
    # Importing the own chain connects once (prekeys), so others can send at once; when the
    # relay cannot be reached it says so, and senders are told the device has not connected.
    pki
    start_relay
    for u in anna:anna@fm.dk:fm bob:bob@sk.dk:sk; do
        IFS=: read -r h user auth <<<"$u"
        "$K" init --home "$h" --user "$user" --device 1 --relay "127.0.0.1:$PORT" \
            --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
        "$A" issue --authority "$auth" --csr "$h/device.csr" --out "$h.chain" >/dev/null || exit 1
    done
    expect "import connects" 0 "connected to relay 127.0.0.1:$PORT: prekeys uploaded" \
        "$K" import --home bob bob.chain
    expect "import json" 0 '"kind":"own_chain","result":"imported"' \
        "$K" import --home anna anna.chain --json
    [[ "$out" == *'"enrolled":true'* && "$out" == *'"connected":true'* ]] &&
        ok "json: enrolled and connected" || fail "json: $out"
    expect "send without a recv first" 0 "sent" "$K" send --home anna --to bob@sk.dk "hej"
    expect "bob receives" 0 "hej" "$K" recv --home bob
    # carl's relay address is wrong when he imports: told, still enrolled (exit 0).
    "$K" init --home carl --user carl@sk.dk --device 1 --relay 127.0.0.1:1 \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority sk --csr carl/device.csr --out carl.chain >/dev/null || exit 1
    expect "import without the relay" 0 "nobody can send to this device until it has connected" \
        "$K" import --home carl carl.chain
    [[ "$out" == *"connection refused"* ]] && ok "says why" || fail "no reason: $out"
    expect "sender is told carl never connected" 1 \
        "unknown user carl@sk.dk: it has no enrolled device that has connected to the relay yet" \
        "$K" send --home anna --to carl@sk.dk "hej carl"
    "$K" relay --home carl --relay "127.0.0.1:$PORT" >/dev/null || fail "carl relay"
    expect "carl connects" 0 "" "$K" recv --home carl
    expect "now it works" 0 "sent" "$K" send --home anna --to carl@sk.dk "hej carl"
    expect "revocation list json" 0 '"kind":"revocation_list","result":"not_newer"' \
        "$K" import --home anna sk/crl --json
    ;;
recv_wait)
    # --wait 0 is "what is queued now"; a --wait that loses its connection reconnects.
    setup
    expect "send" 0 "sent" "$K" send --home anna --to bob@sk.dk "eins"
    expect "--wait 0 receives what is queued and exits 0" 0 "eins" "$K" recv --home bob --wait 0
    # A copy of bob's home connecting as the same device: before instances (docs/protocol.md
    # 1.1) the relay dropped the waiting connection (EBUSY) and the copies took turns, splitting
    # bob's messages. Now the copy is refused and the waiting recv is told, and ends.
    cp -a bob bob-copy
    rm -f bob-copy/.lock
    "$K" recv --home bob --wait 25 >wait.out 2>wait.err &
    wpid=$!
    BG_PIDS+=($wpid)
    wait_for bob/.lock "recv --wait" 10 || fail "recv --wait did not start"
    sleep 1
    expect "the copy is refused" 1 "in use by another copy of this home" "$K" recv --home bob-copy
    wait "$wpid" 2>/dev/null
    st=$?
    [ "$st" -eq 1 ] && grep -q "in use by another copy of this home" wait.err &&
        ok "the waiting recv is told and ends" || fail "recv --wait: exit $st: $(cat wait.err)"
    # The remedy (docs/client.md): keep one copy as a restored backup, a new instance.
    "$K" backup --home bob --out bob.backup >/dev/null || exit 1
    rm -rf bob bob-copy
    "$K" restore --home bob bob.backup >/dev/null || exit 1
    expect "send to the restored home" 0 "sent" "$K" send --home anna --to bob@sk.dk "zwei"
    expect "the restored home receives" 0 "zwei" "$K" recv --home bob --wait 0
    # The relay restarts during the wait (same port, if it is still free).
    "$K" recv --home bob --wait 30 >wait2.out 2>wait2.err &
    wpid=$!
    BG_PIDS+=($wpid)
    wait_for bob/.lock "recv --wait" 10 || fail "recv --wait did not start"
    sleep 1
    stop_relay
    sleep 1
    "$R" run --dir relay --listen "127.0.0.1:$PORT" --root root/root.crt --crl fm/crl \
        --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    if wait_for relay.out "listening" 10; then
        expect "send after the restart" 0 "sent" "$K" send --home anna --to bob@sk.dk "drei"
        wait_for wait2.out "drei" 20 && ok "received after the relay restarted" ||
            fail "not received after restart: $(cat wait2.out) $(cat wait2.err)"
    else
        ok "relay restart skipped: port $PORT was taken meanwhile"
    fi
    kill -TERM "$wpid"
    wait "$wpid" 2>/dev/null
    ;;
relay_cli)
    # kurer-relay: one relay per folder, --version, --log-level in any case, configuration
    # errors that name the key, owner-only store files, key file errors with path and mode.
    pki
    expect "version" 0 "kurer-relay " "$R" --version
    : >relay.out
    "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt --log-level INFO \
        >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 && ok "--log-level INFO accepted" || fail "no start"
    expect "second relay on the same folder" 1 "is in use by another kurer-relay (pid $RELAY_PID)" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt
    for f in relay/relay.db relay/relay.db-wal relay/relay.db-shm relay/.lock; do
        [ ! -e "$f" ] || [ "$(stat -c %a "$f")" = 600 ] && ok "$f is 0600" ||
            fail "$f mode $(stat -c %a "$f")"
    done
    stop_relay
    expect "bad log level" 2 "unknown level (debug, info, warn, error, off)" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt --log-level loud
    printf 'max_record = 100000\n' >bad1.conf
    expect "out of range" 2 "bad1.conf:1: max_record = 100000 is out of range (128..65535)" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt --config bad1.conf
    printf '# c\nmailbox_max = 5\nno_such_key = 1\n' >bad2.conf
    expect "unknown key" 2 "bad2.conf:3: unknown key 'no_such_key'" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt --config bad2.conf
    # Blank lines count: the number is the file's line.
    printf '# c\n\nmax_record = 1000\n\nno_such = 3\n' >bad3.conf
    expect "line numbers with blank lines" 2 "bad3.conf:5: unknown key 'no_such'" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt --config bad3.conf
    chmod 0644 relay/relay.key
    expect "key file mode" 1 "$W/relay/relay.key has mode 0644: it must be readable by its owner only" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt
    chmod 0600 relay/relay.key
    mv relay/store.key store.key.away
    expect "missing key file" 1 "$W/relay/store.key: No such file or directory" \
        "$R" run --dir relay --listen 127.0.0.1:0 --root root/root.crt
    mv store.key.away relay/store.key
    chmod 0644 relay/relay.db
    start_relay
    [ "$(stat -c %a relay/relay.db)" = 600 ] && ok "relay.db made 0600" || fail "relay.db mode"
    ;;
messages)
    # What send refuses before anything goes out, and the real length limit.
    setup
    expect "empty" 1 "the message text is empty" "$K" send --home anna --to bob@sk.dk ""
    expect "not UTF-8" 1 "message text is not valid UTF-8" \
        "$K" send --home anna --to bob@sk.dk $'caf\xe9'
    max=$("$K" send --help | sed -n 's/.*at most \([0-9]*\) bytes.*/\1/p')
    [ -n "$max" ] && ok "help names the limit ($max)" || fail "no limit in --help"
    long=$(head -c "$max" /dev/zero | tr '\0' x)
    expect "exactly the limit is sent" 0 "sent" "$K" send --home anna --to bob@sk.dk "$long"
    expect "one byte more is refused" 1 "message too long: at most $max bytes" \
        "$K" send --home anna --to bob@sk.dk "${long}y"
    expect "bob receives the long one" 0 "xxxxxxxx" "$K" recv --home bob
    expect "yourself" 1 "you cannot send to yourself; your other devices get sync copies" \
        "$K" send --home anna --to anna@fm.dk "hej mig"
    expect "positional recipient" 2 "missing --to USER@AUTH" \
        "$K" send --home anna bob@sk.dk "hej"
    "$K" init --home carl --user carl@sk.dk --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    expect "not enrolled" 1 \
        "this device is not enrolled yet: import your certificate with kurer import" \
        "$K" send --home carl --to bob@sk.dk "hej"
    expect "peer chain into an unenrolled home" 0 "kept as a peer certificate (bob@sk.dk device 1)" \
        "$K" import --home carl bob.chain
    [[ "$out" == *"this device itself (carl@sk.dk device 1) is still not enrolled"* ]] &&
        ok "says carl is still not enrolled" || fail "no note: $out"
    expect "json lines documented" 0 "JSON lines" "$K" history --help
    expect "recv json lines documented" 0 "JSON lines" "$K" recv --help
    ;;
key_change)
    # Bob's device 1 is re-enrolled: a new home with new keys, a new certificate for the same
    # user and device id (kurer-admin issue --replace), and anna writes to it at once, without
    # bob writing first. She is told once; the new device reads it; the old keys cannot.
    setup
    expect "first contact" 0 "sent" "$K" send --home anna --to bob@sk.dk "foer"
    expect "bob receives" 0 "anna@fm.dk [UNCLASSIFIED] foer" "$K" recv --home bob
    # One message waits in anna's outbox, encrypted for the old key (the send was killed after
    # its commit): it must reach the new device, encrypted again, not the old keys' ciphertext.
    KURER_TEST_HOLD=queued "$K" send --home anna --to bob@sk.dk "i udbakken" >hold.out 2>&1 &
    BG_PIDS+=($!)
    wait_for hold.out "queued" 15 && ok "a send held after its outbox commit" || fail "no hold"
    kill -9 "${BG_PIDS[-1]}"
    wait "${BG_PIDS[-1]}" 2>/dev/null
    cp sk/crl sk-before.crl
    mv bob bob-old
    "$K" init --home bob --user bob@sk.dk --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    expect "issue without --replace refused" 1 "bob@sk.dk device 1 already holds serial" \
        "$A" issue --authority sk --csr bob/device.csr --out bob.chain --force
    expect "issue --replace" 0 '"superseded":[' \
        "$A" issue --authority sk --csr bob/device.csr --out bob.chain --force --replace --json
    new_serial=$(sed -n 's/.*"serial":\([0-9]*\).*/\1/p' <<<"$out")
    old_serial=$(sed -n 's/.*"superseded":\[\([0-9]*\)\].*/\1/p' <<<"$out")
    [ -n "$new_serial" ] && [ -n "$old_serial" ] && [ "$new_serial" != "$old_serial" ] &&
        ok "new serial $new_serial supersedes $old_serial" || fail "serials: $out"
    expect "the new device imports and connects" 0 "" "$K" import --home bob bob.chain
    # anna still holds the old chain and the old session: the directory has the new one.
    expect "anna sends at once" 0 "sent to bob@sk.dk" \
        "$K" send --home anna --to bob@sk.dk "efter nyt certifikat"
    count "told once, naming device, serial and issuer" 1 \
        "^bob@sk.dk device 1 has a new key: certificate $new_serial issued by sk.dk$" "$out"
    expect "the new device reads it" 0 "anna@fm.dk [UNCLASSIFIED] efter nyt certifikat" \
        "$K" recv --home bob
    [[ "$out" == *"anna@fm.dk [UNCLASSIFIED] i udbakken"* ]] &&
        ok "the message queued for the old key, encrypted again, read too" ||
        fail "queued message not read by the new device: $out"
    count "no message dropped" 0 "dropped a message" "$out"
    expect "next send" 0 "sent" "$K" send --home anna --to bob@sk.dk "igen"
    count "not told again on the next send" 0 "has a new key" "$out"
    expect "anna's recv" 0 "" "$K" recv --home anna
    count "not told again by recv" 0 "has a new key" "$out"
    expect "bob reads the second" 0 "igen" "$K" recv --home bob
    expect "bob answers" 0 "sent" "$K" send --home bob --to anna@fm.dk "svar fra ny enhed"
    expect "anna reads the answer" 0 "bob@sk.dk [UNCLASSIFIED] svar fra ny enhed" \
        "$K" recv --home anna
    expect "verify shows the new certificate" 0 "serial $new_serial" \
        "$K" verify --home anna --offline bob@sk.dk
    # The old keys cannot read what is sent now. A relay that has not heard of the revocation
    # and forgot the new copy (restarted with the old list) delivers to the old home, which
    # holds the old keys: the message does not decrypt there, its text is never shown.
    expect "sent for the new key" 0 "sent" "$K" send --home anna --to bob@sk.dk "kun til ny"
    stop_relay
    cp sk/crl sk-after.crl && cp sk-before.crl sk/crl
    start_relay
    expect "the old keys cannot read it" 0 "dropped a message from anna@fm.dk device 1" \
        "$K" recv --home bob-old
    count "its text not shown" 0 "kun til ny" "$out"
    cp sk-after.crl sk/crl
    kill -HUP "$RELAY_PID"
    sleep 0.5
    expect "the old device is refused, naming its own certificate" 1 \
        "the relay refused this device's own certificate: certificate revoked" \
        "$K" recv --home bob-old
    # Dave's device is re-enrolled and writes first: anna hears of the key change from his
    # pre-key message, once, and reads it.
    device dave dave@sk.dk 1 sk
    expect "anna writes to dave" 0 "sent" "$K" send --home anna --to dave@sk.dk "hej dave"
    expect "dave reads" 0 "hej dave" "$K" recv --home dave
    rm -rf dave
    "$K" init --home dave --user dave@sk.dk --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority sk --csr dave/device.csr --out dave.chain --force --replace \
        >/dev/null || exit 1
    kill -HUP "$RELAY_PID"
    "$K" import --home dave dave.chain >/dev/null || exit 1
    expect "dave writes first" 0 "sent" "$K" send --home dave --to anna@fm.dk "ny noegle"
    expect "anna reads it" 0 "dave@sk.dk [UNCLASSIFIED] ny noegle" "$K" recv --home anna
    count "told once by recv" 1 "^dave@sk.dk device 1 has a new key: certificate" "$out"
    expect "anna replies on the new session" 0 "sent" "$K" send --home anna --to dave@sk.dk "svar"
    count "not told again" 0 "has a new key" "$out"
    expect "dave reads the reply" 0 "anna@fm.dk [UNCLASSIFIED] svar" "$K" recv --home dave
    expect "history lists both key changes" 0 "bob@sk.dk device 1 has a new key" \
        "$K" history --home anna
    # A peer revoked without a replacement: refused, naming the peer's device and the reason.
    device carl carl@sk.dk 1 sk
    expect "anna writes to carl" 0 "sent" "$K" send --home anna --to carl@sk.dk "hej carl"
    "$A" revoke --authority sk --cert carl.chain --reason device-lost >/dev/null || exit 1
    kill -HUP "$RELAY_PID"
    sleep 0.5
    expect "revoked peer refused by name" 1 \
        "refused: the certificate of carl@sk.dk device 1: certificate revoked" \
        "$K" send --home anna --to carl@sk.dk "efter spaerring"
    ;;
*)
    echo "unknown case $CASE"
    exit 2
    ;;
esac
if [ "$failed" -ne 0 ]; then
    echo "relay log:"
    tail -20 relay.log
    exit 1
fi
exit 0
