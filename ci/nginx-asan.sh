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
#   NGX_ASAN_LEAKS   1: LeakSanitizer at each process's exit (default 0;
#                    ci/e2e.sh's 1)
#   NGX_ASAN_KEEP    with NGX_ASAN_LEAKS=1, a library preloaded after the
#                    runtimes whose dlclose() keeps libraries mapped
#                    (keep_modules.so): a worker unloads the module before
#                    it exits, and what its libraries' data still held
#                    would be reported as leaked, with stacks unnamed;
#                    with NGX_ASAN_ALLOCATED (a directory) it also makes
#                    SIGRTMIN+1 write the bytes a process holds there
#   NGX_ASAN_OPTIONS more ASAN_OPTIONS (fast_unwind_on_malloc=0: whole
#                    stacks through libraries built without frame pointers)
#
# A test that preloads a library of its own into nginx (slow_dns.so) keeps
# it, after the runtimes.
# LeakSanitizer looks at the processes that serve (the master and its
# workers), not at a test of the configuration or a signal (-t, -T, -s,
# -v, -V, -h): their main() returns, and with it the start-up cycle it
# kept on its stack, which nginx never frees (1,024 bytes of pool
# reported from ngx_memalign each time).
leaks=${NGX_ASAN_LEAKS:-0}
for a in "$@"; do
    case $a in
        -*[tTsvVh?]*) leaks=0 ;;
    esac
done
keep=
if [ "$leaks" = 1 ] && [ -n "${NGX_ASAN_KEEP:-}" ]; then
    keep=" $NGX_ASAN_KEEP"
fi
LD_PRELOAD="$NGX_ASAN_LIBS$keep${LD_PRELOAD:+ $LD_PRELOAD}"
ASAN_OPTIONS="detect_leaks=$leaks:log_path=$NGX_ASAN_LOGS/asan${NGX_ASAN_OPTIONS:+:$NGX_ASAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1:log_path=$NGX_ASAN_LOGS/ubsan"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec "$NGX_ASAN_NGINX" "$@"
