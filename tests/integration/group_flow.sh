#!/usr/bin/env bash
# group_<case> (issue 11): groups through the real kurer, kurer-admin and kurer-relay on
# 127.0.0.1 (port 0), with the helpers of client_flow.sh (sourced); every wait is bounded.
#
# usage: group_flow.sh CASE KURER KURER_ADMIN KURER_RELAY CLIENT_HELPER GROUP_HELPER STORE_PAGES
set -uo pipefail
if [ -z "${CLIENT_FLOW_DETACHED:-}" ]; then
    export CLIENT_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
CLIENT_FLOW_LIB=1
# shellcheck source=client_flow.sh
source "$(dirname "$(realpath "$0")")/client_flow.sh" "$@"
GH=${CHAT:-} # (client_flow.sh's sixth argument) tests/integration/group_helper.c
PAGES=${7:-} # tests/integration/store_pages.c (client_receipts.sh says how the store is read)

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

# gid OUTPUT: the group id printed by kurer group create
gid() { printf '%s\n' "$1" | sed -n 's/^created group .* \([0-9a-f]\{64\}\)$/\1/p'; }

# info HOME ID FIELD: one field of kurer group info --json (python3 reads the JSON)
info() {
    "$K" group --home "$1" --json info "$2" 2>&1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); f=sys.argv[1]; print(" ".join(m["user"] for m in d["members"]) if f == "users" else " ".join(d["admins"]) if f == "admins" else d.get(f))' "$3"
}

# same NAME FIELD ID HOME...: every home shows the same value of FIELD for group ID
same() {
    local name=$1 field=$2 id=$3 first="" v h
    shift 3
    for h in "$@"; do
        v=$(info "$h" "$id" "$field")
        if [ -z "$v" ] || [ "$v" = None ]; then
            fail "$name: no $field from $h"
            return
        elif [ -z "$first" ]; then
            first=$v
        elif [ "$v" != "$first" ]; then
            fail "$name: $h has $field $v, ${1} has $first"
            return
        fi
    done
    ok "$name ($field $first)"
}

# timer_is NAME HOME ID SECONDS: HOME's state of group ID has that disappearing-message timer
timer_is() {
    local v
    v=$(info "$2" "$3" expire_timer)
    [ "$v" = "$4" ] && ok "$1" || fail "$1: expire_timer $v, want $4"
}

group_setup() {
    pki
    start_relay
    device anna anna@fm.dk 1 fm CONFIDENTIAL
    device anna2 anna@fm.dk 2 fm CONFIDENTIAL
    device bob bob@sk.dk 1 sk
    device carl carl@fm.dk 1 fm CONFIDENTIAL
}

case $CASE in
text)
    # Three users, anna with two devices: everyone reads everyone.
    group_setup
    expect "create" 0 "created group krisestab" "$K" group --home anna create krisestab \
        bob@sk.dk carl@fm.dk
    ID=$(gid "$out")
    [ -n "$ID" ] || fail "no group id in: $out"
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "bob sees the group" 0 "krisestab" "$K" group --home bob list
    expect "carl sees the members" 0 "bob@sk.dk" "$K" group --home carl info "${ID:0:8}"
    expect "anna sends" 0 "sent to group $ID" "$K" send --home anna --group "$ID" "moede kl 10"
    for h in anna2 bob carl; do
        expect "$h reads anna" 0 "anna@fm.dk in group ${ID:0:16} [UNCLASSIFIED] moede kl 10" \
            "$K" recv --home "$h"
    done
    expect "bob answers" 0 "sent to group" "$K" send --home bob --group "${ID:0:10}" "jeg kommer"
    for h in anna anna2 carl; do
        expect "$h reads bob" 0 "bob@sk.dk in group ${ID:0:16} [UNCLASSIFIED] jeg kommer" \
            "$K" recv --home "$h"
    done
    expect "a second message needs no new key" 0 "sent to group" env KURER_LOG_LEVEL=info \
        "$K" send --home anna --group "$ID" "dagsorden"
    count "the one ciphertext went through the relay's fan-out" 0 "group_fanout_fallback" "$out"
    expect "carl reads it" 0 "dagsorden" "$K" recv --home carl
    expect "history shows the group" 0 "-> group ${ID:0:16} [UNCLASSIFIED] moede kl 10" \
        "$K" history --home anna
    expect "history json names the group" 0 "\"group\":\"$ID\"" "$K" history --home bob --json
    same "all agree" revision "$ID" anna anna2 bob carl
    same "all agree" users "$ID" anna anna2 bob carl
    same "all agree" admins "$ID" anna anna2 bob carl
    # A file to the group: uploaded once (one blob on the relay), saved by every member device.
    head -c 300000 /dev/urandom >bilag.bin
    expect "a file to the group" 0 "sent to group $ID [UNCLASSIFIED] with 1 file" \
        env KURER_LOG_LEVEL=info "$K" send --home anna --group "$ID" --file bilag.bin "bilag"
    count "uploaded once" 1 "attachment_uploaded" "$out"
    for h in anna2 bob carl; do
        mkdir -p "files-$h"
        expect "$h saves it" 0 "attachment: bilag.bin (300000 bytes) saved" \
            "$K" recv --home "$h" --save-dir "files-$h"
        cmp -s bilag.bin "files-$h/bilag.bin" && ok "$h has the same bytes" ||
            fail "$h: the saved file differs"
    done
    ;;
