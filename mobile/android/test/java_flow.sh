#!/usr/bin/env bash
# mobile_java: the JNI binding (dk.kurer.Kurer, libkurer_jni.so) in one JVM under -Xcheck:jni,
# against a real kurer-relay on 127.0.0.1 (port 0) with certificates made by the real
# kurer-admin. Two homes are enrolled as in tests/integration/client_flow.sh (anna@fm.dk with
# CONFIDENTIAL clearance, bob@sk.dk with his authority's RESTRICTED), then KurerTest exchanges the
# messages and checks the rest. Fails if the JVM prints any warning of -Xcheck:jni.
#
# usage: java_flow.sh JAVA KURER_JAR TESTS_JAR JNI_DIR KURER KURER_ADMIN KURER_RELAY [ASAN_RT]
#
# ASAN_RT (the ASan build: the path of clang's libclang_rt.asan-x86_64.so): the JVM itself is not
# instrumented, so the runtime that libkurer.so and libkurer_jni.so expect is preloaded
# (LD_PRELOAD; it must come first in the process, and brings UBSan's handlers too), with
# handle_segv=0 (HotSpot takes SIGSEGV for its own null checks and safepoints: ASan must not turn
# those into reports), detect_leaks=0 (LeakSanitizer cannot tell the VM's own allocations from
# leaks, and fails at exit) and allow_user_segv_handler=1 (so the VM may install its handler).
set -uo pipefail
JAVA=$1
KJAR=$(realpath "$2")
TJAR=$(realpath "$3")
JNI_DIR=$(realpath "$4")
K=$(realpath "$5")
A=$(realpath "$6")
R=$(realpath "$7")
ASAN_RT=${8:-}
W=$(mktemp -d /tmp/kurer-java-test-XXXXXX)
RELAY_PID=
cleanup() {
    local st=$?
    if [ "$st" -ne 0 ] && [ -f "$W/relay.log" ]; then
        echo "relay log (exit $st):"
        tail -20 "$W/relay.log"
    fi
    if [ -n "$RELAY_PID" ]; then kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; fi
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1

export KURER_ADMIN_PASSPHRASE=admin-passphrase-1 KURER_ADMIN_ROOT_PASSPHRASE=root-passphrase-1
export KURER_PASSPHRASE=user-passphrase-1

# wait_for FILE SUBSTRING SECONDS
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

KURER_ADMIN_PASSPHRASE=$KURER_ADMIN_ROOT_PASSPHRASE "$A" root init --dir root --name Rigsrod \
    --kdf-min >/dev/null || exit 1
"$A" authority init --root root --dir fm --id fm.dk --name FM --clearance CONFIDENTIAL \
    --kdf-min >/dev/null || exit 1
"$A" authority init --root root --dir sk --id sk.dk --name SK --clearance RESTRICTED \
    --kdf-min >/dev/null || exit 1
"$R" init --dir relay >/dev/null || exit 1
RELAY_KEY=$(cat relay/relay.pub)

: >relay.out
"$R" run --dir relay --listen "127.0.0.1:0" --root root/root.crt --crl fm/crl --crl sk/crl \
    >relay.out 2>>relay.log &
RELAY_PID=$!
wait_for relay.out "listening" 15 || { echo "relay did not start"; exit 1; }
PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)

# device HOME USER ID AUTHDIR [CLEARANCE]: init, issue, import, first connect (prekeys)
device() {
    "$K" init --home "$1" --user "$2" --device "$3" --relay "127.0.0.1:$PORT" \
        --relay-key "$RELAY_KEY" --root root/root.crt --kdf-min >/dev/null || exit 1
    "$A" issue --authority "$4" --csr "$1/device.csr" --out "$1.chain" \
        ${5:+--clearance $5} >/dev/null || exit 1
    "$K" import --home "$1" "$1.chain" >/dev/null || exit 1
    "$K" recv --home "$1" >/dev/null || exit 1
}
device anna anna@fm.dk 1 fm CONFIDENTIAL
device bob bob@sk.dk 1 sk
mkdir scratch

preload=()
if [ -n "$ASAN_RT" ]; then
    preload=(env "LD_PRELOAD=$ASAN_RT"
        "ASAN_OPTIONS=detect_leaks=0:handle_segv=0:allow_user_segv_handler=1"
        "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
fi
timeout 270 "${preload[@]}" "$JAVA" -Xcheck:jni -Djava.library.path="$JNI_DIR" \
    -cp "$KJAR:$TJAR" dk.kurer.KurerTest anna bob root/root.crt "127.0.0.1:$PORT" \
    "$RELAY_KEY" "$W/scratch" >java.out 2>&1
st=$?
cat java.out
if grep -qE "WARNING|Warning:|FATAL ERROR" java.out; then
    echo "FAIL -Xcheck:jni printed warnings (above)"
    exit 1
fi
if [ "$st" -ne 0 ]; then
    echo "FAIL the JVM exited $st"
    exit 1
fi
echo "ok   -Xcheck:jni printed no warning"
