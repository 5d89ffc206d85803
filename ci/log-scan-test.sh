#!/usr/bin/env bash
# ci/log-scan.sh against planted logs: a token in one of the module's debug
# lines, or in any line at another level, fails the scan; nginx's own debug
# lines (every request header, the request line) are left out; a clean log
# passes.  Prints "logscan: N passed, N failed".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/log-scan-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

token=ptk_live_5f3c9a1e77b04d2a9e61
passed=0
failed=0

# case NAME WANT(pass|fail) LINE...: a run whose error.log holds the lines
# (LOG=name.log: that log instead, beside an empty error.log)
case_() {
    local name=$1 want=$2 run rc=0 log=${LOG:-error.log}
    shift 2
    run=$tmp/$name
    mkdir -p "$run/logs"
    : >"$run/logs/error.log"
    printf '%s\n' "$@" >"$run/logs/$log"
    echo "$token" >"$run/secrets-used"
    bash "$top/ci/log-scan.sh" "$run" >"$run/out" 2>&1 || rc=$?
    if { [ "$want" = pass ] && [ "$rc" -eq 0 ]; } ||
       { [ "$want" = fail ] && [ "$rc" -ne 0 ] && grep -q "found in $log" "$run/out"; }; then
        passed=$((passed + 1))
    else
        echo "logscan: $name: expected the scan to $want (exit $rc):" >&2
        cat "$run/out" >&2
        failed=$((failed + 1))
    fi
}

d='2025/01/01 12:00:00'
core="$d [debug] 4242#4242: *7 http header: \"Authorization: Bearer $token\""
core_line="$d [debug] 4242#4242: *7 http request line: \"GET /v1/x/pay?t=$token HTTP/1.1\""
ours="$d [debug] 4242#4242: *7 payments: route pay \"/v1/checkouts/x/pay\" object \"x\""

case_ clean pass "$ours"
case_ nginx_debug_lines pass "$core" "$core_line" "$ours"
case_ module_debug_line fail "$core" \
    "$d [debug] 4242#4242: *7 payments: psp \"stripe\" session \"$token\""
case_ module_cycle_debug_line fail \
    "$d [debug] 4242#4242: payments: sweeper asks about \"$token\""
case_ notice_line fail "$d [notice] 4242#4242: *7 payments: key $token"
case_ error_line fail "$d [error] 4242#4242: *7 upstream said $token"
# nginx's dump of the request it proxies (the suite's /psp-tls/ proxy in
# front of the mock) spans lines: the lines after its first are nginx's
# too; a module line's own continuation is still ours
case_ nginx_multiline_debug_line pass "$ours" \
    "$d [debug] 4242#4242: *7 http proxy header:" \
    "\"POST /v1/checkout/sessions HTTP/1.0" \
    "Authorization: Bearer $token" "" "\"" "$ours"
case_ module_multiline_debug_line fail \
    "$d [debug] 4242#4242: *7 payments: psp answered:" \
    "{\"id\": \"$token\"}" "$ours"
# every gateway a test starts logs under its own name; the mock's log is not
# ours (it is sent the PSP's secrets)
LOG=breaker-a-4242-error.log case_ other_gateways_error_log fail \
    "$d [warn] 4242#4242: *7 payments: key $token"
LOG=notify2-access.log case_ other_gateways_access_log fail \
    "127.0.0.1 - - [01/Jan/2025:12:00:00 +0000] \"GET /v1/x/pay?t=$token HTTP/1.1\" 303 0"
LOG=limits.log case_ limits_log fail "127.0.0.1 rid=1 key=$token"
LOG=mock.log case_ mock_log_is_not_ours pass "mock_psp: Bearer $token"

echo "logscan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
