#!/usr/bin/env bash
# ci/build-module.sh in a build directory whose path nginx's auto/make
# mangles when it reaches its object list, a directory named "<x>.S..."
# (its sed turns ".S" into ".o" anywhere in a path; mktemp names such a
# directory one time in 62).  It is configured and make asked, without
# compiling, what it would do: every object must have its rule.  (A plain
# directory is the module's own build, make module: a configure, ~40 s of
# processor time, saved here.)  Prints "buildmodule: N passed, N failed".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/build-module-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
for name in x.Sab; do
    if BUILD_MODULE_DRY=1 bash "$top/ci/build-module.sh" "$tmp/$name/nginx" >"$tmp/$name.log" 2>&1; then
        passed=$((passed + 1))
    else
        echo "buildmodule: the module's build in $tmp/$name/nginx has objects without a rule:" >&2
        tail -5 "$tmp/$name.log" >&2
        failed=$((failed + 1))
    fi
done
echo "buildmodule: $passed passed, $failed failed"
[ "$failed" = 0 ]
