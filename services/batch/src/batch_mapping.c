/* The mapping file: INI read with inih through ct_ini_read_sectioned, checked against the contract's schema. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "batch_int.h"
#include "ct_config.h"

enum { SEC_IMPORT = 0, SEC_COLUMNS = 1, SEC_KIND0 = 2, SEC_RECONCILE = 1000000 /* above any kind's */ };

typedef struct parse_ctx {
    batch_mapping *m;
    ct_ini_lines lines;
    char *err;     /* the first problem */
    int err_line;
} parse_ctx;

static void fail_at(parse_ctx *pc, int line, char *msg)
{
    if (pc->err) {
        free(msg);
        return;
    }
    pc->err = msg;
    pc->err_line = line;
}

static void fail(parse_ctx *pc, char *msg) { fail_at(pc, pc->lines.lineno, msg); }

/* 1-max characters of [A-Za-z0-9._-] (ids are built of it). */
static int name_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max) return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

static long open_section(void *ctx, const char *text, size_t len)
{
    parse_ctx *pc = ctx;
    batch_mapping *m = pc->m;
    if (len == 6 && !memcmp(text, "import", 6)) return SEC_IMPORT;
    if (len == 7 && !memcmp(text, "columns", 7)) return SEC_COLUMNS;
    if (len == 9 && !memcmp(text, "reconcile", 9)) {
        if (!m->rec) {
            m->rec = ct_calloc(1, sizeof *m->rec);
            m->rec->line = pc->lines.lineno;
            m->rec->id_col = m->rec->status_col = -1;
        }
        return SEC_RECONCILE;
    }
    if (len > 5 && !memcmp(text, "kind ", 5)) {
        const char *n = text + 5;
        size_t nl = len - 5;
        while (nl && *n == ' ') n++, nl--;
        while (nl && n[nl - 1] == ' ') nl--;
        if (!name_ok(n, nl, 32)) {
            fail(pc, ct_sprintf("kind name \"%.*s\" must be 1-32 characters of [A-Za-z0-9._-]", (int)nl, n));
            return -1;
        }
        for (size_t i = 0; i < m->nkinds; i++)
            if (strlen(m->kinds[i].name) == nl && !memcmp(m->kinds[i].name, n, nl)) {
                fail(pc, ct_sprintf("[kind %.*s] given twice (first on line %d)", (int)nl, n, m->kinds[i].line));
                return -1;
            }
        m->kinds = ct_realloc(m->kinds, (m->nkinds + 1) * sizeof *m->kinds);
        kind *k = &m->kinds[m->nkinds];
        memset(k, 0, sizeof *k);
        k->name = ct_strndup(n, nl);
        k->line = pc->lines.lineno;
        return SEC_KIND0 + (long)m->nkinds++;
    }
    fail(pc, ct_sprintf("unknown section [%.*s] (import, columns, kind NAME, reconcile)", (int)(len > 60 ? 60 : len),
                        text));
    return -1;
}

static char *read_line(char *str, int num, void *stream)
{
    parse_ctx *pc = stream;
    char *problem;
    char *got = ct_ini_read_sectioned(&pc->lines, str, num, &problem, open_section, pc);
    if (problem) fail(pc, problem);
    return got;
}

static int yes_no(const char *v)
{
    static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) return 1;
        if (!strcasecmp(v, no[i])) return 0;
    }
    return -1;
}

/* The delimiter named by v: comma, semicolon, tab, pipe, or one character. */
static int delim_of(const char *v)
{
    static const struct { const char *n; char c; } names[] = {{"comma", ','}, {"semicolon", ';'}, {"tab", '\t'},
                                                              {"pipe", '|'}, {"\\t", '\t'}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(v, names[i].n)) return names[i].c;
    if (strlen(v) == 1 && *v != '"' && *v != '\r' && *v != '\n') return (unsigned char)*v;
    return -1;
}

static const char *const systems[] = {"erp", "wms", "tms", "carrier", "finance", "mdm", "tower", NULL};

static const char *const import_keys[] = {"name", "system", "instance", "format", "delimiter", "header",
                                          "time_format", "time_zone", "kind", "skip", NULL};

