/*
 * Sellers' wallets (sql/functions/wallet_add.sql, pay_wallets_fold.sql,
 * doc/MONEY.md "Wallets"):
 * a booking appends a credit row and waits for no lock on the seller (not
 * a pay-out's, not a fold's), the
 * wallets view is the folded balance plus the unfolded rows, a fold never
 * changes a balance, and pay-outs still see every credit.
 *
 * The suite's gateway folds every second (worker 0, pay_wallets_fold) while
 * these run: every assertion holds whether a fold ran in between or not.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* A second superuser connection, for what must happen while db() holds a
 * transaction open.  Its statements give up after 3 s of waiting on a
 * lock (SQLSTATE 55P03) instead of hanging the test. */
static PGconn *
other_conn(void)
{
    PGconn    *c = PQconnectdb(env("PAY_TEST_PG"));
    PGresult  *r;

    cr_assert(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    r = PQexec(c, "SET lock_timeout = '3s'");
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}


/* Runs sql on c; NULL when it succeeded, else its SQLSTATE (static). */
static const char *
try_on(PGconn *c, const char *sql, int n, const char *const *params)
{
    static char  state[6];
    PGresult    *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    const char  *s;

    if (PQresultStatus(r) == PGRES_TUPLES_OK
        || PQresultStatus(r) == PGRES_COMMAND_OK)
    {
        PQclear(r);
        return NULL;
    }
    s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof(state), "%s", s ? s : "?????");
    PQclear(r);
    return state;
}


static char *
balance(const char *m, const char *seller)
{
    return db_scalar("SELECT balance FROM wallets WHERE merchant_id = $1"
                     " AND seller_account = $2 AND currency = 'EUR'",
                     2, (const char *[]) { m, seller });
}


static void
credit(const char *m, const char *seller, const char *amount)
{
    db_exec("SELECT wallet_add($1, $2, 'EUR', $3::bigint)", 3,
            (const char *[]) { m, seller, amount });
}


/* Folds until none of m's credit rows is left (the gateway's worker may
 * hold the fold's lock for a moment: then this one returns 0). */
static void
fold_all_of(const char *m)
{
    int    i;
    char  *left;

    for (i = 0; i < 100; i++) {
        free(db_scalar("SELECT pay_wallets_fold(100000)", 0, NULL));
        left = db_scalar("SELECT count(*) FROM wallet_credits"
                         " WHERE merchant_id = $1", 1, (const char *[]) { m });
        if (strcmp(left, "0") == 0) {
            free(left);
            return;
        }
        free(left);
        usleep(50 * 1000);
    }
    cr_assert_fail("%s's wallet credits were never folded", m);
}


Test(wallets, two_bookings_of_one_seller_do_not_wait_for_each_other,
     .timeout = E2E_TIMEOUT,
     .description = "a webhook's credit, uncommitted, does not hold up "
                    "another webhook's credit to the same seller")
{
    merchant_t   m;
    PGconn      *c2 = other_conn();

    merchant_new(&m);
    credit(m.id, "s_hot", "1");             /* the folded row exists */

    db_exec("BEGIN", 0, NULL);
    credit(m.id, "s_hot", "1000");

    /* before 016 this waited on the seller's wallet row until db()'s COMMIT:
     * here it would give up after lock_timeout with 55P03 */
    cr_assert_null(try_on(c2, "SELECT wallet_add($1, 's_hot', 'EUR', 250)",
                          1, (const char *[]) { m.id }),
                   "the second credit waited for the first one's lock");

    db_exec("COMMIT", 0, NULL);
    cr_assert_str_eq(balance(m.id, "s_hot"), "1251");
    PQfinish(c2);
}


