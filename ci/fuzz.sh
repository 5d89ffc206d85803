#!/usr/bin/env bash
# Runs libFuzzer harnesses for a fixed time each.
#
#   ci/fuzz.sh SECONDS BIN...
#
# Each BIN (build/fuzz/fuzz_NAME) runs for SECONDS on a temporary copy of
# its seed corpus tests/fuzz/corpus/NAME (so the committed corpus does not
# grow), with tests/fuzz/fuzz_NAME.dict when there is one.  A crash, leak,
# timeout or out-of-memory fails the run; its reproducer is kept under
# $BUILD/fuzz-artifacts/fuzz_NAME/ (BUILD defaults to build).  A missing BIN is skipped, loudly.
# FUZZ_JOBS harnesses run at once (default 2: one per core).
set -euo pipefail

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS BIN..." >&2
    exit 2
fi
secs=$1
shift

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
art=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
jobs=${FUZZ_JOBS:-2}
mkdir -p "$art"
work=$(mktemp -d /tmp/ngx-payments-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
skipped=0
declare -A names=()

# Starts one harness in the background; records its pid.
start() {
    local bin=$1 name corpus seed args
    name=$(basename "$bin")
    corpus=$work/$name
    seed=$top/tests/fuzz/corpus/${name#fuzz_}
    mkdir -p "$corpus" "$art/$name"
    if [ -d "$seed" ]; then
        cp -R "$seed/." "$corpus/"
    else
        echo "fuzz: $name: no seed corpus at tests/fuzz/corpus/${name#fuzz_}"
    fi
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 -artifact_prefix="$art/$name/")
    if [ -f "$top/tests/fuzz/$name.dict" ]; then
        args+=(-dict="$top/tests/fuzz/$name.dict")
    fi
    echo "fuzz: $name: ${secs}s on $(find "$corpus" -type f | wc -l) seeds"
    "$bin" "${args[@]}" "$corpus" >"$art/$name.log" 2>&1 &
    names[$!]=$name
}

# Waits for one harness and reports it.
reap() {
    local pid rc=0 name
    wait -n -p pid || rc=$?
    name=${names[$pid]}
    unset "names[$pid]"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz: $name: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
            "$art/$name.log" | grep -o '[0-9]*$' || echo '?') runs)"
    else
        failed=$((failed + 1))
        echo "fuzz: $name: FAILED (exit $rc); log: $art/$name.log"
        grep -E -A25 'ERROR: |==[0-9]+== ?ERROR|runtime error:|deadly signal|Test unit written' \
            "$art/$name.log" | head -60 || tail -40 "$art/$name.log"
        ls -l "$art/$name/" 2>/dev/null || true
    fi
}

for bin in "$@"; do
    if [ ! -x "$bin" ]; then
        echo "fuzz: WARNING: $bin is absent: SKIPPED" >&2
        echo "fuzz: $(basename "$bin"): SKIPPED (no binary)"
        skipped=$((skipped + 1))
        continue
    fi
    while [ "${#names[@]}" -ge "$jobs" ]; do reap; done
    start "$bin"
done
while [ "${#names[@]}" -gt 0 ]; do reap; done

echo "fuzz: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