/* Split "a, b ,c" into trimmed non-empty items. */
static void split_list(const char *v, char ***out, size_t *n)
{
    const char *p = v;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *a = p;
        size_t l = len;
        while (l && isspace((unsigned char)*a)) a++, l--;
        while (l && isspace((unsigned char)a[l - 1])) l--;
        if (l) {
            *out = ct_realloc(*out, (*n + 1) * sizeof **out);
            (*out)[(*n)++] = ct_strndup(a, l);
        }
        p = e ? e + 1 : p + len;
    }
}

/* The layout keys of [import]: format, delimiter, header, time_zone; 1 or 0 after fail(). */
static int import_layout(parse_ctx *pc, int k, const char *v)
{
    batch_mapping *m = pc->m;
    int d;
    switch (k) {
    case 3:
        if (strcmp(v, "csv") && strcmp(v, "fixed"))
            return fail(pc, ct_sprintf("format \"%s\" is not csv or fixed", v)), 0;
        m->fixed = !strcmp(v, "fixed");
        return 1;
    case 4:
        if ((d = delim_of(v)) < 0)
            return fail(pc, ct_sprintf("delimiter \"%s\" is not one character or comma, semicolon, tab, pipe", v)), 0;
        m->delim = (char)d;
        return 1;
    case 5:
        if ((m->header = yes_no(v)) < 0) return fail(pc, ct_sprintf("header \"%s\" is not yes or no", v)), 0;
        return 1;
    default:
        if (batch_parse_zone(v, &m->zone) != 0)
            return fail(pc, ct_sprintf("time_zone \"%s\" is not a UTC offset (Z, +01:00, -05:30)", v)), 0;
        return 1;
    }
}

/* The other keys of [import]; 1 or 0 after fail(). */
static int import_value(parse_ctx *pc, int k, const char *v)
{
    batch_mapping *m = pc->m;
    int i = 0;
    switch (k) {
    case 0:
        if (!name_ok(v, strlen(v), 32))
            return fail(pc, ct_sprintf("name \"%s\" must be 1-32 characters of [A-Za-z0-9._-] (it is part of every "
                                       "event id)", v)), 0;
        m->name = ct_strdup(v);
        return 1;
    case 1:
        while (systems[i] && strcmp(systems[i], v)) i++;
        if (!systems[i])
            return fail(pc, ct_sprintf("system \"%s\" is not one of erp, wms, tms, carrier, finance, mdm, tower", v)), 0;
        m->system = ct_strdup(v);
        return 1;
    case 2: m->instance = *v ? ct_strdup(v) : NULL; return 1;
    case 6:
        if (!*v) return fail(pc, ct_strdup("time_format is empty (leave it out for RFC 3339 times)")), 0;
        m->tfmt = ct_strdup(v);
        return 1;
    case 8: m->kind_column = ct_strdup(v); return 1;
    case 9: split_list(v, &m->skip, &m->nskip); return 1;
    default: return import_layout(pc, k, v);
    }
}

static int import_pair(parse_ctx *pc, const char *name, const char *v)
{
    batch_mapping *m = pc->m;
    int k = 0;
    while (import_keys[k] && strcmp(import_keys[k], name)) k++;
    if (!import_keys[k]) {
        fail(pc, ct_sprintf("unknown key \"%s\" in [import] (name, system, instance, format, delimiter, header, "
                            "time_format, time_zone, kind, skip)", name));
        return 0;
    }
    if (m->import_lines[k]) {
        fail(pc, ct_sprintf("key \"%s\" given twice (first on line %d)", name, m->import_lines[k]));
        return 0;
    }
    m->import_lines[k] = pc->lines.lineno;
    return import_value(pc, k, v);
}

/* [columns] NAME = N (CSV, 1-based) or NAME = START WIDTH (fixed, 1-based start). */
static int columns_pair(parse_ctx *pc, const char *name, const char *v)
{
    batch_mapping *m = pc->m;
    for (size_t i = 0; i < m->ncols; i++)
        if (!strcmp(m->cols[i].name, name)) {
            fail(pc, ct_sprintf("column \"%s\" given twice (first on line %d)", name, m->cols[i].line));
            return 0;
        }
    unsigned long a = 0, w = 0;
    int used = 0;
    int got = sscanf(v, "%lu %lu%n", &a, &w, &used);
    if (got == 1) used = 0, sscanf(v, "%lu%n", &a, &used);
    if (got < 1 || v[used] || a < 1 || a > 1000000 || (got == 2 && (w < 1 || w > BATCH_MAX_RECORD)) ||
        !isdigit((unsigned char)*v)) {
        fail(pc, ct_sprintf("column \"%s\" = \"%s\": expected a column number (CSV) or START WIDTH (fixed), "
                            "1-based", name, v));
        return 0;
    }
    m->cols = ct_realloc(m->cols, (m->ncols + 1) * sizeof *m->cols);
    colname *c = &m->cols[m->ncols++];
    memset(c, 0, sizeof *c);
    c->name = ct_strdup(name);
    c->line = pc->lines.lineno;
    c->index = got == 1 ? (long)a - 1 : -1;
    c->fx = (batch_fixed_col){a - 1, got == 2 ? w : 0};
    return 1;
}

