#!/usr/bin/env bash
# The relay's systemd units (etc/systemd/): systemd-analyze security --offline scores each 2.0
# or lower ("OK" or better), systemd-analyze verify finds nothing to say about them (with
# ExecStart= pointing at the built binary, since /usr/bin/kurer-relay need not exist here), and
# the template differs from kurer-relay.service only in its instance lines.
# Usage: check_systemd.sh TOP RELAY_BIN. Exit 77 (skipped) without systemd-analyze.
set -euo pipefail
top=${1:?usage: check_systemd.sh TOP RELAY_BIN}
bin=$(realpath "${2:?usage: check_systemd.sh TOP RELAY_BIN}")
max=2.0
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd: systemd-analyze is missing (Debian: apt-get install systemd): skipped"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
units=("$top/etc/systemd/kurer-relay.service" "$top/etc/systemd/kurer-relay@.service")

for unit in "${units[@]}"; do
    name=$(basename "$unit")
    [ "$name" = "kurer-relay@.service" ] && name=kurer-relay@example.service # an instance
    sed "s|/usr/bin/kurer-relay|$bin|g" "$unit" >"$tmp/$name"
    out=$(systemd-analyze security --offline=yes --no-pager "$tmp/$name" 2>&1) || true
    score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$out")
    if [ -z "$score" ]; then
        echo "systemd: $name: no score from systemd-analyze security:"
        echo "$out" | tail -5
        bad=1
    elif awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
        echo "systemd: $name: exposure $score is above $max; what counts:"
        grep '^✗' <<<"$out" || true
        bad=1
    else
        echo "systemd: $name: exposure $score (at most $max)"
    fi
    # verify exits 0 on unknown keys too: any output at all is a failure.
    if ! vout=$(systemd-analyze verify --man=no "$tmp/$name" 2>&1) || [ -n "$vout" ]; then
        echo "systemd: $name: systemd-analyze verify:"
        echo "$vout"
        bad=1
    fi
done

# The client's user unit (etc/systemd/user/): systemd-analyze verify --user finds nothing to say.
# (No exposure score: a user service cannot use the namespaces that make the system ones score
# low, and it needs the user's home and the network.)
user_unit=$top/etc/systemd/user/kurer-daemon@.service
mkdir -m 0700 "$tmp/run"
sed "s|/usr/bin/kurer |$(dirname "$(dirname "$bin")")/client/kurer |" "$user_unit" \
    >"$tmp/kurer-daemon@example.service"
if ! vout=$(XDG_RUNTIME_DIR=$tmp/run systemd-analyze verify --user --man=no \
    "$tmp/kurer-daemon@example.service" 2>&1) || [ -n "$vout" ]; then
    echo "systemd: kurer-daemon@.service: systemd-analyze verify --user:"
    echo "$vout"
    bad=1
else
    echo "systemd: kurer-daemon@.service: verify --user finds nothing"
fi

# The template is the service with %i in its name, configuration and state folder.
sed -e '1,/^\[Unit\]/d' "${units[0]}" |
    sed -e 's|^Description=Kurer relay |&%i |' -e 's|/etc/kurer/relay.conf|/etc/kurer/%i.conf|g' \
        -e 's|^StateDirectory=kurer-relay$|StateDirectory=kurer-relay/%i|' >"$tmp/expected"
sed -e '1,/^\[Unit\]/d' "${units[1]}" >"$tmp/template"
if ! diff -u "$tmp/expected" "$tmp/template"; then
    echo "systemd: kurer-relay@.service has drifted from kurer-relay.service (diff above)"
    bad=1
fi
exit "$bad"
