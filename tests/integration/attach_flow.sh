#!/usr/bin/env bash
# attach_<case> (issue 11, item 5): files sealed, uploaded, received and saved with the real
# kurer, kurer-admin and kurer-relay on 127.0.0.1 (port 0), with the helpers of client_flow.sh
# (sourced); every wait is bounded, everything started is stopped by PID on exit.
#
# usage: attach_flow.sh CASE KURER KURER_ADMIN KURER_RELAY CLIENT_HELPER ATTACH_TOOL
set -uo pipefail
if [ -z "${CLIENT_FLOW_DETACHED:-}" ]; then
    export CLIENT_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
CLIENT_FLOW_LIB=1
# shellcheck source=client_flow.sh
source "$(dirname "$(realpath "$0")")/client_flow.sh" "$@"
TOOL=${CHAT:-} # (client_flow.sh's sixth argument) tests/integration/attach_tool.c

# relay_conf LINES...: the relay's configuration file (relay.conf) for the next start
relay_conf() { printf '%s\n' "$@" >relay.conf; }

# start_relay_conf: start_relay with relay.conf and the metrics page ($METRICS: HOST:PORT)
start_relay_conf() {
    : >relay.out
    "$R" run --dir relay --config relay.conf --listen "127.0.0.1:${PORT:-0}" \
        --metrics 127.0.0.1:0 --root root/root.crt --crl fm/crl --crl sk/crl \
        >relay.out 2>>relay.log &
    RELAY_PID=$!
    wait_for relay.out "listening" 15 || { echo "relay did not start"; cat relay.log; exit 1; }
    PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
    METRICS=$(sed -n 's/^metrics \(.*\)$/\1/p' relay.out)
}

# metric NAME: its value on the relay's page (0 if absent)
metric() {
    local v
    v=$(curl -s "http://$METRICS/metrics" | awk -v n="$1" '$1 == n { print $2 }')
    echo "${v:-0}"
}

setup_conf() {
    pki
    [ -f relay.conf ] || relay_conf "# defaults"
    start_relay_conf
    device anna anna@fm.dk 1 fm CONFIDENTIAL
    device bob bob@sk.dk 1 sk
}

# random N FILE: N random bytes
random() { head -c "$1" /dev/urandom >"$2"; }

case $CASE in
two_devices)
    # One file (and a text) to a user with two devices: both get identical bytes; the file is
    # uploaded once; a second file of the same name does not overwrite the first.
    setup_conf
    device bob2 bob@sk.dk 2 sk
    random 300000 report.pdf
    random 70000 notes.txt
    expect "send with files" 0 "sent to bob@sk.dk [RESTRICTED] with 2 files" "$K" send \
        --home anna --to bob@sk.dk --level RESTRICTED --file report.pdf --file notes.txt \
        "se vedhaeftet"
    [ "$(metric kurer_blob_uploads_total)" = 2 ] && ok "each file uploaded once" ||
        fail "uploads: $(metric kurer_blob_uploads_total), want 2"
    mkdir in1 in2
    expect "bob device 1 saves" 0 "saved in1/report.pdf" "$K" recv --home bob --save-dir in1
    expect "bob device 2 saves" 0 "saved in2/report.pdf" "$K" recv --home bob2 --save-dir in2
    cmp -s report.pdf in1/report.pdf && cmp -s report.pdf in2/report.pdf &&
        cmp -s notes.txt in1/notes.txt && cmp -s notes.txt in2/notes.txt &&
        ok "identical bytes on both devices" || fail "saved files differ"
    [ "$(stat -c %a in1/report.pdf)" = 600 ] && ok "mode 0600" ||
        fail "mode $(stat -c %a in1/report.pdf)"
    expect "history lists them" 0 "attachment: report.pdf (300000 bytes) saved" "$K" history \
        --home bob
    expect "sender's history too" 0 "attachment: notes.txt (70000 bytes)" "$K" history \
        --home anna
    expect "history --json" 0 '"event":"attachment","name":"report.pdf","size":300000' "$K" \
        history --home bob2 --json
    # the same name again: a suffix, never over the first
    random 1000 report.pdf
    expect "files alone, no text" 0 "with 1 file" "$K" send --home anna --to bob@sk.dk \
        --file report.pdf
    expect "saved beside it" 0 "saved in1/report-1.pdf" "$K" recv --home bob --save-dir in1
    cmp -s report.pdf in1/report-1.pdf && [ "$(stat -c %s in1/report.pdf)" = 300000 ] &&
        ok "first file kept" || fail "a saved file was overwritten"
    [ -z "$(find in1 in2 -name '.kurer-*')" ] && ok "no partial files" || fail "partial files"
    ;;
