/*
 * End to end: the money checker.  Seeded histories compose the money
 * features on the same checkouts, with the PSP's faults, and after each
 * history the gateway's books are compared with the PSP's own
 * (GET /_control/books of the mock PSP, tests/mock_psp/books.c): the
 * gateway's ledger is never the oracle.
 *
 * A history is drawn from a 64-bit seed (splitmix64, nothing else): a
 * fresh merchant, 1-3 checkouts, each in one dialect (Stripe, Adyen,
 * generic), with 1-3 orders of 1-3 sellers in a currency of 0, 2 or 3
 * decimals, automatic or manual capture, sometimes held for review by the
 * risk check and approved, its webhooks duplicated, delayed or out of
 * order, its registration failing once (5xx) or its answer dropped after
 * the commit; the shopper pays, declines, abandons, or pays after a
 * cancel; then captures (partial, several), voids, refunds (partial,
 * full), disputes opened and closed won or lost, captures made outside
 * the gateway (the PSP's dashboard), captures the PSP reverses after
 * confirming them, pay-outs, a hold's window passing (the sweeper's round,
 * sometimes with a capture's webhook still on its way), with the
 * merchant's captures, refunds and pay-outs failing once, answered twice
 * or delayed; in some histories a paid checkout saves the shopper's
 * method and 1-2 off-session charges of it follow (some declined by the
 * issuer), refunded (racing), disputed and paid out.  Then, drawn last
 * (mc_draw_gateway): the history on a gateway of its own (its workers
 * SIGKILLed in the middle of a request, reloads) or one with a sweeper
 * (sessions whose webhooks never come, sessions that run out, paid too
 * late: only where no other test shares the database), operations racing
 * on one checkout, a refund retried after the PSP forgot its keys, and
 * (with a sweeper, alone) PostgreSQL restarted.  From MC_SEED_ROUTED on,
 * drawn last too (mc_draw_routes), some checkouts are routed: registered
 * without "psp" on the history's own gateway, whose payments_route for
 * their currency and merchant goes over two PSPs, the first claiming it,
 * hanging once (held there, the retry resumes there), refusing it (moved
 * on), or a PSP of its own throttling it with its breaker opening (moved
 * on; the route's later checkouts pass it over for its open circuit);
 * from MC_SEED_DEAD on also a PSP of its own on a port nothing listens on
 * (the connection refused: moved on), and checkouts held for review are
 * routed too (registered on a risk server of the history's gateway, the
 * route binding its first PSP, which the approval, at the history's
 * gateway, then sends them to); from MC_SEED_APPROVED on, a checkout held
 * for review may also be routed where that first PSP refuses it or its
 * connection (the approval moves it on to the route's second, as its
 * registration would have); every later step goes to the PSP that holds
 * it.  From MC_SEED_PAYOUT_BACK on, drawn last too (mc_draw_payout_backs),
 * the PSP takes back some pay-outs after paying them: at Stripe 1-2 parts
 * (transfer.reversed, its amount_reversed running), sometimes then the
 * rest, or in any dialect the whole (Stripe's reversed, Adyen's returned,
 * the generic payout.failed after payout.paid), a part sometimes followed
 * at once by the next, the webhook sometimes delayed or duplicated.  From
 * MC_SEED_PSP_GONE on, drawn last too (mc_draw_psp_gone), on a gateway of
 * the history's own a PSP that holds one of its checkouts or pay-outs is
 * removed from its nginx.conf (with every route naming it) for a few
 * steps, then configured again: meanwhile earlier requests of it retried
 * under their keys are replayed byte for byte, its new operations are
 * refused as before (nothing stored), one left unanswered just before the
 * removal (the PSP hanging) is 503 not_configured, the PSP's events kept
 * since are 404 at the history's gateway (then 200 once it is back), and
 * once back the refused and unanswered are sent again under their keys.
 * From MC_SEED_PSP_CLOSED on, drawn last instead (mc_draw_psp_closed), on
 * a gateway of the history's own a PSP is closed to new checkouts
 * (payments_psp ... closed) for a few steps, then open again: meanwhile
 * a new checkout naming it (the history's, or the checker's own as it
 * closes) is refused 400 invalid_request, nothing stored nor sent (the
 * history's is sent again once it is open), a routed one whose route
 * names it is registered at the route's other PSP, a registration left
 * unanswered just before the close (the PSP hanging) is sent there on its
 * retry, earlier requests of it retried under their keys are replayed,
 * and its captures, voids, refunds, pay-outs, approvals, disputes and
 * events go on as if it were open.  From MC_SEED_COMMISSION on, drawn
 * last (mc_draw_commission), the history's merchant takes a commission:
 * a rate (1.5 % to all of it) and sometimes a fixed part in each
 * currency, set before its first checkout (mc_commission).  From
 * MC_SEED_LOST on, drawn last (mc_draw_lost), in a history with a sweeper
 * an off-session charge at Stripe or the generic PSP may lose its every
 * answer (the request's and every retry's dropped, its webhook never
 * sent): the step waits for the sweeper's look-up by its nonce to decide
 * it, and the later steps go on from there; from MC_SEED_LOST_ADYEN on,
 * in any history, one at Adyen too, its webhook sent late.  From
 * MC_SEED_AUTH on, drawn last (mc_draw_auth), an off-session charge may
 * need the shopper: answered 202 with a pay link, then paid at it.
 * Every step is a readable
 * line; the history runs one step at a time, each followed by a wait for
 * quiet (every webhook the mock scheduled answered, no operation
 * PENDING), with deadlines.
 *
 * Then, per checkout, order, seller and currency (mc_check):
 *   captured  the ledger's captures equal the PSP's
 *   refunded  the ledger's refunds equal the PSP's
 *   disputed  what the ledger holds for open disputes, and took for open
 *             and lost ones, equals the PSP's disputes
 *   order     no order holds less than nothing at the PSP's clearing, and
 *             no seller is charged more than it was credited for an order
 *   payouts   the ledger's pay-outs net of what it booked back equal the
 *             PSP's transfers net of what it took back, by nonce and per
 *             currency in sum; so does what each seller's wallet was
 *             charged for each (a reversal given back once); each
 *             pay-out's amount_reversed, and GET /v1/payouts/{id}'s for
 *             those the PSP took something back of, is the PSP's
 *   moved     every capture and refund the gateway says SUCCEEDED is one
 *             the PSP made and kept, of that amount (by our nonce, or by
 *             the PSP's id for what it did by itself)
 *   once      the PSP made at most one session, capture, refund and
 *             transfer per nonce; the shop's retry of a charge whose every
 *             answer was lost, once the sweeper decided it, is 409
 *             duplicate_order (mc_lost_settled)
 *   webhooks  every event the PSP sent was accepted in the end
 *   route     each routed checkout is held by the PSP its route and the
 *             faults end it at, its route record says why it left the
 *             first (refused, throttled, circuit_open, connect_refused),
 *             and the PSP's payment of it is at that PSP's API
 *   balanced, wallets, audit: the existing invariants (test_invariants.c)
 *   shard     on a stack of several merchant shards: the merchant lives
 *             where its books were read, and none of its rows is on
 *             another shard
 *   gone      while a PSP is removed from the history's gateway: each
 *             retry of an answered request its first answer, byte for
 *             byte; each new operation of it refused, nothing stored; an
 *             unanswered one 503 not_configured, then 201 once it is
 *             back; its events 404 there, then 200
 *   closed    while a PSP is closed on the history's gateway: a new
 *             checkout naming it 400 invalid_request saying so, nothing
 *             stored nor sent to it; a routed one whose route names it
 *             201 at the route's other PSP; a registration unanswered
 *             before the close 201 on its retry, one session; each retry
 *             of an answered request its first answer, byte for byte; no
 *             operation of it refused for it (closed, not_configured);
 *             its events 200 there
 *   commission per order of a merchant taking one (but a capture
 *             reversed after refunds, or a dispute beyond what was
 *             left): what the platform kept is within the rule's on what
 *             the order captured, all of it while nothing was given back,
 *             none once refunds and lost chargebacks gave it all back
 *   reconcile once those pass: payments-reconcile on the mock's
 *             settlement report of the history, per PSP that holds a
 *             checkout or pay-out of it (mc_reconcile): every row matched,
 *             nothing of the merchant booked or listed but the rows' fees
 *             (and refunds_exceed_capture of a checkout the gateway
 *             listed capture_reversed_refunded); then balanced, wallets
 *             and audit again
 * Each check is shown able to fail (every_check_sees_the_books_broken
 * breaks the books on purpose, inside a transaction rolled back, or in a
 * copy of the PSP's, and has a report say 1.00 more than the PSP took,
 * and shows gone and closed a real replay against wrong expectations;
 * webhooks is seen failing by the seeds of issue 40).
 *
 * On a stack of several merchant shards (E2E_SHARDS=1 bash ci/e2e.sh,
 * make money-check SHARDS=1) each history's merchant lives on shard seed
 * mod shards (mc_shard), the history's own gateways serve every shard
 * (payments_shard lines), and every read and write of its books goes to
 * its shard (mc_db).
 *
 * A failure prints the seed and the history; the shrinker then drops
 * steps while the failure persists and prints the shortest history found.
 * `make money-check SEED=…` replays one history exactly (the same steps;
 * the PSP's ids differ), `HISTORIES=` and `MINUTES=` run longer
 * (CONTRIBUTING.md, "The money checker").
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"


#define MC_DRAWN_CO     3       /* checkouts a history draws first */
#define MC_CHARGES      2       /* then off-session charges, at most */
#define MC_LATER_CHARGES 2      /* and manual or held ones, at most */
#define MC_MAX_CO       (MC_DRAWN_CO + MC_CHARGES + MC_LATER_CHARGES)
#define MC_MAX_ORDERS   3
#define MC_MAX_STEPS    64
#define MC_STEP_QUIET_S 8
#define MC_SAVE_PCT     25     /* histories that save a method */
#define MC_CUSTOMER     "cust_mc"   /* the shop's id of the shopper */
#define MC_END_QUIET_S  20


/* the CI's seeds: each passes on today's tree (the busiest of seeds
 * 1-150 that did, and those that found a defect since fixed); those that
 * draw a sweeper (107, 83, 111, 39, 79, 66, 145, 20104) run in
 * solo_books_swept */
static const uint64_t  mc_ci_seeds[] = {
    97, 107, 32, 34, 45, 61, 83, 99, 111, 118, 121, 40, 119, 5, 82, 100,
    37, 39, 53, 79, 98, 116, 126, 16, 46, 48, 52, 60, 66,
    /* each found one of issue 40's defects before its fix (CONTRIBUTING.md,
     * "The money checker"): a review approval dropping manual capture
     * (item 1: Stripe, Adyen, generic), a dispute split over orders
     * nothing was captured of (item 2: generic; partly; a voided order),
     * a capture reversed after its success kept booked (item 3: Adyen),
     * the sweeper releasing a hold with a capture pending (item 4:
     * Stripe; Stripe and Adyen), captures made at the PSP's dashboard
     * never booked (item 6: generic; Adyen) */
    64, 89, 103, 17, 81, 62, 145, 14, 134, 2, 36,
    /* each found a capture the PSP reversed after part of it was refunded
     * taking the whole capture back from the order and its seller (the
     * refund then beyond the order's capture) before its fix: generic,
     * a dashboard capture beside */
    1309, 1916,
    /* routed (from MC_SEED_ROUTED on), each with a fail-over: a tripped
     * PSP throttling the first checkout, its open circuit passing over
     * the second before the claim (generic; a reload, refunds racing);
     * a tripped PSP and a refusal (Stripe, generic); a refusal, a first
     * PSP hanging once, a routed checkout saving the method four
     * off-session charges use, a worker kill (Adyen, Stripe); two
     * refusals, a refund after the PSP forgot its keys (Adyen); with a
     * sweeper (solo_books_swept): a tripped PSP throttling the first, its
     * open circuit passing over the second while PostgreSQL restarts in
     * its registration (Adyen: manual captures, the hold released by the
     * sweeper, a worker kill, a refund racing a pay-out) */
    20280, 20131, 20038, 20023, 20104,
    /* from MC_SEED_DEAD on: a first PSP refusing the connection (Stripe,
     * to generic) and a routed checkout held for review, approved at the
     * PSP its route bound (generic, KWD), a worker kill, two captures
     * racing; a dead Adyen's route (to generic) and a routed checkout
     * held for review whose registration's answer is dropped, approved,
     * saving the method an off-session charge uses (30237, a dead
     * Stripe's route with a sweeper, passes too but costs 15 s) */
    30104, 30238,
    /* from MC_SEED_APPROVED on, a routed checkout held for review whose
     * approval moves it on: Adyen refusing it (400), moved on to Stripe
     * (JPY; paid, paid out, refunded, a refund after the PSP forgot its
     * keys); a dead Adyen's refused connection, moved on to generic (KWD,
     * manual capture; two refunds racing) */
    50338, 50382,
    /* from MC_SEED_PAYOUT_BACK on, pay-outs the PSP takes back after
     * paying them: at Stripe 13.720 then 0.120 KWD of one (the second
     * sent with the first's webhook on its way), then the rest, and two
     * generic pay-outs failed whole after payout.paid (a gateway of its
     * own, the merchant's pay-outs failing once); at Stripe 9.260 KWD of
     * one (its webhook delayed) and 7.58 of 7.66 USD of another (its
     * webhook duplicated), then the rest */
    60023, 60003,
    /* from MC_SEED_PSP_GONE on, a PSP removed from the history's gateway
     * for a while: Stripe, a registration whose PSP's answer was dropped
     * retried meanwhile (its 201 replayed), a refund sent just before
     * with Stripe hanging (504), its retry 503 not_configured, 201 once
     * Stripe is back; then a worker kill and two refunds racing.  The
     * generic PSP with its KWD route (a routed checkout held for review
     * that saved the method), a refund and a pay-out retried (replayed),
     * two refunds of an off-session charge refused then sent again once
     * back, the pay-out taken back (its webhook delayed) and a dispute
     * opened meanwhile, their events 404 at the history's gateway, then
     * 200 */
    70056, 70093,
    /* a Stripe checkout held for review, approved, that saves the
     * shopper's method, paid while Stripe is removed: its events kept
     * sealed (they carry the method's token), which the checker sent
     * back sealed and the gateway refused (400 bad_signature) until it
     * opened them */
    10350105,
    /* from MC_SEED_PSP_CLOSED on, a PSP closed to new checkouts for a
     * while (none of the seeds above draws it, so make test never closed
     * one): Stripe closed with a registration sent just before, the PSP
     * hanging (its retry in the window sent there: 201), the checker's
     * own checkout naming it refused, its events 200 (90043); the generic
     * PSP closed under two routes (the checker's routed checkouts
     * registered at Adyen, a registration retried twice and replayed, a
     * refund and a dispute of it meanwhile: 90062); Stripe closed over
     * three registrations, two of them the history's own, refused and
     * sent again once it opens (90357) */
    90043, 90062, 90357,
    /* from MC_SEED_COMMISSION on, the merchant taking a commission: at
     * 2.9 %, a dispute lost that charged its seller the commission's
     * share it was never credited, beyond its credit, before its fix
     * (100031, check order; migration 139); 2.9 % and a fixed part, the
     * merchant's pay-outs failing twice (100005); all of each order, the
     * seller credited nothing, its refunds failing twice (100036); 2.9 %
     * and a fixed part, refunds failing three times (100041) */
    100031, 100005, 100036, 100041,
    /* from MC_SEED_LOST on, with a sweeper (solo_books_swept), off-session
     * charges whose every answer is lost and whose webhooks never come,
     * found by their nonce: at the generic PSP one declined (KWD), two
     * taken (JPY) and one held for review whose approval's answers are
     * lost, a manual capture's hold (EUR; the merchant's pay-outs failing
     * twice); at Stripe one taken (USD), one declined after its approval
     * (JPY) and a manual capture declined (USD), refunds failing three
     * times.  Each fails without pay_sweeper_due's look-up by nonce
     * (b401ed2): the PSP's charges never booked */
    110085, 111732,
    /* from MC_SEED_LOST_ADYEN on, on the suite's gateway, Adyen's
     * off-session charges whose every answer is lost, decided by their
     * late webhooks: one declined, one taken, a manual capture's hold
     * and one held for review whose approval's answers are lost.  The
     * declined one stayed EXECUTING before aafaecf (its AUTHORISATION
     * with success false read as a hosted session's refused attempt) */
    240233,
    /* a routed checkout held for review (route mock_adyen, then stripe;
     * mock_adyen refuses it 400) whose first PSP is closed by a reload
     * before its approval: the approval failed it at mock_adyen
     * (registration_refused) instead of moving it on to stripe, the
     * route chosen for it having passed over the closed PSP it was bound
     * to (routing/an_approval_moves_on_from_its_psp_closed_since is its
     * short test) */
    240526,
    /* from MC_SEED_AUTH on, Stripe's off-session charges that need the
     * shopper, paid at their pay links: one whose registration's answer
     * Stripe drops after its commit (the gateway's retry is answered the
     * same), its chargeback lost; a manual capture, captured, refunded in
     * part, its chargeback lost */
    250056,
    /* from MC_SEED_AUTH_LEFT on, on the suite's gateway: an Adyen manual
     * capture that needs the shopper, canceled by the shop (200: an
     * Adyen session cannot be ended), then paid at its page all the same
     * (booked paid_after_failed, listed), captured in part at Adyen's
     * dashboard and by the shop, refunded in part, a dispute won */
    261099,
    /* from MC_SEED_AUTH_LOST on, with a sweeper: two Stripe charges that
     * need the shopper whose every answer is lost, open while lost, their
     * pages opened at the shop's retry; one page runs out (FAILED by the
     * sweeper), the other the shop cancels.  Before the mock's look-up
     * said why such an intent failed (last_payment_error), the sweeper
     * read it as declined and the retries were 409 */
    262662,
    /* from MC_SEED_AUTH_LOST_REVIEW on, with a sweeper: a Stripe manual
     * capture held for review that needs the shopper, its approval's
     * every answer lost, open meanwhile, its page opened when approved
     * again.  It fails when the sweeper's look-up reads such an intent as
     * declined (planted in pay_stripe_asks_for_shopper: FAILED meanwhile,
     * the approval again 404) */
    264227,
    /* from MC_SEED_AUTH_LOST_ALONE on, with a sweeper: a Stripe charge
     * that needs the shopper, its every answer lost, never retried by the
     * shop: open while lost, failed expired by the sweeper once its time
     * ran out, then 409 at the shop's retry (refunds and a dispute of it
     * after; beside it a page that runs out, then paid after all).
     * Before the sweeper ended such a charge (its look-up said pending
     * for good) it stayed EXECUTING */
    267066
};

/*
 * Drawings added after the CI seeds above were chosen apply to seeds from
 * here on, so that each CI seed keeps the history it found its defect
 * with: a Stripe manual capture captured in part at Stripe's dashboard
 * (MC_OUTSIDE) would change the histories of 14, 81, 116 and 118 (make
 * money-check LIST=1 PRINT=1 HISTORIES=130 SEED_BASE=0 shows each seed's
 * history without running it).  make money-check's seeds are far above.
 */
#define MC_SEED_STRIPE_OUTSIDE  10000

/* routing (mc_draw_routes) is drawn from here on: the CI seeds below it
 * keep their histories, each checkout naming its PSP */
#define MC_SEED_ROUTED          20000
#define MC_ROUTED_PCT           45      /* histories from it that route */

/* and from here on (mc_draw_routes), a route's first PSP that moves a
 * checkout on by a refusal is instead, half the time, one whose
 * connection is refused, and a checkout held for review may be routed
 * (where the route's first PSP is its own): the routed CI seeds below it
 * keep their histories */
#define MC_SEED_DEAD            30000

/* and from here on (mc_draw_routes), a checkout held for review may be
 * routed where its PSP is the route's second, after a first that refuses
 * it (400) or its connection: its approval moves it on (doc/RISK.md,
 * "Review"); the seeds below it keep their histories */
#define MC_SEED_APPROVED        50000

/* and from here on (mc_draw_payout_backs), a pay-out the PSP paid may be
 * taken back by it: in part (Stripe's transfer.reversed, 1-2 times,
 * sometimes then the rest) or whole (Stripe's reversed, Adyen's returned,
 * the generic payout.failed after payout.paid); the seeds below it keep
 * their histories */
#define MC_SEED_PAYOUT_BACK     60000
#define MC_PAYOUT_BACK_PCT      60      /* pay-outs from it taken back */

/* and from here on (mc_draw_psp_gone), on a gateway of its own, a PSP
 * that holds one of the history's checkouts or pay-outs is removed from
 * its nginx.conf for a few steps, then configured again; the seeds below
 * it keep their histories */
#define MC_SEED_PSP_GONE        70000
#define MC_PSP_GONE_PCT         85      /* such histories that draw it */

/* and from here on (mc_draw_psp_closed), on a gateway of its own, a PSP
 * is closed to new checkouts (payments_psp ... closed) for a few steps,
 * then open again; a history that draws it draws no PSP removed; the
 * seeds below it keep their histories */
#define MC_SEED_PSP_CLOSED      90000
#define MC_PSP_CLOSED_PCT       60      /* such histories that draw it */

/* and from here on (mc_draw_commission), the history's merchant takes a
 * commission (doc/MONEY.md, "Commission"): a rate, sometimes with a fixed
 * part in each currency, frozen on each checkout at its registration; the
 * seeds below it keep theirs (none, as do 10350105's draws: it gains a
 * commission and passes) */
#define MC_SEED_COMMISSION      100000
#define MC_COMMISSION_PCT       75      /* such histories that draw one */

/* and from here on (mc_draw_lost), in a history with a sweeper, an
 * off-session charge at Stripe or the generic PSP may lose its every
 * answer: the PSP takes (or declines) it, the answer of its request and
 * of every retry of it is dropped, and its webhook never comes; only the
 * sweeper's look-up by its nonce (doc/PSPS.md, "Payment look-up") decides
 * it.  The seeds below it keep their histories */
#define MC_SEED_LOST            110000
#define MC_LOST_PCT             60      /* such charges that draw it */

/* and from here on an off-session charge at Adyen may too, in any
 * history: the answer of its request and of every retry dropped, its
 * webhook sent late (MC_LOST_ADYEN_MS).  Adyen's Checkout API has no
 * look-up of a payment by reference, so its webhook decides it, with or
 * without a sweeper.  The seeds below it keep their histories */
#define MC_SEED_LOST_ADYEN      240000
#define MC_LOST_ADYEN_MS        2000

/* and from here on (mc_draw_auth), an off-session charge whose answer
 * comes (none lost, none declined) may be one the issuer wants the
 * shopper for: the PSP answers that its card needs authentication, the
 * gateway answers 202 with a pay link to a hosted page at that PSP, and
 * the shopper pays there; its later steps (refunds, captures of a hold,
 * disputes, pay-outs) go on from there.  The seeds below it keep their
 * histories */
#define MC_SEED_AUTH            250000
#define MC_AUTH_PCT             40      /* such charges that draw it */

/* and from here on, the shopper such a charge wants may not pay at once
 * (its own stream, drawn after the rest of mc_draw_auth): the shop
 * cancels the charge, which ends its page at the PSP, or the shopper never
 * comes and the page's time runs out (the sweeper fails it; on a gateway
 * without one it stays open); in each, half of the shoppers pay at the
 * page after all.  Their later steps are drawn as before and meet a
 * checkout that is not paid, or one paid after it failed.  The seeds
 * below it keep their histories */
#define MC_SEED_AUTH_LEFT       260000
#define MC_AUTH_LEFT_PCT        45      /* such charges that draw it */

/* and from here on, a charge whose every answer is lost (mc_draw_lost)
 * may be one that needs the shopper, unless it is held for review: the
 * shopper is never asked while the answers are lost, nothing may decide
 * it meanwhile (a sweeper's rounds, Adyen's webhook time pass); then the
 * PSP answers again and the shop's retry under its key must open the page
 * (202, the pay link), and its shopper goes on as drawn (mc_lost_auth) */
#define MC_SEED_AUTH_LOST       262500

/* and from here on, one held for review too: its approval's every answer
 * lost, nothing may decide it meanwhile; then the PSP answers again and
 * approving it again must open the page (202, the pay link; doc/API.md:
 * an approval the PSP never answered is sent again by the next one) */
#define MC_SEED_AUTH_LOST_REVIEW 264000

/* and from here on, with a sweeper, at Stripe or the generic PSP (its
 * own stream, drawn last in mc_draw_auth), such a charge may be one the
 * shop does not retry: no page is made, and once the checkout's time
 * runs out the sweeper must fail it (expired, nothing booked); the shop's
 * retry after that is 409 duplicate_order */
#define MC_SEED_AUTH_LOST_ALONE 267000
#define MC_AUTH_ALONE_PCT       50      /* such charges that draw it */


/*
 * Seeds that find a known defect on the tree they were found on, and
 * fail until it is fixed (make money-check-known runs them and expects
 * each to fail).  When a fix lands, its seed passes: move it to
 * mc_ci_seeds.
 */
static const struct {
    uint64_t     seed;
    const char  *what;
} mc_known[] = {
    /* the seeds that found issue 40's items 1, 2, 3, 4 and 6, and a
     * capture reversed after a refund of it (1309, 1916), before their
     * fixes are CI seeds now */

    /* the hour's run of the swept histories (seeds from 40000) found an
     * Adyen checkout the shop cancelled, paid afterwards on its hosted
     * page (an Adyen session cannot be cancelled), its webhooks never
     * sent, never booked nor listed (40384, 40405, 40467): they pass
     * since the sweeper asks about such a session until its expiry
     * (solo_sweeper/an_adyen_session_paid_after_the_shops_cancel_is_booked
     * is their short test) */

    /* an Adyen manual capture paid, its webhooks never sent: it stays
     * EXECUTING (the session look-up says paymentPending), and a capture
     * made at the PSP's dashboard (and a dispute of it) was never booked
     * nor listed (40465; 40125 with a dispute, which passed in some runs).
     * Adyen cannot look a payment up: the sweeper lists it for a person
     * (payment_unsettled) grace= after the session's expiry; the checker
     * lets that hour pass at the end of a swept history (mc_time_passes)
     * and counts money so listed as accounted for, never money booked
     * beyond the PSP's: 40465 passes since.  40125 passed or failed by a
     * race: its dashboard captures' CAPTURE events were kept pending (no
     * authorization here) until a sweeper round's look-up (completed once
     * captured) held the checkout, booked only if that round came before
     * the history's end; and the PSP's reversal of one, come first, was
     * recorded 'ignored', so the capture kept pending was booked after it
     * (shrunk: booked 2802, the PSP 0).  Both pass since a capture at the
     * PSP holds a manual checkout still EXECUTING and is booked at once,
     * and such a reversal waits for its capture (their short tests:
     * capture/a_dashboard_capture_of_a_payment_never_authorized_here_is_
     * booked_and_reversed, sql/a_capture_made_at_the_psp_holds_a_checkout_
     * whose_authorization_never_came); they draw a sweeper, so they are
     * not CI seeds (books_check runs none) */

    /* the 25 minutes from 240400 found a routed review approved after
     * its first PSP was closed failed there, not moved on (240526): a CI
     * seed since the approval's route keeps the PSP its claim bound */

    { 0, NULL }
};


/* A line of the checker's own on stderr, whatever Criterion's verbosity
 * (its warnings would fail a run that passed). */
