/*
 * payments-secrets: the operator's side of secrets at rest
 * (doc/NOTIFICATIONS.md, "Secrets at rest").
 *
 *   payments-secrets new-key KID
 *   payments-secrets new-secret --key-file F --ad AD
 *   payments-secrets seal --key-file F --ad AD          (plaintext on stdin)
 *   payments-secrets check-endpoint [--allow-loopback] URL
 *   payments-secrets rekey --db CONNINFO --key-file F
 *   payments-secrets rekey --shards FILE --key-file F
 *
 * --key-file - reads the key file on standard input (but for seal, whose
 * standard input is the plaintext).
 *
 * An offline tool: it blocks (getaddrinfo, libpq) as a command line does.
 * It prints a key only in new-key's line and a secret only in new-secret's
 * first line; errors never quote one.
 */
#include <payments/notify.h>
#include <payments/seal.h>
#include <payments/shards_file.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define ME          "payments-secrets"
#define KEYFILE_MAX (16 * 1024)
#define REKEY_BATCH 100


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
    exit(1);
}


static void
usage(FILE *f)
{
    fputs("usage: " ME " new-key KID\n"
          "       " ME " new-secret --key-file FILE --ad ID\n"
          "       " ME " seal --key-file FILE --ad ID   < plaintext\n"
          "       " ME " check-endpoint [--allow-loopback] URL\n"
          "       " ME " rekey --db CONNINFO | --shards FILE --key-file FILE\n"
          "FILE - reads the key file on standard input (not with seal).\n",
          f);
}


/* What to do when the key file cannot be opened: the usual causes on a
 * Debian install: the file is its owner's alone (mode 0600). */
static const char *
keyfile_advice(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
        return "run this as root or the key file's owner (no group may "
               "read it: nginx refuses such a file; doc/OPERATIONS.md, "
               "\"Install checklist\"), or give the file on standard "
               "input: --key-file - < FILE";
    case ENOENT:
        return "check the path: nginx's payments_encryption_key names it";
    case ELOOP:
        return "the key file may not be a symbolic link: name the file "
               "itself, or give it on standard input: --key-file - < FILE";
    default:
        return "check the path and its permissions";
    }
}


/* The key file, refused unless it is a regular file of mode 0600 or
 * stricter, like nginx refuses it; "-"
 * reads it from standard input (a pipe from whoever may read the file). */
static void
keyring_load(const char *path, pay_keyring_t *kr)
{
    int          fd, err;
    char        *buf;
    size_t       bad, got;
    ssize_t      n;
    struct stat  st;

    if (strcmp(path, "-") == 0) {
        fd = STDIN_FILENO;
        path = "on standard input";

    } else {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            die("cannot open the key file %s: %s; %s", path, strerror(err),
                keyfile_advice(err));
        }

        if (fstat(fd, &st) != 0) {
            err = errno;
            die("the key file %s: %s; %s", path, strerror(err),
                keyfile_advice(err));
        }

        if (!S_ISREG(st.st_mode)) {
            die("the key file %s is not a regular file: name the file "
                "itself, or give it on standard input: --key-file - < FILE",
                path);
        }

        if (st.st_mode & 077) {
            die("the key file %s is readable by group or others (mode "
                "%03o): chmod 600, as nginx requires",
                path, (unsigned) (st.st_mode & 0777));
        }
    }

    buf = OPENSSL_malloc(KEYFILE_MAX + 1);
    if (buf == NULL) {
        die("out of memory");
    }

    got = 0;

    for ( ;; ) {
        n = read(fd, buf + got, KEYFILE_MAX + 1 - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0) {
            err = errno;
            die("cannot read the key file %s: %s; %s", path, strerror(err),
                keyfile_advice(err));
        }

        if (n == 0) {
            break;
        }

        got += (size_t) n;

        if (got > KEYFILE_MAX) {
            break;
        }
    }

    if (fd != STDIN_FILENO) {
        close(fd);
    }

    if (got == 0 || got > KEYFILE_MAX) {
        OPENSSL_clear_free(buf, KEYFILE_MAX + 1);
        die("the key file %s is empty or larger than %d bytes: give the "
            "file that nginx's payments_encryption_key names", path,
            KEYFILE_MAX);
    }

    if (pay_keyring_parse(kr, buf, got, &bad) != 0) {
        OPENSSL_clear_free(buf, KEYFILE_MAX + 1);

        if (bad) {
            die("the key file %s: line %zu is not \"<kid> <base64 of 32 "
                "bytes>\" (or repeats a kid, or is the ninth key); "
                "payments-secrets new-key KID makes a line", path, bad);
        }

        die("the key file %s holds no key; payments-secrets new-key KID "
            "makes one", path);
    }

    OPENSSL_clear_free(buf, KEYFILE_MAX + 1);
}


