/*
 * payments-events-verify: the kept PSP events' signatures checked again
 * (payments-events verify; doc/OPERATIONS.md, "The event inbox").
 *
 *   payments-events-verify --db CONNINFO [--conf NGINX_CONF] [--psp NAME]
 *                          [--event ID ...] [--since TIME] [--until TIME]
 *   payments-events-verify --shards FILE ...
 *   payments-events-verify --shards FILE --list-shards
 *
 * Each event kept in psp_events is verified again from what the inbox
 * kept: the bytes the PSP signed for it, the header values the
 * verification read, and the key its row names by id, taken from the
 * gateway's own configuration: the payments_psp lines of NGINX_CONF
 * (default /etc/nginx/nginx.conf, its includes followed), whose
 * webhook_secret_file= and webhook_key= files are read as the module reads
 * them.  The check is the dialect's own (pay_dialect_t.evidence_verify,
 * the core's verifiers), as of the time the event was received.  A row
 * whose bytes or header values were altered after it was kept does not
 * verify.  A body kept sealed (it carries a saved payment method's
 * token) is opened first with the configuration's payments_encryption_key
 * (associated data "psp_event:<psp>:<event id>").
 *
 * Then the fields the row keeps beside its bytes, which the gateway
 * applied and the replay applies again, are compared with what the
 * verified bytes say, read again by the webhook's own parser (the
 * dialect's evidence_events): the event its id names among them, kind,
 * type, session token and its blind indexes (tokens: each the token or
 * its index under a key of payments_encryption_key, tokens_check),
 * reference, amount, currency, the PSP's payment and object ids, the
 * merchant and checkout it was matched to against the nonce the PSP
 * signed, a saved method's sealed token and customer, and the state
 * (applied is recorded in webhook_events, foreign is no nonce of ours).
 * An altered field beside intact bytes is FAILED, "not as signed: " and
 * the fields' names (never their values).
 *
 * One line per event: verified, FAILED, "no key" (the key its row names
 * is not in the configuration: a key rotated out; point --conf at a
 * configuration that still names it; or its tokens hold an index under
 * no key of payments_encryption_key that psp_tokens does not find
 * elsewhere) or "no psp"; then the counts.  It prints key ids, never a
 * key.
 *
 * Exit status: 0 every event selected verified; 1 one did not, could not
 * be checked, or an --event is not kept; 2 error.
 *
 * An offline tool: libpq synchronously, in one read-only transaction,
 * through a cursor (a month of events is not held in memory at once).
 *
 * Over shards (--shards FILE, or $PAYMENTS_SHARDS without --db; the file
 * of include/payments/shards_file.h): each shard in turn, each line
 * starting with the shard's name and a tab; an --event is "not kept" when
 * no shard keeps it; one line of counts for all; a shard that does not
 * answer is named and makes the status 2 (the others are still checked).
 * --list-shards prints the file's shards, "NAME<tab>CONNINFO" a line,
 * read by the core's parser: payments-events reads them so.
 */

#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <payments/dialect.h>
#include <payments/seal.h>
#include <payments/shards_file.h>

#define ME            "payments-events-verify"
#define FETCH         500
#define INCLUDE_DEPTH 16
#define FILE_MAX      (64 * 1024)
#define KEYS_MAX      16

/* over shards: the line's first column, "NAME\t"; else "" */
static char  shard_col[PAY_SHARD_NAME_MAX + 2];


static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, ME ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}


/* --- the gateway's configuration ---------------------------------------- */

typedef struct {
    char                  *name;
    const pay_dialect_t   *dl;
    pay_secret_t           secrets[KEYS_MAX];
    char                   secret_id[KEYS_MAX][24];   /* sha256:<16 hex> */
    size_t                 nsecrets;
    pay_jwt_key_t          keys[KEYS_MAX];
    size_t                 nkeys;
    char                  *header;
} psp_t;

typedef struct {
    psp_t          *psp;
    size_t          n, cap;
    char           *prefix;     /* relative paths are taken from here */
    pay_keyring_t  *keyring;    /* payments_encryption_key: opens the
                                   sealed bodies */
} conf_t;


