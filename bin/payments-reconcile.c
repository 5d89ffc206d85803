/*
 * payments-reconcile: a PSP's settlement report against the ledger.
 *
 *   payments-reconcile --db CONNINFO --psp NAME --dialect stripe|adyen|generic
 *                      REPORT.csv [--html OUT.html] [--dry-run]
 *   payments-reconcile --shards FILE ...
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
 *
 * Over shards (--shards FILE, or $PAYMENTS_SHARDS without --db; the file
 * of include/payments/shards_file.h), in two phases.  First, on every
 * shard, read only: recon_owned says which rows the shard owns (by the
 * nonce's merchant, else the PSP's payment or object id); a shard that
 * does not answer, a row two shards claim or a PSP no shard knows stops
 * the run with 2, nothing written anywhere.  Then each shard reconciles
 * its own rows in its own transaction, as above (a child process each,
 * in the file's order, so that one shard's error is its own); the home
 * shard, the first, also takes the rows no shard owns (fees, bank
 * pay-outs, others' payments).  Each shard records the report by the
 * file's sha256 with its name (recon_begin): a run again after some
 * shards failed does only those.  The exit status is the worst shard's.
 */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <payments/money.h>
#include <payments/psp.h>
#include <payments/settlement.h>
#include <payments/shards_file.h>

#define ME "payments-reconcile"

/* runs of a report's transaction that lost a deadlock, at most */
#define ATTEMPTS  5

/* the bookings listed one per line, at most (--html lists every one) */
#define BOOKED_LINES  50

typedef struct {
    pay_sr_row_t  *rows;
    size_t         n, cap;
} rows_t;


/* over shards: "shard NAME: " before this process's messages, else "" */
static char  shard_tag[PAY_SHARD_NAME_MAX + 16];


static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, ME ": %s", shard_tag);
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
        "       " ME " --shards FILE ... (every shard's own rows)\n"
        "\n"
        "Reconciles a PSP's settlement report with the ledger (see "
        "payments-reconcile(1)).\n"
        "--dry-run: match everything and report what would be booked, "
        "then roll it all back.\n"
        "CONNINFO defaults to $PAYMENTS_DB; FILE to $PAYMENTS_SHARDS without "
        "--db.\nExit status: 0 nothing needs a "
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


/* COPY's NULL, the row's last field */
static void
copy_null(char **p, char *end)
{
    if (end - *p >= 3) {
        memcpy(*p, "\\N\n", 3);
        *p += 3;
    }
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

    fprintf(stderr, ME ": %s%s", shard_tag, PQresultErrorMessage(res));
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
    fprintf(stderr, ME ": %snothing was written\n", shard_tag);
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


/* An HTML document's start, up to its body: title is the two strings */
static void
html_head(FILE *f, const char *title, const char *title2)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<title>", f);
    html_esc(f, title);
    html_esc(f, title2);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:2em}"
          "table{border-collapse:collapse}td,th{border:1px solid #999;"
          "padding:.3em .6em;vertical-align:top;text-align:left}"
          ".needs_person{background:#fde2e2}.unclassified{background:#fff3cd}"
          ".auto_fixed{background:#e6f4ea}pre{margin:0;font-size:.85em;"
          "white-space:pre-wrap}</style></head><body>\n", f);
}


/* The HTML report into f, opened (and so checked) before the report's
 * transaction; a write error now comes after the commit and says so.
 * Over shards, one shard's section of the parent's document (shard its
 * name; f is flushed, not closed), else the whole document (shard NULL). */
