#!/usr/bin/env bash
# Checks the module dependency order of docs/design.md: a module includes only its own headers and
# those of the modules below it, and only crypto/ includes libsodium or OpenSSL, only proto/
# includes protobuf-c's generated headers. Exits non-zero and names every violation.
set -euo pipefail
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"

declare -A allowed=(
  [base]="base"
  [proto]="base proto"
  [crypto]="base proto crypto"
  [net]="base proto crypto net"
  [relay]="base proto crypto net relay"
  [client]="base proto crypto net client"
  [admin]="base proto crypto net admin"
  [mobile]="base proto crypto net client mobile"
)

# Which module owns each public header kurer/<name>.h
declare -A owner=()
for m in "${!allowed[@]}"; do
  [ -d "$m/include/kurer" ] || continue
  for h in "$m"/include/kurer/*.h; do
    [ -e "$h" ] || continue
    owner[$(basename "$h")]=$m
  done
done

bad=0
for m in "${!allowed[@]}"; do
  [ -d "$m" ] || continue
  while IFS= read -r f; do
    while IFS= read -r line; do
      inc=${line#*\"kurer/}
      inc=${inc%%\"*}
      o=${owner[$inc]:-}
      if [ -z "$o" ]; then
        echo "layering: $f includes kurer/$inc, which no module provides"
        bad=1
      elif [[ " ${allowed[$m]} " != *" $o "* ]]; then
        echo "layering: $f ($m) includes kurer/$inc from $o, which is above it"
        bad=1
      fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"kurer/' "$f" || true)
    if [ "$m" != crypto ] && grep -qE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(sodium|openssl/)' "$f"; then
      echo "layering: $f ($m) includes libsodium or OpenSSL; only crypto/ may"
      bad=1
    fi
    if [ "$m" != proto ] && grep -qE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]*\.pb-c\.h' "$f"; then
      echo "layering: $f ($m) includes generated protobuf-c code; only proto/ may"
      bad=1
    fi
  done < <(find "$m" -name '*.[ch]' -not -path '*/build*')
done

if [ "$bad" -ne 0 ]; then
  echo "layering: FAILED"
  exit 1
fi
echo "layering: ok (${#owner[@]} public headers checked)"