/* "orderCreated.lines[0].qty" into its steps; -1 (with *why) if malformed. */
static int parse_path(value *v, const char **why)
{
    const char *p = v->path;
    for (;;) {
        const char *s = p;
        while (isalpha((unsigned char)*p)) p++;
        if (p == s) return *why = "expected a field name (letters)", -1;
        int idx = -1;
        const char *e = p;
        if (*p == '[') {
            char *end;
            long n = strtol(p + 1, &end, 10);
            if (!isdigit((unsigned char)p[1]) || *end != ']' || n < 0 || n > 99)
                return *why = "a list index is [0] to [99]", -1;
            idx = (int)n;
            p = end + 1;
        }
        v->segs = ct_realloc(v->segs, (v->nsegs + 1) * sizeof *v->segs);
        v->segs[v->nsegs++] = (seg){ct_strndup(s, (size_t)(e - s)), idx};
        if (!*p) return 0;
        if (*p != '.' || v->nsegs == 8) return *why = "steps are separated by '.'", -1;
        p++;
    }
}

/* "col REF [text|int|number|time [FORMAT]]" or "const VALUE". */
static int parse_spec(parse_ctx *pc, value *v, const char *s)
{
    static const char *const convs[] = {"", "text", "int", "number", "time"};
    if (!strncmp(s, "const ", 6) && s[6]) {
        v->constant = ct_strdup(s + 6);
        return 0;
    }
    if (strncmp(s, "col ", 4)) goto bad;
    s += 4;
    while (*s == ' ') s++;
    const char *e;
    if (*s == '"') {
        e = strchr(s + 1, '"');
        if (!e || e == s + 1) goto bad;
        v->column = ct_strndup(s + 1, (size_t)(e - s - 1));
        e++;
    } else {
        e = s;
        while (*e && *e != ' ') e++;
        if (e == s) goto bad;
        v->column = ct_strndup(s, (size_t)(e - s));
    }
    while (*e == ' ') e++;
    if (!*e) return 0;
    const char *w = e;
    while (*e && *e != ' ') e++;
    for (int c = 1; c <= CV_TIME; c++)
        if (strlen(convs[c]) == (size_t)(e - w) && !memcmp(convs[c], w, (size_t)(e - w))) v->cv = (conv)c;
    if (v->cv == CV_AUTO) goto bad;
    while (*e == ' ') e++;
    if (*e && v->cv != CV_TIME) goto bad;
    if (*e) v->tfmt = ct_strdup(e);
    return 0;
bad:
    fail(pc, ct_sprintf("%s = \"%s\": expected \"col COLUMN [text|int|number|time [FORMAT]]\" or \"const VALUE\"",
                        v->path, s));
    return -1;
}

static int kind_pair(parse_ctx *pc, kind *k, const char *name, const char *v)
{
    if (!strcmp(name, "type") || !strcmp(name, "match")) {
        char **slot = !strcmp(name, "type") ? &k->type : &k->match;
        int *line = !strcmp(name, "type") ? &k->type_line : &k->match_line;
        if (*slot) {
            fail(pc, ct_sprintf("key \"%s\" given twice (first on line %d)", name, *line));
            return 0;
        }
        if (!*v) {
            fail(pc, ct_sprintf("%s is empty", name));
            return 0;
        }
        *slot = ct_strdup(v);
        *line = pc->lines.lineno;
        return 1;
    }
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i].path, name)) {
            fail(pc, ct_sprintf("%s mapped twice (first on line %d)", name, k->v[i].line));
            return 0;
        }
    k->v = ct_realloc(k->v, (k->n + 1) * sizeof *k->v);
    value *val = &k->v[k->n++];
    memset(val, 0, sizeof *val);
    val->path = ct_strdup(name);
    val->line = pc->lines.lineno;
    val->col = -1;
    const char *why;
    if (parse_path(val, &why) != 0) {
        fail(pc, ct_sprintf("\"%s\" is not an event path (%s), e.g. orderId or orderCreated.lines[0].qty", name, why));
        return 0;
    }
    return parse_spec(pc, val, v) == 0;
}

