/*
 * The module and the schema it was built for: the build's version and
 * schema (the last migration in sql/migrations) in /metrics and in a notice
 * at start, and /readyz 503, with an alert, while the database's schema is
 * older.  Solo: the schema's version is the database's, which every
 * gateway of the run reads.
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static gateway_t  gw;

/* the last migration made to look older than it is, undone */
static void
schema_fini(void)
{
    db_exec("UPDATE schema_migrations SET version = substr(version, 5) "
            "WHERE version LIKE 'old\\_%'", 0, NULL);
    gateway_stop(&gw);
}

TestSuite(solo_schema, .timeout = E2E_TIMEOUT, .fini = schema_fini);


/* VERSION, and the NNN of the last sql/migrations/NNN_*.sql */
static void
build_expected(char *version, size_t vlen, char *schema)
{
    char            *v;
    size_t           n;
    DIR             *d;
    struct dirent   *e;

    v = file_read(str_printf("%s/VERSION", env("PAY_TEST_ROOT")), &n);
    cr_assert_not_null(v);
    while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == ' ')) {
        v[--n] = '\0';
    }
    snprintf(version, vlen, "%s", v);
    free(v);

    d = opendir(str_printf("%s/sql/migrations", env("PAY_TEST_ROOT")));
    cr_assert_not_null(d);
    strcpy(schema, "000");

    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) > 4 && e->d_name[3] == '_'
            && strncmp(e->d_name, schema, 3) > 0)
        {
            memcpy(schema, e->d_name, 3);
        }
    }

    closedir(d);
}


Test(solo_schema, build_info_a_notice_and_readyz_503_on_an_older_schema)
{
    int          i;
    char         version[64], schema[4], *series;
    resp_t      *r;
    const char  *detail;

    build_expected(version, sizeof(version), schema);

    gateway_start(&gw, "schema", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    gateway_wait_ready(&gw, 10);

    series = str_printf("payments_build_info{version=\"%s\",schema=\"%s\"}",
                        version, schema);
    cr_expect_eq(metric_value(gw.origin, series), 1, "%s not 1 in /metrics",
                 series);
    cr_expect(file_contains(gw.error_log, str_printf(
                  "payments: ngx_payments %s (schema %s)", version, schema)),
              "no notice naming the version in %s", gw.error_log);

    /* the database as a migrate of the previous release left it: its last
     * migration not applied */
    db_exec("UPDATE schema_migrations SET version = 'old_' || version "
            "WHERE version = (SELECT max(version) FROM schema_migrations "
            "WHERE version ~ '^[0-9]{3}_')", 0, NULL);

    r = gateway_get(&gw, "/readyz");
    expect_problem(r, 503, "store_unavailable");
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_expect(detail != NULL && strstr(detail, "schema is older") != NULL
              && strstr(detail, "payments-migrate") != NULL, "%s", r->body);
    cr_expect_not_null(resp_header(r, "Retry-After"));

    for (i = 0; i < 20 && !file_contains(gw.error_log, "[alert]"); i++) {
        usleep(100 * 1000);
    }
    cr_expect(file_contains(gw.error_log, str_printf(
                  "older than %s that this module", schema)),
              "no alert naming the schemas in %s", gw.error_log);

    /* migrated: ready again */
    db_exec("UPDATE schema_migrations SET version = substr(version, 5) "
            "WHERE version LIKE 'old\\_%'", 0, NULL);
    r = gateway_get(&gw, "/readyz");
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
}
