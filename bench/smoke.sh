#!/usr/bin/env bash
# A benchmark's smoke run (ctest bench_smoke_<name>): it must run and print valid JSON lines with
# the fixed keys. Nothing about performance is checked.
# Usage: smoke.sh BENCH_BIN CHECK_BIN NAMES [BENCH_ARGS...]
set -euo pipefail
bin=$1 check=$2 names=$3
shift 3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --smoke "$@" >"$out"
cat "$out"
"$check" "$names" <"$out"
