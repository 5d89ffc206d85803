#!/usr/bin/env bash
# The end-to-end suite: build/e2e_tests against services of its own
# (ci/services.sh: PostgreSQL, the ASan mock PSP, nginx with the module;
# ci/receiver.sh: the merchants' notification endpoint), then the checks
# made over the whole run.
#
#   ci/e2e.sh [criterion options...]
#
# Lanes.  Each lane is a stack of those services of its own (RUN/<lane>/).
# The whole suite runs in 1 + E2E_SOLO_LANES lanes at once:
#   - lane "main" runs every suite not named solo_*, E2E_JOBS tests at a
#     time (default 2), then takes solo suites from the queue as below;
#   - the solo lanes (E2E_SOLO_LANES, default 1) take the solo_* suites
#     (they stop PostgreSQL, reset the mock PSP or read counters no other
#     test may move) one suite at a time, each alone on its lane's stack,
#     longest first (solo_weight below).
# Most of a test's time is waiting (sweeper rounds, time-outs, a PSP's
# delays), so lanes side by side use the two cores a test alone leaves idle.
#
# E2E_FILTER runs one Criterion filter instead, in one lane, E2E_JOBS at a
# time (e.g. E2E_FILTER='pay_link/*'; a solo_* suite needs E2E_JOBS=1).
# KEEP_RUN=1 keeps the run directory (it is always kept when something
# failed).  The run directory is made under $TMPDIR (default /tmp).
# E2E_PREFLIGHT=1 only checks that everything the suite runs is there
# (ci/make-targets-check.sh).  E2E_DEBUG_LOG=1 runs every gateway with
# `error_log ... debug` and ends with the log scan even under E2E_FILTER:
# the module's debug lines must be there (the route of every request) and
# hold no secret (`make e2e-debug`); without E2E_FILTER it runs a
# representative part of the suite, the registration, webhook, money,
# notification, PSP and routing suites (nginx's dump of a request the
# suite's /psp-tls/ proxy sends the mock holds the PSP's key: nginx's own
# lines, left out by the scan).
#
# E2E_ASAN=1 (`make e2e-asan`) runs the suite against the module built
# with AddressSanitizer and UBSan ($BUILD/nginx, BUILD=build/asan): every
# nginx the suite starts is ci/nginx-asan.sh, which preloads their
# runtimes; a report of any worker or master fails the run, printed at its
# end.  Without E2E_FILTER it runs asan_suites (below), the suites that
# take the module's paths, its failures' included; the suite's own
# programs are sanitized too, their leaks not checked (ASAN_OPTIONS).
# LeakSanitizer looks at each nginx process's exit (NGX_ASAN_LEAKS=0 turns
# it off): memory the module lost on any request is reported with its
# stack (keep_modules.so keeps the module mapped for it).  What a worker
# keeps reachable LeakSanitizer cannot see: with it on, the tests
# registration::a_worker_holds_no_more_for_the_requests_it_served and
# notify::a_worker_holds_no_more_for_refunds_reads_and_deliveries ask a
# worker the bytes it holds between batches of requests (keep_modules.so,
# NGX_ASAN_ALLOCATED).
#
# E2E_SHARDS=1 runs lane "shards" instead (not part of the whole run yet):
# a stack of two PostgreSQL clusters, merchant shards a and b
# (ci/services.sh --shards 2; doc/plans/shards.md section 3), and on it
# shards_suites one test at a time (they stop, kill, pause and make
# read-only shard b); then shards_routed_suites with every merchant_new
# merchant on shard b and PAY_TEST_PG at b.  With E2E_FILTER: that filter
# on the sharded stack, one test at a time as the lane runs shards_suites
# (E2E_JOBS sets it).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# psql itself first on PATH (ci/pg-bin.sh says why)
. "$top/ci/pg-bin.sh"
build=${BUILD:-build}
bin=$build/e2e_tests
jobs=${E2E_JOBS:-2}
solo_lanes=${E2E_SOLO_LANES:-1}
shards=${E2E_SHARDS:-0}

# The shards lane's suites (E2E_SHARDS=1): those of the sharded stack
# itself, and the existing suites run again with their merchants on the
# non-home shard b.
shards_suites='shards_stack shards_webhooks shards_routes shards_background
    shards_outage shards_books'