static void
write_html(PGconn *db, FILE *f, const char *path, const char *report_id,
    const char *psp, const char *file, PGresult *summary, int dry,
    const char *shard)
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

    if (shard == NULL) {
        html_head(f, "Reconciliation report ", report_id);
        fputs("<h1>Reconciliation report ", f);

    } else {
        fputs("<h1 id=\"shard-", f);
        html_esc(f, shard);
        fputs("\">Shard ", f);
        html_esc(f, shard);
        fputs(": reconciliation report ", f);
    }
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

    fputs(shard == NULL ? "</table>\n</body></html>\n" : "</table>\n", f);

    if (ferror(f) || (shard == NULL ? fclose(f) : fflush(f)) != 0) {
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
    size_t id_size, int *already, int dry, const char *shard)
{
    PGresult    *res;
    const char  *p[6];
    char         nrows[32], *copy, *o;
    size_t       i, cap;

    PQclear(q(db, "BEGIN", 0, NULL, PGRES_COMMAND_OK));

    snprintf(nrows, sizeof(nrows), "%zu", rows->n);
    p[0] = psp;
    p[1] = dialect;
    p[2] = sha;
    p[3] = path;
    p[4] = nrows;
    p[5] = shard;
    res = q_or_lost(db, shard == NULL
                        ? "SELECT recon_begin($1, $2, $3, $4, $5::int)"
                        : "SELECT recon_begin($1, $2, $3, $4, $5::int, $6)",
                    shard == NULL ? 5 : 6, p, PGRES_TUPLES_OK, 1);
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
        printf(ME ": %s%s (sha256 %s) was reconciled before as report %s: "
               "nothing done\n", shard_tag, path, sha, report_id);
        return 0;
    }

    /* COPY the rows in */
    PQclear(q(db, "COPY recon_rows (report_id, record, row_id, type, "
              "psp_type, payment_ref, object_ref, reference, currency, "
              "gross, fee, net, net_currency, booked_on, psp_gross, psp_fee, "
              "psp_net, customer_currency, customer_amount) FROM STDIN",
              0, NULL, PGRES_COPY_IN));

    cap = 1 << 20;
    copy = malloc(cap);
    if (copy == NULL) {
        die("out of memory");
    }

    for (i = 0; i < rows->n; i++) {
        const pay_sr_row_t  *r = &rows->rows[i];
        char                 num[5][32];

        o = copy;
        snprintf(num[0], sizeof(num[0]), "%ld", r->record);
        snprintf(num[1], sizeof(num[1]), "%lld", (long long) r->gross);
        snprintf(num[2], sizeof(num[2]), "%lld", (long long) r->fee);
        snprintf(num[3], sizeof(num[3]), "%lld", (long long) r->net);
        snprintf(num[4], sizeof(num[4]), "%lld",
                 (long long) r->customer_amount);
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
        copy_field(&o, copy + cap, r->date, 0);
        copy_field(&o, copy + cap, r->gross_psp, 0);
        copy_field(&o, copy + cap, r->fee_psp, 0);
        copy_field(&o, copy + cap, r->net_psp, 0);
        copy_field(&o, copy + cap, r->customer_currency, 0);
        if (r->customer_currency[0] != '\0') {
            copy_field(&o, copy + cap, num[4], 1);
        } else {
            copy_null(&o, copy + cap);
        }

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


/*
 * The report's rows on one database (the whole report, or over shards one
 * shard's part, shard its name): its transaction, then what it did on
 * stdout and in the HTML.  Returns the exit status; an error exits 2.
 */
static int
run_one(const char *conninfo, const rows_t *rows, const char *psp,
    const char *dialect, const char *sha, const char *path, const char *html,
    FILE *hf, int dry, const char *shard, const struct timespec *t0)
{
    PGconn          *db;
    PGresult        *res, *summary;
    const char      *p[1];
    char             report_id[32];
    int              rc, attempt, already;
    long long        open_items;
    struct timespec  t1, nap;
    double           secs;

    db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        die("cannot connect: %s", PQerrorMessage(db));
    }

    for (attempt = 1; write_report(db, rows, psp, dialect, sha, path,
                                   report_id, sizeof(report_id), &already,
                                   dry, shard);
         attempt++)
    {
        if (attempt == ATTEMPTS) {
            PQfinish(db);
            die("the report's transaction lost to other transactions %d "
                "times; nothing was written: run it again", ATTEMPTS);
        }
        /* 0.2 s, 0.4 s, ...: the gateway's transactions are short */
        fprintf(stderr, ME ": %sthe report's transaction lost a deadlock "
                "with another transaction and was rolled back; running it "
                "again (attempt %d of %d)\n", shard_tag, attempt + 1,
                ATTEMPTS);
        nap.tv_sec = 0;
        nap.tv_nsec = 200000000L * attempt;
        nanosleep(&nap, NULL);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double) (t1.tv_sec - t0->tv_sec)
           + (double) (t1.tv_nsec - t0->tv_nsec) / 1e9;

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
            printf(ME ": %sdry run of %s, psp %s, %zu rows in %.3f s: "
                   "nothing is booked, the transaction is rolled back\n",
                   shard_tag, path, psp, rows->n, secs);

        } else {
            printf(ME ": %sreport %s: %s, psp %s, %zu rows in %.3f s\n",
                   shard_tag, report_id, path, psp, rows->n, secs);
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
        write_html(db, hf, html, report_id, psp, path, summary, dry, shard);
        printf("  HTML: %s\n", html);
    }

    printf("  open for a person: %lld\n", open_items);

    if (dry && !already) {
        PQclear(q(db, "ROLLBACK", 0, NULL, PGRES_COMMAND_OK));
        printf("  dry run: rolled back, nothing was booked or recorded\n");
    }

    PQclear(summary);
    PQfinish(db);

    return open_items > 0 ? 1 : 0;
}


