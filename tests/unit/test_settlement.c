/*
 * Unit tests: settlement reports (src/settlement.c).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <payments/settlement.h>

#define SR_MAX 16

typedef struct {
    int           n;
    pay_sr_row_t  rows[SR_MAX];
} sr_rows_t;


static int
sr_collect(const pay_sr_row_t *row, void *ctx)
{
    sr_rows_t  *r = ctx;

    if (r->n >= SR_MAX) {
        return 1;
    }
    r->rows[r->n++] = *row;

    return 0;
}


static long
sr_parse(pay_dialect_e d, const char *csv, sr_rows_t *out, char *err,
    size_t err_size)
{
    memset(out, 0, sizeof(*out));

    return pay_sr_parse(d, csv, strlen(csv), sr_collect, out, err, err_size);
}


/* -------------------------------------------------------------- stripe */

#define STRIPE_HDR \
    "balance_transaction_id,created_utc,available_on_utc,currency,gross,fee," \
    "net,reporting_category,source_id,description,customer_facing_amount," \
    "customer_facing_currency,payment_intent_id,refund_id,dispute_id," \
    "transfer_id,payment_metadata[nonce],refund_metadata[nonce]," \
    "transfer_metadata[nonce],payment_metadata[order]\n"

Test(settlement, stripe_good_rows)
{
    sr_rows_t  r;
    char       err[256];
    long       n;

    n = sr_parse(PAY_DIALECT_STRIPE,
        STRIPE_HDR
        "txn_1,2026-11-20 10:00:00,2026-11-22 00:00:00,eur,10.00,0.45,9.55,"
        "charge,ch_1,\"Order 1, blue\",10.00,eur,pi_1,,,,m1:co_1,,,x\n"
        "txn_2,2026-11-20 11:00:00,2026-11-22 00:00:00,eur,-4.00,0.00,-4.00,"
        "refund,re_1,,,,pi_1,re_1,,,,m1:rf_1,,\n"
        "txn_3,2026-11-20 12:00:00,,jpy,1000,36,964,charge,ch_2,,,,pi_2,,,,"
        "m1:co_2,,,\n"
        "txn_4,,,eur,-5.00,0,-5.00,transfer,tr_1,,,,,,,tr_1,,,m1:pyo_1,\n"
        "txn_5,,,eur,-1.50,0,-1.50,dispute,du_1,,,,pi_1,,dp_1,,,,,\n"
        "txn_6,,,eur,-100.00,0,-100.00,payout,po_1,,,,,,,,,,,\n"
        "txn_7,,,eur,-0.50,0.50,-1.00,some_new_thing,x,,,,,,,,,,,\n",
        &r, err, sizeof(err));

    cr_assert_eq(n, 7, "%s", err);
    cr_assert_eq(r.rows[0].type, PAY_SR_PAYMENT);
    cr_assert_str_eq(r.rows[0].row_id, "txn_1");
    cr_assert_str_eq(r.rows[0].payment_ref, "pi_1");
    cr_assert_str_eq(r.rows[0].object_ref, "ch_1");
    cr_assert_str_eq(r.rows[0].reference, "m1:co_1");
    cr_assert_str_eq(r.rows[0].currency, "EUR");
    cr_assert_eq(r.rows[0].gross, 1000);
    cr_assert_eq(r.rows[0].fee, 45);
    cr_assert_eq(r.rows[0].net, 955);
    cr_assert_eq(r.rows[0].record, 2);
    cr_assert_str_eq(r.rows[0].date, "2026-11-20 10:00:00");

    cr_assert_eq(r.rows[1].type, PAY_SR_REFUND);
    cr_assert_str_eq(r.rows[1].object_ref, "re_1");
    cr_assert_str_eq(r.rows[1].reference, "m1:rf_1");
    cr_assert_eq(r.rows[1].gross, -400);
    cr_assert_eq(r.rows[1].fee, 0);

    cr_assert_eq(r.rows[2].gross, 1000);    /* JPY: no decimals */
    cr_assert_str_eq(r.rows[2].currency, "JPY");

    cr_assert_eq(r.rows[3].type, PAY_SR_PAYOUT);
    cr_assert_str_eq(r.rows[3].object_ref, "tr_1");
    cr_assert_str_eq(r.rows[3].reference, "m1:pyo_1");

    cr_assert_eq(r.rows[4].type, PAY_SR_DISPUTE);
    cr_assert_str_eq(r.rows[4].object_ref, "dp_1");
    cr_assert_eq(r.rows[5].type, PAY_SR_BANK_PAYOUT);
    cr_assert_eq(r.rows[6].type, PAY_SR_OTHER);
    cr_assert_str_eq(r.rows[6].psp_type, "some_new_thing");
}


