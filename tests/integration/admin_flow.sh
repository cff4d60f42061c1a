#!/usr/bin/env bash
# admin_flow: the administrator's whole flow with the real kurer-admin binary, and every refused
# input of issue 3 ("Bad input"). Each check asserts the exit code and a part of the message;
# every refused command that names a directory must leave it byte-for-byte unchanged.
# No network, no terminal.
#
# usage: admin_flow.sh KURER_ADMIN ADMIN_HELPER
set -uo pipefail
# A new session has no controlling terminal: /dev/tty cannot be opened, so a missing passphrase
# is refused instead of prompting (and a prompt could never block the test).
if [ -z "${ADMIN_FLOW_DETACHED:-}" ]; then
    export ADMIN_FLOW_DETACHED=1
    exec setsid -w "$0" "$@" </dev/null
fi
A=$(realpath "$1")
H=$(realpath "$2")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1

ROOTP=root-passphrase-one
FMP=fm-passphrase-one
SKP=sk-passphrase-one
pass=0
failed=0

run() { # run CMD...: output in $out, status in $st
    out=$("$@" </dev/null 2>&1)
    st=$?
}

check() { # check NAME CODE SUBSTRING CMD...
    local name=$1 code=$2 sub=$3
    shift 3
    run "$@"
    if [ "$st" -ne "$code" ] || [[ "$out" != *"$sub"* ]]; then
        echo "FAIL $name: exit $st (want $code), output:"
        echo "$out" | sed 's/^/    /'
        echo "    (wanted it to contain: $sub)"
        failed=$((failed + 1))
    else
        echo "ok   $name"
        pass=$((pass + 1))
    fi
}

dirhash() { # contents, names and modes of every file but the (empty) lock file .lock
    (cd "$1" && find . -path ./.lock -prune -o -printf '%p %m %s\n' | sort &&
        find . -path ./.lock -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum) |
        sha256sum
}

refused() { # refused NAME DIR SUBSTRING CMD...: exit 1, message, DIR unchanged
    local name=$1 dir=$2 sub=$3 before after
    shift 3
    before=$(dirhash "$dir")
    check "$name" 1 "$sub" "$@"
    after=$(dirhash "$dir")
    if [ "$before" != "$after" ]; then
        echo "FAIL $name: $dir changed"
        failed=$((failed + 1))
    fi
}

