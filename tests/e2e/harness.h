/*
 * End-to-end test harness: a real nginx with the module, a real PostgreSQL
 * and the mock PSP, started by ci/services.sh (ci/e2e.sh runs the suite).
 * The services are found through the PAY_TEST_* environment variables
 * (doc/CONTRACTS.md section 4, and ci/services.sh for the extra ones).
 *
 * Criterion runs each test in its own process, two at a time: tests never
 * reset shared state (the mock's fault table); they use ids unique to the
 * test (uid()) and a fresh merchant (merchant_new()), so the mock's fault
 * rules, which match a substring of the PSP Idempotency-Key (the nonce
 * "<merchant_id>:<checkout_id>"), only ever match their own test.
 *
 * Every helper that fails aborts the test with a Criterion assertion; what
 * they return is owned by the caller (malloc'd), unless said otherwise.
 * Tests leak freely: each runs in a process of its own.
 */
#ifndef E2E_HARNESS_H
#define E2E_HARNESS_H

#include <payments/seal.h>
#include <stddef.h>
#include <stdint.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <libpq-fe.h>

/* Seconds a single test may take before Criterion kills it. */
#define E2E_TIMEOUT      60.0

/* The origin every test merchant registers. */
#define SHOP_ORIGIN      "https://shop.example"

#define PATH_PAYMENTS    "/v1/payments"


/* The areas, one header each (harness_<area>.c defines what it declares). */
#include "harness_core.h"
#include "harness_http.h"
#include "harness_merchants.h"
#include "harness_pg.h"
#include "harness_gateways.h"
#include "harness_mock.h"
#include "harness_tokens.h"
#include "harness_notify.h"
#include "harness_receiver.h"
#include "harness_books.h"
#include "harness_compose.h"

#endif