# E2E_SHARDS_ROUTED: another list of routed suites (CI's is shorter).
shards_routed_suites=${E2E_SHARDS_ROUTED:-'registration auth idempotency_key
    webhooks return_page adyen generic pay_link views lists money_* capture
    cancel saved_methods notify keys'}

for f in "$bin" "$build/nginx/ngx_http_payments_module.so" "$build/mock_psp-asan" \
         "$build/payments-reconcile" "$build/payments-secrets" "$build/payments-events-verify" "$build/slow_dns.so" \
         "$build/keep_modules.so"; do
    if [ ! -e "$f" ]; then
        echo "e2e: $f is missing (make e2e-deps)" >&2
        exit 1
    fi
done
# A binary older than its sources runs what it was built from, not the
# tree: a test just written (or a failure planted to see a test fail) does
# not run, and the suite passes without it.
stale() {   # stale BINARY HINT PATH...: refuse BINARY older than a source
    local bin=$1 hint=$2 newer
    shift 2
    # (the preloaded libraries' sources are not the suite's: each has its own)
    newer=$(find "$@" -name '*.[ch]' ! -name slow_dns.c ! -name keep_modules.c \
                 -newer "$bin" -print -quit)
    if [ -n "$newer" ]; then
        echo "e2e: $bin is older than $newer ($hint)" >&2
        exit 1
    fi
}
stale "$bin" "make build/e2e_tests" tests/e2e
stale "$build/slow_dns.so" "make e2e-deps" tests/e2e/slow_dns.c
stale "$build/keep_modules.so" "make e2e-deps" tests/e2e/keep_modules.c
stale "$build/nginx/ngx_http_payments_module.so" "make module" ngx_payments_module src include
if [ ! -f tests/notify_receiver/node_modules/standardwebhooks/package.json ]; then
    echo "e2e: tests/notify_receiver/node_modules is missing (make e2e-deps, or ci/install-deps.sh --core)" >&2
    exit 1
fi
# E2E_ASAN=1: the module must be the sanitized build, and the runtimes it
# was compiled against are preloaded into nginx (ci/nginx-asan.sh)
asan=${E2E_ASAN:-0}
asan_libs=
# the suites E2E_ASAN=1 runs: each of the module's routes and background
# work, every dialect, the PSP's, the database's and the client's failures
# (the money checker, the invariants and the solo suites are left to the
# suite's own run: the module's paths are the same, hours longer here)
asan_suites='registration auth idempotency idempotency_key webhooks
    return_page return_urls adyen generic pay_link views lists money_*
    capture cancel saved_methods notify keys psp psp_closed db_errors
    routing risk late_events metadata limits limits_redis config ops
    metrics owasp card_data amounts body concurrency lease modes request_id
    tls two_gateways storefront audit duplicates reconcile
    reconcile_reversals wallets'
if [ "$asan" = 1 ]; then
    # (nm's whole output first: grep -q after a pipe may leave nm a SIGPIPE,
    # a failure under pipefail)
    syms=$(nm -D --undefined-only "$build/nginx/ngx_http_payments_module.so" 2>/dev/null || true)
    if ! grep -q ' __asan_report' <<<"$syms"; then
        echo "e2e: E2E_ASAN=1 but $build/nginx/ngx_http_payments_module.so is not built with ASan (make e2e-asan)" >&2
        exit 1
    fi
    for lib in libasan.so libubsan.so; do
        lib=$("${CC:-cc}" -print-file-name="$lib")
        if [ ! -f "$lib" ]; then
            echo "e2e: E2E_ASAN=1 but the compiler has no $lib" >&2
            exit 1
        fi
        asan_libs="$asan_libs${asan_libs:+ }$lib"
    done
fi
if [ "${E2E_PREFLIGHT:-0}" = 1 ]; then
    echo "e2e: everything the suite runs is there"
    exit 0
fi

# Seconds a solo suite took in a whole run (ci/e2e.sh prints each): the
# queue hands out the longest first, so that the lanes end together.  A
# suite not listed counts 15.  Set from the fresh-clone CIs of f8570f0 and
# 83a564f (solo_sweeper 219-225 s, solo_money_invariants 176, solo_chaos
# 175-177, solo_notify 83, solo_books_swept 65, solo_pg_failover 53);
# solo_books_swept 82 s alone since its seed 262662, 92 s since 264227.
# The order is a test input: a suite can see what the one before it left
# (solo_chaos's key-rotation check once counted solo_sweeper's events), so
# a suite's checks are scoped to its own merchants and tokens.
solo_weight() {
    case $1 in
        solo_chaos) echo 180 ;;
        solo_money_invariants) echo 178 ;;
        solo_books_swept) echo 95 ;;
        solo_notify) echo 85 ;;
        solo_sweeper) echo 225 ;;
        solo_pg_failover) echo 55 ;;
        solo_notify_sql) echo 36 ;;
        solo_breaker) echo 25 ;;
        *) echo 15 ;;
    esac
}

