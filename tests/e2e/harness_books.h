/*
 * The e2e harness: the gateway's books against the PSP's.  What the money
 * checker (test_money_check.c) and the compositions where the money
 * features meet (harness_compose.c) share: the mock PSP's own books
 * (GET /_control/books, tests/mock_psp/books.c), the wait for quiet (no
 * operation PENDING, every webhook the mock scheduled answered or given
 * up), and the checks that compare the ledger, per checkout, order, seller
 * and pay-out, with those books: never the gateway's ledger as the oracle.
 */
#ifndef E2E_HARNESS_BOOKS_H
#define E2E_HARNESS_BOOKS_H

#include <jansson.h>
#include <libpq-fe.h>


typedef enum {
    BOOKS_CAPTURED = 0,     /* per checkout, the ledger's captures = PSP's */
    BOOKS_REFUNDED,         /* the ledger's refunds = the PSP's */
    BOOKS_DISPUTED,         /* taken and held for disputes = the PSP's */
    BOOKS_ORDER,            /* no seller charged beyond its credit, no
                               order below nothing at the clearing */
    BOOKS_PAYOUTS,          /* pay-outs net of reversals = the PSP's
                               transfers net of what it took back */
    BOOKS_MOVED,            /* every SUCCEEDED capture and refund is one
                               the PSP made and kept, of that amount */
    BOOKS_ONCE,             /* one session, capture, refund, transfer per
                               nonce */
    BOOKS_FORWARD,          /* every order's history forward only */
    BOOKS_BALANCED,         /* ledger transactions sum to zero */
    BOOKS_WALLETS,          /* wallets equal their ledger */
    BOOKS_AUDIT,            /* the audit chains verify */
    BOOKS_SHARD,            /* on a sharded stack: the books read on the
                               merchant's shard, and nothing of the
                               merchant on any other */
    BOOKS_COMMISSION,       /* per order, the commission booked within the
                               rule's on what it captured; all of it
                               while nothing is given back, none once all
                               is */
    BOOKS_NCHECKS
} books_check_e;

extern const char *const  books_check_names[BOOKS_NCHECKS];

/* the orders with a commission check commission has met, over every
 * comparison: nothing given back (the rule's exactly), given back in part
 * by refunds or lost chargebacks (within it), given back whole (none
 * left) */
enum {
    BOOKS_COMM_WHOLE = 0,
    BOOKS_COMM_PART,
    BOOKS_COMM_REFUNDED,
    BOOKS_NCOMM
};

extern long  books_commission_seen[BOOKS_NCOMM];


/* -- the mock PSP's books ------------------------------------------------- */

/* GET /_control/books?reference=<merchant_id>: (a new reference) */
json_t  *books_fetch(const char *merchant_id);

/* The payment of the session or charge under nonce (borrowed), or NULL. */
json_t  *books_payment(json_t *books, const char *nonce);

/* A payment's amount by name (0 for a NULL payment). */
long     books_int(const json_t *payment, const char *name);

/* What the PSP still holds of a payment: captured less refunded and
 * disputed (open or lost). */
long     books_held(const json_t *payment);

/* The PSP's payment_ref of nonce's payment, or NULL. */
char    *books_payment_ref(const char *merchant_id, const char *nonce);

/* The PSP's id of the n-th capture of nonce's payment it made and kept,
 * or NULL. */
char    *books_capture_id(const char *merchant_id, const char *nonce, int n);

/* The request sent again while the answer is a 5xx or none (what API.md
 * tells a shop to do), at most tries times, pause_ms apart; each sending
 * counted in *count (when not NULL). */
resp_t  *books_retried(const req_t *rq, int tries, long pause_ms,
    long *count);

/* The admin approves the review of nonce (POST /v1/reviews/{nonce}/
 * approve), retried as books_retried(): at the suite's gateway, or at the
 * gateway of origin (one whose payments_route lines route the checkout,
 * with the suite's payments_admin_key_file). */
resp_t  *books_approve(const char *nonce, int tries, long pause_ms,
    long *count);
resp_t  *books_approve_at(const char *origin, const char *nonce, int tries,
    long pause_ms, long *count);

/* A request to the mock's control API (json NULL: no body). */
resp_t  *books_mock(const char *method, const char *path, const char *json);


/* -- quiet ----------------------------------------------------------------- */

#define BOOKS_SUBJECTS  256

/* the ids the mock's webhooks are looked up by: nonces, sessions,
 * operations, disputes */
typedef struct {
    char    *s[BOOKS_SUBJECTS];
    size_t   n;
} books_subjects_t;

void     books_subject(books_subjects_t *subjects, const char *s);

/* The merchant's captures, refunds and pay-outs: their nonces added to
 * subjects; returns how many are PENDING.  _on: read on the connection c
 * (the merchant's shard, db_of()); without: on db(). */
long     books_pending(books_subjects_t *subjects, const char *merchant_id);
long     books_pending_on(PGconn *c, books_subjects_t *subjects,
    const char *merchant_id);

/* Each event the mock scheduled for subjects and never delivered: passed
 * to each (when not NULL) with given_up 1 when it had its attempts (10
 * patient, else 3); returns how many have not (still on their way). */
typedef void (*books_event_f)(void *ctx, const char *subject, json_t *ev,
    int given_up);

long     books_undelivered(const books_subjects_t *subjects, int patient,
    books_event_f each, void *ctx);

/* 1 when, within seconds, nothing of the merchants is PENDING and every
 * event of subjects is delivered or given up. */
int      books_quiet(books_subjects_t *subjects,
    const char *const *merchant_ids, size_t n, int seconds, int patient);

/* books_quiet with each merchant's rows read on conns[i] (its shard; NULL:
 * db()); conns NULL: every one on db(). */
int      books_quiet_on(books_subjects_t *subjects, PGconn *const *conns,
    const char *const *merchant_ids, size_t n, int seconds, int patient);


/* -- the checks ------------------------------------------------------------ */

/* sql with $1 the merchant's id; fails the test on an SQL error.  _on:
 * on the connection c (the merchant's shard); without: on db(). */
PGresult *books_query(const char *merchant_id, const char *sql);
PGresult *books_query_on(PGconn *c, const char *merchant_id,
    const char *sql);

typedef void (*books_fail_f)(void *ctx, books_check_e chk, const char *line);

typedef struct {
    const char          *merchant_id;
    json_t              *books;         /* books_fetch()'s */
    PGconn              *conn;          /* where the merchant's rows are
                                           (its shard, db_of()); NULL: db().
                                           Checks over several shards run
                                           once per merchant, each on its
                                           own shard, and add up */
    const char          *shard;         /* the merchant's shard's name (its
                                           merchant_t's): BOOKS_SHARD runs
                                           only with it, on a sharded
                                           stack */

    /* the run's checkouts: their ids, nonces, and how a failure names
     * them ("checkout 2", "review: cmp_…") */
    size_t               nco;
    const char *const   *checkout_ids;
    const char *const   *nonces;
    const char *const   *labels;

    int                  strict;        /* a checkout not the run's fails
                                           BOOKS_CAPTURED */
    unsigned             skip;          /* 1u << BOOKS_…: checks not run */
    books_fail_f         fail;
    void                *ctx;
} books_cmp_t;

/* Every check not skipped over the merchant's books; each failure passed
 * to cmp->fail with a line that says where. */
void     books_compare(const books_cmp_t *cmp);


#endif