static int
cmd_new_key(int argc, char **argv)
{
    size_t         i, len;
    char           out[45];
    unsigned char  key[PAY_SEAL_KEY_LEN];

    if (argc != 2) {
        usage(stderr);
        return 2;
    }

    len = strlen(argv[1]);

    for (i = 0; i < len; i++) {
        char c = argv[1][i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            break;
        }
    }

    if (len == 0 || len > PAY_SEAL_KID_MAX || i != len) {
        die("a key id is 1 to %d characters of [A-Za-z0-9_-]",
            PAY_SEAL_KID_MAX);
    }

    if (RAND_bytes(key, sizeof(key)) != 1) {
        die("no randomness");
    }

    EVP_EncodeBlock((unsigned char *) out, key, sizeof(key));
    printf("%s %s\n", argv[1], out);

    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(out, sizeof(out));

    return fflush(stdout) == 0 ? 0 : 1;
}


static void
key_and_ad(int argc, char **argv, const char **file, const char **ad)
{
    int  i;

    *file = getenv("PAYMENTS_KEY_FILE");
    *ad = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc) {
            *file = argv[++i];

        } else if (strcmp(argv[i], "--ad") == 0 && i + 1 < argc) {
            *ad = argv[++i];

        } else {
            usage(stderr);
            exit(2);
        }
    }

    if (*file == NULL || **file == '\0') {
        die("no key file: --key-file FILE or $PAYMENTS_KEY_FILE");
    }

    if (*ad == NULL || **ad == '\0' || strlen(*ad) > 200) {
        die("--ad ID (the row's id, 1 to 200 characters) is needed");
    }
}


static int
cmd_new_secret(int argc, char **argv)
{
    char           secret[PAY_WHSEC_TEXT_MAX], *sealed;
    size_t         cap;
    const char    *file, *ad;
    pay_keyring_t  kr;

    key_and_ad(argc, argv, &file, &ad);
    keyring_load(file, &kr);

    cap = pay_seal_len(sizeof(secret)) + 1;
    sealed = malloc(cap);

    if (sealed == NULL || pay_whsec_new(secret, sizeof(secret)) != 0
        || pay_seal(&kr, ad, secret, strlen(secret), sealed, cap) != 0)
    {
        die("cannot make a secret");
    }

    printf("%s\n%s\n", secret, sealed);

    OPENSSL_cleanse(secret, sizeof(secret));
    pay_keyring_wipe(&kr);
    free(sealed);

    return fflush(stdout) == 0 ? 0 : 1;
}


static int
cmd_seal(int argc, char **argv)
{
    char           in[4097], *sealed;
    size_t         n, cap;
    const char    *file, *ad;
    pay_keyring_t  kr;

    key_and_ad(argc, argv, &file, &ad);

    if (strcmp(file, "-") == 0) {
        die("seal reads the plaintext on standard input: give the key file "
            "by its path (--key-file FILE)");
    }

    keyring_load(file, &kr);

    n = fread(in, 1, sizeof(in), stdin);
    if (n == sizeof(in)) {
        die("the plaintext is longer than %zu bytes", sizeof(in) - 1);
    }

    if (n && in[n - 1] == '\n') {
        n--;
    }

    if (n == 0) {
        die("nothing to seal on stdin");
    }

    cap = pay_seal_len(n) + 1;
    sealed = malloc(cap);

    if (sealed == NULL || pay_seal(&kr, ad, in, n, sealed, cap) != 0) {
        die("cannot seal");
    }

    printf("%s\n", sealed);

    OPENSSL_cleanse(in, sizeof(in));
    pay_keyring_wipe(&kr);
    free(sealed);

    return fflush(stdout) == 0 ? 0 : 1;
}


static int
cmd_check_endpoint(int argc, char **argv)
{
    int               rc, allow_loopback, i;
    char              host[256];
    const char       *url, *why;
    struct addrinfo   hints, *res, *ai;

    allow_loopback = 0;
    url = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--allow-loopback") == 0) {
            allow_loopback = 1;

        } else if (url == NULL && argv[i][0] != '-') {
            url = argv[i];

        } else {
            usage(stderr);
            return 2;
        }
    }

    if (url == NULL) {
        usage(stderr);
        return 2;
    }

    if (pay_endpoint_url_check(url, strlen(url), allow_loopback, host,
                               sizeof(host), &why)
        != 0)
    {
        die("the URL is refused: %s", why);
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, "443", &hints, &res);
    if (rc != 0) {
        die("%s does not resolve: %s", host, gai_strerror(rc));
    }

    for (ai = res; ai; ai = ai->ai_next) {
        if (pay_addr_forbidden(ai->ai_addr, allow_loopback)) {
            freeaddrinfo(res);
            die("%s resolves to a loopback, private, link-local or reserved "
                "address", host);
        }
    }

    freeaddrinfo(res);
    printf("%s\n", host);

    return fflush(stdout) == 0 ? 0 : 1;
}


