#!/usr/bin/env bash
# Fails if any C file of ours differs from what clang-format (.clang-format) makes of it.
# `make format` fixes them.
set -euo pipefail
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
mapfile -t files < <(find base proto crypto net relay client admin mobile tests bench \
    -name '*.[ch]' -not -path '*/build*' 2>/dev/null | sort)
if ! clang-format --dry-run --Werror "${files[@]}"; then
    echo "format: FAILED (run make format)"
    exit 1
fi
echo "format: ok (${#files[@]} files)"
