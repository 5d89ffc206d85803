/*
 * libFuzzer: settlement reports (src/settlement.c).  The first byte picks
 * the dialect (stripe, adyen, generic); the rest is the CSV.  Every row
 * handed to the callback must be well formed: a known type, NUL-terminated
 * fields, an upper-case ISO currency, a record number after the header;
 * and the count returned must be the number of rows seen.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/money.h>
#include <payments/settlement.h>


static int
check_row(const pay_sr_row_t *r, void *ctx)
{
    long  *n = ctx;

    if (r->type < PAY_SR_PAYMENT || r->type > PAY_SR_OTHER
        || r->record < 2
        || memchr(r->row_id, '\0', sizeof(r->row_id)) == NULL
        || memchr(r->payment_ref, '\0', sizeof(r->payment_ref)) == NULL
        || memchr(r->object_ref, '\0', sizeof(r->object_ref)) == NULL
        || memchr(r->reference, '\0', sizeof(r->reference)) == NULL
        || memchr(r->date, '\0', sizeof(r->date)) == NULL
        || memchr(r->psp_type, '\0', sizeof(r->psp_type)) == NULL
        || strlen(r->currency) != 3
        || pay_currency_find(r->currency, 3) == NULL
        || pay_currency_find(r->net_currency, 3) == NULL
        || strcmp(pay_sr_type_name(r->type), "?") == 0)
    {
        abort();
    }

    (*n)++;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long   n, rc;
    char   err[256];

    if (size == 0) {
        return 0;
    }

    n = 0;
    err[0] = 'x';
    rc = pay_sr_parse((pay_dialect_e) (1 + data[0] % 3),
                      (const char *) data + 1, size - 1, check_row, &n, err,
                      sizeof(err));

    if (rc >= 0 && rc != n) {
        abort();
    }
    if (rc < 0 && (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)) {
        abort();
    }

    return 0;
}
