/*
 * Mock PSP: settlement reports, as each dialect's PSP writes them, from the
 * sessions the mock processed (doc/RECONCILIATION.md describes the formats).
 *
 *   GET /_control/reports/{stripe|adyen|generic}?sessions=ID,ID,…[&knobs]
 *
 * The store keeps no list of sessions that another file could walk, so the
 * caller names the sessions (the ids the registrations answered); each is
 * read from the store as it is now, and only a paid one (status complete,
 * payment_status paid) is a row.  Declined, expired and open sessions are
 * not in the report, as at a real PSP.
 *
 * A payment row names the payment as the PSP does (the session's
 * payment_ref: Stripe's payment_intent_id, Adyen's pspReference, the
 * generic psp_ref) and carries our nonce.
 *
 * Amounts are written as each PSP writes them: decimals of the currency's
 * major unit with the PSP's own decimals (mock_psp_exponent), not ISO's:
 * 500 ISK at Stripe, stored as 50000, is "500.00"; 10 MGA at Stripe "10";
 * 1500 CLP at Adyen "1500.00", 20000 IDR "20000", 15 CVE "15".
 *
 * Fees, fixed: fee = floor(gross * 29 / 1000) + 30 of the PSP's minor
 * units (2.9 % + 0.30 in a two-decimal currency), net = gross - fee: in
 * a currency the PSP counts finer than ISO (ISK at Stripe and Adyen, CLP
 * at Adyen) the fee has decimals ISO has not (22.05 ISK), as a PSP's own
 * computation may.  Adyen puts the whole fee in Commission (NC).  Refunds
 * and transfers carry no fee (as Stripe).
 *
 * merchant=M adds the refunds and transfers the mock processed (money.c
 * records each when it commits: a failed transfer left out, a failed
 * refund in with its failure below, a lost webhook not)
 * whose nonce is M:…, in the report's dialect: Stripe reporting_category
 * refund (refund_id, payment_intent_id, refund_metadata[nonce]) and
 * transfer (transfer_id, transfer_metadata[nonce]); Adyen Type Refunded
 * (Psp Reference the payment's, Modification Reference the refund's) and
 * Transfer (Psp Reference the transfer's); generic type refund and payout.
 * Then the money the PSP moved after them (money.c's moves, in order):
 * a dispute's withdrawal and its reversal when won (Stripe dispute /
 * dispute_reversal, Adyen Chargeback / ChargebackReversed and a
 * SecondChargeback after a win, generic dispute / dispute_won), a failed
 * refund's failure (refund_failure, Adyen RefundedReversed; the refund's
 * own row too) and a transfer taken back (Stripe transfer_reversal, a row
 * each part, Adyen TransferReturned, generic payout_failure).  A payment
 * captured in parts is a row per capture at Adyen and generic
 * (mock_report_capture), and Stripe's one row of what it captured.
 *
 * Knobs, to inject each mismatch class:
 *   drop=ID         leave the paid session ID out (missing at the PSP)
 *   amount=ID:D     the session's gross (and net) off by D minor units
 *                   (repeats; D of ±1 is a rounding remainder)
 *   unknown=1       a payment row that names nothing of ours
 *   refund=ID:A     a refund of A minor units of ID's payment that only
 *                   the PSP knows
 *   paid=ID         pay the open session ID now, silently: no webhook is
 *                   ever sent for it (as a lost webhook), and it is a row
 *   nonce=ID        ID's payment row without our nonce (as Stripe's, whose
 *                   payment intents do not carry the session's metadata):
 *                   matched by the payment's id alone (repeats)
 *   drop_op=OP      leave the refund or transfer OP out (missing at the PSP)
 *   op_amount=OP:D  its amount off by D minor units
 *   payout=A        a transfer of A minor units that only the PSP has
 *   drop_move=M     leave the move M out (a reversal missing at the PSP)
 *   extra_move=M    write the move M twice, the second as another row of
 *                   the PSP (none at generic: its row id would repeat)
 * (M: OBJ[:N], OBJ the dispute's, refund's or transfer's PSP id, our nonce
 * or the id in it, N its N-th move, none: every one; repeat, up to 16.)
 * (OP: the PSP's id, our nonce, or the id in our nonce, rf_… / pyo_…;
 * drop_op= and op_amount= repeat, up to 16 each.)  IDs in knobs must also
 * be in sessions=.  Unknown parameters are refused.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"

#define MOCK_REPORT_MAX_SESSIONS  1024
#define MOCK_REPORT_MAX_KNOBS     16     /* drop_op=, op_amount= each */


static int mock_report_names(const char *v, const char *id,
    const char *nonce);

