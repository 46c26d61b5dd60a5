/* Reading a file or body of events: NDJSON line by line, or one JSON array parsed whole. */
#include "evt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct evt_reader {
    FILE *in;            /* the stream, or NULL when reading memory */
    const char *mem;     /* the memory being read (borrowed) */
    size_t mem_len;      /* its length */
    size_t mem_pos;      /* the next unread byte of mem */
    ct_buf head;         /* stream bytes read while looking for the first non-blank one */
    size_t head_pos;     /* the next unread byte of head */
    char *gl;            /* getline's buffer */
    size_t gl_cap;       /* its capacity */
    ct_buf cur;          /* the current NDJSON line, without its end of line */
    size_t line;         /* lines read so far */
    int is_array;        /* the input is a JSON array */
    int done;            /* the array failed to parse and that was reported */
    json_t *array;       /* the parsed array */
    size_t index;        /* the next element of the array */
    char *dump;          /* the current element's compact text (json_dumps) */
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

ct_status evt_reader_open(evt_reader **out, FILE *in)
{
    if (!in) return CT_USAGE;
    evt_reader *r = ct_calloc(1, sizeof *r);
    r->in = in;
    /*
     * Look at the first non-blank byte to choose the format. The bytes read
     * meanwhile are kept and read again first, so that raw lines and line
     * numbers (ours and jansson's) are those of the whole input.
     */
    int c;
    while ((c = getc(in)) != EOF) {
        ct_buf_addc(&r->head, (char)c);
        if (!is_blank((char)c)) {
            r->is_array = c == '[';
            break;
        }
    }
    *out = r;
    return CT_OK;
}

ct_status evt_reader_open_mem(evt_reader **out, const char *data, size_t len)
{
    if (!data && len) return CT_USAGE;
    evt_reader *r = ct_calloc(1, sizeof *r);
    r->mem = data ? data : "";
    r->mem_len = len;
    for (size_t i = 0; i < len; i++) {
        if (!is_blank(data[i])) {
            r->is_array = data[i] == '[';
            break;
        }
    }
    *out = r;
    return CT_OK;
}

int evt_reader_is_array(const evt_reader *r)
{
    return r ? r->is_array : 0;
}

void evt_reader_destroy(evt_reader *r)
{
    if (!r) return;
    free(r->gl);
    ct_buf_free(&r->head);
    ct_buf_free(&r->cur);
    json_decref(r->array);
    free(r->dump);
    free(r);
}

/*
 * Read the next line into r->cur without its "\n". Returns 1 with a line
 * (possibly the last one, without "\n"), 0 at the end, -1 on a read error.
 */
static int read_line(evt_reader *r)
{
    ct_buf_reset(&r->cur);
    if (r->head_pos < r->head.len) {
        const char *h = r->head.data + r->head_pos;
        size_t left = r->head.len - r->head_pos;
        const char *nl = memchr(h, '\n', left);
        if (nl) {
            ct_buf_add(&r->cur, h, (size_t)(nl - h));
            r->head_pos += (size_t)(nl - h) + 1;
            return 1;
        }
        ct_buf_add(&r->cur, h, left);
        r->head_pos = r->head.len;
    }
    if (r->in) {
        errno = 0;
        ssize_t n = getline(&r->gl, &r->gl_cap, r->in);
        if (n < 0) {
            if (ferror(r->in)) return -1;
            return r->cur.len > 0 ? 1 : 0;
        }
        if (n > 0 && r->gl[n - 1] == '\n') n--;
        ct_buf_add(&r->cur, r->gl, (size_t)n);
        return 1;
    }
    if (r->mem_pos >= r->mem_len) return r->cur.len > 0 ? 1 : 0;
    const char *p = r->mem + r->mem_pos;
    size_t left = r->mem_len - r->mem_pos;
    const char *nl = memchr(p, '\n', left);
    size_t n = nl ? (size_t)(nl - p) : left;
    ct_buf_add(&r->cur, p, n);
    r->mem_pos += nl ? n + 1 : n;
    return 1;
}

static void clear_record(evt_record *rec)
{
    rec->event = NULL;
    evt__err_clear(&rec->error);
    rec->raw = "";
    rec->raw_len = 0;
    rec->line = 0;
}