run=$(mktemp -d "${TMPDIR:-/tmp}/ngx-payments-e2e.XXXXXX")
# the lanes under it are reached by other users: PostgreSQL's and PgBouncer's
# (the failover and pooling tests start them as postgres), nginx's workers
chmod 755 "$run"
rc=0
lanes=()        # lane directories, in the order they were started
lane_pids=()    # the lanes' test runs in flight

if [ "$asan" = 1 ]; then
    mkdir -p "$run/asan-bin" "$run/asan"
    # the workers (nobody) write their reports there too
    chmod 1777 "$run/asan"
    ln -s "$top/ci/nginx-asan.sh" "$run/asan-bin/nginx"
    NGX_ASAN_NGINX=$(command -v nginx) || { echo "e2e: nginx is not installed" >&2; exit 1; }
    export NGX_ASAN_NGINX NGX_ASAN_LIBS="$asan_libs" NGX_ASAN_LOGS="$run/asan"
    export NGX_ASAN_LEAKS=${NGX_ASAN_LEAKS:-1}
    NGX_ASAN_KEEP=$(cd "$build" && pwd)/keep_modules.so
    export NGX_ASAN_KEEP
    # with it, SIGRTMIN+1 makes a process write the bytes it holds there
    # (tests/e2e/keep_modules.c; the test of a worker's growth)
    if [ "$NGX_ASAN_LEAKS" = 1 ]; then
        mkdir -p "$run/allocated"
        chmod 1777 "$run/allocated"
        export NGX_ASAN_ALLOCATED="$run/allocated"
    fi
    export PATH="$run/asan-bin:$PATH"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
    # (with E2E_DEBUG_LOG=1 too, the debug run's suites: CI's debug run)
    if [ "${E2E_DEBUG_LOG:-0}" != 1 ]; then
        # shellcheck disable=SC2086  # the list's words
        E2E_FILTER=${E2E_FILTER:-"@($(echo $asan_suites | tr ' ' '|'))/*"}
    fi
fi

log_level=notice
if [ "${E2E_DEBUG_LOG:-0}" = 1 ]; then
    log_level=debug
    E2E_FILTER=${E2E_FILTER:-'@(registration|webhooks|money_*|notify|psp|routing)/*'}
fi

# lane_start NAME [services.sh options...]: the lane's services and
# notification endpoint, in RUN/NAME.  Lanes start one after the other: each
# picks its ports when the lanes before it listen on theirs.
lane_start() {
    local dir=$run/$1
    shift
    mkdir -p "$dir"
    lanes+=("$dir")
    bash "$top/ci/services.sh" start "$dir" --asan --workers 2 --error-log-level "$log_level" "$@"
    # the merchants' endpoint for the notifications suites (test_notify.c):
    # PAY_TEST_RECEIVER, PAY_TEST_RECEIVER_CONTROL, PAY_TEST_RECEIVER_CA
    bash "$top/ci/receiver.sh" start "$dir" --record "$dir/logs/notifications.jsonl"
}