static char *
file_read(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf;
    size_t   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        die("cannot read %s: %s (run as a user that can read the gateway's "
            "configuration and secrets)", path, strerror(errno));
    }

    buf = malloc(FILE_MAX + 1);
    if (buf == NULL) {
        die("out of memory");
    }

    n = fread(buf, 1, FILE_MAX + 1, f);
    if (ferror(f) || n > FILE_MAX) {
        die("%s: unreadable or larger than 64k", path);
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


static char *
full_path(const conf_t *c, const char *path)
{
    char  *p;

    if (path[0] == '/') {
        p = strdup(path);

    } else if (asprintf(&p, "%s/%s", c->prefix, path) < 0) {
        p = NULL;
    }

    if (p == NULL) {
        die("out of memory");
    }

    return p;
}


/* nginx's configuration words: quotes, backslash escapes, # comments */
typedef struct {
    const char  *p, *end;
    const char  *file;
} lex_t;

/* the next word in *out (malloc'd) or the one-character ";", "{", "}";
 * 0 at the end */
static int
lex_next(lex_t *l, char **out)
{
    char    q, *w;
    size_t  n;

    for ( ;; ) {
        while (l->p < l->end
               && (*l->p == ' ' || *l->p == '\t' || *l->p == '\r'
                   || *l->p == '\n'))
        {
            l->p++;
        }

        if (l->p < l->end && *l->p == '#') {
            while (l->p < l->end && *l->p != '\n') {
                l->p++;
            }
            continue;
        }

        break;
    }

    if (l->p >= l->end) {
        return 0;
    }

    w = malloc((size_t) (l->end - l->p) + 2);
    if (w == NULL) {
        die("out of memory");
    }

    n = 0;

    if (*l->p == ';' || *l->p == '{' || *l->p == '}') {
        w[n++] = *l->p++;
        w[n] = '\0';
        *out = w;
        return 1;
    }

    if (*l->p == '"' || *l->p == '\'') {
        q = *l->p++;

        while (l->p < l->end && *l->p != q) {
            if (*l->p == '\\' && l->p + 1 < l->end) {
                l->p++;
            }
            w[n++] = *l->p++;
        }

        if (l->p >= l->end) {
            die("%s: a quote is not closed", l->file);
        }

        l->p++;

    } else {
        while (l->p < l->end && *l->p != ' ' && *l->p != '\t'
               && *l->p != '\r' && *l->p != '\n' && *l->p != ';'
               && *l->p != '{' && *l->p != '}')
        {
            if (*l->p == '\\' && l->p + 1 < l->end) {
                l->p++;
            }
            w[n++] = *l->p++;
        }
    }

    w[n] = '\0';
    *out = w;

    return 1;
}


/* a file's contents as the module reads a key file: trailing CR, LF and
 * spaces taken off */
static char *
key_file(const conf_t *c, const char *path, size_t *len)
{
    char    *full, *buf;
    size_t   n;

    full = full_path(c, path);
    buf = file_read(full, &n);
    free(full);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                     || buf[n - 1] == ' '))
    {
        n--;
    }

    buf[n] = '\0';
    *len = n;

    return buf;
}


static void
psp_secret(const conf_t *c, psp_t *psp, const char *path)
{
    char            *raw;
    size_t           len, outlen, i;
    unsigned char   *out, md[SHA256_DIGEST_LENGTH];
    const char      *why = NULL;

    if (psp->nsecrets == KEYS_MAX) {
        die("payments_psp %s: more than %d webhook secrets", psp->name,
            KEYS_MAX);
    }

    raw = key_file(c, path, &len);

    if (psp->dl != NULL && psp->dl->secret_decode != NULL) {
        out = malloc(len + 64);
        if (out == NULL) {
            die("out of memory");
        }

        outlen = len;
        if (psp->dl->secret_decode((unsigned char *) raw, len, out, &outlen,
                                   &why)
            != 0)
        {
            die("payments_psp %s: webhook_secret_file %s: %s", psp->name,
                path, why ? why : "not a secret of its dialect");
        }

        OPENSSL_cleanse(raw, len);
        free(raw);

    } else {
        out = (unsigned char *) raw;
        outlen = len;
    }

    SHA256(out, outlen, md);

    i = psp->nsecrets++;
    psp->secrets[i].data = out;
    psp->secrets[i].len = outlen;
    memcpy(psp->secret_id[i], "sha256:", 7);

    for (len = 0; len < 8; len++) {
        snprintf(psp->secret_id[i] + 7 + 2 * len, 3, "%02x", md[len]);
    }
}


static void
psp_key(const conf_t *c, psp_t *psp, const char *v)
{
    char            *kid, *alg, *file;
    size_t           len;
    pay_jwt_key_t   *k;

    if (psp->nkeys == KEYS_MAX) {
        die("payments_psp %s: more than %d webhook keys", psp->name,
            KEYS_MAX);
    }

    kid = strdup(v);
    if (kid == NULL) {
        die("out of memory");
    }

    alg = strchr(kid, ':');
    file = alg ? strchr(alg + 1, ':') : NULL;
    if (file == NULL) {
        die("payments_psp %s: webhook_key=%s is not KID:ALG:FILE", psp->name,
            v);
    }

    *alg++ = '\0';
    *file++ = '\0';

    k = &psp->keys[psp->nkeys++];
    k->kid = kid;
    k->alg = strcasecmp(alg, "rs256") == 0 ? PAY_JWT_RS256 : PAY_JWT_ES256;
    k->pem = key_file(c, file, &len);
    k->pem_len = len;
}


static void conf_file(conf_t *c, const char *path, int depth);


/* payments_encryption_key FILE: the keyring, read as the module reads it */
static void
conf_keyring(conf_t *c, const char *path)
{
    char    *full, *text;
    size_t   len, bad_line;

    full = full_path(c, path);
    text = file_read(full, &len);

    c->keyring = calloc(1, sizeof(pay_keyring_t));
    if (c->keyring == NULL) {
        die("out of memory");
    }

    bad_line = 0;

    if (pay_keyring_parse(c->keyring, text, len, &bad_line) != 0) {
        die("payments_encryption_key %s: line %zu is not a key", full,
            bad_line);
    }

    OPENSSL_cleanse(text, len);
    free(text);
    free(full);
}


