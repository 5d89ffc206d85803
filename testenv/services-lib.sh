# shellcheck shell=bash
# What ci/services.sh (the project's own test services) and payments-testenv
# (the test environment shipped to shops, testenv/payments-testenv) share:
# loopback ports, waiting for a service, stopping one, the PSPs' test
# secrets and the mock PSP's flags for them, nginx.conf templates, a
# merchant.  Sourced, never run; every name starts with svc_.
#
# The caller sets svc_name (the prefix of its messages) and svc_pg (the
# path of pg.sh: ci/pg.sh in the tree, the package's copy once installed).

: "${svc_name:=services}"

svc_die() { echo "$svc_name: $*" >&2; exit 1; }

# --- ports ------------------------------------------------------------------

svc_picked=" "

# No socket on the port (any state); without iproute2's ss, nothing listens.
svc_port_free() {
    if command -v ss >/dev/null 2>&1; then
        [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
    elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        return 1
    else
        return 0
    fi
}

# Something listens on PORT.
svc_listening() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# svc_pick_port [DEFAULT]: DEFAULT when nothing listens on it (a stable port
# for make demo; a TIME-WAIT left by the last run does not stop a bind),
# else a loopback port nobody uses now, below Linux's ephemeral range so
# that outgoing connections do not take it meanwhile.  Run it in the
# shell that picks the next one too (not in $(...)) when the ports must
# differ: svc_pick_port_into VAR [DEFAULT].
svc_pick_port() {
    local p i
    if [ -n "${1:-}" ] && ! svc_listening "$1"; then
        svc_picked="$svc_picked$1 "
        echo "$1"
        return 0
    fi
    for i in $(seq 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 12000))
        case $svc_picked in *" $p "*) continue ;; esac
        if svc_port_free "$p"; then
            svc_picked="$svc_picked$p "
            echo "$p"
            return 0
        fi
    done
    svc_die "no free port found"
}

# svc_pick_port_into VAR [DEFAULT]: svc_pick_port, remembered in this shell.
svc_pick_port_into() {
    local p
    p=$(svc_pick_port "${2:-}") || exit 1
    svc_picked="$svc_picked$p "
    printf -v "$1" '%s' "$p"
}

# --- waiting and stopping -----------------------------------------------------