/* ---- [reconcile] (batch_reconcile.h) -------------------------------------------------------------- */

static int type_known(const char *type);

/* A list value of [reconcile]: at most BATCH_REC_MAX_LIST items, event types when events; 1 or 0 after fail(). */
static int rec_list(parse_ctx *pc, const char *key, const char *v, char ***out, size_t *n, int events)
{
    split_list(v, out, n);
    if (*n > BATCH_REC_MAX_LIST)
        return fail(pc, ct_sprintf("%s lists %zu values (at most %d)", key, *n, BATCH_REC_MAX_LIST)), 0;
    for (size_t i = 0; events && i < *n; i++)
        if (!type_known((*out)[i]))
            return fail(pc, ct_sprintf("%s: \"%s\" is not an event type of the contract (e.g. orderReleased)", key,
                                       (*out)[i])), 0;
    return 1;
}

/* id = COLUMN, status = COLUMN (a header name, a [columns] name or a number; quotes allowed). */
static int rec_column(parse_ctx *pc, char **slot, int *line, const char *name, const char *v)
{
    if (*slot) return fail(pc, ct_sprintf("key \"%s\" given twice (first on line %d)", name, *line)), 0;
    size_t len = strlen(v);
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') v++, len -= 2;
    const char *what = *name == 'i' ? "order id" : "status";
    if (!len) return fail(pc, ct_sprintf("%s is empty (the column of the %s)", name, what)), 0;
    *slot = ct_strndup(v, len);
    *line = pc->lines.lineno;
    return 1;
}

static int rec_status_pair(parse_ctx *pc, batch_rec_spec *r, const char *name, const char *v)
{
    const char *sv = name + 7;
    for (size_t i = 0; i < r->nst; i++)
        if (!strcmp(r->st[i].value, sv))
            return fail(pc, ct_sprintf("%s given twice (first on line %d)", name, r->st[i].line)), 0;
    r->st = ct_realloc(r->st, (r->nst + 1) * sizeof *r->st);
    batch_rec_status *st = &r->st[r->nst++];
    memset(st, 0, sizeof *st);
    st->value = ct_strdup(sv);
    st->line = pc->lines.lineno;
    return rec_list(pc, name, v, &st->milestones, &st->n, 1);
}

static int rec_reflect_pair(parse_ctx *pc, batch_rec_spec *r, const char *name, const char *v)
{
    const char *ms = name + 8;
    if (!type_known(ms))
        return fail(pc, ct_sprintf("%s: \"%s\" is not an event type of the contract (e.g. podCaptured)", name, ms)), 0;
    for (size_t i = 0; i < r->nrf; i++)
        if (!strcmp(r->rf[i].milestone, ms))
            return fail(pc, ct_sprintf("%s given twice (first on line %d)", name, r->rf[i].line)), 0;
    r->rf = ct_realloc(r->rf, (r->nrf + 1) * sizeof *r->rf);
    batch_rec_reflect *rf = &r->rf[r->nrf++];
    memset(rf, 0, sizeof *rf);
    rf->milestone = ct_strdup(ms);
    rf->line = pc->lines.lineno;
    if (!rec_list(pc, name, v, &rf->statuses, &rf->n, 0)) return 0;
    if (!rf->n) return fail(pc, ct_sprintf("%s lists no status (the statuses that reflect %s)", name, ms)), 0;
    return 1;
}

