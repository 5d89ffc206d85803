#!/usr/bin/env bash
# Builds build/libnginx-mod-http-payments_<version>_<arch>.deb with plain
# dpkg-deb, laid out as Debian's own nginx module packages are (dh_nginx):
#
#   /usr/lib/nginx/modules/ngx_http_payments_module.so   (make module, stripped)
#   /usr/share/nginx/modules-available/mod-http-payments.conf   (load_module)
#   /etc/nginx/modules-enabled/50-mod-http-payments.conf  symlink, made by
#       postinst, renamed to .removed by prerm, deleted on purge
#   /usr/bin/payments-migrate, /usr/bin/payments-merchant,
#   /usr/bin/payments-events, /usr/bin/payments-reconcile (make reconcile,
#   stripped), their man pages; /usr/lib/ngx-payments/payments-events-verify
#   (make events-verify, stripped: what payments-events verify runs)
#   /usr/share/ngx-payments/sql, /usr/share/ngx-payments/html
#   /usr/share/doc/libnginx-mod-http-payments/{copyright,changelog.Debian.gz,
#       examples/nginx/conf.d/payments.conf and
#       examples/nginx/sites-available/payments (the production example in
#       Debian's layout, copied to /etc/nginx by the install checklist),
#       examples/payments-alerts.yml and its tests,
#       examples/payments-dashboard.json}
#
# Depends: the nginx ABI the module was compiled against (nginx-dev's
# libnginx-mod.abisubstvars, as dh_nginx reads it) and the libraries
# dpkg-shlibdeps finds for the .so.  The version is VERSION's, plus
# "-DEB_REVISION" (default 1); packaging/debian/changelog's first entry must
# carry the same.
#
# Usage: packaging/build-deb.sh [BUILD]   (run `make module` first; `make deb`
# does both).  Prints the path of the .deb.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$top/$build ;; esac
pkg=libnginx-mod-http-payments
deb=$top/packaging/debian