static void mc_say(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
mc_say(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fputs("[----] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}


/*
 * A failing history's report: an error of Criterion's (it fails the run),
 * but a line of the checker's own while make money-check-known replays
 * seeds that are expected to fail (their failing is that test's pass).
 */
static int  mc_replaying_known;

#define mc_err(...)                                                           \
    do {                                                                      \
        if (mc_replaying_known) {                                             \
            mc_say(__VA_ARGS__);                                              \
        } else {                                                              \
            cr_log_error(__VA_ARGS__);                                        \
        }                                                                     \
    } while (0)


/* -- the PRNG: splitmix64 ---------------------------------------------------- */

typedef struct {
    uint64_t  s;
} mc_rng_t;


static uint64_t
mc_next(mc_rng_t *r)
{
    uint64_t  z;

    r->s += 0x9e3779b97f4a7c15ULL;
    z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


/* 0 .. n-1 */
static long
mc_below(mc_rng_t *r, long n)
{
    return n <= 1 ? 0 : (long) (mc_next(r) % (uint64_t) n);
}


/* 1 with probability pct % */
static int
mc_chance(mc_rng_t *r, long pct)
{
    return mc_below(r, 100) < pct;
}


/* -- histories ----------------------------------------------------------------- */

static const char  *mc_dialects[3] = { "stripe", "adyen", "generic" };
static const char  *mc_currencies[4] = { "USD", "JPY", "KWD", "EUR" };
static const int    mc_exponents[4] = { 2, 0, 3, 2 };
static const char  *mc_sellers[3] = { "s1", "s2", "s3" };

/*
 * A routed checkout (registered without "psp": the history's route for
 * its currency chooses, payments_route on the history's own gateway) and
 * what routing meets at the route's first PSP.  Its dialect (mc_co_t) is
 * the PSP it must end at, the one every later step goes to.
 */
typedef enum {
    MC_RT_NONE = 0,     /* names its PSP */
    MC_RT_FIRST,        /* claimed at the route's first PSP */
    MC_RT_HANG,         /* the first PSP hangs past the request's time
                           once: held there, the shop's retry resumes
                           there (the second never asked) */
    MC_RT_REFUSED,      /* the first PSP refuses it (400): moved on to the
                           second in the same request */
    MC_RT_TRIPPED,      /* the first PSP is mc_trip_<dialect> (the mock
                           under a name of its own, breaker=1): it throttles
                           the nonce (429), so the checkout moves on and its
                           breaker opens; the route's later checkouts pass
                           it over before their claim (circuit_open) */
    MC_RT_DEAD,         /* the first PSP is mc_dead_<dialect>, on a port
                           nothing listens on: the connection refused, it
                           moves on in the same request (connect_refused;
                           from MC_SEED_DEAD on) */
    MC_NRTS
} mc_rt_e;

static const char  *mc_rt_names[MC_NRTS] = {
    "", "claimed at the route's first PSP",
    "the first PSP hangs past the request's time once, the retry resumes "
    "there", "the first PSP refuses it (400): moves on",
    "the first PSP throttles it (429, its breaker opens) or its circuit is "
    "open: moves on",
    "the first PSP refuses the connection (nothing listens): moves on"
};

#define MC_TRIPPED  3           /* a route's first: the tripped PSP */
#define MC_DEAD     4           /* a route's first: the PSP on a port
                                   nothing listens on */

/* a route's PSPs must each take every amount of its currency exactly
 * (nginx -t): Stripe takes three-decimal amounts in tens only, so no KWD
 * route has it */
#define MC_KWD      2

/* the history's route for a currency: its PSPs in order */
typedef struct {
    int     used;
    int     first;              /* a dialect, or MC_TRIPPED */
    int     trip;               /* MC_TRIPPED, MC_DEAD: its dialect */
    int     second;             /* a dialect */
} mc_route_t;

typedef enum {
    MC_FAULT_NONE = 0,
    MC_FAULT_DUPLICATE,         /* every webhook twice more */
    MC_FAULT_DELAY,             /* webhooks 400 ms late */
    MC_FAULT_OUT_OF_ORDER,      /* a contrary event first */
    MC_FAULT_FAIL_ONCE,         /* the registration 503 once */
    MC_FAULT_DROP,              /* the registration's answer dropped */
    MC_NFAULTS
} mc_fault_e;

static const char  *mc_fault_names[MC_NFAULTS] = {
    "none", "webhooks duplicated", "webhooks delayed 400 ms",
    "webhooks out of order", "registration 503 once",
    "registration answer dropped after commit"
};

typedef struct {
    int     dialect;
    int     currency;
    int     norders;
    long    amount[MC_MAX_ORDERS];          /* minor units */
    int     seller[MC_MAX_ORDERS];
    int     manual;
    int     review;
    int     fault;
    int     save;           /* saves the shopper's method (off_session) */
    int     charge;         /* an off-session charge of the method ... */
    int     from;           /* ... checkout from saved */
    int     decline;        /* the charge: 0 taken, else mc_declines[] */
    int     never;          /* its session's webhooks never sent: only the
                               sweeper's look-ups settle it */
    int     lost;           /* an off-session charge whose every answer is
                               dropped and whose webhook never comes: the
                               sweeper's look-up by its nonce settles it
                               (from MC_SEED_LOST on, drawn last) */
    int     routed;         /* mc_rt_e */
    int     auth;           /* an off-session charge the issuer wants the
                               shopper for: answered 202 with a pay link,
                               then paid there (from MC_SEED_AUTH on,
                               drawn last) */
    int     auth_left;      /* ... not paid there at once: mc_auth_e
                               (from MC_SEED_AUTH_LEFT on) */
    int     auth_left_paid; /* ... and paid there after all */
    int     auth_alone;     /* ... its every answer lost, and the shop
                               comes back only once its time ran out
                               (from MC_SEED_AUTH_LOST_ALONE on) */
} mc_co_t;

/* what the shopper an off-session charge wants does (mc_draw_auth) */
typedef enum {
    MC_AUTH_PAID = 0,       /* pays at the page at once */
    MC_AUTH_CANCELED,       /* the shop cancels the charge */
    MC_AUTH_ENDED,          /* never comes: the page's time runs out */
    MC_AUTH_OPEN            /* never comes, and no sweeper ends it */
} mc_auth_e;

static const char  *mc_auth_names[4] = {
    "", ", canceled by the shop", ", the shopper never comes: the page's "
    "time runs out", ", the shopper does not come (the page left open)"
};

/* what the PSP's issuer answers an off-session charge it refuses */
static const char  *mc_declines[3] = {
    NULL, "insufficient_funds", "expired_card"
};

typedef enum {
    MC_REGISTER = 0,
    MC_APPROVE,
    MC_PAY,
    MC_DECLINE,
    MC_CANCEL,
    MC_CAPTURE,         /* order, amount */
    MC_VOID,            /* order */
    MC_REFUND,          /* order, amount */
    MC_DISPUTE,         /* amount; arg: the dispute's number */
    MC_CLOSE,           /* arg: the dispute's number; order 1 won, 0 lost */
    MC_OUTSIDE,         /* amount: captured from the PSP's dashboard */
    MC_REVERSE,         /* arg: the n-th capture of the checkout reversed */
    MC_PAYOUT,          /* order: the seller; arg: the dialect; amount */
    MC_EXPIRE,          /* the authorization's window passes: the
                           sweeper's round releases the hold */
    /* drawn after the rest (mc_draw_gateway) */
    MC_SESSION_END,     /* the session's time runs out at the PSP (no
                           webhook): the sweeper's look-up fails it */
    MC_KILL,            /* arg ms into the next step, SIGKILL of the
                           history's gateway's workers */
    MC_RELOAD,          /* the history's gateway reloaded (SIGHUP) */
    MC_RACE,            /* arg mc_race_e: two operations sent at once */
    MC_PG_RESTART,      /* arg ms into the next step, PostgreSQL stopped
                           and started again (a history with a sweeper:
                           alone) */
    MC_FORGET,          /* order, amount: a refund the PSP answers after
                           the gateway gave up; its key window passes and
                           the PSP forgets its keys; the shop retries */
    MC_PAYOUT_BACK,     /* arg: the n-th pay-out step of the history
                           (order its seller), taken back by the PSP after
                           it was paid: amount of it (Stripe), or 0 all
                           that is left; knob: its webhook's fault
                           (from MC_SEED_PAYOUT_BACK on, drawn last) */
    MC_PSP_GONE,        /* arg: a dialect, its PSP (and every route naming
                           it) removed from the history's gateway's
                           nginx.conf (a reload); knob 1: the window's first
                           operation of that PSP is sent first, unanswered
                           (the PSP hangs), before the reload (from
                           MC_SEED_PSP_GONE on, drawn last) */
    MC_REPLAY,          /* arg: an earlier step, its request sent again
                           under its key while its PSP is removed */
    MC_PSP_BACK,        /* arg: the dialect, its PSP configured again (a
                           reload); then every operation refused or
                           answered 503 while it was removed is sent again
                           under its key */
    MC_PSP_CLOSE,       /* arg: a dialect, its PSP's payments_psp line
                           marked closed on the history's gateway (a
                           reload); knob 1: the window's first registration
                           naming it is sent first, unanswered (the PSP
                           hanging), before the reload (from
                           MC_SEED_PSP_CLOSED on, drawn last) */
    MC_PSP_OPEN,        /* arg: the dialect, its PSP open again (a reload);
                           then each registration refused while it was
                           closed is sent again */
    MC_NKINDS
} mc_kind_e;

/* what MC_RACE sends at once, as a shop's two workers would */
typedef enum {
    MC_RACE_REFUNDS = 0,    /* two refunds of one order */
    MC_RACE_REFUND_PAYOUT,  /* a refund of an order, a pay-out of its
                               seller */
    MC_RACE_CAPTURE_VOID,   /* a capture and a void of one order */
    MC_RACE_CAPTURES,       /* two captures of one order */
    MC_RACE_CAPTURE_CANCEL, /* a capture of an order, the checkout's
                               cancel */
    MC_NRACES
} mc_race_e;

static const char  *mc_race_names[MC_NRACES][2] = {
    { "refund", "refund" }, { "refund", "pay-out" }, { "capture", "void" },
    { "capture", "capture" }, { "capture", "cancel" }
};

/* where a history's shop traffic goes: the suite's gateway, or one of its
 * own (workers killed, reloads), with a sweeper (webhooks never sent,
 * sessions expiring: only where no other test shares the database) */
typedef enum {
    MC_GW_SUITE = 0,
    MC_GW_OWN,
    MC_GW_SWEPT
} mc_gw_e;

static const char  *mc_gw_names[3] = {
    "the suite's gateway", "a gateway of its own",
    "a gateway of its own with a sweeper"
};

static const char  *mc_kind_names[MC_NKINDS] = {
    "register", "approve review", "shopper pays", "shopper declines",
    "shop cancels", "capture", "void", "refund", "PSP opens dispute",
    "PSP closes dispute", "PSP captures outside the gateway",
    "PSP reverses capture", "pay-out",
    "8 days pass, the sweeper's round runs",
    "the session's time runs out at the PSP (no webhook)",
    "SIGKILL of the gateway's workers", "the gateway reloads (SIGHUP)",
    "at once:",
    "PostgreSQL stopped and started again",
    "refund, the PSP's answer too late; 8 days pass, the PSP forgets its "
    "keys, the shop retries",
    "the PSP takes back pay-out",
    "the gateway reloads without PSP", "the shop retries step",
    "the gateway reloads with PSP", "the gateway reloads closing PSP",
    "the gateway reloads opening PSP"
};

typedef struct {
    int     kind;
    int     co;
    int     order;
    int     arg;
    long    amount;
    long    amount2;    /* MC_RACE: the second operation's */
    int     at_once;    /* the next step without waiting for quiet */
    int     knob;       /* MC_PAYOUT_BACK: mc_back_knob_e */
} mc_step_t;

/* the webhook of a pay-out taken back (a rule on the pay-out's nonce,
 * where the history's pay-outs have none of their own) */
typedef enum {
    MC_BACK_PLAIN = 0,
    MC_BACK_DELAYED,            /* webhook_delay_ms 400 */
    MC_BACK_DUPLICATED,         /* webhook_duplicate 2 */
    MC_NBACKS
} mc_back_knob_e;

static const char  *mc_back_knob_names[MC_NBACKS] = {
    "", ", its webhook delayed 400 ms", ", its webhook duplicated"
};

/* the merchant's operations at the PSP: fault rules on their nonces */
typedef struct {
    int     captures;       /* 0 none, 1 duplicated, 2 delayed, 3 fail once */
    int     refunds;        /* 0 none, 1 duplicated, 2 fail once,
                               3 outcome failed */
    int     payouts;        /* 0 none, 1 duplicated, 2 fail once */
} mc_ops_fault_t;

typedef struct {
    uint64_t        seed;
    int             nco;
    mc_co_t         co[MC_MAX_CO];
    mc_ops_fault_t  ops;
    int             gw;             /* mc_gw_e */
    int             routed;         /* checkouts routed */
    mc_route_t      route[4];       /* per currency */
    int             nsteps;
    mc_step_t       steps[MC_MAX_STEPS];
    int             bps;            /* the merchant's commission rate */
    int             fixed;          /* and its fixed part, mc_fixed */
} mc_history_t;


/* what the generator expects of a checkout (the gateway may disagree:
 * the checks decide) */
typedef struct {
    int     paid;
    int     canceled;
    int     voided;
    int     captures;
    long    captured[MC_MAX_ORDERS];
    long    refunded[MC_MAX_ORDERS];
    long    disputed;
    int     disputes;
    int     open[4];
} mc_model_t;


static long
mc_amount(mc_rng_t *r, int currency)
{
    long  a;

    switch (mc_exponents[currency]) {
    case 0:
        return 50 + mc_below(r, 5000);
    case 3:
        /* Stripe takes three-decimal amounts in tens */
        a = 1000 + mc_below(r, 50000);
        return a - a % 10;
    default:
        return 100 + mc_below(r, 9900);
    }
}


/* a part of at most max (> 0), rounded to tens in a three-decimal
 * currency; 0 when none fits */
static long
mc_part(mc_rng_t *r, int currency, long max)
{
    long  a, unit;

    unit = mc_exponents[currency] == 3 ? 10 : 1;
    if (max < unit) {
        return 0;
    }

    a = mc_chance(r, 30) ? max : 1 + mc_below(r, max);
    a -= a % unit;

    return a > 0 ? a : unit;
}


static void
mc_add(mc_history_t *h, int kind, int co, int order, int arg, long amount)
{
    mc_step_t  *s;

    if (h->nsteps == MC_MAX_STEPS) {
        return;
    }

    s = &h->steps[h->nsteps++];
    s->kind = kind;
    s->co = co;
    s->order = order;
    s->arg = arg;
    s->amount = amount;
}


static long
mc_sum(const long *a, int n)
{
    int   i;
    long  s;

    for (s = 0, i = 0; i < n; i++) {
        s += a[i];
    }

    return s;
}


/* One operation on checkout c, drawn as its model allows. */
static void
mc_draw_op(mc_history_t *h, mc_rng_t *r, mc_model_t *model, int c)
{
    int          k, o;
    long         a, left;
    mc_co_t     *co;
    mc_model_t  *md;

    co = &h->co[c];
    md = &model[c];
    o = (int) mc_below(r, co->norders);
    k = (int) mc_below(r, 100);

    if (k < 10) {
        /* a pay-out of a seller of this checkout, at its PSP */
        mc_add(h, MC_PAYOUT, c, co->seller[o], co->dialect,
               mc_part(r, co->currency, co->amount[o] / 2 + 10));
        return;
    }

    if (!md->paid) {
        return;
    }

    left = co->amount[o] - md->captured[o];

    if (co->manual && !md->voided && k < 14) {
        mc_add(h, MC_EXPIRE, c, 0, 0, 0);
        md->voided = 1;
        return;
    }

    if (co->manual && !md->voided && k < 45) {
        /* Stripe captures once, the rest released */
        if (co->dialect == 0 && md->captures > 0) {
            return;
        }
        a = mc_part(r, co->currency, left);
        if (a == 0) {
            return;
        }
        mc_add(h, MC_CAPTURE, c, o, 0, a);
        md->captured[o] += a;
        md->captures++;
        /* the window ends while the capture's webhook is on its way */
        if (mc_chance(r, 20)) {
            h->steps[h->nsteps - 1].at_once = 1;
            mc_add(h, MC_EXPIRE, c, 0, 0, 0);
            md->voided = 1;
        }
        return;
    }

    if (co->manual && !md->voided && k < 55) {
        mc_add(h, MC_VOID, c, o, 0, 0);
        md->voided = 1;
        return;
    }

    /* Stripe's dashboard captures once too, the rest released (drawn
     * from MC_SEED_STRIPE_OUTSIDE on: the CI seeds keep their histories) */
    if (co->manual && !md->voided && k < 60
        && (co->dialect != 0
            || (h->seed >= MC_SEED_STRIPE_OUTSIDE && md->captures == 0)))
    {
        a = mc_part(r, co->currency, co->amount[o] - md->captured[o]);
        if (a > 0) {
            mc_add(h, MC_OUTSIDE, c, o, 0, a);
            md->captured[o] += a;
            if (co->dialect == 0) {
                md->captures++;
                md->voided = 1;
            }
        }
        return;
    }

    if (co->manual && co->dialect != 0 && md->captures > 0 && k < 66) {
        mc_add(h, MC_REVERSE, c, 0, (int) mc_below(r, md->captures),
               0);
        md->captures--;     /* the PSP's later captures move up one */
        return;
    }

    left = md->captured[o] - md->refunded[o];

    if (k < 84 && left > 0) {
        a = mc_part(r, co->currency, left);
        mc_add(h, MC_REFUND, c, o, 0, a);
        md->refunded[o] += a;
        return;
    }

    left = mc_sum(md->captured, co->norders)
           - mc_sum(md->refunded, co->norders) - md->disputed;

    /* an Adyen payment is charged back once (its notifications name
     * the payment, not the chargeback) */
    if (left > 0 && md->disputes < (co->dialect == 1 ? 1 : 4)) {
        a = mc_part(r, co->currency, left);
        mc_add(h, MC_DISPUTE, c, 0, md->disputes, a);
        md->disputed += a;
        if (mc_chance(r, 70)) {
            mc_add(h, MC_CLOSE, c, mc_chance(r, 50), md->disputes, 0);
        }
        md->disputes++;
    }
}


/*
 * The token broker, drawn after the rest (so a seed's earlier steps stay
 * what they were): a paid checkout saves the shopper's method, then 1-2
 * off-session charges of it (automatic capture: the gateway refuses a
 * manual one), some declined by the issuer, each with its own orders,
 * currency and faults; then operations over the charges and the saving
 * checkout: refunds (some racing one another: the second sent with the
 * first's webhook on its way), disputes won and lost, pay-outs, and on a
 * manual saving checkout its captures, voids and reversals.
 */
static void
mc_draw_charges(mc_history_t *h, mc_rng_t *r, mc_model_t *model)
{
    int          c, from, i, n, nops, o;
    long         left;
    mc_co_t     *co;
    mc_model_t  *md;

    if (!mc_chance(r, MC_SAVE_PCT)) {
        return;
    }

    from = (int) mc_below(r, h->nco);
    if (!model[from].paid) {
        return;
    }
    h->co[from].save = 1;

    n = 1 + (int) mc_below(r, MC_CHARGES);

    for (i = 0; i < n; i++) {
        c = h->nco++;
        co = &h->co[c];
        md = &model[c];
        co->charge = 1;
        co->from = from;
        co->dialect = h->co[from].dialect;
        co->currency = (int) mc_below(r, 4);
        co->norders = 1 + (int) mc_below(r, MC_MAX_ORDERS);
        for (o = 0; o < co->norders; o++) {
            co->amount[o] = mc_amount(r, co->currency);
            co->seller[o] = (int) mc_below(r, 3);
        }
        co->fault = mc_chance(r, 40) ? (int) mc_below(r, MC_NFAULTS) : 0;
        co->decline = mc_chance(r, 20) ? 1 + (int) mc_below(r, 2) : 0;

        mc_add(h, MC_REGISTER, c, 0, 0, 0);
        md->paid = co->decline == 0;
        if (md->paid) {
            memcpy(md->captured, co->amount, sizeof(co->amount));
        }
    }

    nops = 1 + (int) mc_below(r, 4);

    for (i = 0; i < nops; i++) {
        c = mc_chance(r, 25) ? from : h->nco - 1 - (int) mc_below(r, n);
        mc_draw_op(h, r, model, c);

        /* a refund racing it: sent while the first one's webhook is on
         * its way */
        if (h->nsteps > 0 && h->steps[h->nsteps - 1].kind == MC_REFUND
            && h->steps[h->nsteps - 1].co == c && mc_chance(r, 40))
        {
            co = &h->co[c];
            md = &model[c];
            o = h->steps[h->nsteps - 1].order;
            left = md->captured[o] - md->refunded[o];
            if (left > 0) {
                h->steps[h->nsteps - 1].at_once = 1;
                mc_add(h, MC_REFUND, c, o, 0, mc_part(r, co->currency, left));
                md->refunded[o] += h->steps[h->nsteps - 1].amount;
            }
        }
    }
}


/* step s at position at, the later ones moved down one */
static void
mc_insert(mc_history_t *h, int at, const mc_step_t *s)
{
    if (h->nsteps == MC_MAX_STEPS) {
        return;
    }

    memmove(&h->steps[at + 1], &h->steps[at],
            (size_t) (h->nsteps - at) * sizeof(mc_step_t));
    h->steps[at] = *s;
    h->nsteps++;
}


/* the shop's request to the gateway a step sends (a kill lands in it) */
static int
mc_to_gateway(const mc_history_t *h, const mc_step_t *s)
{
    switch (s->kind) {
    case MC_REGISTER:
        return !h->co[s->co].review;
    case MC_CANCEL:
    case MC_CAPTURE:
    case MC_VOID:
    case MC_REFUND:
    case MC_PAYOUT:
    case MC_RACE:
        return 1;
    default:
        return 0;
    }
}


/* Two operations at once on a paid checkout, as its model allows. */
static void
mc_draw_race(mc_history_t *h, mc_rng_t *r, mc_model_t *model)
{
    int          c, o, k;
    long         left, a, b;
    mc_co_t     *co;
    mc_model_t  *md;

    c = (int) mc_below(r, h->nco);
    co = &h->co[c];
    md = &model[c];
    if (!md->paid) {
        return;
    }

    o = (int) mc_below(r, co->norders);
    k = (int) mc_below(r, 100);

    if (co->manual && !md->voided && !co->charge && k < 45) {
        left = co->amount[o] - md->captured[o];
        a = mc_part(r, co->currency, left);
        if (a == 0) {
            return;
        }
        k = k < 15 ? MC_RACE_CAPTURE_VOID
            : k < 30 && co->dialect != 0 ? MC_RACE_CAPTURES
            : MC_RACE_CAPTURE_CANCEL;
        b = k == MC_RACE_CAPTURES ? mc_part(r, co->currency, left) : 0;
        mc_add(h, MC_RACE, c, o, k, a);
        h->steps[h->nsteps - 1].amount2 = b;
        /* either may win: nothing more is drawn of it */
        md->voided = 1;
        return;
    }

    left = md->captured[o] - md->refunded[o];
    if (left <= 0) {
        return;
    }

    a = mc_part(r, co->currency, left);
    if (k < 75) {
        /* together they may ask more than is left: one must lose */
        b = mc_part(r, co->currency, left);
        mc_add(h, MC_RACE, c, o, MC_RACE_REFUNDS, a);
        md->refunded[o] += a + b < left ? a + b : left;
    } else {
        b = mc_part(r, co->currency, co->amount[o] / 2 + 10);
        mc_add(h, MC_RACE, c, o, MC_RACE_REFUND_PAYOUT, a);
        md->refunded[o] += a;
    }
    h->steps[h->nsteps - 1].amount2 = b;
}


/*
 * Off-session charges that are manual captures or held for review, drawn
 * after the gateway's side from a stream of their own (so a seed's
 * earlier steps stay as they were): in a history that saved a method,
 * 1-2 more charges of it, each a manual capture (its captures, voids,
 * the hold's window running out, captures at the PSP's dashboard and
 * their reversals, then refunds and disputes of what was captured) or
 * not, held for review by the risk check and approved or not, some
 * declined by the issuer, with the registration's faults.
 */
static void
mc_draw_later_charges(mc_history_t *h, mc_model_t *model)
{
    int          c, from, i, n, nops, o;
    mc_co_t     *co;
    mc_model_t  *md;
    mc_rng_t     r;

    r.s = h->seed ^ 0x6d6334352d636867ULL;

    for (from = -1, c = 0; c < h->nco; c++) {
        if (h->co[c].save) {
            from = c;
        }
    }

    if (from < 0 || !mc_chance(&r, 70)) {
        return;
    }

    n = 1 + (int) mc_below(&r, MC_LATER_CHARGES);

    for (i = 0; i < n && h->nco < MC_MAX_CO; i++) {
        c = h->nco++;
        co = &h->co[c];
        md = &model[c];
        memset(co, 0, sizeof(mc_co_t));
        co->charge = 1;
        co->from = from;
        co->dialect = h->co[from].dialect;
        co->currency = (int) mc_below(&r, 4);
        co->norders = 1 + (int) mc_below(&r, MC_MAX_ORDERS);
        for (o = 0; o < co->norders; o++) {
            co->amount[o] = mc_amount(&r, co->currency);
            co->seller[o] = (int) mc_below(&r, 3);
        }
        co->manual = mc_chance(&r, 70);
        co->review = mc_chance(&r, 35);
        co->fault = mc_chance(&r, 30) ? (int) mc_below(&r, MC_NFAULTS) : 0;
        co->decline = mc_chance(&r, 15) ? 1 + (int) mc_below(&r, 2) : 0;

        mc_add(h, MC_REGISTER, c, 0, 0, 0);
        md->paid = co->decline == 0;

        /* held: approved (the charge sent then), or left undecided */
        if (co->review) {
            if (mc_chance(&r, 80)) {
                mc_add(h, MC_APPROVE, c, 0, 0, 0);
            } else {
                md->paid = 0;
            }
        }

        if (md->paid && !co->manual) {
            memcpy(md->captured, co->amount, sizeof(co->amount));
        }

        nops = 1 + (int) mc_below(&r, 5);
        for (o = 0; o < nops; o++) {
            mc_draw_op(h, &r, model, c);
        }
    }
}


/*
 * The compositions of the gateway's side, drawn after everything else
 * from a stream of their own (so a seed's earlier steps stay as they
 * were): which gateway the history runs on; on a gateway of its own,
 * its workers killed (in the middle of the next request) and reloads
 * inserted among the steps; with a sweeper, sessions whose webhooks are
 * never sent and sessions that run out (then paid too late); and, on
 * any gateway, operations racing on one checkout.
 */
static void
mc_draw_gateway(mc_history_t *h, mc_model_t *model)
{
    int          c, i, j, k, n, at[MC_MAX_STEPS], nat, paid;
    mc_rng_t     r;
    mc_step_t    s;

    r.s = h->seed ^ 0x6d6334312d677773ULL;

    k = (int) mc_below(&r, 100);
    h->gw = k < 20 ? MC_GW_SWEPT : k < 45 ? MC_GW_OWN : MC_GW_SUITE;

    if (h->gw == MC_GW_SWEPT) {
        for (c = 0; c < h->nco; c++) {
            if (h->co[c].charge) {
                continue;   /* an off-session charge is booked by its
                               webhook, never looked up as a session */
            }
            h->co[c].never = mc_chance(&r, 60);

            /* left unpaid (abandoned, or held for review): its time runs
             * out, and a shopper may still try to pay */
            for (paid = 0, i = 0; i < h->nsteps; i++) {
                paid |= h->steps[i].co == c
                        && (h->steps[i].kind == MC_PAY
                            || h->steps[i].kind == MC_DECLINE
                            || h->steps[i].kind == MC_CANCEL);
            }
            if (!paid && mc_chance(&r, 70)) {
                mc_add(h, MC_SESSION_END, c, 0, 0, 0);
                if (mc_chance(&r, 50)) {
                    mc_add(h, MC_PAY, c, 0, 0, 0);
                }
            }
        }
    }

    n = mc_chance(&r, 35) ? 1 + (int) mc_below(&r, 2) : 0;
    for (i = 0; i < n; i++) {
        mc_draw_race(h, &r, model);
    }

    /* the PSP forgetting its keys between a refund and the shop's retry
     * (where no fault rule of the merchant's refunds is before its own) */
    if (h->ops.refunds == 0 && mc_chance(&r, 30)) {
        c = (int) mc_below(&r, h->nco);
        j = (int) mc_below(&r, h->co[c].norders);
        if (model[c].paid && model[c].captured[j] > model[c].refunded[j]) {
            mc_add(h, MC_FORGET, c, j, 0,
                   mc_part(&r, h->co[c].currency,
                           model[c].captured[j] - model[c].refunded[j]));
            model[c].refunded[j] += h->steps[h->nsteps - 1].amount;
        }
    }

    if (h->gw == MC_GW_SUITE) {
        return;
    }

    /* kills and reloads, each before a request to the gateway (never
     * between a step and the one it races) */
    n = mc_chance(&r, 70) + mc_chance(&r, 30);
    for (i = 0; i < n; i++) {
        for (nat = 0, j = 1; j < h->nsteps; j++) {
            if (mc_to_gateway(h, &h->steps[j]) && !h->steps[j - 1].at_once) {
                at[nat++] = j;
            }
        }
        if (nat == 0) {
            return;
        }

        memset(&s, 0, sizeof(s));
        s.co = h->steps[at[0]].co;
        if (mc_chance(&r, 65)) {
            s.kind = MC_KILL;
            s.arg = (int) mc_below(&r, 120);
        } else {
            s.kind = MC_RELOAD;
        }
        j = at[mc_below(&r, nat)];
        s.co = h->steps[j].co;
        mc_insert(h, j, &s);
    }

    /* PostgreSQL restarted, only where the history runs alone: before a
     * request to the gateway, or in the middle of it */
    if (h->gw != MC_GW_SWEPT || !mc_chance(&r, 40)) {
        return;
    }
    for (nat = 0, j = 1; j < h->nsteps; j++) {
        if (mc_to_gateway(h, &h->steps[j]) && !h->steps[j - 1].at_once) {
            at[nat++] = j;
        }
    }
    if (nat > 0) {
        memset(&s, 0, sizeof(s));
        s.kind = MC_PG_RESTART;
        s.arg = (int) mc_below(&r, 300);
        j = at[mc_below(&r, nat)];
        s.co = h->steps[j].co;
        mc_insert(h, j, &s);
    }
}


/*
 * Routing, drawn last from a stream of its own (from MC_SEED_ROUTED on),
 * so that a history's steps stay what they were: only how its checkouts
 * are registered changes.  Some checkouts (not an off-session charge,
 * which is never routed; one held for review only from MC_SEED_DEAD on,
 * registered on a risk server of the history's gateway and approved
 * there) are registered without "psp"; the history's own
 * gateway has a route per currency for its merchant over two PSPs, drawn
 * with the first routed checkout of that currency so that it ends at the
 * PSP the history drew for it: that PSP first (healthy, or hanging once),
 * or second after a first that refuses it (400), that is a PSP of its
 * own whose breaker the first such checkout opens (429), or (from
 * MC_SEED_DEAD on) that is a PSP of its own on a port nothing listens on
 * (the connection refused).  A later
 * checkout of that currency is routed only where the route ends it at its
 * PSP.  Every later step then goes to the PSP claimed, as before.
 */
static void
mc_draw_routes(mc_history_t *h)
{
    int          c, k, other, trip;
    mc_co_t     *co;
    mc_rng_t     r;
    mc_route_t  *rt;

    r.s = h->seed ^ 0x6d6335722d6f7574ULL;
    trip = -1;

    if (h->seed < MC_SEED_ROUTED || !mc_chance(&r, MC_ROUTED_PCT)) {
        return;
    }

    for (c = 0; c < h->nco; c++) {
        co = &h->co[c];
        if (co->charge || (co->review && h->seed < MC_SEED_DEAD)
            || !mc_chance(&r, 75)
            || (co->currency == MC_KWD && co->dialect == 0))
        {
            continue;
        }

        rt = &h->route[co->currency];

        if (!rt->used) {
            rt->used = 1;
            other = (co->dialect + 1 + (int) mc_below(&r, 2)) % 3;
            if (co->currency == MC_KWD && other == 0) {
                other = 3 - co->dialect;
            }
            k = (int) mc_below(&r, 100);
            if (co->review) {
                /* its own PSP first (below), or from MC_SEED_APPROVED on
                 * second after a first that refuses it or is dead; never
                 * the tripped PSP's route */
                k = h->seed >= MC_SEED_APPROVED ? 30 + k % 70 : 30 + k % 35;
            }
            if (k < 30) {
                /* the history's one tripped PSP where it can (its
                 * breaker, once open, passes over the checkouts of every
                 * route it is the first of) */
                rt->first = MC_TRIPPED;
                rt->trip = trip >= 0 && trip != co->dialect
                           && !(co->currency == MC_KWD && trip == 0)
                           ? trip : other;
                trip = trip >= 0 ? trip : other;
                rt->second = co->dialect;
            } else if (k < 65) {
                rt->first = co->dialect;
                rt->second = other;
            } else {
                rt->first = other;
                rt->second = co->dialect;
                if (h->seed >= MC_SEED_DEAD && mc_chance(&r, 50)) {
                    /* nothing listens where it points: every checkout
                     * of the route moves on from it, none is held there */
                    rt->first = MC_DEAD;
                    rt->trip = other;
                }
            }
        }

        if (co->dialect == rt->first && co->review) {
            /* held for review at the PSP the route bound first, which
             * takes it when the approval sends it there */
            co->routed = MC_RT_FIRST;
        } else if (co->review
                   && (h->seed < MC_SEED_APPROVED
                       || co->dialect != rt->second
                       || rt->first == MC_TRIPPED))
        {
            /* before MC_SEED_APPROVED a held checkout is routed only
             * where its route's first is its PSP; never behind the
             * tripped PSP (whose circuit the route's checkouts open) */
            continue;
        } else if (co->review) {
            /* held at the route's first PSP, which refuses it (or its
             * connection) when the approval sends it there: the
             * approval moves it on to the second, its PSP, in the same
             * request, as its registration would have (doc/RISK.md,
             * "Review") */
            co->routed = rt->first == MC_DEAD ? MC_RT_DEAD : MC_RT_REFUSED;
        } else if (co->dialect == rt->first) {
            /* hanging once, where the checkout's own fault is a
             * webhook's (one rule per nonce holds both) */
            co->routed = co->fault <= MC_FAULT_OUT_OF_ORDER
                         && mc_chance(&r, 35) ? MC_RT_HANG : MC_RT_FIRST;
        } else if (co->dialect == rt->second) {
            co->routed = rt->first == MC_TRIPPED ? MC_RT_TRIPPED
                         : rt->first == MC_DEAD ? MC_RT_DEAD : MC_RT_REFUSED;
        } else {
            continue;       /* the route would not end it at its PSP */
        }

        h->routed++;
    }
}


/* the ordinal of step i among the history's pay-out steps */
static int
mc_payout_ordinal(const mc_history_t *h, int i)
{
    int  j, n;

    for (n = 0, j = 0; j < i; j++) {
        n += h->steps[j].kind == MC_PAYOUT;
    }

    return n;
}


/* the step of the history's n-th pay-out step, or -1 */
static int
mc_payout_step(const mc_history_t *h, int n)
{
    int  j;

    for (j = 0; j < h->nsteps; j++) {
        if (h->steps[j].kind == MC_PAYOUT && n-- == 0) {
            return j;
        }
    }

    return -1;
}


/*
 * Pay-outs the PSP takes back after paying them, drawn last from a stream
 * of their own (so a seed's earlier steps stay as they were; from
 * MC_SEED_PAYOUT_BACK on): after a pay-out step (at a place drawn among
 * the later steps, never inside a composition that wants its next step:
 * one sent at once, a kill's or a restart's), at Stripe 1-2 parts of it
 * (transfer.reversed, its amount_reversed running), sometimes then the
 * rest, or the whole of it at once in any dialect (Stripe's reversed,
 * Adyen's returned, the generic payout.failed); a part taken back
 * sometimes sends the next at once, its webhook still on its way.  Where
 * the history's pay-outs have no fault rule of their own, the first
 * taking back's webhook is sometimes delayed or duplicated (a rule on the
 * pay-out's nonce, which its later events share).
 */
static void
mc_draw_payout_backs(mc_history_t *h)
{
    int          i, j, k, n, at[MC_MAX_STEPS], nat, first;
    long         unit, left, a;
    mc_rng_t     r;
    mc_step_t    s, p;

    if (h->seed < MC_SEED_PAYOUT_BACK) {
        return;
    }

    r.s = h->seed ^ 0x6d6336302d707962ULL;

    for (i = 0; i < h->nsteps; i++) {
        if (h->steps[i].kind != MC_PAYOUT
            || !mc_chance(&r, MC_PAYOUT_BACK_PCT))
        {
            continue;
        }

        p = h->steps[i];

        /* where: after it, never between a step and the next it wants */
        for (nat = 0, j = i + 1; j <= h->nsteps; j++) {
            if (!h->steps[j - 1].at_once
                && h->steps[j - 1].kind != MC_KILL
                && h->steps[j - 1].kind != MC_PG_RESTART)
            {
                at[nat++] = j;
            }
        }
        if (nat == 0) {
            continue;
        }
        j = at[mc_below(&r, nat)];

        memset(&s, 0, sizeof(s));
        s.kind = MC_PAYOUT_BACK;
        s.co = p.co;
        s.order = p.order;
        s.arg = mc_payout_ordinal(h, i);
        k = h->ops.payouts != 0 ? 100 : (int) mc_below(&r, 100);
        s.knob = k < 25 ? MC_BACK_DELAYED : k < 45 ? MC_BACK_DUPLICATED
                 : MC_BACK_PLAIN;

        unit = mc_exponents[h->co[p.co].currency] == 3 ? 10 : 1;
        first = j;

        if (p.arg == 0 && p.amount >= 2 * unit && mc_chance(&r, 65)) {
            /* Stripe: 1-2 parts, each less than what is left */
            n = 1 + (int) mc_below(&r, 2);
            left = p.amount;
            for (k = 0; k < n && left >= 2 * unit
                        && h->nsteps < MC_MAX_STEPS; k++)
            {
                a = unit * (1 + mc_below(&r, left / unit - 1));
                s.amount = a;
                s.at_once = 0;
                mc_insert(h, j++, &s);
                s.knob = MC_BACK_PLAIN;     /* the rule stays the nonce's */
                left -= a;
            }
            if (mc_chance(&r, 40) && h->nsteps < MC_MAX_STEPS) {
                s.amount = 0;               /* then the rest */
                mc_insert(h, j++, &s);
            }
            /* a part sometimes sends the next at once */
            for (k = first; k < j - 1; k++) {
                h->steps[k].at_once = mc_chance(&r, 30);
            }
        } else if (h->nsteps < MC_MAX_STEPS) {
            s.amount = 0;                   /* whole */
            mc_insert(h, j++, &s);
        }
    }
}


/* what a window of a PSP removed may hold: no registration (a route may
 * choose it) nor cancel, nothing that wants its next step (a kill, a
 * restart), no race, no keys forgotten, no other reload */
static int
mc_gone_may(const mc_step_t *s)
{
    switch (s->kind) {
    case MC_PAY:
    case MC_DECLINE:
    case MC_CAPTURE:
    case MC_VOID:
    case MC_REFUND:
    case MC_DISPUTE:
    case MC_CLOSE:
    case MC_OUTSIDE:
    case MC_REVERSE:
    case MC_PAYOUT:
    case MC_EXPIRE:
    case MC_PAYOUT_BACK:
        return 1;
    default:
        return 0;
    }
}


/* 1 if step s is, as drawn, an operation the shop asks of the PSP of
 * dialect d through the gateway */
static int
mc_drawn_op_of(const mc_history_t *h, const mc_step_t *s, int d)
{
    if (s->kind == MC_PAYOUT) {
        return s->arg == d;
    }

    return (s->kind == MC_CAPTURE || s->kind == MC_VOID
            || s->kind == MC_REFUND)
           && h->co[s->co].dialect == d;
}


/*
 * 70 % of the time the PSP of dialect d opens a dispute of a checkout it
 * holds, paid before the window's step g (none of whose operations the
 * window holds: held), at step b, just before the window closes: its
 * webhook comes meanwhile (Adyen's payment is charged back once).  room:
 * the steps still to be inserted.
 */
static void
mc_draw_window_dispute(mc_history_t *h, mc_rng_t *r, int g, int b, int d,
    const int *held, int room)
{
    int        c, i, ndc, paid, disputes, dn[MC_MAX_CO], dc[MC_MAX_CO];
    mc_step_t  s;

    for (ndc = 0, c = 0; c < h->nco; c++) {
        for (paid = 0, disputes = 0, i = 0; i < h->nsteps; i++) {
            paid |= h->steps[i].co == c && i < g
                    && (h->steps[i].kind == MC_PAY
                        || (h->steps[i].kind == MC_REGISTER
                            && h->co[c].charge && !h->co[c].decline
                            && !h->co[c].review));
            disputes += h->steps[i].co == c
                        && h->steps[i].kind == MC_DISPUTE;
        }
        if (paid && !held[c] && h->co[c].dialect == d
            && disputes < (d == 1 ? 1 : 4))
        {
            dc[ndc++] = c;
            dn[c] = disputes;
        }
    }
    if (ndc > 0 && mc_chance(r, 70) && h->nsteps + room <= MC_MAX_STEPS) {
        c = dc[mc_below(r, ndc)];
        memset(&s, 0, sizeof(s));
        s.kind = MC_DISPUTE;
        s.co = c;
        s.arg = dn[c];
        s.amount = mc_part(r, h->co[c].currency, h->co[c].amount[0]);
        mc_insert(h, b, &s);
    }
}


/*
 * A PSP removed from the history's gateway for a while, drawn last from a
 * stream of its own (from MC_SEED_PSP_GONE on, on a gateway of its own,
 * where reloads happen): around one of the shop's operations of a PSP
 * (capture, void, refund of a checkout it holds, or a pay-out at it), a
 * window of 1-4 steps or more (only steps it may hold: mc_gone_may, and
 * none at the PSP on a checkout with an operation held before it, so the
 * model's order stays) opens with a reload without that PSP and every
 * route naming it, and closes with a reload with them again.  Right after
 * the first: 1-2 retries under their keys of the shop's earlier requests
 * of that PSP (a registration whose PSP's answer was dropped first), to be
 * replayed from what is stored.  Each operation of that PSP in the window
 * is refused as new (nothing stored) and sent again under its key once it
 * is back; sometimes (where no fault rule of the merchant's is on its kind
 * of nonce) the first is sent before the removal and left unanswered (the
 * PSP hanging), so that its retry meanwhile is 503 not_configured.  The
 * PSP's own steps in the window (payments, disputes, captures at its
 * dashboard, reversals, pay-outs taken back) go on, their webhooks to the
 * suite's gateway, which keeps every PSP; most of the time the PSP also
 * opens a dispute just before it is back, so that an event of it comes
 * meanwhile (mc_gone_webhooks delivers those again at the history's
 * gateway).
 */
static void
mc_draw_psp_gone(mc_history_t *h)
{
    int          b, c, d, g, i, j, k, n, t, w, want, nrep, ncand;
    int          cand[MC_MAX_STEPS], held[MC_MAX_CO], ops;
    mc_rng_t     r;
    mc_step_t    s;

    if (h->seed < MC_SEED_PSP_GONE || h->gw != MC_GW_OWN) {
        return;
    }

    r.s = h->seed ^ 0x6d6337302d676f6eULL;

    if (!mc_chance(&r, MC_PSP_GONE_PCT)) {
        return;
    }

    for (ncand = 0, i = 1; i < h->nsteps; i++) {
        if (mc_gone_may(&h->steps[i])
            && (mc_drawn_op_of(h, &h->steps[i], 0)
                || mc_drawn_op_of(h, &h->steps[i], 1)
                || mc_drawn_op_of(h, &h->steps[i], 2)))
        {
            cand[ncand++] = i;
        }
    }
    if (ncand == 0) {
        return;
    }

    t = cand[mc_below(&r, ncand)];
    d = h->steps[t].kind == MC_PAYOUT ? h->steps[t].arg
                                      : h->co[h->steps[t].co].dialect;

    /* it opens at t or 1-2 steps before, never between a step and the
     * next it wants */
    g = t;
    for (n = (int) mc_below(&r, 3); n > 0 && mc_gone_may(&h->steps[g - 1]);
         n--)
    {
        g--;
    }
    while (h->steps[g - 1].at_once && mc_gone_may(&h->steps[g - 1])) {
        g--;
    }
    if (h->steps[g - 1].at_once || h->steps[g - 1].kind == MC_KILL
        || h->steps[g - 1].kind == MC_PG_RESTART)
    {
        return;
    }

    /* and closes after t, 1-4 steps in, or before a step at the PSP on a
     * checkout whose operation it holds */
    want = 1 + (int) mc_below(&r, 4);
    memset(held, 0, sizeof(held));
    for (ops = 0, n = 0, b = g; b < h->nsteps; b++) {
        if (!mc_gone_may(&h->steps[b])
            || (b > t && n >= want && !h->steps[b - 1].at_once)
            || (!mc_drawn_op_of(h, &h->steps[b], d)
                && held[h->steps[b].co]))
        {
            break;
        }
        if (mc_drawn_op_of(h, &h->steps[b], d)) {
            held[h->steps[b].co] = 1;
            ops++;
        }
        n++;
    }
    if (ops == 0 || h->steps[b - 1].at_once) {
        return;
    }

    /* the retries of what was asked of it before */
    for (ncand = 0, w = -1, i = 0; i < g; i++) {
        c = h->steps[i].co;
        if ((h->steps[i].kind == MC_REGISTER || h->steps[i].kind == MC_CANCEL)
            && h->co[c].dialect == d && !h->co[c].review)
        {
            cand[ncand++] = i;
            if (h->steps[i].kind == MC_REGISTER
                && h->co[c].fault == MC_FAULT_DROP)
            {
                w = i;
            }
        } else if (mc_drawn_op_of(h, &h->steps[i], d)) {
            cand[ncand++] = i;
        }
    }
    nrep = ncand > 0 ? 1 + (int) mc_below(&r, 2) : 0;
    if (h->nsteps + 2 + nrep > MC_MAX_STEPS) {
        return;
    }

    memset(&s, 0, sizeof(s));
    s.kind = MC_PSP_BACK;
    s.arg = d;
    s.co = h->steps[b - 1].co;
    mc_insert(h, b, &s);

    mc_draw_window_dispute(h, &r, g, b, d, held, 2 + nrep);

    for (k = 0; k < nrep; k++) {
        memset(&s, 0, sizeof(s));
        s.kind = MC_REPLAY;
        s.arg = k == 0 && w >= 0 ? w : cand[mc_below(&r, ncand)];
        s.co = h->steps[s.arg].co;
        mc_insert(h, g, &s);
    }

    /* the first operation of it sent before the removal, unanswered:
     * where its kind of nonce has no fault rule of the merchant's before
     * the one that makes the PSP hang, nor one after it would hide */
    for (j = g; !mc_drawn_op_of(h, &h->steps[j], d); j++) {
        /* the window's first operation of the PSP */
    }
    k = h->steps[j].kind;
    for (n = 0, i = 0; i < h->nsteps; i++) {
        n |= h->steps[i].kind == MC_FORGET
             || (h->steps[i].kind == MC_PAYOUT_BACK
                 && h->steps[i].knob != MC_BACK_PLAIN);
    }

    memset(&s, 0, sizeof(s));
    s.kind = MC_PSP_GONE;
    s.arg = d;
    s.co = h->steps[j].co;
    s.knob = ((k == MC_CAPTURE && h->ops.captures == 0) || k == MC_VOID
              || (k == MC_REFUND && h->ops.refunds == 0 && !n)
              || (k == MC_PAYOUT && h->ops.payouts == 0 && !n))
             && mc_chance(&r, 60);
    mc_insert(h, g, &s);
}


/* 1 if checkout c is registered at the history's gateway as a new
 * checkout naming the PSP of dialect d (or an off-session charge of a
 * method saved there): refused while that PSP is closed.  One held for
 * review is registered at the suite's risk server, unless routed. */
static int
mc_names_psp(const mc_history_t *h, int c, int d)
{
    const mc_co_t  *co = &h->co[c];

    return !co->routed && !co->review && co->dialect == d;
}


/* what a window of a PSP closed may hold: what one of a PSP removed may,
 * cancels, registrations and approvals, but none whose route would claim
 * it elsewhere than drawn (a routed checkout whose route has that PSP
 * before the one that claims it, or where it moves on to), nothing that
 * wants its next step (a kill, a restart), no race, no keys forgotten, no
 * other reload */
static int
mc_closed_may(const mc_history_t *h, const mc_step_t *s, int d)
{
    const mc_co_t     *co = &h->co[s->co];
    const mc_route_t  *rt = &h->route[co->currency];

    switch (s->kind) {
    case MC_CANCEL:
        return 1;
    case MC_REGISTER:
        return !co->routed || (rt->first != d && rt->second != d)
               || (rt->second == d
                   && (co->routed == MC_RT_FIRST
                       || co->routed == MC_RT_HANG));
    case MC_APPROVE:
        /* sent where its route bound it (doc/OPERATIONS.md, "Retiring a
         * PSP"), unless it moves on to the closed one */
        return !co->routed || co->dialect != d || rt->first == d;
    default:
        return mc_gone_may(s);
    }
}


/*
 * A PSP closed on the history's gateway for a while (payments_psp ...
 * closed; doc/OPERATIONS.md, "Retiring a PSP"), drawn last from a stream
 * of its own (from MC_SEED_PSP_CLOSED on, on a gateway of its own): around
 * a registration naming a PSP or one of the shop's operations of it, a
 * window of 1-4 steps or more (only steps it may hold: mc_closed_may)
 * opens with a reload with that PSP closed and closes with a reload with
 * it open.  Each registration naming it in the window is refused as a new
 * checkout (nothing stored, nothing sent) and sent again once it is open,
 * so the window closes before the next step of its checkout; half the
 * time the first (a checkout without fault rules of its own) is instead
 * sent before the close and left unanswered (the PSP hanging), so that its
 * retry in the window is sent there (201) and its checkout goes on.
 * Right after the close: 1-2 retries under their keys of the shop's
 * earlier requests of that PSP (a registration first: one whose answer
 * was dropped, if any), replayed.  Everything else of the PSP (captures,
 * voids, refunds, pay-outs, approvals, the PSP's own steps) goes on as if
 * it were open; most of the time it also opens a dispute just before it
 * opens again, so that an event of it comes meanwhile.  Returns 1 if
 * drawn.
 */
static int
mc_draw_psp_closed(mc_history_t *h)
{
    int          b, c, d, f, g, i, k, n, t, w, want, nrep, ncand, nreg, fc;
    int          cand[MC_MAX_STEPS], cd[MC_MAX_STEPS], reg[MC_MAX_STEPS];
    int          held[MC_MAX_CO];
    mc_rng_t     r;
    mc_step_t    s;
    const mc_step_t  *o;

    if (h->seed < MC_SEED_PSP_CLOSED || h->gw != MC_GW_OWN) {
        return 0;
    }

    r.s = h->seed ^ 0x6d6339302d636c6fULL;

    if (!mc_chance(&r, MC_PSP_CLOSED_PCT)) {
        return 0;
    }

    /* around a registration naming a PSP, or an operation of it */
    for (ncand = 0, i = 1; i < h->nsteps; i++) {
        for (d = 0; d < 3; d++) {
            o = &h->steps[i];
            if (mc_closed_may(h, o, d)
                && ((o->kind == MC_REGISTER && mc_names_psp(h, o->co, d))
                    || mc_drawn_op_of(h, o, d)))
            {
                cand[ncand] = i;
                cd[ncand++] = d;
            }
        }
    }
    if (ncand == 0) {
        return 0;
    }

    k = (int) mc_below(&r, ncand);
    t = cand[k];
    d = cd[k];

    /* it opens at t or 1-2 steps before, never between a step and the
     * next it wants */
    g = t;
    for (n = (int) mc_below(&r, 3);
         n > 0 && g > 1 && mc_closed_may(h, &h->steps[g - 1], d); n--)
    {
        g--;
    }
    while (g > 1 && h->steps[g - 1].at_once
           && mc_closed_may(h, &h->steps[g - 1], d))
    {
        g--;
    }
    if (h->steps[g - 1].at_once || h->steps[g - 1].kind == MC_KILL
        || h->steps[g - 1].kind == MC_PG_RESTART)
    {
        return 0;
    }

    /* its first registration naming the PSP, half the time sent before
     * the close and left unanswered: one whose nonce has no fault rule of
     * its own (the hang is one) */
    for (f = -1, i = g; i < h->nsteps && mc_closed_may(h, &h->steps[i], d);
         i++)
    {
        if (h->steps[i].kind == MC_REGISTER
            && mc_names_psp(h, h->steps[i].co, d))
        {
            c = h->steps[i].co;
            f = !h->co[c].charge && h->co[c].fault == MC_FAULT_NONE
                && !h->co[c].never && mc_chance(&r, 50) ? i : -1;
            break;
        }
    }

    /* and closes after t, 1-4 steps in, or before a step of a checkout
     * whose registration it refused (or a charge of its method) */
    want = 1 + (int) mc_below(&r, 4);
    memset(held, 0, sizeof(held));
    for (n = 0, b = g; b < h->nsteps; b++) {
        o = &h->steps[b];
        if (!mc_closed_may(h, o, d)
            || (b > t && n >= want && !h->steps[b - 1].at_once)
            || held[o->co]
            || (o->kind == MC_REGISTER && h->co[o->co].charge
                && held[h->co[o->co].from]))
        {
            break;
        }
        if (o->kind == MC_REGISTER && mc_names_psp(h, o->co, d) && b != f) {
            held[o->co] = 1;
        }
        n++;
    }
    if (b <= t || h->steps[b - 1].at_once) {
        return 0;
    }
    fc = h->steps[f >= 0 ? f : t].co;     /* (before the insertions) */

    /* the retries of what was asked of it before: a registration first */
    for (ncand = 0, nreg = 0, w = -1, i = 0; i < g; i++) {
        c = h->steps[i].co;
        if ((h->steps[i].kind == MC_REGISTER || h->steps[i].kind == MC_CANCEL)
            && h->co[c].dialect == d && !h->co[c].review)
        {
            cand[ncand++] = i;
            if (h->steps[i].kind == MC_REGISTER) {
                reg[nreg++] = i;
                if (h->co[c].fault == MC_FAULT_DROP && w < 0) {
                    w = i;
                }
            }
        } else if (mc_drawn_op_of(h, &h->steps[i], d)) {
            cand[ncand++] = i;
        }
    }
    nrep = ncand > 0 ? 1 + (int) mc_below(&r, 2) : 0;
    if (h->nsteps + 2 + nrep > MC_MAX_STEPS) {
        return 0;
    }

    memset(&s, 0, sizeof(s));
    s.kind = MC_PSP_OPEN;
    s.arg = d;
    s.co = h->steps[b - 1].co;
    mc_insert(h, b, &s);

    memset(held, 0, sizeof(held));
    mc_draw_window_dispute(h, &r, g, b, d, held, 1 + nrep);

    for (k = 0; k < nrep; k++) {
        memset(&s, 0, sizeof(s));
        s.kind = MC_REPLAY;
        s.arg = k > 0 ? cand[mc_below(&r, ncand)]
                : w >= 0 ? w
                : nreg > 0 ? reg[mc_below(&r, nreg)]
                : cand[mc_below(&r, ncand)];
        s.co = h->steps[s.arg].co;
        mc_insert(h, g, &s);
    }

    memset(&s, 0, sizeof(s));
    s.kind = MC_PSP_CLOSE;
    s.arg = d;
    s.knob = f >= 0;
    s.co = fc;
    mc_insert(h, g, &s);

    return 1;
}


/* the commission's rates drawn (10000: the platform keeps every order
 * whole, its sellers nothing), and its fixed part in each of
 * mc_currencies' minor units: 0.30 USD, 30 JPY, 0.300 KWD, 0.25 EUR */
static const int   mc_bps[] = { 150, 290, 290, 1234, 1234, 4999, 10000 };
static const long  mc_fixed[4] = { 30, 30, 300, 25 };


/* the merchant's commission, from its own stream of the seed (the steps
 * drawn before it stay as they were) */
static void
mc_draw_commission(mc_history_t *h)
{
    mc_rng_t  r;

    if (h->seed < MC_SEED_COMMISSION) {
        return;
    }

    r.s = h->seed ^ 0x6d632d636f6d6d69ULL;

    if (!mc_chance(&r, MC_COMMISSION_PCT)) {
        return;
    }

    h->bps = mc_bps[mc_below(&r, (long) (sizeof(mc_bps) / sizeof(mc_bps[0])))];
    h->fixed = mc_chance(&r, 40);
}


/*
 * Off-session charges whose every answer is lost, from a stream of their
 * own (from MC_SEED_LOST on, in a history with a sweeper): a charge at
 * Stripe or the generic PSP is taken, declined, or (held for review)
 * sent at its approval, and the PSP's answer to it and to every retry of
 * it is dropped, its webhook never sent: the shop's one request ends
 * 5xx.  The step then waits for the sweeper's round to decide it, and
 * the shop's retry must find it decided (mc_lost_settled); its later
 * steps (refunds, disputes, captures of a hold, pay-outs) go on from
 * there.  From MC_SEED_LOST_ADYEN on, a charge at Adyen, in any history,
 * may lose its answers too; its webhook comes late (Adyen's Checkout API
 * has no look-up of a payment by reference: only its webhook, or the
 * shop's retry, settles one there), and decides it.  Its registration's
 * other fault, if any, is replaced: one rule per nonce.
 */
static void
mc_draw_lost(mc_history_t *h)
{
    int        c;
    mc_rng_t   r;

    if (h->seed < MC_SEED_LOST
        || (h->gw != MC_GW_SWEPT && h->seed < MC_SEED_LOST_ADYEN))
    {
        return;
    }

    r.s = h->seed ^ 0x6d632d6c6f737421ULL;

    for (c = 0; c < h->nco; c++) {
        if (h->co[c].charge
            && (h->co[c].dialect == 1 ? h->seed >= MC_SEED_LOST_ADYEN
                                      : h->gw == MC_GW_SWEPT)
            && mc_chance(&r, MC_LOST_PCT))
        {
            h->co[c].lost = 1;
            h->co[c].fault = MC_FAULT_NONE;
        }
    }
}


/*
 * Off-session charges that need the shopper, from a stream of their own
 * (from MC_SEED_AUTH on): a charge whose answer comes and that the issuer
 * does not decline may instead need the shopper's authentication (the
 * mock's charge rule authentication_required; Stripe's 402
 * authentication_required, Adyen's RedirectShopper, the generic PSP's
 * requires_action).  The gateway answers 202 with a pay link to a hosted
 * page at that PSP (doc/API.md, "next_action"), and the shopper pays
 * there right after (after the approval of one held for review): its
 * later steps go on from there, as drawn.  From MC_SEED_AUTH_LEFT on,
 * from a stream of its own, some are not paid at once (mc_auth_e).
 */
static void
mc_draw_auth(mc_history_t *h)
{
    int        c, i, at, n, k, late, paid = 0;
    mc_rng_t   r, left, alone;
    mc_step_t  s[2];

    if (h->seed < MC_SEED_AUTH) {
        return;
    }

    r.s = h->seed ^ 0x6d632d6175746821ULL;
    left.s = h->seed ^ 0x6d632d6c65667421ULL;
    alone.s = h->seed ^ 0x6d632d616c6f6e65ULL;

    for (c = 0; c < h->nco; c++) {
        if (!h->co[c].charge || h->co[c].decline
            || (h->co[c].lost
                && (h->seed < MC_SEED_AUTH_LOST
                    || (h->co[c].review
                        && h->seed < MC_SEED_AUTH_LOST_REVIEW)))
            || !mc_chance(&r, MC_AUTH_PCT))
        {
            continue;
        }

        /* paid at its pay link right after the step that sends the
         * charge: its registration, or the approval of one held */
        for (at = -1, i = 0; i < h->nsteps; i++) {
            if (h->steps[i].co == c
                && (h->co[c].review ? h->steps[i].kind == MC_APPROVE
                                    : h->steps[i].kind == MC_REGISTER))
            {
                at = i;
                break;
            }
        }
        if (at < 0) {
            continue;   /* held and never approved: never sent */
        }

        /* the shopper pays there at once; or (from MC_SEED_AUTH_LEFT on)
         * the shop cancels it, or the shopper does not come: its page's
         * time runs out (the sweeper decides it), or, on a gateway
         * without a sweeper, it stays open.  Then, for half of them, the
         * shopper pays at the page after all: right after the cancel or
         * the page's end, or at the history's end */
        memset(s, 0, sizeof(s));
        s[0].kind = MC_PAY;
        s[0].co = s[1].co = c;
        n = 1;
        late = 0;
        k = h->seed >= MC_SEED_AUTH_LEFT
            && mc_chance(&left, MC_AUTH_LEFT_PCT)
            ? 1 + (int) mc_below(&left, 2) : MC_AUTH_PAID;
        if (k != MC_AUTH_PAID) {
            s[0].kind = k == MC_AUTH_CANCELED ? MC_CANCEL : MC_SESSION_END;
            paid = mc_chance(&left, 50);
            if (s[0].kind == MC_SESSION_END && h->gw != MC_GW_SWEPT) {
                k = MC_AUTH_OPEN;
                n = 0;
                late = paid;
            } else if (paid) {
                s[n++].kind = MC_PAY;
            }
        }

        /* its every answer lost, the shop may not retry it: no page, so
         * no shopper's steps */
        if (h->seed >= MC_SEED_AUTH_LOST_ALONE && h->co[c].lost
            && h->gw == MC_GW_SWEPT && h->co[c].dialect != 1
            && mc_chance(&alone, MC_AUTH_ALONE_PCT))
        {
            h->co[c].auth_alone = 1;
            k = MC_AUTH_PAID;
            n = 0;
            late = 0;
            paid = 0;
        }

        if (h->nsteps + n + late > MC_MAX_STEPS) {
            return;
        }
        h->co[c].auth = 1;
        h->co[c].auth_left = k;
        h->co[c].auth_left_paid = k != MC_AUTH_PAID && paid;

        for (i = 0; i < n; i++) {
            mc_insert(h, at + 1 + i, &s[i]);
        }
        if (late) {
            mc_add(h, MC_PAY, c, 0, 0, 0);
        }

        /* a replay names its step by place */
        for (i = at + 1 + n; i < h->nsteps; i++) {
            if (h->steps[i].kind == MC_REPLAY && h->steps[i].arg > at) {
                h->steps[i].arg += n;
            }
        }
    }
}


static void
mc_generate(mc_history_t *h, uint64_t seed)
{
    int          c, i, k, nops, o;
    mc_rng_t     r;
    mc_co_t     *co;
    mc_model_t   model[MC_MAX_CO], *md;

    memset(h, 0, sizeof(*h));
    memset(model, 0, sizeof(model));
    h->seed = seed;
    r.s = seed;

    h->nco = 1 + (int) mc_below(&r, MC_DRAWN_CO);
    h->ops.captures = (int) mc_below(&r, 4) * mc_chance(&r, 50);
    h->ops.refunds = (int) mc_below(&r, 4) * mc_chance(&r, 50);
    h->ops.payouts = (int) mc_below(&r, 3) * mc_chance(&r, 50);

    for (c = 0; c < h->nco; c++) {
        co = &h->co[c];
        co->dialect = (int) mc_below(&r, 3);
        co->currency = (int) mc_below(&r, 4);
        co->norders = 1 + (int) mc_below(&r, MC_MAX_ORDERS);
        for (o = 0; o < co->norders; o++) {
            co->amount[o] = mc_amount(&r, co->currency);
            co->seller[o] = (int) mc_below(&r, 3);
        }
        co->manual = mc_chance(&r, 55);
        co->review = mc_chance(&r, 15);
        co->fault = mc_chance(&r, 50) ? (int) mc_below(&r, MC_NFAULTS) : 0;
    }

    /* registrations, then each shopper */
    for (c = 0; c < h->nco; c++) {
        co = &h->co[c];
        md = &model[c];
        mc_add(h, MC_REGISTER, c, 0, 0, 0);

        if (co->review) {
            if (!mc_chance(&r, 85)) {
                continue;           /* left held */
            }
            mc_add(h, MC_APPROVE, c, 0, 0, 0);
        }

        k = (int) mc_below(&r, 100);

        if (k < 72) {
            mc_add(h, MC_PAY, c, 0, 0, 0);
            md->paid = 1;
        } else if (k < 80) {
            mc_add(h, MC_DECLINE, c, 0, 0, 0);
        } else if (k < 88) {
            /* abandoned: nothing */
        } else {
            mc_add(h, MC_CANCEL, c, 0, 0, 0);
            md->canceled = 1;
            if (mc_chance(&r, 50)) {
                mc_add(h, MC_PAY, c, 0, 0, 0);  /* paid after the cancel */
            }
        }

        if (md->paid && !co->manual) {
            memcpy(md->captured, co->amount, sizeof(co->amount));
        }
    }

    /* then the money, interleaved over the checkouts */
    nops = 2 + (int) mc_below(&r, 10);

    for (i = 0; i < nops; i++) {
        mc_draw_op(h, &r, model, (int) mc_below(&r, h->nco));
    }

    mc_draw_charges(h, &r, model);
    mc_draw_gateway(h, model);
    mc_draw_later_charges(h, model);
    mc_draw_routes(h);
    mc_draw_payout_backs(h);
    if (!mc_draw_psp_closed(h)) {
        mc_draw_psp_gone(h);
    }
    mc_draw_commission(h);
    mc_draw_lost(h);
    mc_draw_auth(h);
}


/* "12.34" of minor units */
static char *
mc_decimal(long minor, int currency)
{
    int   e;
    long  p;

    e = mc_exponents[currency];
    if (e == 0) {
        return str_printf("%ld", minor);
    }

    p = e == 2 ? 100 : 1000;

    return str_printf("%ld.%0*ld", minor / p, e, minor % p);
}


static const char *mc_psp(int dialect);


/* a route's PSP (at 0: its first, 1: its second), by name */
static const char *
mc_route_psp(const mc_route_t *rt, int at)
{
    if (at == 0 && rt->first == MC_TRIPPED) {
        return str_printf("mc_trip_%s", mc_dialects[rt->trip]);
    }
    if (at == 0 && rt->first == MC_DEAD) {
        return str_printf("mc_dead_%s", mc_dialects[rt->trip]);
    }

    return mc_psp(at == 0 ? rt->first : rt->second);
}


static void
mc_print(const mc_history_t *h, const int *keep, const char *const *out)
{
    int               i, o;
    const mc_co_t    *co;
    const mc_step_t  *s;

    mc_say("history of seed %" PRIu64 " (replay: make money-check "
                "SEED=%" PRIu64 "%s): %son %s; merchant faults: captures %d, "
                "refunds %d, pay-outs %d%s", h->seed, h->seed,
                shards_n() > 1 ? " SHARDS=1" : "",
                shards_n() > 1
                ? str_printf("its merchant on shard %s, ", shard_name((int)
                             (h->seed % (uint64_t) shards_n())))
                : "",
                mc_gw_names[h->gw], h->ops.captures, h->ops.refunds,
                h->ops.payouts,
                h->bps == 0 && !h->fixed ? ""
                : str_printf("; commission %d bps%s", h->bps,
                             h->fixed ? " + 0.30 USD, 30 JPY, 0.300 KWD, "
                                        "0.25 EUR" : ""));

    for (i = 0; i < 4; i++) {
        if (h->route[i].used) {
            mc_say("  route for %s: %s, then %s", mc_currencies[i],
                   mc_route_psp(&h->route[i], 0),
                   mc_route_psp(&h->route[i], 1));
        }
    }

    for (i = 0; i < h->nco; i++) {
        int  j, used;

        for (used = 0, j = 0; j < h->nsteps; j++) {
            used |= h->steps[j].co == i && (keep == NULL || keep[j]);
        }
        if (!used) {
            continue;
        }

        co = &h->co[i];
        mc_say("  checkout %d: %s%s, %s, %s capture%s%s, PSP %s%s", i,
                    co->routed ? str_printf("routed (%s) to ",
                                            mc_rt_names[co->routed]) : "",
                    mc_dialects[co->dialect], mc_currencies[co->currency],
                    co->manual ? "manual" : "automatic",
                    co->review ? ", held for review" : "",
                    co->save ? ", saves the shopper's method"
                    : co->charge
                    ? str_printf(", an off-session charge of checkout "
                                 "%d's method%s%s", co->from,
                                 co->decline ? ", declined: " : "",
                                 co->decline ? mc_declines[co->decline]
                                 : co->auth ? str_printf(
                                       ", needs the shopper (a pay link)%s%s",
                                       mc_auth_names[co->auth_left],
                                       co->auth_left_paid
                                       ? ", then paid there after all" : "")
                                 : "")
                    : "",
                    mc_fault_names[co->fault],
                    co->never ? ", its session's webhooks never sent"
                    : co->lost && co->auth_alone
                    ? ", its every answer lost, the shop back only once its "
                      "time ran out"
                    : co->lost && co->auth
                    ? (co->review ? ", its every answer lost until it is "
                                    "approved again"
                                  : ", its every answer lost until the "
                                    "shop's retry")
                    : co->lost && co->dialect == 1
                    ? ", its every answer lost and its webhook late"
                    : co->lost ? ", its every answer lost and its webhook "
                                 "never sent" : "");
        for (o = 0; o < co->norders; o++) {
            mc_say("    order %d: %s %s to seller %s", o,
                        mc_decimal(co->amount[o], co->currency),
                        mc_currencies[co->currency],
                        mc_sellers[co->seller[o]]);
        }
    }

    for (i = 0; i < h->nsteps; i++) {
        if (keep != NULL && !keep[i]) {
            continue;
        }
        s = &h->steps[i];
        co = &h->co[s->co];
        if (s->kind == MC_KILL || s->kind == MC_RELOAD
            || s->kind == MC_PG_RESTART)
        {
            mc_say("  step %2d: %s%s%s", i, mc_kind_names[s->kind],
                   s->kind != MC_RELOAD
                   ? str_printf(", %d ms into the next step", s->arg) : "",
                   out != NULL && out[i] != NULL
                   ? str_printf(" -> %s", out[i]) : "");
            continue;
        }
        if (s->kind == MC_PSP_GONE || s->kind == MC_PSP_BACK) {
            mc_say("  step %2d: %s %s%s%s", i, mc_kind_names[s->kind],
                   mc_psp(s->arg),
                   s->kind == MC_PSP_GONE
                   ? s->knob ? ", and every route naming it (its next "
                               "operation sent first, the PSP hanging: "
                               "unanswered)"
                             : ", and every route naming it"
                   : ", and its routes; what it refused is sent again",
                   out != NULL && out[i] != NULL
                   ? str_printf(" -> %s", out[i]) : "");
            continue;
        }
        if (s->kind == MC_PSP_CLOSE || s->kind == MC_PSP_OPEN) {
            mc_say("  step %2d: %s %s%s%s", i, mc_kind_names[s->kind],
                   mc_psp(s->arg),
                   s->kind == MC_PSP_OPEN
                   ? "; what it refused is sent again"
                   : s->knob
                   ? str_printf(" (checkout %d's registration sent first, "
                                "the PSP hanging: unanswered)", s->co)
                   : "",
                   out != NULL && out[i] != NULL
                   ? str_printf(" -> %s", out[i]) : "");
            continue;
        }
        if (s->kind == MC_REPLAY) {
            mc_say("  step %2d: checkout %d: %s %d under its key (%s)%s", i,
                   s->co, mc_kind_names[s->kind], s->arg,
                   mc_kind_names[h->steps[s->arg].kind],
                   out != NULL && out[i] != NULL
                   ? str_printf(" -> %s", out[i]) : "");
            continue;
        }
        if (s->kind == MC_RACE) {
            mc_say("  step %2d: checkout %d: at once: %s order %d %s %s | "
                   "%s%s%s", i, s->co, mc_race_names[s->arg][0], s->order,
                   mc_decimal(s->amount, co->currency),
                   mc_currencies[co->currency], mc_race_names[s->arg][1],
                   s->arg == MC_RACE_REFUND_PAYOUT
                   ? str_printf(" seller %s at %s %s %s",
                                mc_sellers[co->seller[s->order]],
                                mc_dialects[co->dialect],
                                mc_decimal(s->amount2, co->currency),
                                mc_currencies[co->currency])
                   : s->arg == MC_RACE_REFUNDS || s->arg == MC_RACE_CAPTURES
                   ? str_printf(" order %d %s %s", s->order,
                                mc_decimal(s->amount2, co->currency),
                                mc_currencies[co->currency])
                   : s->arg == MC_RACE_CAPTURE_VOID
                   ? str_printf(" order %d", s->order) : "",
                   out != NULL && out[i] != NULL
                   ? str_printf(" -> %s", out[i]) : "");
            continue;
        }
        if (s->kind == MC_PAYOUT_BACK) {
            mc_say("  step %2d: checkout %d: %s of step %d (seller %s at %s) "
                   "%s%s%s%s", i, s->co, mc_kind_names[s->kind],
                   mc_payout_step(h, s->arg), mc_sellers[s->order],
                   mc_dialects[co->dialect],
                   s->amount > 0
                   ? str_printf("%s %s", mc_decimal(s->amount,
                                                    co->currency),
                                mc_currencies[co->currency])
                   : "all that is left of it",
                   mc_back_knob_names[s->knob],
                   out != NULL && out[i] != NULL
                   ? str_printf(" -> %s", out[i]) : "",
                   s->at_once ? " (the next step at once)" : "");
            continue;
        }
        mc_say("  step %2d: checkout %d: %s%s%s%s%s%s%s", i, s->co,
                    mc_kind_names[s->kind],
                    s->kind == MC_CAPTURE || s->kind == MC_VOID
                    || s->kind == MC_REFUND || s->kind == MC_FORGET
                    ? str_printf(" order %d", s->order) : "",
                    s->kind == MC_PAYOUT
                    ? str_printf(" seller %s at %s", mc_sellers[s->order],
                                 mc_dialects[s->arg]) : "",
                    s->kind == MC_DISPUTE || s->kind == MC_CLOSE
                    ? str_printf(" #%d%s", s->arg, s->kind == MC_CLOSE
                                 ? (s->order ? " won" : " lost") : "")
                    : s->kind == MC_REVERSE
                    ? str_printf(" (capture #%d)", s->arg) : "",
                    s->amount > 0
                    ? str_printf(" %s %s", mc_decimal(s->amount,
                                                      co->currency),
                                 mc_currencies[co->currency]) : "",
                    out != NULL && out[i] != NULL
                    ? str_printf(" -> %s", out[i]) : "",
                    s->at_once ? " (the next step at once)" : "");
    }
}


/* -- running a history ----------------------------------------------------- */

/* a step's request to the history's gateway as last sent, and the answer
 * (a replay must be that answer, byte for byte) */
typedef struct {
    char                *key;
    const char          *path;
    const char          *body;
    const char          *base;      /* NULL: the suite's gateway */
    const char          *host;
    long                 status;
    char                *answer;
} mc_req_t;

typedef struct {
    const mc_history_t  *h;
    merchant_t           m;
    char                *co[MC_MAX_CO];
    char                *nonce[MC_MAX_CO];
    char                *token[MC_MAX_CO];
    char                *pm[MC_MAX_CO];     /* the method it saved */
    char                *dispute[MC_MAX_CO][4];
    char                *payout[MC_MAX_STEPS];  /* the n-th pay-out step's
                                                   payout_id, once made */
    char                *out[MC_MAX_STEPS];
    books_subjects_t     subjects;
    long                 ops;
    gateway_t            gw;        /* the history's own, if any */
    const char          *base;      /* its origin; NULL: the suite's */
    const char          *risk;      /* its server with the risk check
                                       (routed checkouts held for review) */
    int                  pool;      /* what the next reload changes */
    const int           *keep;
    int                  quiet;
    int                  rec_at;    /* the step whose request mc_send
                                       records, or -1 */
    mc_req_t             rec[MC_MAX_STEPS];
    int                  gone;      /* the dialect whose PSP is removed
                                       from the history's gateway, or -1 */
    int                  gone_routes;   /* the routes removed with it */
    mc_req_t             held[MC_MAX_STEPS];    /* refused or answered 503
                                                   while it was removed:
                                                   sent again once back */
    long                 first[MC_MAX_STEPS];   /* a held request's first
                                                   attempt's status, sent
                                                   before the removal; -1 */
    long                 gone_bad;  /* answers not as the model says */
    const char          *gone_since;    /* when it was removed */
    int                  unsent;    /* operations claimed, never answered,
                                       held until it is back */
    int                  closed;    /* the dialect whose PSP is closed on
                                       the history's gateway, or -1 */
    const char          *closed_since;  /* when it was closed */
    long                 closed_bad;    /* answers not as the model says */
    long                 once_bad;  /* a lost charge's retry, once the
                                       sweeper decided it, not 409
                                       duplicate_order; one needing the
                                       shopper decided while lost, or its
                                       retry not its page (check once) */
    char                *reg_key[MC_MAX_CO];    /* a registration's key,
                                                   sent first, unanswered,
                                                   before its PSP closed */
    long                 reg_first[MC_MAX_CO];  /* and what it answered */
    long                 lost_rule[MC_MAX_CO];  /* the mock's rule that
                                                   loses a charge's every
                                                   answer (mc_lost_auth) */
    int                  refused[MC_MAX_CO];    /* registrations refused
                                                   while it was closed:
                                                   sent again once open */
} mc_run_t;


/* 1 where no other test shares the database (make money-check, its known
 * seeds, the solo suite of the swept seeds): only there may a history's
 * gateway run a sweeper, which looks up every checkout of the PSPs */
static int  mc_alone;
static int  mc_gateways;            /* each gateway's name its own */


/*
 * On a stack of several merchant shards the history's merchant lives on
 * shard seed mod shards (a function of the seed alone: SEED= replays it on
 * the same shard), and every read and write of its books below goes to
 * that shard: mc_db().
 */
static const char *
mc_shard(const mc_history_t *h)
{
    return shard_name((int) (h->seed % (uint64_t) shards_n()));
}


/* the superuser connection to the history's merchant's shard (db() on an
 * unsharded stack) */
static PGconn *
mc_db(const mc_run_t *run)
{
    return db_of(&run->m);
}


/* sql on the history's checkout c ($1 the merchant, $2 the checkout),
 * as the owner with the guards off for its transaction: what only time
 * would do (an authorization, a session or a refund made old) */
static void
mc_unguarded(const mc_run_t *run, int c, const char *sql)
{
    const char  *p[2];

    p[0] = run->m.id;
    p[1] = run->co[c];

    db_exec_on(mc_db(run), "BEGIN", 0, NULL);
    db_exec_on(mc_db(run), "SET LOCAL session_replication_role = replica", 0,
               NULL);
    db_exec_on(mc_db(run), sql, 2, p);
    db_exec_on(mc_db(run), "COMMIT", 0, NULL);
}


static const char *
mc_psp(int dialect)
{
    return dialect == 0 ? env("PAY_TEST_PSP") : dialect == 1 ? "mock_adyen"
                                                             : "mock_generic";
}


static const char *
mc_destination(int dialect)
{
    return dialect == 0 ? "acct_1MockSeller"
                        : dialect == 1 ? "BA00000000000000000000001"
                                       : "payee_1";
}


/* A shop's POST under key: retried (retry 1) under the same key while the
 * answer is a 5xx or none (at most 4 times); "status" or "status code"
 * for the history */
static char *
mc_send(const mc_run_t *run, const char *base, const char *host,
    const char *path, const char *body, const char *key, int retry,
    json_t **answer)
{
    int          i;
    req_t        rq;
    size_t       n;
    resp_t      *r;
    const char  *h[5], *code;

    n = 0;
    h[n++] = str_printf("Authorization: Bearer %s", run->m.key);
    h[n++] = str_printf("Idempotency-Key: %s", key);
    h[n++] = "Content-Type: application/json";
    if (host != NULL) {
        h[n++] = str_printf("Host: %s", host);
    }
    h[n] = NULL;

    if (base == NULL) {
        base = run->base;
    }

    rq.method = "POST";
    rq.url = base ? str_printf("%s%s", base, path) : gw_url(path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    /* and while the first request still holds the key (a worker killed
     * with it: until its lease runs out), as its Retry-After says */
    for (i = 0; ; i++) {
        r = books_retried(&rq, retry ? 4 : 1, 200, NULL);

        *answer = r->status > 0 && r->len > 0
                  ? json_loadb(r->body, r->len, 0, NULL) : NULL;
        code = *answer ? json_string_value(json_object_get(*answer, "code"))
                       : NULL;

        if (i == 40 || !retry
            || !((r->status == 409 && code != NULL
                  && strcmp(code, "idempotency_key_in_use") == 0)
                 || (run->base != NULL
                     && (r->status == 0 || r->status == 503))))
        {
            break;
        }
        json_decref(*answer);
        msleep(500);
    }

    /* the step's request and its last answer, for a replay of it */
    if (run->rec_at >= 0) {
        mc_req_t  *q = &((mc_run_t *) run)->rec[run->rec_at];

        q->key = strdup(key);
        q->path = strdup(path);
        q->body = strdup(body);
        q->base = base;
        q->host = host;
        q->status = r->status;
        q->answer = strndup(r->body != NULL ? r->body : "", r->len);
    }

    return code ? str_printf("%ld %s", r->status, code)
                : str_printf("%ld", r->status);
}


static char *
mc_shop(const mc_run_t *run, const char *base, const char *host,
    const char *path, const char *body, json_t **answer)
{
    return mc_send(run, base, host, path, body, uid("mk"), 1, answer);
}


/* at the suite's gateway, or (origin not NULL) at the history's, whose
 * routes a routed checkout's approval takes again; tries: at most, while
 * the answer is a 5xx or none */
static char *
mc_admin_approve(const char *origin, const char *nonce_s, int tries,
    json_t **answer)
{
    resp_t  *r;

    r = origin != NULL ? books_approve_at(origin, nonce_s, tries, 200, NULL)
                       : books_approve(nonce_s, tries, 200, NULL);

    *answer = r->len > 0 ? json_loadb(r->body, r->len, 0, NULL) : NULL;

    return str_printf("%ld", r->status);
}


/* the merchant's commission drawn (mc_draw_commission), set as
 * payments-merchant set-commission sets it: its rate, and a fixed part in
 * every currency of the checker's */
static void
mc_commission(const mc_run_t *run)
{
    int           i;
    PGconn       *c;
    const char   *p[3];

    if (run->h->bps == 0 && !run->h->fixed) {
        return;
    }

    c = mc_db(run);
    p[0] = run->m.id;
    p[1] = str_printf("%d", run->h->bps);
    db_exec_on(c, "UPDATE merchants SET commission_bps = $2::integer"
               " WHERE merchant_id = $1", 2, p);

    for (i = 0; run->h->fixed && i < 4; i++) {
        p[1] = mc_currencies[i];
        p[2] = str_printf("%ld", mc_fixed[i]);
        db_exec_on(c, "INSERT INTO merchant_commission_fixed (merchant_id,"
                   " currency, amount) VALUES ($1, $2, $3::bigint)", 3, p);
    }
}


static void
mc_faults(mc_run_t *run)
{
    int                    c;
    long                   id;
    const mc_history_t    *h;
    const mc_route_t      *rt;
    const mc_ops_fault_t  *f;
    const char            *json;
    resp_t                *r;

    h = run->h;
    f = &h->ops;

    static const char  *cap[4] = {
        NULL, "\"webhook_duplicate\":2", "\"webhook_delay_ms\":400",
        "\"fail_times\":1,\"fail_status\":503"
    };
    static const char  *ref[4] = {
        NULL, "\"webhook_duplicate\":2", "\"fail_times\":1,\"fail_status\":503",
        "\"webhook_op_failed\":true"
    };
    static const char  *pay[3] = {
        NULL, "\"webhook_duplicate\":2", "\"fail_times\":1,\"fail_status\":503"
    };

    if (cap[f->captures] != NULL) {
        mock_fault(str_printf("{\"match\":\"%s:cp_\",%s}", run->m.id,
                              cap[f->captures]));
    }
    if (ref[f->refunds] != NULL) {
        mock_fault(str_printf("{\"match\":\"%s:rf_\",%s}", run->m.id,
                              ref[f->refunds]));
    }
    if (pay[f->payouts] != NULL) {
        mock_fault(str_printf("{\"match\":\"%s:pyo_\",%s}", run->m.id,
                              pay[f->payouts]));
    }

    for (c = 0; c < h->nco; c++) {
        if (h->co[c].decline) {
            r = books_mock("POST", "/_control/charges",
                           str_printf("{\"reference\":\"%s\",\"outcome\":"
                                      "\"decline\",\"code\":\"%s\"}",
                                      run->nonce[c],
                                      mc_declines[h->co[c].decline]));
            cr_assert_eq(r->status, 200, "the mock's charge rule: %ld %s",
                         r->status, r->body);
        } else if (h->co[c].auth) {
            r = books_mock("POST", "/_control/charges",
                           str_printf("{\"reference\":\"%s\",\"outcome\":"
                                      "\"authentication_required\"}",
                                      run->nonce[c]));
            cr_assert_eq(r->status, 200, "the mock's charge rule: %ld %s",
                         r->status, r->body);
        }

        switch (h->co[c].fault) {
        case MC_FAULT_DUPLICATE:
            json = "\"webhook_duplicate\":2";
            break;
        case MC_FAULT_DELAY:
            json = "\"webhook_delay_ms\":400";
            break;
        case MC_FAULT_OUT_OF_ORDER:
            json = "\"webhook_out_of_order\":true";
            break;
        case MC_FAULT_FAIL_ONCE:
            json = "\"fail_times\":1,\"fail_status\":503";
            break;
        case MC_FAULT_DROP:
            json = "\"drop_after_register\":1";
            break;
        default:
            json = NULL;
        }

        /* routing's, at the route's first PSP (its API only, so added
         * before the nonce's own rule): a refusal, a throttle; a hang is
         * at the PSP the checkout stays at, so in the nonce's own rule */
        if (h->co[c].routed == MC_RT_REFUSED
            || h->co[c].routed == MC_RT_TRIPPED)
        {
            rt = &h->route[h->co[c].currency];
            mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"%s\",%s}",
                                  run->nonce[c],
                                  mc_dialects[rt->first == MC_TRIPPED
                                              ? rt->trip : rt->first],
                                  h->co[c].routed == MC_RT_REFUSED
                                  ? "\"refuse_status\":400"
                                  : "\"fail_times\":1000,"
                                    "\"fail_status\":429"));
        }
        if (h->co[c].routed == MC_RT_HANG) {
            json = json != NULL
                   ? str_printf("%s,\"hang_ms\":3000,\"hang_times\":1", json)
                   : "\"hang_ms\":3000,\"hang_times\":1";
        }

        /* the charge's answer and every retry's dropped, its webhook never
         * sent, or at Adyen sent late (mc_draw_lost: no other fault of its
         * own) */
        if (h->co[c].lost) {
            json = h->co[c].dialect == 1
                   ? str_printf("\"drop_after_register\":1,"
                                "\"drop_replays\":50,"
                                "\"webhook_delay_ms\":%d", MC_LOST_ADYEN_MS)
                   : "\"drop_after_register\":1,\"drop_replays\":50,"
                     "\"webhook_never\":true";
        }

        /* one rule per nonce: the first that matches is the only one */
        if (h->co[c].never) {
            json = json != NULL ? str_printf("%s,\"webhook_never\":true", json)
                                : "\"webhook_never\":true";
        }

        if (json != NULL) {
            id = mock_fault(str_printf("{\"match\":\"%s\",%s}",
                                       run->nonce[c], json));
            run->lost_rule[c] = h->co[c].lost ? id : 0;
        }
    }
}


/* every seller of the history registered at the PSPs it is paid through
 * (a merchant with sellers registers no checkout whose seller is not) */
static void
mc_sellers_add(mc_run_t *run, const int *keep)
{
    int               c, d, i, o, need[3][3], payouts;
    char             *out;
    const char       *args[10];
    const mc_step_t  *s;

    memset(need, 0, sizeof(need));
    payouts = 0;

    for (i = 0; i < run->h->nsteps; i++) {
        s = &run->h->steps[i];
        if (s->kind == MC_PAYOUT && keep[i]) {
            need[s->order][s->arg] = 1;
            payouts = 1;
        }
        if (s->kind == MC_RACE && s->arg == MC_RACE_REFUND_PAYOUT
            && keep[i])
        {
            payouts = 1;
        }
    }

    if (!payouts) {
        return;
    }

    for (c = 0; c < run->h->nco; c++) {
        for (o = 0; o < run->h->co[c].norders; o++) {
            need[run->h->co[c].seller[o]][run->h->co[c].dialect] |= 2;
        }
    }

    for (i = 0; i < 3; i++) {
        for (d = 0; d < 3; d++) {
            if (need[i][d] == 0) {
                continue;
            }

            args[0] = "add-seller";
            args[1] = "--id";
            args[2] = run->m.id;
            args[3] = "--seller";
            args[4] = mc_sellers[i];
            args[5] = "--psp";
            args[6] = mc_psp(d);
            args[7] = "--destination";
            args[8] = mc_destination(d);
            args[9] = NULL;

            cr_assert_eq(merchant_toolv_of(&run->m, args, &out), 0, "%s",
                         out);
        }
    }
}


/* the off-session charges the histories made: taken (201), declined
 * (402), refused otherwise (a method never saved, ...), held for review
 * (202), needing the shopper (202 with a pay link) */
static long  mc_charges[5];

/* charges that need the shopper (mc_auth_e): canceled by the shop (200),
 * then paid at their page all the same (the PSP took it) */
static long  mc_auth_seen[2];


/* the pm_ id of the method checkout c saved, or NULL (at most 5 s) */
static const char *
mc_method(mc_run_t *run, int c)
{
    int          i;
    size_t       k;
    json_t      *it;
    resp_t      *r;
    const char  *co;

    for (i = 0; i < 50 && run->pm[c] == NULL; i++) {
        r = api_get(&run->m, "/v1/payment_methods?customer=" MC_CUSTOMER);
        json_array_foreach(r->status == 200
                           ? json_object_get(resp_json(r), "data") : NULL,
                           k, it)
        {
            co = json_string_value(json_object_get(it, "checkout_id"));
            if (co != NULL && strcmp(co, run->co[c]) == 0) {
                run->pm[c] = strdup(json_string_value(json_object_get(it,
                                                                 "id")));
            }
        }
        if (run->pm[c] == NULL) {
            msleep(100);
        }
    }

    return run->pm[c];
}


/* the shop's request of checkout c's registration, or NULL (an
 * off-session charge of a method never saved) */
static char *
mc_register_body(mc_run_t *run, int c)
{
    int            o;
    json_t        *body, *orders;
    const mc_co_t *co;

    co = &run->h->co[c];
    body = checkout_new(run->co[c], (size_t) co->norders);
    orders = json_object_get(body, "payment_orders");

    for (o = 0; o < co->norders; o++) {
        json_object_set_new(json_array_get(orders, (size_t) o), "amount",
                            json_string(mc_decimal(co->amount[o],
                                                   co->currency)));
        json_object_set_new(json_array_get(orders, (size_t) o), "currency",
                            json_string(mc_currencies[co->currency]));
        json_object_set_new(json_array_get(orders, (size_t) o),
                            "seller_account",
                            json_string(mc_sellers[co->seller[o]]));
    }

    if (co->charge) {
        /* the saving checkout's method, charged without the shopper */
        if (mc_method(run, co->from) == NULL) {
            return NULL;
        }
        json_object_del(body, "psp");
        json_object_set_new(body, "payment_method",
                            json_string(run->pm[co->from]));
        json_object_set_new(body, "off_session", json_true());
    } else if (co->routed) {
        json_object_del(body, "psp");   /* the route chooses */
    } else {
        json_object_set_new(body, "psp", json_string(mc_psp(co->dialect)));
    }
    if (co->save) {
        json_object_set_new(body, "save_payment_method",
                            json_pack("{ss ss sb}", "customer",
                                      MC_CUSTOMER, "usage", "off_session",
                                      "shopper_agreed", 1));
    }
    if (co->manual) {
        json_object_set_new(body, "capture", json_string("manual"));
    }

    if (co->review) {
        json_object_set_new(json_object_get(body, "buyer_info"), "email",
                            json_string("risk-review@example.com"));
    }

    return dump(body);
}


/* where checkout c is registered: the history's gateway (base, host
 * NULL), or held for review the suite's risk server, or a routed one's on
 * the history's gateway, whose route binds its first PSP before the risk
 * check holds it */
static void
mc_register_at(const mc_run_t *run, int c, const char **base,
    const char **host)
{
    *base = NULL;
    *host = NULL;
    if (run->h->co[c].review) {
        *base = run->h->co[c].routed ? run->risk : env("PAY_TEST_GW_LIMITS");
        *host = run->h->co[c].routed ? NULL : "deny.risk.test";
    }
}


static char *
mc_register(mc_run_t *run, int c)
{
    char          *out, *body, *key;
    json_t        *ans;
    const char    *base, *host;
    const mc_co_t *co;

    co = &run->h->co[c];
    body = mc_register_body(run, c);
    if (body == NULL) {
        return strdup("no saved method");
    }
    if (co->charge) {
        books_subject(&run->subjects, run->nonce[c]);
    }

    if (co->review) {
        key = uid("mk");
        if (co->lost) {
            run->reg_key[c] = key;      /* for the retry once decided */
        }
        mc_register_at(run, c, &base, &host);
        out = mc_send(run, base, host, PATH_PAYMENTS, body, key, 1, &ans);
    } else if (co->lost) {
        /* every answer lost: the shop's one attempt (the gateway's own
         * retries within it), its key kept for the retry after the
         * sweeper decided it (mc_lost_settled) */
        run->reg_key[c] = uid("mk");
        out = mc_send(run, NULL, NULL, PATH_PAYMENTS, body, run->reg_key[c],
                      0, &ans);
    } else {
        /* under the key of its first attempt, if it was sent before its
         * PSP closed (mc_psp_closed) */
        out = mc_send(run, NULL, NULL, PATH_PAYMENTS, body,
                      run->reg_key[c] != NULL ? run->reg_key[c] : uid("mk"),
                      1, &ans);
    }

    /* a lost one is counted as the sweeper, or its late webhook, leaves
     * it (mc_lost_seen) */
    if (co->charge && !co->lost) {
        mc_charges[strncmp(out, "201", 3) == 0 ? 0
                   : strncmp(out, "402", 3) == 0 ? 1
                   : strncmp(out, "202", 3) != 0 ? 2
                   : co->review ? 3 : 4]++;
    }

    if (json_is_string(json_object_get(ans, "psp_token"))) {
        run->token[c] = strdup(json_string_value(json_object_get(ans,
                                                                 "psp_token")));
        books_subject(&run->subjects, run->token[c]);
    }

    if (co->routed && json_is_string(json_object_get(ans, "psp"))) {
        out = str_printf("%s at %s", out,
                         json_string_value(json_object_get(ans, "psp")));
    }

    return out;
}


/*
 * The hold's window passes for this checkout alone (its authorized_at
 * moved 8 days back, past every PSP's 7-day window), then one round of the
 * sweeper's holds, as the sweeper runs it (pay_holds_sweep under the
 * lease; nothing warned, so no other test's hold is touched).
 */
static char *
mc_expire(const mc_run_t *run, int c)
{
    int          i;
    char        *v;
    const char  *p[3];

    mc_unguarded(run, c, "UPDATE checkouts SET authorized_at = authorized_at "
                 "- interval '8 days' WHERE merchant_id = $1 AND checkout_id "
                 "= $2 AND authorized_at IS NOT NULL");

    p[0] = run->m.id;
    p[1] = run->co[c];

    if (run->h->gw == MC_GW_SWEPT) {
        /* the history's sweeper holds the lease: its own round */
        for (i = 0; i < 80; i++) {
            v = db_scalar_on(mc_db(run), "SELECT hold_closed_at IS NOT NULL "
                             "OR authorized_at IS NULL FROM checkouts WHERE "
                             "merchant_id = $1 AND checkout_id = $2", 2, p);
            if (v != NULL && strcmp(v, "t") == 0) {
                return str_printf("closed by the sweeper in %.1f s",
                                  i / 10.0);
            }
            msleep(100);
        }
        return strdup("still held 8 s later");
    }

    p[0] = "money_check";
    v = NULL;

    /* a sweeper of an earlier history may hold it until it runs out */
    for (i = 0; i < 80; i++) {
        v = db_scalar_on(mc_db(run), "SELECT pay_sweeper_lease($1, 5)", 1,
                         p);
        if (v != NULL && strcmp(v, "t") == 0) {
            break;
        }
        msleep(100);
    }

    if (v == NULL || strcmp(v, "t") != 0) {
        return strdup("the sweeper's lease is another's");
    }

    p[1] = str_printf("{%s,mock_adyen,mock_generic}", mc_psp(0));
    p[2] = "{604800,604800,604800}";
    v = db_scalar_on(mc_db(run), "SELECT count(*) FROM pay_holds_sweep($1, "
                     "$2::text[], $3::integer[], 0, 100) WHERE action = "
                     "'expired'", 3, p);

    /* the lease given back at once, for the next round or a sweeper */
    db_exec_on(mc_db(run), "UPDATE sweeper_lease SET until = now() WHERE id "
               "= 1 AND owner = $1", 1, p);

    return str_printf("%s released", v ? v : "?");
}


/* The checkout's status (p: the merchant and the checkout) on a connection
 * of its own, NULL when it has none; *up 0 when PostgreSQL refused the
 * connection or the query. */
static char *
mc_status_own(const mc_run_t *run, const char *const *p, int *up)
{
    char      *st;
    PGconn    *pc;
    PGresult  *res;

    st = NULL;
    *up = 0;
    pc = PQconnectdb(shard_conninfo(run->m.shard));
    if (PQstatus(pc) == CONNECTION_OK) {
        res = PQexecParams(pc, "SELECT status::text FROM checkouts WHERE "
                           "merchant_id = $1 AND checkout_id = $2", 2, NULL,
                           p, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            *up = 1;
            st = PQntuples(res) == 1 ? strdup(PQgetvalue(res, 0, 0)) : NULL;
        }
        PQclear(res);
    }
    PQfinish(pc);

    return st;
}


/*
 * The checkout's status, waited for while EXECUTING, at most ms.  own: on
 * a connection of its own, made again for each look while PostgreSQL
 * refuses it: a step a PostgreSQL restart lands in (MC_PG_RESTART, on the
 * main thread) would fail the test on the harness's shared connection.
 */
static char *
mc_settled_on(const mc_run_t *run, int c, long ms, int own)
{
    int          up;
    long         waited;
    char        *st;
    const char  *p[2];

    p[0] = run->m.id;
    p[1] = run->co[c];

    for (waited = 0; ; waited += 100) {
        up = 1;
        st = own ? mc_status_own(run, p, &up)
                 : db_scalar_on(mc_db(run), "SELECT status::text FROM "
                                "checkouts WHERE merchant_id = $1 AND "
                                "checkout_id = $2", 2, p);
        if ((up && (st == NULL || strcmp(st, "EXECUTING") != 0))
            || waited >= ms)
        {
            return st != NULL ? st
                   : strdup(up ? "no checkout" : "PostgreSQL unreachable");
        }
        msleep(100);
    }
}


static char *
mc_settled(const mc_run_t *run, int c, long ms)
{
    return mc_settled_on(run, c, ms, 0);
}


/* the charges whose every answer was lost (mc_draw_lost), as the
 * sweeper (Adyen's: the late webhook) left them: taken (SUCCESS), held
 * (AUTHORIZED), declined
 * (FAILED), otherwise (still EXECUTING 15 s later, or anything else) */
static long  mc_lost_seen[4];


/*
 * The shop's retry of checkout c's registration under its first key,
 * where it was registered, as a shop retries: after Retry-After while the
 * key is in use (a worker killed in the first request holds it until its
 * lease runs out); the step's record keeps the first request's answer.
 * NULL when it cannot be sent (no key kept, no method saved to charge).
 */
static char *
mc_register_again(mc_run_t *run, int c, json_t **ans)
{
    int          rec_at;
    char        *body, *again;
    const char  *base, *host;

    *ans = NULL;

    if (run->reg_key[c] == NULL || (body = mc_register_body(run, c)) == NULL)
    {
        return NULL;
    }

    mc_register_at(run, c, &base, &host);
    rec_at = run->rec_at;
    run->rec_at = -1;
    again = mc_send(run, base, host, PATH_PAYMENTS, body, run->reg_key[c], 1,
                    ans);
    run->rec_at = rec_at;

    return again;
}


/*
 * A charge whose every answer was lost (mc_draw_lost): out, what the
 * shop's one request (or the approval that sent it) was answered, then
 * how the sweeper's look-up by its nonce decided it, waited for (15 s:
 * its round asks a charge 1 s old, every 300 ms), or at Adyen its
 * webhook, sent MC_LOST_ADYEN_MS late; then, once decided,
 * the shop's retry under the registration's key, which must find it
 * decided: 409 duplicate_order, nothing sent (doc/API.md; check once).
 * Left EXECUTING, the later steps and the books say what that cost.
 */
static char *
mc_lost_settled(mc_run_t *run, int c, const char *out)
{
    char        *st, *again;
    json_t      *ans;

    st = mc_settled_on(run, c, 15000, 1);
    if (strcmp(st, "no checkout") == 0) {
        return strdup(out);     /* no method saved to charge */
    }
    mc_lost_seen[strcmp(st, "SUCCESS") == 0 ? 0
                 : strcmp(st, "AUTHORIZED") == 0 ? 1
                 : strcmp(st, "FAILED") == 0 ? 2 : 3]++;

    if (strcmp(st, "EXECUTING") == 0
        || (again = mc_register_again(run, c, &ans)) == NULL)
    {
        return str_printf("%s, every answer lost; then %s", out, st);
    }

    if (strcmp(again, "409 duplicate_order") != 0) {
        run->once_bad++;
        if (!run->quiet) {
            mc_err("check once: checkout %d's charge, decided %s by the "
                   "sweeper after its every answer was lost: the shop's "
                   "retry under its key answered %s, not 409 "
                   "duplicate_order", c, st, again);
        }
    }

    return str_printf("%s, every answer lost; then %s; the shop's retry %s",
                      out, st, again);
}


/* the charges needing the shopper whose every answer was lost (from
 * MC_SEED_AUTH_LOST on): still open while lost and their page opened at
 * the shop's retry; otherwise */
static long  mc_auth_lost_seen[2];
/* of the first, held for review and opened when approved again */
static long  mc_auth_lost_approved;
/* ... and those the shop left (auth_alone): failed by the sweeper once
 * their time ran out, then 409 at the shop's retry; otherwise */
static long  mc_auth_alone_seen[2];


/*
 * A charge needing the shopper whose every answer was lost, which the shop
 * does not retry (auth_alone): out, its one request's answer.  Open while
 * lost (as mc_lost_auth), then its checkout's time runs out: the sweeper
 * must fail it expired, nothing booked (the books check that), and the
 * shop's retry once the PSP answers again is 409 duplicate_order, no page
 * made (check once otherwise).
 */
static char *
mc_lost_auth_alone(mc_run_t *run, int c, const char *out, const char *st)
{
    char        *ended, *code, *again;
    json_t      *ans;
    const char  *bad, *p[2];

    ended = "not ended";
    code = NULL;
    bad = strcmp(st, "EXECUTING") != 0 ? "decided while its answers were lost"
                                        : NULL;
    if (bad == NULL) {
        mc_unguarded(run, c, "UPDATE checkouts SET expires_at = now() - "
                     "interval '1 second' WHERE merchant_id = $1 AND "
                     "checkout_id = $2 AND status = 'EXECUTING'");
        ended = mc_settled_on(run, c, 8000, 1);
        p[0] = run->m.id;
        p[1] = run->co[c];
        code = db_scalar_on(mc_db(run), "SELECT coalesce(failure_code::text,"
                            " '-') FROM checkouts WHERE merchant_id = $1 AND "
                            "checkout_id = $2", 2, p);
        if (strcmp(ended, "FAILED") != 0 || code == NULL
            || strcmp(code, "expired") != 0)
        {
            bad = "not failed expired once its time ran out";
        }
    }

    if (run->lost_rule[c] > 0) {
        mock_fault_remove(run->lost_rule[c]);
        run->lost_rule[c] = 0;
    }

    again = mc_register_again(run, c, &ans);
    if (again == NULL) {
        again = "not sent";
    } else if (bad == NULL && strcmp(again, "409 duplicate_order") != 0) {
        bad = "the shop's retry after it failed not 409 duplicate_order";
    }

    mc_auth_alone_seen[bad == NULL ? 0 : 1]++;

    if (bad != NULL) {
        run->once_bad++;
        if (!run->quiet) {
            mc_err("check once: checkout %d's charge needing the shopper, "
                   "its every answer lost, the shop not back: %s (%s, then "
                   "%s %s; the shop's retry answered %s)", c, bad, st,
                   ended, code != NULL ? code : "", again);
        }
    }

    return str_printf("%s, every answer lost; %s meanwhile; its time run "
                      "out, %s %s; the shop's retry %s", out, st, ended,
                      code != NULL ? code : "", again);
}


/*
 * A charge needing the shopper whose every answer was lost (mc_draw_auth
 * from MC_SEED_AUTH_LOST on): out, what the shop's one request (or, from
 * MC_SEED_AUTH_LOST_REVIEW on, the approval that sent it) was answered.
 * The shopper was never asked, so nothing may decide it while its answers
 * are lost: still EXECUTING once a sweeper's rounds (a charge 1 s old,
 * every 300 ms) and Adyen's late webhook (MC_LOST_ADYEN_MS) had their
 * time.  Then the PSP answers again (its rule removed) and the shop's
 * retry under the registration's key (approving it again, for one held
 * for review) must open the page: 202 with the pay link, whose session
 * the shopper's later steps use (check once otherwise).  The step's
 * record keeps the first request's answer.
 */
static char *
mc_lost_auth(mc_run_t *run, int c, const char *out)
{
    char        *st, *again;
    json_t      *ans;
    const char  *bad;

    st = mc_settled_on(run, c, MC_LOST_ADYEN_MS + 1000, 1);
    if (strcmp(st, "no checkout") == 0) {
        return strdup(out);     /* no method saved to charge */
    }

    if (run->h->co[c].auth_alone) {
        return mc_lost_auth_alone(run, c, out, st);
    }

    if (run->lost_rule[c] > 0) {
        mock_fault_remove(run->lost_rule[c]);
        run->lost_rule[c] = 0;
    }

    again = run->h->co[c].review
            ? mc_admin_approve(run->h->co[c].routed ? run->base : NULL,
                               run->nonce[c], 1, &ans)
            : mc_register_again(run, c, &ans);
    if (again == NULL) {
        again = "not sent";
    } else if (json_is_string(json_object_get(ans, "psp_token"))) {
        run->token[c] = strdup(json_string_value(json_object_get(ans,
                                                                 "psp_token")));
        books_subject(&run->subjects, run->token[c]);
    }

    bad = strcmp(st, "EXECUTING") != 0
          ? "decided while its answers were lost"
          : strncmp(again, "202", 3) != 0 || run->token[c] == NULL
          ? (run->h->co[c].review ? "its page not opened when approved "
                                    "again"
                                  : "its page not opened at the shop's "
                                    "retry")
          : NULL;

    mc_auth_lost_seen[bad == NULL ? 0 : 1]++;
    mc_auth_lost_approved += bad == NULL && run->h->co[c].review;
    mc_charges[bad == NULL ? 4 : 2]++;

    if (bad != NULL) {
        run->once_bad++;
        if (!run->quiet) {
            mc_err("check once: checkout %d's charge needing the shopper, "
                   "its every answer lost: %s (%s; %s answered %s)", c, bad,
                   st, run->h->co[c].review ? "approved again"
                                            : "the shop's retry", again);
        }
    }

    return str_printf("%s, every answer lost; %s meanwhile; the PSP "
                      "answering again, %s %s", out, st,
                      run->h->co[c].review ? "approved again"
                                           : "the shop's retry", again);
}


/* The shopper pays on the PSP's hosted page and comes back through the
 * history's gateway with what the PSP added to the way back (Adyen's
 * sessionResult: without it the sweeper cannot look the session up). */
static char *
mc_pay_hosted(const mc_run_t *run, int c)
{
    req_t        rq;
    resp_t      *r;
    const char  *loc;

    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/pay/%s/pay", url_escape(run->token[c])));
    rq.body = "";
    rq.len = 0;

    r = http(&rq);
    loc = r->status == 303 ? resp_header(r, "Location") : NULL;
    if (loc == NULL) {
        return str_printf("%ld", r->status);
    }

    r = gateway_get(&run->gw, url_path(loc));

    return str_printf("%ld, back through the gateway %ld", 303L, r->status);
}


/* The session's time runs out at the PSP (no webhook: the mock's
 * expire), and here (its expires_at passed): the sweeper's look-up
 * decides it. */
static char *
mc_session_end(const mc_run_t *run, int c)
{
    char        *st;
    resp_t      *r;

    if (run->token[c] == NULL) {
        return strdup("no session");
    }

    r = books_mock("POST", str_printf("/_control/sessions/%s/expire",
                                      run->token[c]), NULL);

    mc_unguarded(run, c, "UPDATE checkouts SET expires_at = now() - "
                 "interval '1 second' WHERE merchant_id = $1 AND "
                 "checkout_id = $2 AND status = 'EXECUTING'");

    st = mc_settled(run, c, 5000);

    return str_printf("%ld, then %s", r->status, st);
}


static int mc_env_int(const char *name, int dflt);


/*
 * A checkout FAILED here (the shop's cancel, a decline) whose Adyen session
 * the shopper came back from: a cancel cannot expire it, so the shopper
 * may have paid in it after, and with its webhooks never sent only the
 * sweeper's look-up (every retry=, until the session's expiry) books that.
 * Waits until a round asked about it well after the history went quiet
 * (2 s: more than retry=, so the ask began after the payment), or it left
 * FAILED; its status then.
 */
static char *
mc_asked_again(const mc_run_t *run, int c)
{
    long         waited;
    char        *st, *asked;
    const char  *p[3];

    p[0] = run->m.id;
    p[1] = run->co[c];

    if (run->h->co[c].dialect != 1
        || db_scalar_on(mc_db(run), "SELECT 1 FROM checkout_sweeps WHERE "
                        "merchant_id = $1 AND checkout_id = $2 AND "
                        "session_result IS NOT NULL", 2, p) == NULL)
    {
        return strdup("not asked: no session to look up");
    }

    p[2] = db_scalar_on(mc_db(run), "SELECT (now() + interval '2 seconds')"
                        "::text", 0, NULL);

    for (waited = 0; ; waited += 100) {
        st = db_scalar_on(mc_db(run), "SELECT status::text FROM checkouts "
                          "WHERE merchant_id = $1 AND checkout_id = $2", 2,
                          p);
        asked = db_scalar_on(mc_db(run), "SELECT 1 FROM checkout_sweeps "
                             "WHERE merchant_id = $1 AND checkout_id = $2 "
                             "AND last_at > $3::timestamptz", 3, p);
        if (st == NULL || strcmp(st, "FAILED") != 0 || asked != NULL
            || waited >= 8000)
        {
            return str_printf("%s%s", st != NULL ? st : "no checkout",
                              asked == NULL && st != NULL
                              && strcmp(st, "FAILED") == 0
                              ? " (not asked again)" : "");
        }
        msleep(100);
    }
}


/*
 * With a sweeper, once the history is quiet: the session's time runs out
 * for every checkout still EXECUTING whose webhooks never come (at the
 * PSP, where its session was not paid, and here), as an hour passing
 * would, so that the sweeper settles it or, where its look-up cannot
 * (an Adyen session paid by a method that settles later says
 * paymentPending until then), lists it for a person before the books are
 * compared; and a failed Adyen checkout is asked about once more
 * (mc_asked_again).
 */
static void
mc_time_passes(const mc_run_t *run)
{
    int          c;
    char        *st;
    const char  *p[2];

    if (run->h->gw != MC_GW_SWEPT) {
        return;
    }

    for (c = 0; c < run->h->nco; c++) {
        if (!run->h->co[c].never || run->token[c] == NULL) {
            continue;
        }

        p[0] = run->m.id;
        p[1] = run->co[c];
        st = db_scalar_on(mc_db(run), "SELECT status::text FROM checkouts "
                          "WHERE merchant_id = $1 AND checkout_id = $2", 2,
                          p);

        if (st != NULL && strcmp(st, "FAILED") == 0) {
            st = mc_asked_again(run, c);
            if (mc_env_int("MONEY_PRINT", 0) > 0) {
                mc_say("  at the end, failed checkout %d asked about again: "
                       "%s", c, st);
            }
            continue;
        }

        if (st == NULL || strcmp(st, "EXECUTING") != 0) {
            continue;
        }

        st = mc_session_end(run, c);
        if (mc_env_int("MONEY_PRINT", 0) > 0) {
            mc_say("  at the end, checkout %d's session runs out: %s", c, st);
        }
    }
}


/* the shop's request of one operation: its path and body */
static void
mc_request(const mc_run_t *run, const char *op, int c, int o, long amount,
    const char **path, const char **body)
{
    const mc_co_t  *co;
    const char     *po;

    co = &run->h->co[c];
    po = str_printf("%s_p%d", run->co[c], o + 1);

    if (strcmp(op, "capture") == 0) {
        *path = str_printf("/v1/payments/%s/capture", po);
        *body = str_printf("{\"amount\":\"%s\"}",
                           mc_decimal(amount, co->currency));
    } else if (strcmp(op, "void") == 0) {
        *path = str_printf("/v1/payments/%s/void", po);
        *body = "{}";
    } else if (strcmp(op, "refund") == 0) {
        *path = str_printf("/v1/payments/%s/refunds", po);
        *body = str_printf("{\"amount\":\"%s\",\"reason\":\"mc\"}",
                           mc_decimal(amount, co->currency));
    } else if (strcmp(op, "cancel") == 0) {
        *path = str_printf("/v1/checkouts/%s/cancel", run->co[c]);
        *body = "{}";
    } else {
        *path = "/v1/payouts";
        *body = str_printf("{\"seller_account\":\"%s\",\"amount\":\"%s\","
                           "\"currency\":\"%s\",\"psp\":\"%s\"}",
                           mc_sellers[co->seller[o]],
                           mc_decimal(amount, co->currency),
                           mc_currencies[co->currency],
                           mc_psp(co->dialect));
    }
}


typedef struct {
    const mc_run_t      *run;
    const mc_step_t     *step;
    const char          *path;
    const char          *body;
    char                *out;
} mc_call_t;


static char *mc_step(mc_run_t *run, const mc_step_t *s);


static void *
mc_call(void *arg)
{
    json_t     *ans;
    mc_call_t  *call = arg;

    if (call->step != NULL) {
        call->out = mc_step((mc_run_t *) call->run, call->step);
    } else {
        call->out = mc_shop(call->run, NULL, NULL, call->path, call->body,
                            &ans);
    }

    return NULL;
}


/* Two operations sent at once (each retried as a shop would). */
static char *
mc_race(mc_run_t *run, const mc_step_t *s)
{
    int         i;
    pthread_t   th[2];
    mc_call_t   call[2];

    memset(call, 0, sizeof(call));
    for (i = 0; i < 2; i++) {
        call[i].run = run;
        mc_request(run, mc_race_names[s->arg][i], s->co, s->order,
                   i == 0 ? s->amount : s->amount2, &call[i].path,
                   &call[i].body);
    }

    for (i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&th[i], NULL, mc_call, &call[i]), 0);
    }
    for (i = 0; i < 2; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    }

    run->ops++;

    return str_printf("%s | %s", call[0].out, call[1].out);
}


/* SIGKILL of the history's gateway's workers after ms; returns once the
 * master has started new ones (a reload right after would otherwise find
 * the dead workers never shutting down). */
static char *
mc_kill(mc_run_t *run, int ms)
{
    int  n;

    msleep(ms);
    n = gateway_kill_workers(&run->gw);
    msleep(300);
    gateway_wait_ready(&run->gw, 10);

    return str_printf("%d killed", n);
}


/*
 * A refund whose PSP answers after the gateway gave up (its latency past
 * the request's time; its webhook late), then the PSP's key window passes
 * (the claim moved 8 days back) and the PSP forgets its keys; then the
 * shop retries under the same key.  The gateway must not send it again
 * (a second refund): the webhook settles it.
 */
static char *
mc_forget(mc_run_t *run, const mc_step_t *s)
{
    int          i;
    char        *key, *first, *again;
    long         n;
    json_t      *ans;
    resp_t      *r;
    const char  *path, *body;

    mock_fault(str_printf("{\"match\":\"%s:rf_\",\"latency_ms\":3000,"
                          "\"webhook_delay_ms\":4000}", run->m.id));

    mc_request(run, "refund", s->co, s->order, s->amount, &path, &body);
    key = uid("mk");
    first = mc_send(run, NULL, NULL, path, body, key, 0, &ans);

    /* the PSP makes it meanwhile (3 s after it came: the gateway gave up
     * after its 1.5 or 2.5 s), then forgets its keys */
    msleep(2000);
    n = 0;
    for (i = 0; i < 3; i++) {
        r = books_mock("POST", "/_control/keys/forget",
                       str_printf("{\"match\":\"%s:rf_\"}", run->m.id));
        n += r->status == 200
             ? (long) json_integer_value(json_object_get(resp_json(r),
                                                         "forgotten"))
             : 0;
        msleep(500);
    }

    mc_unguarded(run, s->co, "UPDATE refunds SET created_at = created_at "
                 "- interval '8 days' WHERE merchant_id = $1 AND "
                 "checkout_id = $2 AND status = 'PENDING'");

    again = mc_send(run, NULL, NULL, path, body, key, 1, &ans);
    run->ops++;

    return str_printf("%s; the PSP forgot %ld key(s); the retry %s", first,
                      n, again);
}


/* the pay-outs the PSP took back (in part, whole or the rest: its answer
 * 200) over the histories run */
static long  mc_backs_taken;


/*
 * The PSP takes back the n-th pay-out of the history after paying it
 * (POST /_control/transfers/{nonce}/reverse): s->amount of it, or all
 * that is left; its webhook delayed or duplicated by a rule on the
 * pay-out's nonce (the first such step of it adds the rule).
 */
static char *
mc_payout_back(mc_run_t *run, const mc_step_t *s)
{
    char           *nonce_s;
    json_t         *b;
    resp_t         *r;
    const mc_co_t  *co;

    co = &run->h->co[s->co];

    if (run->payout[s->arg] == NULL) {
        return strdup("no such pay-out");
    }

    nonce_s = db_scalar_on(mc_db(run), "SELECT nonce FROM payouts WHERE "
                           "merchant_id = $1 AND payout_id = $2", 2,
                           (const char *[]) { run->m.id,
                                              run->payout[s->arg] });
    if (nonce_s == NULL) {
        return strdup("no such pay-out");
    }
    books_subject(&run->subjects, nonce_s);

    if (s->knob == MC_BACK_DELAYED) {
        mock_fault(str_printf("{\"match\":\"%s\",\"webhook_delay_ms\":400}",
                              nonce_s));
    } else if (s->knob == MC_BACK_DUPLICATED) {
        mock_fault(str_printf("{\"match\":\"%s\",\"webhook_duplicate\":2}",
                              nonce_s));
    }

    r = books_mock("POST", str_printf("/_control/transfers/%s/reverse",
                                      nonce_s),
                   s->amount > 0 ? str_printf("{\"amount\":%ld}", s->amount)
                                 : NULL);
    b = r->status == 200 ? resp_json(r) : NULL;
    mc_backs_taken += b != NULL;

    return b != NULL
           ? str_printf("%ld (%s of %s taken back in all)", r->status,
                        mc_decimal((long) json_integer_value(
                                       json_object_get(b, "reversed")),
                                   co->currency),
                        mc_decimal((long) json_integer_value(
                                       json_object_get(b, "amount")),
                                   co->currency))
           : str_printf("%ld", r->status);
}


/* PostgreSQL (the merchant's shard's cluster) stopped (pg_ctl's fast
 * stop) after ms and started again; returns once the gateways have their
 * connections back.  Only where no other test shares the database
 * (mc_alone). */
static char *
mc_pg_restart(mc_run_t *run, int ms)
{
    cr_assert(mc_alone, "a PostgreSQL restart where other tests share it");

    msleep(ms);
    pg_stop_shard(run->m.shard);
    msleep(500);
    pg_start_shard(run->m.shard);

    cr_assert(gw_wait_ready(200, 30), "the suite's gateway never came "
              "back after PostgreSQL's restart");
    if (run->base != NULL) {
        gateway_wait_ready(&run->gw, 30);
    }

    return strdup("restarted");
}


/* The history's gateway reloaded: its pool's size changes, so that the
 * new workers differ from the old. */
static char *
mc_reload(mc_run_t *run)
{
    if (run->base == NULL) {
        return strdup("no gateway of its own");
    }

    gateway_reload(&run->gw,
                   str_printf("payments_database_pool %d;", run->pool),
                   str_printf("payments_database_pool %d;", 5 - run->pool));
    run->pool = 5 - run->pool;

    return strdup("reloaded");
}


/* -- a PSP removed from the history's gateway for a while ------------------ */

/* over the histories run: requests replayed from their key while their PSP
 * was removed, new ones refused, unanswered ones answered 503
 * not_configured, those sent again once it was back, and its events
 * delivered at the history's gateway meanwhile (404) and once back (200) */
#define MC_NGONE  6
static long  mc_gone_seen[MC_NGONE];

/* what each count of mc_gone_seen says, as the summary words it */
static const char *const  mc_gone_ways[MC_NGONE] = {
    "retries replayed", "new ones refused", "answered 503 not_configured",
    "sent again once back", "its events meanwhile 404", "then 200"
};

/* and while a PSP was closed: new checkouts naming it refused (those of
 * the history, and one of the checker's own as it closes), routed ones
 * whose route names it registered at the route's other PSP, registrations
 * unanswered before it closed sent there, retries replayed, its
 * operations answered 2xx or otherwise, its events meanwhile (200), the
 * refused registrations sent again once open */
enum {
    MC_CL_REFUSED = 0, MC_CL_ROUTED, MC_CL_SENT, MC_CL_REPLAYED, MC_CL_OPS,
    MC_CL_OPS_OTHER, MC_CL_EVENTS, MC_CL_AGAIN, MC_NCL
};

static long  mc_closed_seen[MC_NCL];

/* what each count of mc_closed_seen says, as the summary words it */
static const char *const  mc_closed_ways[MC_NCL] = {
    [MC_CL_REFUSED] = "new checkouts naming it refused",
    [MC_CL_ROUTED] = "routed ones registered at the route's other PSP",
    [MC_CL_SENT] = "unanswered ones sent there",
    [MC_CL_REPLAYED] = "retries replayed",
    [MC_CL_OPS] = "its operations answered 2xx",
    [MC_CL_OPS_OTHER] = "otherwise",
    [MC_CL_EVENTS] = "its events meanwhile 200",
    [MC_CL_AGAIN] = "the refused registered once open"
};


/* what happened to the PSP of the window open now: "closed" while one is
 * closed (the check closed, below), else "removed" (the check gone) */
static const char *
mc_window(const mc_run_t *run)
{
    return run->closed >= 0 ? "closed" : "removed";
}


/* a step's answer that is not what the model says: the check "closed"
 * while a PSP is closed, else "gone" (the helpers below serve both) */
static void mc_gone_wrong(mc_run_t *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mc_gone_wrong(mc_run_t *run, const char *fmt, ...)
{
    char     line[2048];
    va_list  ap;

    if (run->closed >= 0) {
        run->closed_bad++;
    } else {
        run->gone_bad++;
    }
    if (run->quiet) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    mc_err("check %s: %s", run->closed >= 0 ? "closed" : "gone", line);
}


/* the route line of currency i, as mc_routes_conf wrote it */
static char *
mc_route_line(const mc_run_t *run, int i)
{
    const mc_route_t  *rt = &run->h->route[i];

    return str_printf("payments_route name=mc_%d currency=%s merchant=%s "
                      "psps=%s,%s;\n", i, mc_currencies[i], run->m.id,
                      mc_route_psp(rt, 0), mc_route_psp(rt, 1));
}


/*
 * The history's gateway reloaded without the PSP of dialect d (gone) and
 * every route naming it (nginx -t refuses a route naming no PSP: the
 * routes go first), or with them again, each where it was.
 */
static void
mc_psp_conf(mc_run_t *run, int d, int gone)
{
    int          i;
    const char  *line, *mark;

    line = gw_psp_conf(mc_psp(d), mc_dialects[d]);
    mark = "# the PSP removed for a while\n";

    if (!gone) {
        gateway_reload(&run->gw, mark, line);
    }

    for (i = 0; i < 4; i++) {
        if (!run->h->route[i].used
            || (strcmp(mc_route_psp(&run->h->route[i], 0), mc_psp(d)) != 0
                && strcmp(mc_route_psp(&run->h->route[i], 1), mc_psp(d))
                   != 0))
        {
            continue;
        }
        if (gone) {
            gateway_reload(&run->gw, mc_route_line(run, i),
                           str_printf("# route %d removed for a while\n",
                                      i));
            run->gone_routes |= 1 << i;
        } else if (run->gone_routes & (1 << i)) {
            gateway_reload(&run->gw,
                           str_printf("# route %d removed for a while\n", i),
                           mc_route_line(run, i));
        }
    }

    if (gone) {
        gateway_reload(&run->gw, line, mark);
    } else {
        run->gone_routes = 0;
    }
}


/* the shop's request of an operation step (as mc_step sends it) */
static void
mc_step_request(const mc_run_t *run, const mc_step_t *s, const char **path,
    const char **body)
{
    const mc_co_t  *co = &run->h->co[s->co];

    if (s->kind == MC_PAYOUT) {
        *path = "/v1/payouts";
        *body = str_printf("{\"seller_account\":\"%s\",\"amount\":\"%s\","
                           "\"currency\":\"%s\",\"psp\":\"%s\"}",
                           mc_sellers[s->order],
                           mc_decimal(s->amount, co->currency),
                           mc_currencies[co->currency], mc_psp(s->arg));
        return;
    }

    mc_request(run, s->kind == MC_CAPTURE ? "capture"
                    : s->kind == MC_VOID ? "void" : "refund",
               s->co, s->order, s->amount, path, body);
}


/* 1 if step s is an operation of the PSP of dialect d: a capture, void
 * or refund of a checkout that PSP holds (as the database says), a pay-out
 * naming it */
static int
mc_op_of(const mc_run_t *run, const mc_step_t *s, int d)
{
    char        *psp;
    const char  *p[2];

    if (s->kind == MC_PAYOUT) {
        return s->arg == d;
    }

    if (s->kind != MC_CAPTURE && s->kind != MC_VOID && s->kind != MC_REFUND) {
        return 0;
    }

    p[0] = run->m.id;
    p[1] = run->co[s->co];
    psp = db_scalar_on(mc_db(run), "SELECT psp FROM checkouts WHERE "
                       "merchant_id = $1 AND checkout_id = $2", 2, p);

    return psp != NULL && strcmp(psp, mc_psp(d)) == 0;
}


/* 1 if step s is an operation of the PSP removed now */
static int
mc_gone_op(const mc_run_t *run, const mc_step_t *s)
{
    return run->gone >= 0 && mc_op_of(run, s, run->gone);
}


/* one attempt of a request to the history's gateway; sent again while its
 * key is in use (a claim's lease running), at most 15 s */
static resp_t *
mc_post_once(const mc_run_t *run, const char *path, const char *body,
    const char *key)
{
    int          i;
    req_t        rq;
    resp_t      *r;
    const char  *h[4];

    h[0] = str_printf("Authorization: Bearer %s", run->m.key);
    h[1] = str_printf("Idempotency-Key: %s", key);
    h[2] = "Content-Type: application/json";
    h[3] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s%s", run->base, path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    for (i = 0; ; i++) {
        r = books_retried(&rq, 1, 0, NULL);
        if (i == 30 || r->status != 409
            || strstr(r->body, "idempotency_key_in_use") == NULL)
        {
            return r;
        }
        msleep(500);
    }
}


/* "status code" of an answer */
static char *
mc_answer_line(const resp_t *r)
{
    json_t      *j;
    const char  *code;

    j = r->len > 0 ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    code = j != NULL ? json_string_value(json_object_get(j, "code")) : NULL;

    return code != NULL ? str_printf("%ld %s", r->status, code)
                        : str_printf("%ld", r->status);
}


/* what refuses a new operation of kind whose PSP is not configured
 * (doc/MONEY.md), or a new checkout naming a closed PSP (a registration):
 * its status and problem code */
static void
mc_gone_refusal(int kind, long *status, const char **code)
{
    *status = kind == MC_PAYOUT || kind == MC_REGISTER ? 400 : 409;
    *code = kind == MC_PAYOUT || kind == MC_REGISTER ? "invalid_request"
            : kind == MC_REFUND ? "payment_not_refundable"
            : "payment_not_capturable";
}


/* r is the refusal of a new request of kind: else a wrong answer */
static void
mc_gone_expect_refused(mc_run_t *run, int i, int kind, const char *key,
    const resp_t *r)
{
    long         want;
    char        *n;
    const char  *code, *p[2];

    mc_gone_refusal(kind, &want, &code);

    if (r->status != want || strstr(r->body, code) == NULL) {
        mc_gone_wrong(run, "step %d (%s): its PSP %s, a new request is "
                      "%ld %s, not %ld %s", i, mc_kind_names[kind],
                      mc_window(run), r->status, r->body, want, code);
        return;
    }

    /* nothing stored under its key */
    p[0] = run->m.id;
    p[1] = key;
    n = db_scalar_on(mc_db(run), "SELECT count(*) FROM idempotency_keys "
                     "WHERE merchant_id = $1 AND idem_key = $2", 2, p);
    if (n == NULL || strcmp(n, "0") != 0) {
        mc_gone_wrong(run, "step %d (%s): refused while its PSP is %s, yet "
                      "its key was stored", i, mc_kind_names[kind],
                      mc_window(run));
    }
}


/* r replays the first answer q: its status, its bytes.  A cancel's 200
 * is the checkout as it is now, first and replayed (API.md: "a 200 as the
 * checkout is now"; pay_cancel_claim stores its status alone): its replay
 * is the bytes GET /v1/checkouts/{id} shows after it, which differ from
 * the first where the checkout moved since (an Adyen session paid after
 * its cancel, seed 190146). */
static void
mc_gone_expect_replay(mc_run_t *run, int i, const mc_req_t *q,
    const resp_t *r)
{
    const char  *h, *want = q->answer;
    resp_t      *now;

    if (run->h->steps[i].kind == MC_CANCEL && q->status == 200
        && r->status == 200)
    {
        now = api_get_at(run->base, &run->m,
                         str_printf("/v1/checkouts/%s",
                                    run->co[run->h->steps[i].co]));
        if (now->status == 200) {
            want = str_printf("%.*s", (int) now->len, now->body);
        }
    }

    if (r->status != q->status || r->len != strlen(want)
        || memcmp(r->body, want, r->len) != 0)
    {
        mc_gone_wrong(run, "step %d: retried under its key while its PSP is "
                      "%s, answered %ld %.*s, not its first answer %ld %s%s%s",
                      i, mc_window(run), r->status, (int) r->len, r->body,
                      q->status, q->answer,
                      want != q->answer ? " as the checkout is now: " : "",
                      want != q->answer ? want : "");
        return;
    }

    h = resp_header(r, "Idempotent-Replayed");
    if (h == NULL || strcmp(h, "true") != 0) {
        mc_gone_wrong(run, "step %d: replayed while its PSP is %s without "
                      "Idempotent-Replayed: true", i, mc_window(run));
    }
}


/* r answers a retry of an operation claimed and never answered, its PSP
 * removed: 503 not_configured, nothing sent anywhere */
static void
mc_gone_expect_unsent(mc_run_t *run, int i, int kind, const resp_t *r)
{
    if (r->status != 503 || strstr(r->body, "not_configured") == NULL) {
        mc_gone_wrong(run, "step %d (%s): its first attempt unanswered, its "
                      "retry while its PSP is removed is %ld %.*s, not 503 "
                      "not_configured", i, mc_kind_names[kind], r->status,
                      (int) r->len, r->body);
    }
}


/* r answers the PSP's event delivered at a gateway without that PSP
 * (back 0): 404 not_found; with it again (back 1) or with it closed: 200,
 * seen before */
static int
mc_gone_expect_event(mc_run_t *run, const char *event, int back,
    const resp_t *r)
{
    back |= run->closed >= 0;

    if (back ? r->status == 200
             : r->status == 404 && strstr(r->body, "not_found") != NULL)
    {
        return 0;
    }

    mc_gone_wrong(run, "the PSP's event %s delivered to the history's "
                  "gateway %s: %ld %.*s, not %s", event,
                  run->closed >= 0 ? "while its PSP is closed"
                  : back ? "once its PSP is back" : "while its PSP is removed",
                  r->status, (int) r->len, r->body,
                  back ? "200" : "404 not_found");
    return 1;
}


/*
 * The bytes the PSP signed for a kept event: its body as stored, or, for
 * one kept sealed (an event that may carry a saved method's reusable
 * token, ngx_http_payments_webhook_seal), opened under the gateway's
 * keyring with its associated data "psp_event:<psp>:<event id>".  A
 * sealed body sent as it is stored fails the PSP's signature (400
 * bad_signature): the checker did so for every history whose checkout
 * saved the shopper's method while its PSP was removed (seeds 10350105,
 * 10350172).
 */
static const char *
mc_event_bytes(const char *psp, const char *event_id, const char *stored)
{
    char    *out;
    size_t   slen, olen;

    if (strncmp(stored, "v1.", 3) != 0) {
        return stored;
    }

    slen = strlen(stored);
    out = malloc(slen + 1);
    cr_assert_not_null(out);
    cr_assert_eq(pay_unseal(test_keyring(),
                            str_printf("psp_event:%s:%s", psp, event_id),
                            stored, slen, out, slen + 1, &olen), 0,
                 "the kept event %s of %s does not open", event_id, psp);

    return out;
}


/*
 * The PSP of dialect d removed from the history's gateway.  With knob,
 * the window's first operation of that PSP is sent first (its PSP hanging
 * past the request's time: claimed, never answered), then removed.
 */
static char *
mc_psp_gone(mc_run_t *run, int i)
{
    int               j;
    char             *first;
    resp_t           *r;
    const mc_step_t  *s = &run->h->steps[i], *o;
    const char       *path, *body;
    static const char  *prefix[MC_NKINDS] = {
        [MC_CAPTURE] = "cp_", [MC_VOID] = "vd_", [MC_REFUND] = "rf_",
        [MC_PAYOUT] = "pyo_"
    };

    if (run->base == NULL) {
        return strdup("no gateway of its own");
    }

    first = "";

    for (j = i + 1; s->knob && j < run->h->nsteps; j++) {
        o = &run->h->steps[j];
        if (!run->keep[j] || o->kind == MC_REPLAY) {
            continue;
        }
        run->gone = s->arg;
        if (o->kind == MC_PSP_BACK || !mc_gone_op(run, o)) {
            run->gone = -1;
            break;
        }
        run->gone = -1;

        mock_fault(str_printf("{\"match\":\"%s:%s\",\"hang_ms\":2500,"
                              "\"hang_times\":2}", run->m.id,
                              prefix[o->kind]));
        mc_step_request(run, o, &path, &body);
        run->held[j].key = uid("mk");
        run->held[j].path = path;
        run->held[j].body = body;
        r = mc_post_once(run, path, body, run->held[j].key);
        run->first[j] = r->status;
        run->unsent += r->status == 0 || r->status >= 500;
        run->held[j].status = r->status;
        run->held[j].answer = strndup(r->body, r->len);
        first = str_printf("step %d sent first, its PSP hanging: %s; ", j,
                           mc_answer_line(r));
        break;
    }

    mc_psp_conf(run, s->arg, 1);
    run->gone = s->arg;
    run->gone_since = db_scalar_on(mc_db(run), "SELECT now()::text", 0,
                                   NULL);

    return str_printf("%sreloaded without %s", first, mc_psp(s->arg));
}


/*
 * An operation of the PSP removed now: sent once (under the key of its
 * first attempt, if it had one), and kept to be sent again once the PSP
 * is back.  A new one is refused as before, nothing stored; one whose
 * first attempt went unanswered is 503 not_configured, nothing sent; one
 * whose first attempt was answered is replayed.
 */
static char *
mc_gone_send(mc_run_t *run, int i)
{
    resp_t           *r;
    mc_req_t         *q = &run->held[i];
    const mc_step_t  *s = &run->h->steps[i];

    if (q->key == NULL) {
        q->key = uid("mk");
        mc_step_request(run, s, &q->path, &q->body);
        run->first[i] = -1;
    }

    r = mc_post_once(run, q->path, q->body, q->key);

    if (run->first[i] < 0 || (run->first[i] >= 400 && run->first[i] < 500))
    {
        mc_gone_expect_refused(run, i, s->kind, q->key, r);
        mc_gone_seen[1]++;
    } else if (run->first[i] >= 200 && run->first[i] < 300) {
        mc_gone_expect_replay(run, i, q, r);
        mc_gone_seen[0]++;
    } else {
        mc_gone_expect_unsent(run, i, s->kind, r);
        mc_gone_seen[2]++;
    }

    return str_printf("%s (its PSP removed)", mc_answer_line(r));
}


/* An earlier step's request sent again under its key while its PSP is
 * removed or closed: its first answer replayed (a 2xx, or a 402 of an
 * off-session charge: stored under its key); an operation first refused
 * (a 4xx, nothing stored) is refused as a new one where its PSP is
 * removed (where it is closed, it is made anew: not sent). */
static char *
mc_replay(mc_run_t *run, int i)
{
    int               k;
    resp_t           *r;
    const mc_req_t   *q;
    const mc_step_t  *s = &run->h->steps[i];

    k = s->arg;
    q = &run->rec[k];

    if (run->gone < 0 && run->closed < 0) {
        return strdup("its PSP is configured and open");
    }
    if (!run->keep[k] || q->key == NULL || q->base == NULL
        || q->base != run->base || q->host != NULL)
    {
        return strdup("nothing to replay");
    }

    if (!((q->status >= 200 && q->status < 300) || q->status == 402
          || (q->status >= 400 && q->status < 500
              && run->h->steps[k].kind != MC_REGISTER
              && run->h->steps[k].kind != MC_CANCEL
              && mc_gone_op(run, &run->h->steps[k]))))
    {
        return str_printf("not replayed: its answer was %ld", q->status);
    }

    r = mc_post_once(run, q->path, q->body, q->key);

    if (q->status >= 400 && q->status != 402) {
        mc_gone_expect_refused(run, k, run->h->steps[k].kind, q->key, r);
        mc_gone_seen[1]++;
    } else {
        mc_gone_expect_replay(run, k, q, r);
        if (run->closed >= 0) {
            mc_closed_seen[MC_CL_REPLAYED]++;
        } else {
            mc_gone_seen[0]++;
        }
    }

    return str_printf("%s (first %ld)", mc_answer_line(r), q->status);
}


/*
 * The PSP's events meanwhile, as they would reach the history's gateway:
 * the mock's webhooks go to the suite's gateway (which keeps every PSP and
 * booked them), so each event of the removed PSP it kept for the merchant
 * since the removal is delivered again, its signed bytes and the header
 * values the verification read (an Adyen item in a batch of its own), at
 * the history's gateway: while the PSP is removed, 404 not_found (no PSP
 * of that name: nothing kept, so the PSP delivers it again); once it is
 * back (back), 200, an event seen before.  Returns what was answered.
 */
static char *
mc_gone_webhooks(mc_run_t *run, int d, int back)
{
    int          i, n, bad;
    req_t        rq;
    json_t      *hj, *v;
    resp_t      *r;
    PGresult    *q;
    const char  *p[3], *body, *k, *h[6], *since;
    size_t       nh;

    /* (or, while it is closed, since then: 200) */
    since = run->closed >= 0 ? run->closed_since : run->gone_since;
    if (since == NULL) {
        return strdup("");
    }

    p[0] = mc_psp(d);
    p[1] = run->m.id;
    p[2] = since;
    q = PQexecParams(mc_db(run), "SELECT event_id, convert_from(body, "
                     "'UTF8'), headers::text FROM psp_events WHERE psp = $1 "
                     "AND merchant_id = $2 AND received_at >= "
                     "$3::timestamptz ORDER BY received_at, event_id LIMIT 6",
                     3, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(q), PGRES_TUPLES_OK, "%s",
                 PQerrorMessage(mc_db(run)));

    n = PQntuples(q);
    for (bad = 0, i = 0; i < n; i++) {
        body = mc_event_bytes(p[0], PQgetvalue(q, i, 0), PQgetvalue(q, i, 1));
        if (strncmp(body, "{\"NotificationRequestItem\"", 26) == 0) {
            body = str_printf("{\"live\":\"false\",\"notificationItems\":"
                              "[%s]}", body);
        }

        nh = 0;
        h[nh++] = "Content-Type: application/json";
        hj = json_loads(PQgetvalue(q, i, 2), 0, NULL);
        json_object_foreach(hj, k, v) {
            if (nh < 5 && json_is_string(v)) {
                h[nh++] = str_printf("%s: %s", k, json_string_value(v));
            }
        }
        h[nh] = NULL;

        rq.method = "POST";
        rq.url = str_printf("%s/v1/webhooks/%s", run->base, mc_psp(d));
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;
        r = http(&rq);

        bad += mc_gone_expect_event(run, PQgetvalue(q, i, 0), back, r);
        if (run->closed >= 0) {
            mc_closed_seen[MC_CL_EVENTS]++;
        } else {
            mc_gone_seen[back ? 5 : 4]++;
        }
    }

    PQclear(q);

    return n == 0 ? strdup("")
                  : str_printf("; %d event(s) of it delivered %s: %s", n,
                               run->closed >= 0 ? "while closed"
                               : back ? "once back" : "meanwhile",
                               bad ? "WRONG"
                               : back || run->closed >= 0 ? "200" : "404");
}


/* The PSP configured again; then each request refused or answered 503
 * while it was removed is sent again under its key, as a shop would (one
 * whose first attempt went unanswered resumes there: 201). */
static char *
mc_psp_back(mc_run_t *run, int i)
{
    int          j;
    char        *out, *a, *wh;
    json_t      *ans;
    const char  *id;

    if (run->gone < 0) {
        return strdup("it was not removed");
    }

    wh = mc_gone_webhooks(run, run->gone, 0);
    mc_psp_conf(run, run->h->steps[i].arg, 0);
    run->gone = -1;
    run->unsent = 0;
    out = str_printf("reloaded with %s%s%s", mc_psp(run->h->steps[i].arg), wh,
                     mc_gone_webhooks(run, run->h->steps[i].arg, 1));
    run->gone_since = NULL;

    for (j = 0; j < i; j++) {
        if (run->held[j].key == NULL) {
            continue;
        }

        a = mc_send(run, NULL, NULL, run->held[j].path, run->held[j].body,
                    run->held[j].key, 1, &ans);
        out = str_printf("%s; step %d again: %s", out, j, a);
        mc_gone_seen[3]++;

        if (run->first[j] >= 500 || run->first[j] == 0) {
            if (strncmp(a, "201", 3) != 0) {
                mc_gone_wrong(run, "step %d (%s): unanswered, then 503 while "
                              "its PSP was removed, its retry once back is "
                              "%s, not 201", j,
                              mc_kind_names[run->h->steps[j].kind], a);
            }
        }

        id = json_string_value(json_object_get(ans, "payout_id"));
        if (run->h->steps[j].kind == MC_PAYOUT && id != NULL) {
            run->payout[mc_payout_ordinal(run->h, j)] = strdup(id);
        }

        run->held[j].key = NULL;
    }

    return out;
}


/* -- a PSP closed on the history's gateway for a while ---------------------- */

/*
 * The history's gateway reloaded with the payments_psp line of dialect d
 * marked closed (closed), or open again.
 */
static void
mc_closed_conf(mc_run_t *run, int d, int closed)
{
    const char  *open_line, *closed_line;

    open_line = gw_psp_conf(mc_psp(d), mc_dialects[d]);
    closed_line = gw_psp_conf_with(mc_psp(d), mc_dialects[d], "closed");

    gateway_reload(&run->gw, closed ? open_line : closed_line,
                   closed ? closed_line : open_line);
}


/* r refuses the new checkout id sent under key while its PSP is closed:
 * 400 invalid_request saying so, nothing stored (its key, a checkout),
 * nothing sent to the PSP; step i is the history's step that sent it */
static void
mc_closed_expect_refused(mc_run_t *run, int i, const char *id,
    const char *key, const resp_t *r)
{
    long         sessions, requests;
    char        *n;
    const char  *p[2];

    mc_gone_expect_refused(run, i, MC_REGISTER, key, r);
    if (r->status == 400 && strstr(r->body, "closed") == NULL) {
        mc_gone_wrong(run, "step %d: a new checkout naming a closed PSP "
                      "refused without saying it is closed: %.*s", i,
                      (int) r->len, r->body);
    }

    p[0] = run->m.id;
    p[1] = id;
    n = db_scalar_on(mc_db(run), "SELECT count(*) FROM checkouts WHERE "
                     "merchant_id = $1 AND checkout_id = $2", 2, p);
    if (n == NULL || strcmp(n, "0") != 0) {
        mc_gone_wrong(run, "step %d: a new checkout naming a closed PSP "
                      "refused, yet stored (%s row)", i, n ? n : "?");
    }

    mock_registrations(nonce(&run->m, id), &sessions, &requests);
    if (sessions != 0 || requests != 0) {
        mc_gone_wrong(run, "step %d: a new checkout naming a closed PSP "
                      "refused, yet sent to it (%ld request(s), %ld "
                      "session(s))", i, requests, sessions);
    }
}


/*
 * As the PSP of dialect d closes, the checker's own new checkouts, never
 * paid: one naming it (of a checkout of the history's at it: its amount,
 * currency and seller), refused; and by each route of the history naming
 * it whose other PSP is one of the three (not a tripped or dead one), a
 * routed one (of a checkout of the history's at that other PSP), which
 * the route registers there.  Returns what was answered.
 */
static char *
mc_closed_probes(mc_run_t *run, int i, int d)
{
    int                c, k, other;
    char              *id, *key, *out, *psp;
    json_t            *body, *po;
    resp_t            *r;
    const mc_co_t     *co;
    const mc_route_t  *rt;
    const char        *p[2];

    out = "";
    co = NULL;

    for (k = -1; k < 4; k++) {
        /* k -1: the one naming it; else the route for currency k */
        rt = k >= 0 ? &run->h->route[k] : NULL;
        if (rt != NULL && (!rt->used || (rt->first != d && rt->second != d)))
        {
            continue;
        }
        other = rt == NULL ? d : rt->first == d ? rt->second : rt->first;
        if (other > 2) {
            continue;
        }
        for (c = 0; c < run->h->nco; c++) {
            co = &run->h->co[c];
            if (co->dialect == other && (k < 0 || co->currency == k)) {
                break;
            }
        }
        if (c == run->h->nco) {
            continue;
        }

        id = uid("mc");
        key = uid("mk");
        body = checkout_new(id, 1);
        po = json_array_get(json_object_get(body, "payment_orders"), 0);
        json_object_set_new(po, "amount",
                            json_string(mc_decimal(co->amount[0],
                                                   co->currency)));
        json_object_set_new(po, "currency",
                            json_string(mc_currencies[co->currency]));
        json_object_set_new(po, "seller_account",
                            json_string(mc_sellers[co->seller[0]]));
        if (rt == NULL) {
            json_object_set_new(body, "psp", json_string(mc_psp(d)));
        } else {
            json_object_del(body, "psp");
        }

        r = mc_post_once(run, PATH_PAYMENTS, dump(body), key);

        if (rt == NULL) {
            mc_closed_expect_refused(run, i, id, key, r);
            mc_closed_seen[MC_CL_REFUSED]++;
            out = str_printf("; a new checkout naming it: %s",
                             mc_answer_line(r));
            continue;
        }

        p[0] = run->m.id;
        p[1] = id;
        psp = db_scalar_on(mc_db(run), "SELECT psp FROM checkouts WHERE "
                           "merchant_id = $1 AND checkout_id = $2", 2, p);
        if (r->status != 201 || psp == NULL
            || strcmp(psp, mc_psp(other)) != 0)
        {
            mc_gone_wrong(run, "step %d: a routed checkout by the route for "
                          "%s while %s is closed: %ld %.*s, at %s, not 201 "
                          "at %s", i, mc_currencies[k], mc_psp(d), r->status,
                          (int) r->len, r->body, psp ? psp : "no PSP",
                          mc_psp(other));
        }
        mc_closed_seen[MC_CL_ROUTED]++;
        out = str_printf("%s; a routed one (%s): %s at %s", out,
                         mc_currencies[k], mc_answer_line(r),
                         psp ? psp : "no PSP");
    }

    return out;
}


/*
 * The PSP of dialect d closed on the history's gateway.  With knob, the
 * window's first registration naming it is sent first (its PSP hanging
 * past the request's time: claimed, never answered), then it is closed;
 * then the checker's own new checkouts (mc_closed_probes).
 */
static char *
mc_psp_closed(mc_run_t *run, int i)
{
    int               j, c;
    char             *first, *body;
    resp_t           *r;
    const mc_step_t  *s = &run->h->steps[i], *o;

    if (run->base == NULL) {
        return strdup("no gateway of its own");
    }

    first = "";
    c = s->co;

    for (j = i + 1; s->knob && j < run->h->nsteps; j++) {
        o = &run->h->steps[j];
        if (!run->keep[j] || (o->kind != MC_REGISTER
                              && o->kind != MC_PSP_OPEN))
        {
            continue;
        }
        if (o->kind == MC_PSP_OPEN || o->co != c
            || (body = mc_register_body(run, c)) == NULL)
        {
            break;
        }

        /* (its first two calls: the gateway's own retry too) */
        mock_fault(str_printf("{\"match\":\"%s\",\"hang_ms\":2500,"
                              "\"hang_times\":2}", run->nonce[c]));
        run->reg_key[c] = uid("mk");
        r = mc_post_once(run, PATH_PAYMENTS, body, run->reg_key[c]);
        run->reg_first[c] = r->status;
        first = str_printf("step %d sent first, its PSP hanging: %s; ", j,
                           mc_answer_line(r));
        break;
    }

    mc_closed_conf(run, s->arg, 1);
    run->closed = s->arg;
    run->closed_since = db_scalar_on(mc_db(run), "SELECT now()::text", 0,
                                     NULL);

    return str_printf("%sreloaded with %s closed%s", first, mc_psp(s->arg),
                      mc_closed_probes(run, i, s->arg));
}


/*
 * Checkout c's registration while its PSP is closed: a new one is refused
 * (mc_closed_expect_refused) and sent again once the PSP is open; one
 * whose first attempt went unanswered before the close (mc_psp_closed) is
 * resumed there: 201, one session at the PSP.
 */
static char *
mc_closed_register(mc_run_t *run, int i, int c)
{
    long     sessions;
    char    *out, *body, *key;
    resp_t  *r;

    if (run->reg_key[c] != NULL) {
        out = mc_register(run, c);
        mock_registrations(run->nonce[c], &sessions, NULL);
        if (strncmp(out, "201", 3) != 0 || sessions != 1) {
            mc_gone_wrong(run, "step %d: its first attempt unanswered, its "
                          "retry while its PSP is closed is %s with %ld "
                          "session(s) at the PSP, not 201 with 1", i, out,
                          sessions);
        }
        /* (answered after all, the PSP's hang within the request's time:
         * replayed) */
        if (run->reg_first[c] >= 200 && run->reg_first[c] < 300) {
            mc_closed_seen[MC_CL_REPLAYED]++;
            return str_printf("%s (its PSP closed: replayed)", out);
        }
        mc_closed_seen[MC_CL_SENT]++;
        return str_printf("%s (its PSP closed: sent there)", out);
    }

    body = mc_register_body(run, c);
    if (body == NULL) {
        return strdup("no saved method");
    }

    key = uid("mk");
    r = mc_post_once(run, PATH_PAYMENTS, body, key);
    mc_closed_expect_refused(run, i, run->co[c], key, r);
    mc_closed_seen[MC_CL_REFUSED]++;
    run->refused[c] = 1;

    return str_printf("%s (its PSP closed: sent again once open)",
                      mc_answer_line(r));
}


/* Step i's answer, an operation of the PSP closed now, goes on as if it
 * were open: no refusal for its PSP (closed to new checkouts, or not
 * configured). */
static void
mc_closed_answered(mc_run_t *run, int i)
{
    const mc_req_t  *q = &run->rec[i];

    if (run->closed < 0 || q->key == NULL
        || !mc_op_of(run, &run->h->steps[i], run->closed))
    {
        return;
    }

    if (q->status >= 200 && q->status < 300) {
        mc_closed_seen[MC_CL_OPS]++;
        return;
    }

    mc_closed_seen[MC_CL_OPS_OTHER]++;
    if (strstr(q->answer, "closed to new") != NULL
        || strstr(q->answer, "not_configured") != NULL)
    {
        mc_gone_wrong(run, "step %d (%s): an operation of a PSP closed to "
                      "new checkouts refused for it: %ld %s", i,
                      mc_kind_names[run->h->steps[i].kind], q->status,
                      q->answer);
    }
}


/* The PSP's events since it closed delivered at the history's gateway
 * (200: it keeps verifying them), then the PSP open again; then each
 * registration refused while it was closed is sent again. */
static char *
mc_psp_open(mc_run_t *run, int i)
{
    int    c;
    char  *out, *wh;

    if (run->closed < 0) {
        return strdup("it was not closed");
    }

    wh = mc_gone_webhooks(run, run->closed, 1);
    mc_closed_conf(run, run->closed, 0);
    run->closed = -1;
    run->closed_since = NULL;
    out = str_printf("reloaded with %s open%s", mc_psp(run->h->steps[i].arg),
                     wh);

    run->rec_at = -1;
    for (c = 0; c < run->h->nco; c++) {
        if (run->refused[c]) {
            run->refused[c] = 0;
            out = str_printf("%s; checkout %d registered: %s", out, c,
                             mc_register(run, c));
            mc_closed_seen[MC_CL_AGAIN]++;
        }
    }

    return out;
}


static char *
mc_step(mc_run_t *run, const mc_step_t *s)
{
    int             i;
    char           *out, *po;
    long            amount, held;
    const char     *ref, *id;
    json_t         *ans, *p;
    resp_t         *r;
    const mc_co_t  *co;

    co = &run->h->co[s->co];
    po = str_printf("%s_p%d", run->co[s->co], s->order + 1);
    run->ops++;

    /* its request and answer recorded (a step of the history's; never
     * the two of a race, sent at once) */
    i = s >= run->h->steps && s < run->h->steps + run->h->nsteps
        && s->kind != MC_RACE ? (int) (s - run->h->steps) : -1;
    run->rec_at = i;

    /* an operation of the PSP removed from the history's gateway now */
    if (i >= 0 && mc_gone_op(run, s)) {
        return mc_gone_send(run, i);
    }

    switch (s->kind) {
    case MC_PSP_GONE:
        return mc_psp_gone(run, i);

    case MC_REPLAY:
        return mc_replay(run, i);

    case MC_PSP_BACK:
        return mc_psp_back(run, i);

    case MC_PSP_CLOSE:
        return mc_psp_closed(run, i);

    case MC_PSP_OPEN:
        return mc_psp_open(run, i);

    case MC_REGISTER:
        if (run->closed >= 0 && mc_names_psp(run->h, s->co, run->closed)) {
            return mc_closed_register(run, i, s->co);
        }
        out = mc_register(run, s->co);
        /* held for review, the charge is sent at its approval */
        return !co->lost || co->review ? out
               : co->auth ? mc_lost_auth(run, s->co, out)
               : mc_lost_settled(run, s->co, out);

    case MC_APPROVE:
        /* a lost charge's approval: once (every answer is dropped) */
        out = mc_admin_approve(co->routed ? run->base : NULL,
                               run->nonce[s->co], co->lost ? 1 : 4, &ans);
        if (json_is_string(json_object_get(ans, "psp_token"))) {
            run->token[s->co] = strdup(json_string_value(
                                    json_object_get(ans, "psp_token")));
            books_subject(&run->subjects, run->token[s->co]);
        }
        return !co->lost ? out
               : co->auth ? mc_lost_auth(run, s->co, out)
               : mc_lost_settled(run, s->co, out);

    case MC_PAY:
    case MC_DECLINE:
        if (run->token[s->co] == NULL) {
            return strdup("no session");
        }
        if (run->h->gw == MC_GW_SWEPT && co->dialect == 1
            && s->kind == MC_PAY)
        {
            out = mc_pay_hosted(run, s->co);
        } else {
            r = books_mock("POST", str_printf("/_control/sessions/%s/%s",
                                              run->token[s->co],
                                              s->kind == MC_PAY ? "pay"
                                                                : "decline"),
                           NULL);
            out = str_printf("%ld", r->status);
        }
        /* the PSP took the payment of a charge the shop canceled */
        mc_auth_seen[1] += co->auth_left == MC_AUTH_CANCELED
                           && strncmp(out, "20", 2) == 0;
        /* no webhook comes: the sweeper's look-up must find it (Adyen
         * keeps a declined shopper's session open) */
        if (co->never && (s->kind == MC_PAY || co->dialect != 1)) {
            out = str_printf("%s, then %s", out,
                             mc_settled(run, s->co, 5000));
        }
        return out;

    case MC_SESSION_END:
        return mc_session_end(run, s->co);

    case MC_RELOAD:
        return mc_reload(run);

    case MC_RACE:
        return mc_race(run, s);     /* counted as two operations */

    case MC_FORGET:
        return mc_forget(run, s);   /* the refund and its retry */

    case MC_PG_RESTART:
        return mc_pg_restart(run, 0);

    case MC_KILL:
        /* with no next step to land in (mc_run): between steps */
        if (run->base == NULL) {
            return strdup("no gateway of its own");
        }
        return mc_kill(run, 0);

    case MC_CANCEL:
        out = mc_shop(run, NULL, NULL,
                      str_printf("/v1/checkouts/%s/cancel", run->co[s->co]),
                      "{}", &ans);
        mc_auth_seen[0] += co->auth && strncmp(out, "200", 3) == 0;
        return out;

    case MC_CAPTURE:
        return mc_shop(run, NULL, NULL,
                       str_printf("/v1/payments/%s/capture", po),
                       str_printf("{\"amount\":\"%s\"}",
                                  mc_decimal(s->amount, co->currency)),
                       &ans);

    case MC_VOID:
        return mc_shop(run, NULL, NULL,
                       str_printf("/v1/payments/%s/void", po), "{}", &ans);

    case MC_REFUND:
        return mc_shop(run, NULL, NULL,
                       str_printf("/v1/payments/%s/refunds", po),
                       str_printf("{\"amount\":\"%s\",\"reason\":\"mc\"}",
                                  mc_decimal(s->amount, co->currency)),
                       &ans);

    case MC_PAYOUT:
        out = mc_shop(run, NULL, NULL, "/v1/payouts",
                      str_printf("{\"seller_account\":\"%s\",\"amount\":"
                                 "\"%s\",\"currency\":\"%s\",\"psp\":"
                                 "\"%s\"}", mc_sellers[s->order],
                                 mc_decimal(s->amount, co->currency),
                                 mc_currencies[co->currency],
                                 mc_psp(s->arg)),
                      &ans);
        id = json_string_value(json_object_get(ans, "payout_id"));
        if (id != NULL && s >= run->h->steps
            && s < run->h->steps + run->h->nsteps)
        {
            run->payout[mc_payout_ordinal(run->h,
                                          (int) (s - run->h->steps))]
                = strdup(id);
        }
        return out;

    case MC_PAYOUT_BACK:
        return mc_payout_back(run, s);

    case MC_DISPUTE:
    case MC_OUTSIDE:
        ref = books_payment_ref(run->m.id, run->nonce[s->co]);
        if (ref == NULL) {
            return strdup("no payment at the PSP");
        }
        amount = s->amount;
        if (s->kind == MC_DISPUTE) {
            /* a chargeback takes at most what the PSP still holds of the
             * payment (a reversal may have taken it back meanwhile) */
            p = books_payment(books_fetch(run->m.id), run->nonce[s->co]);
            held = books_held(p);
            if (held <= 0) {
                return strdup("nothing held at the PSP to dispute");
            }
            amount = amount < held ? amount : held;
        }
        r = books_mock("POST", s->kind == MC_DISPUTE ? "/_control/disputes"
                                                  : "/_control/captures",
                    str_printf("{\"payment_ref\":\"%s\",\"amount\":%ld}",
                               ref, amount));
        id = r->status == 200
             ? json_string_value(json_object_get(resp_json(r), "id")) : NULL;
        if (id != NULL && s->kind == MC_DISPUTE) {
            run->dispute[s->co][s->arg] = strdup(id);
            books_subject(&run->subjects, id);
        } else if (id != NULL) {
            books_subject(&run->subjects, run->nonce[s->co]);
        }
        return amount != s->amount
               ? str_printf("%ld (of %s only)", r->status,
                            mc_decimal(amount, co->currency))
               : str_printf("%ld", r->status);

    case MC_CLOSE:
        if (run->dispute[s->co][s->arg] == NULL) {
            return strdup("no such dispute");
        }
        r = books_mock("POST", str_printf("/_control/disputes/%s/close",
                                       run->dispute[s->co][s->arg]),
                    s->order ? "{\"outcome\":\"won\"}"
                             : "{\"outcome\":\"lost\"}");
        return str_printf("%ld", r->status);

    case MC_EXPIRE:
        return mc_expire(run, s->co);

    case MC_REVERSE:
        id = books_capture_id(run->m.id, run->nonce[s->co], s->arg);
        if (id == NULL) {
            return strdup("no such capture at the PSP");
        }
        r = books_mock("POST", str_printf("/_control/captures/%s/fail", id),
                    NULL);
        books_subject(&run->subjects, run->nonce[s->co]);
        return str_printf("%ld", r->status);
    }

    return strdup("?");
}


/*
 * The history's own gateway, when it draws one: the suite's PSPs under
 * their names (their webhooks land on the suite's gateway, on the same
 * database), two workers, a lease short enough for a shop's retry after a
 * worker died with its key, and (MC_GW_SWEPT) a sweeper in a hurry.
 */
/* a routed history's lines: each tripped PSP (the mock under a name of
 * its own: no retry, its breaker open for the hour after one failure),
 * then the route of each currency, for this merchant alone */
static char *
mc_routes_conf(const mc_run_t *run)
{
    int                d, i, trip[3], dead[3];
    char              *conf, *line, *at;
    const char        *mock = env("PAY_TEST_MOCK");
    const mc_route_t  *rt;

    conf = strdup("");
    memset(trip, 0, sizeof(trip));
    memset(dead, 0, sizeof(dead));

    for (i = 0; i < 4; i++) {
        rt = &run->h->route[i];
        if (rt->used && rt->first == MC_TRIPPED) {
            trip[rt->trip] = 1;
        }
        if (rt->used && rt->first == MC_DEAD) {
            dead[rt->trip] = 1;
        }
    }

    /* the dead PSP: the mock's lines with its url (not hosted=) at port 1
     * on loopback, where nothing listens (no test can bind it); one
     * attempt, no breaker, so each checkout leaves it connect_refused */
    for (d = 0; d < 3; d++) {
        if (!dead[d]) {
            continue;
        }
        line = gw_psp_conf(str_printf("mc_dead_%s", mc_dialects[d]),
                           mc_dialects[d]);
        line[strlen(line) - 2] = '\0';        /* its ";\n" */
        at = strstr(line, str_printf("url=%s", mock));
        cr_assert_not_null(at, "%s", line);
        *at = '\0';
        conf = str_printf("%s%surl=http://127.0.0.1:1%s retries=0 "
                          "breaker=0;\n", conf, line,
                          at + strlen("url=") + strlen(mock));
    }

    for (d = 0; d < 3; d++) {
        if (!trip[d]) {
            continue;
        }
        line = gw_psp_conf(str_printf("mc_trip_%s", mc_dialects[d]),
                           mc_dialects[d]);
        line[strlen(line) - 2] = '\0';        /* its ";\n" */
        conf = str_printf("%s%s retries=0 breaker=1 breaker_open=1h;\n", conf,
                          line);
    }

    for (i = 0; i < 4; i++) {
        rt = &run->h->route[i];
        if (rt->used) {
            conf = str_printf("%spayments_route name=mc_%d currency=%s "
                              "merchant=%s psps=%s,%s;\n", conf,
                              i, mc_currencies[i], run->m.id,
                              mc_route_psp(rt, 0), mc_route_psp(rt, 1));
        }
    }

    return conf;
}


/*
 * Where a routed checkout is held for review: a server of the history's
 * gateway (its routes) with the risk check as the suite's deny.risk.test
 * has it, on a port of its own; run->risk is its origin.
 */
static char *
mc_risk_conf(mc_run_t *run)
{
    int          c;
    long         port;
    const char  *root = env("PAY_TEST_RUN");

    for (c = 0; c < run->h->nco; c++) {
        if (run->h->co[c].review && run->h->co[c].routed) {
            break;
        }
    }
    if (c == run->h->nco) {
        return "";
    }

    port = free_port();
    run->risk = str_printf("https://127.0.0.1:%ld", port);

    return str_printf(
        "server {\n"
        "    listen 127.0.0.1:%ld ssl;\n"
        "    ssl_certificate %s/conf/tls.crt;\n"
        "    ssl_certificate_key %s/conf/tls.key;\n"
        GATEWAY_SERVER_CONF
        "    payments_risk url=%s/risk secret_file=%s/conf/risk.secret\n"
        "        answer_secret_file=%s/conf/risk_answer.secret\n"
        "        timeout=1s connect_timeout=1s allow_http;\n"
        "    location / { payments; }\n"
        "}\n", port, root, root, env("PAY_TEST_RISK"), root, root);
}


static void
mc_gateway(mc_run_t *run)
{
    int      i;
    long     status;
    resp_t  *r;

    /* a routed history's routes name its merchant: a gateway of its own,
     * without kills or reloads where it drew the suite's */
    if (run->h->gw == MC_GW_SUITE && run->h->routed == 0) {
        return;
    }

    cr_assert(run->h->gw != MC_GW_SWEPT || mc_alone,
              "seed %" PRIu64 " draws a sweeper: it runs only where no "
              "other test shares the database (make money-check, "
              "solo_books_swept)", run->h->seed);

    run->pool = 2;
    gateway_start(&run->gw, str_printf("mc%d", ++mc_gateways), 2,
                  str_printf(
        "%s"
        "payments_database_pool 2;\n"
        "payments_database_timeout 800ms;\n"
        "payments_request_timeout 1500ms;\n"
        "payments_idempotency_lease 4s;\n"
        "payments_session_lifetime 1h;\n"
        "payments_admin_key_file %s;\n"
        "payments_sweeper %s;\n%s%s%s%s%s",
        pg_gateway_databases(), env("PAY_TEST_ADMIN_KEY"),
        run->h->gw == MC_GW_SWEPT
        ? "on interval=300ms after=1s retry=1s alert=60s grace=1s batch=1000"
        : "off",
        gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        gw_psp_conf("mock_adyen", "adyen"),
        gw_psp_conf("mock_generic", "generic"), mc_routes_conf(run),
        mc_risk_conf(run)));
    gateway_wait_ready(&run->gw, 10);
    run->base = run->gw.origin;

    /* over several shards /readyz is 200 while any is ready: until the
     * merchant's is */
    for (i = 0; shards_n() > 1 && i < 100; i++) {
        r = gateway_get(&run->gw, str_printf("/readyz?shard=%s",
                                             run->m.shard));
        status = r->status;
        resp_free(r);
        if (status == 200) {
            break;
        }
        msleep(100);
    }

    if (run->h->gw != MC_GW_SWEPT) {
        return;
    }

    /* an earlier history's sweeper may hold the lease until it runs out
     * (over several shards: the merchant's shard's lease) */
    for (i = 0; i < 100; i++) {
        if (gateway_metric(&run->gw, shards_n() > 1
                           ? str_printf("payments_sweeper_leader{shard="
                                        "\"%s\"}", run->m.shard)
                           : "payments_sweeper_leader") == 1)
        {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("the history's sweeper never took the lease");
}


static void
mc_gateway_stop(mc_run_t *run)
{
    int  i;

    if (run->base == NULL) {
        return;
    }

    gateway_stop(&run->gw);
    run->base = NULL;

    if (run->h->gw == MC_GW_SWEPT) {
        /* its lease given back at once (no other test shares it), the
         * lease of every shard it swept */
        for (i = 0; i < shards_n(); i++) {
            db_exec_on(db_shard(shard_name(i)), "UPDATE sweeper_lease SET "
                       "until = now() WHERE id = 1", 0, NULL);
        }
    }
}


/* 1 when quiet within seconds; patient: an event the gateway refuses is
 * waited for until the PSP gives it up, else until its third attempt */
static int
mc_quiet(mc_run_t *run, int seconds, int patient)
{
    PGconn      *conns[1] = { mc_db(run) };
    const char  *ids[1] = { run->m.id };

    return books_quiet_on(&run->subjects, conns, ids, 1, seconds, patient);
}


/* the deadline of a step's wait for quiet: while an operation claimed and
 * never answered waits for its PSP's return it stays PENDING, so quiet
 * never comes; the webhooks of a step come well within 2 s */
static int
mc_step_quiet_s(const mc_run_t *run)
{
    return run->unsent > 0 ? 2 : MC_STEP_QUIET_S;
}


/* -- the checks ------------------------------------------------------------- */

/* the books' checks (harness_books.h), then the checker's own */
typedef enum {
    MC_CHK_CAPTURED = BOOKS_CAPTURED,
    MC_CHK_ONCE = BOOKS_ONCE,
    MC_CHK_PAYOUTS = BOOKS_PAYOUTS,
    MC_CHK_FORWARD = BOOKS_FORWARD,
    MC_CHK_SHARD = BOOKS_SHARD,
    MC_CHK_WEBHOOKS = BOOKS_NCHECKS,
    MC_CHK_ROUTE,
    MC_CHK_RECONCILE,
    MC_CHK_GONE,
    MC_CHK_CLOSED,
    MC_NCHECKS
} mc_check_e;

static const char  *mc_check_names[MC_NCHECKS] = {
    "captured", "refunded", "disputed", "order", "payouts", "moved", "once",
    "forward", "balanced", "wallets", "audit", "shard", "commission",
    "webhooks", "route", "reconcile", "gone", "closed"
};

typedef struct {
    long  n[MC_NCHECKS];
} mc_result_t;

typedef struct {
    mc_result_t  *res;
    int           quiet;
    int           gave_up;
} mc_sink_t;


static void
mc_books_fail(void *ctx, books_check_e chk, const char *line)
{
    mc_sink_t  *sink = ctx;

    sink->res->n[chk]++;
    if (!sink->quiet) {
        mc_err("check %s: %s", mc_check_names[chk], line);
    }
}


/* an event of the run the PSP has not had accepted: logged */
static void
mc_undelivered_event(void *ctx, const char *subject, json_t *ev,
    int given_up)
{
    mc_sink_t  *sink = ctx;

    sink->gave_up += given_up;
    if (sink->quiet) {
        return;
    }

    if (given_up) {
        mc_err("webhooks: %s %s of %s never accepted: %lld %s",
                     json_string_value(json_object_get(ev, "type")),
                     json_string_value(json_object_get(ev, "id")), subject,
                     json_integer_value(json_object_get(ev, "last_status")),
                     json_string_value(json_object_get(ev, "last_body")));
    } else {
        mc_err("webhooks: %s of %s still undelivered after the "
                     "deadline (last %lld)",
                     json_string_value(json_object_get(ev, "type")), subject,
                     json_integer_value(json_object_get(ev, "last_status")));
    }
}


static void mc_check_some(const mc_run_t *run, json_t *books,
    mc_result_t *res, int quiet, const char *shard, unsigned skip);


/* the run's books against the PSP's (every check but forward, which the
 * compositions run), read on the merchant's shard (shard: on that one
 * instead, a broken harness every_check_sees_the_books_broken plays) */
static void
mc_check_on(const mc_run_t *run, json_t *books, mc_result_t *res, int quiet,
    const char *shard)
{
    memset(res, 0, sizeof(*res));
    mc_check_some(run, books, res, quiet, shard, 1u << BOOKS_FORWARD);
}


/* the checks not in skip (1u << BOOKS_…), their failures added to *res */
static void
mc_check_some(const mc_run_t *run, json_t *books, mc_result_t *res,
    int quiet, const char *shard, unsigned skip)
{
    int           c;
    mc_sink_t     sink;
    books_cmp_t   cmp;
    const char   *ids[MC_MAX_CO], *nonces[MC_MAX_CO], *labels[MC_MAX_CO];

    for (c = 0; c < run->h->nco; c++) {
        ids[c] = run->co[c];
        nonces[c] = run->nonce[c];
        labels[c] = str_printf("checkout %d", c);
    }

    sink.res = res;
    sink.quiet = quiet;
    sink.gave_up = 0;

    memset(&cmp, 0, sizeof(cmp));
    cmp.merchant_id = run->m.id;
    cmp.conn = db_shard(shard);
    cmp.shard = run->m.shard;
    cmp.books = books;
    cmp.nco = (size_t) run->h->nco;
    cmp.checkout_ids = ids;
    cmp.nonces = nonces;
    cmp.labels = labels;
    cmp.skip = skip;
    cmp.fail = mc_books_fail;
    cmp.ctx = &sink;

    books_compare(&cmp);
}


static void
mc_check(const mc_run_t *run, json_t *books, mc_result_t *res, int quiet)
{
    mc_check_on(run, books, res, quiet, run->m.shard);
}


/*
 * payouts, as the shop sees them: each pay-out the PSP took something
 * back of says so, GET /v1/payouts/{id}'s amount_reversed what the PSP
 * took back in all (the ledger's side: books_compare's payouts).
 */
static void
mc_check_payouts_shown(const mc_run_t *run, json_t *books, mc_result_t *res,
    int quiet)
{
    int          cur;
    long         back;
    size_t       k;
    json_t      *t;
    resp_t      *r;
    PGresult    *q;
    const char  *st, *prm[2], *shown, *want;

    json_array_foreach(json_object_get(books, "transfers"), k, t) {
        st = json_string_value(json_object_get(t, "state"));
        back = (long) json_integer_value(json_object_get(t, "reversed"));
        if (back <= 0 || st == NULL
            || (strcmp(st, "paid") != 0 && strcmp(st, "reversed") != 0))
        {
            continue;
        }

        prm[0] = run->m.id;
        prm[1] = json_string_value(json_object_get(t, "nonce"));
        q = PQexecParams(mc_db(run), "SELECT payout_id, currency FROM "
                         "payouts WHERE merchant_id = $1 AND nonce = $2", 2,
                         NULL, prm, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(q), PGRES_TUPLES_OK, "%s",
                     PQerrorMessage(mc_db(run)));
        if (PQntuples(q) == 0) {
            PQclear(q);
            continue;           /* the books' payouts check says so */
        }

        for (cur = 0; cur < 4; cur++) {
            if (strcmp(mc_currencies[cur], PQgetvalue(q, 0, 1)) == 0) {
                break;
            }
        }
        cr_assert_lt(cur, 4, "a pay-out in %s", PQgetvalue(q, 0, 1));
        want = mc_decimal(back, cur);

        r = api_get(&run->m, str_printf("/v1/payouts/%s",
                                        PQgetvalue(q, 0, 0)));
        shown = r->status == 200
                ? json_string_value(json_object_get(resp_json(r),
                                                    "amount_reversed"))
                : NULL;

        if (shown == NULL || strcmp(shown, want) != 0) {
            res->n[MC_CHK_PAYOUTS]++;
            if (!quiet) {
                mc_err("check payouts: GET /v1/payouts/%s (%s) says "
                       "amount_reversed %s, the PSP took back %s %s",
                       PQgetvalue(q, 0, 0), prm[1],
                       shown != NULL ? shown : str_printf("nothing (%ld)",
                                                          r->status),
                       want, PQgetvalue(q, 0, 1));
            }
        }

        PQclear(q);
    }
}


static int mc_env_int(const char *name, int dflt);


/* what the routed checkouts' routes recorded, over the histories run:
 * claimed at the first PSP, moved on from it refused, throttled, its
 * circuit open */
static long  mc_routes_seen[5];


/*
 * route: each routed checkout is claimed at the PSP the history drew for
 * it (checkouts.psp), its route record (checkout_routes) is the route's
 * PSPs it was bound to, the one left with why (the first refusing it:
 * refused; the tripped PSP: throttled, or passed over for its open
 * circuit), and the PSP's own payment of the nonce, if any, is at that
 * PSP's API.  Where a worker kill or PostgreSQL's restart landed in its
 * registration, a resumed claim holds where it was bound (DESIGN.md,
 * "Routing across PSPs"): there, only that the record ends at the PSP
 * that holds the checkout, every PSP before it left with a why.  A
 * checkout held for review and never approved (left held, or its approval
 * shrunk away) was bound to the route's first PSP and sent to none: it is
 * there, its record that PSP alone.
 */
static void
mc_check_routes(const mc_run_t *run, const int *keep, json_t *books,
    mc_result_t *res, int quiet)
{
    int                c, i, j, strict, kind, held;
    char              *want;
    json_t            *p;
    PGresult          *q;
    const char        *psp, *rec, *dialect, *prm[2], *want_psp;
    const mc_co_t     *co;
    const mc_route_t  *rt;
    const mc_history_t *h = run->h;

    for (c = 0; c < h->nco; c++) {
        co = &h->co[c];
        if (!co->routed) {
            continue;
        }

        /* its registration, kept, and whether a kill or a restart of
         * PostgreSQL landed in it */
        for (i = 0; i < h->nsteps; i++) {
            if (h->steps[i].kind == MC_REGISTER && h->steps[i].co == c) {
                break;
            }
        }
        if (i == h->nsteps || !keep[i]) {
            continue;
        }
        for (j = i - 1; j >= 0 && !keep[j]; j--) {
            /* the step kept before it */
        }
        strict = !(j >= 0 && (h->steps[j].kind == MC_KILL
                              || h->steps[j].kind == MC_PG_RESTART));

        /* held for review, with no approval kept */
        held = co->review;
        for (i = 0; held && i < h->nsteps; i++) {
            if (h->steps[i].kind == MC_APPROVE && h->steps[i].co == c
                && keep[i])
            {
                held = 0;
            }
        }

        rt = &h->route[co->currency];
        prm[0] = run->m.id;
        prm[1] = run->co[c];
        q = PQexecParams(mc_db(run),
            "SELECT c.psp, coalesce((SELECT string_agg(r.psp || ':' ||"
            "       coalesce(r.moved_on, ''), ',' ORDER BY r.seq)"
            "  FROM checkout_routes r WHERE r.merchant_id = c.merchant_id"
            "   AND r.checkout_id = c.checkout_id), ''),"
            "       (SELECT count(*) FROM checkout_routes r"
            "         WHERE r.merchant_id = c.merchant_id"
            "           AND r.checkout_id = c.checkout_id"
            "           AND r.moved_on IS NULL AND r.psp = c.psp)"
            "  FROM checkouts c WHERE c.merchant_id = $1"
            "   AND c.checkout_id = $2", 2, NULL, prm, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(q), PGRES_TUPLES_OK, "%s",
                     PQerrorMessage(mc_db(run)));

        if (PQntuples(q) == 0) {
            if (strict) {
                res->n[MC_CHK_ROUTE]++;
                if (!quiet) {
                    mc_err("check route: checkout %d (%s) was never "
                           "claimed", c, run->co[c]);
                }
            }
            PQclear(q);
            continue;
        }

        psp = PQgetvalue(q, 0, 0);
        rec = PQgetvalue(q, 0, 1);

        kind = strstr(rec, ":connect_refused") ? 4
               : strstr(rec, ":circuit_open") ? 3 : strstr(rec, ":throttled")
               ? 2 : strstr(rec, ":refused") ? 1 : 0;
        mc_routes_seen[kind]++;
        if (!quiet && mc_env_int("MONEY_PRINT", 0) > 0) {
            mc_say("  checkout %d: at %s, its route record \"%s\"", c, psp,
                   rec);
        }

        want_psp = mc_psp(co->dialect);
        if (held) {
            want_psp = mc_route_psp(rt, 0);
            want = str_printf("%s:", want_psp);
        } else if (co->routed == MC_RT_TRIPPED) {
            want = str_printf("%s:throttled,%s:", mc_route_psp(rt, 0),
                              mc_psp(co->dialect));
            if (strcmp(rec, want) != 0) {
                want = str_printf("%s:circuit_open,%s:", mc_route_psp(rt, 0),
                                  mc_psp(co->dialect));
            }
        } else if (co->routed == MC_RT_REFUSED) {
            want = str_printf("%s:refused,%s:", mc_route_psp(rt, 0),
                              mc_psp(co->dialect));
        } else if (co->routed == MC_RT_DEAD) {
            want = str_printf("%s:connect_refused,%s:", mc_route_psp(rt, 0),
                              mc_psp(co->dialect));
        } else {
            want = str_printf("%s:", mc_psp(co->dialect));
        }

        if (strict ? strcmp(rec, want) != 0 || strcmp(psp, want_psp) != 0
                   : strcmp(PQgetvalue(q, 0, 2), "1") != 0)
        {
            res->n[MC_CHK_ROUTE]++;
            if (!quiet) {
                mc_err("check route: checkout %d (%s) is at %s, its route "
                       "record \"%s\", not at %s by \"%s\"%s", c, run->co[c],
                       psp, rec, want_psp, want,
                       strict ? "" : " (a kill or a restart landed in its "
                       "registration: only one PSP holding it)");
            }
        }

        /* the PSP's payment of the nonce is at the PSP that holds it */
        p = books_payment(books, run->nonce[c]);
        dialect = p != NULL
                  ? json_string_value(json_object_get(p, "dialect")) : NULL;
        if (dialect != NULL
            && strcmp(mc_psp(strcmp(dialect, "stripe") == 0 ? 0
                             : strcmp(dialect, "adyen") == 0 ? 1 : 2), psp)
               != 0)
        {
            res->n[MC_CHK_ROUTE]++;
            if (!quiet) {
                mc_err("check route: checkout %d (%s) is held at %s, its "
                       "payment made at the PSP's %s API", c, run->co[c],
                       psp, dialect);
            }
        }

        PQclear(q);
    }
}


/* the canary's report of checkout 0 off by this (minor units), or 0 */
static long  mc_plant_delta;

/* the reports reconciled, and the milliseconds that took (the summary) */
static long  mc_recon_reports;
static long  mc_recon_ms;


/* a program's exit status, its output in *out (harness_core.h's run(),
 * which the checker's run variables hide) */
static int
mc_tool(char *const argv[], char **out)
{
    return run(argv, out);
}


/*
 * reconcile: the operator's reconciliation of the history, as it would run
 * on the PSP's settlement report (doc/RECONCILIATION.md).  For each PSP
 * that holds one of the history's checkouts or pay-outs (a routed history
 * has two), the mock's report of the history's sessions at that PSP and
 * of the merchant's money in its dialect, run through payments-reconcile
 * on the merchant's shard.  Every webhook was accepted in the end
 * (webhooks), so the books already hold all the PSP moved: every row of
 * the history's must be matched, and nothing of the merchant booked or
 * listed by the run but the rows' fees (fee_booked).  Then balanced,
 * wallets and audit again: the fees are ledger transactions too.
 * mc_plant_delta, when not 0, is added to the gross of checkout 0's
 * payment row in its report (the mock's amount= knob): the canary's, to
 * see the check fail.
 */
static void
mc_reconcile(const mc_run_t *run, json_t *books, mc_result_t *res,
    int quiet)
{
    int           c, d, st;
    char         *psps, *psp, *save, *sessions, *path, *out, *rep, *bad;
    const char   *nl, *tok;
    json_t       *bp;
    long          t0;
    const char   *plant;
    resp_t       *r;
    FILE         *f;
    const char   *p[3];
    char         *argv[9];

    t0 = ms_now();

    p[0] = run->m.id;
    psps = db_scalar_on(mc_db(run),
        "SELECT string_agg(DISTINCT psp, ',') FROM (SELECT psp FROM checkouts"
        " WHERE merchant_id = $1 UNION ALL SELECT psp FROM payouts"
        " WHERE merchant_id = $1) x", 1, p);

    for (psp = psps == NULL ? NULL : strtok_r(psps, ",", &save);
         psp != NULL;
         psp = strtok_r(NULL, ",", &save))
    {
        /* the PSP's dialect: the suite's by name, the history's own
         * (mc_trip_<dialect>, mc_dead_<dialect>) by its suffix */
        for (d = 0; d < 3; d++) {
            if (strcmp(psp, mc_psp(d)) == 0
                || (strlen(psp) > strlen(mc_dialects[d])
                    && strcmp(psp + strlen(psp) - strlen(mc_dialects[d]),
                              mc_dialects[d]) == 0))
            {
                break;
            }
        }
        if (d == 3) {
            res->n[MC_CHK_RECONCILE]++;
            mc_err("check reconcile: PSP %s of no dialect", psp);
            continue;
        }

        /* the sessions of the history's checkouts this PSP holds: as the
         * registration answered it, or as the PSP's books name it when no
         * answer did (an off-session charge whose worker was killed after
         * sending it, and whose retry found it paid: 409 duplicate_order) */
        sessions = strdup("none");
        plant = "";
        for (c = 0; c < run->h->nco; c++) {
            p[1] = run->co[c];
            p[2] = psp;
            tok = run->token[c];
            bp = tok == NULL ? books_payment(books, run->nonce[c]) : NULL;
            if (bp != NULL
                && json_is_string(json_object_get(bp, "dialect"))
                && strcmp(json_string_value(json_object_get(bp, "dialect")),
                          mc_dialects[d]) == 0)
            {
                tok = json_string_value(json_object_get(bp, "session"));
            }
            if (tok != NULL
                && db_scalar_on(mc_db(run), "SELECT 1 FROM checkouts WHERE"
                                " merchant_id = $1 AND checkout_id = $2"
                                " AND psp = $3", 3, p) != NULL)
            {
                sessions = str_printf("%s,%s", sessions, url_escape(tok));
                if (c == 0 && mc_plant_delta != 0) {
                    plant = str_printf("&amount=%s:%ld", url_escape(tok),
                                       mc_plant_delta);
                }
            }
        }

        /* A PSP of the history's own (mc_trip_<dialect> throttles every
         * registration, mc_dead_<dialect> listens nowhere) holding no
         * session moved no money: nothing to reconcile.  Its report would
         * be the mock's of the dialect, whose refunds, transfers and
         * disputes of the merchant are those of the suite's PSP of that
         * dialect (the mock keeps one book a dialect): reconciled against
         * this PSP's, each would be unknown here (seed 140445: a refund at
         * mock_adyen in mc_dead_adyen's report, needs_person). */
        if (strcmp(psp, mc_psp(d)) != 0 && strcmp(sessions, "none") == 0) {
            continue;
        }

        r = http_get(mock_url(str_printf("/_control/reports/%s?sessions=%s"
                                         "&merchant=%s%s", mc_dialects[d],
                                         sessions, run->m.id, plant)));
        if (r->status != 200) {
            res->n[MC_CHK_RECONCILE]++;
            mc_err("check reconcile: the %s report: %ld %s", psp, r->status,
                   r->body);
            continue;
        }
        /* a report of no row (sessions never paid, a PSP of pay-outs
         * refused): nothing to reconcile, and its file, the header alone,
         * would be one reconciled before */
        nl = memchr(r->body, '\n', r->len);
        if (nl == NULL || (size_t) (nl + 1 - r->body) >= r->len) {
            continue;
        }

        path = run_file(str_printf("recon-%s.csv", uid("mc")));
        f = fopen(path, "wb");
        cr_assert_not_null(f, "%s", path);
        cr_assert_eq(fwrite(r->body, 1, r->len, f), r->len);
        fclose(f);

        argv[0] = build_file("payments-reconcile");
        argv[1] = "--db";
        argv[2] = (char *) shard_conninfo(run->m.shard);
        argv[3] = "--psp";
        argv[4] = psp;
        argv[5] = "--dialect";
        argv[6] = (char *) mc_dialects[d];
        argv[7] = path;
        argv[8] = NULL;
        st = mc_tool(argv, &out);
        mc_recon_reports++;
        p[1] = path;
        rep = db_scalar_on(mc_db(run), "SELECT report_id FROM recon_reports"
                           " WHERE file_name = $1", 1, p + 1);
        /* 1: something is for a person, maybe another test's merchant's
         * (the internal checks see every merchant) */
        if ((st != 0 && st != 1) || rep == NULL) {
            res->n[MC_CHK_RECONCILE]++;
            mc_err("check reconcile: payments-reconcile --psp %s: %d\n%s",
                   psp, st, out);
            continue;
        }

        /* the history's rows not matched, and what the run booked or
         * listed of the merchant but the rows' fees */
        p[1] = rep;
        bad = db_scalar_on(mc_db(run),
            "SELECT string_agg(w, '; ') FROM ("
            " SELECT 'row ' || type || ' ' || row_id || ' ' || gross || ' '"
            "        || currency || ': ' || coalesce(outcome, 'none') AS w"
            "   FROM recon_rows WHERE report_id = $2::bigint"
            "    AND outcome IS DISTINCT FROM 'matched'"
            "    AND outcome IS DISTINCT FROM 'auto_fixed'"
            " UNION ALL"
            " SELECT class || '/' || kind || ' ' || coalesce(checkout_id, '')"
            "        || ' ' || coalesce(object_id, '') || ' '"
            "        || coalesce(amount::text, '') || ' '"
            "        || coalesce(currency, '') || ' '"
            "        || left(coalesce(evidence::text, ''), 4000)"
            "   FROM recon_mismatches WHERE report_id = $2::bigint"
            "    AND (record IS NOT NULL OR merchant_id = $1)"
            "    AND NOT (class = 'auto_fixed' AND kind = 'fee_booked')"
            /* the gateway's own listing of an order refunded beyond what
             * stands captured, the PSP having reversed a capture of it
             * after the refunds (doc/MONEY.md): the run's check lists it
             * again */
            "    AND NOT (kind = 'refunds_exceed_capture' AND EXISTS ("
            "         SELECT 1 FROM webhook_events w"
            "          WHERE w.merchant_id = $1"
            "            AND w.checkout_id = recon_mismatches.checkout_id"
            "            AND w.outcome = 'capture_reversed_refunded'))) x",
            2, p);
        if (bad != NULL) {
            res->n[MC_CHK_RECONCILE]++;
            if (!quiet) {
                /* and the tool's own summary, for the diagnosis */
                mc_err("check reconcile: %s report %s: %s\n%.4000s", psp,
                       rep, bad, out);
            }
        }
    }

    /* the fees booked: the ledger still balanced, wallets and audit */
    mc_check_some(run, books, res, quiet, run->m.shard,
                  ~((1u << BOOKS_BALANCED) | (1u << BOOKS_WALLETS)
                    | (1u << BOOKS_AUDIT)));
    mc_recon_ms += ms_now() - t0;
}


static long
mc_failures(const mc_result_t *res)
{
    int   i;
    long  n;

    for (n = 0, i = 0; i < MC_NCHECKS; i++) {
        n += res->n[i];
    }

    return n;
}


/*
 * Runs the history's steps keep[i] on a fresh merchant and checks.
 * Returns the failures (0: passed); the run is left in *run.
 */
static long
mc_run(const mc_history_t *h, const int *keep, mc_run_t *run, int quiet,
    mc_result_t *res)
{
    int         i, j;
    json_t     *books;
    pthread_t   th;
    mc_call_t   call;
    mc_sink_t   sink;

    memset(run, 0, sizeof(*run));
    run->h = h;
    run->keep = keep;
    run->quiet = quiet;
    run->rec_at = -1;
    run->gone = -1;
    run->closed = -1;
    if (shards_n() > 1) {
        merchant_new_on(&run->m, mc_shard(h));
    } else {
        merchant_new(&run->m);
    }

    for (i = 0; i < h->nco; i++) {
        run->co[i] = uid("mc");
        run->nonce[i] = nonce(&run->m, run->co[i]);
    }

    mc_faults(run);
    mc_commission(run);
    mc_sellers_add(run, keep);
    mc_gateway(run);

    for (i = 0; i < h->nsteps; i++) {
        if (!keep[i]) {
            continue;
        }

        if ((h->steps[i].kind == MC_KILL && run->base != NULL)
            || h->steps[i].kind == MC_PG_RESTART)
        {
            for (j = i + 1; j < h->nsteps && !keep[j]; j++) {
                /* the next step kept */
            }
            if (j < h->nsteps && mc_to_gateway(h, &h->steps[j])) {
                /* the kill lands in the next step's request */
                memset(&call, 0, sizeof(call));
                call.run = run;
                call.step = &h->steps[j];
                cr_assert_eq(pthread_create(&th, NULL, mc_call, &call), 0);
                run->out[i] = h->steps[i].kind == MC_KILL
                              ? mc_kill(run, h->steps[i].arg)
                              : mc_pg_restart(run, h->steps[i].arg);
                run->ops++;
                cr_assert_eq(pthread_join(th, NULL), 0);
                run->out[j] = call.out;
                i = j;
                if (!h->steps[j].at_once) {
                    mc_quiet(run, mc_step_quiet_s(run), 0);
                }
                continue;
            }
        }

        run->out[i] = mc_step(run, &h->steps[i]);
        mc_closed_answered(run, i);
        if (!h->steps[i].at_once) {
            mc_quiet(run, mc_step_quiet_s(run), 0);
        }
    }

    mc_quiet(run, MC_END_QUIET_S, 1);
    mc_time_passes(run);
    mc_gateway_stop(run);

    books = books_fetch(run->m.id);
    mc_check(run, books, res, quiet);
    mc_check_payouts_shown(run, books, res, quiet);
    mc_check_routes(run, keep, books, res, quiet);
    res->n[MC_CHK_GONE] += run->gone_bad;
    res->n[MC_CHK_CLOSED] += run->closed_bad;
    res->n[MC_CHK_ONCE] += run->once_bad;

    sink.res = res;
    sink.quiet = quiet;
    sink.gave_up = 0;
    if (books_undelivered(&run->subjects, 1, mc_undelivered_event, &sink)
        > 0 || sink.gave_up > 0)
    {
        res->n[MC_CHK_WEBHOOKS] += 1;
        if (!quiet) {
            mc_err("check webhooks: events the PSP sent were never "
                         "accepted");
        }
    }

    if (mc_failures(res) == 0) {
        mc_reconcile(run, books, res, quiet);
    }

    json_decref(books);

    return mc_failures(res);
}


static int
mc_same_failure(const mc_result_t *a, const mc_result_t *b)
{
    int  i;

    /* the shrunk history still fails one of the checks that failed */
    for (i = 0; i < MC_NCHECKS; i++) {
        if (a->n[i] > 0 && b->n[i] > 0) {
            return 1;
        }
    }

    return 0;
}


static const char *
mc_failed_checks(const mc_result_t *res)
{
    int    i;
    char  *s;

    s = strdup("");
    for (i = 0; i < MC_NCHECKS; i++) {
        if (res->n[i] > 0) {
            s = str_printf("%s%s%s", s, s[0] ? ", " : "", mc_check_names[i]);
        }
    }

    return s;
}


/* Drops steps while the failure persists; keep is updated. */
static void
mc_shrink(const mc_history_t *h, int *keep, const mc_result_t *first)
{
    int          i, changed, pass;
    mc_run_t     run;
    mc_result_t  res;

    for (pass = 0; pass < 2; pass++) {
        changed = 0;

        for (i = h->nsteps - 1; i >= 0; i--) {
            if (!keep[i] || h->steps[i].kind == MC_REGISTER) {
                continue;
            }
            keep[i] = 0;
            if (mc_run(h, keep, &run, 1, &res) > 0
                && mc_same_failure(first, &res))
            {
                changed = 1;
                mc_say("shrink: without step %d it still fails (%s)", i,
                            mc_failed_checks(&res));
            } else {
                keep[i] = 1;
            }
        }

        if (!changed) {
            break;
        }
    }

    /* registrations nothing refers to any more */
    for (i = 0; i < h->nsteps; i++) {
        int  j, used;

        if (h->steps[i].kind != MC_REGISTER) {
            continue;
        }
        for (used = 0, j = 0; j < h->nsteps; j++) {
            used |= j != i && keep[j] && h->steps[j].co == h->steps[i].co;
        }
        if (!used) {
            keep[i] = 0;
            if (!(mc_run(h, keep, &run, 1, &res) > 0
                  && mc_same_failure(first, &res)))
            {
                keep[i] = 1;
            }
        }
    }
}


static int
mc_env_int(const char *name, int dflt)
{
    const char  *v;

    v = getenv(name);
    return v != NULL && v[0] != '\0' ? atoi(v) : dflt;
}


/* what the histories run drew of the gateway's compositions */
enum {
    MC_D_OWN = 0, MC_D_SWEPT, MC_D_NEVER, MC_D_SESSION_END, MC_D_KILL,
    MC_D_RELOAD, MC_D_RACE, MC_D_FORGET, MC_D_PG, MC_D_MANUAL_CHARGE,
    MC_D_HELD_CHARGE, MC_D_ROUTED_H, MC_D_ROUTED, MC_D_MOVED, MC_D_HANG,
    MC_D_BACK_PART, MC_D_BACK_WHOLE, MC_D_GONE, MC_D_GONE_FIRST,
    MC_D_CLOSED, MC_D_CLOSED_FIRST, MC_D_COMMISSION, MC_D_COMMISSION_FIXED,
    MC_D_LOST, MC_D_AUTH_CANCELED, MC_D_AUTH_ENDED, MC_D_AUTH_OPEN,
    MC_D_AUTH_LATE, MC_D_AUTH_LOST, MC_ND
};

static long  mc_drawn[MC_ND];


static void
mc_count_drawn(const mc_history_t *h)
{
    int  c, i;

    mc_drawn[MC_D_OWN] += h->gw == MC_GW_OWN;
    mc_drawn[MC_D_SWEPT] += h->gw == MC_GW_SWEPT;
    for (c = 0; c < h->nco; c++) {
        mc_drawn[MC_D_NEVER] += h->co[c].never;
        mc_drawn[MC_D_LOST] += h->co[c].lost && !h->co[c].auth;
        mc_drawn[MC_D_MANUAL_CHARGE] += h->co[c].charge && h->co[c].manual;
        mc_drawn[MC_D_HELD_CHARGE] += h->co[c].charge && h->co[c].review;
        mc_drawn[MC_D_ROUTED] += h->co[c].routed != MC_RT_NONE;
        mc_drawn[MC_D_MOVED] += h->co[c].routed == MC_RT_REFUSED
                                || h->co[c].routed == MC_RT_TRIPPED
                                || h->co[c].routed == MC_RT_DEAD;
        mc_drawn[MC_D_HANG] += h->co[c].routed == MC_RT_HANG;
        mc_drawn[MC_D_AUTH_CANCELED] += h->co[c].auth_left
                                        == MC_AUTH_CANCELED;
        mc_drawn[MC_D_AUTH_ENDED] += h->co[c].auth_left == MC_AUTH_ENDED;
        mc_drawn[MC_D_AUTH_OPEN] += h->co[c].auth_left == MC_AUTH_OPEN;
        mc_drawn[MC_D_AUTH_LATE] += h->co[c].auth_left_paid;
        mc_drawn[MC_D_AUTH_LOST] += h->co[c].auth && h->co[c].lost;
    }
    mc_drawn[MC_D_ROUTED_H] += h->routed > 0;
    mc_drawn[MC_D_COMMISSION] += h->bps > 0 || h->fixed;
    mc_drawn[MC_D_COMMISSION_FIXED] += h->fixed;
    for (i = 0; i < h->nsteps; i++) {
        mc_drawn[MC_D_SESSION_END] += h->steps[i].kind == MC_SESSION_END;
        mc_drawn[MC_D_KILL] += h->steps[i].kind == MC_KILL;
        mc_drawn[MC_D_RELOAD] += h->steps[i].kind == MC_RELOAD;
        mc_drawn[MC_D_RACE] += h->steps[i].kind == MC_RACE;
        mc_drawn[MC_D_FORGET] += h->steps[i].kind == MC_FORGET;
        mc_drawn[MC_D_PG] += h->steps[i].kind == MC_PG_RESTART;
        mc_drawn[MC_D_BACK_PART] += h->steps[i].kind == MC_PAYOUT_BACK
                                    && h->steps[i].amount > 0;
        mc_drawn[MC_D_BACK_WHOLE] += h->steps[i].kind == MC_PAYOUT_BACK
                                     && h->steps[i].amount == 0;
        mc_drawn[MC_D_GONE] += h->steps[i].kind == MC_PSP_GONE;
        mc_drawn[MC_D_GONE_FIRST] += h->steps[i].kind == MC_PSP_GONE
                                     && h->steps[i].knob;
        mc_drawn[MC_D_CLOSED] += h->steps[i].kind == MC_PSP_CLOSE;
        mc_drawn[MC_D_CLOSED_FIRST] += h->steps[i].kind == MC_PSP_CLOSE
                                       && h->steps[i].knob;
    }
}


static const char *
mc_drawn_line(void)
{
    return str_printf("on gateways of their own %ld (with a sweeper %ld); "
                      "sessions without webhooks %ld, run out %ld; worker "
                      "kills %ld, reloads %ld, PostgreSQL restarts %ld; "
                      "races %ld; keys forgotten %ld; off-session charges "
                      "manual %ld, held for review %ld; routed histories "
                      "%ld, checkouts %ld (drawn to move on %ld, to hang "
                      "once %ld; their route records: at the first PSP "
                      "%ld, moved on refused %ld, throttled %ld, circuit "
                      "open %ld, connection refused %ld); pay-outs taken "
                      "back in part %ld, whole or the rest %ld (taken at "
                      "the PSP %ld); PSPs removed for a while %ld (an "
                      "operation left unanswered first %ld; retries "
                      "replayed %ld, new ones refused %ld, answered 503 "
                      "not_configured %ld, sent again once back %ld; its "
                      "events meanwhile 404 %ld, then 200 %ld); PSPs "
                      "closed for a while %ld (a registration left "
                      "unanswered first %ld; new checkouts naming it "
                      "refused %ld, routed ones registered at the route's "
                      "other PSP %ld, unanswered ones sent there %ld, "
                      "retries replayed %ld, its operations answered 2xx "
                      "%ld, otherwise %ld, its events meanwhile 200 %ld, "
                      "the refused registered once open %ld); merchants "
                      "taking a commission %ld (with a fixed part %ld; "
                      "orders of a commission checked: nothing given back "
                      "%ld, given back in part %ld, whole %ld); off-session "
                      "charges whose every answer was lost %ld (as the "
                      "sweeper or the late webhook left them: taken %ld, "
                      "held %ld, declined "
                      "%ld, otherwise %ld); off-session charges needing "
                      "the shopper not paid at once %ld (canceled by the "
                      "shop %ld, the page's time run out %ld, left open "
                      "%ld; paid there after all %ld; cancels answered "
                      "200 %ld, then paid at the PSP all the same %ld); "
                      "off-session charges needing the shopper whose "
                      "every answer was lost %ld (open meanwhile and their "
                      "page opened at the shop's retry %ld, of them held "
                      "for review and approved again %ld; otherwise %ld; "
                      "left by the shop and failed expired by the sweeper "
                      "%ld, otherwise %ld)",
                      mc_drawn[MC_D_OWN] + mc_drawn[MC_D_SWEPT],
                      mc_drawn[MC_D_SWEPT], mc_drawn[MC_D_NEVER],
                      mc_drawn[MC_D_SESSION_END], mc_drawn[MC_D_KILL],
                      mc_drawn[MC_D_RELOAD], mc_drawn[MC_D_PG],
                      mc_drawn[MC_D_RACE], mc_drawn[MC_D_FORGET],
                      mc_drawn[MC_D_MANUAL_CHARGE],
                      mc_drawn[MC_D_HELD_CHARGE], mc_drawn[MC_D_ROUTED_H],
                      mc_drawn[MC_D_ROUTED], mc_drawn[MC_D_MOVED],
                      mc_drawn[MC_D_HANG], mc_routes_seen[0],
                      mc_routes_seen[1], mc_routes_seen[2],
                      mc_routes_seen[3], mc_routes_seen[4],
                      mc_drawn[MC_D_BACK_PART], mc_drawn[MC_D_BACK_WHOLE],
                      mc_backs_taken, mc_drawn[MC_D_GONE],
                      mc_drawn[MC_D_GONE_FIRST], mc_gone_seen[0],
                      mc_gone_seen[1], mc_gone_seen[2], mc_gone_seen[3],
                      mc_gone_seen[4], mc_gone_seen[5],
                      mc_drawn[MC_D_CLOSED], mc_drawn[MC_D_CLOSED_FIRST],
                      mc_closed_seen[MC_CL_REFUSED],
                      mc_closed_seen[MC_CL_ROUTED],
                      mc_closed_seen[MC_CL_SENT],
                      mc_closed_seen[MC_CL_REPLAYED],
                      mc_closed_seen[MC_CL_OPS],
                      mc_closed_seen[MC_CL_OPS_OTHER],
                      mc_closed_seen[MC_CL_EVENTS],
                      mc_closed_seen[MC_CL_AGAIN],
                      mc_drawn[MC_D_COMMISSION],
                      mc_drawn[MC_D_COMMISSION_FIXED],
                      books_commission_seen[BOOKS_COMM_WHOLE],
                      books_commission_seen[BOOKS_COMM_PART],
                      books_commission_seen[BOOKS_COMM_REFUNDED],
                      mc_drawn[MC_D_LOST], mc_lost_seen[0], mc_lost_seen[1],
                      mc_lost_seen[2], mc_lost_seen[3],
                      mc_drawn[MC_D_AUTH_CANCELED] + mc_drawn[MC_D_AUTH_ENDED]
                      + mc_drawn[MC_D_AUTH_OPEN],
                      mc_drawn[MC_D_AUTH_CANCELED], mc_drawn[MC_D_AUTH_ENDED],
                      mc_drawn[MC_D_AUTH_OPEN], mc_drawn[MC_D_AUTH_LATE],
                      mc_auth_seen[0], mc_auth_seen[1],
                      mc_drawn[MC_D_AUTH_LOST], mc_auth_lost_seen[0],
                      mc_auth_lost_approved, mc_auth_lost_seen[1],
                      mc_auth_alone_seen[0], mc_auth_alone_seen[1]);
}


/*
 * One history: generated, run, checked; on a failure its seed and
 * history, then (MONEY_SHRINK, default on) the shrunk one.  Returns the
 * failures; *ops counts the steps run.
 */
/* the PSP's events the runs' gateway listed for a person (an outcome
 * logged at alert), over every history run: what the histories made the
 * gateway hand over rather than book as usual */
static long  mc_listed;

static const char  mc_sql_listed[] =
    "SELECT count(*), coalesce(string_agg(DISTINCT outcome, ','), '')"
    "  FROM webhook_events WHERE merchant_id = $1"
    "   AND outcome NOT IN ('applied', 'duplicate', 'already', 'pending',"
    "                       'ignored')";


static long
mc_one(uint64_t seed, int shrink, long *ops)
{
    int            i, keep[MC_MAX_STEPS], n;
    long           failures;
    mc_run_t       run;
    PGresult      *q;
    mc_result_t    res;
    mc_history_t   h;

    mc_generate(&h, seed);
    for (i = 0; i < MC_MAX_STEPS; i++) {
        keep[i] = 1;
    }
    mc_count_drawn(&h);
    if (mc_env_int("MONEY_PRINT", 0) > 1) {
        mc_print(&h, NULL, NULL);
    }

    failures = mc_run(&h, keep, &run, 0, &res);
    *ops += run.ops;

    q = books_query_on(mc_db(&run), run.m.id, mc_sql_listed);
    if (atol(PQgetvalue(q, 0, 0)) > 0) {
        mc_listed += atol(PQgetvalue(q, 0, 0));
        mc_say("seed %" PRIu64 ": %s event(s) listed for a person (%s)", seed,
               PQgetvalue(q, 0, 0), PQgetvalue(q, 0, 1));
    }
    PQclear(q);

    if (failures == 0) {
        if (mc_env_int("MONEY_PRINT", 0)) {
            mc_print(&h, NULL, (const char *const *) run.out);
        }
        return 0;
    }

    mc_err("seed %" PRIu64 " FAILED (%s); its history:", seed,
                 mc_failed_checks(&res));
    mc_print(&h, NULL, (const char *const *) run.out);

    if (shrink) {
        mc_shrink(&h, keep, &res);
        for (n = 0, i = 0; i < h.nsteps; i++) {
            n += keep[i];
        }
        /* run it once more, loudly, for its outcomes */
        mc_run(&h, keep, &run, 0, &res);
        mc_err("seed %" PRIu64 " shrunk to %d of %d steps (%s):", seed,
                     n, h.nsteps, mc_failed_checks(&res));
        mc_print(&h, keep, (const char *const *) run.out);
    }

    return failures;
}


/* -- the tests -------------------------------------------------------------- */

TestSuite(books_check, .timeout = 86400);


/*
 * The CI's budget: the fixed seeds, every one passing; swept 0 runs those
 * that draw no sweeper (here, in the shared lane), 1 those that do (alone,
 * solo_books_swept).
 */
static void
mc_seeds(const char *suite, const uint64_t *seeds, size_t nseeds, int swept,
    size_t part, size_t nparts)
{
    size_t         i, n;
    long           ops, failed;
    time_t         t0, t1;
    mc_history_t   h;

    t0 = time(NULL);
    ops = 0;
    failed = 0;
    n = 0;
    memset(mc_drawn, 0, sizeof(mc_drawn));
    memset(books_commission_seen, 0, sizeof(books_commission_seen));

    for (i = 0; i < nseeds; i++) {
        if (i % nparts != part) {
            continue;
        }
        mc_generate(&h, seeds[i]);
        if ((h.gw == MC_GW_SWEPT) != swept) {
            continue;
        }
        n++;
        t1 = time(NULL);
        failed += mc_one(seeds[i], mc_env_int("MONEY_SHRINK", 0), &ops) > 0;
        if (mc_env_int("MONEY_TIMES", 0)) {
            mc_say("seed %" PRIu64 ": %s, %ld s", seeds[i],
                   mc_gw_names[h.gw], (long) (time(NULL) - t1));
        }
    }

    mc_say("%s: %zu histories, %ld operations, %ld failed; %ld "
           "events listed for a person; off-session charges: %ld taken, %ld "
           "declined, %ld refused, %ld held for review, %ld needing the "
           "shopper; %s; %ld reports "
           "reconciled in %ld ms; in %ld s", suite,
           n, ops, failed, mc_listed, mc_charges[0], mc_charges[1],
           mc_charges[2], mc_charges[3], mc_charges[4], mc_drawn_line(),
           mc_recon_reports,
           mc_recon_ms, (long) (time(NULL) - t0));
    cr_expect_gt(n, 0, "no CI seed for %s", suite);
    cr_expect_eq(failed, 0, "%ld of the CI's seeds failed (their histories "
                 "above)", failed);
}


/* books_commission_seen's ways, for a message */
static const char  *mc_comm_ways[BOOKS_NCOMM] = {
    "nothing given back", "given back in part", "given back whole"
};


/* The CI's seeds met charges whose every answer was lost taken, held and
 * declined, and left none undecided (seed_base: where such seeds are
 * drawn, for the message) */
static void
mc_expect_lost_met(const char *seed_base)
{
    cr_expect(mc_lost_seen[0] > 0 && mc_lost_seen[1] > 0
              && mc_lost_seen[2] > 0,
              "the CI's seeds never met a charge whose every answer was lost "
              "taken, held or declined (the summary's \"off-session charges "
              "whose every answer was lost\" above): choose seeds that do "
              "(make money-check LIST=1 PRINT=1 SEED_BASE=%s)", seed_base);
    cr_expect_eq(mc_lost_seen[3], 0, "%ld charges whose every answer was "
                 "lost left undecided (their histories above)",
                 mc_lost_seen[3]);
}


/* The CI's seeds of one part of nparts (every nparts-th from part on), so
 * that a lane's share fits its test's timeout on a slow machine */
static void
mc_ci(const char *suite, int swept, size_t part, size_t nparts)
{
    mc_seeds(suite, mc_ci_seeds, sizeof(mc_ci_seeds) / sizeof(mc_ci_seeds[0]),
             swept, part, nparts);
}


/* The shared lane's CI seeds in one test: 180 s on a quiet 2-core
 * machine, 285 s on a loaded one, so a timeout of 600 s (two tests side
 * by side only put more load beside the solo lane). */
Test(books_check, fixed_seeds_keep_the_psps_books_and_ours_equal,
     .timeout = 600)
{
    size_t  i;

    mc_ci("books_check", 0, 0, 1);

    /* Adyen's charges whose every answer was lost (240233), decided by
     * their late webhooks */
    mc_expect_lost_met("240000");

    /* charges that need the shopper, answered 202 with a pay link
     * (250056) */
    cr_expect(mc_charges[4] > 0,
              "the CI's seeds never met an off-session charge that needs "
              "the shopper (the summary's \"needing the shopper\" above): "
              "choose a seed that does (make money-check LIST=1 PRINT=1 "
              "SEED_BASE=250000)");

    /* one the shop canceled and the shopper paid at its page all the
     * same (261099) */
    cr_expect(mc_auth_seen[0] > 0 && mc_auth_seen[1] > 0,
              "the CI's seeds never met an off-session charge that needs "
              "the shopper canceled by the shop (200) and paid at the PSP "
              "after (the summary's \"cancels answered 200 ..., then paid "
              "at the PSP all the same\" above): choose a seed that does "
              "(make money-check LIST=1 PRINT=1 SEED_BASE=260000)");

    /* each way a closed or removed PSP is met, met by the seeds chosen
     * for it (a fault drawn that no seed reaches checks nothing: until
     * 90043, 90062 and 90357, no CI seed closed a PSP); a closed PSP's
     * operations answered "otherwise" is not a way to meet but a
     * reading, and may stay 0 */
    for (i = 0; i < MC_NCL; i++) {
        cr_expect(i == MC_CL_OPS_OTHER || mc_closed_seen[i] > 0,
                  "the CI's seeds never met a closed PSP this way: %s "
                  "(the summary's \"PSPs closed for a while\" above): "
                  "choose a seed that does (make money-check LIST=1 "
                  "PRINT=1 SEED_BASE=90000)", mc_closed_ways[i]);
    }
    /* a merchant's commission, with and without a fixed part, checked on
     * orders refunded in no part, in part and whole */
    cr_expect(mc_drawn[MC_D_COMMISSION] > mc_drawn[MC_D_COMMISSION_FIXED]
              && mc_drawn[MC_D_COMMISSION_FIXED] > 0,
              "the CI's seeds drew no commission, or none with a fixed part "
              "(the summary's \"merchants taking a commission\" above): "
              "choose seeds that do (make money-check LIST=1 PRINT=1 "
              "SEED_BASE=100000)");
    for (i = 0; i < BOOKS_NCOMM; i++) {
        cr_expect(books_commission_seen[i] > 0,
                  "the CI's seeds never checked an order's commission this "
                  "way: %s (the summary's \"orders of a commission "
                  "checked\" above)", mc_comm_ways[i]);
    }
    for (i = 0; i < MC_NGONE; i++) {
        cr_expect(mc_gone_seen[i] > 0,
                  "the CI's seeds never met a removed PSP this way: %s (the "
                  "summary's \"PSPs removed for a while\" above)",
                  mc_gone_ways[i]);
    }
}


/* The CI's seeds that draw a sweeper: it looks up every checkout of the
 * PSPs, and takes the database's one lease, so alone on their stack. */
TestSuite(solo_books_swept, .timeout = 600);


Test(solo_books_swept, fixed_seeds_with_a_sweeper_keep_the_books_equal,
     .timeout = 300)
{
    mc_alone = 1;
    mc_ci("solo_books_swept", 1, 0, 1);

    /* charges whose every answer was lost, decided by the sweeper */
    mc_expect_lost_met("110000");

    /* and ones that need the shopper, left open by it (262662), one held
     * for review among them (264227) */
    cr_expect(mc_auth_lost_seen[0] > 0 && mc_auth_lost_seen[1] == 0,
              "the CI's seeds never met an off-session charge that needs "
              "the shopper whose every answer was lost, open meanwhile and "
              "its page opened at the shop's retry, or one was not (the "
              "summary's \"needing the shopper whose every answer was "
              "lost\" above; make money-check LIST=1 PRINT=1 "
              "SEED_BASE=262500)");
    cr_expect(mc_auth_alone_seen[0] > 0 && mc_auth_alone_seen[1] == 0,
              "the CI's seeds never met such a charge the shop left, failed "
              "expired by the sweeper once its time ran out, or met one "
              "that was not (the same summary; make money-check LIST=1 "
              "PRINT=1 SEED_BASE=267000)");
    cr_expect(mc_auth_lost_approved > 0,
              "the CI's seeds never met such a charge held for review, "
              "open meanwhile and its page opened when approved again (the "
              "same summary; make money-check LIST=1 PRINT=1 "
              "SEED_BASE=264000)");
}


/*
 * The shards lane's share (E2E_SHARDS=1: ci/e2e.sh's shards_suites, so
 * make test's e2e-shards): two routed CI seeds, one a history on each
 * shard (seed mod 2), and the canary over shards below, about 7 s
 * (books_check, filtered on that lane, runs every CI seed there, 140 s).
 * Skipped on a stack of one shard (books_check runs these seeds there).
 */
static const uint64_t  mc_shards_seeds[] = {
    20280,      /* shard a: a tripped PSP, its open circuit, a reload */
    20131       /* shard b: a tripped PSP and a refusal */
};

TestSuite(shards_books, .timeout = 300);


Test(shards_books, a_routed_history_on_each_shard_keeps_the_books_equal)
{
    shards_need(2);
    mc_seeds("shards_books", mc_shards_seeds,
             sizeof(mc_shards_seeds) / sizeof(mc_shards_seeds[0]), 0, 0, 1);
}


/*
 * make money-check: SEED replays one history (SEED=a,b,c: each of them,
 * one after the other); otherwise HISTORIES of them
 * (default 20) from a base seed (SEED_BASE, default the clock's, printed),
 * or for MINUTES.
 */
Test(books_check, histories, .disabled = 0)
{
    int        histories, minutes, shrink;
    long       ops, failed, n;
    char      *end_of;
    time_t     end;
    uint64_t   base, seed;
    const char *v;

    if (getenv("MONEY_CHECK") == NULL) {
        cr_skip_test("make money-check runs this (MONEY_CHECK=1)");
    }

    /* make money-check runs this test alone on its lane */
    mc_alone = 1;

    shrink = mc_env_int("MONEY_SHRINK", 1);
    ops = 0;
    failed = 0;

    v = getenv("MONEY_SEED");
    if (v != NULL && v[0] != '\0') {
        for (n = 0; ; n++) {
            seed = strtoull(v, &end_of, 10);
            cr_assert(end_of != v && (*end_of == '\0' || *end_of == ','),
                      "SEED: seeds separated by commas, not \"%s\"", v);
            failed += mc_one(seed, shrink, &ops) > 0;
            if (*end_of == '\0') {
                break;
            }
            v = end_of + 1;
        }
        mc_say("money-check: seed%s %s, %ld operations, %ld failed",
               n > 0 ? "s" : "", getenv("MONEY_SEED"), ops, failed);
        cr_expect_eq(failed, 0);
        return;
    }

    v = getenv("MONEY_SEED_BASE");
    base = v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10)
                                     : (uint64_t) time(NULL) * 1000;
    histories = mc_env_int("MONEY_HISTORIES", 20);
    minutes = mc_env_int("MONEY_MINUTES", 0);
    end = time(NULL) + minutes * 60;

    /* MONEY_LIST=1: what each seed draws of the gateway's compositions,
     * nothing run; with MONEY_PRINT=1 each history's steps too (a change
     * to the drawing shows which seeds it changed) */
    if (mc_env_int("MONEY_LIST", 0)) {
        for (n = 0; n < histories; n++) {
            mc_history_t  h;

            memset(mc_drawn, 0, sizeof(mc_drawn));
            mc_generate(&h, base + (uint64_t) n);
            mc_count_drawn(&h);
            mc_say("seed %" PRIu64 ": %d steps; %s", base + (uint64_t) n,
                   h.nsteps, mc_drawn_line());
            if (mc_env_int("MONEY_PRINT", 0)) {
                mc_print(&h, NULL, NULL);
            }
        }
        return;
    }

    mc_say("money-check: seeds from %" PRIu64 " (MONEY_SEED_BASE)",
                base);

    for (n = 0; minutes > 0 ? time(NULL) < end : n < histories; n++) {
        failed += mc_one(base + (uint64_t) n, shrink, &ops) > 0;
    }

    mc_say("money-check: %ld histories, %ld passed, %ld failed; "
           "%ld operations; %ld events listed for a person; off-session "
           "charges: %ld taken, %ld declined, %ld refused, %ld held for "
           "review, %ld needing the shopper; %s; %ld reports reconciled in "
           "%ld ms", n, n - failed,
           failed, ops, mc_listed, mc_charges[0], mc_charges[1],
           mc_charges[2], mc_charges[3], mc_charges[4], mc_drawn_line(),
           mc_recon_reports,
           mc_recon_ms);
    cr_expect_eq(failed, 0, "%ld histories failed (seeds and histories "
                 "above)", failed);
}


/* make money-check-known: each seed of a known defect still fails */
Test(books_check, known_defect_seeds_still_fail)
{
    int       still;
    size_t    i, n, nfail;
    long      ops;

    if (getenv("MONEY_KNOWN") == NULL) {
        cr_skip_test("make money-check-known runs this (MONEY_KNOWN=1)");
    }

    mc_alone = 1;
    mc_replaying_known = 1;

    ops = 0;
    n = 0;
    nfail = 0;

    for (i = 0; i < sizeof(mc_known) / sizeof(mc_known[0]); i++) {
        if (mc_known[i].what == NULL) {
            continue;
        }
        n++;
        still = mc_one(mc_known[i].seed, 0, &ops) > 0;
        nfail += still;
        cr_expect(still, "seed %" PRIu64 " (%s) passes now: move it to "
                  "mc_ci_seeds", mc_known[i].seed, mc_known[i].what);
    }

    /* nothing to expect: said so, never a pass that could not fail */
    if (n == 0) {
        mc_say("money-check-known: no seed of a known defect (mc_known "
               "is empty)");
        cr_skip_test("no seed of a known defect: mc_known is empty");
    }

    mc_say("money-check-known: %zu of %zu seed(s) of known defects still "
           "fail", nfail, n);
}


/* -- every check can fail ------------------------------------------------------ */

/* a ledger transaction of the run's merchant on the connection c: kind,
 * its checkout's order (NULL: none), object_id, and two entries (account2
 * NULL: one entry) */
static void
mc_canary_txn(PGconn *c, const mc_run_t *run, const char *kind,
    const char *po, const char *object, const char *account1, long amount1,
    const char *account2, long amount2)
{
    const char  *p[9];

    p[0] = run->m.id;
    p[1] = po ? run->co[0] : NULL;
    p[2] = po;
    p[3] = kind;
    p[4] = object;
    p[5] = account1;
    p[6] = str_printf("%ld", amount1);
    p[7] = account2;
    p[8] = str_printf("%ld", amount2);

    db_exec_on(c, "WITH t AS (INSERT INTO ledger_transactions (merchant_id, "
               "checkout_id, payment_order_id, source, kind, object_id) "
               "VALUES ($1, $2, $3, 'canary', $4, $5) RETURNING txn_id) "
               "INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, "
               "account, amount, currency) "
               "SELECT $1, t.txn_id, v.n, v.account, v.amount, 'USD' FROM t, "
               "(VALUES (1, $6, $7::bigint), (2, $8, $9::bigint)) "
               "v(n, account, amount) WHERE v.account IS NOT NULL", 9, p);
}


/*
 * A history with a capture, a refund, an open dispute and a pay-out
 * passes every check; then each break of the books, inside a transaction
 * rolled back (the ledger, the wallets, the audit chain) or in a copy of
 * the PSP's books (what it moved, once per nonce), is seen by its check.
 * On a sharded stack the merchant lives on b (not the home) and the
 * breaks include a ledger transaction of it on every other shard, in a
 * transaction of that shard rolled back, and its books read on a shard it
 * does not live on: the shard check sees both.
 */
static void mc_canary(void);


Test(books_check, every_check_sees_the_books_broken, .timeout = 120)
{
    mc_canary();
}


/* over two shards, the shard check too (its merchant on b) */
Test(shards_books, every_check_sees_the_books_broken_over_shards,
     .timeout = 120)
{
    shards_need(2);
    mc_canary();
}


/*
 * payouts, for a pay-out the PSP took back in part (the canary's: 40 of
 * 100): each way of getting that wrong, alone, is seen by it: the PSP's
 * reversal not booked as it was (its books say 1 more taken back: the
 * ledger's net, and GET /v1/payouts/{id}'s amount_reversed, differ from
 * it); the reversal given back to the seller's wallet twice (the
 * clearing's net right); the pay-out's amount_reversed off by one.
 */
static void
mc_canary_payout_back(const mc_run_t *run, json_t *books,
    const char *payout)
{
    size_t        k;
    PGconn       *c;
    json_t       *copy, *t;
    mc_result_t   res;

    c = mc_db(run);

    /* the PSP took 1 more back than the gateway booked */
    copy = json_deep_copy(books);
    json_array_foreach(json_object_get(copy, "transfers"), k, t) {
        cr_assert_eq(json_integer_value(json_object_get(t, "reversed")), 40,
                     "the canary's pay-out was not taken back 40: %s",
                     dump(copy));
        json_object_set_new(t, "reversed", json_integer(41));
        json_object_set_new(t, "paid_out", json_integer(59));
    }
    mc_check(run, copy, &res, 1);
    cr_expect_gt(res.n[MC_CHK_PAYOUTS], 0, "check payouts did not see a "
                 "reversal the ledger booked other than the PSP made it");
    memset(&res, 0, sizeof(res));
    mc_check_payouts_shown(run, copy, &res, 1);
    cr_expect_gt(res.n[MC_CHK_PAYOUTS], 0, "check payouts did not see "
                 "GET /v1/payouts/{id}'s amount_reversed differ from what "
                 "the PSP took back");
    json_decref(copy);

    /* the seller's wallet given the reversal back twice, the clearing
     * right (a transaction of the pay-out's, rolled back) */
    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, "SET LOCAL session_replication_role = replica", 0, NULL);
    mc_canary_txn(c, run, "payout", NULL, payout, "seller_payable:s1", -40,
                  "platform_commission", 40);
    mc_check(run, books, &res, 1);
    db_exec_on(c, "ROLLBACK", 0, NULL);
    cr_expect_gt(res.n[MC_CHK_PAYOUTS], 0, "check payouts did not see a "
                 "reversal given back to the seller's wallet twice");

    /* the pay-out's amount_reversed off by one, its ledger right */
    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, "SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec_on(c, "UPDATE payouts SET amount_reversed = amount_reversed + 1"
               " WHERE merchant_id = $1 AND payout_id = $2", 2,
               (const char *[]) { run->m.id, payout });
    mc_check(run, books, &res, 1);
    db_exec_on(c, "ROLLBACK", 0, NULL);
    cr_expect_gt(res.n[MC_CHK_PAYOUTS], 0, "check payouts did not see a "
                 "pay-out's amount_reversed other than the PSP's");
}