typedef struct {
    const char  *dialect;
    char        *sessions;       /* the query value, split in place */
    const char  *drop;
    char        *amount_id[MOCK_REPORT_MAX_KNOBS];
    long long    amount_delta[MOCK_REPORT_MAX_KNOBS];
    size_t       namount;
    const char  *refund_id;
    long long    refund_amount;
    const char  *paid;
    const char  *merchant;       /* its refunds and transfers are rows */
    const char  *drop_op[MOCK_REPORT_MAX_KNOBS];
    size_t       ndrop_op;
    char        *op_amount_id[MOCK_REPORT_MAX_KNOBS];
    long long    op_amount_delta[MOCK_REPORT_MAX_KNOBS];
    size_t       nop_amount;
    long long    payout_amount;  /* a transfer only the PSP has */
    int          unknown;
    const char  *no_nonce[MOCK_REPORT_MAX_KNOBS];
    size_t       nno_nonce;      /* nonce=ID: its row without our nonce */
    const char  *drop_move[MOCK_REPORT_MAX_KNOBS];
    size_t       ndrop_move;     /* drop_move=OBJ[:N]: a move left out */
    const char  *extra_move[MOCK_REPORT_MAX_KNOBS];
    size_t       nextra_move;    /* extra_move=OBJ[:N]: a move twice */
    const char  *bad;            /* an unknown parameter */
} mock_report_q_t;


static enum MHD_Result
mock_report_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return mock_send_json(c, status, json_pack("{ss}", "error", msg));
}


static enum MHD_Result
mock_report_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
    mock_report_q_t  *q = cls;
    const char       *colon;

    (void) kind;

    if (value == NULL) {
        value = "";
    }

    if (strcmp(key, "sessions") == 0) {
        q->sessions = strdup(value);
    } else if (strcmp(key, "drop") == 0) {
        q->drop = value;
    } else if (strcmp(key, "paid") == 0) {
        q->paid = value;
    } else if (strcmp(key, "unknown") == 0) {
        q->unknown = atoi(value);
    } else if (strcmp(key, "nonce") == 0) {
        if (q->nno_nonce == MOCK_REPORT_MAX_KNOBS) {
            q->bad = key;
            return MHD_YES;
        }
        q->no_nonce[q->nno_nonce++] = value;
    } else if (strcmp(key, "drop_move") == 0
               || strcmp(key, "extra_move") == 0)
    {
        if (key[0] == 'd') {
            if (q->ndrop_move == MOCK_REPORT_MAX_KNOBS) {
                q->bad = key;
                return MHD_YES;
            }
            q->drop_move[q->ndrop_move++] = value;
        } else {
            if (q->nextra_move == MOCK_REPORT_MAX_KNOBS) {
                q->bad = key;
                return MHD_YES;
            }
            q->extra_move[q->nextra_move++] = value;
        }
    } else if (strcmp(key, "merchant") == 0) {
        q->merchant = value;
    } else if (strcmp(key, "drop_op") == 0) {
        if (q->ndrop_op == MOCK_REPORT_MAX_KNOBS) {
            q->bad = key;
            return MHD_YES;
        }
        q->drop_op[q->ndrop_op++] = value;
    } else if (strcmp(key, "payout") == 0) {
        q->payout_amount = strtoll(value, NULL, 10);
        if (q->payout_amount <= 0) {
            q->bad = key;
        }
    } else if (strcmp(key, "op_amount") == 0) {
        colon = strrchr(value, ':');
        if (colon == NULL || q->nop_amount == MOCK_REPORT_MAX_KNOBS) {
            q->bad = key;
            return MHD_YES;
        }
        q->op_amount_id[q->nop_amount] = strndup(value,
                                                 (size_t) (colon - value));
        q->op_amount_delta[q->nop_amount++] = strtoll(colon + 1, NULL, 10);
    } else if (strcmp(key, "amount") == 0 || strcmp(key, "refund") == 0) {
        colon = strrchr(value, ':');
        if (colon == NULL) {
            q->bad = key;
            return MHD_YES;
        }
        if (key[0] == 'a') {
            if (q->namount == MOCK_REPORT_MAX_KNOBS) {
                q->bad = key;
                return MHD_YES;
            }
            q->amount_id[q->namount] = strndup(value,
                                               (size_t) (colon - value));
            q->amount_delta[q->namount++] = strtoll(colon + 1, NULL, 10);
        } else {
            q->refund_id = strndup(value, (size_t) (colon - value));
            q->refund_amount = strtoll(colon + 1, NULL, 10);
        }
    } else {
        q->bad = key;
    }

    return MHD_YES;
}


/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void
mock_report_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") != NULL) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') {
                fputc('"', f);
            }
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}


/*
 * Signed minor units of the dialect's PSP (what the store holds: a
 * session's amount_total, an operation's amount_value) as the PSP writes
 * them in its report, a decimal of the currency's major unit with the
 * PSP's decimals (mock_psp_exponent): 50000 ISK at Stripe is "500.00", 10
 * MGA at Stripe "10", 150000 CLP at Adyen "1500.00", 20000 IDR at Adyen
 * "20000"; generic ISO's.  "" for 0 when blank.
 */