die() { echo "build-deb: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog; do
    command -v "$tool" >/dev/null || die "$tool is missing: ci/install-deps.sh --deb"
done

module=$build/nginx/ngx_http_payments_module.so
[ -f "$module" ] || die "$module is missing: make module"
reconcile=$build/payments-reconcile
[ -f "$reconcile" ] || die "$reconcile is missing: make reconcile"
secrets=$build/payments-secrets
[ -f "$secrets" ] || die "$secrets is missing: make secrets"
verifier=$build/payments-events-verify
[ -f "$verifier" ] || die "$verifier is missing: make events-verify"

upstream=$(tr -d ' \n' <"$top/VERSION")
[[ $upstream =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "VERSION: '$upstream' is not a version"
version=$upstream-${DEB_REVISION:-1}
logged=$(dpkg-parsechangelog -l "$deb/changelog" -S Version)
[ "$logged" = "$version" ] ||
    die "packaging/debian/changelog's first entry is $logged, not $version: add an entry"
arch=$(dpkg --print-architecture)

# The ABI of the nginx the module was built against: nginx-dev's file, or
# else what the installed nginx provides.
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars 2>/dev/null || true)
if [ -z "$abi" ]; then
    abi=$(dpkg-query -W -f='${Provides}' nginx 2>/dev/null | tr ',' '\n' |
        sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p' | head -1)
fi
[ -n "$abi" ] || die "cannot tell the nginx ABI (is nginx-dev installed?)"

stage=$build/deb/$pkg
rm -rf "$build/deb"
umask 022
install -d "$stage/DEBIAN" \
    "$stage/usr/lib/nginx/modules" \
    "$stage/usr/share/nginx/modules-available" \
    "$stage/usr/bin" \
    "$stage/usr/lib/ngx-payments" \
    "$stage/usr/share/man/man1" \
    "$stage/usr/share/ngx-payments/sql" \
    "$stage/usr/share/ngx-payments/html" \
    "$stage/usr/share/doc/$pkg/examples"

# The module, stripped as dh_strip does (its debug symbols stay in build/).
install -m 644 "$module" "$stage/usr/lib/nginx/modules/"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$stage/usr/lib/nginx/modules/ngx_http_payments_module.so"
install -m 644 "$deb/mod-http-payments.conf" "$stage/usr/share/nginx/modules-available/"

# The tools; Debian policy wants a fixed interpreter, not /usr/bin/env.
for tool in payments-migrate payments-merchant payments-events; do
    sed '1s|^#!/usr/bin/env bash$|#!/bin/bash|' "$top/bin/$tool" >"$stage/usr/bin/$tool"
    chmod 755 "$stage/usr/bin/$tool"
    gzip -9n <"$top/packaging/man/$tool.1" >"$stage/usr/share/man/man1/$tool.1.gz"
done
# payments-reconcile is a C program (bin/payments-reconcile.c)
install -m 755 "$reconcile" "$stage/usr/bin/payments-reconcile"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$stage/usr/bin/payments-reconcile"
gzip -9n <"$top/packaging/man/payments-reconcile.1" \
    >"$stage/usr/share/man/man1/payments-reconcile.1.gz"
# payments-secrets is a C program too (bin/payments-secrets.c)
install -m 755 "$secrets" "$stage/usr/bin/payments-secrets"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$stage/usr/bin/payments-secrets"
gzip -9n <"$top/packaging/man/payments-secrets.1" \
    >"$stage/usr/share/man/man1/payments-secrets.1.gz"
# payments-events verify's C half (bin/payments-events-verify.c), which
# payments-events finds beside it in /usr/lib/ngx-payments
install -m 755 "$verifier" "$stage/usr/lib/ngx-payments/payments-events-verify"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$stage/usr/lib/ngx-payments/payments-events-verify"
install -m 644 "$top/packaging/systemd/payments-reconcile@.service" \
    "$top/packaging/systemd/payments-reconcile@.timer" "$stage/usr/share/doc/$pkg/examples/"
install -d "$stage/usr/share/ngx-payments/sql/migrations" "$stage/usr/share/ngx-payments/sql/functions"
install -m 644 "$top"/sql/migrations/*.sql "$top/sql/migrations/history.txt" \
    "$stage/usr/share/ngx-payments/sql/migrations/"
install -m 644 "$top"/sql/functions/*.sql "$stage/usr/share/ngx-payments/sql/functions/"
install -m 644 "$top/sql/schema.sql" "$stage/usr/share/ngx-payments/sql/"
# html/: what payments_html loads (its README is for developers)
find "$top/html" -maxdepth 1 -type f ! -name README.md -exec install -m 644 {} \
    "$stage/usr/share/ngx-payments/html/" \;

install -m 644 "$deb/copyright" "$stage/usr/share/doc/$pkg/"
gzip -9n <"$deb/changelog" >"$stage/usr/share/doc/$pkg/changelog.Debian.gz"
gzip -9n <"$deb/NEWS" >"$stage/usr/share/doc/$pkg/NEWS.Debian.gz"
# the example in Debian's layout, at the paths it is copied to under /etc/nginx
install -d "$stage/usr/share/doc/$pkg/examples/nginx/conf.d" \
    "$stage/usr/share/doc/$pkg/examples/nginx/sites-available"
install -m 644 "$top/conf/nginx/conf.d/payments.conf" \
    "$stage/usr/share/doc/$pkg/examples/nginx/conf.d/"
install -m 644 "$top/conf/nginx/sites-available/payments" \
    "$stage/usr/share/doc/$pkg/examples/nginx/sites-available/"
# Prometheus' alerting rules with their unit tests, and a Grafana dashboard
install -m 644 "$top/conf/prometheus/payments-alerts.yml" \
    "$top/conf/prometheus/payments-alerts.test.yml" \
    "$top/conf/grafana/payments-dashboard.json" "$stage/usr/share/doc/$pkg/examples/"
install -d "$stage/usr/share/lintian/overrides"
install -m 644 "$deb/lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"

install -m 755 "$deb/postinst" "$deb/prerm" "$deb/postrm" "$stage/DEBIAN/"

# dpkg-shlibdeps reads debian/control of its working directory.
shl=$build/deb/shlibs
mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$shl/debian/control"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O \
    "$stage/usr/lib/nginx/modules/ngx_http_payments_module.so" \
    "$stage/usr/bin/payments-reconcile" "$stage/usr/bin/payments-secrets" \
    "$stage/usr/lib/ngx-payments/payments-events-verify" \
    2>"$shl/warnings" |
    sed -n 's/^shlibs:Depends=//p') ||
    { cat "$shl/warnings" >&2; die "dpkg-shlibdeps failed"; }
[ -n "$shlibs" ] || { cat "$shl/warnings" >&2; die "dpkg-shlibdeps found no libraries"; }
rm -rf "$shl"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@NGINX_ABI@|$abi|" \
    -e "s|@SHLIBS@|$shlibs|" -e "s|@INSTALLED_SIZE@|$size|" \
    "$deb/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

# Reproducible: every mtime is the changelog's date.
epoch=$(dpkg-parsechangelog -l "$deb/changelog" -S Timestamp)
find "$stage" -exec touch -h -d "@$epoch" {} +

out=$build/${pkg}_${version}_${arch}.deb
rm -f "$build/${pkg}"_*.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