static int next_line(evt_reader *r, evt_record *rec)
{
    for (;;) {
        int got = read_line(r);
        if (got < 0) {
            evt__fail(&rec->error, EVT_MALFORMED, "", "reading the input failed: %s",
                      strerror(errno ? errno : EIO));
            return -1;
        }
        if (got == 0) return 0;
        r->line++;
        if (r->cur.len > 0 && r->cur.data[r->cur.len - 1] == '\r') r->cur.data[--r->cur.len] = '\0';
        size_t i = 0;
        while (i < r->cur.len && is_blank(r->cur.data[i])) i++;
        if (i == r->cur.len) continue;
        rec->line = r->line;
        rec->raw = r->cur.data;
        rec->raw_len = r->cur.len;
        evt_from_json_text(&rec->event, r->cur.data, r->cur.len, &rec->error);
        return 1;
    }
}

/* Parse the whole array on the first call: the stream is read to its end first. */
static int load_array(evt_reader *r, evt_record *rec)
{
    json_error_t je;
    ct_buf all = {0};
    const char *text = r->mem;
    size_t len = r->mem_len;
    if (r->in) {
        /* On the heap: readers also run on server threads with small stacks. */
        enum { CHUNK = 65536 };
        char *chunk = ct_malloc(CHUNK);
        size_t n;
        if (r->head.len) ct_buf_add(&all, r->head.data, r->head.len);
        while ((n = fread(chunk, 1, CHUNK, r->in)) > 0) ct_buf_add(&all, chunk, n);
        free(chunk);
        if (ferror(r->in)) {
            ct_buf_free(&all);
            r->done = 1;
            evt__fail(&rec->error, EVT_MALFORMED, "", "reading the input failed: %s",
                      strerror(errno ? errno : EIO));
            return -1;
        }
        text = all.data ? all.data : "";
        len = all.len;
    }
    /* One level more than an event: the array holding them. */
    size_t deep = ct_json_too_deep(text, len, CT_JSON_MAX_DEPTH + 1);
    if (deep) {
        ct_buf_free(&all);
        r->done = 1;
        evt__fail(&rec->error, EVT_TOO_LARGE, "", "the JSON array nests deeper than %d arrays and objects (at byte %zu)",
                  CT_JSON_MAX_DEPTH + 1, deep);
        return -1;
    }
    r->array = json_loadb(text, len, 0, &je);
    ct_buf_free(&all);
    if (!r->array || !json_is_array(r->array)) {
        json_decref(r->array);
        r->array = NULL;
        r->done = 1;
        rec->line = je.line > 0 ? (size_t)je.line : 0;
        evt__fail(&rec->error, EVT_MALFORMED, "",
                  "the JSON array does not parse: %s (line %d, column %d)", je.text, je.line,
                  je.column);
        return -1;
    }
    return 1;
}

static int next_element(evt_reader *r, evt_record *rec)
{
    if (r->done) return 0;
    if (!r->array) {
        int st = load_array(r, rec);
        if (st <= 0) return st;
    }
    if (r->index >= json_array_size(r->array)) return 0;
    json_t *elem = json_array_get(r->array, r->index++);
    free(r->dump);
    r->dump = json_dumps(elem, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!r->dump) r->dump = ct_strdup("");
    rec->line = r->index;
    rec->raw = r->dump;
    rec->raw_len = strlen(r->dump);
    if (!json_is_object(elem)) {
        evt__fail(&rec->error, EVT_MALFORMED, "", "element %zu of the array is not a JSON object but %s",
                  r->index, evt__json_kind(elem));
    } else if (rec->raw_len > EVT_MAX_EVENT_BYTES) {
        const json_t *id = json_object_get(elem, "eventId");
        if (json_is_string(id)) evt__err_event_id(&rec->error, json_string_value(id));
        evt__fail(&rec->error, EVT_TOO_LARGE, "", "the event is %zu bytes, over the limit of %d",
                  rec->raw_len, EVT_MAX_EVENT_BYTES);
    } else {
        evt_from_json(&rec->event, elem, &rec->error);
    }
    return 1;
}

int evt_reader_next(evt_reader *r, evt_record *rec)
{
    clear_record(rec);
    if (!r) return 0;
    return r->is_array ? next_element(r, rec) : next_line(r, rec);
}
