/* A store fixture for tests: a real LMDB environment in a temp dir, fed JSON events, read back as JSON. */
#ifndef TOWER_FX_H
#define TOWER_FX_H

#include <jansson.h>

#include "evt.h"
#include "store.h"
#include "test.h"

typedef struct fx {
    char *dir;
    store *s;
    store_changes changes;    /* the changes of the last fx_feed */
    store_outcome last;       /* the outcome of the last line fed */
    int64_t now_ns;           /* stamped on dead letters */
} fx;

/* A store whose map starts at map_size bytes (it grows, retrying the batch, when full). */
static inline void fx_open_map(fx *f, size_t map_size)
{
    memset(f, 0, sizeof *f);
    f->dir = t_tmpdir();
    f->now_ns = 1700000000LL * 1000000000LL;
    store_opts o = {.dir = f->dir, .no_sync = 1, .map_size = map_size};
    if (store_open(&f->s, &o) != CT_OK) {
        fprintf(stderr, "fx: cannot open store in %s\n", f->dir);
        exit(2);
    }
}

static inline void fx_open(fx *f) { fx_open_map(f, 16 << 20); }

static inline void fx_close(fx *f)
{
    store_changes_free(&f->changes);
    store_close(f->s);
    t_rmdir(f->dir);
}

/* Feed NDJSON lines (one string may hold several, separated by newlines), as one batch. */
static inline ct_status fx_feed(fx *f, const char *ndjson)
{
    evt_reader *r = NULL;
    evt_reader_open_mem(&r, ndjson, strlen(ndjson));
    store_input in[256];
    evt_error err[256];
    char *raw[256];
    store_outcome out[256];
    size_t n = 0;
    evt_record rec;
    while (n < 256 && evt_reader_next(r, &rec) == 1) {
        err[n] = rec.error;
        raw[n] = strndup(rec.raw, rec.raw_len);
        in[n] = (store_input){0, rec.event, &err[n], raw[n], rec.raw_len, "application/json", NULL, 0};
        n++;
    }
    evt_reader_destroy(r);
    ct_status st = store_apply(f->s, in, n, f->now_ns, out, &f->changes);
    if (n) f->last = out[n - 1];
    for (size_t i = 0; i < n; i++) {
        evt_free(in[i].event);
        free(raw[i]);
    }
    return st;
}

static int fx_collect(void *ctx, const Tower__V1__ViewItem *it)
{
    json_array_append_new((json_t *)ctx, store_item_to_json(it, 0));
    return 0;
}

/* The items of a view, oldest first, as a JSON array (caller decrefs). */
static inline json_t *fx_view(fx *f, fold_view v)
{
    json_t *arr = json_array();
    store_reader *r = NULL;
    store_reader_begin(f->s, &r);
    store_query q = {.view = v};
    store_view_scan(r, &q, fx_collect, arr, NULL);
    store_reader_end(r);
    return arr;
}

static inline uint64_t fx_count(fx *f, fold_view v)
{
    store_reader *r = NULL;
    store_reader_begin(f->s, &r);
    uint64_t n = store_reader_count(r, v);
    store_reader_end(r);
    return n;
}

/* A string field of item i of a view, or "" if absent; static buffer. */
static inline const char *fx_field(fx *f, fold_view v, size_t i, const char *field)
{
    static char buf[512];
    json_t *arr = fx_view(f, v);
    json_t *it = json_array_get(arr, i);
    const char *s = it ? json_string_value(json_object_get(it, field)) : NULL;
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    json_decref(arr);
    return buf;
}

static inline size_t fx_n(fx *f, fold_view v)
{
    json_t *arr = fx_view(f, v);
    size_t n = json_array_size(arr);
    json_decref(arr);
    return n;
}

#endif
