/*
 * ngx_payments core: PSP settlement reports (include/payments/settlement.h).
 * The CSV itself is read by libcsv; this file maps header names to columns,
 * checks them, and turns each record into a pay_sr_row_t.
 */

#include <ctype.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <csv.h>
#include <payments/money.h>
#include <payments/settlement.h>

#define PAY_SR_MAX_FIELDS  256      /* per record */
#define PAY_SR_VALUE_MAX   256      /* a kept value, NUL included */

/* The columns this file reads; every other known column is C_IGNORED. */
enum {
    C_IGNORED = -1,
    C_ROW_ID = 0,       /* stripe balance_transaction_id */
    C_CURRENCY,
    C_GROSS,
    C_FEE,
    C_NET,
    C_TYPE,             /* reporting_category, Type, type */
    C_PAYMENT_REF,      /* payment_intent_id, generic payment_ref */
    C_CHARGE_ID,
    C_SOURCE_ID,
    C_REFUND_ID,
    C_DISPUTE_ID,
    C_TRANSFER_ID,
    C_PAYOUT_ID,
    C_NONCE_PAYMENT,    /* payment_metadata[nonce] */
    C_NONCE_REFUND,     /* refund_metadata[nonce] */
    C_NONCE_TRANSFER,   /* transfer_metadata[nonce] */
    C_DATE,
    C_DATE_ALT,
    C_PSP_REF,          /* adyen Psp Reference, generic psp_ref */
    C_REFERENCE,        /* adyen Merchant Reference, generic reference */
    C_MOD_REF,          /* adyen Modification Reference */
    C_MOD_MREF,         /* adyen Modification Merchant Reference */
    C_BATCH,
    C_GROSS_CUR,
    C_GROSS_DEBIT,
    C_GROSS_CREDIT,
    C_NET_CUR,
    C_NET_DEBIT,
    C_NET_CREDIT,
    C_COMMISSION,
    C_MARKUP,
    C_SCHEME,
    C_INTERCHANGE,
    C_CF_AMOUNT,        /* stripe customer_facing_amount */
    C_CF_CURRENCY,      /* stripe customer_facing_currency */
    C_COUNT
};

typedef struct {
    const char  *name;
    int          col;
    int          required;
} pay_sr_col_t;

/*
 * Stripe's itemized balance change and payout reconciliation reports: every
 * column of their published schema (the report's "columns" parameter picks
 * a subset, so only six are required).
 */
static const pay_sr_col_t  pay_sr_stripe_cols[] = {
    { "balance_transaction_id", C_ROW_ID, 1 },
    { "currency", C_CURRENCY, 1 },
    { "gross", C_GROSS, 1 },
    { "fee", C_FEE, 1 },
    { "net", C_NET, 1 },
    { "reporting_category", C_TYPE, 1 },
    { "payment_intent_id", C_PAYMENT_REF, 0 },
    { "charge_id", C_CHARGE_ID, 0 },
    { "source_id", C_SOURCE_ID, 0 },
    { "refund_id", C_REFUND_ID, 0 },
    { "dispute_id", C_DISPUTE_ID, 0 },
    { "transfer_id", C_TRANSFER_ID, 0 },
    { "payout_id", C_PAYOUT_ID, 0 },
    { "created_utc", C_DATE, 0 },
    { "created", C_DATE_ALT, 0 },
    { "available_on_utc", C_IGNORED, 0 },
    { "available_on", C_IGNORED, 0 },
    { "description", C_IGNORED, 0 },
    { "customer_facing_amount", C_CF_AMOUNT, 0 },
    { "customer_facing_currency", C_CF_CURRENCY, 0 },
    { "regulatory_tag", C_IGNORED, 0 },
    { "automatic_payout_id", C_IGNORED, 0 },
    { "automatic_payout_effective_at_utc", C_IGNORED, 0 },
    { "automatic_payout_effective_at", C_IGNORED, 0 },
    { "customer_id", C_IGNORED, 0 },
    { "customer_email", C_IGNORED, 0 },
    { "customer_name", C_IGNORED, 0 },
    { "customer_description", C_IGNORED, 0 },
    { "shipping_address_line1", C_IGNORED, 0 },
    { "shipping_address_line2", C_IGNORED, 0 },
    { "shipping_address_city", C_IGNORED, 0 },
    { "shipping_address_state", C_IGNORED, 0 },
    { "shipping_address_postal_code", C_IGNORED, 0 },
    { "shipping_address_country", C_IGNORED, 0 },
    { "charge_created_utc", C_IGNORED, 0 },
    { "charge_created", C_IGNORED, 0 },
    { "invoice_id", C_IGNORED, 0 },
    { "invoice_number", C_IGNORED, 0 },
    { "subscription_id", C_IGNORED, 0 },
    { "order_id", C_IGNORED, 0 },
    { "payment_method_type", C_IGNORED, 0 },
    { "is_link", C_IGNORED, 0 },
    { "card_brand", C_IGNORED, 0 },
    { "card_funding", C_IGNORED, 0 },
    { "card_country", C_IGNORED, 0 },
    { "statement_descriptor", C_IGNORED, 0 },
    { "dispute_reason", C_IGNORED, 0 },
    { "connected_account_id", C_IGNORED, 0 },
    { "connected_account_name", C_IGNORED, 0 },
    { "connected_account_country", C_IGNORED, 0 },
    { "connected_account_direct_charge_id", C_IGNORED, 0 },
    { "destination_payment_id", C_IGNORED, 0 },
    { "payout_expected_arrival_date", C_IGNORED, 0 },
    { "payout_status", C_IGNORED, 0 },
    { "payout_reversed_at", C_IGNORED, 0 },
    { "payout_type", C_IGNORED, 0 },
    { "payout_description", C_IGNORED, 0 },
    { "payout_destination_id", C_IGNORED, 0 },
    { "tax_amount", C_IGNORED, 0 },
    { NULL, 0, 0 }
};

