/*
 * payments-reconcile: a PSP's settlement report against the ledger.
 *
 *   payments-reconcile --db CONNINFO --psp NAME --dialect stripe|adyen|generic
 *                      REPORT.csv [--html OUT.html] [--dry-run]
 *
 * Reads the report with the core's parser (src/settlement.c: libcsv, the
 * core's money rules), refuses it before touching the database when it
 * cannot be read, then in ONE transaction: recon_begin (by the file's
 * sha256: the same bytes twice write nothing), COPY of the rows,
 * recon_run (match, fix, classify), recon_checks (the internal
 * checks).  A transaction that PostgreSQL aborts to break a deadlock (or a
 * serialization failure) is rolled back whole and run again, ATTEMPTS
 * times at most.  Prints counts and amounts per class and currency and
 * what it booked, writes an HTML report of every mismatch and its evidence.
 *
 * A report books money as a signed webhook would (lost webhooks applied,
 * fees and rounding remainders booked).  --dry-run runs the very same
 * transaction, reports from inside it what it did, and rolls it back:
 * nothing is booked, the report is not recorded (a real run of the same
 * file later is not "reconciled before").
 *
 * Exit status: 0 nothing needs a person, 1 something does (needs_person or
 * unclassified, still open), 2 error (nothing written); a dry run's is the
 * status the real run would have.
 */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <payments/money.h>
#include <payments/psp.h>
#include <payments/settlement.h>

#define ME "payments-reconcile"

/* runs of a report's transaction that lost a deadlock, at most */
#define ATTEMPTS  5

/* the bookings listed one per line, at most (--html lists every one) */
#define BOOKED_LINES  50

typedef struct {
    pay_sr_row_t  *rows;
    size_t         n, cap;
} rows_t;


static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

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


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: " ME " --db CONNINFO --psp NAME --dialect stripe|adyen|generic\n"
        "       REPORT.csv [--html OUT.html] [--dry-run]\n"
        "\n"
        "Reconciles a PSP's settlement report with the ledger (see "
        "payments-reconcile(1)).\n"
        "--dry-run: match everything and report what would be booked, "
        "then roll it all back.\n"
        "CONNINFO defaults to $PAYMENTS_DB.  Exit status: 0 nothing needs a "
        "person,\n1 something does, 2 error (nothing written).\n");
}


static int
collect(const pay_sr_row_t *row, void *ctx)
{
    rows_t        *r = ctx;
    pay_sr_row_t  *p;

    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        p = realloc(r->rows, r->cap * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        r->rows = p;
    }
    r->rows[r->n++] = *row;

    return 0;
}


static char *
read_file(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf, *p;
    size_t   cap, n, got;

    f = fopen(path, "rb");
    if (f == NULL) {
        die("%s: %s", path, strerror(errno));
    }

    cap = 1 << 16;
    n = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        die("out of memory");
    }

    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            p = realloc(buf, cap);
            if (p == NULL) {
                die("out of memory");
            }
            buf = p;
        }
    }

    if (ferror(f)) {
        die("%s: read error", path);
    }
    fclose(f);

    *len = n;
    return buf;
}


static void
sha256_hex(const char *buf, size_t len, char out[65])
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen, i;

    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != 32)
    {
        die("sha256 failed");
    }

    for (i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}


/* COPY's text format: backslash, tab, newline and carriage return escaped. */
static void
copy_field(char **p, char *end, const char *s, int last)
{
    char  *o = *p;

    for (; *s != '\0' && o + 2 < end; s++) {
        switch (*s) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        default: *o++ = *s; break;
        }
    }
    if (o < end) {
        *o++ = last ? '\n' : '\t';
    }
    *p = o;
}


/*
 * sql's result; on another status the transaction is rolled back and the
 * tool exits 2, except that when may_lose, a deadlock or a serialization
 * failure (SQLSTATE 40P01, 40001) returns NULL: the transaction lost to
 * another one, is rolled back and may run again.
 */
static PGresult *
q_or_lost(PGconn *db, const char *sql, int n, const char *const *params,
    ExecStatusType want, int may_lose)
{
    PGresult    *res;
    const char  *state;

    res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == want) {
        return res;
    }

    fprintf(stderr, ME ": %s", PQresultErrorMessage(res));
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (may_lose && state != NULL
        && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
    {
        PQclear(res);
        PQclear(PQexec(db, "ROLLBACK"));
        return NULL;
    }

    PQclear(res);
    PQclear(PQexec(db, "ROLLBACK"));
    PQfinish(db);
    fprintf(stderr, ME ": nothing was written\n");
    exit(2);
}


