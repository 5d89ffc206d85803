/*
 * The e2e harness: where the money features meet.  Six compositions the
 * invariants suite runs as scripted stories (test_invariants.c) and the
 * chaos suite runs again with the PSP's faults and a sweeper of its own
 * racing them (test_chaos.c):
 *
 *   review     a manual-capture checkout held for review, approved, paid,
 *              captured in part, the rest released
 *   dispute    chargebacks of a partly captured and partly refunded
 *              checkout (one order captured in part, the other released)
 *              and of a paid one whose second order was refunded whole
 *   reversed   a capture the PSP reverses after confirming it (Adyen's
 *              CAPTURE_FAILED after CAPTURE, generic capture.failed)
 *   sweep      the sweeper's release of an expired hold racing a capture
 *              whose webhook is still on its way
 *   cancel     a cancel while the registration is at the PSP, the shopper
 *              paying as soon as the session exists
 *   saved      a manual checkout that saves the shopper's method, captured
 *              in part, the rest released, refunded in part and charged
 *              back; then an off-session charge of that method, refunded
 *              (one order whole) and charged back
 *
 * Each story runs in every dialect that has it, on a merchant of its own
 * that takes a commission (comp_commission in harness_compose.c).
 * The checks compare the gateway's books with the mock PSP's own books
 * (GET /_control/books), never with the gateway's ledger.
 */
#ifndef E2E_HARNESS_COMPOSE_H
#define E2E_HARNESS_COMPOSE_H


typedef enum {
    COMP_REVIEW = 0,
    COMP_DISPUTE,
    COMP_REVERSED,
    COMP_SWEEP,
    COMP_CANCEL,
    COMP_SAVED,
    COMP_NSTORIES
} comp_story_e;

/* the books' checks (harness_books.h), then the compositions' own */
typedef enum {
    COMP_CHK_CAPTURED = BOOKS_CAPTURED,
    COMP_CHK_REFUNDED = BOOKS_REFUNDED,
    COMP_CHK_DISPUTED = BOOKS_DISPUTED,
    COMP_CHK_ORDER = BOOKS_ORDER,
    COMP_CHK_PAYOUTS = BOOKS_PAYOUTS,
    COMP_CHK_MOVED = BOOKS_MOVED,
    COMP_CHK_ONCE = BOOKS_ONCE,
    COMP_CHK_FORWARD = BOOKS_FORWARD,
    COMP_CHK_BALANCED = BOOKS_BALANCED,
    COMP_CHK_WALLETS = BOOKS_WALLETS,
    COMP_CHK_AUDIT = BOOKS_AUDIT,
    COMP_CHK_SHARD = BOOKS_SHARD,       /* a sharded stack's */
    COMP_CHK_COMMISSION = BOOKS_COMMISSION,
    COMP_CHK_WEBHOOKS = BOOKS_NCHECKS,   /* every event the PSP sent
                                           accepted */
    COMP_CHK_STORY,         /* what each story itself must end with */
    COMP_NCHECKS
} comp_check_e;

extern const char *const  comp_story_names[COMP_NSTORIES];
extern const char *const  comp_check_names[COMP_NCHECKS];

#define COMP_DIALECTS    3
#define COMP_PER_STORY   2      /* checkouts per story and dialect */

typedef struct {
    char        *co;
    char        *nonce;
    char        *token;
    char        *dispute;       /* the PSP's dispute id */
    int          dialect;       /* 0 Stripe, 1 Adyen, 2 generic */
    int          used;
    long         cancel_status; /* COMP_CANCEL: the first cancel's answer */
    int          retry_after;   /* ... and it came with a Retry-After */
    long         cancel_last;   /* the last cancel's answer */
    long         paid_status;   /* the mock's answer to the shopper */
    char        *sweep;         /* COMP_SWEEP: the round's action on it */
    int          saves;         /* COMP_SAVED: saves the shopper's method */
    int          charge;        /* ... an off-session charge of it */
    char        *pm;            /* the method's pm_ id */
} comp_co_t;

typedef struct {
    int          chaos;         /* the PSP's faults; the sweeper races */
    merchant_t   m[COMP_NSTORIES];
    comp_co_t    co[COMP_NSTORIES][COMP_DIALECTS][COMP_PER_STORY];
    books_subjects_t  subjects;
    long         checks[COMP_NCHECKS];
    long         steps;         /* requests the stories made */
    int          quiet;         /* comp_check counts without a line */
} comp_run_t;


/* Runs the six stories (chaos: under the PSP's faults, the holds left to
 * a sweeper that runs beside the suite's gateway) and waits for quiet.
 * On a sharded stack the stories' merchants live on the shards in turn
 * (merchant_new_nth), each read on its own shard. */
void     comp_run(comp_run_t *run, int chaos);

/* Every check over the run's merchants; each failure logged and counted
 * in run->checks; returns their sum. */
long     comp_check(comp_run_t *run);


#endif
