#!/usr/bin/env bash
# Prometheus' own checks of what operators feed it (promtool, Debian's
# prometheus package):
#
#   ci/prom-test.sh metrics FILE   promtool check metrics on a /metrics body
#   ci/prom-test.sh rules          promtool check rules + test rules on
#                                  conf/prometheus/ (the alerts and their
#                                  unit tests)
#   ci/prom-test.sh names FILE     every metric and label the shipped
#                                  dashboard (conf/grafana/) and alerts name
#                                  is in a /metrics body (ci/metric-names-check.js)
#
# Prints "prom: N passed, N failed" for the rules; exits non-zero on any
# problem.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
command -v promtool >/dev/null ||
    { echo "prom-test: promtool is missing (ci/install-deps.sh installs it)" >&2; exit 1; }

case "${1:-}" in
metrics)
    file=${2:?usage: $0 metrics FILE}
    if [ ! -s "$file" ]; then
        echo "prom-test: $file is empty: /metrics answered nothing" >&2
        exit 1
    fi
    # promtool lints on stdout/stderr and exits non-zero on a problem
    if out=$(promtool check metrics <"$file" 2>&1) && [ -z "$out" ]; then
        echo "prom-test: /metrics ($(grep -c '^# TYPE' "$file") families) passes promtool check metrics"
        exit 0
    fi
    echo "prom-test: promtool check metrics on /metrics:" >&2
    echo "$out" >&2
    exit 1
    ;;
rules)
    passed=0 failed=0
    dir=$top/conf/prometheus
    if promtool check rules "$dir/payments-alerts.yml"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    # the unit tests name the rules file relative to themselves
    if (cd "$dir" && promtool test rules payments-alerts.test.yml); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    echo "prom: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    ;;
names)
    file=${2:?usage: $0 names FILE}
    node "$top/ci/metric-names-check.js" "$file" \
        "$top/conf/grafana/payments-dashboard.json" \
        "$top/conf/prometheus/payments-alerts.yml"
    ;;
*)
    echo "usage: $0 metrics FILE | rules | names FILE" >&2
    exit 2
    ;;
esac