static PGresult *
q(PGconn *db, const char *sql, int n, const char *const *params,
    ExecStatusType want)
{
    return q_or_lost(db, sql, n, params, want, 0);
}


/* minor units of currency -> "-12.34"; "?" on an unknown currency */
static void
money_str(const char *amount, const char *currency, char *buf, size_t size)
{
    const pay_currency_t  *c;
    long long              v;
    char                  *end;
    int                    neg;

    c = (currency != NULL) ? pay_currency_find(currency, strlen(currency))
                           : NULL;
    errno = 0;
    v = strtoll(amount, &end, 10);
    if (c == NULL || errno != 0 || *end != '\0' || v == INT64_MIN) {
        snprintf(buf, size, "%s", amount);
        return;
    }

    neg = v < 0;
    buf[0] = '-';
    if (pay_amount_format(neg ? -v : v, c->exponent, buf + neg, size - neg)
        < 0)
    {
        snprintf(buf, size, "%s", amount);
    }
}


static void
html_esc(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f); break;
        }
    }
}


/* The HTML report into f, opened (and so checked) before the report's
 * transaction; a write error now comes after the commit and says so. */
static void
write_html(PGconn *db, FILE *f, const char *path, const char *report_id,
    const char *psp, const char *file, PGresult *summary, int dry)
{
    PGresult    *res;
    int          i;
    char         amt[64];
    const char  *p[1] = { report_id };

    res = q(db,
        "SELECT m.mismatch_id, coalesce(m.record::text, ''), m.class, m.kind, "
        "       coalesce(m.merchant_id, ''), coalesce(m.checkout_id, ''), "
        "       coalesce(m.currency, ''), coalesce(m.amount::text, ''), "
        "       jsonb_pretty(m.evidence), "
        "       CASE WHEN m.resolved_at IS NULL THEN '' "
        "            ELSE 'resolved ' || m.resolved_at || ': ' "
        "                 || coalesce(m.resolution, '') END "
        "  FROM recon_mismatches m WHERE m.report_id = $1 "
        " ORDER BY CASE m.class WHEN 'needs_person' THEN 1 "
        "          WHEN 'unclassified' THEN 2 ELSE 3 END, m.mismatch_id",
        1, p, PGRES_TUPLES_OK);

    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<title>Reconciliation report ", f);
    html_esc(f, report_id);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:2em}"
          "table{border-collapse:collapse}td,th{border:1px solid #999;"
          "padding:.3em .6em;vertical-align:top;text-align:left}"
          ".needs_person{background:#fde2e2}.unclassified{background:#fff3cd}"
          ".auto_fixed{background:#e6f4ea}pre{margin:0;font-size:.85em;"
          "white-space:pre-wrap}</style></head><body>\n<h1>Reconciliation "
          "report ", f);
    html_esc(f, report_id);
    fputs(dry ? " (dry run: nothing was booked; the report id is not "
                "kept)</h1>\n<p>PSP <b>" : "</h1>\n<p>PSP <b>", f);
    html_esc(f, psp);
    fputs("</b>, file <code>", f);
    html_esc(f, file);
    fputs("</code></p>\n<h2>Summary</h2>\n<table><tr><th>class</th>"
          "<th>kind</th><th>currency</th><th>count</th><th>amount</th></tr>\n",
          f);

    for (i = 0; i < PQntuples(summary); i++) {
        money_str(PQgetvalue(summary, i, 4), PQgetvalue(summary, i, 2), amt,
                  sizeof(amt));
        fputs("<tr class=\"", f);
        html_esc(f, PQgetvalue(summary, i, 0));
        fputs("\"><td>", f);
        html_esc(f, PQgetvalue(summary, i, 0));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(summary, i, 1));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(summary, i, 2));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(summary, i, 3));
        fputs("</td><td>", f);
        html_esc(f, amt);
        fputs("</td></tr>\n", f);
    }

    fprintf(f, "</table>\n<h2>Mismatches (%d)</h2>\n<table><tr><th>#</th>"
            "<th>record</th><th>class</th><th>kind</th><th>merchant</th>"
            "<th>checkout</th><th>amount</th><th>evidence</th></tr>\n",
            PQntuples(res));

    for (i = 0; i < PQntuples(res); i++) {
        money_str(PQgetvalue(res, i, 7), PQgetvalue(res, i, 6), amt,
                  sizeof(amt));
        fputs("<tr class=\"", f);
        html_esc(f, PQgetvalue(res, i, 2));
        fputs("\"><td>", f);
        html_esc(f, PQgetvalue(res, i, 0));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(res, i, 1));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(res, i, 2));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(res, i, 3));
        if (PQgetvalue(res, i, 9)[0] != '\0') {
            fputs("<br><i>", f);
            html_esc(f, PQgetvalue(res, i, 9));
            fputs("</i>", f);
        }
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(res, i, 4));
        fputs("</td><td>", f);
        html_esc(f, PQgetvalue(res, i, 5));
        fputs("</td><td>", f);
        html_esc(f, amt);
        fputc(' ', f);
        html_esc(f, PQgetvalue(res, i, 6));
        fputs("</td><td><pre>", f);
        html_esc(f, PQgetvalue(res, i, 8));
        fputs("</pre></td></tr>\n", f);
    }

    fputs("</table>\n</body></html>\n", f);

    if (ferror(f) || fclose(f) != 0) {
        if (dry) {
            die("--html %s: write error; the dry run is rolled back", path);
        }
        die("report %s is committed, but its HTML could not be written to "
            "%s: run the same file again with --html to write it", report_id,
            path);
    }

    PQclear(res);
}


