#!/bin/sh
# speedscope_schema.sh -- wlprof's speedscope output validates against the
# file-format schema speedscope publishes (dist/release/file-format-schema.json
# in the `speedscope` npm package), fetched at test time with `npm pack`
# (nothing vendored) and checked with Debian's python3-jsonschema.
# Exits 77 (skipped) when npm, the npm registry or python3-jsonschema is
# not there: CI may have no network beyond Debian's mirror.
# Usage: speedscope_schema.sh WLPROF TARGET
set -u
wlprof=$1
target=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
skip() { echo "skipped: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || skip "npm is not installed"
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed"
(cd "$tmp" && timeout 120 npm pack --silent speedscope >/dev/null 2>&1) || skip "the npm registry is unreachable"
tar -xzf "$tmp"/speedscope-*.tgz -C "$tmp" package/dist/release/file-format-schema.json 2>/dev/null ||
    fail "the speedscope package has no dist/release/file-format-schema.json"

TMPDIR=$tmp ASAN_OPTIONS=verify_asan_link_order=0 "$wlprof" profile -q -o "$tmp/r.json" --speedscope "$tmp/s.json" \
    -- "$target" 4 30 || fail "wlprof profile failed"
"$wlprof" report -q --speedscope "$tmp/s2.json" "$tmp/r.json" || fail "wlprof report --speedscope failed"

for f in "$tmp/s.json" "$tmp/s2.json"; do
    /usr/bin/python3 - "$tmp/package/dist/release/file-format-schema.json" "$f" <<'PY' || fail "$f does not validate"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
# The published schema's root is a $ref to FileFormat.File.
jsonschema.validate(doc, schema)
assert doc["profiles"], "no profiles"
assert all(p["type"] == "evented" and p["events"] for p in doc["profiles"]), "an empty or non-evented profile"
print("%s: %d profiles valid against speedscope's schema" % (sys.argv[2], len(doc["profiles"])))
PY
done
exit 0