Test(wallets, a_credit_does_not_wait_for_a_pay_out_holding_the_wallet,
     .timeout = E2E_TIMEOUT,
     .description = "a pay-out's check locks the seller's wallet; webhooks "
                    "crediting that seller go on meanwhile")
{
    merchant_t   m;
    PGconn      *c2 = other_conn();

    merchant_new(&m);
    credit(m.id, "s1", "500");

    db_exec("BEGIN", 0, NULL);
    free(db_scalar("SELECT 1 FROM wallets WHERE merchant_id = $1 AND"
                   " seller_account = 's1' AND currency = 'EUR' FOR UPDATE",
                   1, (const char *[]) { m.id }));

    cr_assert_null(try_on(c2, "SELECT wallet_add($1, 's1', 'EUR', 70)",
                          1, (const char *[]) { m.id }),
                   "a credit waited for the pay-out's lock");

    /* a fold, though, waits: it would move money under the check.  The
     * gateway's worker tries one every second; the 70 stays a credit row
     * (its deletion uncommitted at most) while the lock is held. */
    usleep(1500 * 1000);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM wallet_credits WHERE"
                               " merchant_id = $1 AND amount = 70", 1,
                               (const char *[]) { m.id }), "1");
    cr_assert_str_eq(balance(m.id, "s1"), "570");

    db_exec("COMMIT", 0, NULL);
    cr_assert_str_eq(balance(m.id, "s1"), "570");
    PQfinish(c2);
}


Test(wallets, a_credit_does_not_wait_for_a_fold_in_progress,
     .timeout = E2E_TIMEOUT,
     .description = "a fold that has updated the seller's folded row and "
                    "not yet committed holds up no booking to that seller "
                    "(028: the folded row is read, not inserted again)")
{
    merchant_t   m;
    PGconn      *c2 = other_conn();
    char        *n = NULL, *left = NULL, *ours = NULL;
    int          i;

    merchant_new(&m);
    credit(m.id, "s_f", "1");               /* the folded row exists */

    /* a fold of this seller's credit, held open; the gateway's own fold
     * (every second) may take the lock or the credit first: again */
    for (i = 0; i < 50; i++) {
        credit(m.id, "s_f", "10");
        db_exec("BEGIN", 0, NULL);
        n = db_scalar("SELECT pay_wallets_fold(100000)", 0, NULL);
        left = db_scalar("SELECT count(*) FROM wallet_credits WHERE merchant_id = $1",
                         1, (const char *[]) { m.id });
        /* the folded row's version is this transaction's: our fold wrote it */
        ours = db_scalar("SELECT (xmin::text::bigint"
                         "        = pg_current_xact_id()::text::bigint % 4294967296)::text"
                         "  FROM wallets_folded WHERE merchant_id = $1"
                         "   AND seller_account = 's_f'",
                         1, (const char *[]) { m.id });
        if (atoi(n) > 0 && strcmp(left, "0") == 0 && strcmp(ours, "true") == 0) {
            break;
        }
        db_exec("ROLLBACK", 0, NULL);
        free(n);
        free(left);
        free(ours);
        n = left = ours = NULL;
        usleep(20 * 1000);
    }
    cr_assert_lt(i, 50, "never folded the seller's credit in an open transaction");

    /* before 028 this waited for the fold's COMMIT: 55P03 after lock_timeout */
    cr_assert_null(try_on(c2, "SELECT wallet_add($1, 's_f', 'EUR', 250)",
                          1, (const char *[]) { m.id }),
                   "a credit waited for the fold in progress");

    db_exec("COMMIT", 0, NULL);
    cr_assert_str_eq(balance(m.id, "s_f"), "261");
    free(n);
    free(left);
    free(ours);
    PQfinish(c2);
}


Test(wallets, a_fold_changes_no_balance,
     .timeout = E2E_TIMEOUT,
     .description = "credits and debits folded into wallets_folded leave "
                    "every seller's balance as it was, and no row behind")
{
    merchant_t   m;

    merchant_new(&m);
    credit(m.id, "s1", "1000");
    credit(m.id, "s1", "-300");
    credit(m.id, "s2", "5");
    credit(m.id, "s1", "0");                /* no row for nothing */

    cr_assert_str_eq(balance(m.id, "s1"), "700");
    cr_assert_str_eq(balance(m.id, "s2"), "5");

    fold_all_of(m.id);

    cr_assert_str_eq(balance(m.id, "s1"), "700");
    cr_assert_str_eq(balance(m.id, "s2"), "5");
    cr_assert_str_eq(db_scalar("SELECT string_agg(seller_account || '=' ||"
                               " balance, ',' ORDER BY seller_account)"
                               " FROM wallets_folded WHERE merchant_id = $1",
                               1, (const char *[]) { m.id }),
                     "s1=700,s2=5");
}