/* one directive: payments_psp and include matter, the rest is skipped */
static void
conf_directive(conf_t *c, char **w, size_t n, int depth)
{
    size_t    i, j;
    char     *full;
    psp_t    *psp;
    glob_t    g;

    if (strcmp(w[0], "include") == 0 && n == 2) {
        full = full_path(c, w[1]);

        if (glob(full, 0, NULL, &g) == 0) {
            for (j = 0; j < g.gl_pathc; j++) {
                conf_file(c, g.gl_pathv[j], depth + 1);
            }
            globfree(&g);
        }

        free(full);
        return;
    }

    if (strcmp(w[0], "payments_encryption_key") == 0 && n == 2
        && c->keyring == NULL)
    {
        conf_keyring(c, w[1]);
        return;
    }

    if (strcmp(w[0], "payments_psp") != 0 || n < 2) {
        return;
    }

    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->psp = realloc(c->psp, c->cap * sizeof(psp_t));
        if (c->psp == NULL) {
            die("out of memory");
        }
    }

    psp = &c->psp[c->n++];
    memset(psp, 0, sizeof(*psp));
    psp->name = strdup(w[1]);
    psp->header = (char *) "Payments-Verification";

    /* the dialect first: it decides what a secret file holds */
    for (i = 2; i < n; i++) {
        if (strncmp(w[i], "dialect=", 8) == 0) {
            psp->dl = pay_dialect_find(w[i] + 8, strlen(w[i] + 8));
        }
    }

    if (psp->dl == NULL) {
        die("payments_psp %s: no dialect= this tool knows", psp->name);
    }

    for (i = 2; i < n; i++) {
        if (strncmp(w[i], "webhook_secret_file=", 20) == 0) {
            psp_secret(c, psp, w[i] + 20);

        } else if (strncmp(w[i], "webhook_key=", 12) == 0) {
            psp_key(c, psp, w[i] + 12);

        } else if (strncmp(w[i], "webhook_header=", 15) == 0) {
            psp->header = strdup(w[i] + 15);
        }
    }
}


static void
conf_file(conf_t *c, const char *path, int depth)
{
    char    *text, *tok, **w;
    size_t   len, n, cap;
    lex_t    l;

    if (depth > INCLUDE_DEPTH) {
        die("%s: includes nested too deep", path);
    }

    text = file_read(path, &len);
    l.p = text;
    l.end = text + len;
    l.file = path;

    cap = 64;
    w = malloc(cap * sizeof(char *));
    n = 0;

    while (w != NULL && lex_next(&l, &tok)) {
        if (strcmp(tok, ";") == 0 || strcmp(tok, "{") == 0
            || strcmp(tok, "}") == 0)
        {
            if (n > 0 && tok[0] == ';') {
                conf_directive(c, w, n, depth);
            }

            n = 0;
            free(tok);
            continue;
        }

        if (n == cap) {
            cap *= 2;
            w = realloc(w, cap * sizeof(char *));
            if (w == NULL) {
                break;
            }
        }

        w[n++] = tok;
    }

    if (w == NULL) {
        die("out of memory");
    }

    free(w);
    free(text);
}


static psp_t *
conf_psp(conf_t *c, const char *name)
{
    size_t  i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->psp[i].name, name) == 0) {
            return &c->psp[i];
        }
    }

    return NULL;
}


/* --- the kept events ------------------------------------------------------ */

/* pay_header_pt over the kept header values (a JSON object) */
static const char *
kept_header(void *data, const char *name, size_t *len, unsigned *count)
{
    json_t      *o = data, *v;
    const char  *key;

    *len = 0;
    *count = 0;

    json_object_foreach(o, key, v) {
        if (strcasecmp(key, name) == 0 && json_is_string(v)) {
            *len = json_string_length(v);
            *count = 1;
            return json_string_value(v);
        }
    }

    return NULL;
}


typedef struct {
    long  verified, failed, nokey, nopsp;
} counts_t;


/* the columns after key_id (COLUMNS) */
enum {
    COL_KIND = 7, COL_TYPE, COL_TOKEN, COL_REFERENCE, COL_AMOUNT,
    COL_CURRENCY, COL_PAYMENT_REF, COL_OBJECT_REF, COL_MERCHANT,
    COL_CHECKOUT, COL_METHOD_SEALED, COL_METHOD_CUSTOMER, COL_TOKENS,
    COL_STATE, COL_RECORDED
};

