#!/usr/bin/env bash
# Starts and stops the services a gateway needs, all on loopback ports picked
# at run time: PostgreSQL (ci/pg.sh), the mock PSP, and nginx with the module.
# Used by ci/e2e.sh, ci/demo.sh and bench/.
#
#   ci/services.sh start RUN [options]
#       --asan               run build/mock_psp-asan (tests) instead of build/mock_psp
#       --workers N          nginx worker_processes (default 1)
#       --lease DURATION     payments_idempotency_lease (default 20s)
#       --template FILE      nginx.conf template (default tests/e2e/nginx.conf.in)
#       --mock-latency MS    the mock PSP's default answer delay (default 0)
#       --public-origin O    payments_public_origin (default https://gw.test.example,
#                            which tests map to the gateway; "self": the gateway's
#                            own https://127.0.0.1:PORT, for a browser)
#       --error-log-level L  nginx's error_log level (default notice; debug
#                            for the e2e suite's debug run, E2E_DEBUG_LOG=1)
#       --stable-ports       make demo's fixed ports, each when nothing listens
#                            on it (else a free one): gateway 9443 (plain 9080,
#                            limits 9444), mock PSP 9090, PostgreSQL 9432
#       --shards N           N PostgreSQL clusters (1 to 4, default 1), merchant
#                            shards a, b, ... (doc/plans/shards.md section 3),
#                            each a full migrated schema on a port of its own;
#                            1 is today's stack exactly (payments_database).
#                            With N > 1 the template's @DATABASE_DIRECTIVES@
#                            becomes one payments_shard line per cluster (a
#                            the home); the gateway serves them all
#                            (PAY_TEST_GW_SHARDS).  The demo merchant lives
#                            on a.
#   ci/services.sh stop RUN
#   ci/services.sh finish RUN RC NAME
#       stop, then remove RUN when RC is 0 (unless KEEP_RUN=1), else keep it
#       and say so as NAME: the end of a run's trap (bench/)
#
# RUN gets conf/ (secrets, chmod 600; TLS certificate), logs/, tmp/,
# nginx.conf, state (what stop needs) and env: the PAY_TEST_* variables of
# doc/CONTRACTS.md section 4 plus
#   PAY_TEST_GW_PLAIN          plain-HTTP listener of the same server
#   PAY_TEST_CA                the gateway's self-signed certificate (PEM)
#   PAY_TEST_PUBLIC_ORIGIN     payments_public_origin
#   PAY_TEST_PSP               the configured PSP's name ("stripe")
#   PAY_TEST_PAYTOKEN_KEY      the pay-token key file, PAY_TEST_PAYTOKEN_KID its kid
#   PAY_TEST_ENCRYPTION_KEY    payments_encryption_key's file: two keys, the
#                              first seals (e2e-k1), both open (e2e-k2)
#   PAY_TEST_PGDIR             ci/pg.sh's DIR (PGDATA is its data/)
#   PAY_TEST_MERCHANT_KEY      a demo merchant's API key (origin https://shop.example)
#   PAY_TEST_MERCHANT_ID       its merchant id
#   PAY_TEST_ERROR_LOG_LEVEL   --error-log-level (the harness's own gateways
#                              log at it too)
# and with --shards N (N > 1) only:
#   PAY_TEST_SHARDS            N
#   PAY_TEST_SHARD_NAMES       the shards' names, "a b ..." (a: the home)
#   PAY_TEST_SHARDS_FILE       the CLIs' shards file (payments-merchant and
#                              payments-migrate --shards), superuser conninfos
#   PAY_TEST_GW_SHARDS         the shards the suite's gateway serves
#                              ("a b")
#   PAY_TEST_PG<i>, PAY_TEST_PGDIR<i>, PAY_TEST_PGDATA<i>
#                              the i-th shard's (1 to N; 1 is PAY_TEST_PG's)
# Source it: `. RUN/env`.
#
# A start that fails half-way stops what it started.  Environment:
# BUILD (default build), NGINX (default nginx).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
nginx_bin=${NGINX:-nginx}
psp_name=stripe
kid=t1

svc_name=services.sh
svc_pg=$top/ci/pg.sh
# shellcheck source=testenv/services-lib.sh
. "$top/testenv/services-lib.sh"
die() { svc_die "$@"; }

