/*
 * The mock PSP tests' webhook receiver (mock_receiver.c) and the
 * fixture of the tests of the mock's Stripe webhooks (WEBHOOK_TEST).
 */
#ifndef MOCK_RECEIVER_H
#define MOCK_RECEIVER_H

#include "mock_client.h"


/*
 * Webhooks.  Each test runs a small receiver (libmicrohttpd, a thread per
 * connection so duplicates arrive together) that records every delivery
 * and answers from a script, then starts the mock pointed at it.
 */


#define WH_SECRET   "whsec_test_mock_webhooks"
#define WH_MAX      64


typedef struct {
    double       at;                         /* now_ms() on arrival */
    char         sig[512];                   /* Stripe-Signature */
    char         jwt[2048];                  /* rx.jwt_header */
    char         ctype[128];
    char        *body;
    json_t      *json;
} wh_hit_t;


/* The receiver: what arrived (hits, n) and how it answers. */
struct rx_state {
    pthread_mutex_t     lock;
    struct MHD_Daemon  *d;
    unsigned            port;
    int                 stopping;
    wh_hit_t            hits[WH_MAX];
    int                 n;
    unsigned            script[16];          /* statuses, in order */
    int                 nscript;
    int                 next;
    unsigned            dflt;                /* after the script */
    long                delay_ms;            /* before each answer */
    const char         *answer;              /* the body: "ok" if NULL */
    const char         *jwt_header;          /* Payments-Verification */
};

extern struct rx_state  rx;


void rx_start(void);
void rx_stop(void);
void rx_script(unsigned dflt, int n, const unsigned *statuses);
int rx_count(void);
void rx_wait(int n, long timeout_ms);
const char *wh_type(const wh_hit_t *hit);
const char *wh_id(const wh_hit_t *hit);
json_t *wh_object(const wh_hit_t *hit);
int wh_verify(const wh_hit_t *hit, const char *secret, long long *t);
json_t *wh_records(const char *id);
long long rec_int(json_t *events, size_t i, const char *name);
const char *rec_str(json_t *events, size_t i, const char *name);
int rec_delivered(json_t *events, size_t i);
json_t *wh_records_settled(const char *id, size_t n, long long attempts,
    long timeout_ms);
void session_post(const char *id, const char *action, long expect);
void wh_start(const char *retry_ms);
void wh_fini(void);


#define WEBHOOK_TEST(name, retry_ms)                                         \
    static void name##_body(void);                                          \
    static void name##_init(void) { wh_start(retry_ms); }                   \
    Test(webhooks, name, .init = name##_init, .fini = wh_fini,              \
         .timeout = 60)                                                     \
    {                                                                        \
        name##_body();                                                       \
        mock_stop();                                                         \
        rx_stop();                                                           \
    }                                                                        \
    static void name##_body(void)


#endif