Test(settlement, stripe_units_follow_the_dialect)
{
    sr_rows_t  r;
    char       err[256];

    /* ISK has 2 decimals at Stripe and none in ISO: 100.00 ISK is 100 */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,isk,100.00,0.00,100.00,charge\n", &r, err, sizeof(err)), 1, "%s",
        err);
    cr_assert_eq(r.rows[0].gross, 100);

    /* 100.50 ISK has no ISO value: read, kept as written (the test
     * a_gross_with_no_iso_value_is_kept_as_written_for_a_person) */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,isk,100.50,0.00,100.50,charge\n", &r, err, sizeof(err)), 1,
        "%s", err);
    cr_assert_str_eq(r.rows[0].gross_psp, "100.50");

    /* BHD: 3 decimals */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,bhd,1.250,0.010,1.240,charge\n", &r, err, sizeof(err)), 1, "%s",
        err);
    cr_assert_eq(r.rows[0].gross, 1250);
    cr_assert_eq(r.rows[0].net, 1240);
}


/*
 * Stripe reports every row in the account's settlement currency; a charge
 * the customer paid in another currency says so in customer_facing_amount
 * and customer_facing_currency (Stripe's decimals, as gross).  Read when
 * both are there and the currency is not the row's: the reconciliation
 * names such a payment for a person with its reason.
 */
Test(settlement, stripe_customer_facing_amount_is_read_when_settled_in_another_currency)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, STRIPE_HDR
        "txn_1,,,eur,13.80,0.70,13.10,charge,ch_1,,15.00,usd,pi_1,,,,"
        "m1:co_1,,,\n"
        "txn_2,,,eur,-0.92,0.00,-0.92,refund,re_1,,-1.00,USD,pi_1,re_1,,,,"
        "m1:rf_1,,\n"
        "txn_3,,,eur,10.00,0.59,9.41,charge,ch_2,,10.00,eur,pi_2,,,,"
        "m1:co_2,,,\n"
        "txn_4,,,eur,-5.00,0,-5.00,transfer,tr_1,,,,,,,tr_1,,,m1:pyo_1,\n"
        "txn_5,,,eur,69.00,2.30,66.70,charge,ch_3,,10000.00,isk,pi_3,,,,"
        "m1:co_3,,,\n",
        &r, err, sizeof(err)), 5, "%s", err);
    cr_assert_str_eq(r.rows[0].currency, "EUR");
    cr_assert_eq(r.rows[0].gross, 1380);
    cr_assert_str_eq(r.rows[0].customer_currency, "USD");
    cr_assert_eq(r.rows[0].customer_amount, 1500);
    cr_assert_str_eq(r.rows[1].customer_currency, "USD");
    cr_assert_eq(r.rows[1].customer_amount, -100);
    /* the same currency, or none: nothing to say */
    cr_assert_str_eq(r.rows[2].customer_currency, "");
    cr_assert_eq(r.rows[2].customer_amount, 0);
    cr_assert_str_eq(r.rows[3].customer_currency, "");
    /* ISK in Stripe's hundredths, ISO's krónur */
    cr_assert_str_eq(r.rows[4].customer_currency, "ISK");
    cr_assert_eq(r.rows[4].customer_amount, 10000);

    /* a customer_facing_currency that is no currency refuses the report */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, STRIPE_HDR
        "txn_1,,,eur,13.80,0.70,13.10,charge,ch_1,,15.00,usx,pi_1,,,,"
        "m1:co_1,,,\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "customer_facing_currency") != NULL, "%s", err);
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, STRIPE_HDR
        "txn_1,,,eur,13.80,0.70,13.10,charge,ch_1,,15.0x,usd,pi_1,,,,"
        "m1:co_1,,,\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "customer_facing_amount") != NULL, "%s", err);
}


Test(settlement, stripe_bad_amounts_refuse_the_report)
{
    static const char *const  bad[] = {
        "1.234", "1,00", "1e3", "+1.00", "--1", "-", "", " 1.00x", "0x10",
        "99999999999999999999.00", "1.0.0", ".5", "NaN", NULL
    };
    const char *const  *b;
    char                csv[512], err[256];
    sr_rows_t           r;

    for (b = bad; *b != NULL; b++) {
        snprintf(csv, sizeof(csv),
            "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
            "t1,eur,1.00,0.00,1.00,charge\n"
            "t2,eur,\"%s\",0.00,1.00,charge\n", *b);
        cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, csv, &r, err, sizeof(err)),
                     -1, "%s accepted", *b);
        cr_assert(strstr(err, "record 3") != NULL, "%s: %s", *b, err);
    }

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,xyz,1.00,0.00,1.00,charge\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "currency") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        ",eur,1.00,0.00,1.00,charge\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "balance_transaction_id") != NULL, "%s", err);
}


