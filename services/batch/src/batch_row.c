/* One row into the contract's JSON event: cells converted, the stable event id, the codec's verdict. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch_int.h"
#include "ct_config.h"

/* ---- times ------------------------------------------------------------------------------------ */

int batch_parse_zone(const char *s, int *sec)
{
    if (!strcmp(s, "Z") || !strcmp(s, "UTC") || !strcmp(s, "z")) return *sec = 0, 0;
    if ((*s != '+' && *s != '-') || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2])) return -1;
    int h = (s[1] - '0') * 10 + (s[2] - '0'), mi = 0;
    const char *p = s + 3;
    if (*p == ':') p++;
    if (*p) {
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2]) return -1;
        mi = (p[0] - '0') * 10 + (p[1] - '0');
    }
    if (h > 23 || mi > 59) return -1;
    *sec = (*s == '-' ? -1 : 1) * (h * 3600 + mi * 60);
    return 0;
}

int batch_parse_time(const char *s, const char *format, int zone_s, int64_t *sec)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = 1;
    const char *end = strptime(s, format, &tm);
    if (!end) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    long off = strstr(format, "%z") ? tm.tm_gmtoff : zone_s;
    struct tm want = tm;
    time_t t = timegm(&tm); /* normalises tm: a field out of range shows as a difference */
    if (t == (time_t)-1 && want.tm_year != 69) return -1;
    if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
        tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
        return -1;
    *sec = (int64_t)t - off;
    return 0;
}

/* ---- building the JSON ------------------------------------------------------------------------ */

/* Set the value at a path of steps, making objects and lists on the way (leaf is stolen). */
static void set_path(json_t *root, const seg *s, size_t n, json_t *leaf)
{
    json_t *cur = root;
    for (size_t i = 0; i < n; i++) {
        int last = i + 1 == n;
        if (s[i].index < 0) {
            if (last) {
                json_object_set_new(cur, s[i].name, leaf);
                return;
            }
            json_t *next = json_object_get(cur, s[i].name);
            if (!next) json_object_set_new(cur, s[i].name, next = json_object());
            cur = next;
            continue;
        }
        json_t *arr = json_object_get(cur, s[i].name);
        if (!arr) json_object_set_new(cur, s[i].name, arr = json_array());
        while (json_array_size(arr) <= (size_t)s[i].index) json_array_append_new(arr, json_null());
        if (last) {
            json_array_set_new(arr, (size_t)s[i].index, leaf);
            return;
        }
        json_t *el = json_array_get(arr, (size_t)s[i].index);
        if (json_is_null(el)) json_array_set_new(arr, (size_t)s[i].index, el = json_object());
        cur = el;
    }
}

/* Drop the list entries no cell filled (null, {}), then the lists left empty: an absent value is absent. */
static void compact(json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = json_array_size(v); i-- > 0;) {
            json_t *el = json_array_get(v, i);
            compact(el);
            if (json_is_null(el) || (json_is_object(el) && json_object_size(el) == 0)) json_array_remove(v, i);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *el;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, el)
        {
            compact(el);
            if (json_is_array(el) && json_array_size(el) == 0) json_object_del(v, k);
        }
    }
}

/* The cell's JSON value after conversion; a cell that does not convert stays text, for the codec to judge. */
static json_t *convert(const value *v, const char *s, size_t n, int zone)
{
    if (v->cv == CV_INT) {
        int64_t i;
        if (ct_parse_int(s, &i) == 0) return json_integer((json_int_t)i);
    } else if (v->cv == CV_NUMBER) {
        char *end;
        double d = strtod(s, &end);
        if (end != s && !*end && isfinite(d)) return json_real(d);
    } else if (v->cv == CV_TIME && v->tfmt) {
        int64_t sec;
        if (batch_parse_time(s, v->tfmt, zone, &sec) == 0) {
            char buf[48];
            evt_time_format(sec, 0, buf);
            return json_string(buf);
        }
    }
    return json_stringn(s, n); /* NULL if not UTF-8 */
}

/* The row's trimmed cell i (borrowed, NUL-terminated by trimming in place is not possible: copy). */
static char *cell(const batch_row *row, long i, size_t *n)
{
    const char *s = row->cols[i];
    size_t len = row->lens[i];
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    *n = len;
    return ct_strndup(s, len);
}

/* Quote a cell for a message: at most 40 bytes, control bytes as '?'. */
static void quoted(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s && n + 5 < cap && n < 41; s++) out[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
    if (*s) out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n++] = '"';
    out[n] = '\0';
}

/* ---- one row ---------------------------------------------------------------------------------- */

