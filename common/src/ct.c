/* The common ground: status strings, the aborting allocator, buffers, logging, hashing, clocks. */
#include "ct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *status_msgs[] = {
#define CT_X(name, msg) msg,
    CT_STATUS_MAP(CT_X)
#undef CT_X
};

const char *ct_status_str(ct_status s)
{
    if ((int)s < 0 || s >= CT_STATUS_COUNT) return "unknown status";
    return status_msgs[s];
}

static void oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ct_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *ct_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *ct_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *ct_strdup(const char *s)
{
    if (!s) return NULL;
    return ct_strndup(s, strlen(s));
}

char *ct_strndup(const char *s, size_t n)
{
    char *p = ct_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ct_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *p = ct_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void buf_reserve(ct_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    b->data = ct_realloc(b->data, cap);
    b->cap = cap;
}

void ct_buf_add(ct_buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ct_buf_adds(ct_buf *b, const char *s) { ct_buf_add(b, s, strlen(s)); }

void ct_buf_addc(ct_buf *b, char c) { ct_buf_add(b, &c, 1); }

void ct_buf_addf(ct_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ct_buf_reset(ct_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void ct_buf_free(ct_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int log_level = -1;

void ct_log_set_level(ct_log_level lvl) { log_level = (int)lvl; }

static int effective_level(void)
{
    if (log_level >= 0) return log_level;
    const char *e = getenv("TOWER_LOG");
    log_level = CT_LOG_INFO;
    if (e) {
        if (!strcasecmp(e, "debug")) log_level = CT_LOG_DEBUG;
        else if (!strcasecmp(e, "warn")) log_level = CT_LOG_WARN;
        else if (!strcasecmp(e, "error")) log_level = CT_LOG_ERROR;
    }
    return log_level;
}

static int log_format = -1;

void ct_log_set_format(ct_log_format f) { log_format = (int)f; }

static int effective_format(void)
{
    if (log_format >= 0) return log_format;
    const char *e = getenv("TOWER_LOG_FORMAT");
    log_format = e && !strcasecmp(e, "json") ? CT_LOG_JSON : CT_LOG_TEXT;
    return log_format;
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or values past
 * U+10FFFF), or 0 when there is none. */
static int utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    if (p[0] < 0xc2 || p[0] > 0xf4) return 0;
    int n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    for (int i = 1; i < n; i++) /* a NUL fails here, before anything past it is read */
        if ((p[i] & 0xc0) != 0x80) return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || (p[0] == 0xf0 && p[1] < 0x90) ||
        (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/* s as the inside of a JSON string. */
static void json_escape(ct_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p == '"' || *p == '\\') {
            ct_buf_addc(b, '\\');
            ct_buf_addc(b, (char)*p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            if (*p == '\n') ct_buf_adds(b, "\\n");
            else if (*p == '\t') ct_buf_adds(b, "\\t");
            else ct_buf_addf(b, "\\u%04x", *p);
            p++;
        } else {
            int n = utf8_len(p);
            if (n) ct_buf_add(b, p, (size_t)n);
            else ct_buf_adds(b, "\\ufffd");
            p += n ? n : 1;
        }
    }
}

void ct_log(ct_log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)lvl < effective_level()) return;
    char ts_text[96], msg[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(ts_text, sizeof ts_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ct_buf line = {0};
    if (effective_format() == CT_LOG_JSON) {
        ct_buf_addf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts_text, names[lvl]);
        json_escape(&line, module);
        ct_buf_adds(&line, "\",\"msg\":\"");
        json_escape(&line, msg);
        ct_buf_adds(&line, "\"}\n");
    } else {
        ct_buf_addf(&line, "%s %-5s %s: %s\n", ts_text, names[lvl], module, msg);
    }
    fwrite(line.data, 1, line.len, stderr);
    ct_buf_free(&line);
}

uint64_t ct_hash64(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int64_t ct_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The warped clock: set once at start-up (before threads), then only read. */
static int64_t clock_origin;
static double clock_factor = 1.0;

void ct_clock_set(int64_t origin_wall_ns, double factor)
{
    /* NaN fails the comparison too: a bad factor means no warp. */
    if (!(factor > 0) || factor == 1.0) {
        clock_origin = 0;
        clock_factor = 1.0;
        return;
    }
    clock_origin = origin_wall_ns;
    clock_factor = factor;
}

double ct_clock_factor(void) { return clock_factor; }

int64_t ct_now_ns(void)
{
    int64_t real = ct_wall_ns();
    if (clock_factor == 1.0) return real;
    /* The product is a double: exact to a few nanoseconds over years of warped time. Clamped so
       that an absurd factor cannot overflow the conversion. */
    double d = (double)(real - clock_origin) * clock_factor;
    if (d > 4e18) d = 4e18;
    if (d < -4e18) d = -4e18;
    return clock_origin + (int64_t)d;
}

int64_t ct_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