/*
 * What rekey re-seals: a table's sealed columns, each opened with the
 * associated data of its row.  A column with an index_* entry has a blind
 * index kept next to it (in another table) that is rewritten under the
 * first key too.
 */
typedef struct {
    const char  *table;
    const char  *key;       /* the row's key: two columns */
    const char  *ad_sql;    /* the associated data */
    const char  *column;
    unsigned     legacy:1;  /* a value without "v1." is plaintext from
                               before sealing: seal it */
    unsigned     token:1;   /* a PSP token: psp_tokens keeps its blind
                               index, rewritten under the first key */
} rekey_column_t;


static const rekey_column_t  rekey_columns[] = {
    { "notify_endpoints", "merchant_id, endpoint_id", "endpoint_id",
      "secret_sealed", 0, 0 },
    { "notify_endpoints", "merchant_id, endpoint_id", "endpoint_id",
      "prev_secret_sealed", 0, 0 },
    { "checkouts", "merchant_id, checkout_id",
      "merchant_id || ':' || checkout_id", "psp_token", 1, 1 },
    { "checkouts", "merchant_id, checkout_id",
      "'psp_url:' || merchant_id || ':' || checkout_id", "psp_url", 1, 0 },
    /* a stored answer is sealed only when it names a token (a
     * registration's): plaintext ones stay as they are */
    { "idempotency_keys", "merchant_id, idem_key",
      "'response:' || merchant_id || ':' || idem_key", "response_body", 0,
      0 },
    { NULL, NULL, NULL, NULL, 0, 0 }
};


static PGresult *
exec_ok(PGconn *db, const char *sql, int n, const char *const *v,
    ExecStatusType want)
{
    PGresult  *res;

    res = PQexecParams(db, sql, n, NULL, v, NULL, NULL, 0);

    if (PQresultStatus(res) != want) {
        die("%s", PQerrorMessage(db));
    }

    return res;
}


/* Pipelined statements: sent one after another, their results read at
 * the batch's end (one round trip per batch, not per row). */
static void
send_ok(PGconn *db, const char *sql, int n, const char *const *v)
{
    if (PQsendQueryParams(db, sql, n, NULL, v, NULL, NULL, 0) != 1) {
        die("%s", PQerrorMessage(db));
    }
}


/* The results of the pipeline up to its sync: every statement must have
 * succeeded. */
static void
pipeline_end(PGconn *db)
{
    PGresult        *res;
    ExecStatusType   st;

    if (PQpipelineSync(db) != 1) {
        die("%s", PQerrorMessage(db));
    }

    for ( ;; ) {
        res = PQgetResult(db);
        if (res == NULL) {
            continue;           /* the end of one statement's results */
        }
        st = PQresultStatus(res);
        PQclear(res);

        if (st == PGRES_PIPELINE_SYNC) {
            break;
        }
        if (st != PGRES_COMMAND_OK) {
            die("%s", PQerrorMessage(db));
        }
    }

    if (PQexitPipelineMode(db) != 1) {
        die("%s", PQerrorMessage(db));
    }
}


/*
 * psp_tokens' row of a checkout: its token's blind index under the first
 * key (domain "psp_token:<psp>", as the gateway computes it).  The row is
 * found by its primary key, (psp, the token as it is stored now): the
 * token itself (from before sealing) or its index under one of the keys.
 * psp_tokens has no index by checkout, which registrations would pay for.
 */
static void
rekey_index(PGconn *db, const pay_keyring_t *kr, const char *merchant,
    const char *checkout, const char *psp, const char *token, size_t len)
{
    char         domain[64], sql[512], *o;
    char         idx[PAY_SEAL_KEYS_MAX][PAY_BLIND_INDEX_LEN + 1];
    const char  *v[4 + PAY_SEAL_KEYS_MAX];
    size_t       i;

    snprintf(domain, sizeof(domain), "psp_token:%s", psp);

    for (i = 0; i < kr->n; i++) {
        if (pay_blind_index(kr, i, domain, token, len, idx[i]) != 0) {
            die("cannot compute a blind index");
        }
        v[4 + i] = idx[i];
    }

    v[0] = merchant;
    v[1] = checkout;
    v[2] = psp;
    v[3] = token;

    o = sql + snprintf(sql, sizeof(sql),
                       "UPDATE psp_tokens SET psp_token = $5 "
                       "WHERE psp = $3 AND psp_token IN ($4");
    for (i = 0; i < kr->n; i++) {
        o += snprintf(o, sizeof(sql) - (size_t) (o - sql), ", $%zu", 5 + i);
    }
    snprintf(o, sizeof(sql) - (size_t) (o - sql),
             ") AND psp_token <> $5 AND merchant_id = $1 "
             "AND checkout_id = $2");

    send_ok(db, sql, 4 + (int) kr->n, v);
}


