#!/bin/sh
# nginx with the module built with AddressSanitizer and UBSan (make
# e2e-asan): ci/e2e.sh (E2E_ASAN=1) puts this first on the suite's PATH as
# "nginx", so that every nginx the suite and its tests start (the lanes'
# and each test's own gateways) loads the sanitizers' runtimes first, as a
# sanitized shared object needs when the program itself is not.  nginx's
# workers are forks of its master: they keep the runtimes and options.
#
#   NGX_ASAN_NGINX   the real nginx (its path)
#   NGX_ASAN_LIBS    the runtimes to preload, first ("libasan.so libubsan.so")
#   NGX_ASAN_LOGS    a directory every worker user can write: each report is
#                    a file there (log_path), which ci/e2e.sh reports
#   NGX_ASAN_LEAKS   1: LeakSanitizer at each process's exit (default 0)
#   NGX_ASAN_OPTIONS more ASAN_OPTIONS (fast_unwind_on_malloc=0: whole
#                    stacks through libraries built without frame pointers)
#
# A test that preloads a library of its own into nginx (slow_dns.so) keeps
# it, after the runtimes.
LD_PRELOAD="$NGX_ASAN_LIBS${LD_PRELOAD:+ $LD_PRELOAD}"
ASAN_OPTIONS="detect_leaks=${NGX_ASAN_LEAKS:-0}:log_path=$NGX_ASAN_LOGS/asan${NGX_ASAN_OPTIONS:+:$NGX_ASAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1:log_path=$NGX_ASAN_LOGS/ubsan"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec "$NGX_ASAN_NGINX" "$@"
