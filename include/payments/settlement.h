/*
 * ngx_payments core: PSP settlement reports.  Reads a PSP's settlement CSV
 * (with Debian's libcsv) into normalized rows: what kind of money movement,
 * the PSP's references, ours when the PSP carries it, and gross, fee and net
 * in ISO minor units (parsed by the core's money rules, pay_amount_parse,
 * in the dialect's units, pay_psp_exponent, then converted to ISO's).
 * Never floating point.
 *
 * A gross is an amount we sent: more decimals than the dialect's refuse
 * the report; one with no exact value in ISO minor units (100.50 ISK) is
 * read, kept in gross_psp as the PSP wrote it, for a person (gross holds
 * it rounded half to even, to show: the reconciliation never matches nor
 * books it, doc/RECONCILIATION.md).  A fee
 * and a net are the PSP's own computation, finer than ISO at times (Adyen
 * counts CLP and ISK in hundredths, a fee may have more decimals than the
 * PSP's amounts): stripe and adyen cells of them are read exactly, with up
 * to 18 decimals, and rounded to ISO minor units half to even (12.50 is
 * 12, 13.50 is 14, -12.50 is -12); Adyen's four fee columns are summed
 * first and rounded once, and fee_psp and net_psp keep what was rounded.
 * When gross and net are in one currency and the PSP's net is its gross
 * less its fee, net is gross - fee as rounded: the row's own arithmetic
 * holds in what is booked.  The generic format's amounts are ISO's,
 * exactly.
 *
 * Dialects (columns are matched by their header name, in any order; a
 * header naming a column the dialect does not know refuses the report, as
 * does one missing a required column or naming a column twice):
 *
 *   stripe   Stripe's itemized balance change / payout reconciliation
 *            reports ("Balance change from activity: itemized", "Payout
 *            reconciliation: itemized").  Required: balance_transaction_id,
 *            currency, gross, fee, net, reporting_category.  Every other
 *            column Stripe publishes for these reports is accepted, and so
 *            are the metadata columns payment_metadata[KEY],
 *            refund_metadata[KEY] and transfer_metadata[KEY]; the
 *            metadata key "nonce" carries our reference.  Amounts are
 *            decimals in the currency's major unit with Stripe's decimals
 *            (ISK with 2, MGA with none: psp.h), currency lower or upper
 *            case, the account's settlement currency;
 *            customer_facing_amount and customer_facing_currency, when
 *            both are there, are what the customer paid (customer_currency
 *            and customer_amount when that is another currency and the
 *            amount exact in ISO).  row_id = balance_transaction_id.
 *   adyen    Adyen's Settlement details report.  Required: Psp Reference,
 *            Merchant Reference, Type, Gross Currency, Gross Debit (GC),
 *            Gross Credit (GC), Net Currency, Net Debit (NC), Net Credit
 *            (NC).  Commission, Markup, Scheme Fees, Interchange (NC) are
 *            the fee when present (an empty cell is 0).  gross = credit -
 *            debit (GC), net = credit - debit (NC), fee = the sum of the
 *            four fee columns (NC).  row_id = Psp Reference ":" Type [":"
 *            Modification Reference], or without a Psp Reference Type ":"
 *            Batch Number ":" Creation Date ":" Modification Reference; a
 *            ':' in a part but the date refuses the report.  Refund,
 *            refund_failure, dispute and dispute_won rows need a
 *            Modification Reference.
 *   generic  This project's CSV (doc/RECONCILIATION.md).  Required:
 *            reference, psp_ref, type, gross, fee, net, currency, date;
 *            optional: payment_ref, description.  type is payment, refund,
 *            refund_failure, dispute, dispute_won, payout,
 *            payout_failure, fee or bank_payout; amounts
 *            are ISO decimals, signed ("-4.00"), fee >= 0 and net =
 *            gross - fee, else the report is refused.  row_id = psp_ref
 *            ":" type.
 *
 * A UTF-8 byte order mark is skipped; lines end in LF or CRLF; fields may be
 * quoted ("a, ""b"""), quoted fields may hold line breaks; blank lines are
 * skipped; unquoted fields are not trimmed (" 1.00" is no amount).  Any row
 * that cannot be read (a bad amount, an unknown currency, a missing
 * required value, too many fields) refuses the whole report, as does a
 * row_id two rows share (found after the last row: "record N: row id
 * repeats record M"): a reconciliation never works on half a file.
 */