static void
mock_report_money(char *out, size_t size, long long v, const char *dialect,
    const char *currency, int blank_zero)
{
    if (v == 0 && blank_zero) {
        out[0] = '\0';
        return;
    }

    if (v < 0) {
        out[0] = '-';
        mock_format_psp(out + 1, size - 1, (json_int_t) -v, dialect,
                        currency);
    } else {
        mock_format_psp(out, size, (json_int_t) v, dialect, currency);
    }
}


/* 16 digits from an id, as an Adyen pspReference (stable per id). */
static void
mock_report_digits(char out[17], const char *id, unsigned salt)
{
    unsigned long long  h = 1469598103934665603ULL ^ salt;
    int                 i;

    for (; *id; id++) {
        h = (h ^ (unsigned char) *id) * 1099511628211ULL;
    }
    out[0] = '8';
    for (i = 1; i < 16; i++) {
        out[i] = (char) ('0' + h % 10);
        h /= 10;
    }
    out[16] = '\0';
}


static long long
mock_report_fee(long long gross)
{
    return gross * 29 / 1000 + 30;
}


typedef struct {
    FILE        *f;
    const char  *dialect;
    char         date[32];
    char         cur_lc[4];
    char         cur_uc[4];
} mock_report_out_t;


static void
mock_report_header(mock_report_out_t *o)
{
    if (strcmp(o->dialect, "stripe") == 0) {
        fputs("balance_transaction_id,created_utc,available_on_utc,currency,"
              "gross,fee,net,reporting_category,source_id,description,"
              "payment_intent_id,refund_id,transfer_id,"
              "payment_metadata[nonce],refund_metadata[nonce],"
              "transfer_metadata[nonce]\r\n", o->f);
    } else if (strcmp(o->dialect, "adyen") == 0) {
        fputs("Company Account,Merchant Account,Psp Reference,"
              "Merchant Reference,Payment Method,Creation Date,TimeZone,Type,"
              "Modification Reference,Gross Currency,Gross Debit (GC),"
              "Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),"
              "Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),"
              "Interchange (NC),Payment Method Variant,Batch Number\r\n",
              o->f);
    } else {
        fputs("reference,psp_ref,type,gross,fee,net,currency,date,"
              "payment_ref\r\n", o->f);
    }
}


static void
mock_report_set_currency(mock_report_out_t *o, const char *currency)
{
    size_t  i;

    for (i = 0; i < 3 && currency[i]; i++) {
        o->cur_lc[i] = (char) tolower((unsigned char) currency[i]);
        o->cur_uc[i] = (char) toupper((unsigned char) currency[i]);
    }
    o->cur_lc[i] = o->cur_uc[i] = '\0';
}


/*
 * A row of Adyen's Settlement details report, in its columns' order:
 * Company Account, Merchant Account, Psp Reference, Merchant Reference,
 * Payment Method, Creation Date, TimeZone, Type, Modification Reference,
 * Gross Currency, Gross Debit (GC), Gross Credit (GC), Exchange Rate, Net
 * Currency, Net Debit (NC), Net Credit (NC), Commission (NC), Markup (NC),
 * Scheme Fees (NC), Interchange (NC), Payment Method Variant, Batch
 * Number.  The amounts as mock_report_money writes them ("" for none).
 */
static void
mock_report_adyen_row(mock_report_out_t *o, const char *psp_ref,
    const char *merchant_ref, const char *method, const char *type,
    const char *mod_ref, const char *gross_debit, const char *gross_credit,
    const char *net_debit, const char *net_credit, const char *commission)
{
    mock_report_field(o->f, "MockCompany", 0);
    mock_report_field(o->f, "MockMerchant", 0);
    mock_report_field(o->f, psp_ref, 0);
    mock_report_field(o->f, merchant_ref, 0);
    mock_report_field(o->f, method, 0);
    mock_report_field(o->f, o->date, 0);
    mock_report_field(o->f, "UTC", 0);
    mock_report_field(o->f, type, 0);
    mock_report_field(o->f, mod_ref, 0);
    mock_report_field(o->f, o->cur_uc, 0);
    mock_report_field(o->f, gross_debit, 0);
    mock_report_field(o->f, gross_credit, 0);
    mock_report_field(o->f, "1", 0);
    mock_report_field(o->f, o->cur_uc, 0);
    mock_report_field(o->f, net_debit, 0);
    mock_report_field(o->f, net_credit, 0);
    mock_report_field(o->f, commission, 0);
    mock_report_field(o->f, "", 0);
    mock_report_field(o->f, "", 0);
    mock_report_field(o->f, "", 0);
    mock_report_field(o->f, method, 0);
    mock_report_field(o->f, "1", 1);
}


