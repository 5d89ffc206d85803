#!/usr/bin/env bash
# Installs what the build and the test suites need on Debian bookworm.
#
#   ci/install-deps.sh            everything
#   ci/install-deps.sh --core     the build, PostgreSQL, nginx, the C suites,
#                                 and the e2e suite's notification receiver:
#                                 nodejs and npm (Debian's, unless a node is
#                                 there), then standardwebhooks (the version
#                                 pinned in tests/notify_receiver/package-lock.json)
#                                 into tests/notify_receiver/node_modules
#   ci/install-deps.sh --browser  the browser suite: Debian's chromium, nodejs
#                                 and npm, then playwright-core (the version
#                                 pinned in tests/browser/package-lock.json)
#                                 into tests/browser/node_modules
#   ci/install-deps.sh --deb      --core, and what building and checking the
#                                 Debian package needs (ci/deb-test.sh):
#                                 dpkg-dev, lintian, man-db
#
# Idempotent and quiet: when everything is there, neither apt nor npm is
# touched.  Runs as root (CI has no stdin); `sudo` is used when not root.
# Playwright never downloads a browser: the suite drives /usr/bin/chromium.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
want_core=1
want_browser=1
want_deb=0
case ${1:-} in
    '') ;;
    --core) want_browser=0 ;;
    --browser) want_core=0 ;;
    --deb) want_browser=0; want_deb=1 ;;
    *) echo "usage: $0 [--core|--browser|--deb]" >&2; exit 2 ;;
esac

say() { echo "install-deps: $*"; }

pkgs=()
if [ "$want_core" = 1 ]; then
    pkgs+=(
        nginx nginx-dev
        libpq-dev postgresql-15 postgresql-client-15
        postgresql-15-plpgsql-check   # the e2e sql suite checks every PL/pgSQL function
        libcurl4-openssl-dev libjansson-dev libjwt-dev libssl-dev
        libcriterion-dev libmicrohttpd-dev
        libcsv-dev   # payments-reconcile reads settlement reports with it
        pkg-config gcc libc6-dev make clang libclang-rt-14-dev
        wrk openssl curl
        prometheus   # promtool: /metrics and the alerting rules are checked
        pgbouncer    # the e2e suite runs a gateway through it (transaction pooling)
        redis-server libhiredis-dev   # limit zones shared by several gateways
        locales      # de_DE.UTF-8, below
        valgrind     # make bench-instructions counts the SQL's instructions with callgrind
        strace       # the e2e psp suite watches a worker open no CA file
    )
fi
if [ "$want_core" = 1 ] || [ "$want_browser" = 1 ]; then
    # Node: the e2e suite's notification receiver (tests/notify_receiver)
    # and the browser suite.  Debian's packages, except that a machine whose
    # Node comes from elsewhere (with its own npm, which Debian's npm package
    # would fight) keeps it.
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
[ "$want_deb" = 0 ] || pkgs+=(dpkg-dev lintian man-db)
[ "$want_browser" = 0 ] || pkgs+=(chromium)

missing_pkgs() {
    local p st
    for p in "${pkgs[@]}"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$st" = installed ] || echo "$p"
    done
}

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

# apt-get, its chatter in a file that is shown only when it fails.
apt_log=$(mktemp /tmp/install-deps.XXXXXX)
policy=/usr/sbin/policy-rc.d
own_policy=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    rm -f "$apt_log"
    [ "$own_policy" -eq 0 ] || "${sudo[@]}" rm -f "$policy"
}
trap cleanup EXIT

apt_try() {
    : >"$apt_log"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get "$@" >>"$apt_log" 2>&1
}
apt_q() {
    apt_try "$@" && return 0
    echo "install-deps: apt-get $1 failed:" >&2
    tail -n 30 "$apt_log" >&2
    return 1
}