#ifndef PAYMENTS_SETTLEMENT_H
#define PAYMENTS_SETTLEMENT_H

#include <stddef.h>
#include <stdint.h>
#include <payments/psp.h>

typedef enum {
    PAY_SR_PAYMENT = 1,     /* a captured payment (charge, Settled) */
    PAY_SR_REFUND,          /* money back to the buyer */
    PAY_SR_REFUND_FAILURE,  /* a refund the PSP could not make, undone */
    PAY_SR_DISPUTE,         /* a chargeback debited */
    PAY_SR_DISPUTE_WON,     /* a chargeback reversed, credited back */
    PAY_SR_PAYOUT,          /* a transfer to a seller / bank */
    PAY_SR_PAYOUT_FAILURE,  /* a transfer that came back */
    PAY_SR_FEE,             /* a fee line of its own */
    PAY_SR_BANK_PAYOUT,     /* the PSP paying the platform's own bank
                               (Stripe payout, Adyen MerchantPayout): no
                               order of ours, shown and not matched */
    PAY_SR_OTHER            /* anything else the PSP reports */
} pay_sr_type_e;

/* "payment", "refund", "refund_failure", "dispute", "dispute_won",
 * "payout", "payout_failure", "fee", "bank_payout", "other" */
const char *pay_sr_type_name(pay_sr_type_e t);

typedef struct {
    long           record;          /* CSV record number, the header is 1 */
    pay_sr_type_e  type;
    char           psp_type[64];    /* the PSP's word: reporting_category, Type */
    char           row_id[256];     /* the row's unique id at the PSP */
    char           payment_ref[128];/* the PSP's payment id (pi_, pspReference) */
    char           object_ref[128]; /* refund / dispute / transfer id at the PSP */
    char           reference[128];  /* our nonce, "" when the PSP has none */
    char           currency[4];     /* upper case ISO 4217 */
    int64_t        gross;           /* ISO minor units, signed as the PSP books it */
    int64_t        fee;             /* ISO minor units, positive: charged */
    int64_t        net;             /* ISO minor units, in net_currency */
    char           net_currency[4]; /* == currency but for Adyen's FX rows */
    char           date[40];        /* as the PSP wrote it, "" if none */
    /* the gross, fee and net as the PSP wrote them ("12.34", "-0.305"),
     * when they have more decimals than ISO and gross, fee and net hold
     * them rounded; "" otherwise */
    char           gross_psp[48];
    char           fee_psp[48];
    char           net_psp[48];
    /* what the customer paid, when the PSP settled the row in another
     * currency (stripe's customer_facing_currency and _amount, read when
     * both are there and the currency is not the row's): upper case ISO
     * 4217 and ISO minor units, as written (signed as the PSP writes
     * it); "" and 0 otherwise */
    char           customer_currency[4];
    int64_t        customer_amount;
} pay_sr_row_t;

/* Called once per data row; a non-zero return stops the parse, which then
 * returns -1 with err "stopped at record N". */
typedef int (*pay_sr_row_pt)(const pay_sr_row_t *row, void *ctx);

/*
 * Parses a whole report.  Returns the number of data rows (0: a header
 * only), or -1 with a message in err (NUL-terminated, truncated to
 * err_size) that names the record and column.  Rows are handed to cb as
 * they are read: a caller that must not act on a report that is refused
 * later (a bad row at the end) collects them first and acts after the
 * parse returned.
 */
long pay_sr_parse(pay_dialect_e d, const char *buf, size_t len,
    pay_sr_row_pt cb, void *ctx, char *err, size_t err_size);

/*
 * A signed decimal of the dialect's units -> ISO minor units: an optional
 * '-', then what pay_amount_parse takes (zero allowed), with the dialect's
 * exponent for currency.  "" is 0 when empty_ok.  Returns 0, or -1.
 */
int pay_sr_amount(pay_dialect_e d, const char *currency, const char *s,
    size_t len, int empty_ok, int64_t *iso);

#endif
