/*
 * libFuzzer: JSON written out (json_dump.h pay_json_dumps), which writes
 * the checkout views, the orders and metadata the claim stores and the
 * risk provider's requests, all holding the shop's strings.  The input is
 * read by jansson (NULs in strings allowed) and, when it is an object or
 * an array, written by both writers: the bytes must be the same, and
 * NULL from one must be NULL from the other.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <payments/json_dump.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *mine, *ref;
    json_t  *v;

    v = json_loadb((const char *) data, size, JSON_ALLOW_NUL, NULL);
    if (v == NULL) {
        return 0;
    }

    mine = pay_json_dumps(v);
    ref = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);

    if ((mine == NULL) != (ref == NULL)
        || (mine != NULL && strcmp(mine, ref) != 0))
    {
        __builtin_trap();
    }

    free(mine);
    free(ref);
    json_decref(v);

    return 0;
}