/* Adyen's Settlement details report (the columns of its current layout). */
static const pay_sr_col_t  pay_sr_adyen_cols[] = {
    { "Psp Reference", C_PSP_REF, 1 },
    { "Merchant Reference", C_REFERENCE, 1 },
    { "Type", C_TYPE, 1 },
    { "Gross Currency", C_GROSS_CUR, 1 },
    { "Gross Debit (GC)", C_GROSS_DEBIT, 1 },
    { "Gross Credit (GC)", C_GROSS_CREDIT, 1 },
    { "Net Currency", C_NET_CUR, 1 },
    { "Net Debit (NC)", C_NET_DEBIT, 1 },
    { "Net Credit (NC)", C_NET_CREDIT, 1 },
    { "Commission (NC)", C_COMMISSION, 0 },
    { "Markup (NC)", C_MARKUP, 0 },
    { "Scheme Fees (NC)", C_SCHEME, 0 },
    { "Interchange (NC)", C_INTERCHANGE, 0 },
    { "Modification Reference", C_MOD_REF, 0 },
    { "Modification Merchant Reference", C_MOD_MREF, 0 },
    { "Creation Date", C_DATE, 0 },
    { "Batch Number", C_BATCH, 0 },
    { "Company Account", C_IGNORED, 0 },
    { "Merchant Account", C_IGNORED, 0 },
    { "Payment Method", C_IGNORED, 0 },
    { "Payment Method Variant", C_IGNORED, 0 },
    { "TimeZone", C_IGNORED, 0 },
    { "Exchange Rate", C_IGNORED, 0 },
    { "Booking Date", C_IGNORED, 0 },
    { "Booking Date TimeZone", C_IGNORED, 0 },
    { "Value Date", C_IGNORED, 0 },
    { "Value Date TimeZone", C_IGNORED, 0 },
    { "Shopper Reference", C_IGNORED, 0 },
    { "Shopper Country", C_IGNORED, 0 },
    { "Issuer Country", C_IGNORED, 0 },
    { "Acquirer", C_IGNORED, 0 },
    { "Reserved4", C_IGNORED, 0 },
    { "Reserved5", C_IGNORED, 0 },
    { "Reserved6", C_IGNORED, 0 },
    { "Reserved7", C_IGNORED, 0 },
    { "Reserved8", C_IGNORED, 0 },
    { "Reserved9", C_IGNORED, 0 },
    { "Reserved10", C_IGNORED, 0 },
    { "Advanced (NC)", C_IGNORED, 0 },
    { "Advancement Code", C_IGNORED, 0 },
    { "Advancement Batch", C_IGNORED, 0 },
    { "Booking Type", C_IGNORED, 0 },
    { "Acquirer Reference", C_IGNORED, 0 },
    { "Split Settlement", C_IGNORED, 0 },
    { "Split Payment Data", C_IGNORED, 0 },
    { "Funds Destination", C_IGNORED, 0 },
    { "Balance Platform Debit", C_IGNORED, 0 },
    { "Balance Platform Credit", C_IGNORED, 0 },
    { NULL, 0, 0 }
};

/* doc/RECONCILIATION.md */
static const pay_sr_col_t  pay_sr_generic_cols[] = {
    { "reference", C_REFERENCE, 1 },
    { "psp_ref", C_PSP_REF, 1 },
    { "type", C_TYPE, 1 },
    { "gross", C_GROSS, 1 },
    { "fee", C_FEE, 1 },
    { "net", C_NET, 1 },
    { "currency", C_CURRENCY, 1 },
    { "date", C_DATE, 1 },
    { "payment_ref", C_PAYMENT_REF, 0 },
    { "description", C_IGNORED, 0 },
    { NULL, 0, 0 }
};

static const char *const  pay_sr_dialect_names[] = {
    "?", "stripe", "adyen", "generic"
};

/* A row id read, and its record: sorted after the parse to find repeats. */
typedef struct {
    char                *row_id;
    long                 record;
} pay_sr_seen_t;

typedef struct {
    pay_dialect_e        d;
    const pay_sr_col_t  *cols;
    pay_sr_row_pt        cb;
    void                *ctx;

    long                 record;    /* the record being read, 1-based */
    size_t               field;     /* its next field */
    size_t               nheader;
    int                  map[PAY_SR_MAX_FIELDS];  /* field -> C_* */
    int                  present[C_COUNT];

    char                 val[C_COUNT][PAY_SR_VALUE_MAX];
    size_t               vlen[C_COUNT];

    long                 rows;
    pay_sr_seen_t       *seen;      /* every row's id, rows of them */
    size_t               seen_size;
    int                  failed;
    char                *err;
    size_t               err_size;
} pay_sr_state_t;


static void pay_sr_fail(pay_sr_state_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


static void
pay_sr_fail(pay_sr_state_t *st, const char *fmt, ...)
{
    va_list  ap;

    if (st->failed) {
        return;
    }

    st->failed = 1;

    if (st->err != NULL && st->err_size > 0) {
        va_start(ap, fmt);
        vsnprintf(st->err, st->err_size, fmt, ap);
        va_end(ap);
    }
}


const char *
pay_sr_type_name(pay_sr_type_e t)
{
    static const char *const  names[] = {
        "?", "payment", "refund", "refund_failure", "dispute", "dispute_won",
        "payout", "payout_failure", "fee", "bank_payout", "other"
    };

    return (t >= PAY_SR_PAYMENT && t <= PAY_SR_OTHER) ? names[t] : "?";
}


static int pay_sr_put(pay_sr_state_t *st, char *dst, size_t size,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));


/* Formats into a fixed field of the row; a value that does not fit fails
 * the parse (never a silently shortened reference). */
static int
pay_sr_put(pay_sr_state_t *st, char *dst, size_t size, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);

    if (n < 0 || (size_t) n >= size) {
        pay_sr_fail(st, "record %ld: a reference or date longer than %zu "
                    "bytes", st->record, size - 1);
        return -1;
    }

    return 0;
}


/* prefix + s into a fixed field of the row. */
static void
pay_sr_set(pay_sr_state_t *st, char *dst, size_t size, const char *prefix,
    const char *s)
{
    (void) pay_sr_put(st, dst, size, "%s%s", prefix, s);
}