/* the kinds whose reference is the checkout's own nonce */
static int
checkout_kind(const char *kind)
{
    static const char  *k[] = { "SUCCEEDED", "CAPTURED", "FAILED",
                                "PENDING", "AUTHORIZED", "METHOD_SAVED",
                                NULL };
    size_t              i;

    for (i = 0; k[i] != NULL; i++) {
        if (strcmp(kind, k[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
differs(char *out, size_t size, const char *field)
{
    size_t  n = strlen(out);

    snprintf(out + n, size - n, "%s%s", n ? "," : "", field);
}


/* what psp_tokens finds under one of the session token's keys, as the
 * gateway looks it up: "<merchant>:<checkout>" in out, or "" */
static void
token_finds(PGconn *pg, const char *psp, const char *key, char *out,
    size_t size)
{
    PGresult    *res;
    const char  *p[] = { psp, key };

    res = PQexecParams(pg, "SELECT merchant_id || ':' || checkout_id "
                       "FROM psp_tokens WHERE psp = $1 AND psp_token = $2",
                       2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        die("%s", PQerrorMessage(pg));
    }

    snprintf(out, size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
}


/* a reference of this gateway's: the nonce "<merchant_id>:<id>", each
 * [A-Za-z0-9_-]{1,64} (psp_event_state's test) */
static int
is_nonce(const char *ref)
{
    size_t       n;
    const char  *p, *colon;

    colon = strchr(ref, ':');
    if (colon == NULL) {
        return 0;
    }

    for (p = ref, n = 0; *p; p++) {
        if (p == colon) {
            if (n < 1 || n > 64) {
                return 0;
            }
            n = 0;
            continue;
        }

        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
        {
            return 0;
        }

        n++;
    }

    return n >= 1 && n <= 64;
}


/*
 * The session token's keys the row keeps (tokens, a JSON array here), which
 * pay_webhook_apply_core tries before the token itself, and a replay and
 * the sweeper's retry and forwarding try again: as the gateway keeps them,
 * the token's blind index (domain "psp_token:<psp>") under each key of its
 * payments_encryption_key, then the token; none without a key or a token.
 * Each must be the signed token or its index under a key of the
 * configuration's ring.  Another value is "tokens" in out; one that could
 * be an index under a key this configuration lacks (a retired one) cannot
 * be told from one written in: FAILED when psp_tokens finds another
 * checkout by it than the signed token (or the nonce the PSP signed)
 * names, else *unchecked.
 */
static void
tokens_check(conf_t *c, PGconn *pg, const char *psp, const char *token,
    const char *reference, const char *kept, char *out, size_t size,
    int *unchecked)
{
    int          ok, bad, unknown;
    char        *domain, own[300], found[300];
    char         idx[PAY_SEAL_KEYS_MAX][PAY_BLIND_INDEX_LEN + 1];
    size_t       i, k, nidx, len;
    json_t      *a, *v;
    const char  *e;

    if (kept[0] == '\0') {
        return;
    }

    a = json_loads(kept, 0, NULL);

    if (!json_is_array(a) || (token[0] == '\0' && json_array_size(a) > 0)) {
        differs(out, size, "tokens");
        json_decref(a);
        return;
    }

    if (asprintf(&domain, "psp_token:%s", psp) < 0) {
        die("out of memory");
    }

    nidx = 0;

    for (k = 0; c->keyring != NULL && k < c->keyring->n; k++) {
        if (pay_blind_index(c->keyring, k, domain, token, strlen(token),
                            idx[nidx])
            == 0)
        {
            nidx++;
        }
    }

    free(domain);
    bad = 0;
    unknown = 0;

    json_array_foreach(a, i, v) {
        e = json_string_value(v);

        if (e == NULL) {
            bad = 1;
            break;
        }

        if (strcmp(e, token) == 0) {
            continue;
        }

        for (k = 0, ok = 0; k < nidx && !ok; k++) {
            ok = (strcmp(e, idx[k]) == 0);
        }

        if (ok) {
            continue;
        }

        /* an index is lower-case hex of its length: else it is none */
        len = strlen(e);
        if (len != PAY_BLIND_INDEX_LEN
            || strspn(e, "0123456789abcdef") != len)
        {
            bad = 1;
            break;
        }

        unknown = 1;
    }

    if (!bad && unknown) {
        /* what the signed token finds, as the gateway looks it up (its
         * indexes under the keys here, then itself), else its nonce */
        own[0] = '\0';

        for (k = 0; k < nidx && own[0] == '\0'; k++) {
            token_finds(pg, psp, idx[k], own, sizeof(own));
        }

        if (own[0] == '\0') {
            token_finds(pg, psp, token, own, sizeof(own));
        }

        if (own[0] == '\0' && is_nonce(reference)) {
            snprintf(own, sizeof(own), "%s", reference);
        }

        json_array_foreach(a, i, v) {
            e = json_string_value(v);

            for (k = 0, ok = (strcmp(e, token) == 0); k < nidx && !ok; k++) {
                ok = (strcmp(e, idx[k]) == 0);
            }

            if (ok) {
                continue;
            }

            token_finds(pg, psp, e, found, sizeof(found));

            if (found[0] != '\0' && own[0] != '\0'
                && strcmp(found, own) != 0)
            {
                bad = 1;
                break;
            }
        }

        if (!bad) {
            *unchecked = 1;
        }
    }

    if (bad) {
        differs(out, size, "tokens");
    }

    json_decref(a);
}


/* a METHOD_SAVED row's sealed token against the signed one; a row kept
 * before the inbox kept it (none) has nothing to compare */
static void
method_check(conf_t *c, const pay_event_t *ev, const char *sealed,
    const char *customer, char *out, size_t size)
{
    int      ok;
    char     ad[300], *plain;
    size_t   slen, plen;

    slen = strlen(sealed);

    if (slen == 0) {
        return;
    }

    snprintf(ad, sizeof(ad), strchr(ev->reference, ':') != NULL
                             ? "payment_method:%s" : "payment_method:%s:",
             ev->reference);

    plain = malloc(slen + 1);
    if (plain == NULL) {
        die("out of memory");
    }

    ok = c->keyring != NULL
         && pay_unseal(c->keyring, ad, sealed, slen, plain, slen + 1, &plen)
            == 0
         && plen == strlen(ev->method)
         && memcmp(plain, ev->method, plen) == 0;

    OPENSSL_cleanse(plain, slen + 1);
    free(plain);

    if (!ok) {
        differs(out, size, "method");
    }

    if (strcmp(customer, ev->psp_customer) != 0) {
        differs(out, size, "psp_customer");
    }
}


/*
 * What the row keeps beside its bytes, against what the verified bytes
 * say, read again by the webhook's own parser (the dialect's
 * evidence_events): the event its id names among them, its kind, type,
 * session token and its keys (tokens_check), reference, amount, currency
 * and the PSP's ids, and the checkout it was matched to against the nonce
 * the PSP signed; and its state against what it says: 'applied' is
 * recorded (webhook_events), 'foreign' is no nonce of ours (else the
 * row is kept from the sweeper's retry).  The fields that differ,
 * comma-separated, in out ("" when none); *unchecked when its keys hold
 * one this configuration cannot check.
 */
static void
fields_check(conf_t *c, PGconn *pg, psp_t *psp, pay_webhook_conf_t *wc,
    json_t *headers, const unsigned char *body, size_t blen, PGresult *res,
    int row, char *out, size_t size, int *unchecked)
{
    int           saved;
    char          amount[32], nonce[300];
    size_t        n, i;
    const char   *evt, *kind, *m, *co, *ref;
    pay_event_t  *ev;

    static size_t        max;
    static pay_event_t  *events;

    out[0] = '\0';

    /* room for every event the bytes can carry: a whole Adyen batch kept
     * has no bound but its size, and each item signed takes more than 64
     * bytes of it */
    if (events == NULL || max < PAY_WEBHOOK_MAX_ITEMS + blen / 64) {
        free(events);
        max = PAY_WEBHOOK_MAX_ITEMS + blen / 64;
        events = malloc(max * sizeof(pay_event_t));
        if (events == NULL) {
            die("out of memory");
        }
    }

    memset(events, 0, max * sizeof(pay_event_t));
    evt = PQgetvalue(res, row, 1);
    n = 0;

    /* applied: pay_event_apply recorded it (not a saved method's, which
     * its payment_methods row records) */
    if (strcmp(PQgetvalue(res, row, COL_RECORDED), "false") == 0) {
        differs(out, size, "state");
    }

    /* kept unread (pay_event_keep_unreadable): nothing was parsed from its
     * bytes, and its id is their SHA-256 */
    if (strcmp(PQgetvalue(res, row, COL_KIND), "UNREADABLE") == 0) {
        unsigned char  md[SHA256_DIGEST_LENGTH];
        char           hex[2 * SHA256_DIGEST_LENGTH + 1];

        SHA256(body, blen, md);
        for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        }

        if (strncmp(evt, "unreadable:", 11) != 0 || strcmp(evt + 11, hex) != 0) {
            differs(out, size, "event_id");
        }

        return;
    }

    if (psp->dl->evidence_events(wc, kept_header, headers,
                                 (const char *) body, blen, events,
                                 max, &n)
        != 0)
    {
        n = 0;
    }

    ev = NULL;

    for (i = 0; i < n; i++) {
        if (strcmp(events[i].event_id, evt) == 0) {
            ev = &events[i];
            break;
        }
    }

    if (ev == NULL) {
        differs(out, size, "event_id");
        return;
    }

    kind = PQgetvalue(res, row, COL_KIND);
    saved = (ev->kind == PAY_EVT_METHOD_SAVED);

    if (strcmp(kind, pay_event_kind_name(ev)) != 0) {
        differs(out, size, "kind");
    }

    if (strcmp(PQgetvalue(res, row, COL_TYPE), ev->type) != 0) {
        differs(out, size, "type");
    }

    /* a saved method's row keeps no token open, nor money */
    if (strcmp(PQgetvalue(res, row, COL_TOKEN), saved ? "" : ev->token)
        != 0)
    {
        differs(out, size, "token");
    }

    tokens_check(c, pg, PQgetvalue(res, row, 0), saved ? "" : ev->token,
                 ev->reference, PQgetvalue(res, row, COL_TOKENS), out, size,
                 unchecked);

    ref = PQgetvalue(res, row, COL_REFERENCE);

    if (strcmp(ref, ev->reference) != 0) {
        differs(out, size, "reference");
    }

    /* foreign: another system's reference, never one of ours (nor none) */
    if (strcmp(PQgetvalue(res, row, COL_STATE), "foreign") == 0
        && (ev->reference[0] == '\0' || is_nonce(ev->reference)))
    {
        differs(out, size, "state");
    }

    if (!saved) {
        snprintf(amount, sizeof(amount), "%lld", (long long) ev->amount);

        if (strcmp(PQgetvalue(res, row, COL_AMOUNT), amount) != 0) {
            differs(out, size, "amount");
        }

        if (strcmp(PQgetvalue(res, row, COL_CURRENCY), ev->currency) != 0) {
            differs(out, size, "currency");
        }

        if (strcmp(PQgetvalue(res, row, COL_PAYMENT_REF), ev->payment_ref)
            != 0)
        {
            differs(out, size, "payment_ref");
        }

        if (strcmp(PQgetvalue(res, row, COL_OBJECT_REF), ev->object_ref)
            != 0)
        {
            differs(out, size, "object_ref");
        }
    }

    /* a saved method's token, as the row keeps it for a replay (sealed
     * for the checkout of its nonce), and the PSP's customer */
    if (saved) {
        method_check(c, ev, PQgetvalue(res, row, COL_METHOD_SEALED),
                     PQgetvalue(res, row, COL_METHOD_CUSTOMER), out, size);
    }

    /* the checkout it was matched to: a nonce "<merchant>:<id>" names its
     * merchant, and a checkout's own event names the checkout */
    m = PQgetvalue(res, row, COL_MERCHANT);
    co = PQgetvalue(res, row, COL_CHECKOUT);

    if (m[0] != '\0' && strchr(ev->reference, ':') != NULL) {
        if (strncmp(ev->reference, m, strlen(m)) != 0
            || ev->reference[strlen(m)] != ':')
        {
            differs(out, size, "merchant_id");

        } else if (co[0] != '\0' && checkout_kind(pay_event_kind_name(ev))) {
            snprintf(nonce, sizeof(nonce), "%s:%s", m, co);

            if (strcmp(nonce, ev->reference) != 0) {
                differs(out, size, "checkout_id");
            }
        }
    }
}


/* a sealed body opened: the bytes the PSP signed (malloc'd), or NULL
 * when it does not open (another row's, a key no longer in the file,
 * tampered) */
static unsigned char *
body_open(conf_t *c, const char *psp, const char *evt,
    const unsigned char *sealed, size_t *len)
{
    char           *ad;
    size_t          plen;
    unsigned char  *plain;

    if (asprintf(&ad, "psp_event:%s:%s", psp, evt) < 0) {
        die("out of memory");
    }

    plain = malloc(*len + 1);
    if (plain == NULL) {
        die("out of memory");
    }

    plen = 0;

    if (pay_unseal(c->keyring, ad, (const char *) sealed, *len, plain,
                   *len + 1, &plen)
        != 0)
    {
        free(plain);
        plain = NULL;
        plen = 0;
    }

    free(ad);
    *len = plen;

    return plain;
}


/* one row: psp, event_id, received (text), received (epoch), headers,
 * body (hex bytea), key_id, and the fields it keeps (COL_*) */
static void
verify_row(conf_t *c, PGconn *pg, PGresult *res, int row, counts_t *n)
{
    int                  found, sealed, unchecked;
    char                 fields[160];
    size_t               blen, i;
    json_t              *headers;
    psp_t               *psp;
    pay_err_e            err;
    const char          *name, *evt, *at, *key_id, *result;
    unsigned char       *body, *opened;
    pay_webhook_conf_t   wc;

    name = PQgetvalue(res, row, 0);
    evt = PQgetvalue(res, row, 1);
    at = PQgetvalue(res, row, 2);
    key_id = PQgetvalue(res, row, 6);

    psp = conf_psp(c, name);
    if (psp == NULL) {
        printf("%sno psp\t%s\t%s\t%s\t%s\n", shard_col, at, name, evt, key_id);
        n->nopsp++;
        return;
    }

    memset(&wc, 0, sizeof(wc));
    wc.header = psp->header;
    wc.tolerance = 300;

    /* the key the row names, alone; "ring" (or none named): any of them */
    found = 0;

    if (strcmp(key_id, "ring") == 0 || key_id[0] == '\0') {
        wc.secrets = psp->secrets;
        wc.nsecrets = psp->nsecrets;
        wc.keys = psp->keys;
        wc.nkeys = psp->nkeys;
        found = (psp->nsecrets + psp->nkeys) > 0;

    } else {
        for (i = 0; i < psp->nsecrets && !found; i++) {
            if (strcmp(psp->secret_id[i], key_id) == 0) {
                wc.secrets = &psp->secrets[i];
                wc.nsecrets = 1;
                found = 1;
            }
        }

        for (i = 0; i < psp->nkeys && !found; i++) {
            if (strcmp(psp->keys[i].kid, key_id) == 0) {
                wc.keys = &psp->keys[i];
                wc.nkeys = 1;
                found = 1;
            }
        }
    }

    if (!found) {
        printf("%sno key\t%s\t%s\t%s\t%s\n", shard_col, at, name, evt, key_id);
        n->nokey++;
        return;
    }

    headers = json_loads(PQgetvalue(res, row, 4), 0, NULL);
    sealed = 0;
    body = PQunescapeBytea((const unsigned char *) PQgetvalue(res, row, 5),
                           &blen);

    /* a sealed body: opened first (its associated data names the row) */
    if (body != NULL && blen >= 3 && memcmp(body, "v1.", 3) == 0) {
        if (c->keyring == NULL) {
            printf("%sno key\t%s\t%s\t%s\t%s\tsealed: no "
                   "payments_encryption_key in the configuration\n",
                   shard_col, at,
                   name, evt, key_id);
            n->nokey++;
            json_decref(headers);
            PQfreemem(body);
            return;
        }

        opened = body_open(c, name, evt, body, &blen);
        PQfreemem(body);
        body = opened;
        sealed = 1;
    }

    if (!json_is_object(headers) || body == NULL) {
        err = PAY_ERR_BAD_SIGNATURE;

    } else {
        err = psp->dl->evidence_verify(&wc, kept_header, headers,
                                       (const char *) body, blen,
                                       strtoll(PQgetvalue(res, row, 3), NULL,
                                               10));
    }

    /* authentic bytes: the row's fields must be what they say */
    fields[0] = '\0';
    unchecked = 0;

    if (err == PAY_ERR_NONE) {
        fields_check(c, pg, psp, &wc, headers, body, blen, res, row, fields,
                     sizeof(fields), &unchecked);
    }

    json_decref(headers);

    if (sealed) {
        if (body != NULL) {
            OPENSSL_cleanse(body, blen);
        }
        free(body);

    } else {
        PQfreemem(body);
    }

    /* authentic, but its session token's keys hold one under a key this
     * configuration lacks: said as a key rotated out is */
    if (err == PAY_ERR_NONE && fields[0] == '\0' && unchecked) {
        printf("%sno key\t%s\t%s\t%s\t%s\ttokens: an index under a key "
               "not in %s\n", shard_col, at, name, evt, key_id,
               c->keyring != NULL ? "payments_encryption_key"
               : "the configuration (no payments_encryption_key)");
        n->nokey++;
        return;
    }

    if (err == PAY_ERR_NONE && fields[0] == '\0') {
        result = "verified";
        n->verified++;

    } else {
        result = "FAILED";
        n->failed++;
    }

    if (fields[0] != '\0') {
        printf("%s%s\t%s\t%s\t%s\t%s\tnot as signed: %s\n", shard_col,
               result, at,
               name, evt, key_id, fields);

    } else {
        printf("%s%s\t%s\t%s\t%s\t%s\n", shard_col, result, at, name, evt,
               key_id);
    }
}


static PGresult *
query(PGconn *db, const char *sql, int nparams, const char *const *params)
{
    PGresult  *res;

    res = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK
        && PQresultStatus(res) != PGRES_COMMAND_OK)
    {
        die("%s", PQerrorMessage(db));
    }

    return res;
}


#define COLUMNS \
    "SELECT psp, event_id, " \
    "to_char(received_at AT TIME ZONE 'UTC', " \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " \
    "extract(epoch FROM received_at)::bigint, headers::text, body, " \
    "coalesce(key_id, ''), kind, type, coalesce(token, ''), " \
    "coalesce(reference, ''), coalesce(amount::text, ''), " \
    "coalesce(currency, ''), coalesce(payment_ref, ''), " \
    "coalesce(object_ref, ''), coalesce(merchant_id, ''), " \
    "coalesce(checkout_id, ''), coalesce(method ->> 'token_sealed', ''), " \
    "coalesce(method ->> 'psp_customer', ''), " \
    "coalesce(array_to_json(tokens)::text, ''), state, " \
    "CASE WHEN state = 'applied' AND kind <> 'METHOD_SAVED' THEN " \
    "(EXISTS (SELECT 1 FROM webhook_events we WHERE we.psp = psp_events.psp " \
    "AND we.event_id = psp_events.event_id))::text ELSE '' END " \
    "FROM psp_events "


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: " ME " --db CONNINFO | --shards FILE [--conf NGINX_CONF]\n"
        "       [--psp NAME] [--event ID ...] [--since TIME] [--until TIME]\n"
        "       " ME " --shards FILE --list-shards\n"
        "\n"
        "Verifies the kept PSP events' signatures again with the keys of\n"
        "the gateway's configuration (payments-events(1), verify).\n");
}


/*
 * One database's events verified into n (the caller's counts); found[i]
 * set when events[i] is kept here.  Returns 0, or -1 when the database
 * does not answer (over shards: the message names it, the others go on;
 * else exits 2).
 */
static int
verify_db(const char *db, conf_t *conf, const char *psp, char **events,
    int nev, int *found, const char *since, const char *until, counts_t *n,
    int sharded)
{
    int        c, i;
    PGconn    *pg;
    PGresult  *res;

    pg = PQconnectdb(db);
    if (PQstatus(pg) != CONNECTION_OK) {
        if (!sharded) {
            die("%s", PQerrorMessage(pg));
        }
        fprintf(stderr, ME ": shard %.*s: %s", (int) strlen(shard_col) - 1,
                shard_col, PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }

    PQclear(query(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
                  NULL));
    PQclear(query(pg, "SET LOCAL bytea_output = hex", 0, NULL));

    if (nev > 0) {
        for (i = 0; i < nev; i++) {
            const char  *p[] = { psp, events[i], NULL };

            /*
             * its month by its id (psp_event_ids), then its row in that
             * month's partition alone: the time is bound as a value the
             * plan is made with, so no other month is opened
             */
            res = query(pg, "SELECT to_char(received_at AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD HH24:MI:SS.US') || '+00' "
                        "FROM psp_event_ids WHERE psp = $1 AND event_id = $2",
                        2, p);

            if (PQntuples(res) == 0) {
                PQclear(res);
                continue;
            }

            p[2] = strdup(PQgetvalue(res, 0, 0));
            PQclear(res);
            if (p[2] == NULL) {
                die("out of memory");
            }

            res = query(pg, COLUMNS "WHERE psp = $1 AND event_id = $2 "
                        "AND received_at = $3 ORDER BY received_at", 3, p);
            free((char *) p[2]);

            if (PQntuples(res) > 0) {
                found[i] = 1;
            }

            for (c = 0; c < PQntuples(res); c++) {
                verify_row(conf, pg, res, c, n);
            }

            PQclear(res);
        }

    } else {
        const char  *p[] = { psp, since, until };

        PQclear(query(pg, "DECLARE kept NO SCROLL CURSOR FOR " COLUMNS
                      "WHERE ($1 = '' OR psp = $1) "
                      "AND ($2 = '' OR received_at >= "
                      "nullif($2, '')::timestamptz) "
                      "AND ($3 = '' OR received_at < "
                      "nullif($3, '')::timestamptz) "
                      "ORDER BY received_at, psp, event_id", 3, p));

        for ( ;; ) {
            res = query(pg, "FETCH " "500" " FROM kept", 0, NULL);

            for (c = 0; c < PQntuples(res); c++) {
                verify_row(conf, pg, res, c, n);
            }

            i = PQntuples(res);
            PQclear(res);

            if (i < FETCH) {
                break;
            }
        }
    }

    PQclear(query(pg, "COMMIT", 0, NULL));
    PQfinish(pg);

    return 0;
}


int
main(int argc, char **argv)
{
    int           c, i, nev, *found, list, down, db_given;
    char         *db, *conf_path, *psp, *since, *until, **events, *dir;
    char          err[512];
    const char   *shards;
    conf_t        conf;
    counts_t      n;
    long          missing;
    pay_shards_t  sh;

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "shards", required_argument, NULL, 'S' },
        { "list-shards", no_argument, NULL, 'L' },
        { "conf", required_argument, NULL, 'c' },
        { "psp", required_argument, NULL, 'p' },
        { "event", required_argument, NULL, 'e' },
        { "since", required_argument, NULL, 's' },
        { "until", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    db = getenv("PAYMENTS_DB");
    shards = NULL;
    db_given = 0;
    list = 0;
    conf_path = (char *) "/etc/nginx/nginx.conf";
    psp = (char *) "";
    since = (char *) "";
    until = (char *) "";
    events = calloc((size_t) argc, sizeof(char *));
    found = calloc((size_t) argc, sizeof(int));
    nev = 0;

    if (events == NULL || found == NULL) {
        die("out of memory");
    }

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; db_given = 1; break;
        case 'S': shards = optarg; break;
        case 'L': list = 1; break;
        case 'c': conf_path = optarg; break;
        case 'p': psp = optarg; break;
        case 'e': events[nev++] = optarg; break;
        case 's': since = optarg; break;
        case 'u': until = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }

    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    if (pay_shards_file_of(shards, db_given, &shards) != 0) {
        die("--db or --shards, not both");
    }

    if (list) {
        if (shards == NULL) {
            die("--list-shards needs --shards FILE");
        }
        if (pay_shards_load(shards, &sh, err, sizeof(err)) != 0) {
            die("%s", err);
        }
        for (i = 0; i < (int) sh.n; i++) {
            printf("%s\t%s\n", sh.shard[i].name, sh.shard[i].conninfo);
        }
        pay_shards_free(&sh);
        return 0;
    }

    if (shards == NULL && (db == NULL || db[0] == '\0')) {
        die("no database: pass --db CONNINFO or set PAYMENTS_DB");
    }

    if (nev > 0 && psp[0] == '\0') {
        die("--event needs --psp");
    }

    if (shards != NULL && pay_shards_load(shards, &sh, err, sizeof(err)) != 0)
    {
        die("%s", err);
    }

    memset(&conf, 0, sizeof(conf));
    dir = strdup(conf_path);
    if (dir == NULL) {
        die("out of memory");
    }
    conf.prefix = dirname(dir);
    conf_file(&conf, conf_path, 0);

    if (conf.n == 0) {
        die("%s names no payments_psp", conf_path);
    }

    memset(&n, 0, sizeof(n));
    missing = 0;
    down = 0;

    if (shards == NULL) {
        (void) verify_db(db, &conf, psp, events, nev, found, since, until, &n,
                         0);

    } else {
        /* a shard that does not answer is known within seconds */
        setenv("PGCONNECT_TIMEOUT", getenv("PGCONNECT_TIMEOUT") != NULL
                                    ? getenv("PGCONNECT_TIMEOUT") : "5", 1);

        for (i = 0; i < (int) sh.n; i++) {
            snprintf(shard_col, sizeof(shard_col), "%s\t", sh.shard[i].name);
            if (verify_db(sh.shard[i].conninfo, &conf, psp, events, nev,
                          found, since, until, &n, 1) != 0)
            {
                down++;
            }
        }
        pay_shards_free(&sh);
    }

    for (i = 0; i < nev; i++) {
        if (!found[i]) {
            fprintf(stderr, ME ": no such event is kept: %s %s\n", psp,
                    events[i]);
            missing++;
        }
    }

    printf("%ld verified, %ld failed, %ld without their key, "
           "%ld of a psp not configured\n", n.verified, n.failed, n.nokey,
           n.nopsp);

    if (down) {
        fprintf(stderr, ME ": %d shard%s did not answer: their events are "
                "not verified\n", down, down == 1 ? "" : "s");
        return 2;
    }

    return (n.failed || n.nokey || n.nopsp || missing) ? 1 : 0;
}