/* One payment: id names the session, pref the payment at the PSP (NULL:
 * made from id), nonce is ours ("" for none). */
static void
mock_report_payment(mock_report_out_t *o, const char *id, const char *pref,
    const char *nonce, long long gross)
{
    char       g[40], fe[40], n[40], buf[160], digits[17];
    long long  fee = mock_report_fee(gross);

    mock_report_money(g, sizeof(g), gross, o->dialect, o->cur_lc, 0);
    mock_report_money(fe, sizeof(fe), fee, o->dialect, o->cur_lc, 0);
    mock_report_money(n, sizeof(n), gross - fee, o->dialect, o->cur_lc, 0);

    if (strcmp(o->dialect, "stripe") == 0) {
        snprintf(buf, sizeof(buf), "txn_%s", id);
        mock_report_field(o->f, buf, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, o->cur_lc, 0);
        mock_report_field(o->f, g, 0);
        mock_report_field(o->f, fe, 0);
        mock_report_field(o->f, n, 0);
        mock_report_field(o->f, "charge", 0);
        snprintf(buf, sizeof(buf), "ch_%s", id);
        mock_report_field(o->f, buf, 0);
        snprintf(buf, sizeof(buf), "Checkout, \"%s\"", nonce);
        mock_report_field(o->f, buf, 0);
        if (pref != NULL) {
            snprintf(buf, sizeof(buf), "%s", pref);
        } else {
            snprintf(buf, sizeof(buf), "pi_%s", id);
        }
        mock_report_field(o->f, buf, 0);
        mock_report_field(o->f, "", 0);
        mock_report_field(o->f, "", 0);
        mock_report_field(o->f, nonce, 0);
        mock_report_field(o->f, "", 0);
        mock_report_field(o->f, "", 1);

    } else if (strcmp(o->dialect, "adyen") == 0) {
        if (pref != NULL) {
            snprintf(digits, sizeof(digits), "%s", pref);
        } else {
            mock_report_digits(digits, id, 0);
        }
        mock_report_adyen_row(o, digits, nonce, "visa", "Settled", digits,
                              "", g, "", n, fe);

    } else {
        mock_report_field(o->f, nonce, 0);
        if (pref != NULL) {
            snprintf(buf, sizeof(buf), "%s", pref);
        } else {
            snprintf(buf, sizeof(buf), "pay_%s", id);
        }
        mock_report_field(o->f, buf, 0);
        mock_report_field(o->f, "payment", 0);
        mock_report_field(o->f, g, 0);
        mock_report_field(o->f, fe, 0);
        mock_report_field(o->f, n, 0);
        mock_report_field(o->f, o->cur_uc, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, "", 1);
    }
}


/*
 * A refund (refund != 0) or a transfer the PSP processed: id is the PSP's
 * id of it, nonce ours ("" for none), pref the payment refunded.  No fee:
 * the mock charges none on refunds and transfers (as Stripe).
 */
static void
mock_report_op(mock_report_out_t *o, int refund, const char *id,
    const char *nonce, const char *pref, long long amount)
{
    char  a[40], pa[40], z[40], buf[160];

    mock_report_money(a, sizeof(a), -amount, o->dialect, o->cur_lc, 0);
    mock_report_money(pa, sizeof(pa), amount, o->dialect, o->cur_lc, 0);
    mock_report_money(z, sizeof(z), 0, o->dialect, o->cur_lc, 0);

    if (strcmp(o->dialect, "stripe") == 0) {
        snprintf(buf, sizeof(buf), "txn_%s", id);
        mock_report_field(o->f, buf, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, o->cur_lc, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, z, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, refund ? "refund" : "transfer", 0);
        mock_report_field(o->f, id, 0);
        mock_report_field(o->f, refund ? "REFUND FOR CHARGE" : "Transfer", 0);
        mock_report_field(o->f, refund && pref ? pref : "", 0);
        mock_report_field(o->f, refund ? id : "", 0);
        mock_report_field(o->f, refund ? "" : id, 0);
        mock_report_field(o->f, "", 0);
        mock_report_field(o->f, refund ? nonce : "", 0);
        mock_report_field(o->f, refund ? "" : nonce, 1);

    } else if (strcmp(o->dialect, "adyen") == 0) {
        /* a refund: Psp Reference the payment's, Modification Reference
         * the refund's; a transfer: Type Transfer, Psp Reference its id */
        mock_report_adyen_row(o, refund && pref ? pref : id, nonce,
                              refund ? "visa" : "",
                              refund ? "Refunded" : "Transfer", id,
                              pa, "", pa, "", "");

    } else {
        mock_report_field(o->f, nonce, 0);
        mock_report_field(o->f, id, 0);
        mock_report_field(o->f, refund ? "refund" : "payout", 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, z, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, o->cur_uc, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, refund && pref ? pref : "", 1);
    }
}