ceiling)
    # bob (RESTRICTED) lowers the ceiling: a CONFIDENTIAL send is refused naming him; carl
    # (CONFIDENTIAL) quarantines nothing at or below his clearance.
    group_setup
    expect "create" 0 "created group" "$K" group --home anna create udvalg bob@sk.dk carl@fm.dk
    ID=$(gid "$out")
    expect "info shows the ceiling" 0 "ceiling RESTRICTED" "$K" group --home anna info "$ID"
    expect "named" 0 "ceiling set by bob@sk.dk device 1" "$K" group --home anna info "$ID"
    expect "confidential refused" 1 "above the group's ceiling: the clearance of member bob@sk.dk device 1 is RESTRICTED" \
        "$K" send --home anna --group "$ID" --level CONFIDENTIAL "hemmeligt"
    expect "typed error" 1 '"code":"ECLEARANCE"' "$K" send --home anna --group "$ID" \
        --level CONFIDENTIAL --json "hemmeligt"
    expect "restricted goes" 0 "sent to group" "$K" send --home anna --group "$ID" \
        --level RESTRICTED "til tjenestebrug"
    expect "carl reads it" 0 "[RESTRICTED] til tjenestebrug" "$K" recv --home carl
    expect "nothing quarantined" 0 "" "$K" history --home carl
    count "no quarantine" 0 "quarantined" "$out"
    count "nothing confidential went out" 0 "hemmeligt" "$out"
    # Without bob the ceiling is carl's and anna's: CONFIDENTIAL.
    expect "remove bob" 0 "remove: done" "$K" group --home anna remove "$ID" bob@sk.dk
    expect "ceiling recomputed" 0 "ceiling CONFIDENTIAL" "$K" group --home anna info "$ID"
    expect "confidential now goes" 0 "sent to group" "$K" send --home anna --group "$ID" \
        --level CONFIDENTIAL "fortroligt"
    expect "carl reads it" 0 "[CONFIDENTIAL] fortroligt" "$K" recv --home carl
    ;;