int
pay_sr_amount(pay_dialect_e d, const char *currency, const char *s,
    size_t len, int empty_ok, int64_t *iso)
{
    int              neg, exp;
    int64_t          psp, out;
    pay_amount_rc_e  rc;

    if (len == 0) {
        if (!empty_ok) {
            return -1;
        }
        *iso = 0;
        return 0;
    }

    neg = (s[0] == '-');
    if (neg) {
        s++;
        len--;
    }

    exp = pay_psp_exponent(d, currency);
    if (exp < 0) {
        return -1;
    }

    rc = pay_amount_parse(s, len, exp, &psp);
    if (rc == PAY_AMOUNT_ZERO) {
        *iso = 0;
        return 0;
    }

    if (rc != PAY_AMOUNT_OK
        || pay_psp_amount_from_psp(d, currency, psp, &out) != 0)
    {
        return -1;
    }

    /* INT64_MAX at most: its negation is representable */
    *iso = neg ? -out : out;

    return 0;
}


static const char *
pay_sr_v(pay_sr_state_t *st, int col)
{
    return st->present[col] ? st->val[col] : "";
}


/* The header name of a column, for messages. */
static const char *
pay_sr_colname(pay_sr_state_t *st, int col)
{
    const pay_sr_col_t  *c;

    for (c = st->cols; c->name != NULL; c++) {
        if (c->col == col) {
            return c->name;
        }
    }

    return "?";
}


/* A currency cell: 3 letters of either case, an ISO code. */
static int
pay_sr_currency(pay_sr_state_t *st, int col, char out[4])
{
    size_t  i;

    if (st->vlen[col] != 3) {
        return -1;
    }

    for (i = 0; i < 3; i++) {
        out[i] = (char) toupper((unsigned char) st->val[col][i]);
    }
    out[3] = '\0';

    return pay_currency_find(out, 3) != NULL ? 0 : -1;
}


static int
pay_sr_amount_col(pay_sr_state_t *st, const char *cur, int col,
    int empty_ok, int64_t *out)
{
    if (!st->present[col]) {
        *out = 0;
        return 0;
    }

    if (pay_sr_amount(st->d, cur, st->val[col], st->vlen[col], empty_ok,
                      out) != 0)
    {
        pay_sr_fail(st, "record %ld: column %s: \"%.40s\" is not an amount "
                    "in %s", st->record, pay_sr_colname(st, col),
                    st->val[col], cur);
        return -1;
    }

    return 0;
}


static int
pay_sr_word(const char *s, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strcasecmp(s, *words) == 0) {
            return 1;
        }
    }
    return 0;
}


static int
pay_sr_sub(pay_sr_state_t *st, int64_t a, int64_t b, int64_t *out,
    const char *what)
{
    if (__builtin_sub_overflow(a, b, out)) {
        pay_sr_fail(st, "record %ld: %s overflows", st->record, what);
        return -1;
    }
    return 0;
}


/*
 * A PSP's amount as it wrote it: v * 10^-e, exactly.  e is the cell's
 * decimals, at least the dialect's exponent (so that cells of one row add
 * up in one exponent).
 */
typedef struct {
    int64_t  v;
    int      e;
} pay_sr_dec_t;

#define PAY_SR_DEC_MAX  18      /* decimals: 10^18 is the largest power of
                                   ten an int64 holds */


/* 10^n, n <= 18 */
static int64_t
pay_sr_pow10(int n)
{
    int64_t  p = 1;

    while (n-- > 0) {
        p *= 10;
    }
    return p;
}


/*
 * A cell of the dialect's amounts, kept exact: an optional '-', then
 * pay_amount_parse's grammar, with at most the dialect's decimals when
 * strict (a gross: an amount we sent), else up to 18 (a fee or a net: the
 * PSP's own computation).  "" is 0 when empty_ok.
 */
static int
pay_sr_dec_col(pay_sr_state_t *st, const char *cur, int col, int empty_ok,
    int strict, pay_sr_dec_t *out)
{
    const char       *s, *dot;
    size_t            len;
    int               neg, e, psp_e, max_e;
    pay_amount_rc_e   rc;

    psp_e = pay_psp_exponent(st->d, cur);
    max_e = strict ? psp_e : PAY_SR_DEC_MAX;
    out->v = 0;
    out->e = psp_e < 0 ? 0 : psp_e;

    if (!st->present[col] || (st->vlen[col] == 0 && empty_ok)) {
        return 0;
    }

    s = st->val[col];
    len = st->vlen[col];
    neg = (len > 0 && s[0] == '-');
    if (neg) {
        s++;
        len--;
    }

    dot = memchr(s, '.', len);
    e = dot != NULL ? (int) (len - (size_t) (dot - s) - 1) : 0;
    if (e < psp_e) {
        e = psp_e;
    }

    rc = PAY_AMOUNT_SYNTAX;
    if (psp_e >= 0 && len > 0 && e <= max_e) {
        rc = pay_amount_parse(s, len, e, &out->v);
    }

    if (rc == PAY_AMOUNT_ZERO) {
        out->v = 0;
    } else if (rc != PAY_AMOUNT_OK) {
        pay_sr_fail(st, "record %ld: column %s: \"%.40s\" is not an amount "
                    "in %s", st->record, pay_sr_colname(st, col),
                    st->val[col], cur);
        return -1;
    }

    out->e = e;
    /* INT64_MAX at most: its negation is representable */
    if (neg) {
        out->v = -out->v;
    }

    return 0;
}


/* d in exponent e >= d->e, exactly; -1 when it does not fit */
static int
pay_sr_dec_rescale(pay_sr_dec_t *d, int e)
{
    if (e > PAY_SR_DEC_MAX
        || __builtin_mul_overflow(d->v, pay_sr_pow10(e - d->e), &d->v))
    {
        return -1;
    }
    d->e = e;
    return 0;
}


/* *a = *a + sign * b, exactly, in the larger of their exponents */
static int
pay_sr_dec_add(pay_sr_state_t *st, pay_sr_dec_t *a, pay_sr_dec_t b,
    int sign, const char *what)
{
    int  e = a->e > b.e ? a->e : b.e;

    if (pay_sr_dec_rescale(a, e) != 0 || pay_sr_dec_rescale(&b, e) != 0
        || (sign < 0 ? __builtin_sub_overflow(a->v, b.v, &a->v)
                     : __builtin_add_overflow(a->v, b.v, &a->v)))
    {
        pay_sr_fail(st, "record %ld: %s overflows", st->record, what);
        return -1;
    }

    return 0;
}