/* the canary's request q sent again under its key to the suite's gateway */
static resp_t *
mc_canary_again(const mc_run_t *run, const mc_req_t *q)
{
    req_t        rq;
    const char  *h[4];

    h[0] = str_printf("Authorization: Bearer %s", run->m.key);
    h[1] = str_printf("Idempotency-Key: %s", q->key);
    h[2] = "Content-Type: application/json";
    h[3] = NULL;
    rq.method = "POST";
    rq.url = gw_url(q->path);
    rq.headers = h;
    rq.body = q->body;
    rq.len = (size_t) -1;

    return http(&rq);
}


/*
 * gone, on the canary's refund (step 2) retried under its key, a real
 * replay: seen as one (nothing wrong), and seen wrong where its first
 * answer differs by a byte, and where the retry of a new operation whose
 * PSP is removed (a refusal), of one never answered (503 not_configured)
 * or the PSP's event at a gateway without it (404) is wanted.
 */
static void
mc_canary_gone(mc_run_t *run)
{
    resp_t      *r;
    mc_req_t     q;

    q = run->rec[2];
    cr_assert(q.key != NULL && q.status == 201, "the canary's refund: %ld",
              q.status);

    r = mc_canary_again(run, &q);

    run->gone_bad = 0;
    run->quiet = 1;
    mc_gone_expect_replay(run, 2, &q, r);
    cr_expect_eq(run->gone_bad, 0, "check gone saw the refund's replay "
                 "wrong: %ld %s", r->status, r->body);

    q.answer = strdup(q.answer);
    q.answer[strlen(q.answer) / 2] ^= 1;
    mc_gone_expect_replay(run, 2, &q, r);
    cr_expect_eq(run->gone_bad, 1, "check gone did not see a replay one "
                 "byte off its first answer");

    mc_gone_expect_refused(run, 2, MC_REFUND, q.key, r);
    cr_expect_eq(run->gone_bad, 2, "check gone did not see a 201 where a "
                 "refusal is wanted");

    mc_gone_expect_unsent(run, 2, MC_REFUND, r);
    cr_expect_eq(run->gone_bad, 3, "check gone did not see a 201 where 503 "
                 "not_configured is wanted");

    mc_gone_expect_event(run, "canary", 0, r);
    cr_expect_eq(run->gone_bad, 4, "check gone did not see a 201 where a "
                 "webhook's 404 is wanted");

    run->gone_bad = 0;
}