/*
 * One capture of a manual-capture payment as its PSP settles it: Adyen a
 * Settled row per capture (Modification Reference the capture's
 * pspReference), the generic PSP a payment row per capture (psp_ref the
 * capture's id, payment_ref the payment's); Stripe captures once, and its
 * row is the payment's (mock_report_payment with what was captured).
 */
static void
mock_report_capture(mock_report_out_t *o, const char *cid, const char *pref,
    const char *nonce, long long gross)
{
    char       g[40], fe[40], n[40];
    long long  fee = mock_report_fee(gross);

    mock_report_money(g, sizeof(g), gross, o->dialect, o->cur_lc, 0);
    mock_report_money(fe, sizeof(fe), fee, o->dialect, o->cur_lc, 0);
    mock_report_money(n, sizeof(n), gross - fee, o->dialect, o->cur_lc, 0);

    if (strcmp(o->dialect, "adyen") == 0) {
        mock_report_adyen_row(o, pref, nonce, "visa", "Settled", cid,
                              "", g, "", n, fe);
    } else {
        mock_report_field(o->f, nonce, 0);
        mock_report_field(o->f, cid, 0);
        mock_report_field(o->f, "payment", 0);
        mock_report_field(o->f, g, 0);
        mock_report_field(o->f, fe, 0);
        mock_report_field(o->f, n, 0);
        mock_report_field(o->f, o->cur_uc, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, pref, 1);
    }
}


/*
 * A move (mock_money_moves) in the dialect's words; extra > 0 writes it
 * again as another row of the PSP (its own row id), as a PSP that booked
 * it twice would.  No fee (the mock charges none on them).
 *
 *   dispute         Stripe dispute (source_id the dispute), Adyen
 *                   Chargeback (SecondChargeback after a reversal),
 *                   generic dispute: money out
 *   dispute_won     Stripe dispute_reversal, Adyen ChargebackReversed,
 *                   generic dispute_won: back
 *   refund_failure  Stripe refund_failure, Adyen RefundedReversed,
 *                   generic refund_failure: back
 *   payout_failure  Stripe transfer_reversal (a row each, partial ones
 *                   too), Adyen TransferReturned, generic payout_failure
 *
 * The generic format's row id is psp_ref:type, one per object and type: a
 * second withdrawal of a generic dispute (lost after it was won), or a
 * generic extra row, has no row of its own and is not written.
 */
static void
mock_report_move(mock_report_out_t *o, const json_t *mv, int extra)
{
    char         a[40], z[40], buf[200], mod[200];
    const char  *kind, *id, *nonce, *pref, *cat;
    long long    amount, seq;
    int          out;

    kind = json_string_value(json_object_get(mv, "kind"));
    id = json_string_value(json_object_get(mv, "id"));
    nonce = json_string_value(json_object_get(mv, "nonce"));
    pref = json_string_value(json_object_get(mv, "payment_ref"));
    amount = (long long) json_integer_value(json_object_get(mv, "amount"));
    seq = (long long) json_integer_value(json_object_get(mv, "n"));
    pref = pref ? pref : "";
    nonce = nonce ? nonce : "";
    out = strcmp(kind, "dispute") == 0;

    mock_report_money(a, sizeof(a), out ? -amount : amount, o->dialect,
                      o->cur_lc, 0);
    mock_report_money(z, sizeof(z), 0, o->dialect, o->cur_lc, 0);

    if (strcmp(o->dialect, "stripe") == 0) {
        cat = out ? "dispute"
              : strcmp(kind, "dispute_won") == 0 ? "dispute_reversal"
              : strcmp(kind, "refund_failure") == 0 ? "refund_failure"
              : "transfer_reversal";
        snprintf(buf, sizeof(buf), "txn_%s_%lld%s", id, seq,
                 extra ? "_x" : "");
        mock_report_field(o->f, buf, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, o->cur_lc, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, z, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, cat, 0);
        if (strcmp(cat, "transfer_reversal") == 0) {
            snprintf(buf, sizeof(buf), "trr_%s_%lld%s", id, seq,
                     extra ? "_x" : "");
            mock_report_field(o->f, buf, 0);
        } else {
            mock_report_field(o->f, id, 0);
        }
        mock_report_field(o->f, cat, 0);
        mock_report_field(o->f, kind[0] == 'p' ? "" : pref, 0);
        mock_report_field(o->f, kind[0] == 'r' ? id : "", 0);
        mock_report_field(o->f, kind[0] == 'p' ? id : "", 0);
        mock_report_field(o->f, kind[0] == 'd' ? nonce : "", 0);
        mock_report_field(o->f, kind[0] == 'r' ? nonce : "", 0);
        mock_report_field(o->f, kind[0] == 'p' ? nonce : "", 1);

    } else if (strcmp(o->dialect, "adyen") == 0) {
        cat = out ? (seq > 1 ? "SecondChargeback" : "Chargeback")
              : strcmp(kind, "dispute_won") == 0 ? "ChargebackReversed"
              : strcmp(kind, "refund_failure") == 0 ? "RefundedReversed"
              : "TransferReturned";
        /* a refund's failure is named by the refund's id, a dispute's
         * rows by the dispute's and their sequence */
        if (kind[0] == 'd') {
            snprintf(mod, sizeof(mod), "%s-%lld%s", id, seq,
                     extra ? "-x" : "");
        } else {
            snprintf(mod, sizeof(mod), "%s%s", id, extra ? "-x" : "");
        }
        mock_report_money(buf, sizeof(buf), amount, o->dialect, o->cur_lc,
                          0);
        mock_report_adyen_row(o, kind[0] == 'p' ? id : pref, nonce,
                              kind[0] == 'p' ? "" : "visa", cat, mod,
                              out ? buf : "", out ? "" : buf,
                              out ? buf : "", out ? "" : buf, "");

    } else {
        if (extra || (out && seq > 1)) {
            return;
        }
        mock_report_field(o->f, nonce, 0);
        mock_report_field(o->f, id, 0);
        mock_report_field(o->f, kind, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, z, 0);
        mock_report_field(o->f, a, 0);
        mock_report_field(o->f, o->cur_uc, 0);
        mock_report_field(o->f, o->date, 0);
        mock_report_field(o->f, kind[0] == 'p' ? "" : pref, 1);
    }
}


