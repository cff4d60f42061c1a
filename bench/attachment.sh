#!/usr/bin/env bash
# attachment (issue 11, item 9): a file sealed and uploaded through a real kurer-relay on
# 127.0.0.1, and downloaded, checked and saved by another device, with the real kurer and
# kurer-admin; in the same run a plain copy of the same file over loopback TCP (python3: read
# the file, send it, receive it, write it) as the reference. One JSON line:
#   {"bench":"attachment","mib":N,"upload_mib_s":...,"download_mib_s":...,"tcp_copy_mib_s":...,
#    "ratio_upload":...,"ratio_download":...,"cmd":"..."}
# upload: `kurer send --file` (seal, upload in chunks each committed by the relay, the message);
# download: `kurer recv --save-dir` (the message, download, open and check every chunk, save).
# Usage: attachment.sh [--smoke] [--mib N] KURER KURER_ADMIN KURER_RELAY
set -euo pipefail
mib=50
smoke=0
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) smoke=1 mib=1; shift ;;
    --mib) mib=$2; shift 2 ;;
    *) break ;;
    esac
done
K=$(realpath "$1") A=$(realpath "$2") R=$(realpath "$3")
[ "$(id -u)" -ne 0 ] || export KURER_RELAY_ALLOW_ROOT=1
W=$(mktemp -d /tmp/kurer-bench-attach-XXXXXX)
RELAY_PID=
cleanup() {
    [ -z "$RELAY_PID" ] || { kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; }
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W"
export KURER_ADMIN_PASSPHRASE=bench-admin-passphrase KURER_PASSPHRASE=bench-user-passphrase
KURER_ADMIN_PASSPHRASE=bench-root-passphrase "$A" root init --dir root --name Root --kdf-min >/dev/null
KURER_ADMIN_ROOT_PASSPHRASE=bench-root-passphrase "$A" authority init --root root --dir fm --id fm.dk \
    --name FM --clearance CONFIDENTIAL --kdf-min >/dev/null
"$R" init --dir relay >/dev/null
printf 'blob_max_size = 1GiB\nblob_quota = 0\nsend_rate = 0\n' >relay.conf
"$R" run --dir relay --config relay.conf --listen 127.0.0.1:0 --root root/root.crt \
    --crl fm/crl >relay.out 2>relay.log &
RELAY_PID=$!
for _ in $(seq 150); do grep -q listening relay.out && break; sleep 0.1; done
PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' relay.out)
[ -n "$PORT" ] || { echo "relay did not start" >&2; cat relay.log >&2; exit 1; }
for d in anna:anna@fm.dk bob:bob@fm.dk; do
    h=${d%%:*} u=${d#*:}
    "$K" init --home "$h" --user "$u" --device 1 --relay "127.0.0.1:$PORT" \
        --relay-key "$(cat relay/relay.pub)" --root root/root.crt --kdf-min >/dev/null
    "$A" issue --authority fm --csr "$h/device.csr" --out "$h.chain" >/dev/null
    "$K" import --home "$h" "$h.chain" >/dev/null
done
head -c $((mib * 1024 * 1024)) /dev/urandom >file.bin
now() { date +%s.%N; }
t0=$(now)
"$K" send --home anna --to bob@fm.dk --timeout 600 --file file.bin >/dev/null
t1=$(now)
mkdir in
"$K" recv --home bob --save-dir in >/dev/null
t2=$(now)
cmp -s file.bin in/file.bin || { echo "the received file differs" >&2; exit 1; }
tcp=$(python3 - "$W/file.bin" "$W/tcp.bin" <<'PY'
import socket, sys, threading, time
src, dst = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def serve():
    c, _ = srv.accept()
    with open(dst, "wb") as f:
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            f.write(b)
    c.close()
t = threading.Thread(target=serve)
start = time.monotonic()
t.start()
s = socket.create_connection(srv.getsockname())
with open(src, "rb") as f:
    while True:
        b = f.read(1 << 16)
        if not b:
            break
        s.sendall(b)
s.close()
t.join()
print(time.monotonic() - start)
PY
)
cmp -s file.bin tcp.bin || { echo "the TCP copy differs" >&2; exit 1; }
awk -v mib="$mib" -v up="$(echo "$t1 - $t0" | bc -l)" -v down="$(echo "$t2 - $t1" | bc -l)" \
    -v tcp="$tcp" -v smoke="$smoke" 'BEGIN {
    u = mib / up; d = mib / down; c = mib / tcp
    printf "{\"bench\":\"attachment\",\"mib\":%d,\"upload_mib_s\":%.1f,\"download_mib_s\":%.1f,", mib, u, d
    printf "\"tcp_copy_mib_s\":%.1f,\"ratio_upload\":%.3f,\"ratio_download\":%.3f,", c, u / c, d / c
    printf "\"upload_s\":%.2f,\"download_s\":%.2f,\"cmd\":\"bench/attachment.sh%s --mib %d\"}\n", up, down, smoke ? " --smoke" : "", mib
    printf "# attachment %d MiB: upload %.1f MiB/s, download %.1f MiB/s, plain TCP copy %.1f MiB/s (ratios %.3f, %.3f)\n", mib, u, d, c, u / c, d / c
}'