# lane_tests DIR JOBS FILTER [criterion options...]: the tests FILTER names,
# against the lane's services.  Criterion's report goes to the lane's
# logs/criterion.txt (and to stderr for the lane that reports live).
# E2E_LANE_SHARD=NAME (a sharded lane): merchant_new makes its merchants on
# shard NAME, and PAY_TEST_PG, _PGDIR and _PGDATA are that shard's.
lane_tests() {
    local dir=$1 n=$2 filter=$3
    shift 3
    (
        set -a
        # shellcheck disable=SC1091
        . "$dir/env"
        # shellcheck disable=SC1091
        . "$dir/receiver.env"
        set +a
        if [ -n "${E2E_LANE_SHARD:-}" ]; then
            local i=0 name
            for name in $PAY_TEST_SHARD_NAMES; do
                i=$((i + 1))
                [ "$name" = "$E2E_LANE_SHARD" ] || continue
                export PAY_TEST_SHARD_DEFAULT=$name
                eval "export PAY_TEST_PG=\$PAY_TEST_PG$i" \
                    "PAY_TEST_PGDIR=\$PAY_TEST_PGDIR$i" \
                    "PAY_TEST_PGDATA=\$PAY_TEST_PGDATA$i"
            done
            [ -n "${PAY_TEST_SHARD_DEFAULT:-}" ] ||
                { echo "e2e: the lane has no shard $E2E_LANE_SHARD" >&2; exit 1; }
        fi
        # every answer of the gateway, for tests/openapi/validate.js (below)
        export PAY_TEST_RECORD=$dir/logs/responses.jsonl
        "$bin" --jobs "$n" --filter "$filter" "$@"
    )
}

# solo_queue: the solo suites, longest first, as RUN/queue/NN-suite files a
# lane claims by renaming (atomic: one lane gets each).
solo_queue() {
    local s
    mkdir -p "$run/queue"
    "$bin" --list 2>/dev/null | sed -n 's/^\(solo_[A-Za-z0-9_]*\): .*/\1/p' | sort -u |
        while read -r s; do
            printf '%06d %s\n' "$(solo_weight "$s")" "$s"
        done | sort -rn | awk '{ printf "%04d-%s\n", NR, $2 }' |
        while read -r s; do
            : >"$run/queue/$s"
        done
}

