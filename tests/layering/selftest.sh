#!/bin/sh
# selftest.sh CHECK BUILD_DIR: check-layering passes a small tree that keeps
# the order, and fails (naming the line) on each kind of violation.
set -eu
check=$1
tmp=$(mktemp -d "$2/layering-selftest-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "layering_selftest: $*" >&2; exit 1; }

mk() { mkdir -p "$(dirname "$tmp/$1")"; printf '%s\n' "$2" >"$tmp/$1"; }
reset() {
    rm -rf "$tmp/t"; mkdir -p "$tmp/t/include/wlprof"
    for h in common bytes profile_model profiler profile classify report stacks sched pools run; do
        mk "t/include/wlprof/$h.h" '#include "wlprof/common.h"'
    done
    mk t/include/wlprof/common.h '/* bottom */'
    mk t/util/util.h '#include "wlprof/common.h"'
    mk t/model/profile.c '#include "wlprof/profile_model.h"
#include "util/util.h"'
    mk t/classifier/classify.c '#include "wlprof/classify.h"
#include "wlprof/profile_model.h"'
    mk t/pools/internal.h '#include "wlprof/pools.h"'
    mk t/pools/procpool.c '#include "internal.h"
#include "wlprof/sched.h"
#include "util/util.h"'
    mk t/cli/main.c '#include "wlprof/run.h"
#include "wlprof/stacks.h"'
    printf 'wl_pools wl_scheduler wl_util PkgConfig::LIBUV m\nwl_classifier wl_model\nwlprof wl_runner wl_pools\n' >"$tmp/links"
}
expect_fail() { # expect_fail WHAT PATTERN
    if out=$(sh "$check" "$tmp/t" "$tmp/links" 2>&1); then
        fail "$1 was not caught"
    fi
    echo "$out" | grep -q "$2" || fail "$1: unexpected message: $out"
}

reset
sh "$check" "$tmp/t" "$tmp/links" >/dev/null || fail "a clean tree fails: $(sh "$check" "$tmp/t" "$tmp/links" 2>&1)"

reset; mk t/model/profile.c '#include "wlprof/classify.h"'
expect_fail "an upward include" 'model/profile.c:1: model (rank 1) includes "wlprof/classify.h" of classifier (rank 2): upward'
reset; mk t/model/profile.c '#include "wlprof/sched.h"'
expect_fail "a sideways include" 'sideways'
reset; mk t/util/util.h '#include "wlprof/pools.h"'
expect_fail "util using pools" 'util/util.h:1: util (rank 0)'
reset; mk t/include/wlprof/profile_model.h '#include "wlprof/run.h"'
expect_fail "a public header including upward" 'include/wlprof/profile_model.h:1: model'
reset; mk t/classifier/classify.c '#include "wlprof/profile.h"'
expect_fail "the classifier taking the profiler's header" 'classifier/classify.c:1: classifier (rank 2) includes "wlprof/profile.h" of profiler (rank 2): sideways'
reset; mk t/model/profile.c '#include "wlprof/profiler.h"'
expect_fail "the model taking the profiler's header" 'model/profile.c:1: model (rank 1) includes "wlprof/profiler.h" of profiler (rank 2): upward'
reset; mk t/pools/procpool.c '#include "../runner/internal.h"'
expect_fail "a relative path to another module" 'not found beside it'
reset; mk t/include/wlprof/newthing.h '/* nobody owns me */'
expect_fail "an unowned public header" 'public header of no module'
reset; printf 'wl_classifier wl_model wl_profiler\n' >"$tmp/links"
expect_fail "a sideways link (classifier -> profiler)" 'wl_classifier (classifier, rank 2) links wl_profiler'
reset; printf 'wl_scheduler wl_pools\n' >"$tmp/links"
expect_fail "an upward link" 'upward'
reset; mk t/model/profile.c '#include "wlprof/outputs.h"'
sh "$check" "$tmp/t" "$tmp/links" >/dev/null || fail "the atomic output files are not util's (rank 0): $(sh "$check" "$tmp/t" "$tmp/links" 2>&1)"
reset; mk t/include/wlprof/outputs.h '#include "wlprof/report.h"'
expect_fail "the output files' header using reports" 'include/wlprof/outputs.h:1: util (rank 0)'
echo "layering_selftest: ok"
echo "1 passed, 0 failed"