Test(settlement, quoted_fields_bom_and_crlf)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "\xEF\xBB\xBF" "balance_transaction_id,currency,gross,fee,net,"
        "reporting_category,description\r\n"
        "\"t1\",\"eur\",\"1,00\"\r\n", &r, err, sizeof(err)), -1);

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "\xEF\xBB\xBF" "balance_transaction_id,currency,gross,fee,net,"
        "reporting_category,description\r\n"
        "\"t1\",\"eur\",\"12.00\",0.30,11.70,charge,"
        "\"a \"\"quoted\"\", multi\r\nline, description\"\r\n"
        "\r\n"
        "t2,EUR,1.00,0.00,1.00,refund,plain\r\n", &r, err, sizeof(err)),
        2, "%s", err);
    cr_assert_str_eq(r.rows[0].row_id, "t1");
    cr_assert_eq(r.rows[0].gross, 1200);
    cr_assert_eq(r.rows[1].record, 3);
    cr_assert_eq(r.rows[1].type, PAY_SR_REFUND);

    /* no line end after the last record */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,eur,1.00,0.00,1.00,charge", &r, err, sizeof(err)), 1, "%s", err);

    /* an unterminated quote */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,eur,1.00,0.00,1.00,\"charge\n", &r, err, sizeof(err)), -1);

    /* a quote inside an unquoted field (strict) */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t\"1,eur,1.00,0.00,1.00,charge\n", &r, err, sizeof(err)), -1);
}


/* The money rules refuse whitespace; libcsv must not trim it first. */
Test(settlement, whitespace_around_an_amount_refuses_the_report)
{
    static const char *const  bad[] = {
        " 10.00 ", " 10.00", "10.00 ", "\t10.00", "10.00\t", NULL
    };
    const char *const  *b;
    char                csv[1024], err[256];
    sr_rows_t           r;

    for (b = bad; *b != NULL; b++) {
        snprintf(csv, sizeof(csv),
            "balance_transaction_id,currency,gross,fee,net,reporting_category"
            "\r\nt1,eur,%s,0.00,10.00,charge\r\n", *b);
        cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, csv, &r, err, sizeof(err)),
                     -1, "stripe: \"%s\" accepted", *b);
        cr_assert(strstr(err, "record 2: column gross") != NULL, "%s", err);

        snprintf(csv, sizeof(csv), "reference,psp_ref,type,gross,fee,net,"
                 "currency,date\r\nm1:co_1,pay_1,payment,10.00,0.00,%s,EUR,"
                 "2026-11-20\r\n", *b);
        cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, csv, &r, err,
                              sizeof(err)), -1, "generic: \"%s\" accepted",
                     *b);
        cr_assert(strstr(err, "record 2: column net") != NULL, "%s", err);

        snprintf(csv, sizeof(csv), "Psp Reference,Merchant Reference,Type,"
                 "Gross Currency,Gross Debit (GC),Gross Credit (GC),"
                 "Net Currency,Net Debit (NC),Net Credit (NC)\r\n"
                 "881,m1:co_1,Settled,EUR,,%s,EUR,,10.00\r\n", *b);
        cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, csv, &r, err, sizeof(err)),
                     -1, "adyen: \"%s\" accepted", *b);
        cr_assert(strstr(err, "Gross Credit (GC)") != NULL, "%s", err);
    }

    /* an Adyen cell of blanks is not an empty one */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        "Psp Reference,Merchant Reference,Type,Gross Currency,"
        "Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),"
        "Net Credit (NC)\r\n"
        "881,m1:co_1,Settled,EUR, ,10.00,EUR,,10.00\r\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Gross Debit (GC)") != NULL, "%s", err);

    /* CRLF after the header and the rows still reads */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC,
        "reference,psp_ref,type,gross,fee,net,currency,date\r\n"
        "m1:co_1,pay_1,payment,10.00,0.30,9.70,EUR,2026-11-20 10:00:00\r\n"
        "\r\n", &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_eq(r.rows[0].net, 970);
    cr_assert_str_eq(r.rows[0].date, "2026-11-20 10:00:00");
}


Test(settlement, header_checks)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net\n"
        "t1,eur,1.00,0.00,1.00\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "reporting_category") != NULL, "%s", err);
    cr_assert(strstr(err, "missing") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category,"
        "surprise\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "unknown column \"surprise\"") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category,"
        "gross\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "twice") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category,"
        "description,description\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "twice") != NULL, "%s", err);

    /* a header only: no rows, no error */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n",
        &r, err, sizeof(err)), 0, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, "", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "empty") != NULL, "%s", err);

    /* more or fewer fields than the header */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,eur,1.00,0.00,1.00,charge,extra\n", &r, err, sizeof(err)), -1);
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,eur,1.00,0.00,1.00\n", &r, err, sizeof(err)), -1);

    /* the wrong dialect's header is a report of unknown columns */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "unknown column") != NULL, "%s", err);

    cr_assert_eq(sr_parse((pay_dialect_e) 42, "a\n", &r, err, sizeof(err)),
                 -1);
    cr_assert(strstr(err, "dialect") != NULL, "%s", err);
}


Test(settlement, callback_stops_the_parse)
{
    sr_rows_t  r;
    char       err[256];
    char       csv[4096];
    size_t     off;
    int        i;

    off = (size_t) snprintf(csv, sizeof(csv),
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n");
    for (i = 0; i < SR_MAX + 2; i++) {
        off += (size_t) snprintf(csv + off, sizeof(csv) - off,
                                 "t%d,eur,1.00,0.00,1.00,charge\n", i);
    }

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE, csv, &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "stopped") != NULL, "%s", err);
}


/* --------------------------------------------------------------- adyen */

