# shellcheck shell=bash
# bench/lib.sh: what the benchmark scripts share (bench/run.sh, shards.sh,
# instructions.sh, guards.sh, reg_counts.sh, hook_counts.sh).  Sourced, not
# run; the wh_* functions need $run (the services' run directory) and the
# services' env.
# shellcheck disable=SC2154  # run: the sourcing script's

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'; }
# mean A B: their mean, two decimals (a line's neighbours, bench/run.sh)
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }

# bench_merchant SU TREE: the merchant "bench" made in SU's database by
# TREE's payments-merchant; prints its API key's id (what the registration
# scripts' pay_auth looks up: the key, alone on stdout, is mk_test_<id>_...)
bench_merchant() {
    local key
    key=$("$2/bin/payments-merchant" --db "$1" create --id bench --origin https://shop.example) \
        || return 1
    key=${key#mk_test_}
    [ -n "$key" ] || { echo "bench_merchant: no API key made" >&2; return 1; }
    printf '%s\n' "${key%%_*}"
}

# floor_database SU FILE...: the rows floors' database, rows_floor, in SU's
# cluster (SU names database payments), made by the SQL FILEs in order
floor_database() {
    local su=$1 f
    shift
    psql "${su/dbname=payments/dbname=postgres}" -XAtq -c "CREATE DATABASE rows_floor"
    for f in "$@"; do
        psql "${su/dbname=payments/dbname=rows_floor}" -XAtq -v ON_ERROR_STOP=1 -f "$f" >/dev/null
    done
}

# ticks PID...: the CPU time (clock ticks, user + system) of each PID with
# its children ("-": none, 0), in one pass over /proc (one snapshot for all).
# Through cat: a process that exits between the glob and its read is
# skipped (awk reading the files itself stops at the first one gone).
# TICKS_PART=system: the system part alone (the kernel's time in their
# system calls).
ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v pids="$*" -v sys="$([ "${TICKS_PART:-}" = system ] && echo 1)" '
            BEGIN { n = split(pids, want, " ") }
            { pid = $1; sub(/^.*\) /, ""); u = sys ? $13 : $12 + $13
              for (i = 1; i <= n; i++) if (pid == want[i] || $2 == want[i]) t[i] += u }
            END { for (i = 1; i <= n; i++) printf "%d%s", t[i], i < n ? " " : "\n" }'
}
# pg_parts PM: the CPU time (clock ticks) of the postmaster PM's children
# alive now, in two sums: its backends (the clients' connections), then its
# autovacuum workers; the rest (WAL writer, checkpointer, background writer,
# launchers) is PostgreSQL's whole less these.  A worker that starts and
# ends between two samples is in neither, as in ticks.
pg_parts() {
    local pid cmd f b=0 a=0
    for pid in $(pgrep -P "$1" 2>/dev/null); do
        cmd=
        read -r -d '' cmd < "/proc/$pid/cmdline" 2>/dev/null || true
        read -r -a f < "/proc/$pid/stat" 2>/dev/null || continue
        case "$cmd" in
        *"autovacuum worker"*) a=$(( a + f[13] + f[14] )) ;;
        *checkpointer*|*"background writer"*|*walwriter*|*launcher*|*archiver*|*"stats collector"*) ;;
        *) b=$(( b + f[13] + f[14] )) ;;
        esac
    done
    echo "$b $a"
}
# busy: the machine's busy clock ticks, all cores (/proc/stat: user, nice,
# system, irq, softirq; not idle, iowait or a hypervisor's steal)
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
# steal: the clock ticks the hypervisor gave the machine's cores to others
# (/proc/stat's steal, all cores): a line measured while it stole more had
# less of the cores than its neighbours, and its CPU per event in time
# reads higher for the same work
steal() { awk '/^cpu / { print $9; exit }' /proc/stat; }

# wrk_rate LOG: requests/s from a wrk log; wrk_tail LOG: its latency line
# (bench/*.lua's done())
wrk_rate() { awk '/^Requests\/sec/ { print $2 }' "$1"; }
wrk_tail() { grep -E '^p50=' "$1"; }
# wrk_p99 LOG: its p99 in ms (bench/*.lua's done() line)
wrk_p99() { sed -n 's/^p50=[0-9.]*ms p99=\([0-9.]*\)ms.*/\1/p' "$1"; }