/*
 * closed, with the canary's Stripe said to be closed: its refund (step 2)
 * retried under its key, a real replay, seen as one, and seen wrong one
 * byte off; its 201 seen wrong where a new checkout's refusal, or an
 * event's 200, is wanted; and the refund seen wrong answered as refused
 * for its PSP closed.
 */
static void
mc_canary_closed(mc_run_t *run)
{
    resp_t      *r;
    mc_req_t     q, kept;
    long         bad;

    q = run->rec[2];
    r = mc_canary_again(run, &q);

    run->closed = 0;
    run->closed_bad = 0;
    run->quiet = 1;
    mc_gone_expect_replay(run, 2, &q, r);
    cr_expect_eq(run->closed_bad, 0, "check closed saw the refund's replay "
                 "wrong: %ld %s", r->status, r->body);

    q.answer = strdup(q.answer);
    q.answer[strlen(q.answer) / 2] ^= 1;
    mc_gone_expect_replay(run, 2, &q, r);
    cr_expect_eq(run->closed_bad, 1, "check closed did not see a replay "
                 "one byte off its first answer");

    /* (the canary's checkout is stored and was sent, too) */
    mc_closed_expect_refused(run, 2, run->co[0], q.key, r);
    cr_expect_gt(run->closed_bad, 1, "check closed did not see a 201 where "
                 "a new checkout's refusal is wanted");

    bad = run->closed_bad;
    mc_gone_expect_event(run, "canary", 0, r);
    cr_expect_eq(run->closed_bad, bad + 1, "check closed did not see a 201 "
                 "where a webhook's 200 is wanted");

    kept = run->rec[2];
    run->rec[2].status = 400;
    run->rec[2].answer = "{\"code\":\"invalid_request\",\"detail\":\"psp: "
                         "this PSP is closed to new checkouts\"}";
    mc_closed_answered(run, 2);
    run->rec[2] = kept;
    cr_expect_eq(run->closed_bad, bad + 2, "check closed did not see a "
                 "refund refused for its PSP closed");

    run->closed = -1;
    run->closed_bad = 0;
}


