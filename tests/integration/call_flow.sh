#!/usr/bin/env bash
# call_<case>: calls between real kurer processes through a real kurer-relay on loopback
# (docs/calls.md). The relay listens for TCP on 127.0.0.2 and runs its media relay on
# 127.0.0.1; where a case needs to see or disturb the media, call_tool's shim sits on
# 127.0.0.2 at the media port (the clients send UDP to the host they reached the relay on) and
# forwards to 127.0.0.1. Every wait is bounded; everything started is stopped by PID on exit.
#
# usage: call_flow.sh CASE KURER KURER_ADMIN KURER_RELAY CALL_TOOL
set -uo pipefail
if [ -z "${CALL_FLOW_DETACHED:-}" ]; then
    export CALL_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
CASE=$1
K=$(realpath "$2")
A=$(realpath "$3")
R=$(realpath "$4")
T=$(realpath "$5")
W=$(mktemp -d /tmp/kurer-call-test-XXXXXX)
RELAY_PID=
BG_PIDS=()
cleanup() {
    local st=$?
    if [ "$st" -ne 0 ] && [ -f "$W/relay.log" ]; then
        echo "relay log (exit $st):"
        tail -20 "$W/relay.log"
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

wait_for() { # FILE SUBSTRING SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# bg NAME CMD...: runs CMD in the background, output to NAME.out, exit status to NAME.rc.
bg() {
    local name=$1
    shift
    # emptied here, before the fork: a wait_for on NAME.out must not see the last command's
    # output ("connected") before the child has truncated the file
    rm -f "$name.out" "$name.rc"
    ("$@" >"$name.out" 2>&1 </dev/null; echo $? >"$name.rc") &
    BG_PIDS+=($!)
}

# finished NAME SECONDS CODE SUBSTRING: NAME ended within SECONDS with CODE, output has SUBSTRING.
finished() {
    local name=$1 secs=$2 code=$3 sub=$4 i
    for ((i = 0; i < secs * 10; i++)); do
        [ -s "$name.rc" ] && break
        sleep 0.1
    done
    if [ ! -s "$name.rc" ]; then
        fail "$name: still running after $secs s; output:"
        sed 's/^/    /' "$name.out"
        return 1
    fi
    local st
    st=$(cat "$name.rc")
    if [ "$st" -ne "$code" ] || ! grep -q -- "$sub" "$name.out"; then
        fail "$name: exit $st (want $code), output:"
        sed 's/^/    /' "$name.out"
        echo "    (wanted it to contain: $sub)"
        return 1
    fi
    ok "$name"
}

# stat NAME KEY: a figure of the --json statistics line in NAME.out
stat() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1.out" | tail -1; }

# The clients stand in for a phone's audio thread, which the platform schedules ahead of other
# work: where the test may (as root), they, the relay and the shim (the media path) run at a
# higher priority than the builds and tests that share this machine, so that the 20 ms clock of
# the call is the call's, not the load's.
# Real-time round robin at the lowest real-time priority where allowed (the kernel keeps 5 % of
# every second for other work: sched_rt_runtime_us), else a better nice value, else nothing.
PRIO=()
if chrt -r 1 true 2>/dev/null; then
    PRIO=(chrt -r 1)
elif nice -n -10 true 2>/dev/null; then
    PRIO=(nice -n -10)
fi

pki() {
    KURER_ADMIN_PASSPHRASE=$KURER_ADMIN_ROOT_PASSPHRASE "$A" root init --dir root --name Rigsrod --kdf-min >/dev/null || exit 1
    "$A" authority init --root root --dir fm --id fm.dk --name FM --clearance CONFIDENTIAL \
        --kdf-min >/dev/null || exit 1
    "$A" authority init --root root --dir sk --id sk.dk --name SK --clearance RESTRICTED \
        --kdf-min >/dev/null || exit 1
    "$R" init --dir relay >/dev/null || exit 1
    RELAY_KEY=$(cat relay/relay.pub)
}

# start_relay [MEDIA_IP]: the media relay on 127.0.0.2 (where the clients reach the relay) or,
# for a shim in between, on 127.0.0.1.
start_relay() {
    : >relay.out
    printf 'media_listen = %s:0\n' "${1:-127.0.0.2}" >relay.conf
    [ -f extra.conf ] && cat extra.conf >>relay.conf
    "${PRIO[@]}" "$R" run --dir relay --config relay.conf --listen 127.0.0.2:0 --root root/root.crt \
        --crl fm/crl --crl sk/crl >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "media " 15 || { echo "relay did not start"; cat relay.out relay.log; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.2:\([0-9]*\).*/\1/p' relay.out)
    MPORT=$(sed -n 's/^media 127.0.0.[12]:\([0-9]*\).*/\1/p' relay.out)
    [ -n "$PORT" ] && [ -n "$MPORT" ] || { echo "relay addresses?"; cat relay.out; exit 1; }
}

# shim LOSS JITTER: the media path through call_tool's shim (127.0.0.2:MPORT -> 127.0.0.1:MPORT)
shim() {
    "${PRIO[@]}" "$T" shim "127.0.0.2:$MPORT" "127.0.0.1:$MPORT" "$1" "$2" 14 capture.bin >shim.out 2>&1 &
    BG_PIDS+=($!)
    wait_for shim.out "shim ready" 10 || { echo "shim did not start"; cat shim.out; exit 1; }
}

device() { # HOME USER ID AUTHDIR [CLEARANCE]
    "$K" init --home "$1" --user "$2" --device "$3" --relay "127.0.0.2:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority "$4" --csr "$1/device.csr" --out "$1.chain" \
        ${5:+--clearance $5} >/dev/null || exit 1
    "$K" import --home "$1" "$1.chain" >/dev/null || exit 1
    "$K" recv --home "$1" >/dev/null || exit 1
}

setup() { # [MEDIA_IP]
    pki
    start_relay "${1:-}"
    device anna anna@fm.dk 1 fm CONFIDENTIAL
    device bob bob@sk.dk 1 sk
    "$T" sweep anna.wav 3 300 3000 >/dev/null || exit 1
    "$T" sweep bob.wav 3 2500 400 >/dev/null || exit 1
}

# A call anna -> bob at LEVEL with both sides playing their sweep; waits for both.
call_both() { # LEVEL [ANSWER_ARGS...]
    local level=$1
    shift
    bg bob "${PRIO[@]}" "$K" answer --home bob --play bob.wav --record bob.rec.wav --wait 60 \
        --json "$@"
    wait_for bob/.lock answer 15 || true
    sleep 1
    bg anna "${PRIO[@]}" "$K" call --home anna bob@sk.dk --level "$level" --play anna.wav \
        --record anna.rec.wav --json
}

case $CASE in
audio)
    # 0 % loss: what each side recorded is, once aligned, bit-exact what the codec alone makes
    # of the other side's file; the media on the wire is SFrame, never plaintext Opus.
    # Each attempt allocates a media relay call, which the relay keeps until it is idle for
    # media_idle_timeout_ms (there is no release): room for the attempts below.
    printf 'media_calls_per_device = 8\n' >extra.conf
    setup 127.0.0.1
    shim 0 0
    "$T" reference anna.wav anna.ref.wav anna.pkt || fail "reference of anna.wav"
    "$T" reference bob.wav bob.ref.wav bob.pkt || fail "reference of bob.wav"
    # Bit-exactness holds while every packet is played in its slot. On a loaded machine (two
    # cores, sanitizers) a process can stall past the jitter buffer's delay: the receiver then
    # counts the frame late and conceals it, and from there its decoder state differs. Such a
    # run (late or concealed counted, though nothing was lost) is repeated, at most 5 times.
    for attempt in 1 2 3 4 5; do
        rm -f anna.rc bob.rc
        call_both RESTRICTED
        finished anna 90 0 '"end":"hangup"'
        finished bob 30 0 '"end":"remote_hangup"'
        al=$(stat anna late) ac=$(stat anna concealed) bl=$(stat bob late) bc=$(stat bob concealed)
        slips=$((${al:=0} + ${ac:=0} + ${bl:=0} + ${bc:=0}))
        [ "$slips" -eq 0 ] && break
        echo "attempt $attempt: $slips frames late or concealed at 0 % loss (a stall); again"
    done
    [ "$(stat anna lost)" = 0 ] && [ "$(stat bob lost)" = 0 ] && [ "$slips" -eq 0 ] &&
        ok "nothing lost, late or concealed at 0 %" ||
        fail "0 %: $(cat anna.out) / $(cat bob.out)"
    out=$("$T" compare bob.rec.wav anna.ref.wav 120) && ok "bob heard anna bit-exact: $out" ||
        fail "bob's recording: $out ($(cat bob.out))"
    out=$("$T" compare anna.rec.wav bob.ref.wav 100) && ok "anna heard bob bit-exact: $out" ||
        fail "anna's recording: $out ($(cat anna.out))"
    cat anna.pkt bob.pkt >both.pkt
    out=$("$T" scan capture.bin both.pkt) && ok "no plaintext Opus on the wire: $out" ||
        fail "plaintext on the wire: $out"
    # The scan can fail: the packets themselves are found in a capture that holds them.
    cat capture.bin anna.pkt >plain.bin
    "$T" scan plain.bin anna.pkt >/dev/null && fail "the scan finds nothing even in plaintext" ||
        ok "the scan finds plaintext Opus where there is some"
    # The codec alone against the sent signal: the reference figure for call_loss's budget
    # (measured about 27 dB); and the measure can fail: anna's recording (bob's sweep) against
    # her own sweep scores far below it.
    out=$("$T" segsnr bob.rec.wav anna.wav 20) && ok "$out" || fail "$out"
    out=$("$T" segsnr anna.rec.wav anna.wav 20) && fail "another signal passes: $out" ||
        ok "another signal fails the measure: $out"
    ;;
loss)
    # 5 % loss and 0..40 ms jitter (reordering) on every media datagram, both ways.
    setup 127.0.0.1
    "$T" sweep anna.wav 6 300 3000 >/dev/null || exit 1
    shim 5 40
    call_both RESTRICTED
    finished anna 90 0 '"end":"hangup"'
    finished bob 30 0 '"end":"remote_hangup"'
    lost=$(stat bob lost) conc=$(stat bob concealed) fec=$(stat bob fec_recovered)
    echo "bob: lost $lost concealed $conc fec $fec ($(cat bob.out))"
    [ "${lost:-0}" -gt 0 ] && ok "losses counted" || fail "no loss counted: $(cat bob.out)"
    [ "${fec:-0}" -gt 0 ] && ok "FEC recoveries counted ($fec)" || fail "no FEC: $(cat bob.out)"
    [ "${conc:-0}" -gt 0 ] && ok "concealment counted ($conc)" || fail "no PLC: $(cat bob.out)"
    # Budget: the segmental SNR (20 ms segments, each clamped to -10..35 dB, each half second
    # aligned on its own since the jitter buffer moves its delay by whole frames) of what bob
    # recorded against what anna sent must stay at or above 15 dB. The codec alone scores about
    # 27 dB on these sweeps (call_audio); 5 % loss with 0..40 ms jitter, repaired by FEC and
    # concealment, measured 24 to 26 dB. A lost frame left as silence scores -10 dB for its
    # segment: at 5 % unrepaired that alone would cost about 2 dB, and repair that fails
    # (noise, a lost sync) much more.
    out=$("$T" segsnr bob.rec.wav anna.wav 15) && ok "$out" || fail "$out"
    ;;
refused)
    # bob's certificate allows RESTRICTED: a CONFIDENTIAL call is refused before any device rings.
    setup
    bg bob "$K" answer --home bob --wait 8
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level CONFIDENTIAL
    finished anna 30 1 "clearance"
    finished bob 30 1 "no call came"
    ;;