/* a == b as numbers (12.3 == 12.30); 0 when either cannot be brought to
 * the other's exponent (then they are not equal: no int64 holds both) */
static int
pay_sr_dec_eq(pay_sr_dec_t a, pay_sr_dec_t b)
{
    int  e = a.e > b.e ? a.e : b.e;

    return pay_sr_dec_rescale(&a, e) == 0 && pay_sr_dec_rescale(&b, e) == 0
           && a.v == b.v;
}


/*
 * d in ISO minor units of cur, rounded half to even when it has more
 * decimals than ISO (12.50 -> 12, 13.50 -> 14, -12.50 -> -12): the sum of
 * many rounded fees then drifts from the PSP's by no bias.  *inexact is
 * set when digits were dropped.
 */
static int
pay_sr_dec_iso(pay_sr_state_t *st, pay_sr_dec_t d, const char *cur,
    int64_t *out, int *inexact, const char *what)
{
    const pay_currency_t  *iso;
    int64_t                a, scale, q, rem;

    iso = pay_currency_find(cur, 3);
    *inexact = 0;

    if (iso == NULL || d.v == INT64_MIN) {
        pay_sr_fail(st, "record %ld: %s: no amount in %s", st->record, what,
                    cur);
        return -1;
    }

    if (d.e <= iso->exponent) {
        if (pay_sr_dec_rescale(&d, iso->exponent) != 0) {
            pay_sr_fail(st, "record %ld: %s overflows", st->record, what);
            return -1;
        }
        *out = d.v;
        return 0;
    }

    a = d.v < 0 ? -d.v : d.v;
    scale = pay_sr_pow10(d.e - iso->exponent);
    q = a / scale;
    rem = a % scale;

    if (rem != 0) {
        *inexact = 1;
        /* rem < scale <= 10^18: 2 * rem holds */
        if (2 * rem > scale || (2 * rem == scale && (q & 1) != 0)) {
            q++;
        }
    }

    *out = d.v < 0 ? -q : q;

    return 0;
}


/* d as the PSP's decimal ("-12.34") */
static void
pay_sr_dec_text(pay_sr_state_t *st, pay_sr_dec_t d, char *dst, size_t size)
{
    char  num[32];

    /* d.v > INT64_MIN: pay_sr_dec_iso refused that */
    if (pay_amount_format(d.v < 0 ? -d.v : d.v, d.e, num, sizeof(num)) < 0) {
        num[0] = '\0';
    }
    pay_sr_put(st, dst, size, "%s%s", d.v < 0 ? "-" : "", num);
}


/*
 * A row's gross, fee and net in ISO minor units.  The gross is an amount
 * we sent: one with no exact ISO value (100.50 ISK) is kept as the PSP
 * wrote it in gross_psp, for a person (gross holds it rounded, to show,
 * never to match or book).  The fee and the net are the PSP's own
 * computation, finer than ISO at times (Adyen's CLP and ISK, fees in
 * fractions of a minor unit): rounded half to even, the PSP's value kept
 * in fee_psp and net_psp.  When gross and net are in one currency and the
 * PSP's net is its gross less its fee, the net booked is the gross less
 * the fee booked: the row's own arithmetic holds in what is booked (a net
 * rounded on its own could be one unit off it).
 */
static int
pay_sr_amounts(pay_sr_state_t *st, pay_sr_row_t *r, pay_sr_dec_t gross,
    pay_sr_dec_t fee, pay_sr_dec_t net)
{
    int           inexact, derive;
    pay_sr_dec_t  left;

    if (pay_sr_dec_iso(st, gross, r->currency, &r->gross, &inexact,
                       "gross") != 0)
    {
        return -1;
    }

    if (inexact) {
        pay_sr_dec_text(st, gross, r->gross_psp, sizeof(r->gross_psp));
    }

    /* the PSP's own gross - fee, against its net */
    left = gross;
    derive = !inexact && strcmp(r->currency, r->net_currency) == 0
             && pay_sr_dec_add(st, &left, fee, -1, "gross - fee") == 0
             && pay_sr_dec_eq(left, net);
    if (st->failed) {
        return -1;
    }

    if (pay_sr_dec_iso(st, fee, r->net_currency, &r->fee, &inexact,
                       "fee") != 0)
    {
        return -1;
    }
    if (inexact) {
        pay_sr_dec_text(st, fee, r->fee_psp, sizeof(r->fee_psp));
    }

    if (pay_sr_dec_iso(st, net, r->net_currency, &r->net, &inexact,
                       "net") != 0)
    {
        return -1;
    }
    if (inexact) {
        pay_sr_dec_text(st, net, r->net_psp, sizeof(r->net_psp));
    }

    if (derive
        && pay_sr_sub(st, r->gross, r->fee, &r->net, "gross - fee") != 0)
    {
        return -1;
    }

    return st->failed ? -1 : 0;
}


/* A part of a row id joined with ':': a ':' of its own could make two
 * different rows one id. */
static int
pay_sr_no_colon(pay_sr_state_t *st, int col)
{
    if (memchr(st->val[col], ':', st->vlen[col]) != NULL) {
        pay_sr_fail(st, "record %ld: column %s: a ':' in a part of the row "
                    "id", st->record, pay_sr_colname(st, col));
        return -1;
    }
    return 0;
}


