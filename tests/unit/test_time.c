/*
 * Unit tests: the one date parser and writer (src/time.c): every form it
 * accepts and every one it refuses.
 */

#include <string.h>
#include <criterion/criterion.h>
#include <payments/time.h>


#define ANY  (PAY_TIME_RFC3339 | PAY_TIME_EPOCH)


static int64_t
parse(const char *s, unsigned forms)
{
    return pay_time_parse(s, strlen(s), forms);
}


typedef struct {
    const char  *s;
    int64_t      t;
} good_t;


Test(time, rfc3339_accepted_forms)
{
    size_t        i;
    const good_t  good[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "2026-11-22T10:00:00Z", 1795341600 },
        /* a fraction of any length is dropped, not rounded */
        { "2026-11-22T10:00:00.1Z", 1795341600 },
        { "2026-11-22T10:00:00.999999999Z", 1795341600 },
        /* offsets: the local time minus the offset */
        { "2026-11-22T10:44:24+01:00", 1795340664 },
        { "2026-11-22T10:00:00.5-05:30", 1795341600 + 5 * 3600 + 1800 },
        { "2026-11-22T10:00:00+00:00", 1795341600 },
        { "2026-11-22T10:00:00-00:00", 1795341600 },
        { "2026-11-22T10:00:00+23:59", 1795341600 - 23 * 3600 - 59 * 60 },
        /* leap days: 2000 was a leap year, 2100 will not be */
        { "2000-02-29T00:00:00Z", 951782400 },
        { "2024-02-29T23:59:59-05:30", 1709270999 },
        { "2100-02-28T23:59:59Z", 4107542399LL },
        { "9999-12-31T23:59:59Z", PAY_TIME_MAX },
        /* the first second is reachable from an offset too */
        { "1970-01-01T01:00:00+01:00", 0 },
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_expect_eq(parse(good[i].s, PAY_TIME_RFC3339), good[i].t, "%s",
                     good[i].s);
        cr_expect_eq(parse(good[i].s, ANY), good[i].t, "%s", good[i].s);
        /* not an epoch */
        cr_expect_eq(parse(good[i].s, PAY_TIME_EPOCH), -1, "%s", good[i].s);
    }
}


Test(time, rfc3339_refused_forms)
{
    size_t       i;
    const char  *bad[] = {
        "",
        "2026-11-22",                       /* a date alone */
        "2026-11-22T10:00:00",              /* no zone */
        "2026-11-22T10:00Z",                /* no seconds */
        "2026-11-22 10:00:00Z",             /* a space for T */
        "2026-11-22t10:00:00Z",             /* lower-case t */
        "2026-11-22T10:00:00z",             /* lower-case z */
        "2026-11-22T10:00:00UTC",
        "2026-11-22T10:00:00GMT",
        "2026-11-22T10:00:00+0100",         /* offset without ':' */
        "2026-11-22T10:00:00+01",
        "2026-11-22T10:00:00+24:00",        /* offset hour */
        "2026-11-22T10:00:00+01:60",        /* offset minute */
        "2026-11-22T10:00:00.Z",            /* an empty fraction */
        "2026-11-22T10:00:00,5Z",           /* a comma fraction */
        "2026-11-22T10:00:00Z ",            /* trailing space */
        " 2026-11-22T10:00:00Z",            /* leading space */
        "2026-11-22T10:00:00ZZ",
        "2026-11-22T10:00:00Z+01:00",
        "20261122T100000Z",                 /* ISO 8601 basic format */
        "2026-1-22T10:00:00Z",              /* one-digit month */
        "+2026-11-22T10:00:00Z",
        "-2026-11-22T10:00:00Z",
        "2026-00-22T10:00:00Z",             /* month 0 */
        "2026-13-22T10:00:00Z",             /* month 13 */
        "2026-11-00T10:00:00Z",             /* day 0 */
        "2026-11-31T10:00:00Z",             /* November 31st */
        "2026-02-29T10:00:00Z",             /* not a leap year */
        "2100-02-29T10:00:00Z",             /* not a leap year either */
        "2026-02-30T10:00:00Z",
        "2026-11-22T24:00:00Z",             /* 24:00 */
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:00:60Z",             /* no leap second */
        "1969-12-31T23:59:59Z",             /* before the epoch */
        "1970-01-01T00:00:00+00:01",        /* before it once offset */
        "9999-12-31T23:59:59-00:01",        /* after PAY_TIME_MAX once
                                               offset */
        "2026-11-22T1O:00:00Z",             /* a letter O */
        "1795341600",                       /* an epoch is not RFC 3339 */
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(parse(bad[i], PAY_TIME_RFC3339), -1, "%s", bad[i]);
    }
}


Test(time, rfc3339_a_nul_inside_the_length_is_refused)
{
    const char  s[] = "2026-11-22T10:00:00Z\0garbage";

    cr_expect_eq(pay_time_parse(s, sizeof(s) - 1, PAY_TIME_RFC3339), -1);
    cr_expect_eq(pay_time_parse(s, 20, PAY_TIME_RFC3339), 1795341600);
    /* only len bytes are read: a prefix is not a date */
    cr_expect_eq(pay_time_parse(s, 19, PAY_TIME_RFC3339), -1);
}