static int reconcile_pair(parse_ctx *pc, const char *name, const char *v)
{
    batch_rec_spec *r = pc->m->rec;
    if (!strcmp(name, "id")) return rec_column(pc, &r->id_column, &r->id_line, name, v);
    if (!strcmp(name, "status")) return rec_column(pc, &r->status_column, &r->status_line, name, v);
    if (!strcmp(name, "closing")) {
        if (r->closing_line)
            return fail(pc, ct_sprintf("key \"closing\" given twice (first on line %d)", r->closing_line)), 0;
        r->closing_line = pc->lines.lineno;
        return rec_list(pc, name, v, &r->closing, &r->nclosing, 1);
    }
    if (!strncmp(name, "status.", 7) && name[7]) return rec_status_pair(pc, r, name, v);
    if (!strncmp(name, "reflect.", 8) && name[8]) return rec_reflect_pair(pc, r, name, v);
    fail(pc, ct_sprintf("unknown key \"%s\" in [reconcile] (id, status, status.VALUE, reflect.MILESTONE, closing)",
                        name));
    return 0;
}

/* Check [reconcile] once read (required with BATCH_MAPPING_RECONCILE). */
static void resolve_reconcile(parse_ctx *pc)
{
    batch_rec_spec *r = pc->m->rec;
    if (!r) {
        if (pc->m->flags & BATCH_MAPPING_RECONCILE)
            fail_at(pc, 1, ct_strdup("no [reconcile] section (id, status, status.VALUE = MILESTONE, ...)"));
        return;
    }
    if (!r->id_column) return fail_at(pc, r->line, ct_strdup("[reconcile] has no id (the column of the order id)"));
    if (!r->status_column)
        return fail_at(pc, r->line, ct_strdup("[reconcile] has no status (the column of the status)"));
    if (!r->nst)
        return fail_at(pc, r->line,
                       ct_strdup("[reconcile] has no status.VALUE = MILESTONE, ... (what a status implies)"));
    for (size_t i = 0; i < r->nrf; i++)
        for (size_t j = 0; j < r->rf[i].n; j++)
            if (!batch_rec_status_find(r, r->rf[i].statuses[j]))
                return fail_at(pc, r->rf[i].line, ct_sprintf("reflect.%s: status \"%s\" has no status.%s line",
                                                             r->rf[i].milestone, r->rf[i].statuses[j],
                                                             r->rf[i].statuses[j]));
    if (!r->closing_line) split_list("invoicePosted, orderCancelled", &r->closing, &r->nclosing);
}

static void reconcile_free(batch_rec_spec *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nst; i++) {
        for (size_t j = 0; j < r->st[i].n; j++) free(r->st[i].milestones[j]);
        free(r->st[i].milestones);
        free(r->st[i].value);
    }
    for (size_t i = 0; i < r->nrf; i++) {
        for (size_t j = 0; j < r->rf[i].n; j++) free(r->rf[i].statuses[j]);
        free(r->rf[i].statuses);
        free(r->rf[i].milestone);
    }
    for (size_t i = 0; i < r->nclosing; i++) free(r->closing[i]);
    free(r->closing);
    free(r->st);
    free(r->rf);
    free(r->id_column);
    free(r->status_column);
    free(r);
}

static int on_pair(void *user, const char *section, const char *name, const char *value_)
{
    parse_ctx *pc = user;
    if (!*section) {
        fail(pc, ct_sprintf("key \"%s\" outside a section ([import], [columns], [kind NAME])", name));
        return 0;
    }
    if (!strcmp(section, "-")) return 1; /* the bad header was reported */
    long s = strtol(section, NULL, 10);
    if (s == SEC_IMPORT) return import_pair(pc, name, value_);
    if (s == SEC_COLUMNS) return columns_pair(pc, name, value_);
    if (s == SEC_RECONCILE) return reconcile_pair(pc, name, value_);
    return kind_pair(pc, &pc->m->kinds[s - SEC_KIND0], name, value_);
}

/* ---- the schema --------------------------------------------------------------------------------- */

/* The protobuf field of a JSON name ("customerId" -> customer_id); NULL if none. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d, const char *json)
{
    char snake[96];
    size_t n = 0;
    for (const char *p = json; *p && n + 3 < sizeof snake; p++) {
        if (*p == '_') return NULL;
        if (isupper((unsigned char)*p)) snake[n++] = '_';
        snake[n++] = (char)tolower((unsigned char)*p);
    }
    snake[n] = '\0';
    return protobuf_c_message_descriptor_get_field_by_name(d, snake);
}

static const char *const conv_what[] = {"", "text", "an integer", "a number", "a time"};
static const char *const conv_names[] = {"", "text", "int", "number", "time"};

static conv conv_of(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_ENUM: return CV_TEXT;
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FLOAT: return CV_NUMBER;
    case PROTOBUF_C_TYPE_MESSAGE: return CV_TIME; /* only a Timestamp gets here */
    default: return CV_INT;
    }
}

