/* RFC 3339 times to and from UTC seconds + nanos, with our own calendar arithmetic. */
#include "evt.h"

#include <stdio.h>
#include <string.h>

/*
 * The range of proto3's Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
 * Instants outside it could not be written back with a four-digit year.
 */
#define MIN_SECONDS INT64_C(-62135596800)
#define MAX_SECONDS INT64_C(253402300799)

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). We do not use timegm because it depends on the C library
 * and its time zone state, and it would not cover years before 1900 everywhere.
 */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Read exactly n ASCII digits at *p into *v and advance; 0 if they are not all digits. */
static int digits(const char **p, int n, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return 0;
        x = x * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *v = x;
    return 1;
}

static int expect(const char **p, char c)
{
    if (**p != c) return 0;
    (*p)++;
    return 1;
}

int evt_time_parse(const char *s, int64_t *sec, int32_t *nanos)
{
    unsigned year, mon, day, hour, min, secs, oh = 0, om = 0;
    int sign = 0;
    uint32_t frac = 0;
    const char *p = s;

    if (!s) return -1;
    if (!digits(&p, 4, &year) || !expect(&p, '-') || !digits(&p, 2, &mon) ||
        !expect(&p, '-') || !digits(&p, 2, &day))
        return -1;
    if (*p != 'T' && *p != 't') return -1;
    p++;
    if (!digits(&p, 2, &hour) || !expect(&p, ':') || !digits(&p, 2, &min) ||
        !expect(&p, ':') || !digits(&p, 2, &secs))
        return -1;
    if (*p == '.') {
        /* At least one digit; digits past the ninth (below a nanosecond) are dropped. */
        int n = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 9) frac = frac * 10 + (uint32_t)(*p - '0');
            n++;
            p++;
        }
        if (n == 0) return -1;
        for (; n < 9; n++) frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om)) return -1;
    } else {
        return -1;
    }
    if (*p != '\0') return -1;

    if (year < 1 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon)) return -1;
    if (hour > 23 || min > 59 || secs > 59 || oh > 23 || om > 59) return -1;

    int64_t t = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + secs;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    if (t < MIN_SECONDS || t > MAX_SECONDS) return -1;
    *sec = t;
    *nanos = (int32_t)frac;
    return 0;
}

void evt_time_format(int64_t sec, int32_t nanos, char *out)
{
    /* Validated events never have nanos out of range; clamp rather than overflow sec. */
    if (nanos < 0) nanos = 0;
    if (nanos > 999999999) nanos = 999999999;
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, 40, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, m, d,
                     (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
    if (n < 0 || n > 30) n = (int)strlen(out);
    if (nanos == 0)
        snprintf(out + n, 40 - (size_t)n, "Z");
    else if (nanos % 1000000 == 0)
        snprintf(out + n, 40 - (size_t)n, ".%03dZ", nanos / 1000000);
    else if (nanos % 1000 == 0)
        snprintf(out + n, 40 - (size_t)n, ".%06dZ", nanos / 1000);
    else
        snprintf(out + n, 40 - (size_t)n, ".%09dZ", nanos);
}