Test(time, epoch_accepted_forms)
{
    size_t        i;
    const good_t  good[] = {
        { "0", 0 },
        { "1", 1 },
        { "1700000000", 1700000000 },
        { "1795341600", 1795341600 },
        { "253402300799", PAY_TIME_MAX },
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_expect_eq(parse(good[i].s, PAY_TIME_EPOCH), good[i].t, "%s",
                     good[i].s);
        cr_expect_eq(parse(good[i].s, ANY), good[i].t, "%s", good[i].s);
        cr_expect_eq(parse(good[i].s, PAY_TIME_RFC3339), -1, "%s",
                     good[i].s);
    }
}


Test(time, epoch_refused_forms)
{
    size_t       i;
    const char  *bad[] = {
        "",
        "-1",                               /* a sign */
        "+1700000000",
        "-1700000000",
        "01700000000",                      /* a leading zero */
        "00",
        " 1700000000",                      /* spaces */
        "1700000000 ",
        "1700000000.5",                     /* a fraction */
        "1.7e9",                            /* an exponent */
        "0x6553f100",                       /* hexadecimal */
        "17000000x0",
        "253402300800",                     /* one past PAY_TIME_MAX */
        "999999999999",
        "1700000000000000",                 /* absurdly long */
        "99999999999999999999999",          /* past int64_t */
        "2026-11-22T10:00:00Z",             /* RFC 3339 is not an epoch */
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(parse(bad[i], PAY_TIME_EPOCH), -1, "%s", bad[i]);
    }
}


Test(time, no_form_accepts_nothing)
{
    cr_expect_eq(parse("1700000000", 0), -1);
    cr_expect_eq(parse("2026-11-22T10:00:00Z", 0), -1);
    cr_expect_eq(pay_time_parse(NULL, 0, ANY), -1);
    cr_expect_eq(pay_time_parse(NULL, 10, ANY), -1);
}


Test(time, format_is_rfc3339_utc)
{
    char  buf[21];

    cr_assert_eq(pay_time_format(1795341600, buf), 0);
    cr_expect_str_eq(buf, "2026-11-22T10:00:00Z");
    cr_assert_eq(pay_time_format(0, buf), 0);
    cr_expect_str_eq(buf, "1970-01-01T00:00:00Z");
    cr_assert_eq(pay_time_format(951782400, buf), 0);
    cr_expect_str_eq(buf, "2000-02-29T00:00:00Z");
    cr_assert_eq(pay_time_format(4107542399LL, buf), 0);
    cr_expect_str_eq(buf, "2100-02-28T23:59:59Z");
    cr_assert_eq(pay_time_format(PAY_TIME_MAX, buf), 0);
    cr_expect_str_eq(buf, "9999-12-31T23:59:59Z");
    cr_expect_eq(pay_time_format(PAY_TIME_MAX + 1, buf), -1);
    cr_expect_eq(pay_time_format(-1, buf), -1);
    cr_expect_eq(pay_time_format(0, NULL), -1);
}


Test(time, what_is_written_parses_back)
{
    char     buf[21];
    int64_t  t;

    /* a second a day for 1970..9999, and the edges of each day */
    for (t = 0; t <= PAY_TIME_MAX; t += 86399) {
        cr_assert_eq(pay_time_format(t, buf), 0);
        cr_assert_eq(parse(buf, PAY_TIME_RFC3339), t, "%s", buf);
    }
}


Test(time, an_http_date_is_read_only_when_asked_for_and_exact)
{
    static const char  *bad[] = {
        "Sun, 06 Nov 1994 08:49:37 UTC",    /* not GMT */
        "Mon, 06 Nov 1994 08:49:37 GMT",    /* the wrong day name */
        "Sunday, 06-Nov-94 08:49:37 GMT",   /* RFC 850: obsolete */
        "Sun Nov  6 08:49:37 1994",         /* asctime: obsolete */
        "Sun, 6 Nov 1994 08:49:37 GMT",     /* one-digit day */
        "Sun, 06 nov 1994 08:49:37 GMT",    /* lower-case month */
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Tue, 29 Feb 2022 00:00:00 GMT",    /* not a leap year */
        "Thu, 01 Jan 1969 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
    };
    size_t  i;

    cr_assert_eq(pay_time_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29,
                                PAY_TIME_HTTP), 784111777);
    cr_assert_eq(pay_time_parse("Thu, 01 Jan 1970 00:00:00 GMT", 29,
                                PAY_TIME_HTTP), 0);
    cr_assert_eq(pay_time_parse("Tue, 29 Feb 2028 12:00:00 GMT", 29,
                                PAY_TIME_HTTP), 1835438400);

    /* only when asked for */
    cr_assert_eq(pay_time_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29,
                                PAY_TIME_RFC3339 | PAY_TIME_EPOCH), -1);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(pay_time_parse(bad[i], strlen(bad[i]), PAY_TIME_HTTP),
                     -1, "\"%s\"", bad[i]);
    }
}