static void
print_summary(PGresult *summary)
{
    int   i;
    char  amt[64];

    if (PQntuples(summary) == 0) {
        printf("  no mismatches\n");
        return;
    }

    printf("  %-13s %-28s %-4s %7s %16s\n", "class", "kind", "cur", "count",
           "amount");
    for (i = 0; i < PQntuples(summary); i++) {
        money_str(PQgetvalue(summary, i, 4), PQgetvalue(summary, i, 2), amt,
                  sizeof(amt));
        printf("  %-13s %-28s %-4s %7s %16s\n", PQgetvalue(summary, i, 0),
               PQgetvalue(summary, i, 1), PQgetvalue(summary, i, 2),
               PQgetvalue(summary, i, 3), amt);
    }
}


/* What the run booked (or, dry, would book): its auto_fixed mismatches. */
static void
print_booked(PGconn *db, const char *report_id, int dry)
{
    PGresult    *res;
    int          i, n;
    char         amt[64];
    const char  *p[1] = { report_id };

    res = q(db,
        "SELECT coalesce(record::text, '-'), kind, coalesce(merchant_id, '-'),"
        "       coalesce(nullif(concat_ws(' ', checkout_id, object_id), ''),"
        "                '-'),"
        "       coalesce(amount::text, ''), coalesce(currency, '')"
        "  FROM recon_mismatches"
        " WHERE report_id = $1 AND class = 'auto_fixed'"
        " ORDER BY mismatch_id", 1, p, PGRES_TUPLES_OK);

    n = PQntuples(res);
    printf("  %s: %d\n", dry ? "would book" : "booked", n);

    for (i = 0; i < n && i < BOOKED_LINES; i++) {
        money_str(PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), amt,
                  sizeof(amt));
        printf("    record %s %s merchant %s %s %s %s\n",
               PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
               PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), amt,
               PQgetvalue(res, i, 5));
    }

    if (n > BOOKED_LINES) {
        printf("    ... and %d more (--html lists every one)\n",
               n - BOOKED_LINES);
    }

    PQclear(res);
}


static int
valid_psp(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.'
              || s[i] == '-'))
        {
            return 0;
        }
    }
    return i >= 1 && i <= 32;
}


/*
 * One attempt at writing the report, in one transaction: 0 when it
 * committed or was reconciled before (*already), 1 when the transaction
 * lost a deadlock or a serialization failure and was rolled back: nothing
 * of it was written and it may run again.  Any other error exits 2.  Dry,
 * the transaction is left open (0) when it has run: the caller reports
 * from inside it and rolls it back.
 */
