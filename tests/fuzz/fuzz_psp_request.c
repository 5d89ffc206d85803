/*
 * libFuzzer: the stored PSP request's writer and reader (psp.h
 * pay_psp_request_dump, pay_psp_request_load) and the record of the PSP's
 * settings it carries (pay_psp_conf_record, pay_psp_conf_changed).  The
 * request sees the shop's bytes (its URLs, metadata, product names, inside
 * the request's body); the record sees the configuration's.
 *
 * The input is path, content type, body, merchant account and balance
 * account, separated by NUL bytes.  Without a third NUL the request
 * records no settings (as one stored by an earlier release); with one, a
 * setting that is empty is not given.  The writers must write exactly what
 * jansson's json_dumps writes for the same strings (compact, in order),
 * and refuse (NULL) exactly what jansson refuses (a string that is not
 * UTF-8); what they write must read back to the same strings and the same
 * record, and a record must read as unchanged against the settings it was
 * written from.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <payments/psp.h>


#define FZ_PARTS  5


static void
fz_same(const char *mine, const char *ref)
{
    if ((mine == NULL) != (ref == NULL)
        || (mine != NULL && strcmp(mine, ref) != 0))
    {
        __builtin_trap();
    }
}


static char *
fz_dumps(json_t *o)
{
    char  *s;

    if (o == NULL) {
        return NULL;
    }

    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL) {
        __builtin_trap();
    }

    return s;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *in, *part[FZ_PARTS], *mine, *ref, *rec, *rec_ref;
    size_t              i, n, seps;
    json_t             *o, *c;
    pay_psp_conf_t      conf;
    pay_psp_request_t   req, back;

    in = malloc(size + FZ_PARTS);
    if (in == NULL) {
        return 0;
    }
    memcpy(in, data, size);
    memset(in + size, 0, FZ_PARTS);

    for (i = 0, seps = 0; i < size && seps < FZ_PARTS - 1; i++) {
        seps += (data[i] == '\0');
    }

    /* the first NULs end each part; a missing part is empty */
    part[0] = in;
    for (i = 1, n = 0; i < FZ_PARTS; i++) {
        n += strlen(in + n) + 1;
        part[i] = n <= size + FZ_PARTS - 1 ? in + n : in + size + FZ_PARTS - 1;
    }

    memset(&conf, 0, sizeof(conf));
    conf.merchant_account = part[3][0] != '\0' ? part[3] : NULL;
    conf.balance_account = part[4][0] != '\0' ? part[4] : NULL;

    /* the record against jansson's */
    rec = NULL;
    rec_ref = NULL;
    c = NULL;

    if (seps >= 3) {
        rec = pay_psp_conf_record(&conf);

        c = json_object();
        if (c == NULL) {
            __builtin_trap();
        }

        if ((conf.merchant_account != NULL
             && json_object_set_new(c, "merchant_account",
                                    json_string(conf.merchant_account)) != 0)
            || (conf.balance_account != NULL
                && json_object_set_new(c, "balance_account",
                                       json_string(conf.balance_account))
                   != 0))
        {
            json_decref(c);
            c = NULL;
        }

        rec_ref = c != NULL ? fz_dumps(json_incref(c)) : NULL;
        fz_same(rec, rec_ref);

        if (rec != NULL
            && pay_psp_conf_changed(rec, strlen(rec), &conf) != NULL)
        {
            __builtin_trap();
        }
    }

    /* the stored request against jansson's */
    memset(&req, 0, sizeof(req));
    req.path = part[0];
    req.content_type = part[1];
    req.body = part[2];
    req.conf = rec;

    mine = (seps < 3 || rec != NULL) ? pay_psp_request_dump(&req) : NULL;

    ref = NULL;
    if (seps < 3 || c != NULL) {
        o = json_pack("{s:s, s:s, s:s}", "path", part[0],
                      "content_type", part[1], "body", part[2]);
        if (o != NULL && c != NULL
            && json_object_set(o, "conf", c) != 0)
        {
            __builtin_trap();
        }
        ref = fz_dumps(o);
    }

    fz_same(mine, ref);

    if (mine != NULL) {
        if (pay_psp_request_load(mine, strlen(mine), &back) != 0
            || strcmp(back.path, part[0]) != 0
            || strcmp(back.content_type, part[1]) != 0
            || strcmp(back.body, part[2]) != 0)
        {
            __builtin_trap();
        }

        fz_same(back.conf, rec);
        pay_psp_request_free(&back);
    }

    json_decref(c);
    free(rec);
    free(rec_ref);
    free(mine);
    free(ref);
    free(in);

    return 0;
}
