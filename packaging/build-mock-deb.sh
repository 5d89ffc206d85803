#!/usr/bin/env bash
# Builds build/ngx-payments-mock-psp_<version>_<arch>.deb with plain
# dpkg-deb: the mock PSP for shops' and gateways' test suites.
#
#   /usr/bin/ngx-payments-mock-psp            (make deb-mock: tests/mock_psp,
#       built to read Adyen's documents from the package's place)
#   /usr/share/ngx-payments-mock-psp/specs/   Adyen's OpenAPI documents
#   /usr/share/man/man1/ngx-payments-mock-psp.1.gz
#   /lib/systemd/system/ngx-payments-mock-psp.service   (not enabled)
#   /etc/default/ngx-payments-mock-psp        its flags (a conffile)
#   /usr/share/doc/ngx-payments-mock-psp/{copyright,changelog.Debian.gz,
#       TESTING.md (doc/MOCK_PSP.md), reference.md.gz (the full reference,
#       tests/mock_psp/README.md)}
#
# Same version and changelog as the gateway's package (one source tree).
# Usage: packaging/build-mock-deb.sh [BUILD]   (`make deb-mock` builds the
# binary first).  Prints the path of the .deb.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$top/$build ;; esac
pkg=ngx-payments-mock-psp
src=$top/packaging/mock-psp

die() { echo "build-mock-deb: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog; do
    command -v "$tool" >/dev/null || die "$tool is missing: ci/install-deps.sh --deb"
done
bin=$build/pkg/$pkg
[ -f "$bin" ] || die "$bin is missing: make deb-mock"

upstream=$(tr -d ' \n' <"$top/VERSION")
[[ $upstream =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "VERSION: '$upstream' is not a version"
version=$upstream-${DEB_REVISION:-1}
changelog=$top/packaging/debian/changelog
logged=$(dpkg-parsechangelog -l "$changelog" -S Version)
[ "$logged" = "$version" ] ||
    die "packaging/debian/changelog's first entry is $logged, not $version: add an entry"
arch=$(dpkg --print-architecture)

stage=$build/deb-mock/$pkg
rm -rf "$build/deb-mock"
umask 022
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/man/man1" \
    "$stage/usr/share/$pkg/specs" "$stage/usr/share/doc/$pkg" \
    "$stage/lib/systemd/system" "$stage/etc/default"

install -m 755 "$bin" "$stage/usr/bin/$pkg"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$stage/usr/bin/$pkg"
gzip -9n <"$top/packaging/man/$pkg.1" >"$stage/usr/share/man/man1/$pkg.1.gz"
install -m 644 "$top"/tests/mock_psp/specs/*.json "$stage/usr/share/$pkg/specs/"
install -m 644 "$top/packaging/systemd/$pkg.service" "$stage/lib/systemd/system/"
install -m 644 "$src/default" "$stage/etc/default/$pkg"

install -m 644 "$src/copyright" "$stage/usr/share/doc/$pkg/"
gzip -9n <"$changelog" >"$stage/usr/share/doc/$pkg/changelog.Debian.gz"
install -m 644 "$top/doc/MOCK_PSP.md" "$stage/usr/share/doc/$pkg/TESTING.md"
gzip -9n <"$top/tests/mock_psp/README.md" >"$stage/usr/share/doc/$pkg/reference.md.gz"

install -d "$stage/usr/share/lintian/overrides"
install -m 644 "$src/lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"

install -m 755 "$src/postinst" "$src/prerm" "$src/postrm" "$stage/DEBIAN/"
install -m 644 "$src/conffiles" "$stage/DEBIAN/"

shl=$build/deb-mock/shlibs
mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$shl/debian/control"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O "$stage/usr/bin/$pkg" 2>"$shl/warnings" |
    sed -n 's/^shlibs:Depends=//p') ||
    { cat "$shl/warnings" >&2; die "dpkg-shlibdeps failed"; }
[ -n "$shlibs" ] || { cat "$shl/warnings" >&2; die "dpkg-shlibdeps found no libraries"; }
rm -rf "$shl"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" \
    -e "s|@SHLIBS@|$shlibs|" -e "s|@INSTALLED_SIZE@|$size|" \
    "$src/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find usr lib -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

epoch=$(dpkg-parsechangelog -l "$changelog" -S Timestamp)
find "$stage" -exec touch -h -d "@$epoch" {} +

out=$build/${pkg}_${version}_${arch}.deb
rm -f "$build/${pkg}"_*.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
