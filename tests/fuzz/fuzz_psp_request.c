/*
 * libFuzzer: the stored PSP request's writer and reader (psp.h
 * pay_psp_request_dump, pay_psp_request_load), which see the shop's bytes
 * (its URLs, metadata, product names, inside the request's body).  The
 * input is path, content type and body separated by NUL bytes.  The
 * writer must write exactly what jansson's json_dumps wrote for the same
 * three strings (compact, in order), and refuse (NULL) exactly what
 * jansson refuses (a string that is not UTF-8); what it writes must read
 * back to the same three strings.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <payments/psp.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *in, *part[3], *mine, *ref;
    size_t              i, n;
    json_t             *o;
    pay_psp_request_t   req, back;

    in = malloc(size + 3);
    if (in == NULL) {
        return 0;
    }
    memcpy(in, data, size);
    memset(in + size, 0, 3);

    /* the first two NULs end the path and the content type */
    part[0] = in;
    for (i = 1, n = 0; i < 3; i++) {
        n += strlen(in + n) + 1;
        part[i] = n <= size + 2 ? in + n : in + size + 2;
    }

    memset(&req, 0, sizeof(req));
    req.path = part[0];
    req.content_type = part[1];
    req.body = part[2];
    mine = pay_psp_request_dump(&req);

    ref = NULL;
    o = json_pack("{s:s, s:s, s:s}", "path", part[0], "content_type", part[1],
                  "body", part[2]);
    if (o != NULL) {
        ref = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (ref == NULL) {
            __builtin_trap();
        }
    }

    if ((mine == NULL) != (ref == NULL)
        || (mine != NULL && strcmp(mine, ref) != 0))
    {
        __builtin_trap();
    }

    if (mine != NULL) {
        if (pay_psp_request_load(mine, strlen(mine), &back) != 0
            || strcmp(back.path, part[0]) != 0
            || strcmp(back.content_type, part[1]) != 0
            || strcmp(back.body, part[2]) != 0)
        {
            __builtin_trap();
        }
        pay_psp_request_free(&back);
    }

    free(mine);
    free(ref);
    free(in);

    return 0;
}
