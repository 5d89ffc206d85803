#!/usr/bin/env bash
# `make bench-instructions`: what the gateway's SQL costs PostgreSQL in CPU
# instructions, beside its rows floor, counted by valgrind's callgrind in
# the backend that runs it (bench/README.md):
#
#   bash bench/instructions.sh [registrations|risk|webhooks|all]   (default all)
#   bash bench/instructions.sh script FILE...
#
# The rates of make bench move by 15% between runs of one sitting on a
# shared machine, and a floor run cold or warm moved by half; an
# instruction count does not depend on the machine's load: two runs of
# this script agree within about 1%.  It counts CPU work only: not the
# waits on the WAL's flush, on locks or on a cache miss.
#
# A throwaway durable cluster (ci/pg.sh), the tree's migrations, a
# merchant, the webhooks' checkouts (bench/lib.sh's wh_prepare, their
# tokens keyed by a blind index) and the rows floors' database; then the
# postmaster again under callgrind, autovacuum off.  For each line one
# pgbench client (prepared statements, as the gateway's role for the
# gateway's SQL) runs INSTR_N1 (20) units on one connection, then
# INSTR_N2 (120) on another; each connection is a backend of its own, and
# its callgrind file has its total.  The figure is the difference of the
# two totals over INSTR_N2 - INSTR_N1: a connection's start, its caches'
# first loads and each statement's first plans cancel out.
#   registrations  bench/registration.pgbench (pay_auth, pay_claim,
#                  pay_finish); floor bench/rows_floor/reg_rows.sql
#   risk           the registrations' line, then bench/registration_risk.pgbench
#                  (the same registration risk-checked, its provider
#                  allowing: pay_claim_peek, and pay_claim_with_verdict for
#                  pay_claim) against the same floor
#   webhooks       bench/webhook.pgbench (pay_event_keep for a paid Stripe
#                  checkout, each its own); floor bench/rows_floor/hook_rows.sql
#   script FILE... each pgbench FILE alone, in the same cluster (after the
#                  registrations' history), as INSTR_USER (payments_gateway;
#                  -D key_id= the merchant bench's key), no floor; INSTR_SETUP=
#                  a SQL file run first as the superuser (a function's variant
#                  to compare with it).  One function's change measured alone:
#                  a registration's figure moves by about 1% between runs
#                  (plans chosen after ANALYZE, page splits), one function
#                  called alone by well under 0.1% (bench/RESULTS.md).
# Results are appended to bench/results/instructions-<time>.txt.  About three
# minutes; valgrind is a Debian package (ci/install-deps.sh installs it).
# INSTR_KEEP=DIR keeps each counted backend's callgrind file in DIR
# (<script>-<database>-<units>.cg): callgrind_annotate --inclusive=yes on
# the larger run tells where the instructions go.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
case "$what" in
registrations|risk|webhooks|all) ;;
script)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 script FILE..." >&2; exit 2; }
    scripts=()
    for f in "$@"; do
        [ -r "$f" ] || { echo "bench/instructions.sh: $f: no such file" >&2; exit 2; }
        scripts+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
    done
    if [ -n "${INSTR_SETUP:-}" ]; then
        [ -r "$INSTR_SETUP" ] || { echo "bench/instructions.sh: $INSTR_SETUP: no such file" >&2; exit 2; }
        INSTR_SETUP=$(cd "$(dirname "$INSTR_SETUP")" && pwd)/$(basename "$INSTR_SETUP")
    fi
    ;;
*) echo "usage: $0 [registrations|risk|webhooks|all] | $0 script FILE..." >&2; exit 2 ;;
esac
n1=${INSTR_N1:-20}
n2=${INSTR_N2:-120}
grow=${INSTR_GROW:-2000}
[ "$n2" -gt "$n1" ] || { echo "bench/instructions.sh: INSTR_N2 must exceed INSTR_N1" >&2; exit 2; }
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
command -v valgrind >/dev/null || { echo "bench/instructions.sh: valgrind is missing (bash ci/install-deps.sh)" >&2; exit 1; }

# wh_prepare, wh_queue
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

run=$(mktemp -d /tmp/ngx-payments-instr.XXXXXX)
chmod 755 "$run"
pgdir=$run/pg
cg=$run/cg
mkdir -p "$cg"
chmod 777 "$cg"
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}
cleanup() {
    as_owner "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w -t 120 stop >/dev/null 2>&1 || true
    rm -rf "$run"
}
trap cleanup EXIT

