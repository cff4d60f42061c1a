#!/usr/bin/env bash
# What `make install` delivers, staged: installs BUILD_DIR into a temporary DESTDIR under the
# prefix /opt/kurer (off every default search path), checks the installed files, then builds
# tests/install/use_kurer.c with only what `pkg-config --cflags --libs kurer` says (the staged
# kurer.pc, PKG_CONFIG_SYSROOT_DIR for the DESTDIR) and runs it against the staged libkurer.so.
# Usage: check_install.sh SRC_DIR BUILD_DIR CC [FLAGS...] (FLAGS: the sanitizer flags the build
# used, which an instrumented libkurer.so needs in the program too).
set -euo pipefail
top=${1:?usage: check_install.sh SRC_DIR BUILD_DIR CC [FLAGS...]}
build=${2:?}
cc=${3:?}
shift 3
prefix=/opt/kurer
stage=$(mktemp -d "${TMPDIR:-/tmp}/kurer-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
fail() {
    echo "install: $*"
    echo "install: FAILED"
    exit 1
}

if ! DESTDIR=$root cmake --install "$build" --prefix "$prefix" >"$stage/install.log" 2>&1; then
    cat "$stage/install.log"
    fail "cmake --install failed"
fi
p=$root$prefix

for b in kurer kurer-admin kurer-relay; do
    [ -x "$p/bin/$b" ] || fail "bin/$b was not installed"
done
for f in share/man/man1/kurer.1 share/man/man8/kurer-admin.8 share/man/man8/kurer-relay.8 \
    share/man/man5/relay.conf.5 share/bash-completion/completions/kurer \
    share/bash-completion/completions/kurer-admin share/bash-completion/completions/kurer-relay; do
    [ -f "$p/$f" ] || fail "$f was not installed"
done

# The relay's example configuration and its systemd units, as in the source tree.
for f in etc/kurer/relay.conf:etc/relay.conf lib/systemd/system/kurer-relay.service:etc/systemd/kurer-relay.service \
    lib/systemd/system/kurer-relay@.service:etc/systemd/kurer-relay@.service \
    lib/systemd/user/kurer-daemon@.service:etc/systemd/user/kurer-daemon@.service; do
    cmp -s "$p/${f%%:*}" "$top/${f#*:}" || fail "${f%%:*} was not installed (or differs from ${f#*:})"
done

pc=$(find "$p" -name kurer.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || fail "no lib/pkgconfig/kurer.pc"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
echo "install: libdir ${libdir#"$root"}, kurer.pc in ${pcdir#"$root"}"

# libkurer.so -> libkurer.so.1 -> libkurer.so.<version>, SONAME libkurer.so.1.
if [ ! -L "$libdir/libkurer.so" ] || [ "$(readlink "$libdir/libkurer.so")" != libkurer.so.1 ]; then
    fail "libkurer.so is not a symlink to libkurer.so.1"
fi
real=$(readlink "$libdir/libkurer.so.1") || fail "libkurer.so.1 is not a symlink"
if [ ! -f "$libdir/$real" ] || [ -L "$libdir/$real" ]; then
    fail "libkurer.so.1 -> $real is not a file"
fi
soname=$(readelf -d "$libdir/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libkurer.so.1 ] || fail "$real has SONAME '$soname', not libkurer.so.1"

# The installed headers are exactly kurer.h and what it includes.
want=$("$top/tests/check_symbols.sh" --headers "$top" | xargs -n1 basename | LC_ALL=C sort)
have=$(find "$p/include/kurer" -mindepth 1 -printf '%f\n' | LC_ALL=C sort)
[ "$want" = "$have" ] || fail "include/kurer/ holds [$(tr '\n' ' ' <<<"$have")], kurer.h needs [$(tr '\n' ' ' <<<"$want")]"

export PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH='' PKG_CONFIG_SYSROOT_DIR=$root
v=$(pkg-config --variable=prefix kurer)
[ "${v#"$root"}" = "$prefix" ] || fail "kurer.pc has prefix=$v, not $prefix"
cflags=$(pkg-config --cflags kurer)
libs=$(pkg-config --libs kurer)
echo "install: pkg-config --cflags --libs kurer: $cflags $libs"

exe=$stage/use_kurer
# shellcheck disable=SC2086 # pkg-config's output is a list of words
if ! "$cc" "$@" -std=c11 -Wall -Wextra -Werror -pedantic $cflags \
    "$top/tests/install/use_kurer.c" -o "$exe" $libs; then
    fail "use_kurer.c did not build against the installed header and library"
fi
needed=$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
grep -qx libkurer.so.1 <<<"$needed" || fail "use_kurer does not need libkurer.so.1"
found=$(LD_LIBRARY_PATH=$libdir ldd "$exe" | awk '$1 == "libkurer.so.1" { print $3 }')
[ "$found" = "$libdir/libkurer.so.1" ] || fail "use_kurer loads libkurer.so.1 from '$found'"
LD_LIBRARY_PATH=$libdir "$exe" "$stage/no-such-home" || fail "use_kurer failed"
echo "install: ok"