static int
pay_sr_stripe_row(pay_sr_state_t *st, pay_sr_row_t *r)
{
    const char    *cat, *obj, *nonce;
    pay_sr_dec_t   dgross, dfee, dnet, dcf;
    int64_t        cf_amount;
    int            inexact;
    char           cf[4];

    static const char *const  payment[] = { "charge", "payment", NULL };
    static const char *const  payout[] = { "transfer",
        "connect_reserved_funds", NULL };
    static const char *const  payout_back[] = { "transfer_reversal", NULL };
    static const char *const  bank[] = { "payout", "payout_reversal", NULL };
    static const char *const  fee[] = { "fee", "network_cost",
        "stripe_fee", "tax", NULL };

    if (st->vlen[C_ROW_ID] == 0) {
        pay_sr_fail(st, "record %ld: balance_transaction_id is empty",
                    st->record);
        return -1;
    }

    if (pay_sr_currency(st, C_CURRENCY, r->currency) != 0) {
        pay_sr_fail(st, "record %ld: column currency: \"%.40s\" is not an "
                    "ISO 4217 currency", st->record, st->val[C_CURRENCY]);
        return -1;
    }
    memcpy(r->net_currency, r->currency, 4);

    if (pay_sr_dec_col(st, r->currency, C_GROSS, 0, 1, &dgross) != 0
        || pay_sr_dec_col(st, r->currency, C_FEE, 0, 0, &dfee) != 0
        || pay_sr_dec_col(st, r->currency, C_NET, 0, 0, &dnet) != 0
        || pay_sr_amounts(st, r, dgross, dfee, dnet) != 0)
    {
        return -1;
    }

    /* what the customer paid, when the row is settled in another
     * currency: an amount we sent, exact or not said (then the row is
     * matched as any other, and a person sees its currency differ) */
    if (st->vlen[C_CF_CURRENCY] > 0 && st->vlen[C_CF_AMOUNT] > 0) {
        if (pay_sr_currency(st, C_CF_CURRENCY, cf) != 0) {
            pay_sr_fail(st, "record %ld: column customer_facing_currency: "
                        "\"%.40s\" is not an ISO 4217 currency", st->record,
                        st->val[C_CF_CURRENCY]);
            return -1;
        }
        if (pay_sr_dec_col(st, cf, C_CF_AMOUNT, 0, 1, &dcf) != 0
            || pay_sr_dec_iso(st, dcf, cf, &cf_amount, &inexact,
                              "customer_facing_amount") != 0)
        {
            return -1;
        }
        if (strcmp(cf, r->currency) != 0 && !inexact) {
            memcpy(r->customer_currency, cf, 4);
            r->customer_amount = cf_amount;
        }
    }

    cat = pay_sr_v(st, C_TYPE);
    nonce = "";
    obj = "";

    if (pay_sr_word(cat, payment)) {
        r->type = PAY_SR_PAYMENT;
        obj = pay_sr_v(st, C_CHARGE_ID);
        nonce = pay_sr_v(st, C_NONCE_PAYMENT);
    } else if (strcasecmp(cat, "refund") == 0
               || strcasecmp(cat, "refund_failure") == 0)
    {
        r->type = (cat[6] == '\0') ? PAY_SR_REFUND : PAY_SR_REFUND_FAILURE;
        obj = pay_sr_v(st, C_REFUND_ID);
        nonce = pay_sr_v(st, C_NONCE_REFUND);
    } else if (strcasecmp(cat, "dispute") == 0
               || strcasecmp(cat, "dispute_reversal") == 0)
    {
        r->type = (cat[7] == '\0') ? PAY_SR_DISPUTE : PAY_SR_DISPUTE_WON;
        obj = pay_sr_v(st, C_DISPUTE_ID);
        nonce = pay_sr_v(st, C_NONCE_PAYMENT);
    } else if (pay_sr_word(cat, payout) || pay_sr_word(cat, payout_back)) {
        r->type = pay_sr_word(cat, payout) ? PAY_SR_PAYOUT
                                           : PAY_SR_PAYOUT_FAILURE;
        obj = pay_sr_v(st, C_TRANSFER_ID);
        nonce = pay_sr_v(st, C_NONCE_TRANSFER);
    } else if (pay_sr_word(cat, bank)) {
        r->type = PAY_SR_BANK_PAYOUT;
        obj = pay_sr_v(st, C_PAYOUT_ID);
    } else if (pay_sr_word(cat, fee)) {
        r->type = PAY_SR_FEE;
    } else {
        r->type = PAY_SR_OTHER;
    }

    if (obj[0] == '\0') {
        obj = pay_sr_v(st, C_SOURCE_ID);
    }

    pay_sr_set(st, r->row_id, sizeof(r->row_id), "", pay_sr_v(st, C_ROW_ID));
    pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "",
               pay_sr_v(st, C_PAYMENT_REF));
    pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "", obj);
    pay_sr_set(st, r->reference, sizeof(r->reference), "", nonce);
    pay_sr_set(st, r->date, sizeof(r->date), "",
               st->present[C_DATE] ? pay_sr_v(st, C_DATE)
                                   : pay_sr_v(st, C_DATE_ALT));

    return 0;
}