#define ADYEN_HDR \
    "Company Account,Merchant Account,Psp Reference,Merchant Reference," \
    "Payment Method,Creation Date,TimeZone,Type,Modification Reference," \
    "Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate," \
    "Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC)," \
    "Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant," \
    "Batch Number\n"

Test(settlement, adyen_good_rows)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        ADYEN_HDR
        "Co,MA,8815000000000001,m1:co_1,visa,2026-11-20 10:00:00,CET,Settled,"
        "8815000000000001,EUR,,10.00,1,EUR,,9.70,0.10,0.05,0.05,0.10,visa,7\n"
        "Co,MA,8815000000000001,m1:rf_1,visa,2026-11-21 10:00:00,CET,Refunded,"
        "8825000000000009,EUR,4.00,,1,EUR,4.00,,,,,,visa,7\n"
        "Co,MA,8815000000000002,m1:co_2,visa,2026-11-21 10:00:00,CET,"
        "Chargeback,8835000000000003,EUR,2.00,,1,EUR,2.00,,,,,,visa,7\n"
        "Co,MA,,,,2026-11-21 12:00:00,CET,MerchantPayout,,,,,,EUR,100.00,,,,,,,7\n"
        "Co,MA,,,,2026-11-21 12:00:00,CET,Fee,,,,,,EUR,0.12,,0.12,,,,,7\n"
        "Co,MA,8815000000000004,m1:co_4,visa,2026-11-21 10:00:00,CET,Settled,"
        ",IDR,,10000,1,IDR,,9900,100,,,,visa,7\n",
        &r, err, sizeof(err)), 6, "%s", err);

    cr_assert_eq(r.rows[0].type, PAY_SR_PAYMENT);
    cr_assert_str_eq(r.rows[0].payment_ref, "8815000000000001");
    cr_assert_str_eq(r.rows[0].reference, "m1:co_1");
    cr_assert_eq(r.rows[0].gross, 1000);
    cr_assert_eq(r.rows[0].net, 970);
    cr_assert_eq(r.rows[0].fee, 30);
    cr_assert_str_eq(r.rows[0].row_id,
                     "8815000000000001:Settled:8815000000000001");

    cr_assert_eq(r.rows[1].type, PAY_SR_REFUND);
    cr_assert_str_eq(r.rows[1].payment_ref, "8815000000000001");
    cr_assert_str_eq(r.rows[1].object_ref, "8825000000000009");
    cr_assert_str_eq(r.rows[1].reference, "m1:rf_1");
    cr_assert_eq(r.rows[1].gross, -400);
    cr_assert_eq(r.rows[1].net, -400);

    cr_assert_eq(r.rows[2].type, PAY_SR_DISPUTE);
    cr_assert_str_eq(r.rows[2].object_ref, "cb:8815000000000002");

    cr_assert_eq(r.rows[3].type, PAY_SR_BANK_PAYOUT);
    cr_assert_str_eq(r.rows[3].currency, "EUR");
    cr_assert_eq(r.rows[3].net, -10000);
    cr_assert_str_eq(r.rows[3].row_id, "MerchantPayout:7:2026-11-21 12:00:00:");

    cr_assert_eq(r.rows[4].type, PAY_SR_FEE);
    cr_assert_eq(r.rows[4].fee, 12);

    /* IDR: Adyen writes no decimals, ISO has 2 */
    cr_assert_eq(r.rows[5].gross, 1000000);
    cr_assert_eq(r.rows[5].fee, 10000);
}


Test(settlement, adyen_bad_rows)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        ADYEN_HDR
        "Co,MA,881,m1:co_1,visa,,CET,Settled,,EUR,,10.001,1,EUR,,9.70,,,,,,7\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Gross Credit (GC)") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        ADYEN_HDR
        "Co,MA,881,m1:co_1,visa,,CET,Settled,,EUR,,10.00,1,,,9.70,,,,,,7\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Net Currency") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        "Psp Reference,Merchant Reference,Type,Gross Currency\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Gross Debit (GC)") != NULL, "%s", err);
}


/* Two partial refunds of one payment share Psp Reference and Type: their
 * row ids differ by the Modification Reference alone. */
Test(settlement, adyen_modifications_need_a_modification_reference)
{
    static const char *const  types[] = {
        "Refunded", "RefundedReversed", "Chargeback", "ChargebackReversed",
        NULL
    };
    static const char *const  want[] = {
        "refund", "refund_failure", "dispute", "dispute_won"
    };
    const char *const  *t;
    char                csv[2048], msg[128], err[256];
    sr_rows_t           r;

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        ADYEN_HDR
        "Co,MA,881,m1:rf_1,visa,,CET,Refunded,882,EUR,4.00,,1,EUR,4.00,,,,,,"
        "visa,7\n"
        "Co,MA,881,m1:rf_2,visa,,CET,Refunded,883,EUR,4.00,,1,EUR,4.00,,,,,,"
        "visa,7\n",
        &r, err, sizeof(err)), 2, "%s", err);
    cr_assert_str_eq(r.rows[0].row_id, "881:Refunded:882");
    cr_assert_str_eq(r.rows[1].row_id, "881:Refunded:883");

    for (t = types; *t != NULL; t++) {
        snprintf(csv, sizeof(csv), ADYEN_HDR
                 "Co,MA,881,m1:co_1,visa,,CET,Settled,881,EUR,,10.00,1,EUR,,"
                 "10.00,,,,,visa,7\n"
                 "Co,MA,881,m1:x_1,visa,,CET,%s,,EUR,4.00,,1,EUR,4.00,,,,,,"
                 "visa,7\n", *t);
        cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, csv, &r, err, sizeof(err)),
                     -1, "%s accepted", *t);
        snprintf(msg, sizeof(msg), "record 3: a %s row without a "
                 "Modification Reference", want[t - types]);
        cr_assert_str_eq(err, msg);
    }

    /* a report without the column has none */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN,
        "Psp Reference,Merchant Reference,Type,Gross Currency,"
        "Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),"
        "Net Credit (NC)\n"
        "881,m1:rf_1,Refunded,EUR,4.00,,EUR,4.00,\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Modification Reference") != NULL, "%s", err);
}


