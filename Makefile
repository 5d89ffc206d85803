# ngx_payments: one entry point.  `make test` is what CI runs.
SHELL    := /bin/bash
BUILD    ?= build
PKGS      = libpq libcurl jansson libjwt libcrypto hiredis
# Evaluated on first use, once: `make demo` and `make deps` install the
# packages before anything is compiled, so they must not ask pkg-config first.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $$(PKGS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $$(PKGS)))$(PKG_LIBS)
# Debian's libcsv (no pkg-config file): the settlement report parser
CSV_LIBS   = -lcsv

CC       ?= cc
OPT      ?= -O2 -g
WARN      = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2
# Debian's hardening, as its nginx and its modules are built (dpkg-buildflags
# with hardening=+all; gcc's PIE is Debian's default): stack protector,
# fortified libc calls, relocations read-only and bound at load.  The
# module gets the same (ci/build-module.sh); ci/hardening-check.sh checks
# every program we ship.  The sanitizer builds undo _FORTIFY_SOURCE (ASan
# does not see the checked copies of memcpy and friends).
HARDEN    = -fstack-protector-strong -D_FORTIFY_SOURCE=2
HARDEN_LD = -Wl,-z,relro -Wl,-z,now
CFLAGS    = -std=gnu11 -D_GNU_SOURCE $(OPT) $(HARDEN) $(HARDEN_LD) $(WARN) -Iinclude $(PKG_CFLAGS)
SAN       = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
            -U_FORTIFY_SOURCE

# A change of the compiler's flags remakes what they build (make sees only
# the sources' times): the flags are kept in a file rewritten when they
# differ, a prerequisite of every object and program compiled with CFLAGS.
FLAGS_STAMP = $(BUILD)/.cflags