# dbwait ORIGIN: the gateway's payments_db_wait_seconds now, one line: its
# count, its sum (s) and its buckets' cumulative counts (le 0.001 .. 1);
# dbwait_report A B: the queries between two such lines, by their wait for
# a connection of the pool (the pool's queue: a registration's latency past
# the PSP's is mostly this when the pool runs near full)
dbwait() {
    curl -s "$1/metrics" | awk '
        /^payments_db_wait_seconds_count / { c = $2 }
        /^payments_db_wait_seconds_sum / { s = $2 }
        /^payments_db_wait_seconds_bucket\{le="[0-9.]+"\} / { b = b " " $2 }
        END { print c + 0, s + 0 b }'
}
dbwait_report() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (split(a, x, " ") != 11 || split(b, y, " ") != 11 || y[1] - x[1] <= 0) {
            print "queries waiting for a connection: n/a"; exit }
        n = y[1] - x[1]
        printf "queries waiting for a connection: %d queries, mean %.1f ms, %.1f%% 5 ms or more, %.1f%% 25 ms or more, %.1f%% 100 ms or more",
            n, 1000 * (y[2] - x[2]) / n, 100 * (1 - (y[4] - x[4]) / n),
            100 * (1 - (y[6] - x[6]) / n), 100 * (1 - (y[8] - x[8]) / n) }'
}

# settle DB [OPTIONS]: vacuum what a step wrote before the next step is
# measured (three autovacuum workers cleaning up after hook_rows.sql took
# the cores from the webhook run after it: 246 webhooks/s against 2,400);
# only the tables that hold rows: a table vacuumed empty is planned as
# empty (bench/run.sh, step 5)
settle() {
    psql "$1" -XAtq -c "SELECT 'VACUUM ${2:-} ' || string_agg(format('%I', relname), ', ')
        FROM pg_stat_user_tables WHERE n_live_tup > 0" | psql "$1" -XAtq
}

# -- webhooks: pay prepared checkouts with pre-signed Stripe events ---------
# Every wh_ function takes the database (a conninfo) it works on first: on a
# sharded stack each merchant's checkouts are on its own shard.

# wh_tools: build the event signer and the token indexer into $run
wh_tools() {
    cc -std=gnu11 -O2 -Wall -Wextra -Werror bench/sign_events.c -lcrypto -o "$run/sign_events"
    cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude bench/blind_index.c build/libpayments.a \
        -ljansson -lcrypto -o "$run/blind_index"
}

# wh_prepare DB MERCHANT PREFIX N: N registered, unpaid checkouts, each two
# orders (seller_1 1000, seller_2 500: a merchant's events share those
# wallet rows), written by the gateway's own functions
wh_prepare() {
    psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "
      DO \$\$ DECLARE i int; l bigint; exp bigint := extract(epoch FROM now())::bigint + 3600;
      BEGIN FOR i IN 1..$4 LOOP
        SELECT c.lease INTO l FROM pay_claim('$2', '$3-k' || i, repeat('a', 64),
          30, 86400, '$3x' || i, 'stripe', 'USD', 1500, 'https://shop.example/t',
          'https://shop.example/c', NULL, exp, '{}',
          jsonb_build_array(
            jsonb_build_object('payment_order_id', '$3x' || i || 'a', 'seller_account', 'seller_1', 'amount_minor', 1000),
            jsonb_build_object('payment_order_id', '$3x' || i || 'b', 'seller_account', 'seller_2', 'amount_minor', 500)),
          '{}') c;
        PERFORM pay_finish('$2', '$3-k' || i, l, '$3x' || i, 'EXECUTING',
          'cs_$3x' || i, 'https://psp.example/pay', exp, NULL, 201, '{}');
      END LOOP; END \$\$;"
}

# wh_index DB LIKE: those checkouts' psp_tokens rows keyed as a gateway with
# a key file keys its own (the token's blind index under the file's first
# key), so that an event finds its checkout by the first candidate the
# gateway sends, as for a checkout it registered; left as wh_prepare writes
# them (plaintext, as rows from before a key file), each event would first
# miss both keys' indexes (2 lookups more per event).  The checkouts keep
# the plaintext token: the events are signed with it, as a PSP sends it.
wh_index() {
    psql "$1" -XAtq -F $'\t' -c "SELECT psp, psp_token FROM psp_tokens
        WHERE checkout_id LIKE '$2'" |
        "$run/blind_index" "$PAY_TEST_ENCRYPTION_KEY" > "$run/index.tsv"
    psql "$1" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE TEMP TABLE bench_index (psp text, tok text, idx text, PRIMARY KEY (psp, tok));
\copy bench_index FROM '$run/index.tsv'
UPDATE psp_tokens p SET psp_token = i.idx FROM bench_index i
 WHERE p.psp = i.psp AND p.psp_token = i.tok;
EOF
}