static const char *const envelope[] = {"occurredAt", "orderId", "shipmentId", "routeId", "warehouseId",
                                       "carrierId", NULL};

/* Check one path of kind k against the schema and settle its conversion; NULL or the problem (to free). */
static char *check_value(const kind *k, value *v)
{
    const seg *s0 = &v->segs[0];
    int env = 0;
    while (envelope[env] && strcmp(envelope[env], s0->name)) env++;
    if (!envelope[env] && strcmp(s0->name, k->type)) {
        if (!strcmp(s0->name, "eventId") || !strcmp(s0->name, "source"))
            return ct_sprintf("%s is not mapped: the event id is derived from the row and the source is [import]'s "
                              "system and instance", s0->name);
        return ct_sprintf("%s: a path starts with an envelope field (occurredAt, orderId, shipmentId, routeId, "
                          "warehouseId, carrierId) or the kind's type (%s)", v->path, k->type);
    }
    const ProtobufCMessageDescriptor *d = &tower__v1__event__descriptor;
    for (size_t i = 0; i < v->nsegs; i++) {
        const seg *s = &v->segs[i];
        const ProtobufCFieldDescriptor *f = field_of(d, s->name);
        if (!f) return ct_sprintf("%s: %s has no field %s (see docs/contract.md)", v->path, d->short_name, s->name);
        int rep = f->label == PROTOBUF_C_LABEL_REPEATED, last = i + 1 == v->nsegs;
        if (rep && s->index < 0) return ct_sprintf("%s: %s is a list: write %s[0]", v->path, s->name, s->name);
        if (!rep && s->index >= 0) return ct_sprintf("%s: %s is not a list", v->path, s->name);
        int ts = f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == &tower__v1__timestamp__descriptor;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && !ts) {
            if (last) return ct_sprintf("%s is an object: map its fields (%s.FIELD)", v->path, v->path);
            d = f->descriptor;
            continue;
        }
        if (!last) return ct_sprintf("%s: %s is not an object", v->path, s->name);
        conv want = conv_of(f);
        if (v->cv != CV_AUTO && v->cv != want)
            return ct_sprintf("%s is %s: it cannot take a %s conversion", v->path, conv_what[want], conv_names[v->cv]);
        v->cv = want;
    }
    return NULL;
}

/* The payload's descriptor field for a type name (a member of Event's oneof); NULL if none. */
static int type_known(const char *type)
{
    const ProtobufCFieldDescriptor *f = field_of(&tower__v1__event__descriptor, type);
    return f && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type == PROTOBUF_C_TYPE_MESSAGE;
}

static void resolve_kind(parse_ctx *pc, kind *k)
{
    batch_mapping *m = pc->m;
    if (!k->type)
        return fail_at(pc, k->line, ct_sprintf("[kind %s] has no type (the event type, e.g. orderApproved)", k->name));
    if (!type_known(k->type))
        return fail_at(pc, k->type_line, ct_sprintf("type \"%s\" is not an event type of the contract", k->type));
    int when = 0;
    for (size_t i = 0; i < k->n && !pc->err; i++) {
        value *v = &k->v[i];
        char *why = check_value(k, v);
        if (why) return fail_at(pc, v->line, why);
        if (v->cv == CV_TIME && !v->tfmt && m->tfmt) v->tfmt = ct_strdup(m->tfmt);
        if (v->constant && v->cv != CV_TEXT)
            return fail_at(pc, v->line,
                           ct_sprintf("%s: a constant is text; map a column for a number or a time", v->path));
        when |= !strcmp(v->path, "occurredAt");
    }
    if (!when && !pc->err)
        fail_at(pc, k->line, ct_sprintf("[kind %s] maps no occurredAt (every event has one)", k->name));
    if (!k->match) k->match = ct_strdup(k->name);
}

