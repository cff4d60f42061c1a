#!/usr/bin/env bash
# ctest man_completion: the bash completions (completions/) work and follow the programs' --help.
# Usage: tests/check_completion.sh SRC KURER KURER_ADMIN KURER_RELAY (the source tree and the
# three built binaries). Each completion is sourced in a bash of its own and its function called
# with COMP_WORDS/COMP_CWORD as bash would. Fails, naming the program and the words, when
#  - a fixed case completes wrongly (`kurer se` -> send, `kurer send --l` -> --level, level
#    names, directories for --home, ...);
#  - a command that `PROG --help` lists is not offered after `PROG` (or, for a command of two
#    words, its second word after the first);
#  - `PROG COMMAND --` does not offer an option of the command's --help, or offers one it
#    does not list.
set -uo pipefail
if [ $# -ne 4 ]; then
    echo "usage: $0 SRC KURER KURER_ADMIN KURER_RELAY" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
bad=0
fail() {
    echo "completion: $*"
    bad=1
}
# shellcheck source=tests/help_parse.sh
. "$(dirname "$0")/help_parse.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/kurer-completion-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/homedir"
touch "$work/homefile" "$work/root.crt"

# The words completion offers for the command line WORDS... (the last one is being completed),
# one per line, sorted: completions/NAME sourced in a fresh bash, the function that its
# `complete -F` names called as bash would.
complete_words() { # NAME WORDS...
    local name=$1
    shift
    (cd "$work" && bash --norc --noprofile -c '
        set -u
        . "$1" || exit 1
        spec=$(complete -p "$2" 2>/dev/null) || { echo "no complete -F for $2" >&2; exit 1; }
        fn=${spec#*-F }
        fn=${fn%% *}
        shift 2
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" ||
            exit 1
        printf "%s\n" "${COMPREPLY[@]}"' _ "$src/completions/$name" "$name" "$@" 2>&1) |
        sort -u
}

# Expect: completing WORDS... offers exactly EXPECTED (words separated by spaces). Words are as
# bash splits them: `--level=R` is `--level` `=` `R`.
expect() { # EXPECTED NAME WORDS...
    local want got
    want=$(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -u)
    shift
    got=$(complete_words "$@")
    [ "$got" = "$want" ] ||
        fail "'$*<TAB>' offers '$(tr '\n' ' ' <<<"$got" | sed 's/ $//')', expected '$(tr '\n' ' ' <<<"$want" | sed 's/ $//')'"
}

# Every command of the help is offered, and exactly its options.
drift_check() { # BINARY
    local bin=$1 name top cmds cmd sub first second own got opt
    name=$(basename "$bin")
    if [ ! -f "$src/completions/$name" ]; then
        fail "completions/$name does not exist"
        return
    fi
    if ! got=$(bash --norc --noprofile -c '. "$1" && complete -p "$2"' _ "$src/completions/$name" \
        "$name" 2>&1); then
        fail "completions/$name does not source cleanly or defines no completion for $name: $got"
        return
    fi
    top=$(help_of "$bin") || return
    cmds=$(commands_of "$name" "$top")
    [ -n "$cmds" ] || fail "'$name --help' lists no commands (the check cannot read it)"
    while IFS= read -r cmd; do
        [ -n "$cmd" ] || continue
        first=${cmd%% *}
        complete_words "$name" "$name" "" | grep -qx -- "$first" ||
            fail "completions/$name: '$name <TAB>' does not offer '$first' ('$name --help' lists '$cmd')"
        if [ "$cmd" != "$first" ]; then
            second=${cmd#* }
            complete_words "$name" "$name" "$first" "" | grep -qx -- "$second" ||
                fail "completions/$name: '$name $first <TAB>' does not offer '$second' ('$name --help' lists '$cmd')"
        fi
        # shellcheck disable=SC2086 # a command of two words (root init) is two arguments
        sub=$(help_of "$bin" $cmd) || continue
        own=$(own_options "$name" "$cmd" "$sub" "$top")
        # shellcheck disable=SC2086
        got=$(complete_words "$name" "$name" $cmd "--" | grep -vx -- '--help')
        for opt in $own; do
            grep -qx -- "$opt" <<<"$got" ||
                fail "completions/$name: '$name $cmd --<TAB>' does not offer $opt ('$name $cmd --help' lists it)"
        done
        for opt in $got; do
            grep -qx -- "$opt" <<<"$own" ||
                fail "completions/$name: '$name $cmd --<TAB>' offers $opt, which '$name $cmd --help' does not list"
        done
    done <<<"$cmds"
}

# Fixed cases: what bash should offer at these points.
expect "send" kurer kurer se
expect "--level" kurer kurer send --l
expect "RESTRICTED" kurer kurer send --level R
expect "UNCLASSIFIED RESTRICTED CONFIDENTIAL" kurer kurer send --home h --level =
expect "RESTRICTED" kurer kurer send --home h --level = R
expect "homedir" kurer kurer init --home home
expect "homedir" kurer kurer recv --home = home
expect "root.crt" kurer kurer init --root roo
expect "--to --group --level --timeout --json --help --file --text-file" kurer kurer send --home h --
expect "homedir homefile" kurer kurer restore --home n home
expect "create" kurer kurer group --home h cr
expect "leave list" kurer kurer group --home h l
expect "issue" kurer-admin kurer-admin is
expect "issue" kurer-admin kurer-admin --json is
expect "init revoke" kurer-admin kurer-admin root ""
expect "--clearance" kurer-admin kurer-admin issue --cl
expect "CONFIDENTIAL" kurer-admin kurer-admin root init --ceiling C
expect "device-lost" kurer-admin kurer-admin revoke --reason dev
expect "homedir" kurer-admin kurer-admin authority init --root home
expect "homedir homefile" kurer-admin kurer-admin verify --root home
expect "homefile" kurer-admin kurer-admin issue --out homef
expect "run" kurer-relay kurer-relay ru
expect "--log-level" kurer-relay kurer-relay run --log
expect "warn" kurer-relay kurer-relay run --log-level w
expect "homedir" kurer-relay kurer-relay run --dir home
expect "homedir homefile" kurer-relay kurer-relay run --crl home
expect "--root --crl --listen --store --metrics --metrics-public --config --log-level --user --no-seccomp --help" \
    kurer-relay kurer-relay run --dir d --root r --

drift_check "$2"
drift_check "$3"
drift_check "$4"

[ "$bad" -eq 0 ] && echo "completion: every command and option of the help is completed, and the fixed cases pass"
exit "$bad"
