#!/usr/bin/env bash
# The growth ratchet (issue 10, after Tor's practracker): no C file over 1,000 lines and no
# function over 100 lines, except the offenders listed in tests/size_exceptions.txt with the
# size they had when listed. A listed offender may shrink, never grow; a new offender fails.
# When one shrinks below its listed size (or under the limit), the script says so: lower (or
# remove) its line so that the list only ever shrinks.
#   tests/check_size.sh [TOP]          check
#   tests/check_size.sh [TOP] --list   print the current offenders in the exceptions format
set -euo pipefail
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
mode=${2:-check}
cd "$top"
FILE_MAX=1000
FUNC_MAX=100
exceptions=tests/size_exceptions.txt

# Offenders, one per line: "file PATH LINES" or "function PATH:NAME LINES". Functions are the
# bodies clang-format puts between a '{' and a '}' in column 0 after a signature line.
offenders() {
    git ls-files --cached --others --exclude-standard '*.c' '*.h' | grep -v '^build' | sort -u |
        while read -r f; do
        n=$(wc -l <"$f")
        [ "$n" -gt "$FILE_MAX" ] && echo "file $f $n"
        awk -v f="$f" -v max="$FUNC_MAX" '
            /^\{/ && prev ~ /\)/ {
                name = prev; sub(/\(.*/, "", name); n = split(name, w, /[ *]+/); name = w[n]
                start = NR; inside = 1; next
            }
            inside && /^\}/ {
                len = NR - start - 1
                if (len > max) printf "function %s:%s %d\n", f, name, len
                inside = 0
            }
            { if ($0 != "") prev = $0 }' "$f"
    done
}

if [ "$mode" = "--list" ]; then
    offenders
    exit 0
fi

declare -A allowed=()
if [ -f "$exceptions" ]; then
    while read -r kind what n _; do
        case "$kind" in "" | \#*) continue ;; esac
        allowed["$kind $what"]=$n
    done <"$exceptions"
fi

bad=0
declare -A seen=()
while read -r kind what n; do
    key="$kind $what"
    seen["$key"]=1
    if [ -z "${allowed[$key]:-}" ]; then
        limit=$FILE_MAX
        [ "$kind" = function ] && limit=$FUNC_MAX
        echo "size: new $kind over $limit lines: $what ($n lines)"
        bad=1
    elif [ "$n" -gt "${allowed[$key]}" ]; then
        echo "size: $kind $what grew to $n lines (listed at ${allowed[$key]}): it may only shrink"
        bad=1
    elif [ "$n" -lt "${allowed[$key]}" ]; then
        echo "size: $kind $what shrank to $n lines: lower its line in $exceptions to $n"
    fi
done < <(offenders)
for key in "${!allowed[@]}"; do
    [ -n "${seen[$key]:-}" ] || echo "size: $key is no longer over the limit: remove its line from $exceptions"
done
[ "$bad" -eq 0 ] && echo "size: no file over $FILE_MAX lines and no function over $FUNC_MAX lines beyond $exceptions"
exit "$bad"