# svc_wait_http URL SECONDS [curl options...]: until URL answers 200.
svc_wait_http() {
    local url=$1 secs=$2 i
    shift 2
    for i in $(seq $((secs * 10))); do
        if curl -sf -o /dev/null --max-time 2 "$@" "$url"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# The pids whose parent is $1 (from /proc: procps may be absent).
svc_children_of() {
    local parent=$1 d stat ppid
    for d in /proc/[0-9]*; do
        stat=$(cat "$d/stat" 2>/dev/null) || continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        read -r _ ppid _ <<<"${stat##*) }"
        if [ "$ppid" = "$parent" ]; then
            printf '%s ' "${d#/proc/}"
        fi
    done
    return 0
}

svc_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# svc_stop_pid PID SIGNAL SECONDS: signal, wait, then SIGKILL.
svc_stop_pid() {
    local pid=$1 sig=$2 secs=$3 i
    svc_alive "$pid" || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for i in $(seq $((secs * 10))); do
        svc_alive "$pid" || return 0
        sleep 0.1
    done
    echo "$svc_name: pid $pid ignored SIG$sig for ${secs}s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
}

# svc_stop_nginx PIDFILE: a graceful stop (QUIT); its workers leave with
# the master, or are killed.
svc_stop_nginx() {
    local pid='' workers w
    [ -f "$1" ] && pid=$(cat "$1" 2>/dev/null || true)
    [ -n "$pid" ] || return 0
    workers=$(svc_children_of "$pid")
    svc_stop_pid "$pid" QUIT 10
    for w in $workers; do svc_stop_pid "$w" KILL 2; done
}

# svc_stop_pg PGDIR OWNED LOGDIR [LOGNAME]: the throwaway cluster stopped;
# one the run made outside its directory (OWNED=1: root's, under /tmp)
# removed, its log kept in LOGDIR as LOGNAME (default postgres.log).
svc_stop_pg() {
    local pgdir=$1 owned=$2 logs=$3 logname=${4:-postgres.log}
    [ -n "$pgdir" ] && [ -d "$pgdir" ] || return 0
    "$svc_pg" stop "$pgdir" || true
    if [ "$owned" = 1 ]; then
        cp "$pgdir/postgres.log" "$logs/$logname" 2>/dev/null || true
        rm -rf "$pgdir"
    fi
}

# --- secrets, certificates, the mock PSP ---------------------------------------

# svc_psp_secrets CONF: the three dialects' test secrets at the mock PSP,
# the gateway's pay-token key and its encryption keys (two: the first
# seals, both open), mode 600.
#   paytoken.key  psp.secret (Stripe sk_test_)  webhook.secret (whsec_)
#   adyen.secret adyen_transfers.secret adyen.hmac (64 hex digits)
#   generic.secret generic_jwt.key generic_jwt.pub (ES256)
#   encryption.key (kids KID1 KID2, default k1 k2)
svc_psp_secrets() {
    local conf=$1 k1=${2:-k1} k2=${3:-k2}
    (
        umask 077
        openssl rand -hex 32 | tr -d '\n' >"$conf/paytoken.key"
        printf 'sk_test_%s' "$(openssl rand -hex 24)" >"$conf/psp.secret"
        printf 'whsec_%s' "$(openssl rand -hex 24)" >"$conf/webhook.secret"
        # Adyen: the API key and the notifications' HMAC key (64 hex digits)
        printf 'AQE%s' "$(openssl rand -hex 24)" >"$conf/adyen.secret"
        # the Transfers API's own key (pay-outs), not the Checkout one
        printf 'AQE%s' "$(openssl rand -hex 24)" >"$conf/adyen_transfers.secret"
        openssl rand -hex 32 | tr -d '\n' | tr a-f A-F >"$conf/adyen.hmac"
        # generic: the API key and the EC key pair of its webhooks' JWTs
        printf 'gk_%s' "$(openssl rand -hex 24)" >"$conf/generic.secret"
        openssl ecparam -name prime256v1 -genkey -noout \
            -out "$conf/generic_jwt.key" 2>/dev/null
        # secrets at rest: two keys, so rows under the second (a rotation
        # under way) are exercised too
        {
            echo "# kid base64 of 32 random bytes"
            printf '%s %s\n' "$k1" "$(openssl rand -base64 32)"
            printf '%s %s\n' "$k2" "$(openssl rand -base64 32)"
        } >"$conf/encryption.key"
    )
    openssl ec -in "$conf/generic_jwt.key" -pubout \
        -out "$conf/generic_jwt.pub" 2>/dev/null
    chmod 600 "$conf/paytoken.key" "$conf/psp.secret" "$conf/webhook.secret" \
        "$conf/adyen.secret" "$conf/adyen_transfers.secret" "$conf/adyen.hmac" \
        "$conf/generic.secret" "$conf/generic_jwt.key" "$conf/encryption.key"
    chmod 644 "$conf/generic_jwt.pub"
}

# svc_mock_flags CONF MOCK_PORT TRANSFERS_PORT GW_URL CA STRIPE ADYEN GENERIC:
# sets the array svc_mock_args to the mock PSP's flags for the three
# dialects, with svc_psp_secrets' secrets, each dialect's signed webhooks
# going to GW_URL/v1/webhooks/<its PSP's name> over TLS verified with CA
# (the gateway's certificate or its CA).
# shellcheck disable=SC2034  # the caller's
svc_mock_flags() {
    local conf=$1 port=$2 tport=$3 gw=$4 ca=$5
    svc_mock_args=(--port "$port" --listen 127.0.0.1
        --stripe-secret "$(cat "$conf/psp.secret")"
        --public-url "http://127.0.0.1:$port"
        --webhook-url "$gw/v1/webhooks/$6"
        --stripe-webhook-secret "$(cat "$conf/webhook.secret")"
        --webhook-ca "$ca"
        --adyen-secret "$(cat "$conf/adyen.secret")"
        --adyen-hmac-key "$(cat "$conf/adyen.hmac")"
        --adyen-webhook-url "$gw/v1/webhooks/$7"
        # Adyen's Transfers API on its own port and key, as Adyen serves it
        --adyen-transfers-port "$tport"
        --adyen-transfers-secret "$(cat "$conf/adyen_transfers.secret")"
        --generic-secret "$(cat "$conf/generic.secret")"
        --generic-jwt-key "$conf/generic_jwt.key" --generic-jwt-kid mock-es256
        --generic-webhook-url "$gw/v1/webhooks/$8")
}

# svc_start_mock BIN LOG URL STATE ARGS...: the mock PSP in the
# background, its pid appended to STATE as MOCK_PID, up when its control
# API answers.
svc_start_mock() {
    local bin=$1 log=$2 url=$3 state=$4 pid
    shift 4
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
        nohup "$bin" "$@" </dev/null >"$log" 2>&1 &
    pid=$!
    echo "MOCK_PID=$pid" >>"$state"
    svc_wait_http "$url/_control/health" 15 ||
        { tail -20 "$log" >&2; svc_die "the mock PSP did not come up"; }
}

# svc_start_nginx RUN HEALTH_URL CA [BINARY]: nginx -p RUN/ -c RUN/nginx.conf
# checked (nginx -t) and started, up when HEALTH_URL answers over TLS
# verified with CA.  BINARY defaults to nginx.  (Never through the
# environment: nginx reads NGINX as the sockets of a binary upgrade.)
svc_start_nginx() {
    local run=$1
    local ngx=("${4:-nginx}" -p "$run/" -c "$run/nginx.conf" -e "$run/logs/error.log")
    "${ngx[@]}" -t -q 2>"$run/logs/nginx-t.log" ||
        { cat "$run/logs/nginx-t.log" >&2; svc_die "nginx -t failed"; }
    "${ngx[@]}" 2>>"$run/logs/error.log" ||
        { tail -20 "$run/logs/error.log" >&2; svc_die "nginx did not start"; }
    svc_wait_http "$2" 15 --cacert "$3" ||
        { tail -20 "$run/logs/error.log" >&2; svc_die "nginx did not answer $2"; }
}

# --- nginx.conf, the environment, merchants ---------------------------------------

svc_envline() { printf 'export %s=%q\n' "$1" "$2"; }

# svc_render TEMPLATE NAME=VALUE...: replaces every @NAME@.
svc_render() {
    local template=$1 text kv
    # bash 5.2 would read "&" in a replacement as the matched text.
    shopt -u patsub_replacement 2>/dev/null || true
    text=$(cat "$template")
    shift
    for kv in "$@"; do
        text=${text//@${kv%%=*}@/${kv#*=}}
    done
    if [[ $text =~ @[A-Z_]+@ ]]; then
        svc_die "$template: no value for ${BASH_REMATCH[0]}"
    fi
    printf '%s\n' "$text"
}

# svc_merchant MERCHANT_TOOL PG ID NAME ORIGIN LOG [SHARDS_FILE SHARD]: a
# merchant made with payments-merchant, on PG, or with a shards file on
# its shard SHARD (PG then that shard's conninfo); sets svc_key (its API
# key) and svc_mid (its id).
svc_merchant() {
    local tool=$1 pg=$2 where
    where=(--db "$pg")
    [ -z "${7:-}" ] || where=(--shards "$7" --shard "$8")
    svc_key=$("$tool" "${where[@]}" create --id "$3" --name "$4" --origin "$5" \
        2>>"$6" | tail -1)
    [[ $svc_key =~ ^mk_(test|live)_([A-Za-z0-9]{12})_ ]] ||
        svc_die "payments-merchant printed no key (see $6)"
    svc_mid=$(psql "$pg" -XAtq -v ON_ERROR_STOP=1 \
        -c "SELECT merchant_id FROM pay_auth('${BASH_REMATCH[2]}')")
}

# --- the merchants' notification endpoint ----------------------------------------

# svc_start_receiver JS DIR CERT KEY [--record FILE]: the endpoint
# (tests/notify_receiver/receiver.js) on two free loopback ports, HTTPS
# with CERT and KEY for deliveries (/hooks/<name>) and plain HTTP for its
# control API; its pid in DIR/receiver.pid, its log DIR/logs/receiver.log.
# Sets svc_receiver (https://127.0.0.1:PORT) and svc_receiver_control.
svc_start_receiver() {
    local js=$1 dir=$2 cert=$3 key=$4 port control pid
    shift 4
    command -v node >/dev/null 2>&1 || svc_die "no node (nodejs) for the notification endpoint"
    if [ -f "$dir/receiver.pid" ] && kill -0 "$(cat "$dir/receiver.pid")" 2>/dev/null; then
        svc_die "$dir already has a receiver (stop it first)"
    fi
    svc_pick_port_into port
    svc_pick_port_into control
    mkdir -p "$dir/logs"
    nohup node "$js" --port "$port" --control-port "$control" \
        --cert "$cert" --key "$key" "$@" \
        </dev/null >>"$dir/logs/receiver.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/receiver.pid"
    svc_receiver=https://127.0.0.1:$port
    svc_receiver_control=http://127.0.0.1:$control
    for _ in $(seq 100); do
        if curl -sf -o /dev/null --max-time 2 "$svc_receiver_control/_control/health"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$dir/logs/receiver.log" >&2 || true
    svc_stop_receiver "$dir"
    svc_die "the notification endpoint did not come up"
}

# svc_stop_receiver DIR
svc_stop_receiver() {
    [ -f "$1/receiver.pid" ] || return 0
    svc_stop_pid "$(cat "$1/receiver.pid")" TERM 5
    rm -f "$1/receiver.pid"
}