port=$(( 20000 + RANDOM % 20000 ))
export PG_DURABLE=1 PG_PRELOAD=
export PG_SETTINGS="autovacuum=off max_wal_size=8GB checkpoint_timeout=1h"
su=$(bash "$top/ci/pg.sh" start "$pgdir" "$port")
db="host=127.0.0.1 port=$port dbname=payments"
floor="host=127.0.0.1 port=$port dbname=rows_floor"

kid=$(bench_merchant "$su" "$top")
floor_database "$su" "$top/bench/rows_floor/reg_schema.sql" "$top/bench/rows_floor/schema.sql"
if [ "$what" = webhooks ] || [ "$what" = all ]; then
    # both runs' checkouts: ids 0 .. n1-1, then n2 .. 2*n2-1 (webhook.pgbench's
    # id with one client: (pass - 1) * per + n); the history's after them
    wh_prepare "$su" bench hk $(( 2 * n2 + grow ))
    psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "UPDATE psp_tokens
        SET psp_token = encode(sha256(convert_to('psp_token:stripe ' || psp_token, 'UTF8')), 'hex')
        WHERE merchant_id = 'bench' AND checkout_id LIKE 'hkx%'" >/dev/null
    wh_queue "$su" 'hkx%'
fi
# A history (INSTR_GROW units of each line, uncounted) before the tables
# are analyzed: the rows floor's tables hold 200,000 checkouts, and ours
# planned empty make the backend keep sequential scans for the run (each
# ledger balance check read the whole ledger: 7.70M instructions a webhook,
# 5.02M after a history of 2,000)
if [ "$grow" -gt 0 ]; then
    if [ "$what" != webhooks ]; then
        pgbench -n -M prepared -c 2 -j 2 -t $(( grow / 2 )) -U payments_gateway -D key_id="$kid" \
            -f "$top/bench/registration.pgbench" "$db" >"$run/grow.log" 2>&1 ||
            { cat "$run/grow.log" >&2; exit 1; }
    fi
    if [ "$what" = risk ] || [ "$what" = all ]; then
        pgbench -n -M prepared -c 2 -j 2 -t $(( grow / 2 )) -U payments_gateway -D key_id="$kid" \
            -f "$top/bench/registration_risk.pgbench" "$db" >"$run/grow.log" 2>&1 ||
            { cat "$run/grow.log" >&2; exit 1; }
    fi
    if [ "$what" = webhooks ] || [ "$what" = all ]; then
        pgbench -n -M prepared -c 1 -t "$grow" -U payments_gateway -D n=$(( 2 * n2 )) -D per=0 \
            -D clients=1 -D pass=1 -f "$top/bench/webhook.pgbench" "$db" >"$run/grow.log" 2>&1 ||
            { cat "$run/grow.log" >&2; exit 1; }
    fi
fi
if [ "$what" = script ] && [ -n "${INSTR_SETUP:-}" ]; then
    psql "$su" -XAtq -v ON_ERROR_STOP=1 -f "$INSTR_SETUP" >/dev/null
fi
psql "$su" -XAtq -c "VACUUM ANALYZE" >/dev/null
psql "$floor user=postgres" -XAtq -c "VACUUM ANALYZE" >/dev/null
psql "$su" -XAtq -c "CHECKPOINT" >/dev/null

# the same cluster, its postmaster under callgrind
as_owner "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w -t 60 stop >/dev/null
(cd / && if [ "$(id -u)" -eq 0 ]; then
     setsid runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$cg/cg.%p" \
         "$pgbin/postgres" -D "$pgdir/data" >"$run/valgrind.log" 2>&1 &
 else
     setsid valgrind --tool=callgrind --callgrind-out-file="$cg/cg.%p" \
         "$pgbin/postgres" -D "$pgdir/data" >"$run/valgrind.log" 2>&1 &
 fi)
for _ in $(seq 120); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { tail -20 "$run/valgrind.log" >&2; exit 1; }

out=$top/bench/results/instructions-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }

# backend CONNINFO SCRIPT UNITS [pgbench args]: the instructions of the one
# backend that ran UNITS units of SCRIPT (the largest callgrind file that
# appeared; a file appears when its backend exits)
backend() {
    local conn=$1 script=$2 units=$3 f best=0 ir keep='' dbn
    shift 3
    rm -f "$cg"/cg.*
    PGOPTIONS='-c synchronous_commit=off' \
        pgbench -n -M prepared -c 1 -t "$units" "$@" -f "$script" "$conn" >"$run/pgbench.log" 2>&1 ||
        { cat "$run/pgbench.log" >&2; exit 1; }
    grep -q "number of failed transactions: 0" "$run/pgbench.log" ||
        { cat "$run/pgbench.log" >&2; exit 1; }
    # the backend's file is written as it exits, after pgbench's end
    for _ in $(seq 60); do
        compgen -G "$cg/cg.*" >/dev/null && break
        sleep 1
    done
    sleep 1
    for f in "$cg"/cg.*; do
        ir=$(grep -m1 -oE '^(summary|totals): [0-9]+' "$f" | grep -oE '[0-9]+$' || echo 0)
        if [ "$ir" -gt "$best" ]; then
            best=$ir
            keep=$f
        fi
    done
    # INSTR_KEEP=DIR: that backend's callgrind file kept, for
    # callgrind_annotate (where the instructions go)
    if [ -n "${INSTR_KEEP:-}" ] && [ -n "${keep:-}" ]; then
        dbn=${conn##*dbname=}
        mkdir -p "$INSTR_KEEP"
        cp "$keep" "$INSTR_KEEP/$(basename "$script" .pgbench)-${dbn%% *}-$units.cg"
    fi
    echo "$best"
}

# per_unit CONNINFO SCRIPT ARGS_FOR_N1 ARGS_FOR_N2: instructions a unit
per_unit() {
    local conn=$1 script=$2 a b
    # shellcheck disable=SC2086  # the pgbench arguments are words
    a=$(backend "$conn" "$script" "$n1" $3)
    # shellcheck disable=SC2086
    b=$(backend "$conn" "$script" "$n2" $4)
    echo $(( (b - a) / (n2 - n1) ))
}

label=$(git -C "$top" log -1 --format='%h %s' 2>/dev/null | cut -c1-70) || true
say "instructions per unit (callgrind), $(date -u), tree ${label:-$top}"
say "durable cluster, autovacuum off; one client, the difference of $n1 and $n2 units"
say
if [ "$what" != script ]; then
    say "| SQL | gateway, instructions a unit | rows floor | gateway / floor |"
    say "| --- | --- | --- | --- |"
fi
# 4750137 -> 4,750,137 (printf's %'d groups only in a locale that says so)
grouped() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; }
line() {
    local g f
    g=$(per_unit "$2" "$3" "$4" "$5")
    f=$(per_unit "$floor user=postgres" "$6" "" "")
    say "| $1 | $(grouped "$g") | $(grouped "$f") | $(awk -v g="$g" -v f="$f" 'BEGIN { printf "%.2f", f / g }') |"
}
if [ "$what" = script ]; then
    say "| script | instructions a unit |"
    say "| --- | --- |"
    for f in "${scripts[@]}"; do
        # (assigned first: a script that fails stops the run here)
        n=$(per_unit "$db" "$f" "-U ${INSTR_USER:-payments_gateway} -D key_id=$kid" \
                                "-U ${INSTR_USER:-payments_gateway} -D key_id=$kid")
        say "| $(basename "$f") | $(grouped "$n") |"
    done
    exit 0
fi
if [ "$what" != webhooks ]; then
    line registrations "$db" "$top/bench/registration.pgbench" \
        "-U payments_gateway -D key_id=$kid" "-U payments_gateway -D key_id=$kid" \
        "$top/bench/rows_floor/reg_rows.sql"
fi
if [ "$what" = risk ] || [ "$what" = all ]; then
    line "registrations, risk-checked" "$db" "$top/bench/registration_risk.pgbench" \
        "-U payments_gateway -D key_id=$kid" "-U payments_gateway -D key_id=$kid" \
        "$top/bench/rows_floor/reg_rows.sql"
fi
if [ "$what" = webhooks ] || [ "$what" = all ]; then
    line webhooks "$db" "$top/bench/webhook.pgbench" \
        "-U payments_gateway -D n=0 -D per=$n1 -D clients=1 -D pass=1" \
        "-U payments_gateway -D n=0 -D per=$n2 -D clients=1 -D pass=2" \
        "$top/bench/rows_floor/hook_rows.sql"
fi
say
say "(gateway / floor: the floor's instructions over the gateway's, as make bench's rates compare)"