/* Psp Reference "881", Type "Refunded", Modification Reference "a:b" and
 * "881:Refunded", "a", "b" would both be 881:Refunded:a:b. */
Test(settlement, adyen_a_colon_in_a_row_id_part_refuses_the_report)
{
    char       err[256];
    sr_rows_t  r;

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,881,m1:rf_1,visa,,CET,Refunded,a:b,EUR,4.00,,1,EUR,4.00,,,,,,"
        "visa,7\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column Modification Reference: a ':' "
                     "in a part of the row id");

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,881:Refunded,m1:rf_1,visa,,CET,a,b,EUR,4.00,,1,EUR,4.00,,,,,,"
        "visa,7\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column Psp Reference: a ':' in a part "
                     "of the row id");

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,881,m1:co_1,visa,,CET,Settled:x,,EUR,,1.00,1,EUR,,1.00,,,,,"
        "visa,7\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column Type: a ':' in a part of the "
                     "row id");

    /* no Psp Reference: Type, Batch Number, date and Modification
     * Reference make the id; the date alone may hold ':' */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,,,,2026-11-21 12:00:00,CET,Fee,,,,,,EUR,0.12,,0.12,,,,,7:1\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column Batch Number: a ':' in a part "
                     "of the row id");

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,,,,2026-11-21 12:00:00,CET,Fee,,,,,,EUR,0.12,,0.12,,,,,7\n",
        &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_str_eq(r.rows[0].row_id, "Fee:7:2026-11-21 12:00:00:");
}


/* -------------------------------------------- fees finer than ISO's */

/*
 * A fee is the PSP's own computation: Adyen counts CLP and ISK with two
 * decimals where ISO has none, and any PSP may write a fee with more
 * decimals than it writes amounts.  Such a fee (and net) is rounded to
 * ISO minor units, half to even, the PSP's value kept beside it; the
 * report is read.
 */
Test(settlement, a_fee_finer_than_iso_is_rounded_not_refused)
{
    sr_rows_t  r;
    char       err[256];

    /* Stripe ISK: 12.34 ISK of fee on 1000.00 ISK */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,isk,1000.00,12.34,987.66,charge\n"
        "t2,eur,10.00,0.305,9.695,charge\n",
        &r, err, sizeof(err)), 2, "%s", err);
    cr_assert_eq(r.rows[0].gross, 1000);
    cr_assert_eq(r.rows[0].fee, 12);
    cr_assert_eq(r.rows[0].net, 988);
    cr_assert_str_eq(r.rows[0].fee_psp, "12.34");
    cr_assert_str_eq(r.rows[0].net_psp, "987.66");
    /* more decimals than Stripe writes EUR with: 0.305 is 0.30 */
    cr_assert_eq(r.rows[1].gross, 1000);
    cr_assert_eq(r.rows[1].fee, 30);
    cr_assert_eq(r.rows[1].net, 970);
    cr_assert_str_eq(r.rows[1].fee_psp, "0.305");
    cr_assert_str_eq(r.rows[1].net_psp, "9.695");

    /* Adyen CLP: Commission (NC) 43.80 on 1500.00 */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,8815000000000001,m1:co_1,visa,2026-11-20 10:00:00,CET,Settled,"
        "8815000000000001,CLP,,1500.00,1,CLP,,1456.20,43.80,,,,visa,7\n",
        &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_eq(r.rows[0].gross, 1500);
    cr_assert_eq(r.rows[0].fee, 44);
    cr_assert_eq(r.rows[0].net, 1456);
    cr_assert_str_eq(r.rows[0].fee_psp, "43.80");
    cr_assert_str_eq(r.rows[0].net_psp, "1456.20");

    /* exact in ISO: nothing kept beside (IDR: Adyen's 0 decimals, ISO's 2) */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,8815000000000001,m1:co_1,visa,2026-11-20 10:00:00,CET,Settled,"
        "8815000000000001,IDR,,20000,1,IDR,,19390,610,,,,visa,7\n",
        &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_eq(r.rows[0].fee, 61000);
    cr_assert_eq(r.rows[0].net, 1939000);
    cr_assert_str_eq(r.rows[0].fee_psp, "");
    cr_assert_str_eq(r.rows[0].net_psp, "");
}


