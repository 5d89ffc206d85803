#!/usr/bin/env bash
# Everything CI runs (`make test`, .ci/run): install dependencies, build,
# then the suites: unit, unit under ASan/UBSan, the mock PSP's own tests,
# a fuzz smoke run, end to end, the browser journeys, the docs against the code.  Every suite runs even when an earlier one
# failed (a suite whose build failed is skipped); the exit status is
# non-zero when anything failed.  The last line sums the suites:
# "N passed, N failed".
#
# Logs: build/test-logs/<step>.log.  FUZZ_SECONDS (default 10 here: a smoke
# run inside CI's 30 minutes; `make fuzz-smoke` runs 20) per harness.
# Budget on 2 cores (CI's is 30 minutes; a fresh clone took 26 min on
# 2026-12-02 with the packages already installed, 3,046 s of processor
# time used and 94 s idle: the run is bound by the processors, and only
# less work makes it shorter; the summary gives each step's processor
# time):
# dependencies (once) a few minutes, builds ~3 min (the module's and the
# browser suite's dependencies beside the others), e2e ~16 min in its
# lanes (ci/e2e.sh) with the group "checks" and the group "deb" (the
# Debian package's suite, then the fuzz smoke run) beside it, then the
# shards lane ~2 min, the debug run ~2.5 (sanitized), the browser and
# the demo ~1;
# the group "checks" ends last, ~3 min after them.  The summary prints
# each step's seconds.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
export BUILD=$build
logs=$build/test-logs
fuzz_seconds=${FUZZ_SECONDS:-10}
mkdir -p "$logs"

results=$logs/results.tsv
: >"$results"
declare -A broken=()     # build steps that failed

t0=$SECONDS

# The machine's processor time so far, "busy idle" in clock ticks, from
# /proc/stat's first line (idle counts iowait; steal is neither): the
# summary says how much of the run's processor time was used, whoever
# used it.  Empty where there is no /proc/stat.
cpu_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $5 + $6; exit }' /proc/stat 2>/dev/null || true
}
cpu0=$(cpu_ticks)

# Each step's own processor time, its daemons' included (a cluster or an
# nginx it starts, which leave its process tree): the step runs in a
# cgroup of its own under cgroup v1's cpuacct hierarchy, whose count
# follows every process forked inside it.  Where that hierarchy is not
# writable (not root, cgroup v2 only), the column says "-".
cpuacct_root=/sys/fs/cgroup/cpuacct
cpuacct_ok=
if [ -w "$cpuacct_root" ] && mkdir "$cpuacct_root/ci-$$-probe" 2>/dev/null; then
    # a process can be moved in too (else every step would say 0 s)
    if (echo "$BASHPID" >"$cpuacct_root/ci-$$-probe/cgroup.procs") 2>/dev/null; then
        cpuacct_ok=1
    fi
    rmdir "$cpuacct_root/ci-$$-probe" 2>/dev/null || true
fi

# Linux's autogroups (kernel.sched_autogroup_enabled, on by default): the
# scheduler weighs each session as if it were one process, whatever the
# nice of the processes in it, and PostgreSQL puts each of its processes
# in a session of its own (setsid).  So a group's nice 19 below did not
# reach the clusters its steps start: each backend of sql-check's or the
# Debian package's cluster weighed as much as this whole session (the CI
# shell, the tests, the mock PSP), and took its processor time from the
# timed suites.  Off for the run, nice is per
# process again, and a group takes what the foreground leaves: the e2e
# step took 1.15 times its time alone on the machine beside the groups
# (927 s against 806 s, 2026-12-02), 1.25 to 1.33 times with autogroups
# on (1,177-1,247 s against 939 s, 2026-12-01).  Root only; put back as
# it was when the run ends (not after a SIGKILL).
autogroup=/proc/sys/kernel/sched_autogroup_enabled
if [ -w "$autogroup" ] && [ "$(cat "$autogroup" 2>/dev/null)" = 1 ] &&
    { echo 0 >"$autogroup"; } 2>/dev/null
