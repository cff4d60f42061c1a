#!/usr/bin/env bash
# ctest man_check: the man pages (man/) cannot drift from the programs' --help or from the
# relay's configuration keys. Usage: tests/check_man.sh SRC KURER KURER_ADMIN KURER_RELAY
# (the source tree and the three built binaries). Fails, naming page, section and item, when
#  - a page does not render cleanly: `man --warnings -l` (MANWIDTH=80) or `groff -man -ww -z`
#    prints anything;
#  - a command that `PROG --help` lists (its "commands:" block, or its usage lines
#    `PROG WORD ...`) has no `.SS WORD` section under COMMANDS;
#  - an option of a command (in the command's usage, or at the start of a line of its
#    `PROG COMMAND --help`) is missing from that command's section, or a section documents
#    (`.TP` heading) an option the command's help does not list;
#  - an option (`--name`) that any of the program's help texts mention is nowhere on the page;
#  - an environment variable that a help text names (KURER_[A-Z_]+, error codes aside) has no
#    entry under ENVIRONMENT;
#  - relay.conf(5) lacks an entry (`.TP` then `.B KEY`) under KEYS for a key of the K() table
#    in relay/config.c (K(name, ...), or any MACRO(name, ...) line in its `keys[]` table), or
#    has one for a key the table does not hold.
set -uo pipefail
if [ $# -ne 4 ]; then
    echo "usage: $0 SRC KURER KURER_ADMIN KURER_RELAY" >&2
    exit 2
fi
src=$1
bad=0
fail() {
    echo "man: $*"
    bad=1
}
# options, has_option, help_of, commands_of, own_options: reading the programs' --help.
# shellcheck source=tests/help_parse.sh
. "$(dirname "$0")/help_parse.sh"

# The page's text as the check reads it: comments dropped, font changes and escapes undone,
# so that `.BI \-\-relay\-key " KEY"` reads `.BI --relay-key " KEY"`.
norm() {
    sed -e '/^\.\\"/d' -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e "s/\\\\(aq/'/g" "$1"
}

# The lines of section NAME (`.SH NAME`, or `.SS NAME` when $3 is SS) of a normalized page.
section() { # FILE NAME [SH|SS]
    awk -v want="$2" -v kind="${3:-SH}" '
        function title(l) { sub(/^\.S[HS] +/, "", l); gsub(/"/, "", l); return l }
        /^\.S[HS]( |$)/ {
            if (kind == "SH" && /^\.SS/) { if (on) print; next }
            on = (substr($0, 2, 2) == kind && title($0) == want)
            next
        }
        on { print }' "$1"
}

# The options a section documents: the first option of each `.TP` heading.
documented_options() {
    awk 'prev == ".TP" { print } { prev = $1 }' | grep -oE -- '^\.[A-Z]+ +"?--[a-z0-9][a-z0-9-]*' |
        options
}

render_check() { # PAGE
    local out
    out=$(MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null)
    [ -z "$out" ] || fail "$(basename "$1") does not render cleanly (man --warnings):"$'\n'"$out"
    out=$(LC_ALL=C groff -man -ww -z "$1" 2>&1)
    [ -z "$out" ] || fail "$(basename "$1") does not render cleanly (groff -man -ww):"$'\n'"$out"
}

program_check() { # PAGE BINARY
    local page=$1 bin=$2 name page_name top text cmds cmd sub sect opt env all_help all_own=
    name=$(basename "$bin")
    page_name=$(basename "$page")
    text=$(norm "$page")
    top=$(help_of "$bin") || return
    all_help=$top
    cmds=$(commands_of "$name" "$top")
    [ -n "$cmds" ] || fail "'$name --help' lists no commands (the check cannot read it)"
    while IFS= read -r cmd; do
        [ -n "$cmd" ] || continue
        # shellcheck disable=SC2086 # a command of two words (root init) is two arguments
        sub=$(help_of "$bin" $cmd) || continue
        all_help+=$'\n'$sub
        sect=$(section <(printf '%s\n' "$text") "$cmd" SS)
        if [ -z "$sect" ]; then
            fail "$page_name: no section '.SS $cmd' for the command '$cmd' ('$name --help' lists it)"
            continue
        fi
        local own
        own=$(own_options "$name" "$cmd" "$sub" "$top")
        all_own+=$'\n'$own
        for opt in $own; do
            has_option "$opt" <<<"$sect" ||
                fail "$page_name, section '$cmd': $opt is missing ('$name $cmd --help' lists it)"
        done
        for opt in $(documented_options <<<"$sect"); do
            [ "$opt" = --help ] && continue
            grep -qx -- "$opt" <<<"$own" ||
                fail "$page_name, section '$cmd': documents $opt, which '$name $cmd --help' does not list"
        done
    done <<<"$cmds"
    # Options of a command were checked in its section above (and said there when missing).
    for opt in $(options <<<"$all_help" | grep -vxF -- "$all_own"); do
        has_option "$opt" <<<"$text" ||
            fail "$page_name: $opt is missing (the help of $name mentions it)"
    done
    env=$(section <(printf '%s\n' "$text") ENVIRONMENT)
    while IFS= read -r v; do
        [ -n "$v" ] || continue
        grep -qw -- "$v" <<<"$env" ||
            fail "$page_name: the environment variable $v is not under ENVIRONMENT (the help of $name names it)"
    done < <(grep -oE 'KURER_[A-Z0-9_]*[A-Z0-9]' <<<"$all_help" | grep -vxE 'KURER_E[A-Z0-9]+' |
        sort -u)
}

config_check() { # PAGE
    local page=$1 page_name code doc k
    page_name=$(basename "$page")
    # K(name, ...) entries, and, should other macros join the table of keys (`keys[] = {`),
    # their first arguments too.
    code=$(awk '
        /keys\[\] *= *\{/ { table = 1 }
        table && /^};/ { table = 0 }
        match($0, /^ *K\([a-z][a-z0-9_]*,/) ||
            (table && match($0, /^ *[A-Z][A-Z0-9_]*\([a-z][a-z0-9_]*[,)]/)) {
            k = substr($0, 1, RLENGTH - 1); sub(/^ *[A-Z0-9_]+\(/, "", k); print k
        }' "$src/relay/config.c" | sort -u)
    [ -n "$code" ] || fail "no K(name, ...) keys found in relay/config.c (the check cannot read it)"
    doc=$(norm "$page" | section /dev/stdin KEYS |
        awk 'prev == ".TP" && $1 == ".B" { print $2 } { prev = $1 }' | sort -u)
    for k in $code; do
        grep -qx -- "$k" <<<"$doc" ||
            fail "$page_name: the key '$k' (relay/config.c) has no entry under KEYS"
    done
    for k in $doc; do
        grep -qx -- "$k" <<<"$code" ||
            fail "$page_name: documents the key '$k', which relay/config.c does not know"
    done
}

for t in man groff; do
    command -v "$t" >/dev/null || fail "$t not found (install man-db and groff-base: scripts/bootstrap)"
done
for p in kurer.1 kurer-admin.8 kurer-relay.8 relay.conf.5; do
    if [ -f "$src/man/$p" ]; then
        render_check "$src/man/$p"
    else
        fail "man/$p does not exist"
    fi
done
[ -f "$src/man/kurer.1" ] && program_check "$src/man/kurer.1" "$2"
[ -f "$src/man/kurer-admin.8" ] && program_check "$src/man/kurer-admin.8" "$3"
[ -f "$src/man/kurer-relay.8" ] && program_check "$src/man/kurer-relay.8" "$4"
[ -f "$src/man/relay.conf.5" ] && config_check "$src/man/relay.conf.5"

[ "$bad" -eq 0 ] && echo "man: the pages render cleanly and document every command, option, variable and key"
exit "$bad"