Test(wallets, a_credit_without_its_folded_row_is_never_lost,
     .timeout = E2E_TIMEOUT,
     .description = "the fold makes the seller's folded row when a credit "
                    "arrives without one")
{
    merchant_t   m;

    merchant_new(&m);
    db_exec("INSERT INTO wallet_credits (merchant_id, seller_account,"
            " currency, amount) VALUES ($1, 's_new', 'EUR', 42)",
            1, (const char *[]) { m.id });

    fold_all_of(m.id);
    cr_assert_str_eq(balance(m.id, "s_new"), "42");
}


/* A pending pay-out of seller s1: $1 merchant, $2 payout id, $3 amount. */
#define PAYOUT_SQL                                                            \
    "INSERT INTO payouts (merchant_id, payout_id, seller_account, psp,"      \
    " destination, nonce, amount, currency, status) VALUES ($1, $2, 's1',"   \
    " 'mock', 'acct_1', $1 || ':' || $2, $3::bigint, 'EUR', 'PENDING')"

Test(wallets, a_pay_out_counts_credits_not_yet_folded,
     .timeout = E2E_TIMEOUT,
     .description = "the pay-out check reads the folded balance plus the "
                    "credits since: no more, no less")
{
    merchant_t   m;

    merchant_new(&m);
    db_exec("INSERT INTO sellers (merchant_id, seller_account, psp,"
            " destination) VALUES ($1, 's1', 'mock', 'acct_1')",
            1, (const char *[]) { m.id });
    credit(m.id, "s1", "1000");
    credit(m.id, "s1", "-100");

    /* 900 available: 600 then 300 fit, one more minor unit does not */
    cr_assert_null(try_on(db(), PAYOUT_SQL, 3, (const char *[]) {
                       m.id, "pyo_aaaaaaaaaaaaaaaaaaaaaaaa", "600" }));
    cr_assert_str_eq(try_on(db(), PAYOUT_SQL, 3, (const char *[]) {
                         m.id, "pyo_bbbbbbbbbbbbbbbbbbbbbbbb", "301" }),
                     "PY008");
    cr_assert_null(try_on(db(), PAYOUT_SQL, 3, (const char *[]) {
                       m.id, "pyo_bbbbbbbbbbbbbbbbbbbbbbbb", "300" }));

    cr_assert_str_eq(db_scalar("SELECT available FROM seller_available($1,"
                               " 's1', 'EUR')", 1,
                               (const char *[]) { m.id }), "0");
}


Test(wallets, the_gateway_folds_on_its_own,
     .timeout = E2E_TIMEOUT,
     .description = "worker 0 folds credit rows within seconds, with no one "
                    "asking")
{
    merchant_t   m;
    int          i;
    char        *left = NULL;

    merchant_new(&m);
    credit(m.id, "s1", "123");
    for (i = 0; i < 100; i++) {
        free(left);
        left = db_scalar("SELECT count(*) FROM wallet_credits"
                         " WHERE merchant_id = $1", 1,
                         (const char *[]) { m.id });
        if (strcmp(left, "0") == 0) {
            break;
        }
        usleep(100 * 1000);
    }
    cr_assert_str_eq(left, "0", "not folded within 10 s");
    cr_assert_str_eq(balance(m.id, "s1"), "123");
}


Test(wallets, metrics_show_when_the_gateway_last_folded,
     .timeout = E2E_TIMEOUT,
     .description = "payments_wallet_fold_last_success_timestamp_seconds "
                    "follows worker 0's folds (the PaymentsWalletFoldStalled "
                    "alert reads it)")
{
    double  at = 0;
    int     i;

    /* worker 0 folds every second: the stamp is at most a few s old */
    for (i = 0; i < 50; i++) {
        at = metric_value(NULL,
                          "payments_wallet_fold_last_success_timestamp_seconds");
        if (at > 0 && (double) time(NULL) - at <= 3) {
            break;
        }
        usleep(100 * 1000);
    }
    cr_assert_gt(at, 0, "no fold was ever recorded");
    cr_assert_leq((double) time(NULL) - at, 3,
                  "the last fold is %.0f s old", (double) time(NULL) - at);
}
