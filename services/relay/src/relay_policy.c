/* When to try again: the backoff between attempts, the receiver's Retry-After, and the circuit breaker. */
#include "relay.h"

#include <ctype.h>
#include <string.h>

#define NS_PER_S INT64_C(1000000000)

/* ---- backoff -------------------------------------------------------------------------------------------- */

/* splitmix64: a small, well-mixed generator whose whole state is one integer the caller keeps. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

int64_t relay_backoff_ns(int attempt, int64_t min_ns, int64_t max_ns, uint64_t *rng)
{
    if (min_ns < 0) min_ns = 0;
    if (max_ns < min_ns) max_ns = min_ns;
    /* The bound doubles with each retry until it reaches max (no overflow: it stops at max). */
    int64_t cap = min_ns;
    for (int i = 1; i < attempt && cap < max_ns; i++) cap = cap > max_ns / 2 ? max_ns : cap * 2;
    uint64_t span = (uint64_t)(cap - min_ns);
    if (span == 0) return min_ns;
    /* The modulo's bias is at most span / 2^64: nothing next to network delays. */
    return min_ns + (int64_t)(splitmix64(rng) % (span + 1));
}

/* ---- Retry-After ---------------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* n decimal digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The index of the three letters at s in names (case-sensitive, as RFC 9110 says), or -1. */
static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strncmp(s, names[i], 3) == 0) return i;
    return -1;
}

/* An IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT", as seconds since the epoch; -1 if not one. */
static int parse_imf_fixdate(const char *s, size_t len, int64_t *out)
{
    static const char *const wdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* "Sun, 06 Nov 1994 08:49:37 GMT": every field at a fixed place. */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
        s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
        return -1;
    if (name_index(s, wdays, 7) < 0) return -1;
    int mon = name_index(s + 8, months, 12) + 1;
    int day = digits(s + 5, 2), year = digits(s + 12, 4);
    int hh = digits(s + 17, 2), mm = digits(s + 20, 2), ss = digits(s + 23, 2);
    if (mon < 1 || year < 0 || day < 1 || day > days_in_month(year, mon) || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60)
        return -1;
    *out = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

/* delay-seconds (RFC 9110 10.2.3): one or more digits; a huge value saturates. -1 if not one. */
static int parse_delay_seconds(const char *s, size_t len, int64_t *out)
{
    if (len == 0) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        if (v < INT64_MAX / NS_PER_S) v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int relay_retry_after(const char *value, int64_t now_s, int64_t *delay_ns)
{
    if (!value) return -1;
    /* The field value without its optional whitespace. */
    size_t len = strlen(value);
    while (len && (*value == ' ' || *value == '\t')) value++, len--;
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t')) len--;
    int64_t secs, at;
    if (parse_delay_seconds(value, len, &secs) != 0) {
        if (parse_imf_fixdate(value, len, &at) != 0) return -1;
        secs = at > now_s ? at - now_s : 0; /* a date in the past: now */
    }
    *delay_ns = secs >= INT64_MAX / NS_PER_S ? INT64_MAX : secs * NS_PER_S;
    return 0;
}

/* ---- the circuit breaker -------------------------------------------------------------------------------- */

const char *relay_breaker_name(relay_breaker_state s)
{
    switch (s) {
    case RELAY_BREAKER_CLOSED: return "closed";
    case RELAY_BREAKER_OPEN: return "open";
    case RELAY_BREAKER_HALF_OPEN: return "half-open";
    }
    return "unknown";
}

int relay_breaker_allow(relay_breaker *b, int64_t now_ns, int64_t *wait_ns)
{
    *wait_ns = 0;
    if (b->state != RELAY_BREAKER_OPEN) return 1; /* closed, or half-open: the probe until its result */
    int64_t ready = b->opened_ns + b->cooldown_ns;
    if (now_ns < ready) {
        *wait_ns = ready - now_ns;
        return 0;
    }
    b->state = RELAY_BREAKER_HALF_OPEN;
    return 1;
}

void relay_breaker_result(relay_breaker *b, int ok, int64_t now_ns)
{
    if (ok) {
        b->state = RELAY_BREAKER_CLOSED;
        b->failures = 0;
        return;
    }
    /* A failed probe (or a failure while open) opens it again for a whole cooldown. */
    if (b->state == RELAY_BREAKER_CLOSED && ++b->failures < (b->threshold > 0 ? b->threshold : 1)) return;
    b->state = RELAY_BREAKER_OPEN;
    b->opened_ns = now_ns;
}