/* Check the whole mapping once read. */
static void resolve(parse_ctx *pc)
{
    batch_mapping *m = pc->m;
    if (!m->name) return fail_at(pc, 1, ct_strdup("[import] has no name (part of every event id)"));
    if (!m->system) return fail_at(pc, 1, ct_strdup("[import] has no system (erp, wms, tms, carrier, finance)"));
    if (!m->import_lines[5]) m->header = !m->fixed;
    if (!m->delim) m->delim = ',';
    for (size_t i = 0; i < m->ncols; i++) {
        colname *c = &m->cols[i];
        if (m->fixed != (c->fx.width != 0))
            return fail_at(pc, c->line, ct_sprintf("column %s: a %s file's column is %s", c->name,
                                                   m->fixed ? "fixed-width" : "CSV",
                                                   m->fixed ? "START WIDTH" : "a column number"));
    }
    if (m->fixed && !m->ncols) return fail_at(pc, 1, ct_strdup("a fixed-width mapping needs a [columns] section"));
    if (!m->nkinds && !(m->flags & BATCH_MAPPING_RECONCILE))
        return fail_at(pc, 1, ct_strdup("no [kind NAME] section"));
    if (!m->kind_column && m->nkinds > 1)
        return fail_at(pc, m->kinds[1].line, ct_strdup("several [kind] sections need [import] kind = COLUMN"));
    for (size_t i = 0; i < m->nkinds && !pc->err; i++) {
        resolve_kind(pc, &m->kinds[i]);
        for (size_t j = 0; j < i && !pc->err; j++)
            if (!strcmp(m->kinds[i].match, m->kinds[j].match))
                fail_at(pc, m->kinds[i].match_line ? m->kinds[i].match_line : m->kinds[i].line,
                        ct_sprintf("[kind %s] matches \"%s\" like [kind %s]", m->kinds[i].name, m->kinds[i].match,
                                   m->kinds[j].name));
    }
    if (!pc->err) resolve_reconcile(pc);
    m->kind_line = m->import_lines[8];
    m->fx = ct_calloc(m->ncols + 1, sizeof *m->fx);
    for (size_t i = 0; i < m->ncols; i++) m->fx[i] = m->cols[i].fx;
    m->fmt = (batch_format){.fixed = m->fixed, .delim = m->delim, .cols = m->fx, .ncols = m->fixed ? m->ncols : 0};
}

/* ---- binding columns to a file -------------------------------------------------------------------------- */

/* The 0-based index of a column reference; -1 if it names none. */
static long find_column(const batch_mapping *m, const char *ref, const batch_row *header)
{
    for (size_t i = 0; i < m->ncols; i++)
        if (!strcmp(m->cols[i].name, ref)) return m->fixed ? (long)i : m->cols[i].index;
    if (m->fixed) return -1;
    if (header)
        for (size_t i = 0; i < header->ncols; i++) {
            const char *h = header->cols[i];
            size_t n = header->lens[i];
            while (n && isspace((unsigned char)*h)) h++, n--;
            while (n && isspace((unsigned char)h[n - 1])) n--;
            if (n == strlen(ref) && !memcmp(h, ref, n)) return (long)i;
        }
    char *end;
    long n = strtol(ref, &end, 10);
    if (isdigit((unsigned char)*ref) && !*end && n >= 1 && n <= BATCH_MAX_COLS) return n - 1;
    return -1;
}

static char *unbound(const batch_mapping *m, const char *ref, int line, const batch_row *header, const char *file)
{
    ct_buf b = {0};
    ct_buf_addf(&b, "%s:%d: column \"%s\" ", m->file, line, ref);
    if (m->fixed) {
        ct_buf_adds(&b, "is not in [columns]");
    } else if (header) {
        ct_buf_addf(&b, "is not in the header of %s (its columns:", file);
        for (size_t i = 0; i < header->ncols && b.len < 400; i++)
            ct_buf_addf(&b, "%s %s", i ? "," : "", header->cols[i]);
        ct_buf_adds(&b, ")");
    } else {
        ct_buf_adds(&b, "is neither a [columns] name nor a column number (the file has no header row)");
    }
    return (char *)b.data;
}

int batch_mapping_bind(batch_mapping *m, const batch_row *header, const char *file, char **err)
{
    m->header_cols = header ? header->ncols : 0;
    m->kind_col = -1;
    if (m->kind_column && (m->kind_col = find_column(m, m->kind_column, header)) < 0) {
        *err = unbound(m, m->kind_column, m->kind_line, header, file);
        return -1;
    }
    for (size_t i = 0; i < m->nkinds; i++)
        for (size_t j = 0; j < m->kinds[i].n; j++) {
            value *v = &m->kinds[i].v[j];
            if (!v->column) continue;
            if ((v->col = find_column(m, v->column, header)) < 0) {
                *err = unbound(m, v->column, v->line, header, file);
                return -1;
            }
        }
    return 0;
}