membership)
    # A member added later does not get what was sent before; a member removed gets nothing
    # sent after, and every sender changes its key.
    group_setup
    expect "create" 0 "created group" "$K" group --home anna create sag bob@sk.dk
    ID=$(gid "$out")
    "$K" recv --home bob >/dev/null
    expect "before carl" 0 "sent to group" "$K" send --home anna --group "$ID" "foer carl"
    expect "add carl" 0 "add: done" "$K" group --home anna add "$ID" carl@fm.dk
    "$K" recv --home carl >/dev/null
    expect "carl is in" 0 "sag" "$K" group --home carl list
    expect "after carl" 0 "sent to group" "$K" send --home anna --group "$ID" "efter carl"
    expect "carl reads the later one" 0 "efter carl" "$K" recv --home carl
    # The envelope of the earlier message, as the relay stored it for bob, given to carl.
    expect "the earlier envelope does not decrypt for carl" 0 "refused" "$GH" try-decrypt anna \
        "foer carl" carl
    count "not decrypted" 0 "^decrypted" "$out"
    expect "carl's history" 0 "" "$K" history --home carl
    count "carl has not the earlier one" 0 "foer carl" "$out"
    expect "bob reads both" 0 "efter carl" "$K" recv --home bob
    expect "bob's history" 0 "foer carl" "$K" history --home bob
    expect "remove bob" 0 "remove: done" "$K" group --home anna remove "$ID" bob@sk.dk
    expect "after bob" 0 "sent to group" "$K" send --home anna --group "$ID" "uden bob"
    expect "carl reads it" 0 "uden bob" "$K" recv --home carl
    expect "again after bob" 0 "sent to group" "$K" send --home anna --group "$ID" "stadig uden bob"
    # The envelope carl is sent, captured and delivered to a member's device, decrypts (so
    # that the checks below could fail) ...
    expect "a captured envelope decrypts for a member" 0 "decrypted" "$GH" try-decrypt anna \
        "stadig uden bob" carl
    # ... and delivered to bob's device, does not: anna's key changed after the removal.
    for t in "uden bob" "stadig uden bob"; do
        expect "'$t' does not decrypt for bob" 0 "refused EUNKNOWNGROUP" "$GH" \
            try-decrypt anna "$t" bob
    done
    "$K" recv --home bob >bob.out 2>&1
    count "bob reads nothing after his removal" 0 "uden bob" "$(cat bob.out)"
    expect "bob sees he is out" 0 "" "$K" group --home bob --json info "$ID"
    count "bob is no member" 1 '"member":false' "$out"
    expect "bob cannot send" 1 "not a member" "$K" send --home bob --group "$ID" "hallo?"
    ;;
concurrent)
    # Two admins change the group at once (both on the same revision): every device agrees.
    group_setup
    device dave dave@fm.dk 1 fm CONFIDENTIAL
    expect "create" 0 "created group" "$K" group --home anna create cell bob@sk.dk carl@fm.dk
    ID=$(gid "$out")
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "promote bob" 0 "promote: done" "$K" group --home anna promote "$ID" bob@sk.dk
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "both on revision 2" 0 "revision 2" "$K" group --home bob info "$ID"
    # Neither has seen the other's change when it makes its own.
    expect "anna adds dave" 0 "add: done" "$K" group --home anna add "$ID" dave@fm.dk
    expect "bob removes carl" 0 "remove: done" "$K" group --home bob remove "$ID" carl@fm.dk
    for round in 1 2; do
        for h in anna anna2 bob carl dave; do "$K" recv --home "$h" >/dev/null; done
    done
    same "every device" revision "$ID" anna anna2 bob carl dave
    same "every device" users "$ID" anna anna2 bob carl dave
    same "every device" admins "$ID" anna anna2 bob carl dave
    expect "one revision for both" 0 "revision 3" "$K" group --home dave info "$ID"
    expect "dave in, carl out" 0 "anna@fm.dk bob@sk.dk dave@fm.dk" info anna "$ID" users
    expect "the group still works" 0 "sent to group" "$K" send --home bob --group "$ID" "alle enige"
    expect "dave reads bob" 0 "alle enige" "$K" recv --home dave
    ;;
device_revoked)
    # A member's device revoked: the others' senders change their key before the next send, so
    # the revoked device reads nothing sent after; the member's other device still does, and
    # the group's info no longer lists the device.
    group_setup
    expect "create" 0 "created group" "$K" group --home anna create cell bob@sk.dk carl@fm.dk
    ID=$(gid "$out")
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "bob writes" 0 "sent to group" "$K" send --home bob --group "$ID" "foer"
    expect "anna2 reads it" 0 "foer" "$K" recv --home anna2
    "$A" revoke --authority fm --cert anna2.chain --reason device-lost >/dev/null || exit 1
    kill -HUP "$RELAY_PID"
    sleep 0.5
    expect "bob holds the list" 0 "revocation list imported" "$K" import --home bob fm/crl
    expect "bob's info drops the device" 0 "anna@fm.dk (admin)  devices 1" "$K" group --home bob \
        info "$ID"
    expect "bob writes again" 0 "sent to group" "$K" send --home bob --group "$ID" "efter"
    expect "anna device 1 reads it" 0 "efter" "$K" recv --home anna
    expect "carl reads it" 0 "efter" "$K" recv --home carl
    expect "bob writes a third" 0 "sent to group" "$K" send --home bob --group "$ID" "igen"
    expect "a captured envelope decrypts for carl's device" 0 "decrypted" "$GH" try-decrypt bob \
        "igen" carl
    for t in efter igen; do
        expect "'$t' not for the revoked device (bob's key changed)" 0 "refused EUNKNOWNGROUP" \
            "$GH" try-decrypt bob "$t" anna2
    done
    ;;
