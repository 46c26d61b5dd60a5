/* Strict parsing of the integers, durations and sizes that configuration values are written in. */
#include "ct_config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Read the digits at *p into *v, refusing values over max; advances *p. Returns -1 if there is no digit
 * or the value does not fit. */
static int read_digits(const char **p, uint64_t max, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    if (*s < '0' || *s > '9') return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (max - d) / 10) return -1;
        n = n * 10 + d;
    }
    *p = s;
    *v = n;
    return 0;
}

int ct_parse_int(const char *s, int64_t *out)
{
    if (!s) return -1;
    int neg = *s == '-';
    const char *p = s + neg;
    uint64_t max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v;
    if (read_digits(&p, max, &v) < 0 || *p) return -1;
    if (!neg) *out = (int64_t)v;
    else if (v == (uint64_t)INT64_MAX + 1) *out = INT64_MIN;
    else *out = -(int64_t)v;
    return 0;
}

/* Two-letter units come first so that "ms" is not read as minutes followed by junk. */
static const struct {
    const char *name;
    int64_t ns;
} dur_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* µs in UTF-8 */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", 60LL * 1000000000},
    {"h", 3600LL * 1000000000},
    {"d", 86400LL * 1000000000},
};

int ct_parse_duration_ns(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    const char *p = s;
    uint64_t v;
    /* A bare integer is seconds, the unit people mean when they leave it out. */
    if (read_digits(&p, (uint64_t)INT64_MAX, &v) == 0 && !*p) {
        if (v > (uint64_t)INT64_MAX / 1000000000) return -1;
        *out = (int64_t)v * 1000000000;
        return 0;
    }
    int64_t total = 0;
    p = s;
    while (*p) {
        if (read_digits(&p, (uint64_t)INT64_MAX, &v) < 0) return -1;
        size_t i, len = 0;
        for (i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++) {
            len = strlen(dur_units[i].name);
            if (strncmp(p, dur_units[i].name, len) == 0) break;
        }
        if (i == sizeof dur_units / sizeof dur_units[0]) return -1;
        p += len;
        if (v > (uint64_t)(INT64_MAX / dur_units[i].ns)) return -1;
        int64_t part = (int64_t)v * dur_units[i].ns;
        if (part > INT64_MAX - total) return -1;
        total += part;
    }
    *out = total;
    return 0;
}

static const struct {
    const char *name;
    uint64_t bytes;
} size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
    {"PiB", 1ULL << 50},
    {"KB", 1000ULL},
    {"MB", 1000000ULL},
    {"GB", 1000000000ULL},
    {"TB", 1000000000000ULL},
    {"PB", 1000000000000000ULL},
};

int ct_parse_size(const char *s, uint64_t *out)
{
    if (!s) return -1;
    const char *p = s;
    uint64_t v;
    if (read_digits(&p, UINT64_MAX, &v) < 0) return -1;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
        if (strcasecmp(p, size_units[i].name) != 0) continue;
        if (v > UINT64_MAX / size_units[i].bytes) return -1;
        *out = v * size_units[i].bytes;
        return 0;
    }
    return -1;
}
