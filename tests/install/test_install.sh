#!/bin/sh
# test_install.sh BUILD_DIR TARGET SOURCE_DIR CC SANITIZE: installs BUILD_DIR
# into a temporary prefix and checks the installed wlprof end to end: the
# binary finds its agent; libwlprof exports exactly the installed headers'
# WL_API functions; the tutorial's create_task example builds against the
# installed files alone, with pkg-config and with find_package(wlprof), and
# its two tasks overlap.
set -eu
build=$1
target=$2
src=$3
cc=$4
sanitize=$5
prefix=$(mktemp -d "$build/install-test-XXXXXX")
trap 'rm -rf "$prefix"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
wlprof="$prefix/bin/wlprof"
[ -x "$wlprof" ] || fail "no $wlprof"
[ -f "$prefix/share/man/man1/wlprof.1" ] || fail "no man page"
[ -f "$prefix/include/wlprof/sched.h" ] || fail "no public headers"
"$wlprof" --version | grep -q '^wlprof ' || fail "--version"

# The installed binary must find the installed agent: function names appear.
out=$("$wlprof" profile --quiet --folded "$prefix/stacks.folded" -- "$target" 2>&1) ||
    fail "profile failed: $out"
grep -q agent_compute "$prefix/stacks.folded" || fail "no stacks from the installed agent"

# The library: a soname, a static archive, no fixture or uninstalled API.
libdir=$(dirname "$(find "$prefix" -name wlprof.pc | head -n 1)")/..
[ -f "$libdir/wlprof.pc" ] || [ -f "$libdir/pkgconfig/wlprof.pc" ] || fail "no wlprof.pc"
lib=$(ls "$libdir"/libwlprof.so.*.*.* 2>/dev/null | head -n 1)
[ -n "$lib" ] || fail "no libwlprof.so.X.Y.Z"
[ -f "$libdir/libwlprof.a" ] || fail "no libwlprof.a"
readelf -d "$lib" | grep -q 'SONAME.*libwlprof\.so\.[0-9]*\]' || fail "no soname"
[ -L "$libdir/libwlprof.so" ] || fail "no libwlprof.so development link"
for h in httpd.h samples.h agent.h; do
    [ ! -e "$prefix/include/wlprof/$h" ] || fail "$h is installed"
done
! ls "$libdir"/libwl_* >/dev/null 2>&1 || fail "module archives installed"
[ -f "$libdir/cmake/wlprof/wlprofConfig.cmake" ] || fail "no CMake package"

# Exports: exactly the WL_API functions the installed headers declare.
sed -n 's/^WL_API[^(]*[ *]\([a-z_0-9]*\)(.*/\1/p' "$prefix"/include/wlprof/*.h | sort -u \
    >"$prefix/declared"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$prefix/exported"
[ -s "$prefix/declared" ] || fail "no WL_API declarations found"
extra=$(comm -13 "$prefix/declared" "$prefix/exported")
missing=$(comm -23 "$prefix/declared" "$prefix/exported")
[ -z "$extra" ] || fail "exported but not public API: $(echo $extra)"
[ -z "$missing" ] || fail "declared WL_API but not in libwlprof: $(echo $missing)"

# create_task against the installed files alone.
check_run() { # check_run PROGRAM LABEL
    line=$("$1" | grep '^elapsed=') || fail "$2: create_task failed"
    echo "test_install: $2: $line"
    # Both tasks were spawned before either was awaited: the 2 s task was
    # already sleeping when the 1 s one woke (start2 < end1), whatever the
    # load. The wall time is one 2 s sleep plus scheduling delay: at least
    # 1.9 s (timers may round), well under the 3 s the sleeps add up to.
    echo "$line" | tr ' =' '\n ' | awk -v what="$2" '
        { v[$1] = $2 }
        END {
            el = v["elapsed"]; sum = (v["end1"] - v["start1"]) + (v["end2"] - v["start2"])
            if (!(v["start2"] < v["end1"])) { print what ": tasks did not overlap"; exit 1 }
            if (el < 1.9 || el > 3.5) { print what ": elapsed " el " s, not about 2 s"; exit 1 }
            if (!(el < sum - 0.5)) { print what ": elapsed " el " s is no less than the sleeps (" sum " s)"; exit 1 }
        }' >&2 || fail "$2: wrong timing"
}
san=""
[ "$sanitize" = ON ] && san="-fsanitize=address,undefined"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists wlprof || fail "pkg-config does not find wlprof"
# Every installed header compiles on its own with the .pc's flags alone.
for h in "$prefix"/include/wlprof/*.h; do
    # shellcheck disable=SC2046
    echo "#include <wlprof/$(basename "$h")>" |
        "$cc" -fsyntax-only -Wall -Werror -x c - $(pkg-config --cflags wlprof) ||
        fail "wlprof/$(basename "$h") does not compile on its own"
done
# shellcheck disable=SC2046
"$cc" $san -o "$prefix/create_task_pc" "$src/tests/install/create_task.c" \
    $(pkg-config --cflags --libs wlprof) -Wl,-rpath,"$(pkg-config --variable=libdir wlprof)" ||
    fail "cc with pkg-config failed"
check_run "$prefix/create_task_pc" pkg-config

cmake -S "$src/tests/install/consumer" -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" \
    -DCREATE_TASK_SOURCE="$src/tests/install/create_task.c" \
    -DPARTS_SOURCE="$src/tests/install/parts.c" >"$prefix/consumer.log" 2>&1 ||
    { cat "$prefix/consumer.log" >&2; fail "find_package(wlprof) project does not configure"; }
cmake --build "$prefix/consumer" >>"$prefix/consumer.log" 2>&1 ||
    { cat "$prefix/consumer.log" >&2; fail "find_package(wlprof) project does not build"; }
check_run "$prefix/consumer/create_task" "find_package shared"
check_run "$prefix/consumer/create_task_static" "find_package static"
readelf -d "$prefix/consumer/create_task_static" | grep -q 'libwlprof\.so' &&
    fail "the static consumer links libwlprof.so"
# The other parts: model, report, classifier, pools.
parts=$("$prefix/consumer/parts") || fail "parts failed"
[ "$parts" = "kind=io_bound wait=0.90 poll=1" ] || fail "parts printed '$parts'"
parts=$("$prefix/consumer/parts_static") || fail "parts_static failed"
[ "$parts" = "kind=io_bound wait=0.90 poll=1" ] || fail "parts_static printed '$parts'"

echo "test_install: ok"
echo "1 passed, 0 failed"