/* Half a minor unit goes to the even neighbour, either sign: no bias over
 * many rows.  net is then gross - fee as booked, so the row's own
 * arithmetic holds (988.50 alone would round to 988; 1001 - 12 is 989). */
Test(settlement, a_fee_half_a_minor_unit_off_is_rounded_to_even)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,isk,1001.00,12.50,988.50,charge\n"
        "t2,isk,1000.00,13.50,986.50,charge\n"
        "t3,isk,-1000.00,-12.50,-987.50,refund\n"
        "t4,isk,1000.00,0.49,999.51,charge\n",
        &r, err, sizeof(err)), 4, "%s", err);
    cr_assert_eq(r.rows[0].fee, 12);
    cr_assert_eq(r.rows[0].net, 989);
    cr_assert_eq(r.rows[1].fee, 14);
    cr_assert_eq(r.rows[1].net, 986);
    cr_assert_eq(r.rows[2].fee, -12);
    cr_assert_eq(r.rows[2].net, -988);
    cr_assert_str_eq(r.rows[2].fee_psp, "-12.50");
    cr_assert_str_eq(r.rows[2].net_psp, "-987.50");
    cr_assert_eq(r.rows[3].fee, 0);
    cr_assert_eq(r.rows[3].net, 1000);
}


/* Adyen's four fee columns are summed exactly, then rounded once: four
 * fees of 0.30 CLP are 1 CLP, not four times nothing. */
Test(settlement, adyen_fee_columns_are_summed_before_they_are_rounded)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,8815000000000001,m1:co_1,visa,2026-11-20 10:00:00,CET,Settled,"
        "8815000000000001,CLP,,1500.00,1,CLP,,1498.80,0.30,0.30,0.30,0.30,"
        "visa,7\n",
        &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_eq(r.rows[0].fee, 1);
    cr_assert_eq(r.rows[0].net, 1499);
    cr_assert_str_eq(r.rows[0].fee_psp, "1.20");
}


/* A row in two currencies (Adyen's FX) has no gross - fee = net to keep:
 * its net is rounded on its own, as its fee is. */
Test(settlement, an_fx_row_rounds_its_net_on_its_own)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,8815000000000001,m1:co_1,visa,2026-11-20 10:00:00,CET,Settled,"
        "8815000000000001,EUR,,10.00,950.05,CLP,,9400.55,100.25,,,,visa,7\n",
        &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_eq(r.rows[0].gross, 1000);
    cr_assert_str_eq(r.rows[0].net_currency, "CLP");
    cr_assert_eq(r.rows[0].fee, 100);
    cr_assert_eq(r.rows[0].net, 9401);
}


/* A gross is an amount we sent: one with no ISO value is no rounding for
 * the parser to do, nor a reason to refuse every other row of the report.
 * It is read and kept as the PSP wrote it; the reconciliation lists it
 * for a person (gross holds it rounded half to even, to show). */
Test(settlement, a_gross_with_no_iso_value_is_kept_as_written_for_a_person)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,isk,1000.50,12.34,988.16,charge\n"
        "t2,isk,-100.25,0.00,-100.25,refund\n"
        "t3,isk,1000.00,0.00,1000.00,charge\n",
        &r, err, sizeof(err)), 3, "%s", err);
    cr_assert_str_eq(r.rows[0].gross_psp, "1000.50");
    cr_assert_eq(r.rows[0].gross, 1000);
    /* no exact gross to take the fee from: the net rounded on its own */
    cr_assert_eq(r.rows[0].fee, 12);
    cr_assert_eq(r.rows[0].net, 988);
    cr_assert_str_eq(r.rows[1].gross_psp, "-100.25");
    cr_assert_eq(r.rows[1].gross, -100);
    cr_assert_str_eq(r.rows[2].gross_psp, "");
    cr_assert_eq(r.rows[2].gross, 1000);

    /* Adyen: credit - debit, exact, then found finer than ISO */
    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,8815000000000001,m1:co_1,visa,2026-11-20 10:00:00,CET,Settled,"
        "8815000000000001,CLP,0.25,1500.00,1,CLP,,1456.20,43.55,,,,visa,7\n",
        &r, err, sizeof(err)), 1, "%s", err);
    cr_assert_str_eq(r.rows[0].gross_psp, "1499.75");
    cr_assert_eq(r.rows[0].gross, 1500);
}


/* The generic format is ours, in ISO decimals: no rounding there. */
Test(settlement, the_generic_format_takes_no_fee_finer_than_iso)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC,
        "reference,psp_ref,type,gross,fee,net,currency,date\n"
        "m1:co_1,pay_1,payment,10.00,0.305,9.695,EUR,2026-11-20\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "column fee") != NULL, "%s", err);
}


/* A gross is an amount we sent: one with no ISO value is never rounded.
 * Nor is a gross with more decimals than the PSP writes. */
Test(settlement, a_gross_finer_than_the_psp_writes_refuses_the_report)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "t1,eur,10.005,0.30,9.705,charge\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "column gross") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,881,m1:co_1,visa,,CET,Settled,,IDR,,10000.5,1,IDR,,9900,100,"
        ",,,,7\n", &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "Gross Credit (GC)") != NULL, "%s", err);
}