static void
mc_canary(void)
{
    int            i, keep[MC_MAX_STEPS];
    char          *psp, *payout;
    PGconn        *c;
    json_t        *books, *copy, *ops, *op;
    mc_run_t       run;
    mc_result_t    res;
    mc_history_t   h;
    const char    *other;

    memset(&h, 0, sizeof(h));
    h.seed = 1;                 /* over two shards: b */
    h.nco = 1;
    h.co[0].dialect = 0;
    h.co[0].currency = 0;
    h.co[0].norders = 2;
    h.co[0].amount[0] = 1000;
    h.co[0].amount[1] = 500;
    h.co[0].seller[0] = 0;
    h.co[0].seller[1] = 1;
    mc_add(&h, MC_REGISTER, 0, 0, 0, 0);
    mc_add(&h, MC_PAY, 0, 0, 0, 0);
    mc_add(&h, MC_REFUND, 0, 0, 0, 200);
    mc_add(&h, MC_DISPUTE, 0, 0, 0, 300);
    mc_add(&h, MC_PAYOUT, 0, 0, 0, 100);
    mc_add(&h, MC_PAYOUT_BACK, 0, 0, 0, 40);    /* Stripe takes 40 back */

    for (i = 0; i < MC_MAX_STEPS; i++) {
        keep[i] = 1;
    }

    cr_assert_eq(mc_run(&h, keep, &run, 0, &res), 0,
                 "the canary's history fails by itself (%s)",
                 mc_failed_checks(&res));
    mc_print(&h, NULL, (const char *const *) run.out);

    c = mc_db(&run);
    psp = str_printf("psp_clearing:%s", mc_psp(0));
    payout = db_scalar_on(c, "SELECT payout_id FROM payouts WHERE "
                          "merchant_id = $1 AND status = 'PAID'", 1,
                          (const char *[]) { run.m.id });
    cr_assert_not_null(payout, "the canary's pay-out was not paid");
    books = books_fetch(run.m.id);

    db_scalar_on(c, "SELECT pay_wallets_fold(20000)", 0, NULL);
    db_exec_on(c, "BEGIN", 0, NULL);
    /* the owner, with the append-only guards off for this transaction */
    db_exec_on(c, "SET LOCAL session_replication_role = replica", 0, NULL);

    /* captured, refunded, disputed (and the order's clearing below 0),
     * the seller charged beyond its credit, a pay-out, an unbalanced
     * transaction, a wallet, the audit chain */
    mc_canary_txn(c, &run, "payment", str_printf("%s_p1", run.co[0]), NULL,
                  psp, 1, "seller_payable:s1", -1);
    mc_canary_txn(c, &run, "refund", str_printf("%s_p1", run.co[0]),
                  "canary", psp, -1, "seller_payable:s1", 1);
    mc_canary_txn(c, &run, "dispute", str_printf("%s_p2", run.co[0]),
                  "canary", psp, -100000000,
                  str_printf("disputes:%s", mc_psp(0)), 100000000);
    mc_canary_txn(c, &run, "payment", str_printf("%s_p2", run.co[0]), NULL,
                  "seller_payable:s2", 100000000, "platform_commission",
                  -100000000);
    mc_canary_txn(c, &run, "payout", NULL, payout, psp, -1,
                  "seller_payable:s1", 1);
    mc_canary_txn(c, &run, "payment", str_printf("%s_p1", run.co[0]), NULL,
                  psp, 1, NULL, 0);
    db_exec_on(c, "UPDATE wallets_folded SET balance = balance + 1 "
               "WHERE merchant_id = $1 AND seller_account = 's1'", 1,
               (const char *[]) { run.m.id });
    db_exec_on(c, "UPDATE audit_log SET detail = detail || '{\"canary\":1}' "
               "WHERE merchant_id = $1 AND seq = 1", 1,
               (const char *[]) { run.m.id });

    /* a sharded stack: a balanced ledger transaction of the merchant's on
     * each other shard, as a statement that crossed shards would book */
    for (i = 0; shards_n() > 1 && i < shards_n(); i++) {
        other = shard_name(i);
        if (strcmp(other, run.m.shard) == 0) {
            continue;
        }
        db_exec_on(db_shard(other), "BEGIN", 0, NULL);
        db_exec_on(db_shard(other), "SET LOCAL session_replication_role = "
                   "replica", 0, NULL);
        mc_canary_txn(db_shard(other), &run, "payment",
                      str_printf("%s_p1", run.co[0]), NULL, psp, 1,
                      "seller_payable:s1", -1);
    }

    /* the PSP's side: its refund of another amount, and made twice */
    copy = json_deep_copy(books);
    ops = json_object_get(books_payment(copy, run.nonce[0]), "ops");
    op = json_array_get(ops, 0);
    cr_assert_str_eq(json_string_value(json_object_get(op, "kind")),
                     "refund", "%s", dump(copy));
    json_object_set_new(op, "amount", json_integer(json_integer_value(
                            json_object_get(op, "amount")) + 1));
    json_array_append_new(ops, json_deep_copy(op));

    mc_check(&run, copy, &res, 1);
    db_exec_on(c, "ROLLBACK", 0, NULL);
    for (i = 0; shards_n() > 1 && i < shards_n(); i++) {
        if (strcmp(shard_name(i), run.m.shard) != 0) {
            db_exec_on(db_shard(shard_name(i)), "ROLLBACK", 0, NULL);
        }
    }

    for (i = 0; i < MC_NCHECKS; i++) {
        if (i == MC_CHK_WEBHOOKS || i == MC_CHK_FORWARD
            || i == MC_CHK_ROUTE || i == MC_CHK_RECONCILE
            || i == MC_CHK_GONE || i == MC_CHK_CLOSED
            || (i == MC_CHK_SHARD && shards_n() == 1))
        {
            continue;           /* not a book: seen failing by real seeds;
                                   forward: the compositions'; shard: a
                                   sharded stack's; route, reconcile,
                                   gone, closed: below */
        }
        cr_expect_gt(res.n[i], 0, "check %s did not see the books broken",
                     mc_check_names[i]);
    }

    mc_canary_gone(&run);
    mc_canary_closed(&run);

    /* route: the canary's checkout, named at Stripe, said to be routed
     * from Adyen refusing it: no route record, the check sees it */
    h.route[0].used = 1;
    h.route[0].first = 1;
    h.route[0].second = 0;
    h.co[0].routed = MC_RT_REFUSED;
    memset(&res, 0, sizeof(res));
    mc_check_routes(&run, keep, books, &res, 1);
    cr_expect_gt(res.n[MC_CHK_ROUTE], 0, "check route did not see a "
                 "checkout claimed elsewhere than its route says");

    /* and said to have moved on from a dead Adyen (connection refused) */
    h.route[0].first = MC_DEAD;
    h.route[0].trip = 1;
    h.co[0].routed = MC_RT_DEAD;
    memset(&res, 0, sizeof(res));
    mc_check_routes(&run, keep, books, &res, 1);
    cr_expect_gt(res.n[MC_CHK_ROUTE], 0, "check route did not see a "
                 "checkout named at its PSP as if moved on from a refused "
                 "connection");
    h.co[0].routed = MC_RT_NONE;
    h.route[0].used = 0;

    mc_canary_payout_back(&run, books, payout);

    /* and the rollback left the books as they were */
    mc_check(&run, books, &res, 0);
    mc_check_payouts_shown(&run, books, &res, 0);
    cr_expect_eq(mc_failures(&res), 0, "the canary left something behind "
                 "(%s)", mc_failed_checks(&res));

    /* the books read on another shard (a harness reading the wrong one)
     * fail the shard check too */
    for (i = 0; shards_n() > 1 && i < shards_n(); i++) {
        if (strcmp(shard_name(i), run.m.shard) != 0) {
            mc_check_on(&run, books, &res, 1, shard_name(i));
            cr_expect_gt(res.n[MC_CHK_SHARD], 0, "the books read on shard "
                         "%s, where the merchant does not live, went "
                         "unseen", shard_name(i));
        }
    }

    /* reconcile: a history of a payment (on the same shard) whose
     * settlement report says 1.00 more than the PSP took: every other
     * check passes, the reconciliation lists it (amount_differs) */
    memset(&h, 0, sizeof(h));
    h.seed = 1;
    h.nco = 1;
    h.co[0].dialect = 2;
    h.co[0].currency = 0;
    h.co[0].norders = 1;
    h.co[0].amount[0] = 700;
    h.co[0].seller[0] = 0;
    mc_add(&h, MC_REGISTER, 0, 0, 0, 0);
    mc_add(&h, MC_PAY, 0, 0, 0, 0);
    mc_plant_delta = 100;
    (void) mc_run(&h, keep, &run, 1, &res);
    mc_plant_delta = 0;
    cr_expect_gt(res.n[MC_CHK_RECONCILE], 0, "check reconcile did not see "
                 "a settlement report's payment 1.00 above the PSP's");
    res.n[MC_CHK_RECONCILE] = 0;
    cr_expect_eq(mc_failures(&res), 0, "the planted report's history "
                 "failed elsewhere (%s)", mc_failed_checks(&res));
}