two_devices)
    # Both of bob's devices ring; the first to answer has the call, the other is told.
    setup
    device bob2 bob@sk.dk 2 sk
    bg bob2 "$K" answer --home bob2 --delay 4 --wait 60
    bg bob "$K" answer --home bob --play bob.wav --wait 60
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level RESTRICTED --play anna.wav --seconds 6
    finished bob2 40 1 "answered_elsewhere"
    finished anna 60 0 "ended (hangup)"
    finished bob 30 0 "remote_hangup"
    ;;
busy)
    # A device in a call answers a second offer BUSY; the second caller hears it.
    setup
    device carl carl@sk.dk 3 sk
    bg bob "$K" answer --home bob --wait 60
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --seconds 8
    wait_for anna.out "connected" 60 || fail "anna's call did not connect: $(cat anna.out)"
    bg carl "$K" call --home carl bob@sk.dk --level UNCLASSIFIED
    finished carl 40 1 "busy"
    finished anna 60 0 "ended (hangup)"
    finished bob 30 0 "ended (remote_hangup)"
    ;;
glare)
    # Both call each other at once: one call survives on both sides (the lower call id).
    setup
    bg anna "$K" call --home anna bob@sk.dk --level RESTRICTED --play anna.wav --seconds 4
    bg bob "$K" call --home bob anna@fm.dk --level RESTRICTED --play bob.wav --seconds 4
    finished anna 60 0 "ended"
    finished bob 60 0 "ended"
    grep -q "call with bob@sk.dk \[RESTRICTED\]" anna.out && grep -q "call with anna@fm.dk" bob.out &&
        ok "one call, connected on both sides" || fail "glare: $(cat anna.out) / $(cat bob.out)"
    ;;