then
    trap 'echo 1 >"$autogroup"' EXIT
    echo "=== scheduler autogroups off for the run (nice is per process; back on at the end)"
fi

# Sums the Criterion syntheses in a log: "tested passing".
criterion_counts() {
    sed -n 's/.*Synthesis: Tested: \([0-9]*\) | Passing: \([0-9]*\) |.*/\1 \2/p' "$1" |
        awk '{ t += $1; p += $2 } END { print t + 0, p + 0 }'
}

# step NAME KIND CMD...: runs CMD, logs it, counts it.
#   KIND build: only a failure counts (1 failed)
#   KIND suite: Criterion syntheses, or a script's "NAME: N passed, N failed"
#               (fuzz, browser, deb, prom, docs), or
#               1 passed / 1 failed by exit status
step() {
    local name=$1 kind=$2 log rc=0 start t p f line cg= cpu=-
    shift 2
    log=$logs/$name.log
    start=$SECONDS
    echo
    echo "=== $name: $*"
    if [ -n "$cpuacct_ok" ] && mkdir "$cpuacct_root/ci-$$-$name" 2>/dev/null; then
        cg=$cpuacct_root/ci-$$-$name
    fi
    # pipefail: the command's status (tee's is 0)
    (if [ -n "$cg" ]; then echo "$BASHPID" >"$cg/cgroup.procs" 2>/dev/null || true; fi
        exec "$@") 2>&1 | tee "$log" || rc=$?
    if [ -n "$cg" ]; then
        cpu=$(($(cat "$cg/cpuacct.usage" 2>/dev/null || echo 0) / 1000000000))
        # a process the step left running keeps its cgroup: say so
        if ! rmdir "$cg" 2>/dev/null; then
            echo "=== $name: left running: $(tr '\n' ' ' <"$cg/cgroup.procs")"
        fi
    fi
    p=0
    f=0
    if [ "$kind" = build ]; then
        [ "$rc" -eq 0 ] || { f=1; broken[$name]=1; }
    elif grep -q 'Synthesis: Tested:' "$log"; then
        read -r t p < <(criterion_counts "$log")
        f=$((t - p))
        # a runner that died, or failed outside any test
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    elif line=$(grep -E '^(fuzz|browser|deb|prom|docs|demo|logscan|sql|sqlcheck|buildmodule|benchcalls|restore): [0-9]+ passed, [0-9]+ failed' "$log" | tail -1) && [ -n "$line" ]; then
        p=$(sed -E 's/^[a-z]+: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    elif [ "$rc" -eq 0 ]; then
        p=1
    else
        f=1
    fi
    # name, passed, failed, exit status, seconds, processor seconds ("-"
    # where unknown): summed at the end, also
    # for the steps of a group run in the background (group below)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$p" "$f" "$rc" "$((SECONDS - start))" "$cpu" >>"$results"
    echo "=== $name: exit $rc; $p passed, $f failed; $((SECONDS - start)) s, $cpu s of processor time"
    return 0
}

# group NAME FUNCTION: runs FUNCTION (steps one after the other) in the
# background beside what follows, at the lowest priority (nice 19), its
# output in build/test-logs/NAME.out; group_wait NAME prints that output
# once the group has ended.  A group holds steps that only need processor
# time, beside suites whose tests wait on time-outs and rounds: those keep
# the processor when they want it, and the group takes what they leave.
declare -A group_pids=()
group() {
    local name=$1 fn=$2
    echo
    echo "=== group $name: started at nice 19 (its output after it ends)"
    (renice -n 19 -p "$BASHPID" >/dev/null && "$fn") >"$logs/$name.out" 2>&1 &
    group_pids[$name]=$!
}
group_wait() {
    local name=$1 grc=0
    wait "${group_pids[$name]}" || grc=$?
    echo
    echo "=== group $name: ended (exit $grc)"
    cat "$logs/$name.out"
    if [ "$grc" -ne 0 ]; then
        printf '%s\t0\t1\t%s\t0\t-\n' "group-$name" "$grc" >>"$results"
    fi
}

# step_bg NAME KIND CMD...: a step run in the background, beside the
# steps that follow (its output in build/test-logs/NAME.out);
# step_join NAME waits for it, prints that output, and marks it broken
# when it failed.  For a build that leaves a processor idle (nginx's
# configure runs one test at a time).
declare -A bg_pids=()
step_bg() {
    local name=$1
    (step "$@") >"$logs/$name.out" 2>&1 &
    bg_pids[$name]=$!
}
step_join() {
    local name=$1
    wait "${bg_pids[$name]}" || true
    cat "$logs/$name.out"
    if awk -F'\t' -v n="$name" '$1 == n && $4 != 0 { bad = 1 } END { exit !bad }' "$results"; then
        broken[$name]=1
    fi
}

# skip NAME BUILD...: true (and says so) when a build it needs failed.
skip_if_broken() {
    local name=$1 b
    shift
    for b in "$@"; do
        if [ -n "${broken[$b]:-}" ]; then
            echo
            echo "=== $name: SKIPPED: $b failed"
            return 0
        fi
    done
    return 1
}

# --- dependencies --------------------------------------------------------------
step deps build bash ci/install-deps.sh --core
if [ -n "${broken[deps]:-}" ]; then
    echo "dependencies could not be installed: nothing else can run" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
# The browser suite's own (Debian's chromium, nodejs, npm; playwright-core):
# when they cannot be installed, this step fails, the other suites still run
# and so does the browser suite, which then fails too.  Never a skip.
# Beside the builds (it mostly waits on the network and dpkg); joined
# before the groups start, one of which runs apt-get too.
step_bg deps-browser build bash ci/install-deps.sh --browser

# The docs against the code (ci/doc-check.sh, a second): every directive has
# its reference entry, every SQL function the code calls its entry in
# doc/CONTRACTS.md, README.md stays a front door, no link leaves the tree.
step docs suite bash ci/doc-check.sh

# --- builds ----------------------------------------------------------------------
step build-core build make -j2 core
# the module (its configure mostly one process) beside the unit tests' and
# the mock's builds: each makes targets of its own, on the core just built
step_bg build-module build make module
step build-unit build make -j2 "$build/unit_tests" "$build/unit_tests-asan"
step build-mock build make -j2 mock mock-asan
step_join build-module
step build-e2e build make -j2 "$build/e2e_tests"
step build-reconcile build make -j2 reconcile
step build-secrets build make -j2 secrets
# the rest of what ci/e2e.sh checks for before it starts (the Makefile's
# E2E_DEPS: payments-events-verify, slow_dns.so, the receiver's packages),
# so that a tool added to the suite is built here too
step build-e2e-deps build make -j2 e2e-deps

mapfile -t fuzz_src < <(ls tests/fuzz/fuzz_*.c 2>/dev/null || true)
fuzz_bin=()
for s in "${fuzz_src[@]}"; do
    n=${s##*/}
    fuzz_bin+=("$build/fuzz/${n%.c}")
done
if [ ${#fuzz_bin[@]} -gt 0 ]; then
    # -k: one harness that does not build leaves the others to run
    step build-fuzz build make -k -j2 "${fuzz_bin[@]}"
fi

# --- suites -----------------------------------------------------------------------
# The suites whose tests wait on time-outs, sweeper rounds and a PSP's
# delays (e2e, then the debug run, the browser, the demo) run in the
# foreground; beside them, at nice 19, the ones that mostly need processor
# time (the group "checks", and the Debian package's suite), so that CI's
# two cores stay busy without slowing a timed test.  A group's output is
# printed when it ends.
step_join deps-browser
checks() {
    # The SQL's layout (ci/sql-check.sh, on a PostgreSQL of its own):
    # sql/schema.sql is a fresh migrate's, the baseline makes what the
    # history it folds made, databases of the earlier layouts upgrade to
    # it, one file per function with its triggers, a kept signature a
    # wrapper, no function in a migration, none executable by PUBLIC, a
    # SECURITY DEFINER one PL/pgSQL (but a wrapper) with its search_path
    # set, a migration adding an enum value adding nothing else.
    step sql-layout suite bash ci/sql-check.sh
    # The layout check against a planted tree (ci/sql-check-test.sh, two
    # runs of it, ~30 s): it passes on the committed tree, and a breach of
    # each of its rules, planted in a clone, is reported by its own message.
    # (its run of the committed tree is sql-layout's, on a clean clone)
    step sql-check-test suite env SQL_CHECK_CLEAN_LOG="$logs/sql-layout.log" \
        bash ci/sql-check-test.sh
    # A backup restored into another cluster (ci/restore-check.sh, two
    # throwaway clusters, ~30 s): pg_dump, pg_restore, payments-migrate,
    # and the events feed as the old cluster listed it, its cursors valid.
    step restore suite bash ci/restore-check.sh
    # the module's build in a directory named "<x>.S..." (nginx's auto/make
    # mangles such a path unless the build directory is relative), ~10 s
    step build-module-test suite bash ci/build-module-test.sh
    # the benchmarks' pgbench scripts call the pay_* functions with the
    # gateway's signatures, not a previous release's wrappers
    step bench-calls suite node ci/bench-calls-check.js
    # which file calls which: no cycle, the glue's map true (CONTRIBUTING.md)
    skip_if_broken callmap build-core build-module ||
        step callmap suite bash ci/callmap-check.sh
    skip_if_broken unit build-core build-unit ||
        step unit suite make unit
    skip_if_broken unit-asan build-core build-unit ||
        step unit-asan suite make unit-asan
    skip_if_broken mock-test build-mock ||
        step mock-test suite make mock-test
    # the e2e suite's notification receiver on its own (standardwebhooks
    # signs, it verifies; every answer mode), a few seconds
    step notify-receiver suite make notify-receiver-test
    # The log scan against planted logs: a token in a debug line of the
    # module's is found; nginx's own debug lines are not searched.
    step log-scan-test suite bash ci/log-scan-test.sh
    # what the packages ship built hardened as Debian builds its own
    # (RELRO, BIND_NOW, stack protector, fortify, PIE)
    skip_if_broken hardening build-module build-reconcile build-secrets build-e2e-deps ||
        step hardening suite make hardening-check
    # Prometheus: the alerting rules and their unit tests (promtool);
    # /metrics itself is checked by promtool at the end of the e2e suite.
    step prom suite bash ci/prom-test.sh rules
}
group checks checks

# The Debian package (ci/deb-test.sh): make deb, lintian, apt-get install,
# Debian's nginx on the packaged example with one payment, purge.  Beside
# the e2e suite too: it installs no package the suite uses (nginx and
# PostgreSQL are there already), and what it starts (Debian's nginx and
# cluster 15/main, the mock and the test environment) listens on ports of
# its own, as the suite's services do.
# The fuzz smoke run after it: the two groups then end about together (the
# checks group alone ended last, about a minute after the foreground).
deb() {
    skip_if_broken deb build-module build-mock ||
        step deb suite bash ci/deb-test.sh
    if [ ${#fuzz_bin[@]} -eq 0 ]; then
        echo
        echo "=== fuzz-smoke: WARNING: no harness in tests/fuzz/: nothing fuzzed"
    else
        step fuzz-smoke suite bash ci/fuzz.sh "$fuzz_seconds" "${fuzz_bin[@]}"
    fi
}
group deb deb

# The sanitized build for the debug run (below), made beside the e2e
# suite at nice 19: the suite mostly waits (~2.5 processor minutes).
step_bg build-asan build nice -n 19 make -j2 BUILD="$build" e2e-asan-deps

skip_if_broken e2e build-module build-mock build-e2e build-reconcile build-secrets build-e2e-deps ||
    step e2e suite bash ci/e2e.sh

# Merchant shards (doc/plans/shards.md): a stack of two PostgreSQL clusters,
# the shards_* suites (each route, every dialect's webhooks, background work
# per shard, a shard stopped, paused and read-only; the money checker's
# shards_books, two routed histories and its canary), then a part of the
# suite again with its merchants on the non-home shard b, and the
# invariants with theirs on both shards, ~2 min; `make e2e-shards` runs
# every routed suite there (~4 min), `make money-check SHARDS=1` the money
# checker.
skip_if_broken e2e-shards build-module build-mock build-e2e build-reconcile build-secrets build-e2e-deps ||
    step e2e-shards suite env E2E_SHARDS=1 \
        E2E_SHARDS_ROUTED='registration webhooks adyen generic pay_link return_page invariants' \
        bash ci/e2e.sh

# The registration, webhook, money, notification, PSP and routing suites
# again with every gateway at `error_log ... debug` and the log scan after
# them (`make e2e-debug` without its log-scan-test, in the group above),
# on the module built with AddressSanitizer and UBSan (`make e2e-asan`'s
# build; 141 s on a fresh clone, about what the shipped build's run of
# fewer suites took): every nginx preloads their runtimes, and a report
# of any fails the step.  `make e2e-asan` runs more suites so (ci/e2e.sh's
# asan_suites).
step_join build-asan
skip_if_broken e2e-debug build-asan ||
    step e2e-debug suite env BUILD="$build/asan" E2E_ASAN=1 E2E_DEBUG_LOG=1 bash ci/e2e.sh

# Debian's Chromium, headless, through the demo shop, the gateway, the mock
# PSP's hosted page and back (tests/browser/run.sh, ~30 s): pay, decline,
# and a late webhook turning the pending page into the shop's thank-you
# page.  Its "browser: N passed, N failed" is counted; CI=true or not, it
# never skips (a missing Chromium is a failure).
skip_if_broken browser build-module build-mock ||
    step browser suite bash tests/browser/run.sh

# The README's demo command as a visitor runs it (ci/demo-check.sh, ~20 s):
# its walk pays, refunds and shows both notifications verified.
skip_if_broken demo build-module build-mock build-secrets ||
    step demo suite bash ci/demo-check.sh

group_wait checks
group_wait deb

# --- summary ----------------------------------------------------------------------
echo
echo "=== steps (name, passed, failed, exit, seconds, processor seconds)"
column -t -s $'\t' "$results" 2>/dev/null || cat "$results"
echo "=== total $((SECONDS - t0)) s"
if [ -n "$cpu0" ] && cpu1=$(cpu_ticks) && [ -n "$cpu1" ]; then
    read -r b0 i0 <<<"$cpu0"
    read -r b1 i1 <<<"$cpu1"
    hz=$(getconf CLK_TCK)
    echo "=== processor time: $(((b1 - b0) / hz)) s used, $(((i1 - i0) / hz)) s idle, on $(nproc) processors"
fi
# the cgroups of steps that left a process running (named above)
if [ -n "$cpuacct_ok" ]; then
    for cg in "$cpuacct_root"/ci-$$-*; do
        [ -d "$cg" ] && { rmdir "$cg" 2>/dev/null || true; }
    done
fi
read -r passed failed nfail < <(awk -F'\t' '{ p += $2; f += $3; if ($4 != 0) n++ }
    END { print p + 0, f + 0, n + 0 }' "$results")
if [ "$nfail" -gt 0 ]; then
    echo "=== failed: $(awk -F'\t' '$4 != 0 { printf "%s ", $1 }' "$results")"
    # what failed in each, here at the end where a log cut to its tail keeps
    # it: Criterion's [FAIL] lines and the scripts' FAIL and "x: FAILED"
    # ones (20 a step; not a server log's line that names a FAILED status)
    while read -r name; do
        [ -r "$logs/$name.log" ] || continue
        grep -E '^\[FAIL\]|^FAIL[ :]|^[a-z-]+: (.*: )?FAILED' "$logs/$name.log" | awk '!seen[$0]++' | head -20 |
            sed "s/^/=== $name: /"
    done < <(awk -F'\t' '$4 != 0 { print $1 }' "$results")
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$nfail" -eq 0 ]