static int
pay_sr_adyen_row(pay_sr_state_t *st, pay_sr_row_t *r)
{
    pay_sr_dec_t  dgross, gd, dnet, nd, dfee, f;
    const char   *t, *psp, *mref, *mod;
    int          k;
    char         gross_cur[4];

    static const char *const  payment[] = { "Settled", "SettledBulk",
        "SettledExternallyWithInfo", NULL };
    static const char *const  refund[] = { "Refunded", "RefundedBulk",
        "RefundedExternallyWithInfo", "RefundedInstallment", NULL };
    static const char *const  dispute[] = { "Chargeback",
        "SecondChargeback", "ChargebackExternallyWithInfo", NULL };
    static const char *const  fee[] = { "Fee", "MiscCosts", "PaymentCost",
        "InvoiceDeduction", "ManualCorrected", NULL };
    static const char *const  payout[] = { "Transfer", "Balancetransfer",
        NULL };

    static const int  fees[] = { C_COMMISSION, C_MARKUP, C_SCHEME,
                                 C_INTERCHANGE };

    if (pay_sr_currency(st, C_NET_CUR, r->net_currency) != 0) {
        pay_sr_fail(st, "record %ld: column Net Currency: \"%.40s\" is not "
                    "an ISO 4217 currency", st->record, st->val[C_NET_CUR]);
        return -1;
    }

    if (st->vlen[C_GROSS_CUR] == 0) {
        memcpy(gross_cur, r->net_currency, 4);
    } else if (pay_sr_currency(st, C_GROSS_CUR, gross_cur) != 0) {
        pay_sr_fail(st, "record %ld: column Gross Currency: \"%.40s\" is not "
                    "an ISO 4217 currency", st->record,
                    st->val[C_GROSS_CUR]);
        return -1;
    }
    memcpy(r->currency, gross_cur, 4);

    /* gross = credit - debit, net likewise, the fee the four columns'
     * sum: each exact, in the PSP's decimals, rounded (fee, net) once */
    if (pay_sr_dec_col(st, gross_cur, C_GROSS_DEBIT, 1, 1, &gd) != 0
        || pay_sr_dec_col(st, gross_cur, C_GROSS_CREDIT, 1, 1, &dgross) != 0
        || pay_sr_dec_add(st, &dgross, gd, -1, "gross") != 0
        || pay_sr_dec_col(st, r->net_currency, C_NET_DEBIT, 1, 0, &nd) != 0
        || pay_sr_dec_col(st, r->net_currency, C_NET_CREDIT, 1, 0, &dnet) != 0
        || pay_sr_dec_add(st, &dnet, nd, -1, "net") != 0)
    {
        return -1;
    }

    dfee.v = 0;
    dfee.e = 0;
    for (k = 0; k < 4; k++) {
        if (pay_sr_dec_col(st, r->net_currency, fees[k], 1, 0, &f) != 0
            || pay_sr_dec_add(st, &dfee, f, 1, "fee") != 0)
        {
            return -1;
        }
    }

    if (pay_sr_amounts(st, r, dgross, dfee, dnet) != 0) {
        return -1;
    }

    t = pay_sr_v(st, C_TYPE);
    psp = pay_sr_v(st, C_PSP_REF);
    mref = pay_sr_v(st, C_REFERENCE);
    mod = pay_sr_v(st, C_MOD_REF);

    if (t[0] == '\0') {
        pay_sr_fail(st, "record %ld: Type is empty", st->record);
        return -1;
    }

    /* the payment's pspReference names the payment on every row that
     * belongs to one; the modification's own id is the object */
    if (pay_sr_word(t, payment)) {
        r->type = PAY_SR_PAYMENT;
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "", psp);
    } else if (pay_sr_word(t, refund)) {
        r->type = PAY_SR_REFUND;
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "", psp);
        pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "", mod);
    } else if (strcasecmp(t, "RefundedReversed") == 0) {
        r->type = PAY_SR_REFUND_FAILURE;
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "", psp);
        pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "", mod);
    } else if (pay_sr_word(t, dispute)
               || strcasecmp(t, "ChargebackReversed") == 0)
    {
        r->type = pay_sr_word(t, dispute) ? PAY_SR_DISPUTE
                                          : PAY_SR_DISPUTE_WON;
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "", psp);
        /* one dispute per payment, named as the webhooks name it */
        if (psp[0] != '\0') {
            pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "cb:", psp);
        }
    } else if (pay_sr_word(t, payout)
               || strcasecmp(t, "TransferReturned") == 0)
    {
        r->type = pay_sr_word(t, payout) ? PAY_SR_PAYOUT
                                         : PAY_SR_PAYOUT_FAILURE;
        pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "", psp);
    } else if (strcasecmp(t, "MerchantPayout") == 0) {
        r->type = PAY_SR_BANK_PAYOUT;
        pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "", psp);
    } else if (pay_sr_word(t, fee)) {
        r->type = PAY_SR_FEE;
    } else {
        r->type = PAY_SR_OTHER;
    }

    /* a modification row names its own merchant reference when the
     * report has the column; older layouts repeat the payment's */
    if (r->type != PAY_SR_PAYMENT && st->vlen[C_MOD_MREF] > 0) {
        mref = pay_sr_v(st, C_MOD_MREF);
    }
    pay_sr_set(st, r->reference, sizeof(r->reference), "", mref);

    /* two partial refunds (or two chargebacks) of one payment share Psp
     * Reference and Type: only the modification's id tells them apart */
    if ((r->type == PAY_SR_REFUND || r->type == PAY_SR_REFUND_FAILURE
         || r->type == PAY_SR_DISPUTE || r->type == PAY_SR_DISPUTE_WON)
        && mod[0] == '\0')
    {
        pay_sr_fail(st, "record %ld: a %s row without a Modification "
                    "Reference", st->record, pay_sr_type_name(r->type));
        return -1;
    }

    /* no part of the id holds a ':' of its own, so that two different
     * rows never make one id; but the date (12:00:00): the only such part,
     * between parts without, it still splits one way */
    if (pay_sr_no_colon(st, C_PSP_REF) != 0
        || pay_sr_no_colon(st, C_TYPE) != 0
        || pay_sr_no_colon(st, C_MOD_REF) != 0
        || (psp[0] == '\0' && pay_sr_no_colon(st, C_BATCH) != 0))
    {
        return -1;
    }

    if (psp[0] != '\0') {
        pay_sr_put(st, r->row_id, sizeof(r->row_id), "%s:%s%s%s", psp, t,
                 mod[0] != '\0' ? ":" : "", mod);
    } else {
        /* fee and payout lines carry no pspReference */
        pay_sr_put(st, r->row_id, sizeof(r->row_id), "%s:%s:%s:%s", t,
                 pay_sr_v(st, C_BATCH), pay_sr_v(st, C_DATE), mod);
    }

    pay_sr_set(st, r->date, sizeof(r->date), "", pay_sr_v(st, C_DATE));

    return 0;
}


