#!/usr/bin/env bash
# Builds build/ngx-payments-testenv_<version>_all.deb with plain dpkg-deb:
# a shop's test environment in one command (doc/TESTING.md).
#
#   /usr/bin/payments-testenv                   (testenv/payments-testenv)
#   /usr/share/ngx-payments-testenv/            what it runs: services-lib.sh
#       (shared with ci/services.sh), nginx.conf.in, pg.sh (ci/pg.sh),
#       receiver.js (tests/notify_receiver/receiver.js, the endpoint)
#   /usr/share/man/man1/payments-testenv.1.gz
#   /usr/share/doc/ngx-payments-testenv/{copyright,changelog.Debian.gz,
#       TESTING.md, examples/shop.test.js}
#
# It depends on the gateway's package and the mock PSP's of the same
# version (make deb, make deb-mock).  Same version and changelog as the
# gateway's package.  Usage: packaging/build-testenv-deb.sh [BUILD]
# (`make deb-testenv`).  Prints the path of the .deb.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$top/$build ;; esac
pkg=ngx-payments-testenv
src=$top/packaging/testenv

die() { echo "build-testenv-deb: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-parsechangelog; do
    command -v "$tool" >/dev/null || die "$tool is missing: ci/install-deps.sh --deb"
done

upstream=$(tr -d ' \n' <"$top/VERSION")
[[ $upstream =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "VERSION: '$upstream' is not a version"
version=$upstream-${DEB_REVISION:-1}
changelog=$top/packaging/debian/changelog
logged=$(dpkg-parsechangelog -l "$changelog" -S Version)
[ "$logged" = "$version" ] ||
    die "packaging/debian/changelog's first entry is $logged, not $version: add an entry"

stage=$build/deb-testenv/$pkg
share=$stage/usr/share/$pkg
doc=$stage/usr/share/doc/$pkg
rm -rf "$build/deb-testenv"
umask 022
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/man/man1" "$share" \
    "$doc/examples" "$stage/usr/share/lintian/overrides"

# Debian policy wants a fixed interpreter, not /usr/bin/env.
sed '1s|^#!/usr/bin/env bash$|#!/bin/bash|' "$top/testenv/payments-testenv" \
    >"$stage/usr/bin/payments-testenv"
chmod 755 "$stage/usr/bin/payments-testenv"
install -m 644 "$top/testenv/services-lib.sh" "$top/testenv/nginx.conf.in" "$share/"
sed '1s|^#!/usr/bin/env bash$|#!/bin/bash|' "$top/ci/pg.sh" >"$share/pg.sh"
chmod 755 "$share/pg.sh"
# run with node by payments-testenv, never on its own: no #! line
sed '1{/^#!/d}' "$top/tests/notify_receiver/receiver.js" >"$share/receiver.js"
chmod 644 "$share/receiver.js"
gzip -9n <"$top/packaging/man/payments-testenv.1" >"$stage/usr/share/man/man1/payments-testenv.1.gz"

install -m 644 "$src/copyright" "$doc/"
gzip -9n <"$changelog" >"$doc/changelog.Debian.gz"
install -m 644 "$top/doc/TESTING.md" "$doc/TESTING.md"
install -m 644 "$top/testenv/example/shop.test.js" "$doc/examples/"
install -m 644 "$src/lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|g" -e "s|@INSTALLED_SIZE@|$size|" \
    "$src/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

epoch=$(dpkg-parsechangelog -l "$changelog" -S Timestamp)
find "$stage" -exec touch -h -d "@$epoch" {} +

out=$build/${pkg}_${version}_all.deb
rm -f "$build/${pkg}"_*.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
