/*
 * ngx_payments core: the dialect table (dialect.h).  A new PSP API is one
 * src/dialect_<name>.c and one line here.  The table is a leaf: it reads
 * the entries and calls no other file of the core.
 */

#include <string.h>

#include <payments/dialect.h>


const pay_dialect_t *const  pay_dialects[] = {
    &pay_dialect_stripe,
    &pay_dialect_adyen,
    &pay_dialect_generic,
    NULL
};


const pay_dialect_t *
pay_dialect_find(const char *name, size_t len)
{
    size_t  i;

    if (name == NULL) {
        return NULL;
    }

    for (i = 0; pay_dialects[i] != NULL; i++) {
        if (strlen(pay_dialects[i]->name) == len
            && memcmp(pay_dialects[i]->name, name, len) == 0)
        {
            return pay_dialects[i];
        }
    }

    return NULL;
}


const pay_dialect_t *
pay_dialect_get(pay_dialect_e id)
{
    size_t  i;

    for (i = 0; pay_dialects[i] != NULL; i++) {
        if (pay_dialects[i]->id == id) {
            return pay_dialects[i];
        }
    }

    return NULL;
}


const char *
pay_dialect_no_session(const pay_dialect_t *d, int connected, int status,
    pay_psp_outcome_e outcome, int key_in_use)
{
    size_t  i;

    if (!connected) {
        return "connect_refused";
    }

    if (d == NULL || key_in_use) {
        return NULL;
    }

    if (outcome == PAY_PSP_REFUSED && (d->no_session & PAY_NOSESSION_REFUSED))
    {
        return "refused";
    }

    if (outcome != PAY_PSP_RETRY) {
        return NULL;
    }

    if (status == 429 && (d->no_session & PAY_NOSESSION_THROTTLED)) {
        return "throttled";
    }

    if (status >= 500) {
        for (i = 0; i < sizeof(d->no_session_5xx) / sizeof(int); i++) {
            if (d->no_session_5xx[i] == 0) {
                break;
            }

            if (d->no_session_5xx[i] == status) {
                return "psp_5xx_nothing_made";
            }
        }
    }

    return NULL;
}