/* ------------------------------------------------------------- generic */

#define GENERIC_HDR "reference,psp_ref,type,gross,fee,net,currency,date," \
                    "payment_ref\n"

Test(settlement, generic_good_rows)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC,
        GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,0.30,9.70,EUR,2026-11-20,\n"
        "m1:rf_1,rfd_1,refund,-4.00,0,-4.00,EUR,2026-11-21,pay_1\n"
        ",dsp_1,dispute,-10.00,15.00,-25.00,EUR,2026-11-21,pay_1\n"
        "m1:pyo_1,po_1,payout,-5,0,-5,JPY,2026-11-21,\n",
        &r, err, sizeof(err)), 4, "%s", err);

    cr_assert_eq(r.rows[0].type, PAY_SR_PAYMENT);
    cr_assert_str_eq(r.rows[0].payment_ref, "pay_1");
    cr_assert_str_eq(r.rows[0].row_id, "pay_1:payment");
    cr_assert_eq(r.rows[0].fee, 30);
    cr_assert_eq(r.rows[1].type, PAY_SR_REFUND);
    cr_assert_str_eq(r.rows[1].object_ref, "rfd_1");
    cr_assert_str_eq(r.rows[1].payment_ref, "pay_1");
    cr_assert_eq(r.rows[2].type, PAY_SR_DISPUTE);
    cr_assert_str_eq(r.rows[2].reference, "");
    cr_assert_eq(r.rows[2].net, -2500);
    cr_assert_eq(r.rows[3].type, PAY_SR_PAYOUT);
    cr_assert_eq(r.rows[3].gross, -5);
}


/* A payment captured in parts is settled a row per capture: psp_ref the
 * capture's id (the row ids differ), payment_ref the payment's, which the
 * row then names (recon_payment finds the checkout by it or our nonce). */
Test(settlement, generic_a_row_per_capture_names_the_payment)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC,
        GENERIC_HDR
        "m1:co_1,gcp_1,payment,4.00,0.42,3.58,EUR,2026-11-20,pay_1\n"
        "m1:co_1,gcp_2,payment,2.00,0.36,1.64,EUR,2026-11-20,pay_1\n",
        &r, err, sizeof(err)), 2, "%s", err);

    cr_assert_str_eq(r.rows[0].row_id, "gcp_1:payment");
    cr_assert_str_eq(r.rows[1].row_id, "gcp_2:payment");
    cr_assert_str_eq(r.rows[0].payment_ref, "pay_1");
    cr_assert_str_eq(r.rows[1].payment_ref, "pay_1");
    cr_assert_str_eq(r.rows[0].object_ref, "gcp_1");
    cr_assert_str_eq(r.rows[1].object_ref, "gcp_2");
}


Test(settlement, generic_bad_rows)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,charge,10.00,0.30,9.70,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "type") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,0.30,9.70,eur,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "currency") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,,payment,10.00,0.30,9.70,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "psp_ref") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,,9.70,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "fee") != NULL, "%s", err);

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.5,0,10.5,JPY,2026-11-20,\n",
        &r, err, sizeof(err)), -1);

    /* a reference longer than the row's field */
    {
        char  csv[1024], longref[200];

        memset(longref, 'a', sizeof(longref) - 1);
        longref[sizeof(longref) - 1] = '\0';
        snprintf(csv, sizeof(csv), GENERIC_HDR
                 "%s,pay_1,payment,1.00,0,1.00,EUR,2026-11-20,\n", longref);
        cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, csv, &r, err,
                              sizeof(err)), -1);
    }
}


/* doc/RECONCILIATION.md: fee positive when charged, net = gross - fee */
Test(settlement, generic_net_must_be_gross_minus_fee)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,0.30,9.77,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column net: not gross - fee");

    /* net = gross + fee is not it either */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,0.30,10.30,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column net: not gross - fee");

    /* gross - fee below INT64_MIN: refused, not wrapped */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,dispute,-92233720368547758.07,0.02,"
        "92233720368547758.07,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: gross - fee overflows");

    /* a fee of 0, and the extremes exactly */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,0.00,10.00,EUR,2026-11-20,\n"
        "m1:co_2,pay_2,dispute,-92233720368547758.06,0.01,"
        "-92233720368547758.07,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), 2, "%s", err);
    cr_assert_eq(r.rows[1].net, -INT64_MAX);
}


Test(settlement, generic_fee_must_not_be_negative)
{
    sr_rows_t  r;
    char       err[256];

    /* net = gross - fee holds, but a fee is charged, never paid out */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,-0.30,10.30,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 2: column fee: negative");

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:co_1,pay_1,payment,10.00,-0.00,10.00,EUR,2026-11-20,\n",
        &r, err, sizeof(err)), 1, "%s", err);
}


/* ----------------------------------------------------------- row ids */

/* recon_run books a (psp, row_id) once: a second row of an id would be
 * skipped unseen, so the report is refused. */