daemon)
    # With kurer daemon holding anna's home, the group commands and send --group run in it
    # (the home's lock would refuse them otherwise), with the same output.
    group_setup
    "$K" daemon --home anna >anna.daemon.out 2>anna.daemon.err &
    BG_PIDS+=("$!")
    wait_for anna.daemon.err "daemon for" 15 || { fail "no daemon"; cat anna.daemon.err; exit 1; }
    expect "create through the daemon" 0 "created group raad" "$K" group --home anna create raad \
        bob@sk.dk
    ID=$(gid "$out")
    "$K" recv --home bob >/dev/null
    expect "send through the daemon" 0 "sent to group $ID" "$K" send --home anna --group "$ID" \
        "via daemon"
    expect "bob reads it" 0 "anna@fm.dk in group ${ID:0:16} [UNCLASSIFIED] via daemon" "$K" recv \
        --home bob
    expect "bob answers" 0 "sent to group" "$K" send --home bob --group "$ID" "svar"
    for _ in $(seq 1 50); do
        "$K" history --home anna 2>/dev/null | grep -q "svar" && break
        sleep 0.2
    done
    expect "read --group through the daemon" 0 "marked 1 message read" "$K" read --home anna \
        --group "$ID" --all
    expect "add through the daemon" 0 "add: done" "$K" group --home anna add "$ID" carl@fm.dk
    expect "info through the daemon" 0 "carl@fm.dk" "$K" group --home anna info "$ID"
    expect "list through the daemon" 0 "raad  revision 2" "$K" group --home anna list
    expect "refusal through the daemon" 1 "above the group's ceiling" "$K" send --home anna \
        --group "$ID" --level CONFIDENTIAL "nej"
    expect "bob may not remove" 1 "not an admin" "$K" group --home bob remove "$ID" carl@fm.dk
    expect "timer through the daemon" 0 "disappearing messages in group $ID: 1h after reading" \
        "$K" timer --home anna --group "${ID:0:8}" 1h
    expect "the timer in the info" 0 "disappearing messages: 1h after reading" "$K" group \
        --home anna info "$ID"
    expect "leave through the daemon" 0 "leave: done" "$K" group --home anna leave "$ID"
    "$K" recv --home bob >/dev/null
    expect "bob sees anna gone" 0 "bob@sk.dk carl@fm.dk" info bob "$ID" users
    ;;
forged)
    # Changes signed by a non-admin, unsigned, badly signed, or for an unknown group: ignored
    # everywhere, counted.
    group_setup
    expect "create" 0 "created group" "$K" group --home anna create cell bob@sk.dk carl@fm.dk
    ID=$(gid "$out")
    for h in bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "bob (no admin) is refused here" 1 "not an admin" "$K" group --home bob add "$ID" \
        dave@fm.dk
    # bob's sessions with carl's device (a group message), then the forgeries.
    expect "bob writes" 0 "sent to group" "$K" send --home bob --group "$ID" "hej"
    for mode in nonadmin unsigned badsig unknown; do
        expect "forged: $mode" 0 "" "$GH" forge bob "$ID" "$mode" carl@fm.dk
    done
    expect "carl reads bob's message" 0 "hej" "$K" recv --home carl
    expect "carl ignores them" 0 "revision 1" "$K" group --home carl info "$ID"
    count "no eve" 0 "eve@fm.dk" "$out"
    expect "all four counted" 0 "changes ignored on this home: 4" "$K" group --home carl info "$ID"
    same "carl and anna agree" users "$ID" anna carl
    expect "a real change still applies" 0 "promote: done" "$K" group --home anna promote "$ID" \
        carl@fm.dk
    "$K" recv --home carl >/dev/null
    expect "carl has it" 0 "revision 2" "$K" group --home carl info "$ID"
    ;;
