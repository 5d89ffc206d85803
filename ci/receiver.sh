#!/usr/bin/env bash
# Starts and stops the merchants' notification endpoint of a run
# (tests/notify_receiver/receiver.js, doc/NOTIFICATIONS.md): HTTPS on a free
# loopback port with the gateway's own certificate (RUN/conf/tls.crt, for
# 127.0.0.1 and localhost; payments_notify ca= names it), its control API on
# another.  Used by ci/e2e.sh and bench/notify.sh after ci/services.sh start.
#
#   ci/receiver.sh start RUN     writes RUN/receiver.env:
#       PAY_TEST_RECEIVER          https://127.0.0.1:PORT (deliveries: /hooks/<name>)
#       PAY_TEST_RECEIVER_CONTROL  http://127.0.0.1:PORT (/_control/...)
#       PAY_TEST_RECEIVER_CA       the CA that signs its certificate
#   ci/receiver.sh start RUN --record FILE
#       the same, and every verified delivery's body appended to FILE (one
#       JSON line each: path, webhook_id, body), which ci/openapi-check.sh
#       checks against doc/openapi.yaml's webhooks
#   ci/receiver.sh stop RUN
#
# Its log is RUN/logs/receiver.log (one line; it never prints a secret or a
# body).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
here=$top/tests/notify_receiver

die() { echo "receiver.sh: $*" >&2; exit 1; }

do_start() {
    local run=$1 port control pid record=()
    if [ "${2:-}" = --record ]; then
        [ -n "${3:-}" ] || die "--record needs a file"
        record=(--record "$3")
    fi
    if [ ! -f "$run/conf/tls.crt" ] || [ ! -f "$run/conf/tls.key" ]; then
        die "$run/conf/tls.crt is missing: ci/services.sh start $run first"
    fi
    command -v node >/dev/null 2>&1 || die "no node: ci/install-deps.sh --core"
    [ -f "$here/node_modules/standardwebhooks/package.json" ] ||
        die "tests/notify_receiver/node_modules is missing: ci/install-deps.sh --core"
    if [ -f "$run/receiver.pid" ] && kill -0 "$(cat "$run/receiver.pid")" 2>/dev/null; then
        die "$run already has a receiver (ci/receiver.sh stop $run first)"
    fi

    port=$(bash "$top/ci/services.sh" port)
    control=$(bash "$top/ci/services.sh" port)
    while [ "$control" = "$port" ]; do
        control=$(bash "$top/ci/services.sh" port)
    done

    mkdir -p "$run/logs"
    nohup node "$here/receiver.js" --port "$port" --control-port "$control" \
        --cert "$run/conf/tls.crt" --key "$run/conf/tls.key" "${record[@]}" \
        </dev/null >>"$run/logs/receiver.log" 2>&1 &
    pid=$!
    echo "$pid" >"$run/receiver.pid"

    for _ in $(seq 100); do
        if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$control/_control/health"; then
            {
                printf 'export PAY_TEST_RECEIVER=%q\n' "https://127.0.0.1:$port"
                printf 'export PAY_TEST_RECEIVER_CONTROL=%q\n' "http://127.0.0.1:$control"
                printf 'export PAY_TEST_RECEIVER_CA=%q\n' "$run/conf/tls.crt"
            } >"$run/receiver.env"
            echo "receiver.sh: https://127.0.0.1:$port (control http://127.0.0.1:$control)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done

    tail -20 "$run/logs/receiver.log" >&2 || true
    do_stop "$run"
    die "the receiver did not come up"
}

do_stop() {
    local run=$1 pid
    [ -f "$run/receiver.pid" ] || return 0
    pid=$(cat "$run/receiver.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$run/receiver.pid"
}

case ${1:-} in
start) [ -n "${2:-}" ] || die "usage: $0 start|stop RUN"; do_start "$2" "${3:-}" "${4:-}" ;;
stop)  [ -n "${2:-}" ] || die "usage: $0 start|stop RUN"; do_stop "$2" ;;
*)     echo "usage: $0 start|stop RUN" >&2; exit 2 ;;
esac