hangup)
    setup
    # The callee hangs up.
    bg bob "$K" answer --home bob --seconds 2 --wait 60
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --seconds 60
    finished bob 60 0 "ended (hangup)"
    finished anna 30 0 "ended (remote_hangup)"
    rm -f anna.rc bob.rc
    # The caller hangs up.
    bg bob "$K" answer --home bob --wait 60
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --seconds 2
    finished anna 60 0 "ended (hangup)"
    finished bob 30 0 "ended (remote_hangup)"
    rm -f anna.rc bob.rc
    # The callee declines.
    bg bob "$K" answer --home bob --decline --wait 60
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level UNCLASSIFIED
    finished anna 60 1 "declined"
    finished bob 30 0 ""
    ;;
relay_killed)
    # The relay dies during the call: both sides report the call as failed, nothing hangs.
    setup
    bg bob "$K" answer --home bob --wait 60
    sleep 1
    bg anna "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --seconds 120
    wait_for anna.out "connected" 60 || fail "anna's call did not connect: $(cat anna.out)"
    wait_for bob.out "connected" 30 || fail "bob's call did not connect: $(cat bob.out)"
    sleep 1
    kill -9 "$RELAY_PID"
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=
    finished anna 40 1 "failed\|timed out\|closed"
    finished bob 40 1 "failed\|timed out\|closed"
    ;;