static int
pay_sr_generic_row(pay_sr_state_t *st, pay_sr_row_t *r)
{
    int64_t        net;
    pay_sr_type_e  t;
    const char    *w;

    w = pay_sr_v(st, C_TYPE);
    for (t = PAY_SR_PAYMENT; t < PAY_SR_OTHER; t++) {
        if (strcmp(w, pay_sr_type_name(t)) == 0) {
            break;
        }
    }

    if (t == PAY_SR_OTHER) {
        pay_sr_fail(st, "record %ld: column type: \"%.40s\" is not one of "
                    "payment, refund, refund_failure, dispute, dispute_won, "
                    "payout, payout_failure, fee, bank_payout", st->record, w);
        return -1;
    }
    r->type = t;

    if (st->vlen[C_PSP_REF] == 0) {
        pay_sr_fail(st, "record %ld: psp_ref is empty", st->record);
        return -1;
    }

    if (pay_sr_currency(st, C_CURRENCY, r->currency) != 0
        || strcmp(r->currency, st->val[C_CURRENCY]) != 0)
    {
        pay_sr_fail(st, "record %ld: column currency: \"%.40s\" is not an "
                    "upper-case ISO 4217 currency", st->record,
                    st->val[C_CURRENCY]);
        return -1;
    }
    memcpy(r->net_currency, r->currency, 4);

    if (pay_sr_amount_col(st, r->currency, C_GROSS, 0, &r->gross) != 0
        || pay_sr_amount_col(st, r->currency, C_FEE, 0, &r->fee) != 0
        || pay_sr_amount_col(st, r->currency, C_NET, 0, &r->net) != 0)
    {
        return -1;
    }

    /* the format's own rules (doc/RECONCILIATION.md): a fee is charged,
     * and net is what is left of gross; a row breaking them is no row of
     * this format, and its amounts cannot all be right */
    if (r->fee < 0) {
        pay_sr_fail(st, "record %ld: column fee: negative", st->record);
        return -1;
    }

    if (pay_sr_sub(st, r->gross, r->fee, &net, "gross - fee") != 0) {
        return -1;
    }

    if (r->net != net) {
        pay_sr_fail(st, "record %ld: column net: not gross - fee",
                    st->record);
        return -1;
    }

    if (t == PAY_SR_PAYMENT && pay_sr_v(st, C_PAYMENT_REF)[0] != '\0') {
        /* one capture of a payment captured in parts: psp_ref the
         * capture's id (each its own row id), payment_ref the payment's */
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "",
                   pay_sr_v(st, C_PAYMENT_REF));
        pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "",
                   pay_sr_v(st, C_PSP_REF));
    } else if (t == PAY_SR_PAYMENT) {
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "",
                   pay_sr_v(st, C_PSP_REF));
    } else {
        pay_sr_set(st, r->payment_ref, sizeof(r->payment_ref), "",
                   pay_sr_v(st, C_PAYMENT_REF));
        pay_sr_set(st, r->object_ref, sizeof(r->object_ref), "",
                   pay_sr_v(st, C_PSP_REF));
    }

    pay_sr_set(st, r->reference, sizeof(r->reference), "",
               pay_sr_v(st, C_REFERENCE));
    pay_sr_put(st, r->row_id, sizeof(r->row_id), "%s:%s", pay_sr_v(st, C_PSP_REF),
             w);
    pay_sr_set(st, r->date, sizeof(r->date), "", pay_sr_v(st, C_DATE));

    return 0;
}


/* The header: every name known, none twice, every required one there. */
static void
pay_sr_header_field(pay_sr_state_t *st, const char *s, size_t len)
{
    const pay_sr_col_t  *c;
    size_t               i;
    int                  meta;

    if (st->field >= PAY_SR_MAX_FIELDS) {
        pay_sr_fail(st, "record 1: more than %d columns", PAY_SR_MAX_FIELDS);
        return;
    }

    for (i = 0; i < len; i++) {
        if (s[i] == '\0' || (unsigned char) s[i] < 0x20) {
            pay_sr_fail(st, "record 1: column %zu: a control character in "
                        "its name", st->field + 1);
            return;
        }
    }

    for (c = st->cols; c->name != NULL; c++) {
        if (strlen(c->name) == len && strncmp(c->name, s, len) == 0) {
            break;
        }
    }

    if (c->name == NULL && st->d == PAY_DIALECT_STRIPE) {
        /* payment_metadata[KEY], refund_metadata[KEY], transfer_metadata[KEY] */
        static const struct { const char *p; int nonce; } pre[] = {
            { "payment_metadata[", C_NONCE_PAYMENT },
            { "refund_metadata[", C_NONCE_REFUND },
            { "transfer_metadata[", C_NONCE_TRANSFER },
        };

        for (i = 0; i < 3; i++) {
            size_t  pl = strlen(pre[i].p);

            if (len > pl + 1 && strncmp(s, pre[i].p, pl) == 0
                && s[len - 1] == ']')
            {
                meta = (len - pl - 1 == 5 && strncmp(s + pl, "nonce", 5) == 0)
                       ? pre[i].nonce : C_IGNORED;
                if (meta != C_IGNORED && st->present[meta]) {
                    pay_sr_fail(st, "record 1: column \"%.*s\" appears twice",
                                (int) (len > 80 ? 80 : len), s);
                    return;
                }
                if (meta != C_IGNORED) {
                    st->present[meta] = 1;
                }
                st->map[st->field++] = meta;
                return;
            }
        }
    }

    if (c->name == NULL) {
        pay_sr_fail(st, "record 1: unknown column \"%.*s\" for a %s report",
                    (int) (len > 80 ? 80 : len), s,
                    pay_sr_dialect_names[st->d]);
        return;
    }

    if (c->col != C_IGNORED) {
        if (st->present[c->col]) {
            pay_sr_fail(st, "record 1: column \"%s\" appears twice", c->name);
            return;
        }
        st->present[c->col] = 1;
    } else {
        /* an ignored column twice is as suspect as a read one */
        for (i = 0; i < st->field; i++) {
            if (st->map[i] == C_IGNORED - 1 - (int) (c - st->cols)) {
                pay_sr_fail(st, "record 1: column \"%s\" appears twice",
                            c->name);
                return;
            }
        }
        st->map[st->field++] = C_IGNORED - 1 - (int) (c - st->cols);
        return;
    }

    st->map[st->field++] = c->col;
}


static void
pay_sr_cb_field(void *s, size_t len, void *data)
{
    pay_sr_state_t  *st = data;
    int              col;

    if (st->failed) {
        return;
    }

    if (st->record == 1) {
        pay_sr_header_field(st, s, len);
        return;
    }

    if (st->field >= st->nheader) {
        pay_sr_fail(st, "record %ld: more fields than the header's %zu",
                    st->record, st->nheader);
        return;
    }

    col = st->map[st->field++];
    if (col < 0) {
        return;
    }

    if (len >= PAY_SR_VALUE_MAX || memchr(s, '\0', len) != NULL) {
        pay_sr_fail(st, "record %ld: column %s: longer than %d bytes or "
                    "holds a NUL", st->record, pay_sr_colname(st, col),
                    PAY_SR_VALUE_MAX - 1);
        return;
    }

    memcpy(st->val[col], s, len);
    st->val[col][len] = '\0';
    st->vlen[col] = len;
}


