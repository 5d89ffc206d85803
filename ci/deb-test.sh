#!/usr/bin/env bash
# Checks run functions and bash -c snippets through check():
# shellcheck disable=SC2317,SC2016
# The Debian package end to end, on this machine (root: it installs and
# purges libnginx-mod-http-payments with apt-get, and sets the machine up as
# doc/OPERATIONS.md's install checklist says, then puts it back):
#
#   1. make deb; lintian (warnings fail); the .deb's file list
#   2. apt-get install ./build/libnginx-mod-http-payments_*.deb: the
#      modules-enabled symlink, and Debian's own /etc/nginx passes nginx -t
#      with the module loaded
#   3. the install checklist's ```sh blocks, extracted from OPERATIONS.md
#      and run as written (by root; as the users payments, postgres,
#      www-data and payments-reconcile where they say so), step by step,
#      with the checks of what each made: Debian's PostgreSQL 15 cluster
#      "main" (started by the checklist's `service postgresql start`), the
#      roles, the peer map, the keys, the reconciliation (its unit's
#      command as its user: no systemd here, so `systemctl` lines are left
#      out), the example's files in /etc/nginx under Debian's stock
#      nginx.conf, started by `service nginx restart`, the backups, and
#      the smoke test's payment paid through the mock PSP.  What the
#      operator does by hand is done between the blocks: the PSP's secrets
#      (the mock's), a self-signed certificate, the edits of step 7
#      (loopback ports, the mock instead of Stripe, no Adyen); the
#      example's origin https://pay.example.com becomes this run's.
#   3b. an upgrade: payments_build_info names the version; a newer package
#      (a copy of this tree, VERSION bumped) installed over it says to run
#      `service nginx upgrade`; a reload keeps the old module, the
#      documented command loads the new one (payments_build_info says so)
#   4. apt-get remove: the link disabled, the removal names the files
#      still using payments directives, nginx -t fails until the
#      checklist's "Removing the package" block has run, then passes;
#      install again (link back), apt-get purge: no file, no link of the
#      package left, and what the docs say purge leaves is there
#
#   5. the mock PSP's package (make deb-mock): lintian, installed, run with
#      its packaged defaults, purged
#   6. the test environment's package (make deb-testenv, doc/TESTING.md):
#      lintian, installed with the gateway's and the mock's packages of this
#      build, and the example shop suite (every row of the fault table in
#      each dialect) run through `payments-testenv run` by an unprivileged
#      user; nothing left running, then the three purged
#
# The machine must not have an install of its own: no /etc/payments, no
# users payments or payments-reconcile, no such roles or database in the
# cluster 15/main.  At exit everything the checklist made is taken away,
# pg_hba.conf and pg_ident.conf restored, the cluster stopped again if it
# was, Debian's default site enabled again if it was.  What that needs is
# kept in /var/lib/ngx-payments-deb-test from before the first change until
# the machine is put back: a run killed half-way leaves it, and the next
# run puts the machine back from it first (the nginx it started stopped
# too: the next run's check wants none running).
#
# Prints "deb: N passed, N failed" last (counted by ci/test.sh); exit status
# non-zero when anything failed.  The mock PSP and the gateway listen on
# loopback ports picked at run time; PostgreSQL on the cluster's own 5432.
# Environment: BUILD (default build), DEB_TEST_KEEP=1 keeps the run
# directory (/tmp/ngx-payments-deb-*).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
pkg=libnginx-mod-http-payments
link=/etc/nginx/modules-enabled/50-mod-http-payments.conf
nginx=/usr/sbin/nginx

passed=0
failed=0
# the example's and Debian's: `service nginx upgrade` signals the master
# whose pid is there
pidfile=/run/nginx.pid
pid_ours=0
run=''
touched_system=0
pg_was=''
default_site=0
mock_pid=''
installed_by_us=0
mock_installed_by_us=0
testenv_installed_by_us=0
lint_tmp=''

say() { echo "deb-test: $*"; }

# lintian with a temporary directory of this run's: lintian leaves a cache
# file (mldbm-elf-*) in TMPDIR for each package it reads, and never removes it
# (made once the EXIT trap is set, removed by cleanup)
lintian() {
    TMPDIR=$lint_tmp command lintian "$@"
}

# The processor time of this run's cgroup in ms, what it started included
# (ci/test.sh runs each step in a cpuacct cgroup of its own); empty
# outside one.
cg_cpu=
cg_path=$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3 }' /proc/self/cgroup 2>/dev/null || true)
if [ -n "$cg_path" ] && [ "$cg_path" != / ] &&
    [ -r "/sys/fs/cgroup/cpuacct$cg_path/cpuacct.usage" ]; then
    cg_cpu=/sys/fs/cgroup/cpuacct$cg_path/cpuacct.usage
fi
cpu_ms() { [ -z "$cg_cpu" ] || echo $(($(cat "$cg_cpu") / 1000000)); }

# check NAME CMD...: one counted check; its output is shown when it fails.
# Each line says its seconds, and its processor seconds where known.
check() {
    local name=$1 out rc t0=$SECONDS c0 took
    shift
    c0=$(cpu_ms)
    out=$("$@" 2>&1) && rc=0 || rc=$?
    took="$((SECONDS - t0)) s"
    [ -z "$c0" ] || took+=", $((($(cpu_ms) - c0 + 500) / 1000)) s of processor time"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $name ($took)"
    else
        failed=$((failed + 1))
        echo "FAIL $name (exit $rc; $took)"
        [ -z "$out" ] || printf '%s\n' "$out" | tail -n 40 | sed 's/^/     | /'
    fi
    return "$rc"
}