int batch_mapping_bind_reconcile(batch_mapping *m, const batch_row *header, const char *file, char **err)
{
    batch_rec_spec *r = m->rec;
    if (!r) {
        *err = ct_sprintf("%s:1: no [reconcile] section", m->file);
        return -1;
    }
    m->header_cols = header ? header->ncols : 0;
    if ((r->id_col = find_column(m, r->id_column, header)) < 0) {
        *err = unbound(m, r->id_column, r->id_line, header, file);
        return -1;
    }
    if ((r->status_col = find_column(m, r->status_column, header)) < 0) {
        *err = unbound(m, r->status_column, r->status_line, header, file);
        return -1;
    }
    return 0;
}

const batch_rec_spec *batch_mapping_reconcile(const batch_mapping *m) { return m->rec; }

/* ---- the file as a whole -------------------------------------------------------------------------------- */

static void value_free(value *v)
{
    free(v->path);
    for (size_t i = 0; i < v->nsegs; i++) free(v->segs[i].name);
    free(v->segs);
    free(v->constant);
    free(v->column);
    free(v->tfmt);
}

void batch_mapping_free(batch_mapping *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nkinds; i++) {
        kind *k = &m->kinds[i];
        for (size_t j = 0; j < k->n; j++) value_free(&k->v[j]);
        free(k->v);
        free(k->name);
        free(k->match);
        free(k->type);
    }
    free(m->kinds);
    for (size_t i = 0; i < m->ncols; i++) free(m->cols[i].name);
    free(m->cols);
    free(m->fx);
    for (size_t i = 0; i < m->nskip; i++) free(m->skip[i]);
    free(m->skip);
    free(m->file);
    free(m->name);
    free(m->system);
    free(m->instance);
    free(m->tfmt);
    free(m->kind_column);
    reconcile_free(m->rec);
    free(m);
}

ct_status batch_mapping_parse(batch_mapping **out, const char *text, size_t len, const char *name, char **err)
{
    return batch_mapping_parse_flags(out, text, len, name, 0, err);
}

ct_status batch_mapping_parse_flags(batch_mapping **out, const char *text, size_t len, const char *name,
                                    unsigned flags, char **err)
{
    parse_ctx pc = {0};
    pc.m = ct_calloc(1, sizeof *pc.m);
    pc.m->flags = flags;
    pc.m->file = ct_strdup(name);
    FILE *f = len ? fmemopen((void *)text, len, "r") : NULL;
    if (!f) {
        *err = len ? ct_sprintf("cannot read %s: %s", name, strerror(errno))
                   : ct_sprintf("%s:1: the mapping is empty", name);
        batch_mapping_free(pc.m);
        return CT_INVALID;
    }
    pc.lines.f = f;
    int rc = ini_parse_stream(read_line, &pc, on_pair, &pc);
    fclose(f);
    char *msg = NULL;
    if (pc.err && (rc <= 0 || pc.err_line <= rc)) msg = ct_sprintf("%s:%d: %s", name, pc.err_line, pc.err);
    else if (rc > 0) msg = ct_sprintf("%s:%d: syntax error (expected KEY = VALUE or [SECTION])", name, rc);
    else if (rc < 0) msg = ct_sprintf("cannot read %s: inih error %d", name, rc);
    else {
        resolve(&pc);
        if (pc.err) msg = ct_sprintf("%s:%d: %s", name, pc.err_line, pc.err);
    }
    free(pc.lines.line);
    free(pc.err);
    if (msg) {
        *err = msg;
        batch_mapping_free(pc.m);
        return CT_INVALID;
    }
    *out = pc.m;
    return CT_OK;
}

const batch_format *batch_mapping_format(const batch_mapping *m) { return &m->fmt; }
int batch_mapping_has_header(const batch_mapping *m) { return m->header; }
const char *batch_mapping_name(const batch_mapping *m) { return m->name; }
const char *batch_mapping_system(const batch_mapping *m) { return m->system; }