/* A move knob's value OBJ[:N] names the move: its object (the PSP's id,
 * our nonce or the id in it, as mock_report_names) and, with :N, its N-th
 * move (no :N: every move of it).  A nonce holds a ':' itself, so :N is
 * only read when what follows the last ':' is all digits. */
static int
mock_report_names_move(const char *v, const json_t *mv)
{
    char         obj[200];
    const char  *colon, *p;
    long long    n = 0;

    snprintf(obj, sizeof(obj), "%s", v);
    colon = strrchr(obj, ':');
    if (colon != NULL && colon[1] != '\0') {
        for (p = colon + 1; *p >= '0' && *p <= '9'; p++) { /* void */ }
        if (*p == '\0') {
            n = strtoll(colon + 1, NULL, 10);
            obj[colon - obj] = '\0';
        }
    }

    if (n > 0 && json_integer_value(json_object_get(mv, "n")) != n) {
        return 0;
    }

    return mock_report_names(obj, json_string_value(json_object_get(mv, "id")),
                             json_string_value(json_object_get(mv, "nonce")));
}


/* A refund of the session's payment that only the PSP knows. */
static void
mock_report_refund(mock_report_out_t *o, const char *id, const char *pref,
    long long amount)
{
    char  rid[160], ref[160], digits[17];

    if (strcmp(o->dialect, "stripe") == 0) {
        snprintf(rid, sizeof(rid), "re_%s", id);
        snprintf(ref, sizeof(ref), "%s", pref ? pref : "");
        if (pref == NULL) {
            snprintf(ref, sizeof(ref), "pi_%s", id);
        }
    } else if (strcmp(o->dialect, "adyen") == 0) {
        mock_report_digits(digits, id, 1);
        snprintf(rid, sizeof(rid), "%s", digits);
        mock_report_digits(digits, id, 0);
        snprintf(ref, sizeof(ref), "%s", pref ? pref : digits);
    } else {
        snprintf(rid, sizeof(rid), "rfd_%s", id);
        snprintf(ref, sizeof(ref), "%s", pref ? pref : "");
        if (pref == NULL) {
            snprintf(ref, sizeof(ref), "pay_%s", id);
        }
    }

    mock_report_op(o, 1, rid, "", ref, amount);
}


static void
mock_report_q_free(mock_report_q_t *q)
{
    size_t  k;

    for (k = 0; k < q->nop_amount; k++) {
        free(q->op_amount_id[k]);
    }
    for (k = 0; k < q->namount; k++) {
        free(q->amount_id[k]);
    }
}


/* A knob's value names the operation: its PSP id, our nonce, or the id in
 * our nonce (<merchant>:<id>). */
static int
mock_report_names(const char *v, const char *id, const char *nonce)
{
    const char  *colon = strchr(nonce, ':');

    return strcmp(v, id) == 0 || strcmp(v, nonce) == 0
           || (colon != NULL && strcmp(v, colon + 1) == 0);
}


/* "prefix" of a nonce: "M:" */
static int
mock_report_of_merchant(const char *nonce, const char *merchant)
{
    size_t  n;

    if (merchant == NULL || nonce == NULL) {
        return 0;
    }
    n = strlen(merchant);
    return n > 0 && strncmp(nonce, merchant, n) == 0 && nonce[n] == ':';
}