finish() {
    echo "deb: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# the nginx whose pid is in $pidfile, stopped (at most 10 s for its
# requests)
stop_nginx() {
    local pid
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
}

stop_services() {
    if [ -n "$run" ] && [ -f "$pidfile" ] && [ "$pid_ours" = 1 ]; then
        stop_nginx
    fi
    if [ -n "$mock_pid" ]; then
        kill -TERM "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
        mock_pid=''
    fi
}

# What a run needs to put the machine back, kept outside /tmp before the
# first change: a run killed half-way (SIGKILL, a machine stopped) leaves
# it, and the next run puts the machine back from it before its own check
# that nothing of the checklist's is here.
state=/var/lib/ngx-payments-deb-test

# What the checklist made, taken away; what it changed, put back.
restore_system() {
    local u
    [ "$touched_system" = 1 ] || return 0
    rm -f /etc/nginx/conf.d/payments.conf /etc/nginx/conf.d/payments.conf.disabled \
        /etc/nginx/sites-available/payments /etc/nginx/sites-enabled/payments \
        /etc/systemd/system/payments-reconcile@.service \
        /etc/systemd/system/payments-reconcile@.timer \
        /root/shop1.key /var/log/nginx/payments.log
    if [ "$default_site" = 1 ] && [ ! -e /etc/nginx/sites-enabled/default ]; then
        ln -s /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
    fi
    rm -rf /etc/payments /var/lib/ngx-payments /var/backups/payments
    # the roles and the database go even when the cluster is down now (a
    # run killed after the checklist's step 3)
    pg_lsclusters -h 15 main 2>/dev/null | grep -q ' online ' ||
        pg_ctlcluster 15 main start 2>/dev/null
    if pg_lsclusters -h 15 main 2>/dev/null | grep -q ' online '; then
        runuser -u postgres -- dropdb --if-exists payments 2>/dev/null
        for u in root payments-reconcile payments_gateway payments; do
            runuser -u postgres -- dropuser --if-exists "$u" 2>/dev/null
        done
    fi
    cp -p "$state/pg_hba.conf" "$state/pg_ident.conf" /etc/postgresql/15/main/ 2>/dev/null
    if [ "$pg_was" = down ]; then
        pg_ctlcluster 15 main stop 2>/dev/null
    else
        pg_ctlcluster 15 main reload 2>/dev/null
    fi
    for u in payments payments-reconcile; do
        id "$u" >/dev/null 2>&1 && userdel "$u"
    done
    rm -rf "$state"
    touched_system=0
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop_services
    restore_system
    # a run that stopped half-way leaves no package behind
    if [ "$installed_by_us" = 1 ] && dpkg-query -W "$pkg" >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$pkg" >/dev/null 2>&1 || true
    fi
    if [ "$mock_installed_by_us" = 1 ] && dpkg-query -W ngx-payments-mock-psp >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q ngx-payments-mock-psp >/dev/null 2>&1 || true
    fi
    if [ "$testenv_installed_by_us" = 1 ] && dpkg-query -W ngx-payments-testenv >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q ngx-payments-testenv \
            ngx-payments-mock-psp "$pkg" >/dev/null 2>&1 || true
    fi
    [ -z "$lint_tmp" ] || rm -rf "$lint_tmp"
    if [ -n "$run" ] && [ "${DEB_TEST_KEEP:-0}" != 1 ]; then
        rm -rf "$run"
    elif [ -n "$run" ]; then
        say "run directory kept: $run"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lint_tmp=$(mktemp -d /tmp/ngx-payments-lintian-XXXXXX)

# Another apt-get on the machine (an earlier run's left running, an
# install of the CI's) holds dpkg's lock for a while: wait for it, up to
# 5 minutes, instead of failing at once.
apt() { DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"; }

if [ "$(id -u)" -ne 0 ]; then
    check "runs as root (it installs the package)" false
    finish
fi

# An earlier run of this script that was killed before its end: its
# changes are put back (and its packages purged) before anything else,
# then the machine must look fresh like any other (section 3).
put_back_killed_run() {
    if ! pg_was=$(cat "$state/pg_was") || ! default_site=$(cat "$state/default_site") ||
        [ ! -f "$state/pg_hba.conf" ]; then
        echo "$state is incomplete"
        return 1
    fi
    # the nginx a killed run started (Debian's service, its pid in
    # $pidfile): the next run's check wants none
    if [ -f "$state/nginx_ours" ] && [ -f "$pidfile" ]; then
        stop_nginx
    fi
    local p
    # one at a time: apt-get refuses a whole line naming a package it
    # cannot find
    for p in ngx-payments-testenv ngx-payments-mock-psp "$pkg"; do
        if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q .; then
            apt purge "$p" >/dev/null 2>&1 || true
        fi
    done
    touched_system=1
    restore_system
    [ ! -e "$state" ]
}
if [ -d "$state" ]; then
    say "an earlier run was killed before it put the machine back ($state): putting it back now"
    check "what a killed earlier run changed is put back (from $state)" \
        put_back_killed_run || finish
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
    usr/bin/payments-secrets usr/bin/payments-events \
    usr/lib/ngx-payments/payments-events-verify \
    usr/share/man/man1/payments-migrate.1.gz usr/share/man/man1/payments-merchant.1.gz \
    usr/share/man/man1/payments-events.1.gz \
    usr/share/man/man1/payments-reconcile.1.gz \
    "usr/share/doc/$pkg/examples/payments-reconcile@.timer" \
    usr/share/ngx-payments/sql/migrations/038_baseline.sql \
    usr/share/ngx-payments/sql/migrations/history.txt \
    usr/share/ngx-payments/sql/functions/pay_claim.sql usr/share/ngx-payments/sql/schema.sql \
    usr/share/ngx-payments/html/pending.js \
    "usr/share/doc/$pkg/copyright" "usr/share/doc/$pkg/changelog.Debian.gz" \
    "usr/share/doc/$pkg/examples/nginx/conf.d/payments.conf" \
    "usr/share/doc/$pkg/examples/nginx/sites-available/payments" \
    "usr/share/doc/$pkg/examples/payments-alerts.yml" \
    "usr/share/doc/$pkg/examples/payments-alerts.test.yml" \
    "usr/share/doc/$pkg/examples/payments-dashboard.json"
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
check "Depends: the nginx ABI ($abi) and the libraries (libpq5, libcurl4, libjwt0, libcsv3, libhiredis0.14)" \
    bash -c 'd=$(dpkg-deb -f "$1" Depends); echo "$d";
             for p in "$2" libpq5 libcurl4 libjansson4 libjwt0 libssl3 libc6 libcsv3 libhiredis0.14; do
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
check "the man pages are found" bash -c 'man -w payments-migrate && man -w payments-merchant && man -w payments-reconcile && man -w payments-events'
check "promtool checks the packaged alerting rules and passes their tests" \
    bash -c 'cd "/usr/share/doc/$1/examples" && promtool check rules payments-alerts.yml &&
             promtool test rules payments-alerts.test.yml' _ "$pkg"

# --- 3. the install checklist, as written -----------------------------------------

# doc/OPERATIONS.md's "Install checklist": every ```sh block of its numbered
# steps (and of "Removing the package"), as "STEP<TAB>N<TAB>line".
doc_blocks() {
    awk '
        /^## Install checklist/ { sec = 1; next }
        sec && /^## / { sec = 0 }
        !sec { next }
        /^### Removing the package/ { step = "remove"; n = 0; next }
        !inblock && /^[0-9]+\. / { step = $1; sub(/\./, "", step); n = 0 }
        /^ *```sh$/ { inblock = 1; n++; next }
        inblock && /^ *```$/ { inblock = 0; next }
        inblock { line = $0; sub(/^   /, "", line); print step "\t" n "\t" line }
    ' "$top/doc/OPERATIONS.md"
}
block() {
    doc_blocks | awk -F '\t' -v s="$1" -v n="$2" \
        '$1 == s && $2 == n { sub(/^[^\t]*\t[^\t]*\t/, ""); print }'
}
# run_block STEP N: that block, as root, by bash -e, from the run
# directory (it holds the .deb); the example's origin is this run's, and
# curl trusts this run's certificate.  Lines starting with a word of
# $skip_re are left out (and said so).
skip_re='^$'
run_block() {
    local text
    text=$(block "$1" "$2")
    [ -n "$text" ] || { echo "OPERATIONS.md has no block $2 in step $1"; return 1; }
    text=${text//https:\/\/pay.example.com/$gw}
    grep -E "$skip_re" <<<"$text" | sed 's/^/skipped: /'
    text=$(grep -vE "$skip_re" <<<"$text")
    (cd "$run" && APT_CONFIG=$run/apt.conf DEBIAN_FRONTEND=noninteractive \
        CURL_CA_BUNDLE=$ca bash -e -o pipefail -c "$text")
}
# step_check STEP N DESCRIPTION: a counted check that runs the block and
# keeps its output in $run/logs/step-STEP-N.out
step_check() {
    local s=$1 n=$2
    shift 2
    check "checklist step $s${n:+ (block $n)}: $*" \
        bash -c 'out=$1; shift; "$@" >"$out" 2>&1; rc=$?; cat "$out"; exit $rc' \
        _ "$run/logs/step-$s-$n.out" run_block "$s" "$n"
}
export -f doc_blocks block run_block
export top

# no dot in the name: nginx's configure rewrites a build path that holds
# ".S" or ".c" (its sed rules for sources), so a run named deb.S… failed
run=$(mktemp -d /tmp/ngx-payments-deb-XXXXXX)
chmod 755 "$run"
mkdir -p "$run/logs"
export run
printf '%s\n' 'APT::Get::Assume-Yes "true";' 'DPkg::Lock::Timeout "300";' \
    'Dpkg::Options { "--force-confdef"; "--force-confold"; };' >"$run/apt.conf"
cp "$debfile" "$run/"

ports=()
while [ ${#ports[@]} -lt 3 ]; do
    p=$(bash ci/services.sh port)
    case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
mock_port=${ports[0]} gw_port=${ports[1]} plain_port=${ports[2]}
gw=https://127.0.0.1:$gw_port
mock=http://127.0.0.1:$mock_port
ca=/etc/payments/tls/fullchain.pem
export gw ca skip_re

# The checklist sets up the whole machine: nothing of it may be here yet.
# What it changes is put back at the end (restore_system).
pg_conf=/etc/postgresql/15/main
fresh_machine() {
    local n=0 u
    for f in /etc/payments /var/lib/ngx-payments /var/backups/payments \
        /etc/nginx/conf.d/payments.conf /etc/nginx/sites-available/payments; do
        [ ! -e "$f" ] || { echo "$f exists"; n=1; }
    done
    for u in payments payments-reconcile; do
        ! id "$u" >/dev/null 2>&1 || { echo "user $u exists"; n=1; }
    done
    [ -f "$pg_conf/pg_hba.conf" ] || { echo "no Debian cluster 15/main"; n=1; }
    return "$n"
}
check "this machine has no install of the checklist's (no /etc/payments, users, ...)" \
    fresh_machine || finish
pg_was=$(pg_lsclusters -h 15 main | awk '{ print $4 }')
default_site=0
[ -L /etc/nginx/sites-enabled/default ] && default_site=1
keep_state() {
    mkdir -p "$state.new" &&
        cp -p "$pg_conf/pg_hba.conf" "$pg_conf/pg_ident.conf" "$state.new/" &&
        echo "$pg_was" >"$state.new/pg_was" &&
        echo "$default_site" >"$state.new/default_site" &&
        sync && mv "$state.new" "$state"
}
check "what is needed to put the machine back is kept in $state" keep_state || finish
touched_system=1

check "checklist step 1: apt-get install nginx postgresql ./${debfile##*/}; service postgresql start" \
    run_block 1 1 || finish
check "Debian's cluster 15/main is online" \
    bash -c 'pg_lsclusters -h 15 main | grep -q " online "' || finish
pg_roles() {
    runuser -u postgres -- psql -XAtq -c "SELECT string_agg(rolname, ',' ORDER BY rolname COLLATE \"C\")
        FROM pg_roles WHERE rolname IN ('payments', 'payments_gateway', 'payments-reconcile')"
}
check "the cluster has no payments role and no database payments" \
    bash -c '[ -z "$(pg_roles)" ] && ! runuser -u postgres -- psql -XAtq -l | grep -q "^payments|"' \
    || finish
export -f pg_roles
step_check 2 1 "users payments and payments-reconcile, /etc/payments" || finish
check "/etc/payments root 755, tls root 700, reconcile root:payments-reconcile 750" \
    test "$(stat -c '%U:%G %a' /etc/payments /etc/payments/tls /etc/payments/reconcile | tr '\n' ' ')" \
    = "root:root 755 root:root 700 root:payments-reconcile 750 "
step_check 3 1 "roles and database; payments-migrate as payments" || finish
check "payments-migrate ran as payments: 0 already current, functions applied" \
    grep -q 'payments-migrate: [1-9][0-9]* applied, 0 already current' "$run/logs/step-3-1.out"
sql_as() { runuser -u "$1" -- psql -XAtq -v ON_ERROR_STOP=1 "${3:-dbname=payments}" -c "$2"; }
export -f sql_as
schema_roles() {
    local got
    got=$(sql_as payments "SELECT tableowner FROM pg_tables WHERE tablename = 'checkouts'")
    [ "$got" = payments ] || { echo "checkouts owned by $got"; return 1; }
    got=$(sql_as payments "SELECT count(*) FROM pg_roles WHERE rolsuper
        AND rolname IN ('payments', 'payments_gateway', 'payments-reconcile')")
    [ "$got" = 0 ] || { echo "$got superusers among them"; return 1; }
    got=$(sql_as payments-reconcile "SELECT pg_has_role('payments', 'USAGE')")
    [ "$got" = t ] || { echo "payments-reconcile has not the privileges of payments: $got"; return 1; }
}
check "the schema belongs to payments, no superuser; payments-reconcile has its privileges" \
    schema_roles
step_check 4 1 "pg_ident map for www-data, log settings" || finish
check "www-data logs in as payments_gateway by peer authentication" \
    test "$(tail -1 "$run/logs/step-4-1.out")" = payments_gateway
check "the database logs no failed statement's text (log_min_error_statement panic, terse)" \
    test "$(sql_as payments 'SHOW log_min_error_statement'; sql_as payments 'SHOW log_error_verbosity')" \
    = "panic
terse"
step_check 5 1 "keys by payments-secrets and openssl, www-data's alone" || finish
check "the key files are www-data's, mode 600" \
    bash -c 'cd /etc/payments && for f in encryption.keys paytoken-2026-11.key stripe-api.key stripe-whsec.key; do
                 [ "$(stat -c "%U %a" "$f")" = "www-data 600" ] || { ls -l "$f"; exit 1; }; done'
# What step 5 leaves to the operator: the PSP's secrets (the mock's here)
# and a certificate.
printf 'sk_test_%s' "$(openssl rand -hex 24)" >/etc/payments/stripe-api.key
printf 'whsec_%s' "$(openssl rand -hex 24)" >/etc/payments/stripe-whsec.key
(
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 2 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" \
        -keyout /etc/payments/tls/privkey.pem -out /etc/payments/tls/fullchain.pem 2>/dev/null
)
check "a secret written into a key file keeps its owner and mode" \
    test "$(stat -c '%U %a' /etc/payments/stripe-api.key)" = "www-data 600"

# Step 6 without systemctl: no systemd runs here (PID 1 is not systemd).
# What the timer would start is run below as the service does.
[ "$(ps -p 1 -o comm=)" = systemd ] || skip_re='^systemctl '
step_check 6 1 "the reconciliation timer's environment, report directory and units" || finish
skip_re='^$'
# The mock PSP: Stripe's API and hosted page; its signed webhooks go to the
# gateway over TLS.
"$build/mock_psp" --port "$mock_port" --listen 127.0.0.1 --public-url "$mock" \
    --stripe-secret "$(cat /etc/payments/stripe-api.key)" \
    --webhook-url "$gw/v1/webhooks/stripe" \
    --stripe-webhook-secret "$(cat /etc/payments/stripe-whsec.key)" \
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

step_check 7 1 "the example's conf.d snippet and site in /etc/nginx" || finish
# The operator's edits of step 7: this run's origin and ports, the mock
# instead of Stripe (mode=test, allow_http), no Adyen.
snippet=/etc/nginx/conf.d/payments.conf
site=/etc/nginx/sites-available/payments
sed -i -e "s|payments_public_origin .*|payments_public_origin $gw;|" \
    -e "s|url=https://api.stripe.com|url=$mock|" \
    -e "s|hosted=https://checkout.stripe.com|hosted=$mock|" \
    -e "s|mode=live$|mode=test allow_http|" \
    -e '/^payments_psp adyen/,/;$/d' "$snippet"
sed -i -e '/location = \/v1\/webhooks\/adyen/,/}/d' \
    -e "s|listen 80;|listen 127.0.0.1:$plain_port;|" \
    -e "s|listen 443 ssl|listen 127.0.0.1:$gw_port ssl|" "$site"
check "the edited files: no load_module, no Adyen, ports 80/443 or origin left" \
    bash -c '! grep -qE "^ *(load_module|payments_psp adyen|location = /v1/webhooks/adyen|listen (80|443)|payments_public_origin https://pay)" "$1" "$2" &&
             [ "$(readlink /etc/nginx/sites-enabled/payments)" = ../sites-available/payments ]' \
    _ "$snippet" "$site"
# The limits doc/ngx_http_payments_module.md says the example has: every
# scope of payments_limit, each on a zone the example declares.
example_limits() {
    local f=$1 line zone
    for line in create_merchant create_address pages webhook \
                webhook_failures amount failures; do
        zone=$(sed -n "s/^payments_limit $line=\([a-z_]*\).*/\1/p" "$f")
        [ -n "$zone" ] || { echo "no payments_limit $line= in $f"; return 1; }
        grep -qE "^payments_limit_(zone|amount|failures) +$zone " "$f" ||
            { echo "payments_limit $line=$zone: no such zone in $f"; return 1; }
    done
}
check "the example's rate limits: every scope, each on a declared zone" \
    example_limits "$snippet"
check "Debian's stock nginx.conf is the package's (unchanged)" \
    bash -c 'dpkg --verify nginx-common 2>&1 | grep -q "/etc/nginx/nginx.conf$" && exit 1; true'
check "no nginx holds $pidfile" \
    bash -c '[ ! -s "$1" ] || ! kill -0 "$(cat "$1")" 2>/dev/null' _ "$pidfile" || finish
pid_ours=1
# a run killed from here on leaves the nginx it started: the next run's
# put-back stops it (put_back_killed_run)
touch "$state/nginx_ours"
step_check 7 2 "nginx -t; service nginx restart" || finish
check "GET $gw/healthz" wait_http "$gw/healthz" --cacert "$ca" ||
    tail -20 /var/log/nginx/error.log
check "GET /readyz (www-data reaches the database as payments_gateway)" \
    wait_http "$gw/readyz" --cacert "$ca"
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
# the answer either way.
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

step_check 8 1 "backups of the keys and the database" || finish
check "the dump lists table data; the key files are copied" \
    bash -c '[ "$(tail -1 "$1")" -gt 10 ] && cmp /etc/payments/encryption.keys /var/backups/payments/encryption.keys' \
    _ "$run/logs/step-8-1.out"

step_check 9 1 "a merchant and one checkout" || finish
answer=$(cat "$run/logs/step-9-1.out")
check "POST /v1/payments answered with a psp_token" \
    bash -c 'grep -q "\"psp_token\": *\"[^\"]" <<<"$1" || { echo "$1"; exit 1; }' _ "$answer"
token=$(grep -o '"psp_token": *"[^"]*"' <<<"$answer" | sed 's/.*"\([^"]*\)"$/\1/')
check "the mock pays session $token (what the operator's browser does)" \
    curl -sf -o /dev/null -X POST "$mock/_control/sessions/$token/pay"
wait_success() {
    local s=''
    for _ in $(seq 100); do
        s=$(run_block 9 2 2>&1 | grep -o '"status": *"[A-Z_]*"' | head -1)
        [[ $s == *SUCCESS* ]] && return 0
        sleep 0.2
    done
    echo "checklist step 9, block 2: $s after 20 s"
    tail -5 "$run/logs/mock.log"
    return 1
}
check "checklist step 9 (block 2): GET /v1/checkouts/smoke-1 turns SUCCESS (the mock's signed webhook)" \
    wait_success
check "the database agrees: checkout SUCCESS, its PSP token sealed at rest" \
    test "$(sql_as payments "SELECT status || ' ' || (psp_token <> '$token') FROM checkouts
        WHERE checkout_id = 'smoke-1'")" = "SUCCESS true"
check "payments-merchant status as payments" \
    runuser -u payments -- payments-merchant --db dbname=payments status
check "payments-events lists the smoke payment's event, applied, as payments" \
    bash -c 'out=$(runuser -u payments -- payments-events --db dbname=payments list --state applied) &&
             grep -q "smoke-1" <<<"$out" || { echo "$out"; exit 1; }'
# verify reads the secrets (root) and psp_events (a role of root's name in
# payments, by peer, as OPERATIONS.md says)
events_verify() {
    local out rc
    runuser -u postgres -- createuser --role payments root || return 1
    out=$(payments-events --db dbname=payments verify --since "$(date -d '1 hour ago' -Is)" 2>&1)
    rc=$?
    runuser -u postgres -- dropuser root
    grep -q '^verified' <<<"$out" && grep -q ' 0 failed, 0 without' <<<"$out" &&
        [ "$rc" = 0 ] || { echo "$out (exit $rc)"; return 1; }
}
check "payments-events verify, as root: the smoke payment's event verifies with the configured secret" \
    events_verify

# What the timer of step 6 starts (its PSP now known to the database)
day=$(date -d yesterday +%F)
reports=/var/lib/ngx-payments/reports/stripe
reconcile_as_the_unit() {
    local envs
    runuser -u payments-reconcile -- sh -c 'printf "%s\n" \
        balance_transaction_id,currency,gross,fee,net,reporting_category >"$1"' _ "$reports/$day.csv" &&
    mapfile -t envs < <(grep -v '^#' /etc/payments/reconcile/stripe.env)
    runuser -u payments-reconcile -- env "${envs[@]}" \
        sh -c 'exec /usr/bin/payments-reconcile --psp stripe --dialect "$DIALECT" \
            --html "$REPORT_DIR/$1.html" "$REPORT_DIR/$1.csv"' _ "$day" &&
    [ -s "$reports/$day.html" ]
}
check "the unit's command as payments-reconcile, on a report of no rows (peer login, a member of payments): exit 0, its HTML report" \
    reconcile_as_the_unit
check "the unit reads /etc/payments/reconcile and writes /var/lib/ngx-payments/reports" \
    bash -c 'grep -qx "EnvironmentFile=/etc/payments/reconcile/%i.env" "$1" &&
             grep -qx "ReadWritePaths=/var/lib/ngx-payments/reports" "$1" &&
             grep -qx "User=payments-reconcile" "$1"' _ "/etc/systemd/system/payments-reconcile@.service"


# --- 3b. an upgrade ---------------------------------------------------------------

# /metrics from loopback from now on (the example allows 10.0.0.0/8 only)
sed -i 's|allow 10.0.0.0/8;|allow 10.0.0.0/8; allow 127.0.0.1;|' "$site"
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
export -f build_info wait_build_info
upstream=$(tr -d ' \n' <VERSION)
schema=$(find sql/migrations -name '[0-9][0-9][0-9]_*.sql' -printf '%f\n' | sort | tail -1 | cut -c1-3)
check "nginx -s reload" "$nginx" -s reload
check "payments_build_info{version=\"$upstream\",schema=\"$schema\"} 1" \
    bash -c 'wait_build_info "$1" && build_info | grep -qF "schema=\"$2\"} 1"' _ "$upstream" "$schema"

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
check "after nginx -s reload the old module still runs ($upstream)" "$nginx" -s reload
sleep 1
check "payments_build_info still names $upstream" wait_build_info "$upstream"
# the documented command, on the master whose pid is in /run/nginx.pid
check "service nginx upgrade" service nginx upgrade
check "payments_build_info names $newer: the new module runs" wait_build_info "$newer"
check "GET /readyz after the upgrade" wait_http "$gw/readyz" --cacert "$ca"
# what is installed now: the newer package
[ -f "$newdeb" ] && debfile=$newdeb

# --- 4. remove, reinstall, purge ------------------------------------------------

mapfile -t files < <(dpkg -L "$pkg" | while read -r f; do [ -f "$f" ] && echo "$f"; done)
remove_out=$run/logs/remove.log
check "apt-get remove" bash -c 'apt-get -q -y remove "$1" >"$2" 2>&1 || { tail "$2"; exit 1; }' \
    _ "$pkg" "$remove_out"
check "prerm/postrm: the link is disabled (kept as .removed, as dh_nginx does)" \
    bash -c '[ ! -e "$1" ] && [ ! -L "$1" ] && [ -L "$1.removed" ]' _ "$link"
check "the removal names the files that still use payments directives" \
    bash -c 'out=$(tr -d "\r" <"$1")   # dpkg writes through apt'"'"'s pty
             grep -q "WARNING: nginx no longer loads the payments" <<<"$out" &&
             grep -qx "/etc/nginx/conf.d/payments.conf" <<<"$out" &&
             grep -qx "/etc/nginx/sites-enabled/payments" <<<"$out" || { echo "$out"; exit 1; }' _ "$remove_out"
check "with them, nginx -t fails (unknown directive)" \
    bash -c '! out=$("$1" -t 2>&1) && grep -q "unknown directive \"payments" <<<"$out"' _ "$nginx"
step_check remove 1 "the files out of use; nginx -t; service nginx restart"
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
# OPERATIONS.md, "Removing the package": what purge leaves
check "purge leaves what the docs say: the keys, the units, reports, backups, the nginx files, users, database" \
    bash -c 'for f in /etc/payments/encryption.keys /etc/systemd/system/payments-reconcile@.timer \
                 /var/lib/ngx-payments/reports/stripe /var/backups/payments/payments.dump \
                 /etc/nginx/sites-available/payments /etc/nginx/conf.d/payments.conf.disabled; do
                 [ -e "$f" ] || { echo "gone: $f"; exit 1; }; done
             id payments && id payments-reconcile &&
             grep -q "map=payments" /etc/postgresql/15/main/pg_hba.conf &&
             [ "$(pg_roles)" = "payments,payments-reconcile,payments_gateway" ] &&
             [ "$(sql_as payments "SELECT count(*) FROM checkouts")" = 1 ]'
check "Debian's nginx -t passes after the purge" "$nginx" -t -q

# --- 5. the mock PSP's package ---------------------------------------------------
# ngx-payments-mock-psp, for shops' own CI (doc/MOCK_PSP.md): built, clean
# under lintian, installed, the installed binary serving Stripe and Adyen
# (Adyen's documents read from the package's place) with the flags the
# package's /etc/default file ships, the unit checked, then purged.

mpkg=ngx-payments-mock-psp
mdeb_out=$(make -s BUILD="$build" deb-mock 2>&1) || true
mdeb=$(printf '%s\n' "$mdeb_out" | tail -1)
check "make deb-mock builds ${mpkg}_${version}_${arch}.deb" \
    test "$mdeb" = "$build/${mpkg}_${version}_${arch}.deb" -a -f "$mdeb" ||
    { printf '%s\n' "$mdeb_out" | tail -20; finish; }
check "lintian: the mock's package, no error or warning" lintian --fail-on warning "$mdeb"
check "the mock's .deb holds the binary, man page, unit, defaults, Adyen's documents, docs" \
    bash -c 'list=$(dpkg-deb -c "$1" | awk "{ print \$6 }")
             for f in usr/bin/ngx-payments-mock-psp usr/share/man/man1/ngx-payments-mock-psp.1.gz \
                      lib/systemd/system/ngx-payments-mock-psp.service \
                      etc/default/ngx-payments-mock-psp \
                      usr/share/ngx-payments-mock-psp/specs/CheckoutService-v71.json \
                      usr/share/ngx-payments-mock-psp/specs/TransferService-v4.json \
                      usr/share/doc/ngx-payments-mock-psp/TESTING.md \
                      usr/share/doc/ngx-payments-mock-psp/reference.md.gz \
                      usr/share/doc/ngx-payments-mock-psp/copyright; do
                 grep -qxF "./$f" <<<"$list" || { echo "missing $f"; exit 1; }; done' _ "$mdeb"
if dpkg-query -W -f='${db:Status-Status}' "$mpkg" 2>/dev/null | grep -q .; then
    say "$mpkg is on this machine already: purging it first"
    apt purge "$mpkg" >/dev/null 2>&1 || true
fi
mock_installed_by_us=1
check "apt-get install ./${mdeb#"$top"/}" apt install "$mdeb" || finish
check "the mock's man page is found" man -w ngx-payments-mock-psp
check "systemd-analyze verifies the mock's unit" \
    bash -c '! command -v systemd-analyze >/dev/null ||
             systemd-analyze verify /lib/systemd/system/ngx-payments-mock-psp.service'

# the installed mock, with the packaged defaults' flags on a free port, and
# Adyen switched on: it must find Adyen's documents where the package put them
mock_pkg_run() {
    local out=$run/logs/mock-pkg.out err=$run/logs/mock-pkg.err pid url sid
    (
        # shellcheck disable=SC1091
        . /etc/default/ngx-payments-mock-psp
        # shellcheck disable=SC2086  # the flags, split as systemd splits $VAR
        exec /usr/bin/ngx-payments-mock-psp $MOCK_PSP_OPTIONS --port 0 \
            --adyen-secret adyen_pkg_key \
            --adyen-hmac-key 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    ) >"$out" 2>"$err" &
    pid=$!
    for _ in $(seq 50); do
        url=$(sed -n 's/^mock_psp listening on //p' "$out")
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$err"; kill "$pid"; return 1; }
    sid=$(curl -fsS -H 'Authorization: Bearer sk_test_mock' -H 'Idempotency-Key: pkg:co_1' \
        -d mode=payment -d client_reference_id=pkg:co_1 \
        -d success_url=https://shop.example/ok -d cancel_url=https://shop.example/no \
        -d 'line_items[0][price_data][currency]=usd' \
        -d 'line_items[0][price_data][unit_amount]=2000' \
        -d 'line_items[0][price_data][product_data][name]=order' \
        -d 'line_items[0][quantity]=1' "$url/v1/checkout/sessions" |
        grep -o '"id": *"cs_[^"]*"' | head -1 | sed 's/.*"\(cs_[^"]*\)"/\1/')
    [ -n "$sid" ] || { echo "no Stripe session"; cat "$err"; kill "$pid"; return 1; }
    # read whole, then searched: under pipefail `curl | grep -q` fails
    # when grep stops at the match before curl is done
    grep -q '"payment_status":"paid"' <<<"$(curl -fsS -X POST "$url/_control/sessions/$sid/pay")" ||
        { echo "the session was not paid"; kill "$pid"; return 1; }
    # an Adyen request that breaks Adyen's documents is refused with the rule
    grep -q unknownField <<<"$(curl -sS -H 'X-API-Key: adyen_pkg_key' -H 'Content-Type: application/json' \
        -d '{"merchantAccount":"M","amount":{"value":100,"currency":"EUR"},"returnUrl":"https://shop.example/r","reference":"r1","unknownField":1}' \
        "$url/v71/sessions")" ||
        { echo "Adyen's documents were not applied"; cat "$err"; kill "$pid"; return 1; }
    kill -TERM "$pid"
    wait "$pid"
}
check "the installed mock reads Adyen's documents from the package, not from a source tree" \
    bash -c '/usr/bin/ngx-payments-mock-psp --help | grep -q "(/usr/share/ngx-payments-mock-psp/specs)"'
check "the installed mock serves Stripe, checks Adyen against the packaged documents, stops on SIGTERM" \
    mock_pkg_run
mock_files=()
mapfile -t mock_files < <(dpkg -L "$mpkg" | while read -r f; do [ -f "$f" ] && echo "$f"; done)
check "apt-get purge $mpkg" apt purge "$mpkg"
mock_installed_by_us=0
check "none of the mock package's ${#mock_files[@]} files is left, /etc/default's included" \
    bash -c 'n=0; for f in "$@"; do [ -e "$f" ] && { echo "left: $f"; n=1; }; done; [ "$n" = 0 ]' \
    _ "${mock_files[@]}"

# --- 6. the test environment's package --------------------------------------------
# ngx-payments-testenv (doc/TESTING.md): payments-testenv starts the whole
# environment as an unprivileged user; the example suite runs through it
# from the installed packages, as a shop's CI would.

tpkg=ngx-payments-testenv
tdeb_out=$(make -s BUILD="$build" deb-testenv 2>&1) || true
tdeb=$(printf '%s\n' "$tdeb_out" | tail -1)
check "make deb-testenv builds ${tpkg}_${version}_all.deb" \
    test "$tdeb" = "$build/${tpkg}_${version}_all.deb" -a -f "$tdeb" ||
    { printf '%s\n' "$tdeb_out" | tail -20; finish; }
check "lintian: the test environment's package, no error or warning" \
    lintian --fail-on warning "$tdeb"
check "the test environment's .deb holds the command, what it runs, its man page, the page and the example" \
    bash -c 'list=$(dpkg-deb -c "$1" | awk "{ print \$6 }")
             for f in usr/bin/payments-testenv usr/share/man/man1/payments-testenv.1.gz \
                      usr/share/ngx-payments-testenv/services-lib.sh \
                      usr/share/ngx-payments-testenv/nginx.conf.in \
                      usr/share/ngx-payments-testenv/pg.sh \
                      usr/share/ngx-payments-testenv/receiver.js \
                      usr/share/doc/ngx-payments-testenv/TESTING.md \
                      usr/share/doc/ngx-payments-testenv/examples/shop.test.js \
                      usr/share/doc/ngx-payments-testenv/copyright; do
                 grep -qxF "./$f" <<<"$list" || { echo "missing $f"; exit 1; }; done' _ "$tdeb"
check "it depends on the gateway's and the mock's packages of its version" \
    bash -c 'd=$(dpkg-deb -f "$1" Depends); echo "$d"
             grep -qF "libnginx-mod-http-payments (= $2)" <<<"$d" &&
             grep -qF "ngx-payments-mock-psp (= $2)" <<<"$d"' _ "$tdeb" "$version"
# the gateway's package of this build (the upgrade above installed a newer
# copy, purged since)
gdeb=$build/${pkg}_${version}_${arch}.deb
testenv_installed_by_us=1
check "apt-get install the gateway's, the mock's and the test environment's packages" \
    apt install "$gdeb" "$mdeb" "$tdeb" || finish
check "payments-testenv's man page is found" man -w payments-testenv
check "payments-testenv refuses root" \
    bash -c 'out=$(payments-testenv start 2>&1) && exit 1; grep -q "unprivileged user" <<<"$out" || { echo "$out"; exit 1; }'

# As a shop's CI runs it: an ordinary user (nobody), a directory of its
# own, the example suite from the package's documentation.
tdir=$run/testenv
mkdir -p "$tdir"
chown nobody: "$tdir"
testenv_suite() {
    local out=$run/logs/testenv-suite.out rc
    runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME="$1" TMPDIR="$1" \
        payments-testenv run --dir "$1/env" -- \
        node --test --test-reporter=tap /usr/share/doc/ngx-payments-testenv/examples/shop.test.js \
        >"$out" 2>&1
    rc=$?
    grep -E '^# (tests|pass|fail|duration_ms)' "$out"
    # the failing subtest itself (indented under its suite), not only its suite
    grep -B2 -A16 '^ *not ok' "$out" | head -120
    [ "$rc" -eq 0 ] && grep -qx '# fail 0' "$out" && grep -qE '^# pass [1-9]' "$out"
}
check "the example suite through payments-testenv run, as nobody: every test passes" \
    testenv_suite "$tdir"
check "after run: nothing of it left running, its directory gone" \
    bash -c '[ ! -e "$1/env" ] || { ls "$1/env"; exit 1; }
             # A zombie has exited: only the container'"'"'s init, which may not
             # reap orphans (pg_ctl daemonizes the postmaster), still lists it.
             left=$(ps -u nobody -o stat=,args= | awk '"'"'$1 !~ /^Z/'"'"' |
                    grep -E "payments-testenv|ngx-payments-mock-psp|receiver.js|postgres") || true
             [ -z "$left" ] || { echo "$left"; exit 1; }' _ "$tdir"
check "payments-testenv start, merchant, reset, stop as nobody" \
    runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME="$tdir" TMPDIR="$tdir" bash -c '
        set -e
        eval "$(payments-testenv start --dir "$1/env2")"
        [ "$PAYMENTS_TEST_DIR" = "$1/env2" ]
        curl -sf --cacert "$PAYMENTS_TEST_CA" "$PAYMENTS_TEST_GATEWAY/readyz" >/dev/null
        [[ $PAYMENTS_TEST_KEY == mk_test_* && $PAYMENTS_TEST_NOTIFY_SECRET == whsec_* ]]
        second=$(payments-testenv merchant)
        grep -q "^export PAYMENTS_TEST_KEY=mk_test_" <<<"$second"
        ! grep -qF "$PAYMENTS_TEST_KEY" <<<"$second"
        payments-testenv reset
        payments-testenv stop
        [ ! -e "$1/env2" ]' _ "$tdir"
check "apt-get purge the three packages" apt purge "$tpkg" ngx-payments-mock-psp "$pkg"
testenv_installed_by_us=0

finish