# wh_rows DB LIKE: the checkouts' "merchant, checkout, token, amount" lines
# the signer reads, with the checkout's number first (to interleave)
wh_rows() {
    psql "$1" -XAtq -F $'\t' -c "SELECT substring(checkout_id FROM 'x([0-9]+)$')::int,
        merchant_id, checkout_id, psp_token, amount_total
        FROM checkouts WHERE checkout_id LIKE '$2'"
}

# wh_sign OUT DB LIKE [DB LIKE...]: the events paying those checkouts (of
# one database or several), interleaved by checkout number, so that several
# merchants' (and shards') events alternate
wh_sign() {
    local out=$1
    shift
    while [ $# -ge 2 ]; do
        wh_rows "$1" "$2"
        shift 2
    done | sort -t $'\t' -k1,1n -k2,2 | cut -f2- |
        "$run/sign_events" "$(cat "$PAY_TEST_WEBHOOK_SECRET")" > "$out"
}

# wh_paid DB LIKE: unique events committed (checkouts paid)
wh_paid() {
    psql "$1" -XAtq -c "SELECT count(*) FROM checkouts
        WHERE checkout_id LIKE '$2' AND status = 'SUCCESS'"
}

# wh_queue DB LIKE: bench_webhook_queue (for bench/webhook.pgbench), the
# Stripe event paying each of those checkouts with the values the gateway
# sends to pay_event_keep: its id, the session's token, the signed
# reference, the amount, the payment_intent, the token's candidates (the
# blind index psp_tokens holds, as under a ring's first key; one missing,
# as under its second; the token as sent), the body sign_events.c signs, a
# Stripe-Signature header of that form and the id of a shared secret.
# Numbered from 0 in the checkouts' order; granted to the gateway's role.
wh_queue() {
    psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "
    DROP TABLE IF EXISTS bench_webhook_queue;
    CREATE TABLE bench_webhook_queue AS
      SELECT row_number() OVER (ORDER BY substring(c.checkout_id FROM 'x([0-9]+)\$')::int,
                                 c.merchant_id) - 1 AS id,
             'evt_bench_' || c.merchant_id || '_' || c.checkout_id AS evt,
             c.psp_token AS tok,
             c.merchant_id || ':' || c.checkout_id AS ref,
             c.amount_total AS amount,
             'pi_bench_' || c.merchant_id || '_' || c.checkout_id AS pref,
             ARRAY[t.psp_token, md5(t.psp_token) || md5(c.psp_token), c.psp_token] AS toks,
             convert_to(b.body, 'UTF8') AS body,
             jsonb_build_object('Stripe-Signature', 't=' || b.t || ',v1=' ||
                                encode(sha256(convert_to(b.body, 'UTF8')), 'hex')) AS hdr,
             'sha256:' || left(md5(c.merchant_id), 16) AS kid
        FROM checkouts c
        JOIN psp_tokens t ON t.merchant_id = c.merchant_id AND t.checkout_id = c.checkout_id,
             LATERAL (SELECT extract(epoch FROM now())::bigint AS t) tt,
             LATERAL (SELECT tt.t, format('{\"id\":\"evt_bench_%s_%s\",\"object\":\"event\",'
                  '\"type\":\"checkout.session.completed\",\"created\":%s,'
                  '\"livemode\":false,\"data\":{\"object\":{\"id\":\"%s\",'
                  '\"object\":\"checkout.session\",\"client_reference_id\":'
                  '\"%s:%s\",\"amount_total\":%s,\"currency\":\"usd\",'
                  '\"payment_intent\":\"pi_bench_%s_%s\",'
                  '\"payment_status\":\"paid\",\"status\":\"complete\"}}}',
                  c.merchant_id, c.checkout_id, tt.t, c.psp_token, c.merchant_id,
                  c.checkout_id, c.amount_total, c.merchant_id, c.checkout_id) AS body) b
       WHERE c.checkout_id LIKE '$2';
    CREATE UNIQUE INDEX ON bench_webhook_queue (id);
    GRANT SELECT ON bench_webhook_queue TO payments_gateway;"
}