resume)
    # kill -9 of the relay in the middle of an upload: the send resumes from the offset the
    # relay's store holds and succeeds; the relay then took only the rest.
    setup_conf
    random $((40 * 1024 * 1024)) big.bin
    "$K" send --home anna --to bob@sk.dk --timeout 120 --file big.bin >send.out 2>&1 &
    SEND_PID=$!
    BG_PIDS+=("$SEND_PID")
    for ((i = 0; i < 600; i++)); do
        [ "$(metric kurer_blob_upload_bytes_total)" -gt $((4 * 1024 * 1024)) ] && break
        sleep 0.05
    done
    before=$(metric kurer_blob_upload_bytes_total)
    kill -9 "$RELAY_PID"
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=
    if [ "$before" -gt 0 ] && [ "$before" -lt $((40 * 1024 * 1024)) ]; then
        ok "killed mid-upload ($before bytes in)"
    else
        fail "not mid-upload: $before bytes"
    fi
    sleep 0.5
    start_relay_conf
    wait "$SEND_PID"
    st=$?
    [ "$st" -eq 0 ] && ok "send finished after the restart" || {
        fail "send exit $st"
        cat send.out
    }
    after=$(metric kurer_blob_upload_bytes_total)
    [ "$after" -gt 0 ] && [ "$after" -lt $((40 * 1024 * 1024 + 800)) ] &&
        [ $((before + after)) -lt $((41 * 1024 * 1024)) ] && ok "resumed: $after bytes after the restart" ||
        fail "uploaded again from the start: $after bytes after, $before before"
    mkdir in
    expect "bob saves it" 0 "saved in/big.bin" "$K" recv --home bob --save-dir in
    cmp -s big.bin in/big.bin && ok "identical bytes" || fail "the saved file differs"
    ;;
quota)
    relay_conf "blob_quota = 100KiB" "blob_max_size = 1MiB"
    setup_conf
    random 60000 a.bin
    random 60000 b.bin
    random 2000000 huge.bin
    expect "within the quota" 0 "with 1 file" "$K" send --home anna --to bob@sk.dk --file a.bin
    expect "over the quota" 1 "quota" "$K" send --home anna --to bob@sk.dk --file b.bin
    expect "json names EQUOTA" 1 '"code":"EQUOTA"' "$K" send --home anna --to bob@sk.dk \
        --file b.bin --json
    expect "over blob_max_size" 1 "blob_max_size" "$K" send --home anna --to bob@sk.dk \
        --file huge.bin
    expect "another device has its own" 0 "with 1 file" "$K" send --home bob --to anna@fm.dk \
        --file b.bin
    [ "$(curl -s "http://$METRICS/metrics" | grep -c 'kurer_blob_refusals_total{reason="quota"} 2')" = 1 ] &&
        ok "refusals counted" || fail "quota refusals not counted"
    ;;
expiry)
    # A short expiry: the sweep deletes the blob, and a download then fails with ENOTFOUND,
    # leaving nothing in the folder.
    relay_conf "blob_expiry_s = 2s" "blob_sweep_ms = 200ms"
    setup_conf
    random 5000 old.bin
    expect "send" 0 "with 1 file" "$K" send --home anna --to bob@sk.dk --file old.bin "snart vaek"
    for ((i = 0; i < 100; i++)); do
        [ "$(metric kurer_blobs_expired_total)" -ge 1 ] && break
        sleep 0.1
    done
    [ "$(metric kurer_blobs_expired_total)" = 1 ] && ok "swept" || fail "not swept"
    mkdir in
    expect "expired blob refused" 1 "not saved: not found (ENOTFOUND)" "$K" recv --home bob \
        --save-dir in
    [ -z "$(ls -A in)" ] && ok "nothing saved" || fail "files in the folder: $(ls -A in)"
    expect "the message itself is there" 0 "snart vaek" "$K" history --home bob
    ;;
