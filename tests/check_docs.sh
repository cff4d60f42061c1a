#!/usr/bin/env bash
# Keeps the operator's documentation true to the code:
#  - every configuration key of the relay (the K/S/M(...) table in relay/config.c) has a row in
#    docs/relay.md's configuration table, and every row there is a key the relay knows;
#  - the example configuration etc/relay.conf (installed as /etc/kurer/relay.conf) has a line
#    `key = ...` or `# key = ...` for every key, and no key the relay does not know;
#  - no document advises an online backup through the sqlcipher shell (`.backup` writes a
#    plaintext copy of the relay database: issue 9, defect 10).
# Exits non-zero and names every violation.
set -euo pipefail
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
bad=0

code_keys=$(sed -n 's/^ *[KSM](\([a-z_]*\),.*/\1/p' relay/config.c | sort -u)
# shellcheck disable=SC2016 # the backquotes are Markdown, not a command
doc_keys=$(sed -n 's/^| `\([a-z_]*\)` | .*/\1/p' docs/relay.md | sort -u)
[ -n "$code_keys" ] || { echo "docs: no configuration keys found in relay/config.c"; exit 1; }
for k in $code_keys; do
    if ! grep -qx "$k" <<<"$doc_keys"; then
        echo "docs/relay.md: configuration key '$k' is not documented"
        bad=1
    fi
done
for k in $doc_keys; do
    if ! grep -qx "$k" <<<"$code_keys"; then
        echo "docs/relay.md: documents '$k', which the relay does not know"
        bad=1
    fi
done

example=${KURER_EXAMPLE_CONF:-etc/relay.conf} # the test of this script points it elsewhere
conf_keys=$(sed -n 's/^#\{0,1\} *\([a-z_][a-z_]*\) = .*/\1/p' "$example" | sort -u)
for k in $code_keys; do
    if ! grep -qx "$k" <<<"$conf_keys"; then
        echo "$example: configuration key '$k' is missing (add '# $k = <its default, or an example>')"
        bad=1
    fi
done
for k in $conf_keys; do
    if ! grep -qx "$k" <<<"$code_keys"; then
        echo "$example: lists '$k', which the relay does not know"
        bad=1
    fi
done

# A paragraph (lines joined) that names the sqlcipher shell or PRAGMA key together with .backup
# must be a warning against it.
if awk 'BEGIN { RS = ""; bad = 0 }
        /\.backup/ && (/sqlcipher/ || /PRAGMA key/) && !/do \*\*not\*\*|never|plaintext/ {
            print FILENAME ": " substr($0, 1, 200); bad = 1 }
        END { exit !bad }' docs/*.md README.md; then
    echo "docs: the paragraphs above advise an online backup through the sqlcipher shell, which"
    echo "      writes a plaintext copy of the relay database"
    bad=1
fi

[ "$bad" -eq 0 ] && echo "docs: configuration keys (docs/relay.md, $example) and backup advice match the code"
exit "$bad"