typedef struct build {
    const batch_mapping *m;
    const batch_row *row;
    const kind *k;
    json_t *ev;      /* the event being built */
    ct_buf ids;      /* what the event id is a hash of */
    evt_code code;   /* the first problem found before the codec (EVT_OK: none) */
    char msg[600];
} build;

static void problem(build *b, evt_code c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(build *b, evt_code c, const char *fmt, ...)
{
    if (b->code != EVT_OK) return;
    va_list ap;
    va_start(ap, fmt);
    b->code = c;
    vsnprintf(b->msg, sizeof b->msg, fmt, ap);
    va_end(ap);
}

/* Add a length-prefixed part to the id's source. */
static void id_part(build *b, const char *s, size_t n)
{
    ct_buf_addf(&b->ids, "%zu:", n);
    ct_buf_add(&b->ids, s, n);
}

static const kind *select_kind(build *b, int *skip)
{
    const batch_mapping *m = b->m;
    if (!m->kind_column) return &m->kinds[0];
    if (m->kind_col >= (long)b->row->ncols) {
        problem(b, EVT_MISSING_FIELD, "column %ld (\"%s\", the kind) is missing: the row has %zu columns",
                m->kind_col + 1, m->kind_column, b->row->ncols);
        return NULL;
    }
    size_t n;
    char *s = cell(b->row, m->kind_col, &n);
    const kind *k = NULL;
    for (size_t i = 0; i < m->nskip; i++) *skip |= !strcmp(m->skip[i], s);
    for (size_t i = 0; i < m->nkinds && !k; i++)
        if (!strcmp(m->kinds[i].match, s)) k = &m->kinds[i];
    if (!k && !*skip) {
        char q[64];
        quoted(q, sizeof q, s);
        ct_buf known = {0};
        for (size_t i = 0; i < m->nkinds; i++) ct_buf_addf(&known, "%s%s", i ? ", " : "", m->kinds[i].match);
        problem(b, EVT_INVALID_VALUE, "column \"%s\": %s selects no [kind] section (known: %s)", m->kind_column, q,
                known.data);
        ct_buf_free(&known);
    }
    if (k) id_part(b, s, n);
    free(s);
    return k;
}

static void add_values(build *b)
{
    const kind *k = b->k;
    for (size_t i = 0; i < k->n; i++) {
        const value *v = &k->v[i];
        if (v->constant) {
            json_t *j = json_string(v->constant);
            if (j) set_path(b->ev, v->segs, v->nsegs, j);
            else problem(b, EVT_INVALID_VALUE, "%s: the mapping's constant is not valid UTF-8", v->path);
            continue;
        }
        if (v->col >= (long)b->row->ncols) {
            problem(b, EVT_MISSING_FIELD, "%s: column %ld (\"%s\") is missing: the row has %zu columns", v->path,
                    v->col + 1, v->column, b->row->ncols);
            continue;
        }
        size_t n;
        char *s = cell(b->row, v->col, &n);
        id_part(b, v->path, strlen(v->path));
        id_part(b, s, n);
        json_t *j = n ? convert(v, s, n, b->m->zone) : NULL;
        if (j) set_path(b->ev, v->segs, v->nsegs, j);
        else if (n) problem(b, EVT_INVALID_VALUE, "%s: column \"%s\" is not valid UTF-8", v->path, v->column);
        free(s);
    }
}

/* The envelope's eventId and source: the id is a hash of the mapping's name, the kind and the cells read. */
static void envelope_of(build *b, const char *kind_name)
{
    const batch_mapping *m = b->m;
    ct_buf src = {0};
    id_part(b, "", 0); /* so that an empty source still hashes */
    ct_buf_addf(&src, "%s", m->name);
    ct_buf_addc(&src, '\0');
    ct_buf_adds(&src, kind_name);
    ct_buf_addc(&src, '\0');
    ct_buf_add(&src, b->ids.data, b->ids.len);
    uint64_t h1 = ct_hash64(src.data, src.len);
    ct_buf_addc(&src, '\x5a');
    uint64_t h2 = ct_hash64(src.data, src.len) * 0x9E3779B97F4A7C15ULL;
    ct_buf_free(&src);
    char id[EVT_MAX_EVENT_ID + 1];
    snprintf(id, sizeof id, "imp-%s-%s-%016" PRIx64 "%016" PRIx64, m->name, kind_name, h1, h2 ^ (h2 >> 29));
    json_object_set_new(b->ev, "eventId", json_string(id));
    json_t *s = json_object();
    json_object_set_new(s, "system", json_string(m->system));
    if (m->instance) json_object_set_new(s, "instance", json_string(m->instance));
    json_object_set_new(b->ev, "source", s);
}

/* Text for JSON from arbitrary bytes: at most max bytes, anything but printable ASCII as '?' if not UTF-8. */
static json_t *safe_text(const char *s, size_t n, size_t max)
{
    if (n > max) n = max;
    json_t *j = memchr(s, '\0', n) ? NULL : json_stringn(s, n);
    if (j) return j;
    char *c = ct_strndup(s, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] >= 0x7f) c[i] = '?';
    j = json_stringn(c, n);
    free(c);
    return j;
}

