#!/usr/bin/env bash
# Checks how the built executables and shared libraries (libkurer.so) are linked (docs/libraries.md, "Link order and symbol
# clashes"). Usage: check_linkage.sh BUILD_DIR
#
# (a) Every ELF executable and shared library (lib*.so*) under BUILD_DIR: ldd shows no plain libsqlite3 (libsqlcipher is fine);
#     if it needs libsignal-protocol-c, every protobuf_c_* it imports is versioned
#     (@LIBPROTOBUF_C_1.0.0, i.e. bound to libprotobuf-c at link time) and libsodium and
#     libprotobuf-c come before libsignal-protocol-c in its DT_NEEDED list. The order matters on
#     its own: glibc lets an unversioned definition (libsignal's copy) satisfy a versioned
#     reference, so whichever library is loaded first wins.
# (b) The deliberately mis-ordered fixture (tests/unit/crypto: linkage_misordered) must fail (a)
#     and its kurer__linkage_check must report ELINKAGE: proof that both checks can fail.
set -euo pipefail
build=${1:?usage: check_linkage.sh BUILD_DIR}
fixture_name=linkage_misordered

# Prints the problems of one executable, one per line; nothing if it is linked correctly.
problems() {
    local exe=$1 needed out
    out=$(ldd "$exe" 2>&1) || true
    if grep -qE '(^|[[:space:]/])libsqlite3\.so' <<<"$out"; then
        echo "links plain libsqlite3 (only libsqlcipher is allowed)"
    fi
    needed=$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    grep -q '^libsignal-protocol-c\.so' <<<"$needed" || return 0

    local unversioned
    unversioned=$(nm -D --undefined-only "$exe" | awk '$2 ~ /^protobuf_c_/ && $2 !~ /@LIBPROTOBUF_C_/ {print $2}')
    if [ -n "$unversioned" ]; then
        echo "unversioned protobuf-c imports (bound to libsignal's copy):" $unversioned
    fi
    local n_signal n_lib lib
    n_signal=$(grep -n '^libsignal-protocol-c\.so' <<<"$needed" | head -1 | cut -d: -f1)
    for lib in libsodium libprotobuf-c; do
        n_lib=$(grep -n "^$lib\\.so" <<<"$needed" | head -1 | cut -d: -f1 || true)
        if [ -n "$n_lib" ] && [ "$n_lib" -gt "$n_signal" ]; then
            echo "$lib is loaded after libsignal-protocol-c (DT_NEEDED order)"
        fi
    done
}

# An executable, or a shared library of ours (symlinks to it are not followed: find -type f).
is_elf_checked() {
    [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] || return 1
    case $(basename "$1") in
    lib*.so*) return 0 ;;
    esac
    readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

fail=0
checked=0
fixture=
while IFS= read -r -d '' f; do
    is_elf_checked "$f" || continue
    if [ "$(basename "$f")" = "$fixture_name" ]; then
        fixture=$f
        continue
    fi
    checked=$((checked + 1))
    p=$(problems "$f")
    if [ -n "$p" ]; then
        while IFS= read -r line; do echo "link_check: ${f#"$build"/}: $line"; done <<<"$p"
        fail=1
    fi
done < <(find "$build" -type f -perm -u+x -not -path '*/CMakeFiles/*' -print0)

if [ -z "$fixture" ]; then
    echo "link_check: the fixture $fixture_name was not built under $build"
    exit 1
fi

# (b) the fixture must be caught by both the static check and the run-time check.
p=$(problems "$fixture")
if [ -z "$p" ]; then
    echo "link_check: $fixture_name is not mis-ordered as intended (check (a) found nothing)"
    fail=1
else
    echo "link_check: $fixture_name, as expected:"
    sed 's/^/link_check:   /' <<<"$p"
fi
out=$("$fixture" 2>&1) || {
    echo "link_check: $fixture_name crashed:"
    echo "$out"
    exit 1
}
sed 's/^/link_check:   /' <<<"$out"
if ! grep -qx 'kurer__linkage_check: ELINKAGE' <<<"$out"; then
    echo "link_check: kurer__linkage_check did not report ELINKAGE for $fixture_name"
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    echo "link_check: FAILED"
    exit 1
fi
echo "link_check: ok ($checked executables and libraries checked)"