daemon)
    # kurer call and kurer answer while a daemon holds each home: the daemons own the calls
    # (they read and write the WAV files), the commands print what they print without one.
    setup
    mkdir -m 0700 run
    export XDG_RUNTIME_DIR=$W/run
    # the refusals first, without a daemon and with one: the same words and status
    "$K" call --home anna bob@sk.dk --level CONFIDENTIAL >ref.1 2>&1
    echo $? >>ref.1
    "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --play missing.wav >miss.1 2>&1
    echo $? >>miss.1
    for h in anna bob; do
        "${PRIO[@]}" "$K" daemon --home "$h" >"$h.daemon.out" 2>"$h.daemon.err" &
        BG_PIDS+=($!)
        eval "DPID_$h=$!"
        wait_for "$h.daemon.err" "daemon for" 15 || { fail "no daemon for $h"; exit 1; }
    done
    unset KURER_PASSPHRASE # the daemons hold the homes: the commands need none
    "$K" call --home anna bob@sk.dk --level CONFIDENTIAL >ref.2 2>&1
    echo $? >>ref.2
    "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --play missing.wav >miss.2 2>&1
    echo $? >>miss.2
    cmp -s ref.1 ref.2 && ok "a refused call: the same with a daemon ($(head -1 ref.2))" ||
        fail "refusal differs: $(cat ref.1) / $(cat ref.2)"
    cmp -s miss.1 miss.2 && ok "a missing --play file: the same with a daemon" ||
        fail "missing file differs: $(cat miss.1) / $(cat miss.2)"
    bg bob "${PRIO[@]}" "$K" answer --home bob --play bob.wav --record bob.rec.wav --wait 60 --json
    sleep 2
    bg anna "${PRIO[@]}" "$K" call --home anna bob@sk.dk --level RESTRICTED --play anna.wav \
        --record anna.rec.wav --json
    wait_for anna.out "kurer: call connected with bob@sk.dk \[RESTRICTED\]" 60 &&
        ok "the caller is told the call connected" || fail "not told: $(cat anna.out)"
    "$K" call --home anna bob@sk.dk --level UNCLASSIFIED >busy.out 2>&1
    [ $? -eq 1 ] && grep -q "a call is running on this home already" busy.out &&
        ok "a second call on the same home is refused while one runs" || fail "$(cat busy.out)"
    finished anna 90 0 '"end":"hangup"'
    finished bob 30 0 '"end":"remote_hangup"'
    grep -q "kurer: call connected with anna@fm.dk \[RESTRICTED\]" bob.out &&
        ok "the answering side is told too" || fail "bob: $(cat bob.out)"
    [ "$(stat bob received)" -gt 100 ] && [ "$(stat anna received)" -gt 100 ] &&
        ok "media both ways through the daemons" || fail "$(cat anna.out) / $(cat bob.out)"
    # 15 dB: call_loss's budget (the daemons' loops share the machine with the test)
    out=$("$T" segsnr bob.rec.wav anna.wav 15) && ok "bob's daemon recorded anna: $out" ||
        fail "bob's recording: $out"
    out=$("$T" segsnr anna.rec.wav bob.wav 15) && ok "anna's daemon recorded bob: $out" ||
        fail "anna's recording: $out"
    # a daemon stopped during a call ends it: the command is answered, the daemon exits 0
    rm -f anna.rc bob.rc
    bg bob "$K" answer --home bob --wait 60
    sleep 2
    bg anna "$K" call --home anna bob@sk.dk --level UNCLASSIFIED --seconds 120
    wait_for anna.out "connected" 60 || fail "the call did not connect: $(cat anna.out)"
    kill -TERM "$DPID_anna"
    wait "$DPID_anna"
    st=$?
    [ "$st" -eq 0 ] && ok "the daemon stops during a call: exit 0" || fail "daemon exit $st"
    finished anna 30 1 "the daemon stopped during the call\|the daemon stopped before it answered"
    finished bob 40 0 "remote_hangup"
    kill -TERM "$DPID_bob"
    wait "$DPID_bob"
    ;;
*)
    echo "unknown case $CASE"
    exit 2
    ;;
esac
[ "$failed" -eq 0 ] || { echo "$failed check(s) failed"; exit 1; }
echo "all checks passed"
