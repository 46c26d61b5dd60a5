/* towerctl's output: aligned text tables, compact ages, JSON values as cells, RFC 4180 CSV fields. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

/* A cell on a terminal: control characters (a newline in a dead letter's message) become '?'. */
static char *clean_copy(const char *s)
{
    char *d = ct_strdup(s ? s : "-");
    for (unsigned char *p = (unsigned char *)d; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?';
    return d;
}

void ctl_put_clean(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

void ctl_table_init(ctl_table *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    ctl_table_row(t, header);
}

void ctl_table_row(ctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cells = ct_realloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
    }
    for (size_t i = 0; i < t->ncols; i++) t->cells[t->nrows * t->ncols + i] = clean_copy(cells[i]);
    t->nrows++;
}

/* Display width of UTF-8 text: one column per code point (good enough for ids and messages). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) w++;
    return w;
}

void ctl_table_print(const ctl_table *t, FILE *f)
{
    size_t *w = ct_calloc(t->ncols ? t->ncols : 1, sizeof *w);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = width(t->cells[r * t->ncols + c]);
            if (n > w[c]) w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            fputs(s, f);
            if (c + 1 < t->ncols) {
                for (size_t k = width(s); k < w[c] + 2; k++) fputc(' ', f);
            }
        }
        fputc('\n', f);
    }
    free(w);
}

void ctl_table_free(ctl_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

void ctl_fmt_age(int64_t s, char *buf, size_t cap)
{
    if (s < 0) s = 0;
    if (s < 60) snprintf(buf, cap, "%" PRId64 "s", s);
    else if (s < 3600) snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400) snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    else snprintf(buf, cap, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

int ctl_fmt_time(const char *s, char *buf, size_t cap)
{
    /* YYYY-MM-DDTHH:MM:SS, then an optional fraction of 1-9 digits, then Z: the server's canonical UTC. */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i]) return 0;
    char ms[4] = "000";
    const char *p = s + i;
    if (*p == '.') {
        size_t d = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, d++)
            if (d < 3) ms[d] = *p; /* truncated, not rounded: the order of times is kept */
        if (d == 0 || d > 9) return 0;
    }
    if (p[0] != 'Z' || p[1]) return 0;
    snprintf(buf, cap, "%.19s.%sZ", s, ms);
    return 1;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one (overlong, surrogate, > U+10FFFF). */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    size_t n = p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : p[0] >= 0xE0 && p[0] <= 0xEF ? 3 : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))) return 0;
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))) return 0;
    return n;
}

json_t *ctl_json_text(const char *s)
{
    char *d = ct_strdup(s ? s : "");
    for (unsigned char *p = (unsigned char *)d; *p;) {
        size_t n = utf8_len(p);
        if (!n) *p++ = '?';
        else p += n;
    }
    json_t *j = json_string(d);
    free(d);
    return j;
}

const char *ctl_plural(size_t n, const char *one, const char *many) { return n == 1 ? one : many; }

char *ctl_cell(const json_t *v)
{
    char t[32];
    if (json_is_string(v) && ctl_fmt_time(json_string_value(v), t, sizeof t)) return ct_strdup(t);
    return ctl_cell_raw(v);
}

char *ctl_cell_raw(const json_t *v)
{
    if (!v || json_is_null(v)) return NULL;
    if (json_is_string(v)) return ct_strndup(json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) return ct_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v)) return ct_sprintf("%.15g", json_real_value(v));
    if (json_is_true(v)) return ct_strdup("true");
    if (json_is_false(v)) return ct_strdup("false");
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    return s ? s : ct_strdup("");
}

/* A cell that a spreadsheet would evaluate as a formula: it starts with =, +, -, @, a tab or a carriage
 * return and is not simply a number (a negative number stays a number). */
static int csv_formula_like(const char *s)
{
    if (!*s || !strchr("=+-@\t\r", *s)) return 0;
    char *end;
    (void)strtod(s, &end);
    return end == s || *end != '\0';
}

void ctl_csv_field(FILE *f, const char *s)
{
    if (!s) return;
    int formula = csv_formula_like(s);
    if (!formula && !strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    if (formula) fputc('\'', f); /* shown as text, never evaluated (CSV injection) */
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

/* The item fields per view (docs/contract.md, "Item shape"); the common ones first. */
const char *const *ctl_view_columns(const char *view)
{
#define COMMON "since", "ageSeconds", "orderId", "shipmentId", "warehouseId", "carrierId"
/* The exception's lifecycle (docs/exceptions.md), last. */
#define LIFE "exceptionId", "state", "assignee", "acknowledgedAt", "acknowledgedBy", "snoozedUntil", "notes", "slaDueAt"
    static const char *const blocked[] = {COMMON, "kind", "reason", "sku", LIFE, NULL};
    static const char *const pending[] = {COMMON, "lastFailure", LIFE, NULL};
    static const char *const posting[] = {COMMON, "reason", "interface", LIFE, NULL};
    static const char *const rule[] = {COMMON, "rule", LIFE, NULL};
    static const char *const dead[] = {"seq", "receivedAt", "since", "ageSeconds", "code", "message", "eventId",
                                       "orderId", "shipmentId", "warehouseId", "carrierId", LIFE, NULL};
    static const char *const mismatch[] = {COMMON, "system", "check", "theirs", "ours", "snapshot", LIFE, NULL};
    static const char *const risk[] = {COMMON, "stage", "predictedBy", "promisedBy", "basis", LIFE, NULL};
    static const char *const other[] = {COMMON, LIFE, NULL};
#undef COMMON
#undef LIFE
    if (!strcmp(view, "blocked")) return blocked;
    if (!strcmp(view, "pending_route")) return pending;
    if (!strcmp(view, "posting_failed")) return posting;
    if (!strcmp(view, "anomalies") || !strcmp(view, "sla_breaches")) return rule;
    if (!strcmp(view, "dead_letters")) return dead;
    if (!strcmp(view, "mismatches")) return mismatch;
    if (!strcmp(view, "at_risk")) return risk;
    return other;
}