/* over shards, the first phase's connection to shard i, or NULL with the
 * reason on stderr */
static PGconn *
shard_connect(const pay_shards_t *sh, size_t i)
{
    PGconn  *db;

    db = PQconnectdb(sh->shard[i].conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, ME ": shard %s: cannot connect: %s",
                sh->shard[i].name, PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }

    return db;
}


/*
 * The first phase, on every shard, read only: owner[r] is the index of the
 * shard that owns row r (the home shard's, 0, for the rows none owns).
 * Any shard that does not answer, a row that two shards claim, or a PSP
 * that no shard ever saw: exits 2, nothing written anywhere.
 */
static void
shards_own(const pay_shards_t *sh, const rows_t *rows, const char *psp,
    size_t *owner)
{
    PGconn       *db;
    PGresult     *res;
    json_t       *arr, *o;
    char         *js;
    const char   *p[2];
    size_t        i, r, lo, hi;
    long          rec;
    int           k, known, bad;

    arr = json_array();
    for (r = 0; r < rows->n; r++) {
        o = json_pack("{s:I, s:s, s:s, s:s}",
                      "record", (json_int_t) rows->rows[r].record,
                      "reference", rows->rows[r].reference,
                      "payment_ref", rows->rows[r].payment_ref,
                      "object_ref", rows->rows[r].object_ref);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            die("cannot write the rows as JSON (not UTF-8?); nothing written");
        }
    }
    js = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (js == NULL) {
        die("out of memory");
    }

    for (r = 0; r < rows->n; r++) {
        owner[r] = (size_t) -1;
    }

    known = 0;
    bad = 0;
    p[0] = psp;
    p[1] = js;

    for (i = 0; i < sh->n; i++) {
        db = shard_connect(sh, i);
        if (db == NULL) {
            bad = 1;
            continue;
        }

        res = PQexec(db, "BEGIN TRANSACTION READ ONLY");
        PQclear(res);
        res = PQexecParams(db,
            "SELECT o.record, o.merchant_id, o.found_by,"
            "       EXISTS (SELECT 1 FROM checkouts c WHERE c.psp = $1)"
            "  FROM (SELECT NULL::int AS record, NULL AS merchant_id,"
            "               NULL AS found_by"
            "        UNION ALL"
            "        SELECT * FROM recon_owned($1, $2::jsonb)) o",
            2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, ME ": shard %s: %s", sh->shard[i].name,
                    PQresultErrorMessage(res));
            PQclear(res);
            PQfinish(db);
            bad = 1;
            continue;
        }

        for (k = 0; k < PQntuples(res); k++) {
            if (PQgetvalue(res, k, 3)[0] == 't') {
                known = 1;
            }
            if (PQgetisnull(res, k, 0)) {
                continue;
            }
            /* the parser numbers the rows in order (not one by one: a
             * record may span lines) */
            rec = atol(PQgetvalue(res, k, 0));
            lo = 0;
            hi = rows->n;
            while (lo < hi) {
                r = lo + (hi - lo) / 2;
                if (rows->rows[r].record < rec) {
                    lo = r + 1;
                } else {
                    hi = r;
                }
            }
            r = lo;
            if (r == rows->n || rows->rows[r].record != rec) {
                continue;
            }
            if (owner[r] != (size_t) -1) {
                fprintf(stderr, ME ": record %ld is owned by shard %s and "
                        "shard %s (merchant %s, by %s): a merchant lives on "
                        "one shard\n", rec, sh->shard[owner[r]].name,
                        sh->shard[i].name, PQgetvalue(res, k, 1),
                        PQgetvalue(res, k, 2));
                bad = 1;
                continue;
            }
            owner[r] = i;
        }

        PQclear(res);
        PQfinish(db);
    }

    free(js);

    if (bad) {
        die("refused, nothing written on any shard");
    }
    if (!known) {
        die("unknown PSP \"%s\": no checkout was ever registered with it on "
            "any shard; nothing written", psp);
    }

    for (r = 0; r < rows->n; r++) {
        if (owner[r] == (size_t) -1) {
            owner[r] = 0;
        }
    }
}


/*
 * Over shards: the first phase, then each shard's part in a child process
 * of its own (one shard's error exits that child alone), in the file's
 * order.  Returns the worst exit status.
 */
