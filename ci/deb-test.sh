#!/usr/bin/env bash
# Checks run functions and bash -c snippets through check():
# shellcheck disable=SC2317,SC2016
# The Debian package end to end, on this machine (root: it installs and
# purges libnginx-mod-http-payments with apt-get):
#
#   1. make deb; lintian (warnings fail); the .deb's file list
#   2. apt-get install ./build/libnginx-mod-http-payments_*.deb: the
#      modules-enabled symlink, and Debian's own /etc/nginx passes nginx -t
#      with the module loaded
#   3. Debian's /usr/sbin/nginx runs a configuration derived from the
#      packaged example (examples/nginx.production.conf: loopback ports, a
#      self-signed certificate, fresh secrets, the mock PSP), against a test
#      PostgreSQL database migrated by the installed /usr/bin/payments-migrate
#      from /usr/share/ngx-payments/sql, with a merchant made by the
#      installed /usr/bin/payments-merchant; one payment: registered, paid
#      through the mock's control API, SUCCESS by its signed webhook
#   3b. an upgrade: payments_build_info names the version; a newer package
#      (a copy of this tree, VERSION bumped) installed over it says to run
#      `service nginx upgrade`; a reload keeps the old module, the
#      documented command loads the new one (payments_build_info says so)
#   4. apt-get remove (link disabled, nginx -t still passes), install again
#      (link back), apt-get purge: no file, no link of the package left
#
# Prints "deb: N passed, N failed" last (counted by ci/test.sh); exit status
# non-zero when anything failed.  Everything listens on loopback ports picked
# at run time.  Environment: BUILD (default build), DEB_TEST_KEEP=1 keeps the
# run directory (/tmp/ngx-payments-deb.*).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
pkg=libnginx-mod-http-payments
link=/etc/nginx/modules-enabled/50-mod-http-payments.conf
example=/usr/share/doc/$pkg/examples/nginx.production.conf
nginx=/usr/sbin/nginx

passed=0
failed=0
# the example's and Debian's: `service nginx upgrade` signals the master
# whose pid is there
pidfile=/run/nginx.pid
pid_ours=0
run=''
pgdir=''
mock_pid=''
installed_by_us=0

say() { echo "deb-test: $*"; }

