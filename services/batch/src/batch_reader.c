/* The record reader: CSV (RFC 4180) and fixed-width lines over a buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

struct batch_reader {
    const char *d;      /* the data (borrowed) */
    size_t len, pos;    /* its length; the next byte to read */
    size_t line;        /* the line of d[pos] */
    batch_format f;     /* the layout (cols borrowed) */
    ct_buf cells;       /* the current record's cells, each NUL-terminated */
    size_t *off;        /* their offsets in cells */
    size_t cap;         /* room in off, lens and ptrs */
    size_t *lens;
    char **ptrs;
};

batch_reader *batch_reader_new(const char *data, size_t len, const batch_format *f)
{
    batch_reader *r = ct_calloc(1, sizeof *r);
    r->d = data;
    r->len = len;
    r->line = 1;
    r->f = *f;
    if (!r->f.max_record) r->f.max_record = BATCH_MAX_RECORD;
    if (!r->f.max_cols) r->f.max_cols = BATCH_MAX_COLS;
    /* A UTF-8 byte order mark (Excel's CSV) is no part of the first cell. */
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) r->pos = 3;
    return r;
}

void batch_reader_free(batch_reader *r)
{
    if (!r) return;
    ct_buf_free(&r->cells);
    free(r->off);
    free(r->lens);
    free(r->ptrs);
    free(r);
}

/* Skip to just after the end of the physical line holding d[p]. */
static void skip_line(batch_reader *r, size_t p)
{
    const char *nl = p < r->len ? memchr(r->d + p, '\n', r->len - p) : NULL;
    r->pos = nl ? (size_t)(nl - r->d) + 1 : r->len;
    if (nl) r->line++;
}

/* Room for cell number n. */
static void grow(batch_reader *r, size_t n)
{
    if (n < r->cap) return;
    size_t cap = r->cap ? r->cap * 2 : 16;
    while (cap <= n) cap *= 2;
    r->off = ct_realloc(r->off, cap * sizeof *r->off);
    r->lens = ct_realloc(r->lens, cap * sizeof *r->lens);
    r->ptrs = ct_realloc(r->ptrs, cap * sizeof *r->ptrs);
    r->cap = cap;
}

static int fail(batch_row *row, evt_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(batch_row *row, evt_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    row->code = code;
    vsnprintf(row->message, sizeof row->message, fmt, ap);
    va_end(ap);
    row->ncols = 0;
    return 1;
}

/* Point the row at the cells read. */
static void finish_row(batch_reader *r, batch_row *row, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r->ptrs[i] = r->cells.data + r->off[i];
        r->lens[i] = (i + 1 < n ? r->off[i + 1] - 1 : r->cells.len - 1) - r->off[i];
    }
    row->ncols = n;
    row->cols = r->ptrs;
    row->lens = r->lens;
}

/* Is d[p] the end of a record (a line ending or the end of the data)? Sets *adv to its length. */
static int at_eol(const batch_reader *r, size_t p, size_t *adv)
{
    if (p >= r->len) return *adv = 0, 1;
    if (r->d[p] == '\n') return *adv = 1, 1;
    if (r->d[p] == '\r' && p + 1 < r->len && r->d[p + 1] == '\n') return *adv = 2, 1;
    return 0;
}

/* A quoted cell from d[*p] (the opening quote); 0; after filling row, -1 for an error inside the quotes
   (go on after the record's first line), -2 after them (go on after the line of *p). */
static int quoted_cell(batch_reader *r, size_t *p, size_t start, size_t col, batch_row *row)
{
    size_t q = *p + 1, lines = 0;
    for (;;) {
        if (q - start > r->f.max_record) {
            fail(row, EVT_TOO_LARGE, "record longer than %zu bytes (column %zu: a quote left open?)",
                 r->f.max_record, col);
            return -1;
        }
        if (q >= r->len) {
            fail(row, EVT_MALFORMED, "column %zu: quoted field not closed before the end of the file", col);
            return -1;
        }
        char c = r->d[q];
        if (c == '"') {
            if (q + 1 < r->len && r->d[q + 1] == '"') {
                ct_buf_addc(&r->cells, '"');
                q += 2;
                continue;
            }
            break;
        }
        if (c == '\0') {
            fail(row, EVT_MALFORMED, "column %zu: NUL byte in a quoted field", col);
            return -1;
        }
        if (c == '\n') lines++;
        ct_buf_addc(&r->cells, c);
        q++;
    }
    q++; /* the closing quote */
    size_t adv;
    if (!at_eol(r, q, &adv) && r->d[q] != r->f.delim) {
        r->line += lines;
        *p = q;
        fail(row, EVT_MALFORMED, "column %zu: text after the closing quote (a quote inside a field is written \"\")",
             col);
        return -2;
    }
    r->line += lines;
    *p = q;
    return 0;
}