Test(settlement, a_repeated_row_id_refuses_the_report)
{
    sr_rows_t  r;
    char       err[256];

    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:rf_1,rfd_1,refund,-4.00,0,-4.00,EUR,2026-11-21,pay_1\n"
        "m1:co_1,pay_1,payment,10.00,0.30,9.70,EUR,2026-11-20,\n"
        "m1:rf_2,rfd_1,refund,-7.77,0,-7.77,EUR,2026-11-21,pay_1\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 4: row id repeats record 2");

    /* one psp_ref of two types is two rows */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:rf_1,rfd_1,refund,-4.00,0,-4.00,EUR,2026-11-21,pay_1\n"
        "m1:rf_1,rfd_1,refund_failure,4.00,0,4.00,EUR,2026-11-22,pay_1\n",
        &r, err, sizeof(err)), 2, "%s", err);

    /* the first record, in the report's order, that repeats one */
    cr_assert_eq(sr_parse(PAY_DIALECT_STRIPE,
        "balance_transaction_id,currency,gross,fee,net,reporting_category\n"
        "txn_a,eur,1.00,0.00,1.00,charge\n"
        "txn_b,eur,2.00,0.00,2.00,charge\n"
        "txn_b,eur,3.00,0.00,3.00,charge\n"
        "txn_a,eur,4.00,0.00,4.00,charge\n"
        "txn_b,eur,5.00,0.00,5.00,charge\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 4: row id repeats record 3");

    cr_assert_eq(sr_parse(PAY_DIALECT_ADYEN, ADYEN_HDR
        "Co,MA,881,m1:co_1,visa,,CET,Settled,881,EUR,,10.00,1,EUR,,10.00,"
        ",,,,visa,7\n"
        "Co,MA,881,m1:co_1,visa,,CET,Settled,881,EUR,,10.00,1,EUR,,10.00,"
        ",,,,visa,8\n",
        &r, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "record 3: row id repeats record 2");

    /* a refusal for a bad row comes first */
    cr_assert_eq(sr_parse(PAY_DIALECT_GENERIC, GENERIC_HDR
        "m1:rf_1,rfd_1,refund,-4.00,0,-4.00,EUR,2026-11-21,pay_1\n"
        "m1:rf_1,rfd_1,refund,-4.00,0,-4.00,EUR,2026-11-21,pay_1\n"
        "m1:rf_1,rfd_2,refund,-4.00,0,-4.00,XXX,2026-11-21,pay_1\n",
        &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "record 4: column currency") != NULL, "%s", err);
}


/* Sorted, not compared pairwise: a report of 60000 rows is read at once. */
Test(settlement, a_repeated_row_id_is_found_in_a_long_report,
     .timeout = 10)
{
    char    *csv, err[256];
    size_t   size, off;
    long     i, n;

    n = 60000;
    size = 64 + (size_t) n * 64;
    csv = malloc(size);
    cr_assert_not_null(csv);

    off = (size_t) snprintf(csv, size, "reference,psp_ref,type,gross,fee,"
                            "net,currency,date\n");
    for (i = 0; i < n; i++) {
        off += (size_t) snprintf(csv + off, size - off,
                                 ",pay_%ld,payment,1.00,0,1.00,EUR,"
                                 "2026-11-20\n", (i * 7919) % n);
    }

    cr_assert_eq(pay_sr_parse(PAY_DIALECT_GENERIC, csv, off, NULL, NULL, err,
                              sizeof(err)), n, "%s", err);

    /* the last row repeats the 1000th (record 1001) */
    off += (size_t) snprintf(csv + off, size - off,
                             ",pay_%ld,payment,1.00,0,1.00,EUR,2026-11-20\n",
                             (999L * 7919) % n);
    cr_assert_eq(pay_sr_parse(PAY_DIALECT_GENERIC, csv, off, NULL, NULL, err,
                              sizeof(err)), -1);
    cr_assert_str_eq(err, "record 60002: row id repeats record 1001");

    free(csv);
}


Test(settlement, amount_helper)
{
    int64_t  v;

    cr_assert_eq(pay_sr_amount(PAY_DIALECT_GENERIC, "EUR", "-0.00", 5, 0, &v),
                 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(pay_sr_amount(PAY_DIALECT_GENERIC, "EUR", "", 0, 1, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(pay_sr_amount(PAY_DIALECT_GENERIC, "EUR", "", 0, 0, &v), -1);
    cr_assert_eq(pay_sr_amount(PAY_DIALECT_GENERIC, "EUR",
                               "-92233720368547758.07", 21, 0, &v), 0);
    cr_assert_eq(v, -INT64_MAX);
    cr_assert_eq(pay_sr_amount(PAY_DIALECT_GENERIC, "EUR",
                               "92233720368547758.08", 20, 0, &v), -1);
    cr_assert_eq(pay_sr_amount(PAY_DIALECT_STRIPE, "XXX", "1", 1, 0, &v), -1);
    cr_assert_str_eq(pay_sr_type_name(PAY_SR_DISPUTE_WON), "dispute_won");
    cr_assert_str_eq(pay_sr_type_name((pay_sr_type_e) 99), "?");
}