/* Keeps a row's id for pay_sr_repeats(). */
static int
pay_sr_remember(pay_sr_state_t *st, const pay_sr_row_t *r)
{
    size_t          size;
    pay_sr_seen_t  *seen;

    if ((size_t) st->rows == st->seen_size) {
        size = st->seen_size ? st->seen_size * 2 : 64;
        seen = realloc(st->seen, size * sizeof(pay_sr_seen_t));
        if (seen == NULL) {
            pay_sr_fail(st, "out of memory");
            return -1;
        }
        st->seen = seen;
        st->seen_size = size;
    }

    st->seen[st->rows].row_id = strdup(r->row_id);
    if (st->seen[st->rows].row_id == NULL) {
        pay_sr_fail(st, "out of memory");
        return -1;
    }
    st->seen[st->rows].record = r->record;

    return 0;
}


static int
pay_sr_seen_cmp(const void *a, const void *b)
{
    const pay_sr_seen_t  *x = a, *y = b;
    int                   c;

    c = strcmp(x->row_id, y->row_id);
    if (c != 0) {
        return c;
    }

    return (x->record > y->record) - (x->record < y->record);
}


/*
 * recon_run books each (psp, row_id) once and skips a second row of an id
 * unseen: a report that repeats a row id is refused whole.  The ids are
 * sorted (reports run to tens of thousands of rows), and the first record
 * that repeats an earlier one is named.
 */
static void
pay_sr_repeats(pay_sr_state_t *st)
{
    size_t          i, n;
    pay_sr_seen_t  *s, *dup;

    n = (size_t) st->rows;
    s = st->seen;

    if (n < 2) {
        return;
    }

    qsort(s, n, sizeof(pay_sr_seen_t), pay_sr_seen_cmp);

    /* the second of a run of one id is the run's first repeat */
    dup = NULL;

    for (i = 1; i < n; i++) {
        if (strcmp(s[i - 1].row_id, s[i].row_id) == 0
            && (dup == NULL || s[i].record < dup->record))
        {
            dup = &s[i];
        }
    }

    if (dup != NULL) {
        pay_sr_fail(st, "record %ld: row id repeats record %ld",
                    dup->record, dup[-1].record);
    }
}


static void
pay_sr_cb_record(int c, void *data)
{
    pay_sr_state_t  *st = data;
    pay_sr_row_t     row;
    const pay_sr_col_t  *col;
    int              rc;

    (void) c;

    if (st->failed) {
        return;
    }

    if (st->record == 1) {
        st->nheader = st->field;
        for (col = st->cols; col->name != NULL; col++) {
            if (col->required && !st->present[col->col]) {
                pay_sr_fail(st, "record 1: the required column \"%s\" is "
                            "missing from the %s report's header", col->name,
                            pay_sr_dialect_names[st->d]);
                return;
            }
        }
        st->record++;
        st->field = 0;
        return;
    }

    if (st->field != st->nheader) {
        pay_sr_fail(st, "record %ld: %zu fields, the header has %zu",
                    st->record, st->field, st->nheader);
        return;
    }

    memset(&row, 0, sizeof(row));
    row.record = st->record;
    pay_sr_set(st, row.psp_type, sizeof(row.psp_type), "", pay_sr_v(st, C_TYPE));

    switch (st->d) {
    case PAY_DIALECT_STRIPE:
        rc = pay_sr_stripe_row(st, &row);
        break;
    case PAY_DIALECT_ADYEN:
        rc = pay_sr_adyen_row(st, &row);
        break;
    default:
        rc = pay_sr_generic_row(st, &row);
        break;
    }

    if (rc == 0 && !st->failed && pay_sr_remember(st, &row) == 0) {
        st->rows++;
        if (st->cb != NULL && st->cb(&row, st->ctx) != 0) {
            pay_sr_fail(st, "stopped at record %ld", st->record);
        }
    }

    st->record++;
    st->field = 0;
    memset(st->vlen, 0, sizeof(st->vlen));
    memset(st->val, 0, sizeof(st->val));
}


/* Nothing is a space: libcsv would trim spaces and tabs around unquoted
 * fields, and " 10.00 " would read as 10.00, which the money rules refuse. */
static int
pay_sr_no_space(unsigned char c)
{
    (void) c;
    return 0;
}


long
pay_sr_parse(pay_dialect_e d, const char *buf, size_t len,
    pay_sr_row_pt cb, void *ctx, char *err, size_t err_size)
{
    struct csv_parser  p;
    pay_sr_state_t    *st;
    long               rows, i;

    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        if (err != NULL && err_size > 0) {
            snprintf(err, err_size, "out of memory");
        }
        return -1;
    }

    st->d = d;
    st->cb = cb;
    st->ctx = ctx;
    st->record = 1;
    st->err = err;
    st->err_size = err_size;

    switch (d) {
    case PAY_DIALECT_STRIPE:
        st->cols = pay_sr_stripe_cols;
        break;
    case PAY_DIALECT_ADYEN:
        st->cols = pay_sr_adyen_cols;
        break;
    case PAY_DIALECT_GENERIC:
        st->cols = pay_sr_generic_cols;
        break;
    default:
        pay_sr_fail(st, "unknown report dialect (stripe, adyen or generic)");
        goto done;
    }

    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        buf += 3;
        len -= 3;
    }

    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        pay_sr_fail(st, "out of memory");
        goto done;
    }

    csv_set_space_func(&p, pay_sr_no_space);

    if (csv_parse(&p, buf, len, pay_sr_cb_field, pay_sr_cb_record, st) != len
        && !st->failed)
    {
        pay_sr_fail(st, "record %ld: %s", st->record,
                    csv_strerror(csv_error(&p)));
    }

    if (!st->failed
        && csv_fini(&p, pay_sr_cb_field, pay_sr_cb_record, st) != 0)
    {
        pay_sr_fail(st, "record %ld: %s (an unterminated quote?)", st->record,
                    csv_strerror(csv_error(&p)));
    }

    csv_free(&p);

    if (!st->failed && st->record == 1) {
        pay_sr_fail(st, "the report is empty: no header");
    }

    if (!st->failed) {
        pay_sr_repeats(st);
    }

done:

    rows = st->failed ? -1 : st->rows;

    for (i = 0; i < st->rows; i++) {
        free(st->seen[i].row_id);
    }
    free(st->seen);
    free(st);

    return rows;
}