/* One batch of one column: up to REKEY_BATCH rows after *last (the key
 * order) not sealed under the first key, re-sealed in one transaction, the
 * updates pipelined.  A value that does not open is named on stderr,
 * counted in *bad and left as it is.  Returns the rows read; *last is the
 * last row's key. */
static int
rekey_batch(PGconn *db, const pay_keyring_t *kr, const rekey_column_t *rc,
    const char *current, char *last[2], int *done, int *bad)
{
    int          i, n;
    char         sql[1024], *plain, *sealed;
    size_t       plen, cap;
    const char  *v[3];
    const char  *s;
    PGresult    *res;

    PQclear(exec_ok(db, "BEGIN", 0, NULL, PGRES_COMMAND_OK));

    snprintf(sql, sizeof(sql),
             "SELECT %s, %s, %s%s FROM %s WHERE %s IS NOT NULL "
             "AND NOT starts_with(%s, $1) %s%s%s AND (%s) > ($2, $3) "
             "ORDER BY %s LIMIT %d FOR UPDATE",
             rc->key, rc->ad_sql, rc->column, rc->token ? ", psp" : "",
             rc->table, rc->column, rc->column,
             rc->legacy ? "" : "AND starts_with(", rc->legacy ? "" : rc->column,
             rc->legacy ? "" : ", 'v1.')", rc->key, rc->key, REKEY_BATCH);

    v[0] = current;
    v[1] = last[0];
    v[2] = last[1];
    res = exec_ok(db, sql, 3, v, PGRES_TUPLES_OK);
    n = PQntuples(res);

    snprintf(sql, sizeof(sql), "UPDATE %s SET %s = $3 WHERE (%s) = ($1, $2)",
             rc->table, rc->column, rc->key);

    if (PQenterPipelineMode(db) != 1) {
        die("%s", PQerrorMessage(db));
    }

    for (i = 0; i < n; i++) {
        s = PQgetvalue(res, i, 3);
        plen = (size_t) PQgetlength(res, i, 3);
        plain = OPENSSL_malloc(plen + 1);
        cap = pay_seal_len(plen) + 1;
        sealed = malloc(cap);

        if (plain == NULL || sealed == NULL) {
            die("out of memory");
        }

        if (rc->legacy && strncmp(s, "v1.", 3) != 0) {
            memcpy(plain, s, plen);     /* from before sealing */
            plain[plen] = '\0';

        } else if (pay_unseal(kr, PQgetvalue(res, i, 2), s, plen, plain,
                              plen + 1, &plen)
                   != 0)
        {
            fprintf(stderr, ME ": %s.%s of row (%s, %s) does not open with "
                    "the key file (its key is missing, or the value was "
                    "moved from another row): left as it is\n",
                    rc->table, rc->column, PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1));
            (*bad)++;
            OPENSSL_free(plain);
            free(sealed);
            continue;
        }

        if (pay_seal(kr, PQgetvalue(res, i, 2), plain, plen, sealed, cap)
            != 0)
        {
            die("cannot seal");
        }

        v[0] = PQgetvalue(res, i, 0);
        v[1] = PQgetvalue(res, i, 1);

        if (rc->token) {
            rekey_index(db, kr, v[0], v[1], PQgetvalue(res, i, 4), plain,
                        plen);
        }

        OPENSSL_clear_free(plain, plen + 1);

        /* libpq has copied the parameters into its output buffer */
        v[2] = sealed;
        send_ok(db, sql, 3, v);
        free(sealed);
        (*done)++;
    }

    pipeline_end(db);

    if (n > 0) {
        free(last[0]);
        free(last[1]);
        last[0] = strdup(PQgetvalue(res, n - 1, 0));
        last[1] = strdup(PQgetvalue(res, n - 1, 1));

        if (last[0] == NULL || last[1] == NULL) {
            die("out of memory");
        }
    }

    PQclear(res);
    PQclear(exec_ok(db, "COMMIT", 0, NULL, PGRES_COMMAND_OK));

    return n;
}