usage() {
    echo "usage: $0 start RUN [--asan] [--workers N] [--lease D] [--template F]" \
        "[--mock-latency MS] [--public-origin O|self] [--error-log-level L]" \
        "[--shards N]" >&2
    echo "       $0 stop RUN" >&2
    echo "       $0 finish RUN RC NAME (stop; remove RUN when RC is 0, unless KEEP_RUN=1)" >&2
    echo "       $0 port [DEFAULT] (prints DEFAULT when free, else a free loopback port)" >&2
    exit 2
}

# --- stop -------------------------------------------------------------------

do_stop() {
    local run=$1 MOCK_PID='' PGDIR='' PGDIR_OWNED=0 i dir owned
    # the other shards' clusters (--shards), read through ${!dir}
    # shellcheck disable=SC2034
    local PGDIR2='' PGDIR2_OWNED=0 PGDIR3='' PGDIR3_OWNED=0
    # shellcheck disable=SC2034
    local PGDIR4='' PGDIR4_OWNED=0
    [ -f "$run/state" ] || return 0
    # shellcheck disable=SC1091
    . "$run/state"
    svc_stop_nginx "$run/nginx.pid"
    svc_stop_pid "$MOCK_PID" TERM 5
    svc_stop_pg "$PGDIR" "$PGDIR_OWNED" "$run/logs"
    for i in 2 3 4; do
        dir=PGDIR$i owned=PGDIR${i}_OWNED
        svc_stop_pg "${!dir}" "${!owned}" "$run/logs" "postgres$i.log"
    done
    rm -f "$run/state"
}

# --- start ------------------------------------------------------------------

starting=''
pg_starting=()  # the other shards' ci/pg.sh start, in the background
on_start_exit() {
    local rc=$? p
    if [ "$rc" -ne 0 ] && [ -n "$starting" ]; then
        echo "services.sh: start failed, stopping what was started" >&2
        # a cluster still starting would be left running
        for p in "${pg_starting[@]}"; do wait "$p" 2>/dev/null || true; done
        do_stop "$starting"
    fi
    exit "$rc"
}

