/*
 * The e2e harness: where the money features meet.  Five compositions the
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
 *
 * Each story runs in every dialect that has it, on a merchant of its own.
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
    COMP_NSTORIES
} comp_story_e;

typedef enum {
    COMP_CHK_CAPTURED = 0,  /* per checkout, the ledger's captures = PSP's */
    COMP_CHK_REFUNDED,      /* the ledger's refunds = the PSP's */
    COMP_CHK_DISPUTED,      /* taken and held for disputes = the PSP's */
    COMP_CHK_ORDER,         /* no seller charged beyond its credit, no
                               order below nothing at the clearing */
    COMP_CHK_MOVED,         /* every SUCCEEDED capture and refund is one
                               the PSP made and kept, of that amount */
    COMP_CHK_ONCE,          /* one session, capture, refund per nonce */
    COMP_CHK_FORWARD,       /* every order's history forward only */
    COMP_CHK_BALANCED,      /* ledger transactions sum to zero */
    COMP_CHK_WALLETS,       /* wallets equal their ledger */
    COMP_CHK_AUDIT,         /* the audit chains verify */
    COMP_CHK_WEBHOOKS,      /* every event the PSP sent accepted */
    COMP_CHK_STORY,         /* what each story itself must end with */
    COMP_NCHECKS
} comp_check_e;

extern const char *const  comp_story_names[COMP_NSTORIES];
extern const char *const  comp_check_names[COMP_NCHECKS];

#define COMP_DIALECTS    3
#define COMP_PER_STORY   2      /* checkouts per story and dialect */
#define COMP_SUBJECTS    256

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
} comp_co_t;

typedef struct {
    int          chaos;         /* the PSP's faults; the sweeper races */
    merchant_t   m[COMP_NSTORIES];
    comp_co_t    co[COMP_NSTORIES][COMP_DIALECTS][COMP_PER_STORY];
    char        *subjects[COMP_SUBJECTS];
    size_t       nsubjects;
    long         checks[COMP_NCHECKS];
    long         steps;         /* requests the stories made */
    int          quiet;         /* comp_check counts without a line */
} comp_run_t;


/* Runs the five stories (chaos: under the PSP's faults, the holds left to
 * a sweeper that runs beside the suite's gateway) and waits for quiet. */
void     comp_run(comp_run_t *run, int chaos);

/* Every check over the run's merchants; each failure logged and counted
 * in run->checks; returns their sum. */
long     comp_check(comp_run_t *run);


#endif