receipts)
    # Receipts of a group message: each member device tells the sender pairwise, naming the
    # group; the sender counts members (of those it went to) and so does its other device; a
    # receipt from a non-member naming the group is ignored and logged.
    group_setup
    device dave dave@sk.dk 1 sk
    expect "create" 0 "created group" "$K" group --home anna create krisestab bob@sk.dk \
        carl@fm.dk
    ID=$(gid "$out")
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "anna sends" 0 "sent to group $ID" "$K" send --home anna --group "$ID" "moede kl 10"
    for h in anna2 bob carl; do
        expect "$h has it" 0 "moede kl 10" "$K" recv --home "$h"
    done
    expect "bob reads the group" 0 "marked 1 message read" "$K" read --home bob --group "${ID:0:10}" \
        --all
    expect "nothing more to read" 0 "marked 0 messages read" "$K" read --home bob --group "$ID" --all
    expect "carl's history names no receipts of his own" 0 "moede kl 10" "$K" history --home carl \
        --group "$ID"
    expect "anna takes the receipts" 0 "" "$K" recv --home anna
    expect "anna's history counts members" 0 \
        "-> group ${ID:0:16} [UNCLASSIFIED] moede kl 10 (delivered to 2 of 2 members, read by 1)" \
        "$K" history --home anna --group "$ID"
    expect "per device" 0 "bob@sk.dk device 1: delivered" "$K" history --home anna --group "$ID" \
        --verbose
    count "bob's device read it" 1 "bob@sk.dk device 1: delivered .* read " "$out"
    count "carl's device did not" 1 "carl@fm.dk device 1: delivered [^r]*$" "$out"
    expect "json fields" 0 '"members":2' "$K" history --home anna --group "$ID" --json
    count "delivered users" 1 '"delivered_users":2' "$out"
    count "read users" 1 '"read_users":1' "$out"
    # anna2 through its daemon (the methods receive and history with a group).
    "$K" daemon --home anna2 >anna2.daemon.out 2>anna2.daemon.err &
    BG_PIDS+=("$!")
    wait_for anna2.daemon.err "daemon for" 15 || { fail "no daemon"; cat anna2.daemon.err; exit 1; }
    expect "anna2 takes them too" 0 "" "$K" recv --home anna2
    expect "anna2's history the same" 0 \
        "anna@fm.dk in group ${ID:0:16} [UNCLASSIFIED] moede kl 10 (delivered to 2 of 2 members, read by 1)" \
        "$K" history --home anna2 --group "${ID:0:8}"
    expect "anna2's json through the daemon" 0 '"members":2' "$K" history --home anna2 --group \
        "$ID" --json
    count "read users there" 1 '"read_users":1' "$out"
    # history --with is the one-to-one conversation only; --group the group's messages only.
    expect "with bob: no group message" 0 "" "$K" history --home bob --with anna@fm.dk
    count "not in --with" 0 "moede kl 10" "$out"
    expect "no such group" 1 "no group abcdef" "$K" history --home anna --group abcdef
    # dave is no member: his receipt naming the group, for anna's message, is not counted.
    SENT=$("$K" history --home anna --group "$ID" --json | sed -n 's/.*"sent_at":\([0-9]*\).*/\1/p')
    [ -n "$SENT" ] || fail "no sent_at in anna's history"
    expect "dave sends a receipt naming the group" 0 "" "$GH" forge-receipt dave "$ID" "$SENT" \
        anna@fm.dk
    expect "anna ignores it" 0 "" env KURER_LOG_LEVEL=warn "$K" recv --home anna
    count "logged" 1 "group_receipt_ignored" "$out"
    expect "still 2 of 2" 0 "(delivered to 2 of 2 members, read by 1)" "$K" history --home anna \
        --group "$ID"
    expect "no dave" 0 "" "$K" history --home anna --group "$ID" --verbose
    count "dave not listed" 0 "dave@sk.dk" "$out"
    ;;
