/*
 * The e2e harness: merchants (and bin/payments-merchant), registration bodies
 * and the merchant API.
 */
#ifndef E2E_HARNESS_MERCHANTS_H
#define E2E_HARNESS_MERCHANTS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "harness_http.h"


/* -- merchants and the merchant API ----------------------------------------- */

typedef struct {
    char  key[256];                 /* mk_test_<key id>_<secret> */
    char  key_id[32];
    char  id[128];                  /* merchant_id */
    char  shard[17];                /* its shard on a sharded stack (the
                                       harness's merchants), else "" */
} merchant_t;

/* A new merchant with its own API key and the return origin SHOP_ORIGIN
 * (the rows bin/payments-merchant's create writes, written by the
 * harness); on the shard PAY_TEST_SHARD_DEFAULT when that
 * is set (merchant_new_on), else on PAY_TEST_PG's database. */
void     merchant_new(merchant_t *m);

/* merchant_new on the shard (a sharded stack). */
void     merchant_new_on(merchant_t *m, const char *shard);

/* merchant_new made by bin/payments-merchant create --db PAY_TEST_PG
 * itself: for the tests of the tool and of the keys it makes. */
void     merchant_new_by_tool(merchant_t *m);

/* merchant_new in the database conninfo names (a database of the test's
 * own: db_new_shard's), not on a shard of the stack. */
void     merchant_new_in(merchant_t *m, const char *conninfo);

/* A test's i-th merchant: on a sharded stack on shard i mod shards_n()
 * (merchant_new_on: the test's merchants over every shard), else
 * merchant_new. */
void     merchant_new_nth(merchant_t *m, unsigned long i);

/* The superuser connection to the merchant's shard (db() when m->shard is
 * ""): for merchants of merchant_new* and merchant_demo. */
PGconn  *db_of(const merchant_t *m);

/* bin/payments-merchant --db PAY_TEST_PG a1 a2 a3; its exit status, its
 * stdout and stderr in *out. */
int      merchant_tool(const char *a1, const char *a2, const char *a3,
    char **out);

/* The same with any arguments (NULL-terminated). */
int      merchant_toolv(const char *const *args, char **out);

/* merchant_toolv on the merchant's shard (--shards PAY_TEST_SHARDS_FILE
 * --shard m->shard; merchant_toolv when m->shard is ""). */
int      merchant_toolv_of(const merchant_t *m, const char *const *args,
    char **out);

/* The key an output of bin/payments-merchant printed, into m->key and
 * m->key_id (m->id untouched).  Returns 0 or -1. */
int      merchant_key_from(const char *out, merchant_t *m);

/* merchant_new with mode "test" or "live" (keys mk_<mode>_…). */
void     merchant_new_mode(merchant_t *m, const char *mode);

/* The demo merchant ci/services.sh created (PAY_TEST_MERCHANT_KEY, origin
 * SHOP_ORIGIN): for tests that store nothing, such as refused requests. */
void     merchant_demo(merchant_t *m);

/*
 * The body of a valid registration: checkout_id, buyer_info.email,
 * norders orders "<checkout_id>_p<i>" (seller_<i>, "10.00" then "5.00"
 * USD), success_url and cancel_url on SHOP_ORIGIN, psp PAY_TEST_PSP.
 * Tests change it with jansson and dump() it.
 */
json_t  *checkout_new(const char *checkout_id, size_t norders);

/* Compact JSON, member order kept. */
char    *dump(const json_t *j);

/* The body of checkout_new(checkout_id, 2), dumped. */
char    *body_for(const char *checkout_id);

/*
 * POST path (any of the API's) with Content-Type: application/json.  m
 * NULL: no Authorization; idem_key NULL: no Idempotency-Key.
 */
resp_t  *api_post_at(const merchant_t *m, const char *path,
    const char *idem_key, const char *body);

/* api_post_at of POST /v1/payments. */
resp_t  *api_post(const merchant_t *m, const char *idem_key,
    const char *body);

/* api_post of the dumped body under a fresh Idempotency-Key. */
resp_t  *api_post_json(const merchant_t *m, const json_t *body);

/* payment_orders[i] of a checkout_new() body (borrowed). */
json_t  *order_of(json_t *co, size_t i);

/* POST /v1/payments with exactly these headers (NULL-terminated). */
resp_t  *api_post_raw(const char *const *headers, const char *body,
    size_t len);

/* POST path (any of the API's) with the merchant's key and a fresh
 * Idempotency-Key, which must answer 201: its id_field (a copy). */
char    *api_post_ok(const merchant_t *m, const char *path, const char *body,
    const char *id_field);

/* GET path with the merchant's key. */
resp_t  *api_get(const merchant_t *m, const char *path);
/* The same on the gateway at origin (NULL: the suite's). */
resp_t  *api_get_at(const char *origin, const merchant_t *m,
    const char *path);

/* api_post that must answer 201 (status EXECUTING). */
resp_t  *register_ok(const merchant_t *m, const char *idem_key,
    const char *body);

/*
 * Records a secret a test used (an API key, a pay token, a PSP token) in
 * $PAY_TEST_RUN/secrets-used; after the suite ci/log-scan.sh searches
 * every gateway log for each of them.  Values under 8 bytes are skipped.
 */
void     secret_used(const char *s);

/* "<merchant_id>:<checkout_id>": the PSP Idempotency-Key. */
char    *nonce(const merchant_t *m, const char *checkout_id);
/* how many checkouts of m are named co (0 or 1) */
long     checkouts_named(const merchant_t *m, const char *co);


#endif