api)
    # The same through the asynchronous C API alone: kurer_send_files_async, then on_message,
    # kurer_message_attachments and kurer_attachment_save_async on the other side.
    setup_conf
    random 200000 api.bin
    expect "kurer_send_files_async" 0 "sent" "$TOOL" api-send anna bob@sk.dk api.bin
    mkdir in
    expect "kurer_attachment_save_async" 0 "saved in/api.bin" "$TOOL" api-save bob in
    cmp -s api.bin in/api.bin && ok "identical bytes" || fail "the saved file differs"
    expect "history shows it saved" 0 "attachment: api.bin (200000 bytes) saved in/api.bin" \
        "$K" history --home bob
    ;;
hostile_names)
    # A sender's file names are untrusted: each is saved inside the folder, under a safe name,
    # never over a file there, and nothing is written anywhere else.
    setup_conf
    random 3000 payload.bin
    mkdir -p in/sub
    echo "keep" >in/x
    touch stamp # what the test writes outside its folder is newer than this
    for name in "../x" "/etc/passwd" $'a\nb' ".bashrc" "sub/../../y" "$(head -c 240 /dev/zero | tr '\0' n)"; do
        "$TOOL" send anna bob@sk.dk "$name" payload.bin >/dev/null 2>tool.err ||
            { fail "hostile sender: $(cat tool.err)"; }
    done
    expect "saved safely" 0 "saved in/x-1" "$K" recv --home bob --save-dir in
    printf '%s\n' "$out" >recv.out
    grep -q "saved in/passwd" recv.out && ok "/etc/passwd saved as passwd" ||
        fail "/etc/passwd: $(cat recv.out)"
    [ "$(grep -c 'saved in/attachment' recv.out)" = 3 ] &&
        ok "control character, leading dot, over-long: saved as attachment(-N)" ||
        fail "fallback names: $(cat recv.out)"
    grep -q "saved in/y" recv.out && ok "sub/../../y saved as y" || fail "y: $(cat recv.out)"
    [ "$(cat in/x)" = keep ] && ok "existing file untouched" || fail "in/x was overwritten"
    [ ! -e x ] && [ ! -e y ] &&
        [ -z "$(find "$W/.." -maxdepth 1 \( -name x -o -name y \) -newer stamp)" ] &&
        ok "nothing outside the folder" ||
        fail "a file outside the folder"
    [ "$(find in -type f | wc -l)" = 7 ] && ok "six saved, one kept" ||
        fail "files: $(find in -type f)"
    grep -q 'a\\nb\|a.*b' recv.out && ! grep -q $'^a$' recv.out && ok "names shown safely" ||
        fail "raw control characters on the terminal"
    ;;
tampered)
    # A relay operator who alters the stored blob: one byte, a sealed chunk dropped, two
    # exchanged. Each is refused with its typed error and nothing is kept.
    setup_conf
    random $((3 * 65536 + 5000)) doc.bin
    mkdir in
    for mode in byte:EBLOBTAG drop:EBLOBTRUNC swap:EBLOBTAG; do
        expect "send ($mode)" 0 "with 1 file" "$K" send --home anna --to bob@sk.dk --file doc.bin
        stop_relay
        "$TOOL" tamper relay "${mode%%:*}" || fail "tamper ${mode%%:*}"
        start_relay_conf
        expect "${mode%%:*} refused" 1 "(${mode#*:})" "$K" recv --home bob --save-dir in
        [ -z "$(ls -A in)" ] && ok "nothing kept (${mode%%:*})" || fail "files: $(ls -A in)"
    done
    ;;
*)
    echo "unknown case $CASE"
    exit 2
    ;;
esac

[ "$failed" -eq 0 ] || {
    echo "$failed failed"
    exit 1
}
echo "all passed"
