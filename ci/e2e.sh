#!/usr/bin/env bash
# The end-to-end suite: services up (ci/services.sh, the ASan mock PSP),
# build/e2e_tests against them, services down.
#
#   ci/e2e.sh [criterion options...]
#
# Tests run two at a time (E2E_JOBS), except the suites named solo_*
# (they stop PostgreSQL or reset the mock PSP), which run alone, last.  E2E_FILTER runs one Criterion
# filter instead (e.g. E2E_FILTER='pay_link/*').  KEEP_RUN=1 keeps the run
# directory (it is always kept when something failed).  The run directory
# is made under $TMPDIR (default /tmp).  E2E_PREFLIGHT=1 only checks that
# everything the suite runs is there (ci/make-targets-check.sh).
# E2E_DEBUG_LOG=1 runs every gateway with `error_log ... debug` and ends
# with the log scan even under E2E_FILTER: the module's debug lines must
# be there (the route of every request) and hold no secret (`make e2e-debug`).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bin=$build/e2e_tests
jobs=${E2E_JOBS:-2}

for f in "$bin" "$build/nginx/ngx_http_payments_module.so" "$build/mock_psp-asan" \
         "$build/payments-reconcile" "$build/payments-secrets" "$build/payments-events-verify" "$build/slow_dns.so"; do
    if [ ! -e "$f" ]; then
        echo "e2e: $f is missing (make e2e-deps)" >&2
        exit 1
    fi
done
if [ ! -f tests/notify_receiver/node_modules/standardwebhooks/package.json ]; then
    echo "e2e: tests/notify_receiver/node_modules is missing (make e2e-deps, or ci/install-deps.sh --core)" >&2
    exit 1
fi
if [ "${E2E_PREFLIGHT:-0}" = 1 ]; then
    echo "e2e: everything the suite runs is there"
    exit 0
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/ngx-payments-e2e.XXXXXX")
rc=0

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish() {
    local status=$?
    [ "$status" -eq 0 ] || rc=1
    # what /metrics shows after the suite: searched for secrets as well
    if [ -n "${PAY_TEST_GW:-}" ]; then
        curl -s --max-time 5 --cacert "$run/conf/tls.crt" "$PAY_TEST_GW/metrics" \
            >"$run/logs/metrics.txt" 2>/dev/null || true
    fi
    # the merchants' notification endpoint (ci/receiver.sh)
    bash "$top/ci/receiver.sh" stop "$run" || rc=1
    bash "$top/ci/services.sh" stop "$run" || rc=1
    # gateways a test started (gateway_start) and did not stop: it crashed
    pkill -QUIT -f "nginx -p $run/" 2>/dev/null || true
    for pidfile in "$run"/pgbouncer-*/pgbouncer.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for d in "$run"/pg-primary-* "$run"/pg-standby-*; do
        [ -d "$d" ] && bash "$top/ci/pg.sh" stop "$d" >/dev/null 2>&1 || true
    done

    # the chaos suite's table (tests/e2e/test_chaos.c), when it ran
    if [ -s "$run/logs/chaos.txt" ]; then
        echo "chaos: scenarios x invariants"
        echo "| scenario                                     | req | 201 first | once   | durable | ledger | forward | paid   | alerted |"
        echo "| -------------------------------------------- | --- | --------- | ------ | ------- | ------ | ------- | ------ | ------- |"
        cat "$run/logs/chaos.txt"
    fi

    # Nothing secret in any log line: after the whole suite, or after a
    # debug run of some suites (the module's debug lines searched as well).
    if [ "${E2E_DEBUG_LOG:-0}" = 1 ]; then
        # a debug run with no debug line of the module's proves nothing
        if ! grep -q '\[debug\] [0-9]*#[0-9]*: \*[0-9]* payments: route ' \
                "$run/logs/error.log" 2>/dev/null; then
            echo "e2e: E2E_DEBUG_LOG=1 but error.log has no debug line of the module's" >&2
            rc=1
        fi
        if [ -n "${E2E_FILTER:-}" ]; then
            bash "$top/ci/log-scan.sh" "$run" || rc=1
        fi
    fi
    if [ -z "${E2E_FILTER:-}" ]; then
        bash "$top/ci/log-scan.sh" "$run" || rc=1
        # /metrics after the whole suite (every family has shown up) is
        # what Prometheus accepts without a lint problem
        if ! bash "$top/ci/prom-test.sh" metrics "$run/logs/metrics.txt"; then
            rc=1
        fi
        # and serves every metric the shipped dashboard and alerts name
        if ! bash "$top/ci/prom-test.sh" names "$run/logs/metrics.txt"; then
            rc=1
        fi
        # every answer of the run and every notification the receiver
        # verified, against doc/openapi.yaml (its paths and its webhooks)
        bash "$top/ci/openapi-check.sh" "$run/logs/responses.jsonl" \
            "$run/logs/notifications.jsonl" || rc=1
    fi

    # The mock runs under ASan/UBSan: a report there fails the suite.
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$run/logs/mock.log" 2>/dev/null; then
        echo "e2e: the mock PSP reported a sanitizer error:" >&2
        grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$run/logs/mock.log" | head -60 >&2
        rc=1
    fi

    if [ "$rc" -ne 0 ]; then
        echo "---- e2e failed; run directory kept: $run" >&2
        for log in error.log mock.log postgres.log receiver.log; do
            if [ -f "$run/logs/$log" ]; then
                echo "---- tail of $log" >&2
                tail -n 60 "$run/logs/$log" >&2
            fi
        done
        if [ -f "$run/pg/postgres.log" ]; then
            echo "---- tail of postgres.log" >&2
            tail -n 30 "$run/pg/postgres.log" >&2
        fi
        # last, so that a report showing only the end still names them
        if grep -qE '^\[(----|FAIL)\]' "$run/logs/criterion.txt" 2>/dev/null; then
            echo "---- what failed (Criterion's report, above in full)" >&2
            grep -E '^\[(----|FAIL)\]' "$run/logs/criterion.txt" | head -40 >&2
        fi
    elif [ "${KEEP_RUN:-0}" = 1 ]; then
        echo "e2e: run directory kept: $run"
    else
        rm -rf "$run"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

log_level=notice
[ "${E2E_DEBUG_LOG:-0}" = 1 ] && log_level=debug
bash "$top/ci/services.sh" start "$run" --asan --workers 2 --error-log-level "$log_level"
# The merchants' endpoint for the notifications suite (tests/e2e/test_notify.c):
# PAY_TEST_RECEIVER, PAY_TEST_RECEIVER_CONTROL, PAY_TEST_RECEIVER_CA.
bash "$top/ci/receiver.sh" start "$run" --record "$run/logs/notifications.jsonl"

set -a
# shellcheck disable=SC1091
. "$run/env"
# shellcheck disable=SC1091
. "$run/receiver.env"
set +a
# every answer of the gateway, for tests/openapi/validate.js (below)
export PAY_TEST_RECORD=$run/logs/responses.jsonl

# Criterion reports on stderr: kept in logs/criterion.txt as well
if [ -n "${E2E_FILTER:-}" ]; then
    "$bin" --jobs "$jobs" --filter "$E2E_FILTER" "$@" \
        2> >(tee -a "$run/logs/criterion.txt" >&2) || rc=1
else
    "$bin" --jobs "$jobs" --filter '!(solo_*)/*' "$@" \
        2> >(tee -a "$run/logs/criterion.txt" >&2) || rc=1
    "$bin" --jobs 1 --filter 'solo_*/*' "$@" \
        2> >(tee -a "$run/logs/criterion.txt" >&2) || rc=1
fi
exit "$rc"
