#!/usr/bin/env bash
# Installs what the build and the test suites need on Debian bookworm.
# Idempotent: when every package is already installed, apt is not touched.
# Runs as root (CI has no stdin); `sudo` is used when not root.
set -euo pipefail

pkgs=(
    nginx nginx-dev
    libpq-dev postgresql-15 postgresql-client-15
    libcurl4-openssl-dev libjansson-dev libjwt-dev libssl-dev
    libcriterion-dev libmicrohttpd-dev
    pkg-config gcc libc6-dev make clang libclang-rt-14-dev
    wrk openssl curl
)

# The browser suite's tools, by command: a machine whose Node comes from
# elsewhere (with its own npm, which Debian's npm package conflicts with)
# keeps it.
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#pkgs[@]} packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive

# We run our own nginx and PostgreSQL on loopback ports chosen at run time:
# Debian's default nginx service and "main" cluster are neither needed nor
# wanted.  policy-rc.d stops the packages' postinst from starting services
# (exit 101 = "action forbidden"); a policy file we did not write is kept.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
fi
cleanup() { [ "$own_policy" -eq 0 ] || "${sudo[@]}" rm -f "$policy"; }
trap cleanup EXIT

# No default cluster: postgresql-common reads createcluster.d/*.conf before
# the postgresql-15 postinst creates "main".
"${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' |
    "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/ngx-payments.conf >/dev/null

"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"

# Where a service manager exists and started them anyway, stop and disable
# them: nothing of ours talks to port 80 or 5432.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for svc in nginx postgresql; do
        "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
fi

still=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
    echo "install-deps: still missing: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: done"