static int
write_report(PGconn *db, const rows_t *rows, const char *psp,
    const char *dialect, const char *sha, const char *path, char *report_id,
    size_t id_size, int *already, int dry)
{
    PGresult    *res;
    const char  *p[5];
    char         nrows[32], *copy, *o;
    size_t       i, cap;

    PQclear(q(db, "BEGIN", 0, NULL, PGRES_COMMAND_OK));

    snprintf(nrows, sizeof(nrows), "%zu", rows->n);
    p[0] = psp;
    p[1] = dialect;
    p[2] = sha;
    p[3] = path;
    p[4] = nrows;
    res = q_or_lost(db, "SELECT recon_begin($1, $2, $3, $4, $5::int)", 5, p,
                    PGRES_TUPLES_OK, 1);
    if (res == NULL) {
        return 1;
    }
    *already = PQgetisnull(res, 0, 0);
    snprintf(report_id, id_size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    if (*already) {
        PQclear(q(db, "ROLLBACK", 0, NULL, PGRES_COMMAND_OK));
        p[0] = sha;
        res = q(db, "SELECT recon_report_of($1)", 1, p, PGRES_TUPLES_OK);
        snprintf(report_id, id_size, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        printf(ME ": %s (sha256 %s) was reconciled before as report %s: "
               "nothing done\n", path, sha, report_id);
        return 0;
    }

    /* COPY the rows in */
    PQclear(q(db, "COPY recon_rows (report_id, record, row_id, type, "
              "psp_type, payment_ref, object_ref, reference, currency, "
              "gross, fee, net, net_currency, booked_on) FROM STDIN",
              0, NULL, PGRES_COPY_IN));

    cap = 1 << 20;
    copy = malloc(cap);
    if (copy == NULL) {
        die("out of memory");
    }

    for (i = 0; i < rows->n; i++) {
        const pay_sr_row_t  *r = &rows->rows[i];
        char                 num[4][32];

        o = copy;
        snprintf(num[0], sizeof(num[0]), "%ld", r->record);
        snprintf(num[1], sizeof(num[1]), "%lld", (long long) r->gross);
        snprintf(num[2], sizeof(num[2]), "%lld", (long long) r->fee);
        snprintf(num[3], sizeof(num[3]), "%lld", (long long) r->net);
        copy_field(&o, copy + cap, report_id, 0);
        copy_field(&o, copy + cap, num[0], 0);
        copy_field(&o, copy + cap, r->row_id, 0);
        copy_field(&o, copy + cap, pay_sr_type_name(r->type), 0);
        copy_field(&o, copy + cap, r->psp_type, 0);
        copy_field(&o, copy + cap, r->payment_ref, 0);
        copy_field(&o, copy + cap, r->object_ref, 0);
        copy_field(&o, copy + cap, r->reference, 0);
        copy_field(&o, copy + cap, r->currency, 0);
        copy_field(&o, copy + cap, num[1], 0);
        copy_field(&o, copy + cap, num[2], 0);
        copy_field(&o, copy + cap, num[3], 0);
        copy_field(&o, copy + cap, r->net_currency, 0);
        copy_field(&o, copy + cap, r->date, 1);

        if (PQputCopyData(db, copy, (int) (o - copy)) != 1) {
            die("COPY: %s", PQerrorMessage(db));
        }
    }
    free(copy);

    if (PQputCopyEnd(db, NULL) != 1) {
        die("COPY: %s", PQerrorMessage(db));
    }
    res = PQgetResult(db);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        die("COPY: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    while ((res = PQgetResult(db)) != NULL) {
        PQclear(res);
    }

    /* recon_run takes the rows' checkouts, orders, wallets and audit chains
     * in the report's order, a webhook in its own: the two can deadlock,
     * and PostgreSQL then aborts one of them */
    p[0] = report_id;
    res = q_or_lost(db, "SELECT recon_run($1)", 1, p, PGRES_TUPLES_OK, 1);
    if (res == NULL) {
        return 1;
    }
    PQclear(res);
    res = q_or_lost(db, "SELECT recon_checks($1)", 1, p, PGRES_TUPLES_OK, 1);
    if (res == NULL) {
        return 1;
    }
    PQclear(res);

    if (dry) {
        return 0;
    }

    res = q_or_lost(db, "COMMIT", 0, NULL, PGRES_COMMAND_OK, 1);
    if (res == NULL) {
        return 1;
    }
    PQclear(res);

    return 0;
}


int
main(int argc, char **argv)
{
    FILE           *hf;
    const char     *conninfo, *psp, *dialect, *html, *path;
    pay_dialect_e   d;
    char           *buf, err[512], sha[65];
    size_t          len;
    long            n;
    rows_t          rows;
    PGconn         *db;
    PGresult       *res, *summary;
    const char     *p[5];
    char            report_id[32];
    int             opt, already, rc, attempt, dry;
    long long       open_items;
    struct timespec t0, t1, nap;
    double          secs;

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "psp", required_argument, NULL, 'p' },
        { "dialect", required_argument, NULL, 'D' },
        { "html", required_argument, NULL, 'H' },
        { "dry-run", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    conninfo = getenv("PAYMENTS_DB");
    psp = NULL;
    dialect = NULL;
    html = NULL;
    dry = 0;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': conninfo = optarg; break;
        case 'p': psp = optarg; break;
        case 'D': dialect = optarg; break;
        case 'H': html = optarg; break;
        case 'n': dry = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }

    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    path = argv[optind];

    if (conninfo == NULL || conninfo[0] == '\0') {
        die("no database: pass --db CONNINFO or set PAYMENTS_DB");
    }
    if (psp == NULL || !valid_psp(psp)) {
        die("--psp NAME is required: the PSP's name as the gateway's "
            "payments_psp calls it");
    }
    if (dialect == NULL) {
        die("--dialect stripe|adyen|generic is required");
    }
    d = pay_dialect_parse(dialect, strlen(dialect));
    if (d == 0) {
        die("unknown dialect \"%s\": stripe, adyen or generic", dialect);
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);

    /* the whole report is read before anything is written */
    buf = read_file(path, &len);
    sha256_hex(buf, len, sha);
    memset(&rows, 0, sizeof(rows));
    n = pay_sr_parse(d, buf, len, collect, &rows, err, sizeof(err));
    if (n < 0) {
        die("%s: refused, nothing written: %s", path, err);
    }
    free(buf);

    /* opened before anything is written: a bad path refuses the run */
    hf = NULL;
    if (html != NULL) {
        hf = fopen(html, "w");
        if (hf == NULL) {
            die("--html %s: %s; nothing written", html, strerror(errno));
        }
    }

    db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        die("cannot connect: %s", PQerrorMessage(db));
    }

    for (attempt = 1; write_report(db, &rows, psp, dialect, sha, path,
                                   report_id, sizeof(report_id), &already,
                                   dry);
         attempt++)
    {
        if (attempt == ATTEMPTS) {
            PQfinish(db);
            die("the report's transaction lost to other transactions %d "
                "times; nothing was written: run it again", ATTEMPTS);
        }
        /* 0.2 s, 0.4 s, ...: the gateway's transactions are short */
        fprintf(stderr, ME ": the report's transaction lost a deadlock with "
                "another transaction and was rolled back; running it again "
                "(attempt %d of %d)\n", attempt + 1, ATTEMPTS);
        nap.tv_sec = 0;
        nap.tv_nsec = 200000000L * attempt;
        nanosleep(&nap, NULL);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double) (t1.tv_sec - t0.tv_sec)
           + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;

    p[0] = report_id;
    summary = q(db, "SELECT * FROM recon_summary($1)", 1, p,
                PGRES_TUPLES_OK);
    res = q(db, "SELECT recon_open($1)", 1, p, PGRES_TUPLES_OK);
    open_items = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);

    if (!already) {
        res = q(db, "SELECT coalesce(outcome, '?'), count(*) FROM recon_rows "
                "WHERE report_id = $1 GROUP BY 1 ORDER BY 1", 1, p,
                PGRES_TUPLES_OK);
        if (dry) {
            printf(ME ": dry run of %s, psp %s, %ld rows in %.3f s: "
                   "nothing is booked, the transaction is rolled back\n",
                   path, psp, n, secs);

        } else {
            printf(ME ": report %s: %s, psp %s, %ld rows in %.3f s\n",
                   report_id, path, psp, n, secs);
        }
        printf("  rows:");
        for (rc = 0; rc < PQntuples(res); rc++) {
            printf(" %s %s", PQgetvalue(res, rc, 0), PQgetvalue(res, rc, 1));
        }
        printf("\n");
        PQclear(res);
    }

    print_summary(summary);

    if (!already) {
        print_booked(db, report_id, dry);
    }

    if (html != NULL) {
        write_html(db, hf, html, report_id, psp, path, summary, dry);
        printf("  HTML: %s\n", html);
    }

    printf("  open for a person: %lld\n", open_items);

    if (dry && !already) {
        PQclear(q(db, "ROLLBACK", 0, NULL, PGRES_COMMAND_OK));
        printf("  dry run: rolled back, nothing was booked or recorded\n");
    }

    PQclear(summary);
    PQfinish(db);
    free(rows.rows);

    return open_items > 0 ? 1 : 0;
}