timer)
    # A group's disappearing-message timer: set by an admin (a signed change), honoured by every
    # member device; a non-admin's SET_TIMER ignored everywhere; off stops it for later messages.
    group_setup
    expect "create" 0 "created group" "$K" group --home anna create cell bob@sk.dk carl@fm.dk
    ID=$(gid "$out")
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "bob (no admin) is refused here" 1 "not an admin" "$K" timer --home bob --group "$ID" 1s
    # bob's sessions with every member device (a group message), then his forged SET_TIMER.
    expect "bob writes" 0 "sent to group" "$K" send --home bob --group "$ID" "hej"
    for u in anna@fm.dk carl@fm.dk; do
        expect "forged timer to $u" 0 "" "$GH" forge bob "$ID" timer "$u"
    done
    for h in anna anna2 carl; do "$K" recv --home "$h" >/dev/null; done
    for h in anna anna2 bob carl; do
        timer_is "the forged timer ignored on $h" "$h" "$ID" 0
    done
    for h in anna2 carl; do
        expect "counted on $h" 0 "changes ignored on this home: 1" "$K" group --home "$h" info "$ID"
    done
    expect "anna sets the timer" 0 "disappearing messages in group $ID: 3s after reading" \
        "$K" timer --home anna --group "$ID" 3s
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    for h in anna anna2 bob; do
        timer_is "the timer on $h" "$h" "$ID" 3
    done
    expect "info shows it on carl" 0 "disappearing messages: 3s after reading" "$K" group \
        --home carl info "$ID"
    printf 'bilag\n' >zebra-bilag.txt
    expect "anna sends" 0 "sent to group $ID" "$K" send --home anna --group "$ID" \
        --file zebra-bilag.txt "kodeord zebra-4711"
    expect "anna's copy counts down" 0 "kodeord zebra-4711 (disappears" "$K" history --home anna
    for h in anna2 bob carl; do
        expect "$h receives, the timer kept" 0 "zebra-4711 (disappears" "$K" recv --home "$h"
    done
    in_store "the words are in anna2's decrypted pages" 1 anna2 "zebra-"
    expect "bob reads" 0 "marked 1 message read" "$K" read --home bob --group "$ID" --all
    expect "carl reads (bob's and anna's)" 0 "marked 2 messages read" "$K" read --home carl \
        --group "${ID:0:8}" --all
    # bob's recv runs on while his countdown ends: the engine's tick deletes the message while
    # it holds the home, and the WAL is left empty.
    "$K" recv --home bob --wait 7 >bob.out 2>&1 &
    BG_PIDS+=($!)
    sleep 1
    in_store "bob live, before the expiry" 1 bob "zebra-"
    sleep 4
    in_store "bob live (file and WAL), after the expiry" 0 bob "zebra-"
    if [ -s bob/store.db-wal ]; then
        fail "bob's WAL holds $(stat -c %s bob/store.db-wal) bytes after the expiry"
    else
        ok "bob's WAL truncated after the expiry"
    fi
    wait "${BG_PIDS[-1]}"
    for h in anna anna2 bob carl; do
        expect "gone from $h's history" 0 "" "$K" history --home "$h"
        count "no zebra for $h" 0 "zebra-" "$out"
        in_store "not in $h's decrypted pages" 0 "$h" "zebra-"
    done
    expect "timer off" 0 "disappearing messages off in group $ID" "$K" timer --home anna \
        --group "$ID" off
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    timer_is "off on bob" bob "$ID" 0
    expect "anna sends again" 0 "sent to group" "$K" send --home anna --group "$ID" "efter off"
    for h in anna2 bob carl; do "$K" recv --home "$h" >/dev/null; done
    expect "bob reads" 0 "marked 1 message read" "$K" read --home bob --group "$ID" --all
    sleep 3.5
    for h in anna anna2 bob carl; do
        expect "kept on $h" 0 "efter off" "$K" history --home "$h"
        count "no countdown on $h" 0 "efter off (disappears" "$out"
    done
    ;;
*)
    echo "unknown case $CASE"
    exit 2
    ;;
esac
[ "$failed" -eq 0 ] || exit 1