static int
run_shards(const char *file, const rows_t *rows, const char *psp,
    const char *dialect, const char *sha, const char *path, const char *html,
    FILE *hf, int dry, const struct timespec *t0)
{
    pay_shards_t   sh;
    rows_t         part;
    size_t        *owner, i, r;
    char           err[512];
    pid_t          pid;
    int            st, rc, worst, status[PAY_SHARD_MAX];

    if (pay_shards_load(file, &sh, err, sizeof(err)) != 0) {
        die("%s; nothing written", err);
    }

    /* a shard that does not answer is known within seconds */
    setenv("PGCONNECT_TIMEOUT", getenv("PGCONNECT_TIMEOUT") != NULL
                                ? getenv("PGCONNECT_TIMEOUT") : "5", 1);

    owner = calloc(rows->n + 1, sizeof(size_t));
    part.rows = malloc((rows->n + 1) * sizeof(pay_sr_row_t));
    if (owner == NULL || part.rows == NULL) {
        die("out of memory");
    }

    shards_own(&sh, rows, psp, owner);

    if (hf != NULL) {
        html_head(hf, "Reconciliation over shards: ", path);
        fputs("<p>PSP <b>", hf);
        html_esc(hf, psp);
        fputs("</b>, file <code>", hf);
        html_esc(hf, path);
        fputs("</code>: one report per shard, below.</p>\n", hf);
        if (fflush(hf) != 0) {
            die("--html %s: write error; nothing written", html);
        }
    }

    worst = 0;

    for (i = 0; i < sh.n; i++) {
        part.n = 0;
        for (r = 0; r < rows->n; r++) {
            if (owner[r] == i) {
                part.rows[part.n++] = rows->rows[r];
            }
        }

        status[i] = -1;

        /* the home shard records the report even when it owns nothing */
        if (part.n == 0 && i != 0) {
            printf(ME ": shard %s: no rows of this report\n",
                   sh.shard[i].name);
            continue;
        }

        fflush(stdout);
        fflush(stderr);

        pid = fork();
        if (pid < 0) {
            die("fork: %s", strerror(errno));
        }

        if (pid == 0) {
            snprintf(shard_tag, sizeof(shard_tag), "shard %s: ",
                     sh.shard[i].name);
            exit(run_one(sh.shard[i].conninfo, &part, psp, dialect, sha,
                         path, html, hf, dry, sh.shard[i].name, t0));
        }

        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) {
                die("waitpid: %s", strerror(errno));
            }
        }

        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
        status[i] = rc;
        if (rc > worst) {
            worst = rc;
        }
    }

    if (hf != NULL) {
        fputs("</body></html>\n", hf);
        if (ferror(hf) || fclose(hf) != 0) {
            fprintf(stderr, ME ": --html %s: write error\n", html);
            worst = 2;
        }
    }

    printf(ME ": %zu shards:", sh.n);
    for (i = 0; i < sh.n; i++) {
        if (status[i] < 0) {
            printf(" %s -", sh.shard[i].name);
        } else {
            printf(" %s %s", sh.shard[i].name,
                   status[i] == 0 ? "ok" : status[i] == 1 ? "open"
                   : "FAILED");
        }
    }
    printf("\n");

    if (worst == 2) {
        printf(ME ": run the same file again: the shards that reconciled "
               "it do nothing, the others their part\n");
    }

    free(owner);
    free(part.rows);
    pay_shards_free(&sh);

    return worst;
}


int
main(int argc, char **argv)
{
    FILE           *hf;
    const char     *conninfo, *shards, *psp, *dialect, *html, *path;
    pay_dialect_e   d;
    char           *buf, err[512], sha[65];
    size_t          len;
    long            n;
    rows_t          rows;
    int             opt, dry, db_given, rc;
    struct timespec t0;

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "shards", required_argument, NULL, 'S' },
        { "psp", required_argument, NULL, 'p' },
        { "dialect", required_argument, NULL, 'D' },
        { "html", required_argument, NULL, 'H' },
        { "dry-run", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    conninfo = getenv("PAYMENTS_DB");
    shards = NULL;
    db_given = 0;
    psp = NULL;
    dialect = NULL;
    html = NULL;
    dry = 0;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': conninfo = optarg; db_given = 1; break;
        case 'S': shards = optarg; break;
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

    if (pay_shards_file_of(shards, db_given, &shards) != 0) {
        die("--db or --shards, not both");
    }

    if (shards == NULL && (conninfo == NULL || conninfo[0] == '\0')) {
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

    if (shards != NULL) {
        rc = run_shards(shards, &rows, psp, dialect, sha, path, html, hf, dry,
                        &t0);
    } else {
        rc = run_one(conninfo, &rows, psp, dialect, sha, path, html, hf, dry,
                     NULL, &t0);
    }

    free(rows.rows);

    return rc;
}