/* path follows "reports/" */
enum MHD_Result
mock_report(struct MHD_Connection *c, const char *method, const char *path)
{
    mock_report_q_t     q;
    mock_report_out_t   o;
    char               *ids[MOCK_REPORT_MAX_SESSIONS], *tok, *save, *buf;
    size_t              nids, i, k, len;
    json_t             *s, *wfs;
    mock_webhook_fault_t wf;
    long long           gross;
    const char         *status, *pstatus, *currency, *nonce, *pref;
    json_t             *ops, *op, *caps, *cap, *moves;
    size_t              x;
    const char         *kind, *oid, *once;
    char                pid[160];
    time_t              now;
    struct tm           tm;
    mock_header_t       header;
    enum MHD_Result     rc;
    int                 have_currency = 0;

    if (strcmp(method, "GET") != 0) {
        header.name = MHD_HTTP_HEADER_ALLOW;
        header.value = "GET";
        return mock_send(c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                         "{\"error\":\"method not allowed\"}", 30,
                         &header, 1);
    }

    if (strcmp(path, "stripe") != 0 && strcmp(path, "adyen") != 0
        && strcmp(path, "generic") != 0)
    {
        return mock_report_error(c, MHD_HTTP_NOT_FOUND,
                                 "reports/stripe, reports/adyen or "
                                 "reports/generic");
    }

    memset(&q, 0, sizeof(q));
    q.dialect = path;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, mock_report_arg, &q);

    if (q.bad != NULL || q.sessions == NULL) {
        free(q.sessions);
        free((char *) q.refund_id);
        mock_report_q_free(&q);
        return mock_report_error(c, MHD_HTTP_BAD_REQUEST,
                                 q.bad != NULL ? "unknown or malformed "
                                 "parameter" : "sessions= is required");
    }

    nids = 0;
    for (tok = strtok_r(q.sessions, ",", &save); tok != NULL
         && nids < MOCK_REPORT_MAX_SESSIONS;
         tok = strtok_r(NULL, ",", &save))
    {
        ids[nids++] = tok;
    }

    memset(&o, 0, sizeof(o));
    o.dialect = q.dialect;
    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(o.date, sizeof(o.date), "%Y-%m-%d %H:%M:%S", &tm);
    mock_report_set_currency(&o, "eur");

    buf = NULL;
    len = 0;
    o.f = open_memstream(&buf, &len);
    if (o.f == NULL) {
        free(q.sessions);
        return mock_report_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory");
    }

    mock_report_header(&o);

    for (i = 0; i < nids; i++) {
        if (q.paid != NULL && strcmp(ids[i], q.paid) == 0) {
            /* paid now, and no webhook will ever say so */
            if (mock_session_pay(ids[i], &wfs, &wf) == MOCK_SESSION_OPEN) {
                mock_log("report: session %s paid without a webhook", ids[i]);
            }
            json_decref(wfs);
        }

        if (mock_session_get(ids[i], &s) != MOCK_SESSION_COMPLETE) {
            json_decref(s);
            continue;
        }

        status = json_string_value(json_object_get(s, "status"));
        pstatus = json_string_value(json_object_get(s, "payment_status"));
        currency = json_string_value(json_object_get(s, "currency"));
        nonce = json_string_value(json_object_get(s, "client_reference_id"));
        pref = json_string_value(json_object_get(s, "payment_ref"));
        gross = (long long) json_integer_value(json_object_get(s,
                                                               "amount_total"));

        if (status == NULL || strcmp(status, "complete") != 0
            || pstatus == NULL || strcmp(pstatus, "paid") != 0
            || currency == NULL)
        {
            json_decref(s);
            continue;
        }

        mock_report_set_currency(&o, currency);
        have_currency = 1;

        if (q.drop == NULL || strcmp(ids[i], q.drop) != 0) {
            for (k = 0; k < q.namount; k++) {
                if (strcmp(ids[i], q.amount_id[k]) == 0) {
                    gross += q.amount_delta[k];
                }
            }
            for (k = 0; k < q.nno_nonce; k++) {
                if (strcmp(ids[i], q.no_nonce[k]) == 0) {
                    nonce = NULL;
                }
            }
            caps = pref != NULL ? mock_books_captures(pref) : NULL;
            if (json_array_size(caps) > 0
                && strcmp(q.dialect, "stripe") != 0)
            {
                /* a row per capture (the amount knobs: the first's) */
                for (k = 0; k < json_array_size(caps); k++) {
                    cap = json_array_get(caps, k);
                    mock_report_capture(&o,
                        json_string_value(json_object_get(cap, "id")), pref,
                        nonce ? nonce : "",
                        (long long) json_integer_value(json_object_get(cap,
                                                                 "amount"))
                        + (k == 0 ? gross - (long long) json_integer_value(
                               json_object_get(s, "amount_total")) : 0));
                }
            } else if (json_array_size(caps) > 0) {
                /* Stripe's one capture: the payment's row, what it took */
                gross -= (long long) json_integer_value(json_object_get(s,
                                                         "amount_total"));
                for (k = 0; k < json_array_size(caps); k++) {
                    gross += (long long) json_integer_value(json_object_get(
                                 json_array_get(caps, k), "amount"));
                }
                mock_report_payment(&o, ids[i], pref, nonce ? nonce : "",
                                    gross);
            } else {
                mock_report_payment(&o, ids[i], pref, nonce ? nonce : "",
                                    gross);
            }
            json_decref(caps);
        }

        if (q.refund_id != NULL && strcmp(ids[i], q.refund_id) == 0) {
            mock_report_refund(&o, ids[i], pref, q.refund_amount);
        }

        json_decref(s);
    }

    if (q.unknown) {
        if (!have_currency) {
            mock_report_set_currency(&o, "eur");
        }
        mock_report_payment(&o, "unknown0000000000000001", NULL, "", 1234);
    }

    /* the merchant's refunds and transfers this dialect processed */
    if (q.merchant != NULL) {
        ops = mock_money_ops();
        for (i = 0; i < json_array_size(ops); i++) {
            op = json_array_get(ops, i);
            kind = json_string_value(json_object_get(op, "kind"));
            oid = json_string_value(json_object_get(op, "id"));
            once = json_string_value(json_object_get(op, "nonce"));
            currency = json_string_value(json_object_get(op,
                                                         "currency_code"));
            if (kind == NULL || oid == NULL || currency == NULL
                || strcmp(json_string_value(json_object_get(op, "dialect")),
                          q.dialect) != 0
                || !mock_report_of_merchant(once, q.merchant))
            {
                continue;
            }
            for (k = 0; k < q.ndrop_op; k++) {
                if (mock_report_names(q.drop_op[k], oid, once)) {
                    break;
                }
            }
            if (k < q.ndrop_op) {
                continue;
            }
            gross = (long long) json_integer_value(json_object_get(op,
                                                         "amount_value"));
            for (k = 0; k < q.nop_amount; k++) {
                if (mock_report_names(q.op_amount_id[k], oid, once)) {
                    gross += q.op_amount_delta[k];
                }
            }
            mock_report_set_currency(&o, currency);
            have_currency = 1;
            mock_report_op(&o, strcmp(kind, "refund") == 0, oid, once,
                json_string_value(json_object_get(op, "payment_ref_of")),
                gross);
        }
        json_decref(ops);

        /* what the PSP moved after them: disputes and their reversals,
         * refund failures, transfers taken back (mock_report_move) */
        moves = mock_money_moves();
        for (i = 0; i < json_array_size(moves); i++) {
            op = json_array_get(moves, i);
            once = json_string_value(json_object_get(op, "nonce"));
            currency = json_string_value(json_object_get(op, "currency"));
            if (currency == NULL
                || strcmp(json_string_value(json_object_get(op, "dialect")),
                          q.dialect) != 0
                || !mock_report_of_merchant(once, q.merchant))
            {
                continue;
            }
            mock_report_set_currency(&o, currency);
            have_currency = 1;
            for (k = 0; k < q.ndrop_move; k++) {
                if (mock_report_names_move(q.drop_move[k], op)) {
                    break;
                }
            }
            if (k == q.ndrop_move) {
                mock_report_move(&o, op, 0);
            }
            for (x = 0; x < q.nextra_move; x++) {
                if (mock_report_names_move(q.extra_move[x], op)) {
                    mock_report_move(&o, op, 1);
                }
            }
        }
        json_decref(moves);

        if (q.payout_amount > 0) {
            if (!have_currency) {
                mock_report_set_currency(&o, "eur");
            }
            /* a transfer the PSP has and we do not: no nonce of ours */
            if (strcmp(q.dialect, "adyen") == 0) {
                mock_report_digits(pid, q.merchant, 7);
            } else {
                snprintf(pid, sizeof(pid), "%s_psponly_%s",
                         strcmp(q.dialect, "stripe") == 0 ? "tr" : "gpo",
                         q.merchant);
            }
            mock_report_op(&o, 0, pid, "", NULL, q.payout_amount);
        }
    }

    fclose(o.f);

    free(q.sessions);
    free((char *) q.refund_id);
    mock_report_q_free(&q);

    header.name = "Content-Disposition";
    header.value = "attachment; filename=\"settlement.csv\"";
    rc = mock_send(c, MHD_HTTP_OK, "text/csv; charset=utf-8", buf, len,
                   &header, 1);
    free(buf);

    return rc;
}
