#!/bin/sh
# test_install.sh BUILD_DIR TARGET: installs BUILD_DIR into a temporary
# prefix and checks the installed wlprof end to end.
set -eu
build=$1
target=$2
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
echo "test_install: ok"
echo "1 passed, 0 failed"
