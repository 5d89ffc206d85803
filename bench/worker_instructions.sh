#!/usr/bin/env bash
# `make bench-worker-instructions`: what a registration and a webhook cost
# the nginx worker in CPU instructions, counted by valgrind's callgrind
# (bench/README.md).  bench/instructions.sh counts PostgreSQL's side; this
# is the gateway's own: the request's parse, the checks, the PSP request
# built and the answer read, the pay link signed, the tokens sealed, a
# webhook's signature verified and its event read, the queries and the
# PSP call driven, the answer written.
#
#   bash bench/worker_instructions.sh [registrations|risk|webhooks|all]   (default all)
#
# The services of make bench (ci/services.sh with bench/nginx.conf.in, the
# mock PSP answering at once, the pool of make bench); for webhooks, unpaid
# checkouts of the demo merchant, their tokens keyed by the blind index, and
# a signed Stripe checkout.session.completed for each (bench/lib.sh's wh_*,
# as make bench's webhook lines); risk: the registrations through the
# server whose payments_risk asks the mock's provider before every PSP
# call (make bench's risk line, its provider answering at once).  Then nginx again as one process
# (master_process off) under callgrind, its sweeper off.  For each line,
# WORKER_WARM (20) requests first, uncounted (the pool's connections, their
# prepared statements, the PSP's connection); then, twice, the counters
# zeroed, WORKER_N (200) requests sent one after another on one keep-alive
# connection (curl, plain HTTP from loopback, as make bench's main lines),
# and the counters dumped: each window's total over WORKER_N.  Two windows
# agree within about 0.1%.  User space only: the kernel's share of the
# worker's CPU (system calls; about a fifth in the perf profiles of
# bench/RESULTS.md) is not counted.
#
# WORKER_TOP=N also prints, for each line, the N functions of the module
# and the core (and the libraries' entry points they call) with the most
# instructions a request, inclusive of what they call; WORKER_KEEP=DIR
# keeps each line's second window's callgrind file there
# (callgrind_annotate --inclusive=yes, or --tree=caller for who calls a
# function).  Results are appended to
# bench/results/worker-instructions-<time>.txt.  About a minute a line.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
what=${1:-all}
case "$what" in
registrations|risk|webhooks|all) ;;
*) echo "usage: $0 [registrations|risk|webhooks|all]" >&2; exit 2 ;;
esac
n=${WORKER_N:-200}
warm=${WORKER_WARM:-20}
topn=${WORKER_TOP:-0}
[ "$n" -gt 0 ] || { echo "bench/worker_instructions.sh: WORKER_N must be positive" >&2; exit 2; }
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    { echo "bench/worker_instructions.sh: valgrind is missing (bash ci/install-deps.sh)" >&2; exit 1; }

make -s module mock

run=$(mktemp -d /tmp/ngx-payments-winstr.XXXXXX)
chmod 755 "$run"
cleanup() {
    bash ci/services.sh finish "$run" "$?" bench/worker_instructions.sh
}
trap cleanup EXIT