/* Make the row's JSON a dead-letter record: the import's account of the row under "import". */
static void reject(build *b, batch_result *out, const char *file, evt_code code, const char *msg)
{
    const batch_row *row = b->row;
    json_t *imp = json_object();
    json_object_set_new(imp, "mapping", json_string(b->m->name));
    if (b->k) json_object_set_new(imp, "kind", json_string(b->k->name));
    json_object_set_new(imp, "file", safe_text(file, strlen(file), 256));
    json_object_set_new(imp, "line", json_integer((json_int_t)row->line));
    json_object_set_new(imp, "code", json_string(evt_code_str(code)));
    json_object_set_new(imp, "message", safe_text(msg, strlen(msg), sizeof out->message));
    if (row->code == EVT_OK) {
        json_t *cells = json_array();
        for (size_t i = 0; i < row->ncols && i < 256; i++)
            json_array_append_new(cells, safe_text(row->cols[i], row->lens[i], 1024));
        json_object_set_new(imp, "row", cells);
    } else {
        json_object_set_new(imp, "raw", safe_text(row->raw, row->raw_len, 4096));
    }
    json_object_set_new(b->ev, "importRejected", imp);
    out->outcome = BATCH_REJECTED;
    out->code = code;
    snprintf(out->message, sizeof out->message, "%s", msg);
    out->json = b->ev;
    b->ev = NULL;
}

/* The column behind a field the codec names, for its message: " (column "x": "cell", format "F")". */
static void hint(const build *b, const char *field, char *out, size_t cap)
{
    *out = '\0';
    for (size_t i = 0; b->k && i < b->k->n; i++) {
        const value *v = &b->k->v[i];
        if (strcmp(v->path, field) || !v->column || v->col >= (long)b->row->ncols) continue;
        char q[64];
        quoted(q, sizeof q, b->row->cols[v->col]);
        if (v->cv == CV_TIME && v->tfmt)
            snprintf(out, cap, " (column \"%s\": %s, format \"%s\")", v->column, q, v->tfmt);
        else
            snprintf(out, cap, " (column \"%s\": %s)", v->column, q);
        return;
    }
}

void batch_map_row(const batch_mapping *m, const batch_row *row, const char *file, batch_result *out)
{
    memset(out, 0, sizeof *out);
    build b = {.m = m, .row = row, .ev = json_object()};
    int skip = 0;
    if (row->code != EVT_OK) {
        problem(&b, row->code, "%s", row->message);
        id_part(&b, row->raw, row->raw_len);
        envelope_of(&b, "row");
        reject(&b, out, file, b.code, b.msg);
        goto done;
    }
    if (m->header_cols && row->ncols != m->header_cols)
        problem(&b, EVT_MALFORMED, "the row has %zu columns, the header %zu (a delimiter inside an unquoted field?)",
                row->ncols, m->header_cols);
    b.k = select_kind(&b, &skip);
    if (skip) {
        out->outcome = BATCH_SKIPPED;
        goto done;
    }
    if (b.k) {
        snprintf(out->kind, sizeof out->kind, "%s", b.k->name);
        json_object_set_new(b.ev, b.k->type, json_object());
        add_values(&b);
        compact(b.ev);
    }
    envelope_of(&b, b.k ? b.k->name : "row");
    if (b.code != EVT_OK) {
        /* The codec must not take it: without its payload it never does. */
        if (b.k) json_object_del(b.ev, b.k->type);
        reject(&b, out, file, b.code, b.msg);
        goto done;
    }
    evt_error err;
    if (evt_from_json(&out->event, b.ev, &err) != CT_OK) {
        char h[200], msg[sizeof out->message];
        hint(&b, err.field, h, sizeof h);
        snprintf(msg, sizeof msg, "%s%s", err.message, h);
        reject(&b, out, file, err.code, msg);
        goto done;
    }
    out->outcome = BATCH_EVENT;
    out->json = b.ev;
    b.ev = NULL;
done:
    json_decref(b.ev);
    ct_buf_free(&b.ids);
}

void batch_result_clear(batch_result *r)
{
    evt_free(r->event);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}
