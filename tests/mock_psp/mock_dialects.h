/*
 * Adyen's and the generic PSP's APIs: registration, credentials,
 * idempotency, hosted pages, and the signed webhooks a payment sends, each
 * fault knob per dialect.  Signatures are checked here with OpenSSL alone:
 * the test recomputes Adyen's HMAC itself (and checks that against
 * PSP_FACTS.md's vectors) and verifies the generic JWT with the public key.
 *
 * The fixture (DIALECT_TEST: both dialects, their webhooks to the
 * receiver) and the request and check helpers (mock_dialects.c).
 */
#ifndef MOCK_DIALECTS_H
#define MOCK_DIALECTS_H

#include "mock_client.h"
#include "mock_receiver.h"
#include "adyen_hmac.h"


#define ADYEN_KEY     "AQE_mock_test_key"
#define ADYEN_HMAC    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
#define ADYEN_RETURN  "https://gw.example/v1/return/mock_adyen/co_1?t=tok"
#define GEN_KEY       "gk_mock_test_key"
#define GEN_RETURN    "https://gw.example/v1/return/mock_generic/co_1?t=ok"
#define GEN_CANCEL    "https://gw.example/v1/return/mock_generic/co_1?t=no"
#define DL_TRANSFERS_KEY  "AQE_mock_transfers_key"  /* dl_start_money's */


/* The generic dialect's key pair: its directory and public key. */
extern char  dl_dir[64];
extern char  dl_pub[128];                    /* its public key, PEM */


void dl_keys(void);
void dl_launch(int urls, const char *const *more);
void dl_start(void);
void dl_start_money(void);
void dl_start_no_urls(void);
void dl_start_claims(void);
void dl_cleanup(void);
void dl_fini(void);


#define DIALECT_TEST(name, setup)                                            \
    static void name##_body(void);                                          \
    Test(dialects, name, .init = setup, .fini = dl_fini, .timeout = 60)     \
    {                                                                        \
        name##_body();                                                       \
        mock_stop();                                                         \
        rx_stop();                                                           \
        dl_cleanup();                                                        \
    }                                                                        \
    static void name##_body(void)


typedef struct {
    json_t      *header;
    json_t      *claims;
    int          verified;                   /* the ES256 signature */
} jwt_t;


void dl_post(resp_t *r, const char *path, const char *auth, const char *key,
    const char *ctype, const char *body);
json_t *session_act(const char *id, const char *action, long expect);
void rfc3339(char *out, size_t size, time_t t);
json_t *adyen_json(const char *ref, long long value, const char *currency,
    const char *return_url);
void adyen_post(resp_t *r, const char *key, json_t *j);
void adyen_create(const char *ref, long long value, char id[64]);
void adyen_expect_error(const resp_t *r, long status, const char *type);
void test_adyen_hmac(const char *hexkey, const char *data, char out[64]);
const char *item_str(json_t *item, const char *name);
json_t *adyen_item(const wh_hit_t *hit);
long long item_value(json_t *item);
int adyen_signed(json_t *item);
void adyen_expect_item(json_t *item, const char *ref, const char *code,
    const char *success, long long value);
json_t *generic_json(const char *ref, const char *amount, const char *currency);
void generic_post(resp_t *r, const char *key, json_t *j);
/* the same, a manual capture's session ("capture": "manual") */
void generic_create_manual(const char *ref, const char *amount,
    const char *currency, char token[64]);
void generic_create(const char *ref, const char *amount, const char *currency,
    char token[64]);
void jwt_open(const char *jwt, jwt_t *out);
void jwt_close(jwt_t *j);
void jwt_expect(const jwt_t *j, const wh_hit_t *hit, const char *kid,
    long long age);
const char *hit_str(const wh_hit_t *hit, const char *name);
void generic_expect_event(const wh_hit_t *hit, const char *type, const char *ref,
    const char *token, const char *amount, const char *currency);


char *dump(json_t *j);


#endif
