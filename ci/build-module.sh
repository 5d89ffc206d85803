#!/usr/bin/env bash
# Builds the dynamic module against Debian's nginx-dev (1.22, --with-compat).
# Usage: ci/build-module.sh OUTDIR [CORE_ARCHIVE]   (BUILD_MODULE_DRY=1:
# configure and a dry run of make only)
#
# With CORE_ARCHIVE (build/libpayments.a, what `make core` builds and the
# unit tests link), the module links that archive: what ships is what the
# core's tests tested.  Without it, config compiles src/*.c itself.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
core_lib=
if [ -n "${2:-}" ]; then
    core_lib=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    [ -f "$core_lib" ] || { echo "build-module: $2 is missing (make core)" >&2; exit 1; }
fi
export PAY_CORE_LIB=$core_lib
src=/usr/share/nginx/src
[ -d "$src" ] || { echo "nginx-dev is not installed: run ci/install-deps.sh" >&2; exit 1; }
# configure writes into its tree: work on a private copy of Debian's.
tree="$out/nginx-src"
[ -f "$tree/configure" ] || { rm -rf "$tree"; cp -r "$src" "$tree"; }
# Reconfigure when the list of sources changes (config globs them), or the
# version, the migrations or this script.
# config also writes the version and the schema (VERSION, the last migration)
# PAY_CC_OPT, PAY_LD_OPT: the compiler's and linker's options for the
# module (the Makefile's: -O2 and Debian's hardening, as Debian builds its
# nginx; nginx's own default is -O and none)
cc_opt=${PAY_CC_OPT:--O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2}
ld_opt=${PAY_LD_OPT:--Wl,-z,relro -Wl,-z,now}
srclist=$( (cd "$top" && ls config ngx_payments_module/*.[ch] src/*.c include/payments/*.h sql/migrations; cat VERSION ci/build-module.sh; echo "$core_lib $cc_opt $ld_opt") | md5sum)
# The build directory is given relative to the tree (../objs, that is
# $out/objs): nginx's auto/make turns a ".S" anywhere in an object's path
# into ".o" (its sed is not anchored at the name's end), so an absolute one
# under a directory named like /tmp/ci.SxXXXX (mktemp's, one time in 62)
# made object paths that no rule builds.
if [ ! -f "$out/objs/Makefile" ] || [ "$srclist" != "$(cat "$out/.srclist" 2>/dev/null)" ]; then
    (cd "$tree" && bash -c '. ./conf_flags; ./configure "${NGX_CONF_FLAGS[@]}" --with-compat \
        --with-cc-opt="$2" --with-ld-opt="$3" \
        --add-dynamic-module="$0" --builddir="$1"' "$top" ../objs "$cc_opt" "$ld_opt") \
        >"$out/configure.log" 2>&1 \
        || { tail -30 "$out/configure.log" >&2; exit 1; }
    echo "$srclist" > "$out/.srclist"
fi
# BUILD_MODULE_DRY=1: configured only, and make asked what it would do
# (every object must have its rule: ci/build-module-test.sh)
if [ -n "${BUILD_MODULE_DRY:-}" ]; then
    make -n -f "$out/objs/Makefile" -C "$tree" modules >/dev/null
    exit
fi
# nginx's Makefile does not know the archive: relink every time
rm -f "$out/objs/ngx_http_payments_module.so"
# the glue's files compile in parallel (MODULE_JOBS, default: every core)
make -s -j"${MODULE_JOBS:-$(nproc)}" -f "$out/objs/Makefile" -C "$tree" modules
# a new file put in place (rename), never the old one overwritten: an nginx
# that has the old one mapped would crash on the bytes changing under it
cp "$out/objs/ngx_http_payments_module.so" "$out/.ngx_http_payments_module.so.new"
mv -f "$out/.ngx_http_payments_module.so.new" "$out/ngx_http_payments_module.so"
