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

svc_name=receiver.sh
# shellcheck source=testenv/services-lib.sh
. "$top/testenv/services-lib.sh"
die() { svc_die "$@"; }

do_start() {
    local run=$1 record=()
    if [ "${2:-}" = --record ]; then
        [ -n "${3:-}" ] || die "--record needs a file"
        record=(--record "$3")
    fi
    if [ ! -f "$run/conf/tls.crt" ] || [ ! -f "$run/conf/tls.key" ]; then
        die "$run/conf/tls.crt is missing: ci/services.sh start $run first"
    fi
    command -v node >/dev/null 2>&1 || die "no node: ci/install-deps.sh --core"
    # the e2e suite verifies with the standardwebhooks package, which
    # shares nothing with the gateway's code
    [ -f "$here/node_modules/standardwebhooks/package.json" ] ||
        die "tests/notify_receiver/node_modules is missing: ci/install-deps.sh --core"

    svc_start_receiver "$here/receiver.js" "$run" "$run/conf/tls.crt" \
        "$run/conf/tls.key" "${record[@]}"
    {
        svc_envline PAY_TEST_RECEIVER "$svc_receiver"
        svc_envline PAY_TEST_RECEIVER_CONTROL "$svc_receiver_control"
        svc_envline PAY_TEST_RECEIVER_CA "$run/conf/tls.crt"
    } >"$run/receiver.env"
    echo "receiver.sh: $svc_receiver (control $svc_receiver_control)"
}

do_stop() { svc_stop_receiver "$1"; }

case ${1:-} in
start) [ -n "${2:-}" ] || die "usage: $0 start|stop RUN"; do_start "$2" "${3:-}" "${4:-}" ;;
stop)  [ -n "${2:-}" ] || die "usage: $0 start|stop RUN"; do_stop "$2" ;;
*)     echo "usage: $0 start|stop RUN" >&2; exit 2 ;;
esac