do_start() {
    local run=$1
    shift
    local asan=0 workers=1 lease=20s latency=0 public_origin=https://gw.test.example
    local stable='' log_level=notice shards=1
    local template=$top/tests/e2e/nginx.conf.in
    while [ $# -gt 0 ]; do
        case $1 in
        --asan) asan=1 ;;
        --workers) workers=$2; shift ;;
        --lease) lease=$2; shift ;;
        --template) template=$2; shift ;;
        --mock-latency) latency=$2; shift ;;
        --public-origin) public_origin=$2; shift ;;
        --stable-ports) stable=1 ;;
        --error-log-level) log_level=$2; shift ;;
        --shards) shards=$2; shift ;;
        *) usage ;;
        esac
        shift
    done

    local module=$build/nginx/ngx_http_payments_module.so
    local mock=$build/mock_psp
    [ "$asan" = 1 ] && mock=$build/mock_psp-asan
    [ -f "$module" ] || die "$module is missing: make module"
    [ -x "$mock" ] || die "$mock is missing: make ${mock##*/}"
    [ -f "$template" ] || die "$template is missing"
    [ -x "$top/bin/payments-merchant" ] || die "bin/payments-merchant is missing"
    command -v "$nginx_bin" >/dev/null || die "nginx is not installed: ci/install-deps.sh"
    [[ $shards =~ ^[1-4]$ ]] || die "--shards: 1 to 4, not '$shards'"
    if [ "$shards" -gt 1 ] && ! grep -q '@DATABASE_DIRECTIVES@' "$template"; then
        die "--shards $shards: $template has no @DATABASE_DIRECTIVES@"
    fi

    mkdir -p "$run"
    run=$(cd "$run" && pwd)
    if [ -f "$run/state" ]; then
        die "$run already has services (ci/services.sh stop $run first)"
    fi
    # Workers run as an unprivileged user when we are root: they must reach
    # the temp dirs and logs, never conf/.
    mkdir -p "$run/conf" "$run/logs" "$run/tmp"
    chmod 755 "$run" "$run/logs" "$run/tmp"
    chmod 700 "$run/conf"
    # the module as it is now: a build during the run (make module while a
    # money check runs) must not give its later gateways another module
    # than the database's migrations were made for
    cp "$module" "$run/ngx_http_payments_module.so"
    module=$run/ngx_http_payments_module.so

    # From here on, a failure stops what was started.
    : >"$run/state"
    starting=$run
    trap on_start_exit EXIT

    local pg_port mock_port transfers_port gw_port plain_port limit_port
    svc_pick_port_into pg_port ${stable:+9432}
    svc_pick_port_into mock_port ${stable:+9090}
    # Adyen's Transfers API: another host at Adyen, another port here
    svc_pick_port_into transfers_port ${stable:+9091}
    # the mock's risk provider (tests/mock_psp/risk.c): a host of its own
    local risk_port
    svc_pick_port_into risk_port ${stable:+9092}
    svc_pick_port_into gw_port ${stable:+9443}
    svc_pick_port_into plain_port ${stable:+9080}
    svc_pick_port_into limit_port ${stable:+9444}

    # PostgreSQL: its directory must be reachable by the postgres user.
    local pgdir owned=0
    if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$run" 2>/dev/null; then
        pgdir=$run/pg
    else
        pgdir=$(mktemp -d /tmp/ngx-payments-pg.XXXXXX)
        owned=1
    fi
    {
        echo "PGDIR=$(printf %q "$pgdir")"
        echo "PGDIR_OWNED=$owned"
    } >>"$run/state"
    # The other shards (--shards N): clusters 2..N, each as the first, all
    # started at once (initdb and the migrations are most of a start).
    local names=(a b c d) shard_dir=("$pgdir") shard_port=("$pg_port")
    local i port dir
    for ((i = 2; i <= shards; i++)); do
        svc_pick_port_into port
        if [ "$owned" = 0 ]; then
            dir=$run/pg$i
        else
            dir=$(mktemp -d /tmp/ngx-payments-pg.XXXXXX)
        fi
        {
            echo "PGDIR$i=$(printf %q "$dir")"
            echo "PGDIR${i}_OWNED=$owned"
        } >>"$run/state"
        shard_dir+=("$dir")
        shard_port+=("$port")
        "$top/ci/pg.sh" start "$dir" "$port" >/dev/null &
        pg_starting+=($!)
    done

    local pg
    pg=$("$top/ci/pg.sh" start "$pgdir" "$pg_port" | tail -1)
    local shard_pg=("$pg")
    for ((i = 2; i <= shards; i++)); do
        wait "${pg_starting[i - 2]}" ||
            die "shard ${names[i - 1]}'s PostgreSQL did not start"
        shard_pg+=("$("$top/ci/pg.sh" conninfo "${shard_dir[i - 1]}")")
    done
    pg_starting=()
    # the CLIs' shards file (payments-merchant, payments-migrate --shards)
    local shards_file=''
    if [ "$shards" -gt 1 ]; then
        shards_file=$run/conf/shards
        for ((i = 0; i < shards; i++)); do
            printf '%s %s\n' "${names[i]}" "${shard_pg[i]}"
        done >"$shards_file"
    fi

    # Secrets: git does not keep modes, and these are generated anyway.
    svc_psp_secrets "$run/conf" e2e-k1 e2e-k2
    (
        umask 077
        # the live PSP in front of the mock needs a live key (nginx -t)
        printf 'sk_live_%s' "$(openssl rand -hex 24)" >"$run/conf/psp_live.secret"
        # the risk provider: the secret our requests are signed with, and
        # the provider's own, its answers' (payments_risk)
        printf 'rk_%s' "$(openssl rand -hex 24)" >"$run/conf/risk.secret"
        printf 'rka_%s' "$(openssl rand -hex 24)" >"$run/conf/risk_answer.secret"
        # the review API's admin key (payments_admin_key_file)
        printf 'adm_%s' "$(openssl rand -hex 24)" >"$run/conf/admin.key"
    )
    chmod 600 "$run/conf/psp_live.secret" "$run/conf/risk.secret" \
        "$run/conf/risk_answer.secret" "$run/conf/admin.key"
    # The gateway's TLS certificate (self-signed, for 127.0.0.1).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$run/conf/tls.key" -out "$run/conf/tls.crt" 2>/dev/null
    chmod 600 "$run/conf/tls.key"
    chmod 644 "$run/conf/tls.crt"

    # The mock PSP.
    local mock_url=http://127.0.0.1:$mock_port
    local transfers_url=http://127.0.0.1:$transfers_port
    # Every flag is the mock's own (tests/mock_psp/README.md): a mock that
    # lacks one fails to start, loudly, rather than running without it.
    # Webhooks go to the gateway over TLS, verified against its
    # certificate; Adyen's and the generic PSP's to the PSPs mock_adyen and
    # mock_generic of tests/e2e/nginx.conf.in.
    svc_mock_flags "$run/conf" "$mock_port" "$transfers_port" \
        "https://127.0.0.1:$gw_port" "$run/conf/tls.crt" \
        "$psp_name" mock_adyen mock_generic
    local mock_args=("${svc_mock_args[@]}"
        # the live PSP in front of the mock has a live key (nginx -t)
        --stripe-live-secret "$(cat "$run/conf/psp_live.secret")"
        # the risk provider of tests/e2e/nginx.conf.in's risk servers
        --risk-port "$risk_port" --risk-secret "$(cat "$run/conf/risk.secret")"
        --risk-answer-secret "$(cat "$run/conf/risk_answer.secret")")
    # the bench's slow provider (bench/run.sh)
    [ "${PAY_RISK_LATENCY_MS:-0}" = 0 ] ||
        mock_args+=(--risk-latency-ms "$PAY_RISK_LATENCY_MS")
    [ "$latency" = 0 ] || mock_args+=(--latency-ms "$latency")
    svc_start_mock "$mock" "$run/logs/mock.log" "$mock_url" "$run/state" "${mock_args[@]}"

    # nginx.conf.  The worker user: nobody when it can read the repository
    # (html/), else root (a checkout under a 0700 home).
    local user='user nobody nogroup;'
    if [ "$(id -u)" -ne 0 ]; then
        user='# not root: workers run as the current user'
    elif ! runuser -u nobody -- test -r "$top/html" 2>/dev/null ||
         ! runuser -u nobody -- test -x "$top/html" 2>/dev/null; then
        echo "services.sh: $top is not readable by nobody: nginx workers run as root" >&2
        user='user root root;'
    fi
    local gw=https://127.0.0.1:$gw_port
    [ "$public_origin" != self ] || public_origin=$gw
    local conninfo="hostaddr=127.0.0.1 port=$pg_port dbname=payments user=payments_gateway"
    # @DATABASE_DIRECTIVES@: today's payments_database line, or one
    # payments_shard line per cluster (a the home), the first N of them
    shard_lines() {
        local n=$1 k
        for ((k = 0; k < n; k++)); do
            [ "$k" = 0 ] || printf '\n    '
            printf 'payments_shard %s "hostaddr=127.0.0.1 port=%s dbname=payments user=payments_gateway"%s;' \
                "${names[k]}" "${shard_port[k]}" "$([ "$k" = 0 ] && echo ' home')"
        done
    }
    local directives="payments_database       \"$conninfo\";" gw_shards=''
    if [ "$shards" -gt 1 ]; then
        directives=$(shard_lines "$shards")
        gw_shards=${names[*]:0:$shards}
    fi
    # curl's public-key pin of the gateway's own certificate: a PSP can be
    # reached through it (tests/e2e/nginx.conf.in's /psp-tls/).
    local tls_pin
    tls_pin=sha256//$(openssl x509 -in "$run/conf/tls.crt" -pubkey -noout |
        openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
        openssl base64 -A)
    local subst=(
        "RUN=$run" "ROOT=$top" "MODULE=$module" "WORKERS=$workers"
        "USER_DIRECTIVE=$user" "GW_PORT=$gw_port" "PLAIN_PORT=$plain_port"
        "LIMIT_PORT=$limit_port" "ERROR_LOG_LEVEL=$log_level"
        "PG_PORT=$pg_port" "DATABASE=$conninfo" "PUBLIC_ORIGIN=$public_origin"
        "PAYTOKEN_KEY=$run/conf/paytoken.key" "PAYTOKEN_KID=$kid"
        "ENCRYPTION_KEY=$run/conf/encryption.key"
        "PSP_NAME=$psp_name" "PSP_SECRET=$run/conf/psp.secret"
        "PSP_LIVE_SECRET=$run/conf/psp_live.secret"
        "WEBHOOK_SECRET=$run/conf/webhook.secret"
        "MOCK_URL=$mock_url" "LEASE=$lease"
        "MOCK_TRANSFERS_URL=$transfers_url"
        "RISK_URL=http://127.0.0.1:$risk_port/risk"
        "RISK_SECRET=$run/conf/risk.secret"
        "RISK_ANSWER_SECRET=$run/conf/risk_answer.secret"
        "ADMIN_KEY=$run/conf/admin.key"
        "TLS_CERT=$run/conf/tls.crt" "TLS_KEY=$run/conf/tls.key"
        "TLS_PIN=$tls_pin"
        # notifications: the CA of the test endpoints (ci/receiver.sh
        # serves the gateway's own certificate)
        "NOTIFY_CA=$run/conf/tls.crt"
        # the bench's pool per worker (bench/run.sh: BENCH_DB_POOL)
        "DB_POOL=${PAY_DB_POOL:-4}"
    )
    svc_render "$template" "${subst[@]}" "DATABASE_DIRECTIVES=$directives" \
        >"$run/nginx.conf"
    svc_start_nginx "$run" "$gw/healthz" "$run/conf/tls.crt" "$nginx_bin"

    # A demo merchant.
    local key mid
    svc_merchant "$top/bin/payments-merchant" "$pg" demo "Demo shop" \
        https://shop.example "$run/logs/services.log" \
        ${shards_file:+"$shards_file" a}
    key=$svc_key mid=$svc_mid

    {
        svc_envline PAY_TEST_GW "$gw"
        svc_envline PAY_TEST_GW_PLAIN "http://127.0.0.1:$plain_port"
        svc_envline PAY_TEST_WORKERS "$workers"
        svc_envline PAY_TEST_GW_LIMITS "https://127.0.0.1:$limit_port"
        svc_envline PAY_TEST_CA "$run/conf/tls.crt"
        svc_envline PAY_TEST_PUBLIC_ORIGIN "$public_origin"
        svc_envline PAY_TEST_MOCK "$mock_url"
        svc_envline PAY_TEST_MOCK_TRANSFERS "$transfers_url"
        svc_envline PAY_TEST_RISK "http://127.0.0.1:$risk_port"
        svc_envline PAY_TEST_ADMIN_KEY "$run/conf/admin.key"
        svc_envline PAY_TEST_PSP "$psp_name"
        svc_envline PAY_TEST_PG "$pg"
        svc_envline PAY_TEST_PGDIR "$pgdir"
        svc_envline PAY_TEST_PGDATA "$pgdir/data"
        svc_envline PAY_TEST_RUN "$run"
        svc_envline PAY_TEST_ROOT "$top"
        svc_envline PAY_TEST_PAYTOKEN_KEY "$run/conf/paytoken.key"
        svc_envline PAY_TEST_ENCRYPTION_KEY "$run/conf/encryption.key"
        svc_envline PAY_TEST_PAYTOKEN_KID "$kid"
        svc_envline PAY_TEST_WEBHOOK_SECRET "$run/conf/webhook.secret"
        svc_envline PAY_TEST_MERCHANT_KEY "$key"
        svc_envline PAY_TEST_MERCHANT_ID "$mid"
        svc_envline PAY_TEST_ERROR_LOG_LEVEL "$log_level"
        if [ "$shards" -gt 1 ]; then
            svc_envline PAY_TEST_SHARDS "$shards"
            svc_envline PAY_TEST_SHARD_NAMES "${names[*]:0:$shards}"
            svc_envline PAY_TEST_SHARDS_FILE "$shards_file"
            svc_envline PAY_TEST_GW_SHARDS "$gw_shards"
            for ((i = 0; i < shards; i++)); do
                svc_envline "PAY_TEST_PG$((i + 1))" "${shard_pg[i]}"
                svc_envline "PAY_TEST_PGDIR$((i + 1))" "${shard_dir[i]}"
                svc_envline "PAY_TEST_PGDATA$((i + 1))" "${shard_dir[i]}/data"
            done
        fi
    } >"$run/env"
    chmod 600 "$run/env"

    trap - EXIT
    echo "services.sh: up in $run"
    echo "  gateway  $gw (plain http://127.0.0.1:$plain_port)"
    echo "  mock PSP $mock_url (Adyen Transfers $transfers_url)"
    echo "  postgres $pg"
    for ((i = 1; i < shards; i++)); do
        echo "  postgres ${shard_pg[i]} (shard ${names[i]})"
    done
    [ "$shards" = 1 ] || echo "  shards   $shards_file (the gateway serves: $gw_shards)"
}

cmd=${1:-}
run=${2:-}
# "port [DEFAULT]": one free loopback port, for another service (ci/shop.sh)
if [ "$cmd" = port ]; then svc_pick_port "$run"; exit 0; fi
if [ -z "$cmd" ] || [ -z "$run" ]; then usage; fi
shift 2
case $cmd in
start) do_start "$run" "$@" ;;
stop)  do_stop "$(cd "$run" 2>/dev/null && pwd || echo "$run")" ;;
finish)
    [ $# -eq 2 ] || usage
    do_stop "$(cd "$run" 2>/dev/null && pwd || echo "$run")" || true
    if [ "$1" -eq 0 ] && [ "${KEEP_RUN:-0}" != 1 ]; then
        rm -rf "$run"
    else
        echo "$2: run directory kept: $run" >&2
    fi
    ;;
*)     usage ;;
esac