# lane_solo DIR [criterion options...]: solo suites from the queue until it
# is empty, each alone on this lane's services.
lane_solo() {
    local dir=$1 item suite start src lrc=0
    shift
    for item in $(ls "$run/queue" 2>/dev/null | grep -v '\.taken$' || true); do
        mv "$run/queue/$item" "$run/queue/$item.$$.$BASHPID.taken" 2>/dev/null || continue
        suite=${item#*-}
        start=$SECONDS
        src=0
        lane_tests "$dir" 1 "$suite/*" "$@" || { src=$?; lrc=1; }
        # an exit status with no test failed is said: a runner that died
        echo "e2e: ${dir##*/}: $suite $((SECONDS - start)) s$( [ "$src" -eq 0 ] || echo " (exit $src)")" >&2
    done
    return "$lrc"
}

# lane_stop DIR: what /metrics shows at the end (searched for secrets as
# well), then everything the lane started.
lane_stop() {
    local dir=$1 gw d pidfile
    gw=$( (set +u; . "$dir/env" 2>/dev/null && echo "${PAY_TEST_GW:-}") || true)
    if [ -n "$gw" ]; then
        curl -s --max-time 5 --cacert "$dir/conf/tls.crt" "$gw/metrics" \
            >"$dir/logs/metrics.txt" 2>/dev/null || true
    fi
    bash "$top/ci/receiver.sh" stop "$dir" || { echo "e2e: ${dir##*/}: receiver.sh stop failed" >&2; rc=1; }
    bash "$top/ci/services.sh" stop "$dir" || { echo "e2e: ${dir##*/}: services.sh stop failed" >&2; rc=1; }
    # gateways a test started (gateway_start) and did not stop: it crashed
    pkill -QUIT -f "nginx -p $dir/" 2>/dev/null || true
    for pidfile in "$dir"/pgbouncer-*/pgbouncer.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for d in "$dir"/pg-primary-* "$dir"/pg-standby-*; do
        [ -d "$d" ] && bash "$top/ci/pg.sh" stop "$d" >/dev/null 2>&1 || true
    done
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish() {
    local status=$? dir p lane
    [ "$status" -eq 0 ] || rc=1
    for p in "${lane_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for dir in "${lanes[@]}"; do
        lane_stop "$dir"
    done

    # the chaos suite's table (tests/e2e/test_chaos.c), when it ran
    for dir in "${lanes[@]}"; do
        if [ -s "$dir/logs/chaos.txt" ]; then
            echo "chaos: scenarios x invariants"
            echo "| scenario                                     | req | 201 first | once   | durable | ledger | forward | paid   | alerted |"
            echo "| -------------------------------------------- | --- | --------- | ------ | ------- | ------ | ------- | ------ | ------- |"
            cat "$dir/logs/chaos.txt"
        fi
    done

    # Nothing secret in any log line: after the whole suite, or after a
    # debug run of some suites (the module's debug lines searched as well).
    if [ "${E2E_DEBUG_LOG:-0}" = 1 ] && [ ${#lanes[@]} -gt 0 ]; then
        # a debug run with no debug line of the module's proves nothing
        # (grep reads the files itself: grep -q after a pipe would leave
        # its writer a SIGPIPE, a failure under pipefail)
        if ! grep -qs '\[debug\] [0-9]*#[0-9]*: \*[0-9]* payments: route ' \
                "${lanes[@]/%//logs/error.log}"; then
            echo "e2e: E2E_DEBUG_LOG=1 but error.log has no debug line of the module's" >&2
            rc=1
        fi
    fi
    if [ -z "${E2E_FILTER:-}" ] || [ "${E2E_DEBUG_LOG:-0}" = 1 ]; then
        for dir in "${lanes[@]}"; do
            bash "$top/ci/log-scan.sh" "$dir" || rc=1
        done
    fi
    # (the shards lane alone shows only some metrics and answers)
    if [ -z "${E2E_FILTER:-}" ] && [ "$shards" != 1 ] && [ ${#lanes[@]} -gt 0 ]; then
        # /metrics of each lane is what Prometheus accepts without a lint
        # problem; together (every family has shown up in one lane or
        # another) they serve every metric the dashboard and alerts name
        for dir in "${lanes[@]}"; do
            bash "$top/ci/prom-test.sh" metrics "$dir/logs/metrics.txt" || rc=1
        done
        cat "${lanes[@]/%//logs/metrics.txt}" >"$run/metrics.txt" 2>/dev/null || true
        bash "$top/ci/prom-test.sh" names "$run/metrics.txt" || rc=1
        # every answer of the run and every notification the receivers
        # verified, against doc/openapi.yaml (its paths and its webhooks)
        cat "${lanes[@]/%//logs/responses.jsonl}" >"$run/responses.jsonl" 2>/dev/null || true
        cat "${lanes[@]/%//logs/notifications.jsonl}" >"$run/notifications.jsonl" 2>/dev/null || true
        bash "$top/ci/openapi-check.sh" "$run/responses.jsonl" "$run/notifications.jsonl" || rc=1
    elif [ "$shards" != 1 ] && [ ${#lanes[@]} -gt 0 ]; then
        # a filtered run checks the answers it recorded too (an answer the
        # document lacks is found before a whole run), when node is here
        cat "${lanes[@]/%//logs/responses.jsonl}" >"$run/responses.jsonl" 2>/dev/null || true
        cat "${lanes[@]/%//logs/notifications.jsonl}" >"$run/notifications.jsonl" 2>/dev/null || true
        if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
            echo "e2e: answers not checked against doc/openapi.yaml: node is not installed (ci/install-deps.sh --browser)" >&2
        elif [ -s "$run/responses.jsonl" ]; then
            bash "$top/ci/openapi-check.sh" "$run/responses.jsonl" "$run/notifications.jsonl" || rc=1
        fi
    fi

    # E2E_ASAN=1: a report of the sanitized module's nginx fails the run
    if [ "$asan" = 1 ] && [ -d "$run/asan" ] &&
            [ -n "$(find "$run/asan" -type f -print -quit)" ]; then
        echo "e2e: nginx with the sanitized module reported:" >&2
        for f in "$run/asan"/*; do
            echo "---- $f" >&2
            head -n 60 "$f" >&2
        done
        rc=1
    fi

    # The mock runs under ASan/UBSan: a report there fails the suite.
    for dir in "${lanes[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/logs/mock.log" 2>/dev/null; then
            echo "e2e: the mock PSP of lane ${dir##*/} reported a sanitizer error:" >&2
            grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/logs/mock.log" | head -60 >&2 || true  # head may close the pipe first
            rc=1
        fi
    done

    if [ "$rc" -ne 0 ]; then
        echo "---- e2e failed; run directory kept: $run" >&2
        for dir in "${lanes[@]}"; do
            lane=${dir##*/}
            grep -qE '^\[(----|FAIL)\]' "$dir/logs/criterion.txt" 2>/dev/null || continue
            for log in error.log mock.log postgres.log receiver.log; do
                if [ -f "$dir/logs/$log" ]; then
                    echo "---- $lane: tail of $log" >&2
                    tail -n 60 "$dir/logs/$log" >&2
                fi
            done
            for pg in pg pg2; do
                if [ -f "$dir/$pg/postgres.log" ]; then
                    echo "---- $lane: tail of $pg/postgres.log" >&2
                    tail -n 30 "$dir/$pg/postgres.log" >&2
                fi
            done
        done
        # last, so that a report showing only the end still names them
        for dir in "${lanes[@]}"; do
            if grep -qE '^\[(----|FAIL)\]' "$dir/logs/criterion.txt" 2>/dev/null; then
                echo "---- what failed in lane ${dir##*/} (Criterion's report, above in full)" >&2
                grep -E '^\[(----|FAIL)\]' "$dir/logs/criterion.txt" | head -40 >&2 || true  # head may close the pipe first
            fi
        done
    elif [ "${KEEP_RUN:-0}" = 1 ]; then
        echo "e2e: run directory kept: $run"
    else
        rm -rf "$run"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

if [ "$shards" = 1 ]; then
    start=$SECONDS
    lane_start shards --shards 2
    echo "e2e: shards: lane up in $((SECONDS - start)) s" >&2
    if [ -n "${E2E_FILTER:-}" ]; then
        # one at a time unless told: shards_suites' tests stop shard b and
        # count its look-ups
        lane_tests "$run/shards" "${E2E_JOBS:-1}" "$E2E_FILTER" "$@" \
            2> >(tee -a "$run/shards/logs/criterion.txt" >&2) || rc=1
        exit "$rc"
    fi
    for suite in $shards_suites; do
        start=$SECONDS
        lane_tests "$run/shards" 1 "$suite/*" "$@" \
            2> >(tee -a "$run/shards/logs/criterion.txt" >&2) || rc=1
        echo "e2e: shards: $suite $((SECONDS - start)) s" >&2
    done
    start=$SECONDS
    # shellcheck disable=SC2086  # the list's words
    filter="@($(echo $shards_routed_suites | tr ' ' '|'))/*"
    E2E_LANE_SHARD=b lane_tests "$run/shards" "$jobs" "$filter" "$@" \
        2> >(tee -a "$run/shards/logs/criterion.txt" >&2) || rc=1
    echo "e2e: shards: the routed suites on shard b $((SECONDS - start)) s" >&2
    exit "$rc"
fi

if [ -n "${E2E_FILTER:-}" ]; then
    lane_start main
    lane_tests "$run/main" "$jobs" "$E2E_FILTER" "$@" \
        2> >(tee -a "$run/main/logs/criterion.txt" >&2) || rc=1
    exit "$rc"
fi

# The whole suite: every lane's services first, then the lanes at once.
lane_start main
for i in $(seq "$solo_lanes"); do
    lane_start "solo$i"
done
solo_queue

# lane main reports live; its solo suites after the others' (below)
(
    lrc=0
    lane_tests "$run/main" "$jobs" '!(solo_*)/*' "$@" || { echo "e2e: main: its suites exited $?" >&2; lrc=1; }
    lane_solo "$run/main" "$@" || lrc=1
    exit "$lrc"
) 2> >(tee -a "$run/main/logs/criterion.txt" >&2) &
lane_pids+=($!)
for i in $(seq "$solo_lanes"); do
    lane_solo "$run/solo$i" "$@" 2>>"$run/solo$i/logs/criterion.txt" &
    lane_pids+=($!)
done
for p in "${lane_pids[@]}"; do
    wait "$p" || rc=1
done
lane_pids=()
# the solo lanes' reports, one lane after the other
for i in $(seq "$solo_lanes"); do
    echo "---- e2e: lane solo$i" >&2
    cat "$run/solo$i/logs/criterion.txt" >&2 || true
done
exit "$rc"
