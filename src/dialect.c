/*
 * ngx_payments core: the dialect table (dialect.h).  A new PSP API is one
 * src/dialect_<name>.c and one line here.
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
