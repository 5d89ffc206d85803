/*
 * Unit tests: the CLIs' shards file (src/shards_file.c): "NAME CONNINFO"
 * lines, comments and blank lines skipped, the errors naming the line by
 * its number and never the conninfo.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/shards_file.h>


static int
sf_parse(const char *text, pay_shards_t *s, char *err, size_t errlen)
{
    return pay_shards_parse("F", text, strlen(text), s, err, errlen);
}


Test(shards_file, lines_name_shards_in_order_with_the_rest_as_conninfo)
{
    pay_shards_t  s;
    char          err[256] = "";

    cr_assert_eq(sf_parse("# the shards\n\n  a host=/run dbname=p\r\n"
                          "b\t\tpostgresql://u@h/p?sslmode=require\n"
                          "   # indented comment\n"
                          "eu_west_2 dbname=x password=s3cret", &s, err,
                          sizeof(err)), 0, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_expect_str_eq(s.shard[0].name, "a");
    cr_expect_str_eq(s.shard[0].conninfo, "host=/run dbname=p");
    cr_expect_str_eq(s.shard[1].name, "b");
    cr_expect_str_eq(s.shard[1].conninfo, "postgresql://u@h/p?sslmode=require");
    cr_expect_str_eq(s.shard[2].name, "eu_west_2");
    cr_expect_str_eq(s.shard[2].conninfo, "dbname=x password=s3cret");
    pay_shards_free(&s);
    cr_expect_eq(s.n, 0);
}


Test(shards_file, a_bad_line_is_named_by_its_number_never_its_conninfo)
{
    static const struct {
        const char  *text;
        const char  *err;
    } bad[] = {
        { "a dbname=p\nb\n", "F line 2: not NAME CONNINFO" },
        { "a dbname=p\n\nB dbname=s3cret\n",
          "F line 3: a shard's name is [a-z0-9_]{1,16}" },
        { "abcdefghijklmnopq dbname=s3cret\n",
          "F line 1: a shard's name is [a-z0-9_]{1,16}" },
        { "default dbname=s3cret\n", "F line 1: the name default is reserved" },
        { "a dbname=p\na dbname=s3cret\n", "F line 2: shard a is named twice" },
        { "# nothing\n\n", "F names no shard" },
        { "", "F names no shard" },
    };
    pay_shards_t  s;
    char          err[256];
    size_t        i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_expect_eq(sf_parse(bad[i].text, &s, err, sizeof(err)), -1, "%s",
                     bad[i].text);
        cr_expect_str_eq(err, bad[i].err, "%s", bad[i].text);
        cr_expect(strstr(err, "s3cret") == NULL);
        cr_expect_eq(s.n, 0);
    }
}


Test(shards_file, at_most_64_shards)
{
    pay_shards_t  s;
    char          text[4096], err[256] = "";
    size_t        i, off = 0;

    for (i = 0; i < 64; i++) {
        off += (size_t) snprintf(text + off, sizeof(text) - off,
                                 "s%zu dbname=p%zu\n", i, i);
    }
    cr_assert_eq(sf_parse(text, &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(s.n, 64);
    cr_expect_str_eq(s.shard[63].conninfo, "dbname=p63");
    pay_shards_free(&s);

    snprintf(text + off, sizeof(text) - off, "s64 dbname=p64\n");
    cr_expect_eq(sf_parse(text, &s, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "F names more than 64 shards");
}


Test(shards_file, a_missing_file_is_an_error)
{
    pay_shards_t  s;
    char          err[256] = "";

    cr_expect_eq(pay_shards_load("/nonexistent/shards", &s, err, sizeof(err)),
                 -1);
    cr_expect(strstr(err, "cannot read the shards file /nonexistent/shards")
              == err, "%s", err);
}


Test(shards_file, the_file_is_shards_else_payments_shards_without_db)
{
    const char  *file;

    unsetenv("PAYMENTS_SHARDS");
    cr_expect_eq(pay_shards_file_of(NULL, 0, &file), 0);
    cr_expect_null(file);
    cr_expect_eq(pay_shards_file_of("/etc/s", 0, &file), 0);
    cr_expect_str_eq(file, "/etc/s");
    cr_expect_eq(pay_shards_file_of("/etc/s", 1, &file), -1);
    cr_expect_null(file);

    setenv("PAYMENTS_SHARDS", "/env/s", 1);
    cr_expect_eq(pay_shards_file_of(NULL, 0, &file), 0);
    cr_expect_str_eq(file, "/env/s");
    cr_expect_eq(pay_shards_file_of(NULL, 1, &file), 0);
    cr_expect_null(file, "--db wins over $PAYMENTS_SHARDS");
    cr_expect_eq(pay_shards_file_of("/etc/s", 0, &file), 0);
    cr_expect_str_eq(file, "/etc/s");

    setenv("PAYMENTS_SHARDS", "", 1);
    cr_expect_eq(pay_shards_file_of(NULL, 0, &file), 0);
    cr_expect_null(file);
    unsetenv("PAYMENTS_SHARDS");
}
