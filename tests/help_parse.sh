# Reading the programs' --help, for tests/check_man.sh and tests/check_completion.sh (sourced;
# the caller defines fail MESSAGE).
# shellcheck shell=bash

# The options (--name) in text on stdin, one per line, sorted, without duplicates.
options() { grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u; }

# Whether option OPT occurs in the text on stdin as a whole word (--root, not --root-passphrase-env).
has_option() { grep -qE -- "$1([^a-z0-9-]|\$)"; }

# A program's help, or a note in its place when it fails: --help exits 0.
help_of() { # PROG [WORDS...]
    local out
    if ! out=$("$@" --help 2>&1); then
        fail "'$(basename "$1")${2:+ ${*:2}} --help' failed: $out"
        return 1
    fi
    printf '%s\n' "$out"
}

# The commands a top-level help lists: the names in its "commands:" block, and the words after
# the program's name on its usage lines (the first paragraph), as in `kurer-relay run --dir`.
commands_of() { # NAME HELP
    awk -v prog="$1" '
        NR == 1 { usage = 1 }
        usage && /^ *$/ { usage = 0 }
        usage {
            n = split($0, w, /[ \t]+/)
            for (i = 1; i < n; i++)
                if (w[i] == prog) {
                    c = ""
                    for (j = i + 1; j <= n && w[j] ~ /^[a-z][a-z0-9-]*$/; j++)
                        c = c (c == "" ? "" : " ") w[j]
                    if (c != "") print c
                }
        }
        /^[A-Za-z ]*commands:$/ { block = 1; next }
        block && /^ *$/ { block = 0 }
        block && match($0, /^  +[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)*(  +|$)/) {
            c = substr($0, 1, RLENGTH); gsub(/^ +| +$/, "", c); print c
        }' <<<"$2" | awk '!seen[$0]++'
}

# The options of command CMD in its help: those on its usage line (and its continuation lines,
# up to the next `PROG word` or the end of the first paragraph), and, when the command has a
# help of its own (not the program's), those that begin a line.
own_options() { # NAME CMD HELP TOPHELP
    {
        awk -v prog="$1" -v cmd="$2" '
            NR == 1 { usage = 1 }
            usage && /^ *$/ { exit }
            {
                line = $0
                if ((p = index(line, prog " ")) > 0) {
                    rest = substr(line, p + length(prog) + 1)
                    on = (rest == cmd || index(rest, cmd " ") == 1)
                    if (on) print substr(rest, length(cmd) + 1)
                    next
                }
                if (on) print line
            }' <<<"$3"
        if [ "$3" != "$4" ]; then
            grep -E '^ +--[a-z0-9]' <<<"$3"
        fi
    } | options | grep -vx -- '--help'
}

