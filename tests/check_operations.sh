#!/usr/bin/env bash
# ctest operations_walkthrough: runs the commands of docs/operations.md's blocks marked
# `<!-- operations-walkthrough -->` in order, as written, with /etc/kurer, /var/lib/kurer-*,
# /var/backups/kurer moved under a temporary folder and the fixed ports made 0. Lines with
# systemctl, apt, journalctl or chown are printed, not run (no systemd here, no system user);
# the relay is started by hand from the documented configuration after the block that would
# start the service, so that the backup block runs against a live relay.
# usage: check_operations.sh SRC_DIR BIN_DIR... (folders holding kurer-admin, kurer-relay, kurer)
set -uo pipefail
src=$1
shift
for d in "$@"; do PATH=$(realpath "$d"):$PATH; done
export PATH
W=$(mktemp -d /tmp/kurer-ops-XXXXXX)
relay_pid=
cleanup() {
    [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1
# Root on a test machine: the relay refuses root without a user to drop to (docs/relay.md).
[ "$(id -u)" -eq 0 ] && export KURER_RELAY_ALLOW_ROOT=1

# The commands, one per line, in order.
mapfile -t cmds < <(awk '
    /<!-- operations-walkthrough -->/ { want = 1; next }
    want && /^```/ { if (inblock) { inblock = 0; want = 0 } else inblock = 1; next }
    inblock && /^\$ / { print substr($0, 3) }' "$src/docs/operations.md")
[ "${#cmds[@]}" -ge 8 ] || { echo "FAIL: found ${#cmds[@]} commands in docs/operations.md"; exit 1; }

start_relay() {
    kurer-relay run --config "$W/etc/kurer/relay.conf" >"$W/relay.out" 2>"$W/relay.log" &
    relay_pid=$!
    for _ in $(seq 150); do grep -q '^listening ' "$W/relay.out" 2>/dev/null && return 0; sleep 0.1; done
    echo "FAIL: the relay did not start from the documented configuration"
    cat "$W/relay.log"
    exit 1
}

n=0
for c in "${cmds[@]}"; do
    n=$((n + 1))
    case $c in
    *systemctl*)
        echo "skip $n: $c (no systemd here: starting the relay by hand)"
        start_relay
        continue
        ;;
    apt\ * | *journalctl* | chown\ *)
        echo "skip $n: $c"
        continue
        ;;
    esac
    run=$(printf '%s' "$c" | sed -e "s#/etc/kurer#$W/etc/kurer#g" \
        -e "s#/var/lib/kurer-#$W/var/lib/kurer-#g" -e "s#/var/backups/kurer#$W/backups#g" \
        -e 's#127\.0\.0\.1:7443#127.0.0.1:0#g' -e 's#127\.0\.0\.1:9107#127.0.0.1:0#g')
    mkdir -p "$W/var/lib"
    echo "run  $n: $c"
    # In this shell, not a subshell: an `export` of the walk-through holds for what follows.
    eval "$run" >"$W/cmd.out" 2>&1
    st=$?
    out=$(cat "$W/cmd.out")
    if [ "$st" -ne 0 ]; then
        echo "FAIL: docs/operations.md command $n failed: $c"
        echo "$out" | sed 's/^/    /'
        exit 1
    fi
    if [[ $c == kurer-relay\ backup* && $out != *"running relay"* ]]; then
        echo "FAIL: the backup did not go through the running relay: $out"
        exit 1
    fi
done
# What the walk-through promises: a restored folder with the store and both keys, from an
# encrypted backup.
for f in relay.db relay.key store.key relay.pub; do
    [ -f "$W/var/lib/kurer-relay-restored/$f" ] || { echo "FAIL: restore made no $f"; exit 1; }
done
head -c 16 "$W/backups/relay.db" | grep -q "SQLite format 3" && { echo "FAIL: plaintext backup"; exit 1; }
echo "ok   docs/operations.md: ${#cmds[@]} commands as written"