CORE_SRC  = $(wildcard src/*.c)
CORE_HDR  = $(wildcard include/payments/*.h) $(wildcard src/*.h)
CORE_OBJ  = $(CORE_SRC:src/%.c=$(BUILD)/core/%.o)
ASAN_OBJ  = $(CORE_SRC:src/%.c=$(BUILD)/core-asan/%.o)
UNIT_SRC  = $(wildcard tests/unit/*.c)
# Every test program is linked from one object per source file, so that
# `make -j2` compiles them two at a time and a change recompiles one file.
UNIT_OBJ      = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%.o)
UNIT_ASAN_OBJ = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit-asan/%.o)
# the harness (harness.c, the core, and harness_<area>.c) and the test files
E2E_SRC   = $(filter-out tests/e2e/slow_dns.c tests/e2e/keep_modules.c,$(wildcard tests/e2e/*.c))
E2E_OBJ   = $(E2E_SRC:tests/e2e/%.c=$(BUILD)/e2e/%.o)
# The mock's own tests: a client, a webhook receiver, the dialects' helpers
# (mock_*.c) and a test file per area (test_mock_*.c)
MOCK_TEST_SRC = $(wildcard tests/mock_psp/test_mock_*.c) tests/mock_psp/mock_client.c \
                tests/mock_psp/mock_receiver.c tests/mock_psp/mock_dialects.c
MOCK_TEST_HDR = tests/mock_psp/mock_client.h tests/mock_psp/mock_receiver.h \
                tests/mock_psp/mock_dialects.h
MOCK_SRC  = $(filter-out $(MOCK_TEST_SRC),$(wildcard tests/mock_psp/*.c))
# Adyen's OpenAPI documents the mock checks Adyen requests against
MOCK_DEFS = -DMOCK_SPEC_DIR='"$(CURDIR)/tests/mock_psp/specs"'
MOCK_HDR  = $(filter-out $(MOCK_TEST_HDR),$(wildcard tests/mock_psp/*.h))
MOCK_OBJ      = $(MOCK_SRC:tests/mock_psp/%.c=$(BUILD)/mock/%.o)
MOCK_ASAN_OBJ = $(MOCK_SRC:tests/mock_psp/%.c=$(BUILD)/mock-asan/%.o)
FUZZ_SRC  = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# the core once for every harness: instrumented for coverage and sanitizers,
# libFuzzer's main linked only into the harnesses
FUZZ_CORE_OBJ = $(CORE_SRC:src/%.c=$(BUILD)/core-fuzz/%.o)
FUZZ_CFLAGS   = -std=gnu11 -D_GNU_SOURCE -g -O1 -Iinclude $(PKG_CFLAGS)
MODULE    = $(BUILD)/nginx/ngx_http_payments_module.so
FUZZ_SECONDS ?= 20

.PHONY: all core reconcile secrets events-verify unit unit-asan mock mock-asan module e2e e2e-shards e2e-debug e2e-asan e2e-asan-deps e2e-deps fuzz fuzz-smoke test demo bench bench-counts bench-hook-counts bench-instructions bench-worker-instructions bench-guards bench-shards bench-limits bench-reconcile bench-notify clean deps demo-shop browser deb deb-mock deb-testenv chaos money-check money-check-known notify-receiver-test doc-check callmap-check hardening-check

all: core mock module reconcile secrets events-verify

deps:
	bash ci/install-deps.sh

core: $(BUILD)/libpayments.a

# Every Criterion program links tests/criterion_init.c, exported (its
# comment says why: a CA bundle parsed in every test's process)
CRITERION_INIT = $(BUILD)/criterion_init.o
CRITERION_LIBS = $(CRITERION_INIT) -lcriterion \
                 -Wl,--export-dynamic-symbol=mbedtls_x509_crt_parse_file

$(CRITERION_INIT): tests/criterion_init.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS) $(SAN)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(SAN)' > $@

.PHONY: FORCE
FORCE:

$(BUILD)/core/%.o: src/%.c $(CORE_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/core-asan/%.o: src/%.c $(CORE_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -c $< -o $@

# made anew: "ar r" keeps the members of sources since removed or renamed,
# and a stale one can win the link over the current file's
$(BUILD)/libpayments.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libpayments-asan.a: $(ASAN_OBJ)
	rm -f $@
	ar rcs $@ $^

# The operator's reconciliation tool (bin/payments-reconcile.c): the core's
# report parser, libpq synchronously, OpenSSL for the report's sha256.
reconcile: $(BUILD)/payments-reconcile

$(BUILD)/payments-reconcile: bin/payments-reconcile.c $(BUILD)/libpayments.a $(CORE_HDR) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $< $(BUILD)/libpayments.a $(PKG_LIBS) $(CSV_LIBS) -o $@

# Keys, sealed secrets, endpoint checks and key rotation (bin/payments-secrets.c):
# the core's seal.c and notify.c, libpq synchronously.
secrets: $(BUILD)/payments-secrets

$(BUILD)/payments-secrets: bin/payments-secrets.c $(BUILD)/libpayments.a $(CORE_HDR) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $< $(BUILD)/libpayments.a $(PKG_LIBS) -o $@

# payments-events verify (bin/payments-events-verify.c): the dialects'
# verifiers over the kept events, the keys of the gateway's configuration.
events-verify: $(BUILD)/payments-events-verify

$(BUILD)/payments-events-verify: bin/payments-events-verify.c $(BUILD)/libpayments.a $(CORE_HDR) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $< $(BUILD)/libpayments.a $(PKG_LIBS) -o $@

$(BUILD)/unit/%.o: tests/unit/%.c $(CORE_HDR) $(wildcard tests/unit/*.h) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/unit-asan/%.o: tests/unit/%.c $(CORE_HDR) $(wildcard tests/unit/*.h) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libpayments.a $(CRITERION_INIT)
	$(CC) $(CFLAGS) $(UNIT_OBJ) $(BUILD)/libpayments.a $(CRITERION_LIBS) $(PKG_LIBS) $(CSV_LIBS) -o $@

$(BUILD)/unit_tests-asan: $(UNIT_ASAN_OBJ) $(BUILD)/libpayments-asan.a $(CRITERION_INIT)
	$(CC) $(CFLAGS) $(SAN) $(UNIT_ASAN_OBJ) $(BUILD)/libpayments-asan.a $(CRITERION_LIBS) $(PKG_LIBS) $(CSV_LIBS) -o $@

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests --jobs 2

# Criterion forks each test; ASan's leak checker runs in every child.
unit-asan: $(BUILD)/unit_tests-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(BUILD)/unit_tests-asan --jobs 2

mock: $(BUILD)/mock_psp

$(BUILD)/mock/%.o: tests/mock_psp/%.c $(MOCK_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(MOCK_DEFS) -c $< -o $@

$(BUILD)/mock-asan/%.o: tests/mock_psp/%.c $(MOCK_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) $(MOCK_DEFS) -c $< -o $@

$(BUILD)/mock_psp: $(MOCK_OBJ)
	$(CC) $(CFLAGS) $(MOCK_OBJ) -lmicrohttpd -lcurl -ljansson -lcrypto -lpthread -o $@

$(BUILD)/mock_psp-asan: $(MOCK_ASAN_OBJ)
	$(CC) $(CFLAGS) $(SAN) $(MOCK_ASAN_OBJ) -lmicrohttpd -lcurl -ljansson -lcrypto -lpthread -o $@

mock-asan: $(BUILD)/mock_psp-asan

# The mock as the ngx-payments-mock-psp package installs it: the same
# sources, Adyen's documents read from the package's place.
MOCK_PKG_SPECS = /usr/share/ngx-payments-mock-psp/specs
$(BUILD)/pkg/ngx-payments-mock-psp: $(MOCK_SRC) $(filter-out $(MOCK_TEST_HDR),$(wildcard tests/mock_psp/*.h)) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DMOCK_SPEC_DIR='"$(MOCK_PKG_SPECS)"' $(MOCK_SRC) -lmicrohttpd -lcurl -ljansson -lcrypto -lpthread -o $@

# What the packages ship, built hardened as Debian builds its own
# (ci/hardening-check.sh: RELRO, BIND_NOW, stack protector, fortify, PIE)
hardening-check: $(MODULE) $(BUILD)/payments-reconcile $(BUILD)/payments-secrets \
                 $(BUILD)/payments-events-verify $(BUILD)/pkg/ngx-payments-mock-psp
	BUILD=$(BUILD) bash ci/hardening-check.sh

# The mock's own tests run against the ASan build; each test starts a mock,
# stops it with SIGTERM and fails on any sanitizer report in its stderr.
.PHONY: mock-test
# adyen_hmac.c is linked in too: the tests check it against Adyen's vectors.
$(BUILD)/mock_psp_tests: $(MOCK_TEST_SRC) $(MOCK_TEST_HDR) tests/mock_psp/adyen_hmac.c tests/mock_psp/adyen_hmac.h $(FLAGS_STAMP) $(CRITERION_INIT)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(filter %.c,$^) $(CRITERION_LIBS) -lcurl -ljansson -lmicrohttpd -lcrypto -lpthread -o $@

mock-test: $(BUILD)/mock_psp-asan $(BUILD)/mock_psp_tests
	MOCK_PSP_BIN=$(BUILD)/mock_psp-asan MOCK_PSP_LOGS=$(BUILD)/mock_psp_logs \
	    $(BUILD)/mock_psp_tests --jobs 2

module: $(MODULE)

# The module links the core archive the unit tests link (not a second
# compile of src/ with nginx's flags): what ships is what is tested.  A new
# migration or VERSION remakes it too: the module carries the schema it
# needs and its version (config, ngx_http_payments_build.h).
$(MODULE): config $(wildcard ngx_payments_module/*.[ch]) $(BUILD)/libpayments.a $(CORE_HDR) \
           $(wildcard sql/migrations/*.sql) VERSION
	PAY_CC_OPT='$(OPT) $(HARDEN)' PAY_LD_OPT='$(HARDEN_LD)' \
	    bash ci/build-module.sh $(BUILD)/nginx $(BUILD)/libpayments.a

# The core is linked in for seal.h: the suite opens what the gateway sealed
# with the same key file (tests/e2e/harness_tokens.h, "secrets at rest"); libssl for
# the requests a client breaks off by hand (test_request_gone.c).
$(BUILD)/e2e/%.o: tests/e2e/%.c $(wildcard tests/e2e/*.h) $(CORE_HDR) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/e2e_tests: $(E2E_OBJ) $(BUILD)/libpayments.a $(CRITERION_INIT) | $(BUILD)/slow_dns.so
	$(CC) $(CFLAGS) $(E2E_OBJ) $(BUILD)/libpayments.a $(CRITERION_LIBS) $(PKG_LIBS) -lssl -o $@

# A getaddrinfo() that hangs for one host, preloaded into a test's own
# gateway (test_psp.c: a name lookup never holds the worker), and a libcurl
# without an asynchronous resolver (test_config.c); built with the suite.
# Never sanitized (make e2e-asan's flags taken out): it is preloaded into
# any program a test starts (the shell of popen first), and a sanitizer's
# runtime must come first in a program's libraries, not in a preload.
$(BUILD)/slow_dns.so: tests/e2e/slow_dns.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(CFLAGS)) -shared -fPIC $< -ldl -o $@

# dlclose() that keeps every library mapped, preloaded into the sanitized
# nginx when LeakSanitizer looks (ci/nginx-asan.sh, NGX_ASAN_LEAKS=1): a
# worker unloads the module before it exits, and the memory its libraries'
# data held read as leaked (tests/e2e/keep_modules.c); with
# NGX_ASAN_ALLOCATED, SIGRTMIN+1 writes the bytes a process holds (the
# test of a worker's growth).  Never sanitized, as slow_dns.so.
$(BUILD)/keep_modules.so: tests/e2e/keep_modules.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(CFLAGS)) -shared -fPIC $< -o $@

# Everything ci/e2e.sh runs (it checks the same list before it starts):
# the module, the ASan mock, the suite and its preloaded library, the two
# tools the suite calls, and the notification receiver's Node package
# (npm ci from its package-lock.json, by ci/install-deps.sh --core).
RECEIVER_NPM = tests/notify_receiver/node_modules/standardwebhooks/package.json
E2E_DEPS     = $(MODULE) $(BUILD)/mock_psp-asan $(BUILD)/e2e_tests \
               $(BUILD)/slow_dns.so $(BUILD)/keep_modules.so \
               $(BUILD)/payments-reconcile \
               $(BUILD)/payments-secrets $(BUILD)/payments-events-verify \
               $(RECEIVER_NPM)

e2e-deps: $(E2E_DEPS)

$(RECEIVER_NPM):
	bash ci/install-deps.sh --core

e2e: $(E2E_DEPS)
	BUILD=$(BUILD) bash ci/e2e.sh

# The shards lane alone (ci/e2e.sh, E2E_SHARDS=1; not in `make test` yet):
# two PostgreSQL clusters, merchant shards a and b (doc/plans/shards.md).
e2e-shards: $(E2E_DEPS)
	BUILD=$(BUILD) E2E_SHARDS=1 bash ci/e2e.sh

# A representative part of the e2e suite (ci/e2e.sh says which) with every
# gateway at `error_log ... debug`, then the log scan (ci/log-scan-test.sh
# checks the scan itself): the module's debug lines hold no secret.
e2e-debug: $(E2E_DEPS)
	bash ci/log-scan-test.sh
	BUILD=$(BUILD) E2E_DEBUG_LOG=1 bash ci/e2e.sh

# The module under AddressSanitizer and UBSan, end to end: everything the
# suite runs built again in $(BUILD)/asan with the sanitizers (the module,
# the core it links, the suite, the tools), then ci/e2e.sh with E2E_ASAN=1:
# every nginx preloads their runtimes (ci/nginx-asan.sh), and a report of
# any of them fails the run.  E2E_FILTER as for e2e (default: ci/e2e.sh's
# asan_suites).  e2e-asan-deps is the build alone (CI makes it beside the
# e2e suite).
ASAN_BUILD = $(BUILD)/asan
e2e-asan-deps:
	$(MAKE) BUILD=$(ASAN_BUILD) OPT='-O1 -g $(SAN)' HARDEN= e2e-deps

e2e-asan: e2e-asan-deps
	BUILD=$(ASAN_BUILD) E2E_ASAN=1 bash ci/e2e.sh

# The demo shop (HTTPS via libmicrohttpd + GnuTLS) and the browser journey:
# a real Chromium through shop, gateway, mock PSP and back (tests/browser/).
demo-shop: $(BUILD)/demo_shop

$(BUILD)/demo_shop: tests/demo_shop/demo_shop.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -lmicrohttpd -lcurl -ljansson -lpthread -o $@

browser: $(MODULE) $(BUILD)/mock_psp $(BUILD)/demo_shop
	BUILD=$(BUILD) bash tests/browser/run.sh

$(BUILD)/core-fuzz/%.o: src/%.c $(CORE_HDR)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/libpayments-fuzz.a: $(FUZZ_CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libpayments-fuzz.a $(CORE_HDR)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $< $(BUILD)/libpayments-fuzz.a \
	    $(PKG_LIBS) $(CSV_LIBS) -o $@

fuzz: $(FUZZ_BIN)

fuzz-smoke: $(FUZZ_BIN)
	BUILD=$(BUILD) bash ci/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

test:
	bash ci/test.sh

# The Debian package, $(BUILD)/libnginx-mod-http-payments_<VERSION>-1_<arch>.deb
# (packaging/build-deb.sh; ci/deb-test.sh installs and exercises it).
deb: $(MODULE) $(BUILD)/payments-reconcile $(BUILD)/payments-secrets \
     $(BUILD)/payments-events-verify
	bash packaging/build-deb.sh $(BUILD)

# The mock PSP as its own package, $(BUILD)/ngx-payments-mock-psp_<VERSION>-1_<arch>.deb
# (packaging/build-mock-deb.sh), for shops' own test suites.
deb-mock: $(BUILD)/pkg/ngx-payments-mock-psp
	bash packaging/build-mock-deb.sh $(BUILD)

# A shop's test environment in one command, payments-testenv, as its own
# package, $(BUILD)/ngx-payments-testenv_<VERSION>-1_all.deb
# (packaging/build-testenv-deb.sh, doc/TESTING.md): it depends on the two
# packages above.
deb-testenv:
	bash packaging/build-testenv-deb.sh $(BUILD)

demo:
	bash ci/demo.sh

bench:
	bash bench/run.sh

# the chaos suite alone (it also runs in `make test`'s e2e): PSP faults,
# webhooks gone wrong, a worker killed, PostgreSQL killed and fail-over,
# nginx reloaded, with the invariants checked after each; prints the table
chaos: $(E2E_DEPS)
	BUILD=$(BUILD) E2E_JOBS=1 E2E_FILTER='@(solo_chaos|solo_pg_failover|solo_sweeper)/*' bash ci/e2e.sh

# The money checker (tests/e2e/test_money_check.c; CONTRIBUTING.md, "The
# money checker"): SEED=N replays one history exactly (SEED=N,M,...: each
# of them in turn); otherwise
# HISTORIES=N (default 20), or MINUTES=M, from SEED_BASE (default the
# clock's, printed).  A failure prints its seed and history, then the
# shrunk one (SHRINK=0: not shrunk).  make test runs the fixed seeds only.
# SHARDS=1: on the stack of two merchant shards (ci/e2e.sh's E2E_SHARDS=1),
# each history's merchant on shard a or b by its seed.
money-check: $(E2E_DEPS)
	BUILD=$(BUILD) MONEY_CHECK=1 MONEY_SEED='$(SEED)' \
	    MONEY_HISTORIES='$(HISTORIES)' MONEY_MINUTES='$(MINUTES)' \
	    MONEY_SEED_BASE='$(SEED_BASE)' MONEY_SHRINK='$(SHRINK)' MONEY_PRINT='$(PRINT)' MONEY_LIST='$(LIST)' \
	    E2E_SHARDS='$(SHARDS)' E2E_FILTER='books_check/histories' bash ci/e2e.sh

# The seeds that found a defect not fixed yet: each must still fail.
money-check-known: $(E2E_DEPS)
	BUILD=$(BUILD) MONEY_KNOWN=1 \
	    E2E_FILTER='books_check/known_defect_seeds_still_fail' \
	    bash ci/e2e.sh

# what one registration costs the database in counts that do not depend on
# the machine's load (statements, commits, WAL flushes and bytes, blocks),
# the gateway's SQL beside its rows floor (bench/README.md); N=2000
bench-counts:
	bash bench/reg_counts.sh $(N)

# the same counts per webhook (pay_event_keep) against rows_floor/hook_rows.sql
bench-hook-counts:
	bash bench/hook_counts.sh $(N)

# the gateway's SQL and its rows floors in CPU instructions a registration
# and a webhook (callgrind): independent of the machine's load
# (bench/README.md); WHAT=registrations|webhooks|all
bench-instructions:
	bash bench/instructions.sh $(or $(WHAT),all)

# what a registration (plain and risk-checked) and a webhook cost the nginx
# worker in CPU instructions (callgrind, one process): independent of the
# machine's load (bench/README.md); WHAT=registrations|risk|webhooks|all,
# WORKER_TOP=N names where they go
bench-worker-instructions:
	bash bench/worker_instructions.sh $(or $(WHAT),all)

# what the database's guards (balance checks, refusing triggers, foreign
# keys, CHECK rules) cost a webhook and a registration, against the rows
# floor (bench/README.md); WHAT=webhooks|registrations, ROUNDS=3, N=16000
bench-guards:
	bash bench/guards.sh $(or $(WHAT),webhooks) $(or $(ROUNDS),3) $(or $(N),16000)

# webhooks with their merchants on two shards against one (bench/README.md)
bench-shards:
	bash bench/shards.sh

bench-limits:
	bash bench/limits.sh

# rows reconciled per second on a generated report (also the last line of
# make bench); BENCH_RECON_ROWS, default 100000
bench-reconcile: $(BUILD)/payments-reconcile
	BUILD=$(BUILD) bash bench/reconcile.sh

# notifications delivered per second end to end, and the webhook rate with
# and without a subscribed endpoint (bench/README.md)
bench-notify:
	bash bench/notify.sh

# the e2e suite's notification receiver alone (tests/notify_receiver): its
# own deliveries signed with standardwebhooks' sign, every answer mode
notify-receiver-test: $(RECEIVER_NPM)
	cd tests/notify_receiver && node --test selftest.test.js

# the docs against the code: every directive in its module's reference page
# (doc/ngx_http_*_module.md), README.md under 400 lines, links inside the tree
doc-check:
	bash ci/doc-check.sh

# which glue and core file calls which, from the objects: no cycle, the
# glue's map in ngx_http_payments_module.h true (--print writes the map)
callmap-check: core module
	BUILD=$(BUILD) bash ci/callmap-check.sh

clean:
	rm -rf $(BUILD)
