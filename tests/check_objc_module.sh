#!/usr/bin/env bash
# The iOS module (mobile/ios/module.modulemap, umbrella mobile/ios/Kurer.h), as an app sees it
# (ctest mobile_objc_module). Stages the Headers/ folder an xcframework would carry (the module
# map and Kurer.h beside kurer/ with the public headers that tests/check_symbols.sh --headers
# lists, the ones `make install` ships), then fails:
#   (a) if a public header is not reached from the umbrella (clang -M of Kurer.h against the
#       list), or the umbrella reaches a kurer/ header that is not public;
#   (b) if tests/mobile/use_kurer.m (`@import Kurer;` and the calls an app makes) does not compile
#       with clang -fmodules -Werror and the nullability warnings;
#   (c) if tests/mobile/nonnull_fail.m (NULL passed where the headers say non-NULL) does not fail
#       with exactly its expected number of -Wnonnull errors: the annotations are real;
#   (d) if a header put in the staged kurer/ but left out of the umbrella does not fail the
#       compile (-Wincomplete-umbrella): the module is not [system] and clang checks it too.
# Usage: check_objc_module.sh SRC_DIR [CLANG]. Syntax only: no Objective-C runtime, no
# Foundation, no Apple SDK needed.
set -euo pipefail
top=${1:?usage: check_objc_module.sh SRC_DIR [CLANG]}
clang=${2:-clang}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kurer-objc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "objc-module: $*"
    echo "objc-module: FAILED"
    exit 1
}

# The staged Headers/ folder.
hdr=$tmp/Headers
mkdir -p "$hdr/kurer"
cp "$top/mobile/ios/module.modulemap" "$top/mobile/ios/Kurer.h" "$hdr/"
mapfile -t public < <("$top/tests/check_symbols.sh" --headers "$top")
[ ${#public[@]} -gt 0 ] || fail "check_symbols.sh --headers listed no headers"
for h in "${public[@]}"; do
    b=$(basename "$h")
    [ ! -e "$hdr/kurer/$b" ] || fail "two public headers named kurer/$b"
    cp "$h" "$hdr/kurer/$b"
done
want=$(printf '%s\n' "${public[@]}" | xargs -n1 basename | LC_ALL=C sort)

# (a) What the umbrella reaches (its dependencies under the staged kurer/).
"$clang" -x c -std=c11 -M -I"$hdr" "$hdr/Kurer.h" >"$tmp/deps" || fail "clang -M Kurer.h failed"
have=$(tr ' \\' '\n\n' <"$tmp/deps" | grep -F "$hdr/kurer/" | xargs -n1 basename | LC_ALL=C sort -u)
if [ "$want" != "$have" ]; then
    echo "objc-module: public headers (check_symbols.sh --headers): $(tr '\n' ' ' <<<"$want")"
    echo "objc-module: reached from mobile/ios/Kurer.h:             $(tr '\n' ' ' <<<"$have")"
    fail "the umbrella header does not include exactly the public headers"
fi

flags=(-x objective-c -std=gnu11 -fmodules -fmodules-cache-path="$tmp/cache" -fsyntax-only
    -Werror -Wall -Wextra -Wpedantic -Wno-gnu-zero-variadic-macro-arguments
    -Wnullability-completeness -Wnullability-completeness-on-arrays
    -Wnullable-to-nonnull-conversion -Wincomplete-umbrella -Wincomplete-module
    -Wstrict-prototypes -Wnon-modular-include-in-module
    -Wno-error=non-modular-include-in-module -I"$hdr")

# (b) The app's use compiles, warning-free but for one thing: glibc has no module map, so here
# <stddef.h> and <stdint.h> are non-modular (on Apple platforms the Darwin module holds them).
# Every other header a public header includes from outside kurer/ fails: an xcframework ships
# only these headers, so no <uv.h>, <sodium.h> or internal header in a public one.
if ! "$clang" "${flags[@]}" "$top/tests/mobile/use_kurer.m" >"$tmp/use.log" 2>&1; then
    cat "$tmp/use.log"
    fail "tests/mobile/use_kurer.m did not compile through the Kurer module"
fi
nonmod=$(sed -n "s/.*include of non-modular header inside module 'Kurer': '\(.*\)'.*/\1/p" \
    "$tmp/use.log" | xargs -r -n1 basename | LC_ALL=C sort -u)
extra=$(grep -vxE 'stddef\.h|stdint\.h' <<<"$nonmod" || true)
if [ -n "$extra" ] || grep ': warning: ' "$tmp/use.log" | grep -qv 'non-modular-include-in-module'; then
    cat "$tmp/use.log"
    fail "use_kurer.m: warnings beyond the host's non-modular <stddef.h> and <stdint.h>"
fi
echo "objc-module: use_kurer.m compiles with @import Kurer (${#public[@]} public headers)"

# (c) NULL where non-NULL is required: one error per marked argument in nonnull_fail.m.
expect=$(grep -o 'NONNULL [a-z]' "$top/tests/mobile/nonnull_fail.m" | wc -l)
if "$clang" "${flags[@]}" "$top/tests/mobile/nonnull_fail.m" >"$tmp/neg.log" 2>&1; then
    fail "tests/mobile/nonnull_fail.m compiled: NULL for a non-NULL parameter is not caught"
fi
got=$(grep -c 'error: null passed to a callee that requires a non-null argument \[-Werror,-Wnonnull\]' "$tmp/neg.log" || true)
others=$(grep ': error: ' "$tmp/neg.log" | grep -vc '\[-Werror,-Wnonnull\]' || true)
if [ "$got" != "$expect" ] || [ "$others" != 0 ]; then
    cat "$tmp/neg.log"
    fail "nonnull_fail.m: $got -Wnonnull errors (want $expect) and $others other errors (want 0)"
fi
echo "objc-module: nonnull_fail.m fails as it should ($got -Wnonnull errors)"

# (d) clang's own check of the umbrella: a header beside the public ones, not included, fails.
printf '#ifndef KURER_STRAY_H\n#define KURER_STRAY_H\nint kurer_stray(void);\n#endif\n' \
    >"$hdr/kurer/stray.h"
rm -rf "$tmp/cache"
if "$clang" "${flags[@]}" "$top/tests/mobile/use_kurer.m" >"$tmp/stray.log" 2>&1; then
    fail "a header missing from the umbrella (kurer/stray.h) did not fail the compile"
fi
grep -q 'incomplete-umbrella' "$tmp/stray.log" || {
    cat "$tmp/stray.log"
    fail "kurer/stray.h failed the compile, but not with -Wincomplete-umbrella"
}
echo "objc-module: a header left out of the umbrella fails (-Wincomplete-umbrella)"
echo "objc-module: ok"