# check NAME CMD...: one counted check; its output is shown when it fails.
check() {
    local name=$1 out rc
    shift
    out=$("$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name (exit $rc)"
        [ -z "$out" ] || printf '%s\n' "$out" | tail -n 40 | sed 's/^/     | /'
    fi
    return "$rc"
}

finish() {
    echo "deb: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

stop_services() {
    local pid
    if [ -n "$run" ] && [ -f "$pidfile" ] && [ "$pid_ours" = 1 ]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ]; then
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    fi
    if [ -n "$mock_pid" ]; then
        kill -TERM "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
        mock_pid=''
    fi
    if [ -n "$pgdir" ] && [ -d "$pgdir" ]; then
        bash "$top/ci/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true
        cp "$pgdir/postgres.log" "$run/logs/" 2>/dev/null || true
        rm -rf "$pgdir"
        pgdir=''
    fi
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop_services
    # a run that stopped half-way leaves no package behind
    if [ "$installed_by_us" = 1 ] && dpkg-query -W "$pkg" >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$pkg" >/dev/null 2>&1 || true
    fi
    if [ -n "$run" ] && [ "${DEB_TEST_KEEP:-0}" != 1 ]; then
        rm -rf "$run"
    elif [ -n "$run" ]; then
        say "run directory kept: $run"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt() { DEBIAN_FRONTEND=noninteractive apt-get -q -y \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"; }

if [ "$(id -u)" -ne 0 ]; then
    check "runs as root (it installs the package)" false
    finish
fi

# --- 1. build -------------------------------------------------------------------

check "install-deps --deb (lintian, dpkg-dev)" bash ci/install-deps.sh --deb || finish
check "make module mock" make -s BUILD="$build" module mock || finish
deb_out=$(make -s BUILD="$build" deb 2>&1) || true
debfile=$(printf '%s\n' "$deb_out" | tail -1)
version=$(tr -d ' \n' <VERSION)-1
arch=$(dpkg --print-architecture)
check "make deb builds ${pkg}_${version}_${arch}.deb" \
    test "$debfile" = "$build/${pkg}_${version}_${arch}.deb" -a -f "$debfile" ||
    { printf '%s\n' "$deb_out" | tail -20; finish; }

# --fail-on warning: an error or a warning not overridden in
# packaging/debian/lintian-overrides fails; info tags are shown.
check "lintian: no error or warning" lintian --info --fail-on warning "$debfile"

deb_has() {
    local list f
    list=$(dpkg-deb -c "$debfile" | awk '{ print $6 }')
    for f in "$@"; do
        grep -qxF "./$f" <<<"$list" || { echo "missing $f"; return 1; }
    done
}
check "the .deb holds the module, its load file, tools, man pages, sql, html, docs" \
    deb_has usr/lib/nginx/modules/ngx_http_payments_module.so \
    usr/share/nginx/modules-available/mod-http-payments.conf \
    usr/bin/payments-migrate usr/bin/payments-merchant usr/bin/payments-reconcile \
    usr/bin/payments-secrets \
    usr/share/man/man1/payments-migrate.1.gz usr/share/man/man1/payments-merchant.1.gz \
    usr/share/man/man1/payments-reconcile.1.gz \
    "usr/share/doc/$pkg/examples/payments-reconcile@.timer" \
    usr/share/ngx-payments/sql/migrations/001_schema.sql \
    usr/share/ngx-payments/sql/functions/pay_claim.sql usr/share/ngx-payments/sql/schema.sql \
    usr/share/ngx-payments/html/pending.js \
    "usr/share/doc/$pkg/copyright" "usr/share/doc/$pkg/changelog.Debian.gz" \
    "usr/share/doc/$pkg/examples/nginx.production.conf" \
    "usr/share/doc/$pkg/examples/payments-alerts.yml" \
    "usr/share/doc/$pkg/examples/payments-alerts.test.yml" \
    "usr/share/doc/$pkg/examples/payments-dashboard.json"
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
check "Depends: the nginx ABI ($abi) and the libraries (libpq5, libcurl4, libjwt0, libcsv3)" \
    bash -c 'd=$(dpkg-deb -f "$1" Depends); echo "$d";
             for p in "$2" libpq5 libcurl4 libjansson4 libjwt0 libssl3 libc6 libcsv3; do
                 grep -q "\(^\|, \)$p\( \|,\|$\)" <<<"$d" || { echo "no $p"; exit 1; }; done' \
    _ "$debfile" "$abi"

# --- 2. install -----------------------------------------------------------------

if dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -q .; then
    say "$pkg is on this machine already: purging it first"
    apt purge "$pkg" >/dev/null 2>&1 || true
fi
installed_by_us=1
install_deb() {
    # its Depends may need the package lists (postgresql-client)
    apt install "$debfile" || { apt update >/dev/null && apt install "$debfile"; }
}
check "apt-get install ./${debfile#"$top"/}" install_deb || finish
check "dpkg: $pkg $version installed" \
    test "$(dpkg-query -W -f='${Version} ${db:Status-Status}' "$pkg")" = "$version installed"
check "postinst: $link -> modules-available" \
    test "$(readlink "$link")" = /usr/share/nginx/modules-available/mod-http-payments.conf
check "Debian's /etc/nginx passes nginx -t with the module" "$nginx" -t -q
check "nginx -T: the module is loaded through modules-enabled" \
    bash -c '"$1" -T 2>/dev/null | grep -qx "load_module modules/ngx_http_payments_module.so;"' _ "$nginx"
check "the man pages are found" bash -c 'man -w payments-migrate && man -w payments-merchant && man -w payments-reconcile'
check "promtool checks the packaged alerting rules and passes their tests" \
    bash -c 'cd "/usr/share/doc/$1/examples" && promtool check rules payments-alerts.yml &&
             promtool test rules payments-alerts.test.yml' _ "$pkg"

# --- 3. a gateway from the packaged example -------------------------------------

run=$(mktemp -d /tmp/ngx-payments-deb.XXXXXX)
chmod 755 "$run"
mkdir -p "$run/conf/tls" "$run/logs" "$run/tmp"
chmod 700 "$run/conf"

ports=()
while [ ${#ports[@]} -lt 4 ]; do
    p=$(bash ci/services.sh port)
    case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
pg_port=${ports[0]} mock_port=${ports[1]} gw_port=${ports[2]} plain_port=${ports[3]}
gw=https://127.0.0.1:$gw_port
mock=http://127.0.0.1:$mock_port

# PostgreSQL: ci/pg.sh's cluster; the gateway's database is a second one,
# migrated only by the installed tool.
pgdir=$(mktemp -d /tmp/ngx-payments-debpg.XXXXXX)
super=$(bash ci/pg.sh start "$pgdir" "$pg_port" | tail -1)
check "PostgreSQL on 127.0.0.1:$pg_port" test -n "$super" || finish
pkgdb="host=127.0.0.1 port=$pg_port dbname=payments_pkg user=postgres"
psql "${super/dbname=payments/dbname=postgres}" -Xq -v ON_ERROR_STOP=1 \
    -c 'CREATE DATABASE payments_pkg' >/dev/null
nsql=$(find /usr/share/ngx-payments/sql/migrations -name '*.sql' | wc -l)
nfun=$(find /usr/share/ngx-payments/sql/functions -name '*.sql' | wc -l)
# from /, without PAYMENTS_SQL_DIR: the installed tool finds its files
migrate() { (cd / && env -u PAYMENTS_SQL_DIR /usr/bin/payments-migrate "$pkgdb"); }
migrated() {
    local out
    out=$(migrate) || { echo "$out"; return 1; }
    echo "$out"
    [ "$(tail -2 <<<"$out")" = "payments-migrate: $1 applied, $2 already current
payments-migrate: $3 function files applied, $4 already current" ]
}
check "/usr/bin/payments-migrate applies the $nsql migrations and $nfun function files of /usr/share/ngx-payments/sql" \
    migrated "$nsql" 0 "$nfun" 0
check "a second run applies nothing" migrated 0 "$nsql" 0 "$nfun"

# Secrets and the certificate, where the example wants them (under $run/conf
# instead of /etc/payments).
(
    umask 077
    openssl rand -hex 32 | tr -d '\n' >"$run/conf/paytoken-2026-11.key"
    openssl rand -hex 32 | tr -d '\n' >"$run/conf/paytoken-2026-05.key"
    printf 'sk_test_%s' "$(openssl rand -hex 24)" >"$run/conf/stripe-api.key"
    printf 'whsec_%s' "$(openssl rand -hex 24)" >"$run/conf/stripe-whsec.key"
    /usr/bin/payments-secrets new-key 2026-11 >"$run/conf/encryption.keys"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 2 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$run/conf/tls/privkey.pem" -out "$run/conf/tls/fullchain.pem" 2>/dev/null
)
cp "$run/conf/tls/fullchain.pem" "$run/conf/tls/chain.pem"
ca=$run/conf/tls/fullchain.pem

# The mock PSP: Stripe's API and hosted page; its signed webhooks go to the
# gateway over TLS.
"$build/mock_psp" --port "$mock_port" --listen 127.0.0.1 --public-url "$mock" \
    --stripe-secret "$(cat "$run/conf/stripe-api.key")" \
    --webhook-url "$gw/v1/webhooks/stripe" \
    --stripe-webhook-secret "$(cat "$run/conf/stripe-whsec.key")" \
    --webhook-ca "$ca" </dev/null >"$run/logs/mock.log" 2>&1 &
mock_pid=$!
wait_http() {
    local url=$1
    shift
    for _ in $(seq 150); do
        curl -sf -o /dev/null --max-time 2 "$@" "$url" && return 0
        sleep 0.1
    done
    return 1
}
check "the mock PSP on $mock" wait_http "$mock/_control/health" || finish

# The packaged example with: loopback ports, this run's files and database,
# the mock instead of Stripe (mode=test, allow_http), no Adyen (the mock's
# Adyen would need more keys; the Stripe path is the one paid here), temp
# files under the run.  Its load_module line stays as packaged: it resolves
# in Debian's prefix, /usr/share/nginx/modules -> /usr/lib/nginx/modules.
sed -e "s|/etc/payments|$run/conf|g" \
    -e "s|/var/log/nginx|$run/logs|g" \
    -e "s|payments_database  *\"[^\"]*\"|payments_database \"hostaddr=127.0.0.1 port=$pg_port dbname=payments_pkg user=payments_gateway\"|" \
    -e "s|payments_public_origin .*|payments_public_origin $gw;|" \
    -e "s|url=https://api.stripe.com|url=$mock|" \
    -e "s|hosted=https://checkout.stripe.com|hosted=$mock|" \
    -e "s|mode=live$|mode=test allow_http|" \
    -e '/payments_psp adyen/,/;$/d' \
    -e '/location = \/v1\/webhooks\/adyen/,/}/d' \
    -e "s|listen 80;|listen 127.0.0.1:$plain_port;|" \
    -e "s|listen 443 ssl|listen 127.0.0.1:$gw_port ssl|" \
    -e "s|^http {|http {\n    client_body_temp_path $run/tmp/body;\n    proxy_temp_path $run/tmp/proxy;\n    fastcgi_temp_path $run/tmp/fastcgi;\n    uwsgi_temp_path $run/tmp/uwsgi;\n    scgi_temp_path $run/tmp/scgi;|" \
    "$example" >"$run/nginx.conf"
chown www-data: "$run/tmp"
check "the derived configuration keeps the example's module, user and html, and nothing of /etc/payments, Adyen or ports 80/443" \
    bash -c 'c=$1; grep -qx "load_module modules/ngx_http_payments_module.so;" "$c" &&
             grep -qx "user www-data;" "$c" &&
             grep -q "payments_html  *$2;" "$c" &&
             ! grep -qE "/etc/payments|adyen|listen (80|443)" "$c"' \
    _ "$run/nginx.conf" /usr/share/ngx-payments/html

ngx=("$nginx" -c "$run/nginx.conf" -e "$run/logs/error.log")
check "Debian's nginx -t on the derived example" "${ngx[@]}" -t -q
# its pid in /run/nginx.pid, as the example says: no other nginx may be
# using it (Debian's service is not running)
check "no nginx holds $pidfile" \
    bash -c '[ ! -s "$1" ] || ! kill -0 "$(cat "$1")" 2>/dev/null' _ "$pidfile" || finish
pid_ours=1
check "Debian's nginx starts it" "${ngx[@]}"
check "GET $gw/healthz" wait_http "$gw/healthz" --cacert "$ca" ||
    tail -20 "$run/logs/error.log"
check "GET /readyz (the module reaches payments_pkg)" wait_http "$gw/readyz" --cacert "$ca"
static_same() {
    local got
    got=$(curl -s --cacert "$ca" -D "$run/logs/static.hdr" "$gw/v1/static/$1") || return 1
    [ "$got" = "$(cat "/usr/share/ngx-payments/html/$1")" ] ||
        { cat "$run/logs/static.hdr"; printf '%s\n' "$got" | head -5; return 1; }
}
check "GET /v1/static/style.css is /usr/share/ngx-payments/html's" static_same style.css
# the example's port 80 goes to the module: the API refuses plain HTTP
plain_api() {
    local got
    got=$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:$plain_port/v1/payments") || return 1
    [[ $got == *'"code":"tls_required"'*' 403' ]] || { echo "$got"; return 1; }
}
check "POST /v1/payments over the example's plain HTTP: 403 tls_required" plain_api
# /metrics on every listener of the example: loopback is not in its
# allow-list (10.0.0.0/8), and plain HTTP never serves it; no metric in
# the answer either way.  The health checks on port 80 are for the load
# balancers' network only; https serves them (above).
refused_metrics() {
    local got
    got=$(curl -s -w ' %{http_code}' "$@") || return 1
    [[ $got == *' 403' && $got != *payments_* ]] || { printf '%s\n' "$got" | head -5; return 1; }
}
check "GET /metrics over the example's plain HTTP from a non-allowed address: 403, no metric" \
    refused_metrics "http://127.0.0.1:$plain_port/metrics"
check "GET /metrics over the example's plain HTTP with another Host: 403, no metric" \
    refused_metrics -H 'Host: other.example' "http://127.0.0.1:$plain_port/metrics"
check "GET /metrics over https from a non-allowed address: 403, no metric" \
    refused_metrics --cacert "$ca" "$gw/metrics"
check "GET /readyz over the example's plain HTTP from a non-allowed address: 403" \
    refused_metrics "http://127.0.0.1:$plain_port/readyz"

# A merchant, by the installed tool.
key=$(/usr/bin/payments-merchant --db "$pkgdb" create --id debshop --name "Deb shop" \
    --origin https://shop.example 2>/dev/null | tail -1)
check "/usr/bin/payments-merchant creates a merchant and prints its key" \
    bash -c '[[ $1 =~ ^mk_test_[A-Za-z0-9]{12}_ ]]' _ "$key"

# One payment.
co=co_deb$(date +%s)
body=$(printf '{"checkout_id":"%s","buyer_info":{"email":"ann@example.com"},"payment_orders":[{"payment_order_id":"po_%s_1","seller_account":"seller_42","amount":"10.00","currency":"USD"}],"success_url":"https://shop.example/thanks","cancel_url":"https://shop.example/cart","psp":"stripe"}' "$co" "$co")
# the key travels in a header file, not on curl's command line (ps)
printf 'Authorization: Bearer %s\n' "$key" >"$run/conf/auth.hdr"
answer=$(curl -s --cacert "$ca" -w '\n%{http_code}' -X POST "$gw/v1/payments" \
    -H @"$run/conf/auth.hdr" -H "Idempotency-Key: \"deb-$co\"" \
    -H 'Content-Type: application/json' -d "$body")
code=${answer##*$'\n'}
answer=${answer%$'\n'*}
check "POST /v1/payments: 201 with a psp_token" \
    bash -c '[ "$1" = 201 ] && grep -q "\"psp_token\": *\"[^\"]" <<<"$2" || { echo "$1 $2"; exit 1; }' \
    _ "$code" "$answer"
token=$(grep -o '"psp_token": *"[^"]*"' <<<"$answer" | sed 's/.*"\([^"]*\)"$/\1/')
check "the mock pays session $token (POST /_control/sessions/{token}/pay)" \
    curl -sf -o /dev/null -X POST "$mock/_control/sessions/$token/pay"
status_of() {
    curl -s --cacert "$ca" -H @"$run/conf/auth.hdr" "$gw/v1/checkouts/$co" |
        grep -o '"status": *"[A-Z_]*"' | head -1 | sed 's/.*"\([A-Z_]*\)"$/\1/'
}
wait_success() {
    local s=''
    for _ in $(seq 150); do
        s=$(status_of)
        [ "$s" = SUCCESS ] && return 0
        sleep 0.1
    done
    echo "GET /v1/checkouts/$co: status $s after 15 s"
    tail -5 "$run/logs/mock.log"
    return 1
}
check "GET /v1/checkouts/$co turns SUCCESS (the mock's signed webhook)" wait_success
check "the database agrees: checkout SUCCESS" \
    test "$(psql "$pkgdb" -XAtq -c "SELECT status FROM checkouts WHERE checkout_id = '$co'")" = SUCCESS
check "the example's payments_encryption_key seals the PSP token at rest" \
    test "$(psql "$pkgdb" -XAtq -c "SELECT count(*) FROM checkouts WHERE checkout_id = '$co'
        AND psp_token IS NOT NULL AND psp_token <> '$token'")" = 1
rm -f "$run/conf/auth.hdr"

# --- 3b. an upgrade ---------------------------------------------------------------

# /metrics from loopback from now on (the example allows 10.0.0.0/8 only)
sed -i 's|allow 10.0.0.0/8;|allow 10.0.0.0/8; allow 127.0.0.1;|' "$run/nginx.conf"
build_info() {
    curl -s --cacert "$ca" "$gw/metrics" | grep '^payments_build_info{'
}
wait_build_info() {
    local got=''
    for _ in $(seq 100); do
        got=$(build_info)
        [[ $got == *"version=\"$1\""* ]] && return 0
        sleep 0.1
    done
    echo "payments_build_info: ${got:-none}, not version $1"
    return 1
}
upstream=$(tr -d ' \n' <VERSION)
schema=$(find sql/migrations -name '[0-9][0-9][0-9]_*.sql' -printf '%f\n' | sort | tail -1 | cut -c1-3)
check "nginx -s reload; payments_build_info{version=\"$upstream\",schema=\"$schema\"} 1" \
    bash -c '"$@" -s reload' _ "${ngx[@]}"
check "payments_build_info names $upstream" wait_build_info "$upstream"
check "the error log's notice names $upstream and schema $schema" \
    grep -q "\[notice\].*payments: ngx_payments $upstream (schema $schema)" "$run/logs/error.log"

# A newer package: this tree copied, its version bumped, built alone.
newer=$upstream+up1
copy=$run/newer
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | grep -zv '^tests/.*/node_modules/' |
    tar -c --null -T - -f - | tar -x -C "$copy" -f -
printf '%s\n' "$newer" >"$copy/VERSION"
{
    printf 'libnginx-mod-http-payments (%s-1) bookworm; urgency=medium\n\n  * A test build (ci/deb-test.sh).\n\n -- ngx_payments developers <dev@ngx-payments.example.org>  %s\n\n' \
        "$newer" "$(date -R)"
    cat packaging/debian/changelog
} >"$copy/packaging/debian/changelog"
newdeb=$copy/build/${pkg}_${newer}-1_${arch}.deb
check "make deb of a copy at version $newer" \
    bash -c 'make -s -C "$1" BUILD="$1/build" deb >"$1/make.log" 2>&1 && [ -f "$2" ] ||
             { tail -20 "$1/make.log"; exit 1; }' _ "$copy" "$newdeb"
upgrade_out=$run/logs/upgrade.log
check "apt-get install of $newer over $version" \
    bash -c 'DEBIAN_FRONTEND=noninteractive apt-get -q -y install "$1" >"$2" 2>&1 || { tail "$2"; exit 1; }' \
    _ "$newdeb" "$upgrade_out"
check "the install says to run service nginx upgrade" \
    grep -q "run 'service nginx upgrade'" "$upgrade_out"
check "NEWS.Debian says service nginx upgrade" \
    bash -c 'zcat "/usr/share/doc/$1/NEWS.Debian.gz" | grep -q "service nginx upgrade"' _ "$pkg"
# a reload keeps the module the master loaded
check "after nginx -s reload the old module still runs ($upstream)" \
    bash -c '"$@" -s reload' _ "${ngx[@]}"
sleep 1
check "payments_build_info still names $upstream" wait_build_info "$upstream"
# the documented command, on the master whose pid is in /run/nginx.pid
check "service nginx upgrade" service nginx upgrade
check "payments_build_info names $newer: the new module runs" wait_build_info "$newer"
check "GET /readyz after the upgrade" wait_http "$gw/readyz" --cacert "$ca"
stop_services
# what is installed now: the newer package
[ -f "$newdeb" ] && debfile=$newdeb

# --- 4. remove, reinstall, purge ------------------------------------------------

mapfile -t files < <(dpkg -L "$pkg" | while read -r f; do [ -f "$f" ] && echo "$f"; done)
check "apt-get remove" apt remove "$pkg"
check "prerm/postrm: the link is disabled (kept as .removed, as dh_nginx does)" \
    bash -c '[ ! -e "$1" ] && [ ! -L "$1" ] && [ -L "$1.removed" ]' _ "$link"
check "Debian's nginx -t passes without the module" "$nginx" -t -q
check "apt-get install again enables the module again" \
    bash -c 'apt-get install -y -q "$1" >/dev/null 2>&1 && [ -L "$2" ] && [ ! -e "$2.removed" ]' \
    _ "$debfile" "$link"
check "apt-get purge" apt purge "$pkg"
installed_by_us=0
check "dpkg knows no $pkg (dpkg -L fails)" bash -c '! dpkg -L "$1" >/dev/null 2>&1' _ "$pkg"
check "no modules-enabled link, no .removed" \
    bash -c '[ ! -e "$1" ] && [ ! -L "$1" ] && [ ! -L "$1.removed" ]' _ "$link"
check "none of its ${#files[@]} files is left" \
    bash -c 'n=0; for f in "$@"; do [ -e "$f" ] && { echo "left: $f"; n=1; }; done; [ "$n" = 0 ]' \
    _ "${files[@]}"
check "Debian's nginx -t passes after the purge" "$nginx" -t -q

finish