export PAY_DB_POOL=${BENCH_DB_POOL:-$(( $(nproc) + 1 ))}
bash ci/services.sh start "$run" --template bench/nginx.conf.in --lease 30s \
    --workers 1 >"$run/start.log" 2>&1 || { cat "$run/start.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$run/env"
# wh_tools, wh_prepare, wh_index, wh_sign (they write into $run)
# shellcheck source=bench/lib.sh
. bench/lib.sh

tag=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')

# The webhooks' checkouts and their events, one per checkout in checkout
# order: the warm-up's, then each window's (signed now: the gateway takes
# a signature for 300 s)
if [ "$what" = webhooks ] || [ "$what" = all ]; then
    wh_tools
    wh_prepare "$PAY_TEST_PG" "$PAY_TEST_MERCHANT_ID" "wi$tag" $(( warm + 2 * n ))
    wh_index "$PAY_TEST_PG" "wi${tag}x%"
    wh_sign "$run/events.tsv" "$PAY_TEST_PG" "wi${tag}x%"
    mkdir -p "$run/events"
fi

# nginx again: one process under callgrind, as the worker ran, without the
# sweeper's rounds (their timers would fall in a window or not)
kill -QUIT "$(cat "$run/nginx.pid")"
for _ in $(seq 50); do
    [ -f "$run/nginx.pid" ] || break
    sleep 0.1
done
sed -i 's/^http {$/http {\n    payments_sweeper off;/' "$run/nginx.conf"
grep -q '^    payments_sweeper off;$' "$run/nginx.conf" ||
    { echo "bench/worker_instructions.sh: no http block in $run/nginx.conf" >&2; exit 1; }
mkdir -p "$run/cg"
setsid valgrind --tool=callgrind --callgrind-out-file="$run/cg/cg.%p" \
    nginx -p "$run/" -c "$run/nginx.conf" -e "$run/logs/error.log" \
    -g 'daemon off; master_process off;' >"$run/logs/valgrind.log" 2>&1 &
up=0
for _ in $(seq 120); do
    if curl -sf -o /dev/null --max-time 5 "$PAY_TEST_GW_PLAIN/healthz"; then
        up=1
        break
    fi
    sleep 0.5
done
[ "$up" = 1 ] || { tail -20 "$run/logs/valgrind.log" "$run/logs/error.log" >&2; exit 1; }
pid=$(cat "$run/nginx.pid")

# registrations TAG FROM COUNT [URL]: a curl config of COUNT registrations,
# each its own key and checkout (two orders, as bench/registrations.lua
# sends), to URL (the gateway's plain HTTP)
registrations() {
    local tag=$1 i id url=${4:-$PAY_TEST_GW_PLAIN}
    for i in $(seq "$2" $(( $2 + $3 - 1 ))); do
        id=$tag-n$(printf %09d "$i")
        [ "$i" = "$2" ] || echo next
        cat <<EOF
url = "$url/v1/payments"
request = "POST"
header = "Content-Type: application/json"
header = "Authorization: Bearer $PAY_TEST_MERCHANT_KEY"
header = "Idempotency-Key: \"$id\""
data = "{\"checkout_id\":\"co_$id\",\"payment_orders\":[{\"payment_order_id\":\"po_${id}_a\",\"seller_account\":\"seller_42\",\"amount\":\"$(( 10 + i % 97 )).00\",\"currency\":\"USD\"},{\"payment_order_id\":\"po_${id}_b\",\"seller_account\":\"seller_77\",\"amount\":\"5.00\",\"currency\":\"USD\"}],\"success_url\":\"https://shop.example/thanks\",\"cancel_url\":\"https://shop.example/cart\",\"psp\":\"$PAY_TEST_PSP\"}"
output = "/dev/null"
write-out = "%{http_code}\n"
EOF
    done
}

# webhooks TAG FROM COUNT: a curl config of events FROM .. FROM+COUNT-1 of
# events.tsv ("<Stripe-Signature>\t<body>"), each body in a file of its own
webhooks() {
    local i=0 sig body
    while IFS=$'\t' read -r sig body; do
        i=$(( i + 1 ))
        [ "$i" -ge "$2" ] || continue
        [ "$i" -lt $(( $2 + $3 )) ] || break
        printf '%s' "$body" >"$run/events/$i.json"
        [ "$i" = "$2" ] || echo next
        cat <<EOF
url = "$PAY_TEST_GW_PLAIN/v1/webhooks/$PAY_TEST_PSP"
request = "POST"
header = "Content-Type: application/json"
header = "Stripe-Signature: $sig"
data-binary = "@$run/events/$i.json"
output = "/dev/null"
write-out = "%{http_code}\n"
EOF
    done <"$run/events.tsv"
}

# risk TAG FROM COUNT: the registrations through the risk-checked server
risk() {
    registrations "$1" "$2" "$3" "http://127.0.0.1:${PAY_TEST_GW_LIMITS##*:}"
}

# send LINE TAG FROM COUNT: those requests, each answered 201 (a
# registration) or 200 (an event applied)
send() {
    local got want=201
    [ "$1" != webhooks ] || want=200
    "$1" "$2" "$3" "$4" >"$run/$2.cfg"
    got=$(curl -s -K "$run/$2.cfg" | sort | uniq -c | tr -s ' ')
    [ "$got" = " $4 $want" ] ||
        { echo "bench/worker_instructions.sh: $1 $2: answers $got" >&2; tail -5 "$run/logs/error.log" >&2; exit 1; }
}

out=$top/bench/results/worker-instructions-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }
grouped() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; }

label=$(git log -1 --format='%h %s' 2>/dev/null | cut -c1-70) || true
say "nginx worker instructions a request (callgrind), $(date -u), tree ${label:-$top}"
say "one process, sweeper off; $n requests a window, one after another, plain HTTP"
say
say "| line | window 1 | window 2 |"
say "| --- | --- | --- |"

# line NAME: the warm-up, two windows, and the line's row (and its top);
# each line's keys and checkouts its own (the same would be replays)
line() {
    local name=$1 w f ir per=() t
    t=${name:0:2}$tag
    send "$name" "w$t" 1 "$warm"
    for w in 1 2; do
        rm -f "$run"/cg/cg."$pid".*
        callgrind_control -z "$pid" >/dev/null 2>&1
        send "$name" "m$w$t" $(( warm + 1 + (w - 1) * n )) "$n"
        callgrind_control -d "$pid" >/dev/null 2>&1
        f=''
        for _ in $(seq 50); do
            f=$(compgen -G "$run/cg/cg.$pid.*" | head -1) && [ -s "$f" ] && break
            sleep 0.2
        done
        sleep 0.5
        ir=$(grep -m1 -oE '^(summary|totals): [0-9]+' "$f" | grep -oE '[0-9]+$')
        per+=("$(grouped $(( ir / n )))")
    done
    say "| $name | ${per[0]} | ${per[1]} |"
    if [ -n "${WORKER_KEEP:-}" ]; then
        mkdir -p "$WORKER_KEEP"
        cp "$f" "$WORKER_KEEP/worker-$name-$n.cg"
    fi
    if [ "$topn" -gt 0 ]; then
        cp "$f" "$run/top-$name.cg"
    fi
}

case "$what" in registrations|all) line registrations ;; esac
case "$what" in risk|all) line risk ;; esac
case "$what" in webhooks|all) line webhooks ;; esac

if [ "$topn" -gt 0 ]; then
    for f in "$run"/top-*.cg; do
        name=${f##*/top-}
        say
        say "| ${name%.cg}: inclusive, a request | function |"
        say "| --- | --- |"
        # the module's and the core's functions, and the libraries' entry
        # points they call (jansson, libjwt, libcurl, libpq, OpenSSL)
        callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
            grep -E '^ *[0-9,]+ \(' |
            grep -E 'ngx_payments_module/|src/|\?\?\?:(json_|jwt_|curl_|PQ|HMAC|EVP_)' |
            sed -E 's/ \[[^]]*\]$//; s/^ *([0-9,]+) \([^)]*\) +/\1 /; s/^([0-9,]+) [^ ]*:/\1 /' |
            awk -v n="$n" '{ v = $1; gsub(",", "", v); if (!seen[$2]++) printf "%d %s\n", v / n, $2 }' |
            sort -rn | head -n "$topn" |
            while read -r v fn; do say "| $(grouped "$v") | \`$fn\` |"; done
    done
fi
