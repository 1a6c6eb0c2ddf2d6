#!/bin/sh
# test_no_check.sh SOURCE_DIR BUILD_DIR: configures and generates a fresh
# tree with -DBUILD_TESTING=OFF while pkg-config sees every .pc file of this
# machine except check.pc, and builds the installed library target. Fails if
# anything outside the tests still needs Check (pkg_check_modules REQUIRED,
# or a target linking PkgConfig::CHECK, fail at configure time).
set -eu
src=$1
build=$2
tmp=$(mktemp -d "$build/no-check-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_no_check: $*" >&2; exit 1; }

mkdir "$tmp/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' ') ${PKG_CONFIG_PATH:-}; do
    [ -d "$d" ] || continue
    for f in "$d"/*.pc; do
        [ -e "$f" ] || continue
        case $(basename "$f") in check.pc) continue ;; esac
        [ -e "$tmp/pc/$(basename "$f")" ] || ln -s "$f" "$tmp/pc/"
    done
done
export PKG_CONFIG_LIBDIR="$tmp/pc"
unset PKG_CONFIG_PATH
pkg-config --exists libuv || fail "the hidden pkg-config path lost libuv"
! pkg-config --exists check || fail "check.pc is still visible"
cmake -S "$src" -B "$tmp/b" -DCMAKE_BUILD_TYPE=Debug -DBUILD_TESTING=OFF >"$tmp/log" 2>&1 ||
    { cat "$tmp/log" >&2; fail "configure with BUILD_TESTING=OFF failed without check.pc"; }
grep -q "BUILD_TESTING:BOOL=OFF" "$tmp/b/CMakeCache.txt" || fail "BUILD_TESTING not OFF"
[ ! -e "$tmp/b/tests" ] || fail "tests configured although BUILD_TESTING=OFF"
# Everything builds too (no test code is compiled, so no check.h either).
cmake --build "$tmp/b" -j2 >>"$tmp/log" 2>&1 ||
    { tail -n 30 "$tmp/log" >&2; fail "build with BUILD_TESTING=OFF failed"; }
echo "test_no_check: ok"
echo "1 passed, 0 failed"
