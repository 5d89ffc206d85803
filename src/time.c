/*
 * ngx_payments core: the one date parser and the one date writer
 * (include/payments/time.h).  Proleptic Gregorian arithmetic on days since
 * the epoch, by hand: no locale, no time zone database, no struct tm
 * normalisation (timegm() would read February 30th as March 2nd).
 */

#include <string.h>

#include <payments/time.h>


/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
pay_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


static int
pay_digits(const char *s, size_t n, unsigned *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *v = *v * 10 + (unsigned) (s[i] - '0');
    }

    return 0;
}


static int64_t
pay_time_rfc3339(const char *s, size_t len)
{
    static const unsigned  mdays[] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };
    unsigned               y, mo, d, h, mi, se, oh, om;
    size_t                 i;
    int64_t                t, off;
    int                    leap;

    if (len < 20
        || pay_digits(s, 4, &y) || s[4] != '-'
        || pay_digits(s + 5, 2, &mo) || s[7] != '-'
        || pay_digits(s + 8, 2, &d) || s[10] != 'T'
        || pay_digits(s + 11, 2, &h) || s[13] != ':'
        || pay_digits(s + 14, 2, &mi) || s[16] != ':'
        || pay_digits(s + 17, 2, &se))
    {
        return -1;
    }

    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]
        || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || se > 59)
    {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* the fraction does not matter at a second's precision */
        }

        if (i == 20) {
            return -1;
        }
    }

    if (i + 1 == len && s[i] == 'Z') {
        off = 0;

    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')
               && pay_digits(s + i + 1, 2, &oh) == 0 && s[i + 3] == ':'
               && pay_digits(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59)
    {
        off = (int64_t) oh * 3600 + (int64_t) om * 60;
        if (s[i] == '-') {
            off = -off;
        }

    } else {
        return -1;
    }

    t = pay_days_from_civil(y, mo, d) * 86400 + (int64_t) h * 3600
        + (int64_t) mi * 60 + se - off;

    return (t >= 0 && t <= PAY_TIME_MAX) ? t : -1;
}


static int64_t
pay_time_epoch(const char *s, size_t len)
{
    size_t   i;
    int64_t  t;

    /* PAY_TIME_MAX has 12 digits: no more can be in range */
    if (len == 0 || len > 12 || (len > 1 && s[0] == '0')) {
        return -1;
    }

    t = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        t = t * 10 + (s[i] - '0');
    }

    return t <= PAY_TIME_MAX ? t : -1;
}


/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int64_t
pay_time_http(const char *s, size_t len)
{
    static const char      days[] = "ThuFriSatSunMonTueWed";
    static const char      months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static const unsigned  mdays[] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };
    unsigned               d, y, h, mi, se, m;
    int64_t                day, t;

    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' '
        || s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':'
        || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0
        || pay_digits(s + 5, 2, &d) != 0 || pay_digits(s + 12, 4, &y) != 0
        || pay_digits(s + 17, 2, &h) != 0 || pay_digits(s + 20, 2, &mi) != 0
        || pay_digits(s + 23, 2, &se) != 0)
    {
        return -1;
    }

    for (m = 0; m < 12; m++) {
        if (memcmp(months + 3 * m, s + 8, 3) == 0) {
            break;
        }
    }

    if (m == 12 || y < 1970 || d < 1 || d > mdays[m] || h > 23 || mi > 59
        || se > 59
        || (m == 1 && d == 29
            && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    {
        return -1;
    }

    day = pay_days_from_civil(y, m + 1, d);

    /* 1970-01-01 was a Thursday */
    if (memcmp(days + 3 * (day % 7), s, 3) != 0) {
        return -1;
    }

    t = day * 86400 + h * 3600 + mi * 60 + se;

    return t <= PAY_TIME_MAX ? t : -1;
}


int64_t
pay_time_parse(const char *s, size_t len, unsigned forms)
{
    int64_t  t;

    if (s == NULL) {
        return -1;
    }

    if (forms & PAY_TIME_EPOCH) {
        t = pay_time_epoch(s, len);
        if (t >= 0) {
            return t;
        }
    }

    if (forms & PAY_TIME_HTTP) {
        t = pay_time_http(s, len);
        if (t >= 0) {
            return t;
        }
    }

    if (forms & PAY_TIME_RFC3339) {
        return pay_time_rfc3339(s, len);
    }

    return -1;
}


static void
pay_put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char) ('0' + v % 10);
        v /= 10;
    }
}


int
pay_time_format(int64_t t, char buf[21])
{
    int64_t   days, z, era, y;
    unsigned  secs, doe, yoe, doy, mp, d, m;

    if (buf == NULL || t < 0 || t > PAY_TIME_MAX) {
        return -1;
    }

    days = t / 86400;
    secs = (unsigned) (t % 86400);

    /* civil date from days since the epoch, proleptic Gregorian, in
     * 400-year eras of 146097 days starting on March 1st */
    z = days + 719468;
    era = z / 146097;
    doe = (unsigned) (z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = (int64_t) yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    /* by hand: the ranges are known, snprintf's truncation checks cannot
     * see them */
    pay_put_digits(buf, (unsigned) y, 4);
    buf[4] = '-';
    pay_put_digits(buf + 5, m, 2);
    buf[7] = '-';
    pay_put_digits(buf + 8, d, 2);
    buf[10] = 'T';
    pay_put_digits(buf + 11, secs / 3600, 2);
    buf[13] = ':';
    pay_put_digits(buf + 14, secs / 60 % 60, 2);
    buf[16] = ':';
    pay_put_digits(buf + 17, secs % 60, 2);
    buf[19] = 'Z';
    buf[20] = '\0';

    return 0;
}