has() { # has NAME SUBSTRING: the output of the command run last contains SUBSTRING too
    if [[ "$out" == *"$2"* ]]; then
        echo "ok   $1"
        pass=$((pass + 1))
    else
        echo "FAIL $1: output lacks: $2"
        echo "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

lacks() { # lacks NAME SUBSTRING: ... does not contain SUBSTRING
    if [[ "$out" != *"$2"* ]]; then
        echo "ok   $1"
        pass=$((pass + 1))
    else
        echo "FAIL $1: output has: $2"
        echo "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

flip() { # flip FILE OFFSET: invert one byte (negative offset: from the end)
    python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[off] ^= 0xff
open(p, 'wb').write(bytes(b))
PY
}

R() { env KURER_ADMIN_PASSPHRASE=$ROOTP "$A" "$@"; }
RR() { env -u KURER_ADMIN_PASSPHRASE KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP "$A" "$@"; }
FM() { env KURER_ADMIN_PASSPHRASE=$FMP "$A" "$@"; }
SK() { env KURER_ADMIN_PASSPHRASE=$SKP "$A" "$@"; }
NEWAUTH() { # NEWAUTH PASS ARGS...: authority init under root/ with the root passphrase
    local p=$1
    shift
    env KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP KURER_ADMIN_PASSPHRASE=$p "$A" authority init \
        --kdf-min "$@"
}

echo "== command line"
check version 0 "kurer-admin " "$A" --version
for c in "root init" "root revoke" "authority init" issue revoke "crl renew" verify show log \
    publish; do
    # shellcheck disable=SC2086
    check "help $c" 0 "usage: kurer-admin $c" "$A" $c --help
done
check help-root-group 0 "usage: kurer-admin root revoke" "$A" root --help
check root-no-subcommand 2 "'root' needs a subcommand: init or revoke" "$A" root frob
for c in "root init" "root revoke" "authority init" issue revoke "crl renew" verify show log \
    publish; do
    # shellcheck disable=SC2086
    check "short-help $c" 0 "usage: kurer-admin $c" "$A" $c -h
done
check value-is-option 2 "--out needs a value" "$A" issue --authority x --csr y --out --json
check value-is-option-json 2 '"error":"--out needs a value"' "$A" issue --authority x --csr y \
    --out --json
check json-unknown-command 2 '"ok":false,"command":"","error":"unknown command '"'"'frobnicate'"'"'"' \
    "$A" --json frobnicate
check json-unknown-command-after 2 '"code":"USAGE"' "$A" frobnicate --json
check unknown-reason 2 "unknown --reason 'lost' (unspecified, key-compromise, device-lost" \
    "$A" revoke --authority x --serial 1 --reason lost
run "$A" verify --json --root $'bad\xff\xc3.crt' $'x\xe2\x82.chain'
if printf '%s' "$out" | grep -v '^kurer-admin:' |
    python3 -c 'import json,sys; d=json.loads(sys.stdin.buffer.read().decode("utf-8")); assert "\ufffd" in d["error"], d' 2>/dev/null; then
    echo "ok   json-invalid-utf8"
    pass=$((pass + 1))
else
    echo "FAIL json-invalid-utf8: $out"
    failed=$((failed + 1))
fi
check unknown-option 2 "unknown option '--bogus'" "$A" issue --bogus
check missing-option 2 "missing --csr" "$A" issue --authority x --out y
check unknown-command 2 "unknown command" "$A" frobnicate
# publish against a real relay: the admin_publish test (test_relay.c). Here: refused input.
check publish-bad-key 2 "neither 64 hex characters nor a readable file" "$A" publish --crl x \
    --relay 127.0.0.1:1 --relay-key k
check publish-bad-relay 2 "expected HOST:PORT" "$A" publish --crl x --relay nowhere \
    --relay-key k
check publish-missing 2 "missing --relay-key" "$A" publish --crl x --relay 127.0.0.1:1

echo "== root"
check root-init 0 'root "root" (Rigsrod) created in root' R root init --dir root --name "Rigsrod" --kdf-min
check root-key-mode 0 "600" stat -c %a root/root.key
check root-dir-mode 0 "700" stat -c %a root
refused root-no-overwrite root "root.key already exists; --force moves the existing key" R root init --dir root \
    --name "Again" --kdf-min
# A folder that still holds a root's log (say, its key was moved offline): init must not replace it.
mkdir -p -m 0700 root-log && cp root/issuance.log root-log/
refused root-keeps-log root-log "issuance.log already exists; --force moves" R root init \
    --dir root-log --name "Again" --kdf-min
check root-secret-refused 1 "not accredited above CONFIDENTIAL" R root init --dir root-s \
    --name S --ceiling SECRET --kdf-min
check root-secret-nothing-written 1 "" test -e root-s
check root-short-passphrase 1 "too short" env KURER_ADMIN_PASSPHRASE=short "$A" root init \
    --dir root-short --name S --kdf-min
check root-no-passphrase 1 "no passphrase for the new root key: set KURER_ADMIN_PASSPHRASE" \
    env -u KURER_ADMIN_PASSPHRASE "$A" root init --dir root-np --name S --kdf-min
# Refused before any passphrase is asked (none is set: a late check would say "no passphrase").
check root-deep-dir 0 "created in deep/a/b" R root init --dir deep/a/b --name "Deep" --kdf-min
check root-deep-dir-mode 0 "700" stat -c %a deep/a/b
touch afile
check root-dir-under-file 1 "afile exists and is not a directory" env -u KURER_ADMIN_PASSPHRASE \
    "$A" root init --dir afile/root --name X --kdf-min
check root-name-control 1 "--name contains a control character" env -u KURER_ADMIN_PASSPHRASE \
    "$A" root init --dir root-ctl --name $'Bad\x01Name' --kdf-min
check root-name-utf8 1 "--name is not valid UTF-8" env -u KURER_ADMIN_PASSPHRASE \
    "$A" root init --dir root-ctl --name $'Bad\xffName' --kdf-min
check root-name-nothing-written 1 "" test -e root-ctl
# On a terminal, a too short new passphrase is refused at once, not after typing it twice.
run python3 - "$A" <<'PY'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    env = {k: v for k, v in os.environ.items() if k != 'KURER_ADMIN_PASSPHRASE'}
    os.execve(sys.argv[1], [sys.argv[1], 'root', 'init', '--dir', 'root-pty', '--name', 'P',
                            '--kdf-min'], env)
out = b''
while b'Passphrase for' not in out:
    out += os.read(fd, 1024)
os.write(fd, b'short\n')
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
print(out.decode(errors='replace'))
sys.exit(0 if os.waitstatus_to_exitcode(status) == 1 and b'too short' in out
         and b'Same passphrase' not in out and not os.path.exists('root-pty') else 1)
PY
if [ "$st" -eq 0 ]; then
    echo "ok   root-short-passphrase-first-entry"
    pass=$((pass + 1))
else
    echo "FAIL root-short-passphrase-first-entry: $out"
    failed=$((failed + 1))
fi
check root2-init 0 "ceiling      RESTRICTED" R root init --dir root2 --name "Other" \
    --ceiling RESTRICTED --kdf-min
check root-json 0 '"ok":true' "$A" show --json root/root.crt

echo "== authorities"
check fm-init 0 "authority fm.dk created" NEWAUTH $FMP --root root --dir fm --id fm.dk \
    --name "Finansministeriet" --clearance RESTRICTED
check sk-init 0 '"id":"sk.dk"' NEWAUTH $SKP --root root --dir sk --id sk.dk \
    --name "Skattestyrelsen" --days 400 --json
check fm-key-mode 0 "600" stat -c %a fm/authority.key
check fm-issued-by 0 'issued by root "root"' NEWAUTH $FMP --root root --dir fm-x --id fmx.dk \
    --name "X"
check log-one-entry 0 "issuance log of authority fmx.dk: 0 entries" "$A" log --authority fm-x
refused root-is-authority-dir fm "fm is an authority directory, not a root directory" \
    env -u KURER_ADMIN_PASSPHRASE -u KURER_ADMIN_ROOT_PASSPHRASE "$A" authority init \
    --root fm --dir x9 --id x9.dk --name X
check log-root-is-authority-dir 1 "fm is an authority directory, not a root directory" "$A" log \
    --root fm
check authority-is-file 1 "afile is a file, not an authority directory" "$A" log --authority afile
check fm-dir-mode 0 "700" stat -c %a fm
check fm-crl-v1 0 '"version":1' "$A" show --json fm/crl
check fm-crl-verifies 0 "valid revocation list of fm.dk, version 1" "$A" verify --root \
    root/root.crt fm/crl
refused auth-wrong-root-passphrase root "wrong passphrase for root/root.key" \
    env KURER_ADMIN_ROOT_PASSPHRASE=not-the-root-pass KURER_ADMIN_PASSPHRASE=$FMP "$A" \
    authority init --root root --dir x1 --id x1.dk --name X --kdf-min
check auth-wrong-passphrase-nothing-written 1 "" test -e x1
refused auth-above-ceiling root2 "clearance CONFIDENTIAL is above the root's ceiling RESTRICTED" \
    env KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP KURER_ADMIN_PASSPHRASE=$FMP "$A" authority init \
    --root root2 --dir x2 --id x2.dk --name X --clearance CONFIDENTIAL --kdf-min
refused auth-no-overwrite fm "already exists; --force moves the existing key" NEWAUTH $FMP --root root --dir fm \
    --id fm.dk --name "Again"
refused auth-same-passphrase root "the authority key needs its own passphrase" \
    env KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP KURER_ADMIN_PASSPHRASE=$ROOTP "$A" authority init \
    --root root --dir x6 --id x6.dk --name X
check auth-same-passphrase-nothing-written 1 "" test -e x6
for o in passphrase-env root-passphrase-env; do
    check "auth-$o-not-a-name" 2 "--$o needs the NAME of an environment variable" \
        NEWAUTH $FMP --root root --dir x7 --id x7.dk --name X --$o "Correct Horse 42"
    if [[ "$out" == *Horse* ]]; then
        echo "FAIL auth-$o-not-a-name: the value was echoed"
        failed=$((failed + 1))
    fi
done
check issue-passphrase-env-not-a-name 2 "not a passphrase (the value given is not shown)" \
    FM issue --authority fm --csr x.csr --out x.chain --passphrase-env 'hunter2!'
check revoke-passphrase-env-not-a-name 2 "--passphrase-env needs the NAME" \
    FM revoke --authority fm --serial 1 --passphrase-env 1ABC
check root-passphrase-env-not-a-name 2 "--passphrase-env needs the NAME" \
    R root init --dir x8 --name X --passphrase-env 'a b'
refused auth-bad-id root "invalid authority id" NEWAUTH $FMP --root root --dir x3 --id "Bad_Id" \
    --name X

echo "== --force on init keeps the old files"
check root3-init 0 "created" R root init --dir root3 --name "Three" --kdf-min
cp root3/root.key old-root3.key
check root3-force 0 "moved the existing root3/root.key aside to root3/root.key.replaced-" R root \
    init --dir root3 --name "Three again" --kdf-min --force
run bash -c 'cmp root3/root.key.replaced-* old-root3.key && stat -c %a root3/root.key.replaced-* &&
    ls root3/issuance.log.replaced-* root3/serial.replaced-* root3/root.crt.replaced-*'
if [ "$st" -eq 0 ] && [[ "$out" == 600* ]]; then
    echo "ok   root3-force-backups"
    pass=$((pass + 1))
else
    echo "FAIL root3-force-backups: $out"
    failed=$((failed + 1))
fi
check root3-new-log 0 "1 entry" "$A" log --root root3
check auth3-init 0 "created" NEWAUTH $FMP --root root3 --dir auth3 --id a3.dk --name "A3"
check auth3-force 0 '"replaced":[' NEWAUTH $FMP --root root3 --dir auth3 --id a3.dk \
    --name "A3 again" --force --json
run bash -c 'ls auth3/authority.key.replaced-* auth3/authority.crt.replaced-* auth3/crl.replaced-* \
    auth3/issuance.log.replaced-* auth3/serial.replaced-* && stat -c %a auth3/authority.key.replaced-*'
if [ "$st" -eq 0 ] && [[ "$out" == *600 ]]; then
    echo "ok   auth3-force-backups"
    pass=$((pass + 1))
else
    echo "FAIL auth3-force-backups: $out"
    failed=$((failed + 1))
fi

echo "== requests and issuance"
"$H" csr alice.csr alice@fm.dk 1 "Alice laptop" || exit 1
"$H" csr bob.csr bob@sk.dk 7 "Bob phone" || exit 1
"$H" csr-forged forged.csr carol@fm.dk 2 || exit 1
"$H" csr-pair pair1.csr dave@fm.dk 1 pair2.csr erin@fm.dk 1 || exit 1
check show-csr 0 "signature    valid" "$A" show alice.csr
check show-forged 0 "signature    INVALID" "$A" show forged.csr
check issue-alice 0 "issued alice@fm.dk device 1" FM issue --authority fm --csr alice.csr \
    --out alice.chain
check issue-bob 0 '"ok":true' SK issue --authority sk --csr bob.csr --out bob.chain --json \
    --clearance UNCLASSIFIED
check verify-alice 0 "valid DEVICE certificate" "$A" verify --root root/root.crt --crl fm/crl \
    alice.chain
check verify-alice-checked 0 "valid DEVICE certificate (revocation checked against fm.dk list version 1)" \
    "$A" verify --root root/root.crt --crl fm/crl alice.chain
check verify-no-crl 0 "valid DEVICE certificate (revocation NOT checked: no list from fm.dk given)" \
    "$A" verify --root root/root.crt alice.chain
check verify-other-crl-only 0 "revocation NOT checked: no list from fm.dk given" \
    "$A" verify --root root/root.crt --crl sk/crl alice.chain
check verify-no-crl-json 0 '"revocation_checked":false' "$A" verify --json --root root/root.crt \
    alice.chain
check verify-crl-json 0 '"revocation_checked":true,"crl_version":1' "$A" verify --json --root \
    root/root.crt --crl fm/crl alice.chain
check verify-require-crl 1 "revocation NOT checked: no list from fm.dk given" "$A" verify \
    --require-crl --root root/root.crt alice.chain
check verify-require-crl-given 0 "revocation checked" "$A" verify --require-crl --root \
    root/root.crt --crl fm/crl alice.chain
check verify-bob 0 "clearance    UNCLASSIFIED" "$A" verify --root root/root.crt --crl sk/crl \
    bob.chain
check show-chain 0 "certificate chain of 2" "$A" show alice.chain

refused issue-wrong-passphrase fm "wrong passphrase for fm/authority.key" \
    env KURER_ADMIN_PASSPHRASE=not-the-fm-pass "$A" issue --authority fm --csr alice.csr \
    --out x.chain --replace
refused issue-no-passphrase fm "no passphrase for fm/authority.key: set KURER_ADMIN_PASSPHRASE" \
    env -u KURER_ADMIN_PASSPHRASE "$A" issue --authority fm --csr alice.csr --out x.chain \
    --replace
refused issue-forged fm "forged.csr is not signed by the identity key it names" \
    FM issue --authority fm --csr forged.csr --out x.chain
refused issue-other-authority fm "asks for bob@sk.dk, who is not a user of authority fm.dk" \
    FM issue --authority fm --csr bob.csr --out x.chain
refused issue-above-authority fm "clearance CONFIDENTIAL is above the authority's RESTRICTED" \
    FM issue --authority fm --csr alice.csr --out x.chain --clearance CONFIDENTIAL
refused issue-secret fm "not accredited above CONFIDENTIAL" \
    FM issue --authority fm --csr alice.csr --out x.chain --clearance SECRET
head -c 60 alice.csr >trunc.csr
refused issue-truncated-csr fm "trunc.csr is not a valid certificate request" \
    FM issue --authority fm --csr trunc.csr --out x.chain
cp alice.csr tampered.csr && flip tampered.csr -1
refused issue-tampered-csr fm "not signed by the identity key it names" \
    FM issue --authority fm --csr tampered.csr --out x.chain
cp alice.csr tampered2.csr && flip tampered2.csr 12
refused issue-tampered-csr-body fm "tampered2.csr" \
    FM issue --authority fm --csr tampered2.csr --out x.chain
refused issue-wrong-kind-chain fm "alice.chain is a certificate chain, not a certificate request" \
    FM issue --authority fm --csr alice.chain --out x.chain
refused issue-wrong-kind-key fm "is a sealed key file, not a certificate request" \
    FM issue --authority fm --csr fm/authority.key --out x.chain
refused issue-wrong-kind-crl fm "fm/crl is a revocation list, not a certificate request" \
    FM issue --authority fm --csr fm/crl --out x.chain
refused issue-no-overwrite fm "alice.chain already exists; --force replaces it" \
    FM issue --authority fm --csr alice.csr --out alice.chain --replace
refused issue-not-an-authority root "root is not an authority directory" \
    FM issue --authority root --csr alice.csr --out x.chain
refused issue-out-no-dir fm "cannot write nodir/x.chain: directory nodir does not exist" \
    env -u KURER_ADMIN_PASSPHRASE "$A" issue --authority fm --csr alice.csr --out nodir/x.chain \
    --replace
refused issue-out-is-dir fm "fm is a directory; --out needs a file name" \
    env -u KURER_ADMIN_PASSPHRASE "$A" issue --authority fm --csr alice.csr --out fm \
    --replace
refused auth-name-control root "--name contains a control character" \
    env -u KURER_ADMIN_PASSPHRASE -u KURER_ADMIN_ROOT_PASSPHRASE "$A" authority init \
    --root root --dir x4 --id x4.dk --name $'Tab\there' --kdf-min
refused auth-dir-under-file root "afile exists and is not a directory" \
    env -u KURER_ADMIN_PASSPHRASE -u KURER_ADMIN_ROOT_PASSPHRASE "$A" authority init \
    --root root --dir afile/x5 --id x5.dk --name X --kdf-min
for f in authority.key authority.crt crl issuance.log serial root.crt .lock; do
    refused "issue-out-own-$f" fm "is one of the authority's own files" \
        env -u KURER_ADMIN_PASSPHRASE "$A" issue --authority fm --csr alice.csr \
        --out "./fm/../fm/$f" --force --replace
done
ln -f fm/serial serial-link
refused issue-out-own-hardlink fm "is one of the authority's own files" FM issue \
    --authority fm --csr alice.csr --out serial-link --force --replace
rm -f serial-link
check no-partial-output 1 "" test -e x.chain
check issue-pair1 0 "issued dave@fm.dk" FM issue --authority fm --csr pair1.csr --out dave.chain
refused issue-key-reuse fm "already certified for dave@fm.dk device 1" \
    FM issue --authority fm --csr pair2.csr --out erin.chain
"$H" csr alice2.csr alice@fm.dk 2 "Alice phone" || exit 1
"$H" csr alice3.csr alice@fm.dk 3 "Alice tablet" || exit 1
check issue-force 0 "serial       3" FM issue --authority fm --csr alice2.csr --out alice2.chain
check reissue-force 0 "serial       4" FM issue --authority fm --csr alice3.csr --out alice2.chain \
    --force

echo "== one device id, one valid certificate (issue --replace)"
cp -a fm fm-rep
"$H" csr hanna1.csr hanna@fm.dk 5 "Hanna laptop" || exit 1
"$H" csr hanna2.csr hanna@fm.dk 5 "Hanna laptop, re-enrolled" || exit 1
refused replace-none fm-rep "--replace: hanna@fm.dk device 5 holds no current certificate to replace" \
    FM issue --authority fm-rep --csr hanna1.csr --out hanna1.chain --replace
check replace-crl-days-alone 2 "--crl-days is for --replace" \
    FM issue --authority fm-rep --csr hanna1.csr --out hanna1.chain --crl-days 5
check replace-first 0 '"superseded":[]' \
    FM issue --authority fm-rep --csr hanna1.csr --out hanna1.chain --json
s1=$(sed -n 's/.*"serial":\([0-9]*\).*/\1/p' <<<"$out")
refused replace-same-request fm-rep "hanna@fm.dk device 5 already holds serial $s1 for these keys" \
    FM issue --authority fm-rep --csr hanna1.csr --out hanna1-again.chain
has replace-same-request-hint "no second certificate is made; --replace renews it"
check replace-same-request-no-file 1 "" test -e hanna1-again.chain
refused replace-other-keys fm-rep "hanna@fm.dk device 5 already holds serial $s1 with other keys" \
    FM issue --authority fm-rep --csr hanna2.csr --out hanna2.chain
has replace-other-keys-hint "issue with --replace (serial $s1 is then revoked as superseded)"
check replace-other-keys-replaced 0 "superseded   serial $s1 (revoked, reason superseded)" \
    FM issue --authority fm-rep --csr hanna2.csr --out hanna2.chain --replace --crl-days 10
has replace-publish "Publish the new list for the revocation to take effect."
s2=$(sed -n 's/^  serial  *\([0-9]*\)$/\1/p' <<<"$out")
check replace-old-revoked 1 "serial $s1 (reason superseded" \
    "$A" verify --root root/root.crt --crl fm-rep/crl hanna1.chain
check replace-new-valid 0 "valid DEVICE certificate (revocation checked" \
    "$A" verify --root root/root.crt --crl fm-rep/crl hanna2.chain
check replace-crl-lists-it 0 "superseded" "$A" show fm-rep/crl
has replace-crl-serial "$s1"
check replace-log 0 "REVOKE" "$A" log --authority fm-rep
has replace-log-reason "superseded"
refused replace-new-twice fm-rep "hanna@fm.dk device 5 already holds serial $s2 for these keys" \
    FM issue --authority fm-rep --csr hanna2.csr --out hanna2-again.chain
refused replace-old-keys-back fm-rep "already holds serial $s2 with other keys" \
    FM issue --authority fm-rep --csr hanna1.csr --out hanna1-back.chain
check replace-renew-json 0 "\"superseded\":[$s2]" \
    FM issue --authority fm-rep --csr hanna2.csr --out hanna2-renewed.chain --replace --json
check replace-renewed-only-one 1 "serial $s2 (reason superseded" \
    "$A" verify --root root/root.crt --crl fm-rep/crl hanna2.chain

echo "== file permissions and kinds"
cp -a fm fm-perm && chmod 644 fm-perm/authority.key
refused key-readable-by-others fm-perm "authority.key is accessible by others (mode 0644): chmod 600 it" \
    FM issue --authority fm-perm --csr alice.csr --out x.chain --replace
chmod 600 fm-perm/authority.key && chmod 660 fm-perm/authority.key
refused key-group-writable fm-perm "(mode 0660): chmod 600 it" \
    FM revoke --authority fm-perm --serial 1
rm -f fm-perm/authority.key && mkdir fm-perm/authority.key
refused key-is-dir fm-perm "authority.key is a directory, not a key file" \
    FM issue --authority fm-perm --csr alice.csr --out x.chain --replace
refused csr-is-dir fm "fm is a directory, not a file" \
    FM issue --authority fm --csr fm --out x.chain
check log-entry-singular 0 "issuance log of root root: 1 entry" "$A" log --root deep/a/b

echo "== issuer outside its validity"
cp -a fm fm-expired && cp -a fm fm-future
env KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP "$H" resign-authority root fm-expired -400 -10 || exit 1
env KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP "$H" resign-authority root fm-future +10 +400 || exit 1
refused issue-expired-issuer fm-expired "the authority certificate expired on" \
    FM issue --authority fm-expired --csr alice.csr --out x.chain
refused issue-future-issuer fm-future "the authority certificate is not valid before" \
    FM issue --authority fm-future --csr alice.csr --out x.chain
mkdir x-exp && cp fm-expired/authority.crt x-exp/
# A device chain carrying an expired authority certificate is refused by verify too.
python3 - alice.chain fm-expired/authority.crt x-exp/alice.chain <<'PY'
import sys
# CertificateChain: field 1 (length-delimited) per certificate; swap the second one.
def fields(b):
    i, out = 0, []
    while i < len(b):
        tag = b[i]; i += 1
        n = s = 0
        while True:
            c = b[i]; i += 1; n |= (c & 0x7f) << s; s += 7
            if c < 0x80: break
        out.append((tag, b[i:i+n])); i += n
    return out
def lv(tag, v):
    n, enc = len(v), b''
    while True:
        c = n & 0x7f; n >>= 7
        enc += bytes([c | (0x80 if n else 0)])
        if not n: break
    return bytes([tag]) + enc + v
ch = fields(open(sys.argv[1], 'rb').read())
auth = open(sys.argv[2], 'rb').read()
open(sys.argv[3], 'wb').write(lv(0x0a, ch[0][1]) + lv(0x0a, auth))
open(sys.argv[3] + '.leaf', 'wb').write(ch[0][1])  # the device certificate alone
PY
check verify-expired-authority 1 "its authority's certificate expired on" "$A" verify --root \
    root/root.crt x-exp/alice.chain

echo "== damaged directories"
cp -a fm fm-badcrt && flip fm-badcrt/authority.crt -1
refused issue-tampered-authority-crt fm-badcrt "fm-badcrt/authority.crt is not signed by the root" \
    FM issue --authority fm-badcrt --csr alice.csr --out x.chain
cp -a fm fm-badlog && flip fm-badlog/issuance.log 40
refused issue-tampered-log fm-badlog "issuance log fm-badlog/issuance.log: entry 0 is bad" \
    FM issue --authority fm-badlog --csr alice.csr --out x.chain
check log-tampered 1 "entry 0 is bad" "$A" log --authority fm-badlog
cp -a fm fm-cutlog && head -c 12 fm/issuance.log >fm-cutlog/issuance.log
refused issue-cut-log fm-cutlog "entries were removed" \
    FM issue --authority fm-cutlog --csr alice.csr --out x.chain
cp -a fm fm-truncrt && head -c 50 fm/authority.crt >fm-truncrt/authority.crt
refused issue-truncated-authority-crt fm-truncrt "fm-truncrt/authority.crt is not a valid certificate" \
    FM issue --authority fm-truncrt --csr alice.csr --out x.chain
cp -a fm fm-wrongkey && cp sk/authority.key fm-wrongkey/authority.key
refused issue-foreign-key fm-wrongkey "does not hold the key of" \
    env KURER_ADMIN_PASSPHRASE=$SKP "$A" issue --authority fm-wrongkey --csr alice.csr \
    --out x.chain --replace

echo "== revocation"
refused revoke-wrong-passphrase fm "wrong passphrase" env KURER_ADMIN_PASSPHRASE=nope-nope-nope \
    "$A" revoke --authority fm --cert alice.chain
refused revoke-unknown-serial fm "serial 999 was never issued by the authority in fm" \
    FM revoke --authority fm --serial 999
refused revoke-foreign-cert fm "bob.chain was not issued by the authority in fm" \
    FM revoke --authority fm --cert bob.chain
refused revoke-wrong-kind fm "alice.csr is a certificate request, not a certificate chain" \
    FM revoke --authority fm --cert alice.csr
check revoke-usage 2 "exactly one of --cert and --serial" FM revoke --authority fm
cp fm/crl crl-v1
check revoke-alice 0 "revocation list version 2" FM revoke --authority fm --cert alice.chain \
    --reason device-lost
check crl-v2 0 '"version":2' "$A" show --json fm/crl
refused issue-revoked-keys fm "are those of serial 1 (alice@fm.dk device 1), revoked (device-lost)" \
    FM issue --authority fm --csr alice.csr --out alice-again.chain
refused revoke-twice fm "serial 1 is already revoked (list version 2)" \
    FM revoke --authority fm --serial 1
check revoke-serial 0 "revocation list version 3" FM revoke --authority fm --serial 2 \
    --reason KEY_COMPROMISE
cp -a fm fm-crl-rollback && cp crl-v1 fm-crl-rollback/crl
refused revoke-on-rolled-back-crl fm-crl-rollback \
    "fm-crl-rollback/crl (version 1) is older than fm-crl-rollback/issuance.log: serial 1" \
    FM revoke --authority fm-crl-rollback --serial 1
check verify-revoked 1 "certificate revoked: alice@fm.dk device 1, serial 1 (reason device-lost" \
    "$A" verify --root root/root.crt --crl fm/crl alice.chain
check verify-revoked-old-list-too 1 "certificate revoked" "$A" verify --root root/root.crt \
    --crl crl-v1 --crl fm/crl alice.chain
check verify-old-list-only 0 "valid DEVICE" "$A" verify --root root/root.crt --crl crl-v1 \
    alice.chain
check verify-others-unaffected 0 "valid DEVICE" "$A" verify --root root/root.crt --crl fm/crl \
    --crl sk/crl bob.chain
check verify-json-refused 1 '"valid":false' "$A" verify --json --root root/root.crt --crl \
    fm/crl alice.chain
check verify-other-root 1 "not signed by a trusted root" "$A" verify --root root2/root.crt \
    bob.chain
cp bob.chain bob-tampered.chain && flip bob-tampered.chain 30
check verify-tampered-chain 1 "bob-tampered.chain" "$A" verify --root root/root.crt \
    bob-tampered.chain
cp sk/crl sk-tampered.crl && flip sk-tampered.crl -1
check verify-tampered-crl 1 "revocation list sk-tampered.crl" "$A" verify --root root/root.crt \
    --crl sk-tampered.crl bob.chain
check verify-wrong-kind 1 "alice.csr is a certificate request, not a certificate chain" "$A" \
    verify --root root/root.crt alice.csr
check verify-device-alone 1 "a device certificate alone cannot be verified" "$A" verify \
    --root root/root.crt x-exp/alice.chain.leaf
check show-device-alone 0 "role         DEVICE" "$A" show x-exp/alice.chain.leaf

echo "== concurrency (each directory is locked while a command reads and writes it)"
N=6
NEWAUTH $FMP --root root --dir par --id par.dk --name "Parallel" >/dev/null || exit 1
check lock-file-mode 0 "600" stat -c %a par/.lock
for i in $(seq 1 $N); do "$H" csr par$i.csr user$i@par.dk $i "Device $i" || exit 1; done
pids=()
for i in $(seq 1 $N); do
    FM issue --authority par --csr par$i.csr --out par$i.chain --json >par$i.out 2>par$i.err &
    pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
serials=$(cat par*.out | python3 -c 'import json,sys; print(" ".join(sorted(str(json.loads(l)["serial"]) for l in sys.stdin)))' 2>&1)
ndistinct=$(echo "$serials" | tr ' ' '\n' | sort -u | wc -l)
if [ "$bad" -eq 0 ] && [ "$ndistinct" -eq $N ]; then
    echo "ok   parallel-issue-distinct-serials ($serials)"
    pass=$((pass + 1))
else
    echo "FAIL parallel-issue-distinct-serials: $bad failed, serials: $serials"
    cat par*.err | sed 's/^/    /'
    failed=$((failed + 1))
fi
check parallel-issue-log 0 "issuance log of authority par.dk: $N entries" "$A" log --authority par
pids=()
for i in $(seq 1 $N); do
    FM revoke --authority par --serial "$i" --reason superseded >/dev/null 2>par-r$i.err &
    pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
run "$A" show --json par/crl
if [ "$bad" -eq 0 ] && printf '%s' "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['version'] == $N + 1 and sorted(r['serial'] for r in d['revoked']) == list(range(1, $N + 1)), d" 2>/dev/null; then
    echo "ok   parallel-revoke-all-listed"
    pass=$((pass + 1))
else
    echo "FAIL parallel-revoke-all-listed: $bad failed, list: $out"
    cat par-r*.err | sed 's/^/    /'
    failed=$((failed + 1))
fi
check parallel-revoke-log 0 "issuance log of authority par.dk: $((2 * N)) entries" "$A" log \
    --authority par
# A held lock is waited for, with one line on stderr.
python3 -c 'import fcntl,sys,time; f=open("par/.lock"); fcntl.flock(f, fcntl.LOCK_EX); open("held","w").close(); time.sleep(2)' &
lockpid=$!
while [ ! -e held ]; do sleep 0.1; done
check lock-wait 1 "waiting for another kurer-admin working on par" FM revoke --authority par \
    --serial 999
wait $lockpid

echo "== issuance log"
check log-fm 0 "verified: every signature and link" "$A" log --authority fm
check log-fm-revoke 0 "REVOKE serial 1 DEVICE alice@fm.dk device 1 reason device-lost" \
    "$A" log --authority fm
check log-root 0 "ISSUE  serial 3 AUTHORITY sk.dk" "$A" log --root root
run "$A" log --json --authority fm
if [ "$st" -eq 0 ] && printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and len(d["entries"]) == 6, d' 2>/dev/null; then
    echo "ok   log-json"
    pass=$((pass + 1))
else
    echo "FAIL log-json: $out"
    failed=$((failed + 1))
fi
check show-garbage 1 "is not a certificate, chain, request, revocation list or key file" \
    "$A" show trunc.csr

echo "== the root revokes authorities"
NEWAUTH gone-passphrase-1 --root root --dir gone --id gone.dk --name "Gone" >/dev/null || exit 1
NEWAUTH gone-passphrase-2 --root root --dir gone2 --id gone2.dk --name "Gone too" >/dev/null ||
    exit 1
GS=$("$A" show --json gone/authority.crt | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate"]["serial"])')
"$H" csr zed.csr zed@gone.dk 1 "Zed laptop" || exit 1
check issue-zed 0 "issued zed@gone.dk device 1" env KURER_ADMIN_PASSPHRASE=gone-passphrase-1 \
    "$A" issue --authority gone --csr zed.csr --out zed.chain
check root-revoke-usage 2 "exactly one of --cert and --serial" RR root revoke --root root
check root-revoke-device-reason 2 "unknown --reason 'device-lost' for an authority" RR root \
    revoke --root root --serial "$GS" --reason device-lost
refused root-revoke-unknown-serial root "serial 999 was never issued by the root in root" \
    env -u KURER_ADMIN_ROOT_PASSPHRASE "$A" root revoke --root root --serial 999
refused root-revoke-itself root "serial 1 is the root's own certificate: a root is replaced" \
    env -u KURER_ADMIN_ROOT_PASSPHRASE "$A" root revoke --root root --serial 1
refused root-revoke-device root "is a DEVICE certificate; a root revokes authorities" \
    env -u KURER_ADMIN_ROOT_PASSPHRASE "$A" root revoke --root root --cert x-exp/alice.chain.leaf
refused root-revoke-foreign root "auth3/authority.crt was not issued by the root in root" \
    env -u KURER_ADMIN_ROOT_PASSPHRASE "$A" root revoke --root root --cert auth3/authority.crt
refused root-revoke-authority-dir fm "fm is an authority directory, not a root directory" \
    RR root revoke --root fm --serial 2
refused root-revoke-wrong-passphrase root "wrong passphrase for root/root.key" \
    env KURER_ADMIN_ROOT_PASSPHRASE=not-the-root-pass "$A" root revoke --root root --serial "$GS"
refused root-revoke-no-passphrase root "no passphrase for root/root.key" \
    env -u KURER_ADMIN_ROOT_PASSPHRASE "$A" root revoke --root root --serial "$GS"
check root-revoke 0 "revoked authority gone.dk (serial $GS), reason key-compromise" RR root \
    revoke --root root --serial "$GS" --reason key-compromise
has root-revoke-list-v1 "revocation list version 1 in root/crl"
cp root/crl root-crl-v1
check root-crl-show 0 "the root: the serials are authorities'" "$A" show root/crl
check root-crl-show-json 0 '"issuer_role":"ROOT"' "$A" show --json root/crl
check root-crl-verifies 0 "valid revocation list of root root (authorities it revoked), version 1" \
    "$A" verify --root root/root.crt root/crl
check verify-device-of-revoked-authority 1 \
    "zed.chain: certificate revoked: its authority gone.dk (serial $GS) is revoked by the root (reason key-compromise" \
    "$A" verify --root root/root.crt --crl root/crl --crl gone/crl zed.chain
check verify-device-of-revoked-authority-no-own-list 1 "is revoked by the root" "$A" verify \
    --root root/root.crt --crl root/crl zed.chain
check verify-revoked-authority 1 "gone/authority.crt: authority certificate revoked by the root" \
    "$A" verify --root root/root.crt --crl root/crl gone/authority.crt
check verify-zed-without-root-list 0 "valid DEVICE certificate" "$A" verify --root root/root.crt \
    --crl gone/crl zed.chain
check verify-other-authority-with-root-list 0 "its authority against the root's list version 1" \
    "$A" verify --root root/root.crt --crl root/crl --crl sk/crl bob.chain
check verify-root-list-json 0 '"root_crl_version":1' "$A" verify --json --root root/root.crt \
    --crl root/crl --crl sk/crl bob.chain
refused root-revoke-twice root "authority gone.dk (serial $GS) is already revoked (list version 1)" \
    RR root revoke --root root --serial "$GS"
check root-revoke-cert-json 0 '"crl_version":2' RR root revoke --root root --cert \
    gone2/authority.crt --reason superseded --json
check root-log-revoke 0 "REVOKE serial $GS AUTHORITY gone.dk reason key-compromise" "$A" log \
    --root root
cp -a root root-rb && cp root-crl-v1 root-rb/crl
refused root-revoke-on-rolled-back-list root-rb "root-rb/crl (version 1) is older than root-rb/issuance.log" \
    RR root revoke --root root-rb --serial 3
cp -a root root-nocrl && rm root-nocrl/crl
refused root-revoke-list-missing root-nocrl "root-nocrl/crl is missing but root-nocrl/issuance.log records a revocation" \
    RR root revoke --root root-nocrl --serial 3

echo "== renewing lists before their next update"
check crl-renew-usage 2 "exactly one of --authority and --root" "$A" crl renew
check crl-no-subcommand 2 "'crl' needs a subcommand: renew" "$A" crl
check crl-renew-root 0 "renewed the revocation list of root root: version 3, 2 revoked" RR crl \
    renew --root root
refused crl-renew-root-none root3 "has no revocation list yet" RR crl renew --root root3
refused crl-renew-rolled-back fm-crl-rollback "is older than fm-crl-rollback/issuance.log" \
    FM crl renew --authority fm-crl-rollback
refused crl-renew-wrong-passphrase fm "wrong passphrase for fm/authority.key" \
    env KURER_ADMIN_PASSPHRASE=nope-nope-nope "$A" crl renew --authority fm
check crl-renew-authority 0 '"revoked":2' FM crl renew --authority fm --crl-days 60 --json
check crl-renew-keeps-revocations 1 "certificate revoked: alice@fm.dk device 1" "$A" verify \
    --root root/root.crt --crl fm/crl alice.chain

echo "== stale revocation lists"
export KURER_ADMIN_PASSPHRASE=$SKP
"$H" crl-dated sk -3 sk-stale.crl || exit 1 # past next_update, inside the 7-day grace
"$H" crl-dated sk -10 sk-dead.crl || exit 1 # past the grace
unset KURER_ADMIN_PASSPHRASE
env KURER_ADMIN_ROOT_PASSPHRASE=$ROOTP "$H" crl-dated root -9 root-dead.crl || exit 1
check verify-stale-warning 0 "warning: bob.chain: revocation list of sk.dk is past its next update (" \
    "$A" verify --root root/root.crt --crl sk-stale.crl bob.chain
has verify-stale-still-valid "valid DEVICE certificate"
check verify-stale-json 0 '"crl_stale":true,"warning":"revocation list of sk.dk is past its next update' \
    "$A" verify --json --root root/root.crt --crl sk-stale.crl bob.chain
check verify-stale-refused 1 "bob.chain: refused: revocation list of sk.dk is past its next update" \
    "$A" verify --root root/root.crt --crl sk-dead.crl bob.chain
check verify-stale-refused-json 1 '"code":"ECRLSTALE"' "$A" verify --json --root root/root.crt \
    --crl sk-dead.crl bob.chain
check verify-stale-grace-longer 0 "warning: bob.chain: revocation list of sk.dk" "$A" verify \
    --crl-grace 30 --root root/root.crt --crl sk-dead.crl bob.chain
check verify-stale-grace-never 0 "valid DEVICE certificate" "$A" verify --crl-grace never \
    --root root/root.crt --crl sk-dead.crl bob.chain
check verify-stale-grace-zero 1 "its grace of 0 days is over" "$A" verify --crl-grace 0 \
    --root root/root.crt --crl sk-stale.crl bob.chain
check verify-bad-grace 2 "--crl-grace must be a number of days from 0 to 36500, or never" \
    "$A" verify --crl-grace soon --root root/root.crt bob.chain
check verify-stale-list-file 1 "sk-dead.crl: refused: revocation list of sk.dk is past its next update" \
    "$A" verify --root root/root.crt sk-dead.crl
check verify-stale-list-file-warning 0 "warning: sk-stale.crl: revocation list of sk.dk" \
    "$A" verify --root root/root.crt sk-stale.crl
check verify-fresh-list-no-warning 0 "valid revocation list of sk.dk" "$A" verify --root \
    root/root.crt sk/crl
lacks verify-fresh-list-no-warning-2 "warning"
check show-stale 0 "past its next update: relays and clients refuse what it covers" "$A" show \
    sk-stale.crl
check show-stale-json 0 '"stale":true' "$A" show --json sk-stale.crl
check verify-stale-root-list-authority 1 "refused: revocation list of root root is past its next update" \
    "$A" verify --root root/root.crt --crl root-dead.crl sk/authority.crt
check verify-stale-root-list-device 1 "refused: revocation list of root root is past its next update" \
    "$A" verify --root root/root.crt --crl root-dead.crl --crl sk/crl bob.chain
check verify-stale-root-list-never 0 "valid DEVICE certificate" "$A" verify --crl-grace never \
    --root root/root.crt --crl root-dead.crl --crl sk/crl bob.chain
check verify-stale-root-list-revoked-first 1 "is revoked by the root" "$A" verify --root \
    root/root.crt --crl root-dead.crl zed.chain

echo "== $pass passed, $failed failed"
[ "$failed" -eq 0 ]
