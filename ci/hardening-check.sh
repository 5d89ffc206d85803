#!/usr/bin/env bash
# Every program and library we ship built as Debian hardens its own (as
# lintian's hardening tags and Debian's hardening-check ask): a stack
# protector, fortified libc calls, relocations read-only (RELRO) and bound
# at load (BIND_NOW), executables position-independent.  nginx's default
# build of a module has none of these: the Makefile's HARDEN flags and
# ci/build-module.sh's --with-cc-opt give them.
#
#   ci/hardening-check.sh [FILE...]   (default: what the packages ship, in
#                                      BUILD, default build/)
set -euo pipefail

build=${BUILD:-build}
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    files=("$build/nginx/ngx_http_payments_module.so" "$build/payments-reconcile"
           "$build/payments-secrets" "$build/payments-events-verify"
           "$build/pkg/ngx-payments-mock-psp")
fi

bad=0
for f in "${files[@]}"; do
    if [ ! -f "$f" ]; then
        echo "hardening-check: $f is missing (make module reconcile secrets events-verify $build/pkg/ngx-payments-mock-psp)" >&2
        bad=1
        continue
    fi
    missing=()
    readelf -lW "$f" | grep -q 'GNU_RELRO' || missing+=("RELRO")
    readelf -dW "$f" | grep -qE '\(BIND_NOW\)|Flags:.* NOW' || missing+=("BIND_NOW")
    syms=$(readelf --dyn-syms -W "$f")
    grep -q ' __stack_chk_fail' <<<"$syms" || missing+=("stack protector (__stack_chk_fail)")
    grep -qE ' __[a-z0-9_]+_chk(@| |$)' <<<"$syms" || missing+=("_FORTIFY_SOURCE (no __*_chk call)")
    if [[ $f != *.so ]]; then
        readelf -hW "$f" | grep -qE 'Type:[[:space:]]+DYN' || missing+=("PIE")
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        list=$(printf '%s, ' "${missing[@]}")
        echo "hardening-check: $f lacks: ${list%, }" >&2
        bad=1
    else
        echo "hardening-check: $f: RELRO, BIND_NOW, stack protector, fortified$([[ $f == *.so ]] || echo ', PIE')"
    fi
done
exit "$bad"