install_missing() {
    # We run our own nginx, PostgreSQL and Redis on loopback ports chosen at
    # run time: Debian's default nginx and Redis services and "main" cluster
    # are neither
    # needed nor wanted.  policy-rc.d stops the packages' postinst from
    # starting services (exit 101 = "action forbidden"); a policy file we did
    # not write is kept.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        own_policy=1
    fi
    # No default cluster: postgresql-common reads createcluster.d/*.conf
    # before the postgresql-15 postinst creates "main".
    "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' |
        "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/ngx-payments.conf >/dev/null

    local install=(install -y -q --no-install-recommends
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@")
    # Package lists fetched within the hour (say by --core just before) are
    # used as they are; otherwise, or when the install fails on them, update.
    if find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | grep -q .; then
        apt_try "${install[@]}" || { apt_q update && apt_q "${install[@]}"; }
    else
        apt_q update && apt_q "${install[@]}"
    fi || return 1

    # Where a service manager exists and started them anyway, stop and
    # disable them: nothing of ours talks to port 80 or 5432.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        for svc in nginx postgresql redis-server; do
            "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
        done
    fi
}

mapfile -t missing < <(missing_pkgs)
if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#pkgs[@]} packages present"
else
    say "installing ${missing[*]}"
    install_missing "${missing[@]}" || true
    mapfile -t still < <(missing_pkgs)
    if [ ${#still[@]} -ne 0 ]; then
        echo "install-deps: still missing: ${still[*]}" >&2
        exit 1
    fi
    say "packages installed"
fi

# --- A locale for PostgreSQL's translated messages ------------------------------
# The statements suite (tests/e2e/test_statements.c) has the gateway's
# connections speak German (lc_messages = 'de_DE.UTF-8'): the server can only
# switch to a locale the system has, so it is generated here (in
# /etc/locale.gen, so that a later locale-gen keeps it).
if [ "$want_core" = 1 ] && ! locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then
    say "generating the locale de_DE.UTF-8"
    if grep -q '^# *de_DE\.UTF-8 UTF-8' /etc/locale.gen; then
        "${sudo[@]}" sed -i 's/^# *\(de_DE\.UTF-8 UTF-8\)/\1/' /etc/locale.gen
    elif ! grep -q '^de_DE\.UTF-8 UTF-8' /etc/locale.gen; then
        echo 'de_DE.UTF-8 UTF-8' | "${sudo[@]}" tee -a /etc/locale.gen >/dev/null
    fi
    "${sudo[@]}" locale-gen >/dev/null
    locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8' ||
        { echo "install-deps: the locale de_DE.UTF-8 could not be generated" >&2; exit 1; }
fi

# --- Node packages --------------------------------------------------------------
# npm_locked DIR PACKAGE: exactly the version DIR/package-lock.json pins, by
# npm ci --ignore-scripts (no install script runs, nothing else is
# downloaded).  Skipped when DIR/node_modules already holds it, so a machine
# with a previous install needs no registry.
npm_locked() {
    local here=$1 pkg=$2 want have major
    command -v node >/dev/null 2>&1 || { echo "install-deps: no node" >&2; exit 1; }
    command -v npm >/dev/null 2>&1 || { echo "install-deps: no npm" >&2; exit 1; }
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 18 ]; then
        echo "install-deps: node $(node --version) is too old: $pkg needs 18 or later" >&2
        exit 1
    fi
    want=$(node -p 'require(process.argv[1]).packages["node_modules/" + process.argv[2]].version' \
        "$here/package-lock.json" "$pkg")
    have=$(node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
        "$here/node_modules/$pkg/package.json" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then
        say "$pkg $have present"
        return 0
    fi
    say "npm ci: $pkg $want into ${here#"$top"/}/node_modules"
    : >"$apt_log"
    if ! (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts \
            --no-audit --no-fund --loglevel=error >>"$apt_log" 2>&1); then
        echo "install-deps: npm ci failed:" >&2
        tail -n 30 "$apt_log" >&2
        exit 1
    fi
    have=$(node -p 'require(process.argv[1]).version' "$here/node_modules/$pkg/package.json")
    [ "$have" = "$want" ] || { echo "install-deps: npm installed $pkg $have, not $want" >&2; exit 1; }
    say "$pkg $have installed"
}

# the e2e suite's notification receiver: standardwebhooks, its verifier
[ "$want_core" = 0 ] || npm_locked "$top/tests/notify_receiver" standardwebhooks

[ "$want_browser" = 1 ] || exit 0

# --- the browser suite's Node side ---------------------------------------------
# playwright-core only (it has no install script and downloads no browser).
[ -x /usr/bin/chromium ] || { echo "install-deps: /usr/bin/chromium is missing" >&2; exit 1; }
npm_locked "$top/tests/browser" playwright-core