/*
 * One database re-sealed under kr's first key; prefix ("" or "shard NAME:
 * ") before its lines.  Returns how many values did not open, or -1 when
 * the database does not answer and sharded (else exits 2).
 */
static int
rekey_db(const char *conninfo, const pay_keyring_t *kr, const char *prefix,
    int sharded)
{
    int                    n, done, bad, unopened;
    char                   current[PAY_SEAL_KID_MAX + 8], *last[2];
    PGconn                *db;
    const rekey_column_t  *rc;

    /* "v1.<kid>.": what is sealed under the first key already */
    snprintf(current, sizeof(current), "v1.%s.", kr->keys[0].kid);

    db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        if (!sharded) {
            die("cannot connect: %s", PQerrorMessage(db));
        }
        fprintf(stderr, ME ": %scannot connect: %s", prefix,
                PQerrorMessage(db));
        PQfinish(db);
        return -1;
    }

    unopened = 0;

    for (rc = rekey_columns; rc->table; rc++) {
        done = 0;
        bad = 0;
        last[0] = strdup("");
        last[1] = strdup("");

        do {
            n = rekey_batch(db, kr, rc, current, last, &done, &bad);
        } while (n == REKEY_BATCH);

        free(last[0]);
        free(last[1]);

        printf("%s%s.%s: %d re-sealed under %s, %d did not open\n", prefix,
               rc->table, rc->column, done, kr->keys[0].kid, bad);
        unopened += bad;
    }

    PQfinish(db);

    return unopened;
}


/*
 * Over shards (--shards FILE, or $PAYMENTS_SHARDS without --db): every
 * shard in turn, its lines prefixed "shard NAME: "; a shard that does not
 * answer is named and the others go on (exit 1 at the end: run it again,
 * what is re-sealed already is skipped).
 */
static int
cmd_rekey(int argc, char **argv)
{
    int            i, u, bad, down, db_given;
    char           prefix[PAY_SHARD_NAME_MAX + 16], err[512];
    const char    *conninfo, *file, *shards;
    pay_keyring_t  kr;
    pay_shards_t   sh;

    conninfo = getenv("PAYMENTS_DB");
    file = getenv("PAYMENTS_KEY_FILE");
    shards = NULL;
    db_given = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            conninfo = argv[++i];
            db_given = 1;

        } else if (strcmp(argv[i], "--shards") == 0 && i + 1 < argc) {
            shards = argv[++i];

        } else if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc) {
            file = argv[++i];

        } else {
            usage(stderr);
            return 2;
        }
    }

    if (pay_shards_file_of(shards, db_given, &shards) != 0) {
        die("--db or --shards, not both");
    }

    if ((shards == NULL && conninfo == NULL) || file == NULL) {
        die("--db CONNINFO and --key-file FILE are needed");
    }

    if (shards != NULL && pay_shards_load(shards, &sh, err, sizeof(err)) != 0)
    {
        die("%s", err);
    }

    keyring_load(file, &kr);

    if (shards == NULL) {
        bad = rekey_db(conninfo, &kr, "", 0);
        down = 0;

    } else {
        /* a shard that does not answer is known within seconds */
        setenv("PGCONNECT_TIMEOUT", getenv("PGCONNECT_TIMEOUT") != NULL
                                    ? getenv("PGCONNECT_TIMEOUT") : "5", 1);
        bad = 0;
        down = 0;
        for (i = 0; i < (int) sh.n; i++) {
            snprintf(prefix, sizeof(prefix), "shard %s: ", sh.shard[i].name);
            u = rekey_db(sh.shard[i].conninfo, &kr, prefix, 1);
            if (u < 0) {
                down++;
            } else {
                bad += u;
            }
        }
        pay_shards_free(&sh);
    }

    pay_keyring_wipe(&kr);

    if (fflush(stdout) != 0) {
        return 1;
    }

    if (down) {
        fprintf(stderr, ME ": %d shard%s did not answer: run rekey again\n",
                down, down == 1 ? "" : "s");
        return 1;
    }

    /* 3: done, but some values stay as they were (named on stderr) */
    return bad ? 3 : 0;
}


int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }

    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }

    if (strcmp(argv[1], "new-key") == 0) {
        return cmd_new_key(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "new-secret") == 0) {
        return cmd_new_secret(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "seal") == 0) {
        return cmd_seal(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "check-endpoint") == 0) {
        return cmd_check_endpoint(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "rekey") == 0) {
        return cmd_rekey(argc - 1, argv + 1);
    }

    usage(stderr);
    return 2;
}