/* An unquoted cell from d[*p]; 0, or -2 after filling row (go on after the line of d[*p]). */
static int plain_cell(batch_reader *r, size_t *p, size_t start, size_t col, batch_row *row)
{
    size_t q = *p, adv;
    while (!at_eol(r, q, &adv) && r->d[q] != r->f.delim) {
        char c = r->d[q];
        if (q - start > r->f.max_record)
            return fail(row, EVT_TOO_LARGE, "record longer than %zu bytes", r->f.max_record), -2;
        if (c == '"')
            return fail(row, EVT_MALFORMED, "column %zu: quote inside an unquoted field (quote the whole field)",
                        col), -2;
        if (c == '\0') return fail(row, EVT_MALFORMED, "column %zu: NUL byte", col), -2;
        ct_buf_addc(&r->cells, c);
        q++;
    }
    *p = q;
    return 0;
}

/* One CSV record from r->pos. */
static int csv_next(batch_reader *r, batch_row *row)
{
    size_t start = r->pos, p = r->pos, n = 0, adv;
    size_t first_line = r->line;
    row->line = r->line;
    for (;;) {
        if (n == r->f.max_cols) {
            fail(row, EVT_TOO_LARGE, "more than %zu columns", r->f.max_cols);
            skip_line(r, p);
            break;
        }
        grow(r, n);
        r->off[n] = r->cells.len;
        int rc = p < r->len && r->d[p] == '"' ? quoted_cell(r, &p, start, n + 1, row)
                                               : plain_cell(r, &p, start, n + 1, row);
        if (rc == -1) {
            /* Inside a quoted field (left open?): go on with the line after the record's first. */
            r->line = first_line;
            skip_line(r, start);
            break;
        }
        if (rc == -2) { /* go on with the next line */
            skip_line(r, p);
            break;
        }
        ct_buf_addc(&r->cells, '\0');
        n++;
        if (at_eol(r, p, &adv)) {
            r->pos = p + adv;
            if (adv) r->line++;
            finish_row(r, row, n);
            break;
        }
        p++; /* the delimiter */
    }
    row->raw = r->d + start;
    row->raw_len = (r->pos > start ? r->pos : start) - start;
    while (row->raw_len && (row->raw[row->raw_len - 1] == '\n' || row->raw[row->raw_len - 1] == '\r')) row->raw_len--;
    return 1;
}

/* One fixed-width line from r->pos. */
static int fixed_next(batch_reader *r, batch_row *row)
{
    size_t start = r->pos;
    const char *nl = memchr(r->d + start, '\n', r->len - start);
    size_t end = nl ? (size_t)(nl - r->d) : r->len;
    row->line = r->line;
    r->pos = nl ? end + 1 : end;
    if (nl) r->line++;
    size_t len = end - start;
    if (len && r->d[end - 1] == '\r') len--;
    row->raw = r->d + start;
    row->raw_len = len;
    if (len > r->f.max_record) return fail(row, EVT_TOO_LARGE, "line longer than %zu bytes", r->f.max_record);
    if (memchr(row->raw, '\0', len)) return fail(row, EVT_MALFORMED, "NUL byte at byte %zu",
                                                 (size_t)((const char *)memchr(row->raw, '\0', len) - row->raw) + 1);
    grow(r, r->f.ncols);
    for (size_t i = 0; i < r->f.ncols; i++) {
        r->off[i] = r->cells.len;
        size_t a = r->f.cols[i].start, w = r->f.cols[i].width;
        if (a < len) ct_buf_add(&r->cells, row->raw + a, a + w <= len ? w : len - a);
        ct_buf_addc(&r->cells, '\0');
    }
    finish_row(r, row, r->f.ncols);
    return 1;
}

/* Is the line at d[p] blank (nothing but its ending)? */
static int blank_line(const batch_reader *r, size_t *adv) { return at_eol(r, r->pos, adv) && *adv; }

int batch_reader_next(batch_reader *r, batch_row *row)
{
    size_t adv;
    while (r->pos < r->len && blank_line(r, &adv)) {
        r->pos += adv;
        r->line++;
    }
    if (r->pos >= r->len) return 0;
    memset(row, 0, sizeof *row);
    ct_buf_reset(&r->cells);
    row->code = EVT_OK;
    return r->f.fixed ? fixed_next(r, row) : csv_next(r, row);
}
