/* The pure comparison of a snapshot row with the tower's milestones of the order (towerd reconcile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_reconcile.h"
#include "ct.h"

static const char *const kind_names[BATCH_REC_KIND_COUNT] = {
    "missing_milestone", "not_reflected", "unknown_order", "missing_from_snapshot",
    "unknown_status",    "bad_row",       "duplicate",
};

const char *batch_rec_kind_name(batch_rec_kind k)
{
    return (unsigned)k < BATCH_REC_KIND_COUNT ? kind_names[k] : "unknown";
}

const batch_rec_status *batch_rec_status_find(const batch_rec_spec *s, const char *value)
{
    for (size_t i = 0; i < s->nst; i++)
        if (!strcmp(s->st[i].value, value)) return &s->st[i];
    return NULL;
}

static int has(const json_t *milestones, const char *type) { return json_object_get(milestones, type) != NULL; }

static int in_list(char *const *list, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], v)) return 1;
    return 0;
}

static size_t add(batch_rec_finding *out, size_t cap, size_t n, batch_rec_kind k, const char *milestone)
{
    if (n < cap) out[n] = (batch_rec_finding){k, milestone};
    return n + 1;
}

size_t batch_rec_compare(const batch_rec_spec *s, const char *status, const json_t *milestones,
                         batch_rec_finding *out, size_t cap)
{
    const batch_rec_status *st = batch_rec_status_find(s, status);
    if (!st) return add(out, cap, 0, BATCH_REC_UNKNOWN_STATUS, NULL);
    if (!milestones) return add(out, cap, 0, BATCH_REC_UNKNOWN_ORDER, NULL);
    size_t n = 0;
    for (size_t i = 0; i < st->n; i++)
        if (!has(milestones, st->milestones[i])) n = add(out, cap, n, BATCH_REC_MISSING_MILESTONE, st->milestones[i]);
    for (size_t i = 0; i < s->nrf; i++)
        if (has(milestones, s->rf[i].milestone) && !in_list(s->rf[i].statuses, s->rf[i].n, status))
            n = add(out, cap, n, BATCH_REC_NOT_REFLECTED, s->rf[i].milestone);
    return n;
}

int batch_rec_is_open(const batch_rec_spec *s, const json_t *milestones)
{
    for (size_t i = 0; i < s->nclosing; i++)
        if (has(milestones, s->closing[i])) return 0;
    return 1;
}

/* "a, b, c" of the tower's milestones, in the document's order (by type). */
static void seen_list(ct_buf *b, const json_t *milestones)
{
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach((json_t *)milestones, k, v) {
        ct_buf_addf(b, "%s%s", first ? "" : ", ", k);
        first = 0;
    }
    if (first) ct_buf_adds(b, "none");
}

static const char *stage_of(const json_t *entity)
{
    const char *st = json_string_value(json_object_get(entity, "stage"));
    return st && *st ? st : NULL;
}

/* What the system says vs what the tower has: the message, per kind. */
static void message(ct_buf *b, const batch_rec_finding *f, const char *system, const char *order, const char *status,
                    const json_t *entity, const char *detail)
{
    const json_t *ms = json_object_get(entity, "milestones");
    const char *stage = stage_of(entity);
    switch (f->kind) {
    case BATCH_REC_MISSING_MILESTONE:
        ct_buf_addf(b, "%s says %s, which implies %s; the tower has not seen %s (stage %s; seen: ", system, status,
                    f->milestone, f->milestone, stage ? stage : "none");
        seen_list(b, ms);
        ct_buf_adds(b, ")");
        break;
    case BATCH_REC_NOT_REFLECTED: {
        const char *at = json_string_value(json_object_get(ms, f->milestone));
        ct_buf_addf(b, "the tower has seen %s at %s (stage %s); %s says %s, which does not reflect it", f->milestone,
                    at ? at : "?", stage ? stage : "none", system, status);
        break;
    }
    case BATCH_REC_UNKNOWN_ORDER:
        ct_buf_addf(b, "%s says %s; the tower has no event of order %s", system, status, order);
        break;
    case BATCH_REC_MISSING_FROM_SNAPSHOT:
        ct_buf_addf(b, "the tower has order %s open (stage %s; seen: ", order, stage ? stage : "none");
        seen_list(b, ms);
        ct_buf_addf(b, "); the %s snapshot does not list it", system);
        break;
    case BATCH_REC_UNKNOWN_STATUS:
        ct_buf_addf(b, "%s says \"%s\", a status the mapping has no status.%s line for", system, status, status);
        break;
    default:
        ct_buf_adds(b, detail ? detail : "the row cannot be compared");
    }
}

/* A JSON string of untrusted text: control bytes become '?', and if the rest is not UTF-8, every non-ASCII byte. */
static json_t *text(const char *s, size_t n)
{
    char *c = ct_strndup(s, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f) c[i] = '?';
    json_t *j = json_stringn(c, n);
    for (size_t i = 0; !j && i <= n; i++) {
        if (i == n) j = json_stringn(c, n);
        else if ((unsigned char)c[i] >= 0x80) c[i] = '?';
    }
    free(c);
    return j;
}

static const char *const actions[BATCH_REC_KIND_COUNT] = {
    "check the system's feed to the tower for this order: a rejected or lost event (towerctl dlq list), an "
    "outbox or import that did not run; re-send the event once found",
    "check the system's inbound interface for this order (the POD, invoice or cancellation was not posted "
    "back), or whether the tower's event was wrong (towerctl order ID)",
    "check that the order's events reach the tower (towerctl dlq list, the system's publisher or import); "
    "an order created after the tower's last event is caught up by the next run",
    "check whether the system closed, archived or deleted the order without the closing milestone reaching "
    "the tower, or whether the snapshot is incomplete",
    "add a status.VALUE line for it to the mapping's [reconcile] section, or fix the export",
    "fix the row in the export (or the mapping's columns)",
    "the snapshot lists the order twice: fix the export (only the first row was compared)",
};

json_t *batch_rec_finding_json(const batch_rec_finding *f, const char *system, const char *file, size_t line,
                               const char *order, const char *status, const json_t *entity, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", text(file, strlen(file)));
    if (line) json_object_set_new(o, "line", json_integer((json_int_t)line));
    if (order && *order) json_object_set_new(o, "orderId", text(order, strlen(order)));
    json_object_set_new(o, "kind", json_string(batch_rec_kind_name(f->kind)));
    json_object_set_new(o, "system", json_string(system));
    if (status) json_object_set_new(o, "status", text(status, strlen(status)));
    if (f->milestone) json_object_set_new(o, "milestone", json_string(f->milestone));
    const char *stage = entity ? stage_of(entity) : NULL;
    if (stage) json_object_set_new(o, "towerStage", json_string(stage));
    ct_buf b = {0};
    message(&b, f, system, order, status, entity, detail);
    json_object_set_new(o, "message", text(b.data ? (const char *)b.data : "", b.len));
    free(b.data);
    json_object_set_new(o, "action", json_string(actions[(unsigned)f->kind < BATCH_REC_KIND_COUNT ? f->kind : 0]));
    return o;
}

/* ---- mismatches as events ------------------------------------------------------------------------------ */

int batch_rec_check(const batch_rec_finding *f, char *out, size_t cap)
{
    switch (f->kind) {
    case BATCH_REC_MISSING_MILESTONE:
    case BATCH_REC_NOT_REFLECTED:
        snprintf(out, cap, "%s:%s", batch_rec_kind_name(f->kind), f->milestone ? f->milestone : "");
        return 1;
    case BATCH_REC_UNKNOWN_ORDER:
    case BATCH_REC_MISSING_FROM_SNAPSHOT: snprintf(out, cap, "%s", batch_rec_kind_name(f->kind)); return 1;
    default: return 0;
    }
}

char *batch_rec_clean(const char *s, size_t max)
{
    json_t *j = text(s, strlen(s));
    const char *t = json_string_value(j);
    size_t n = json_string_length(j);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--; /* t[n] is the first byte left out */
    }
    char *c = ct_strndup(t ? t : "", t ? n : 0);
    json_decref(j);
    return c;
}

void batch_rec_sides(const batch_rec_finding *f, const char *status, const json_t *entity, char **theirs,
                     char **ours)
{
    const char *stage = entity ? stage_of(entity) : NULL;
    const char *at = f->milestone ? json_string_value(json_object_get(json_object_get(entity, "milestones"),
                                                                      f->milestone)) : NULL;
    char *t = NULL, *o = NULL;
    switch (f->kind) {
    case BATCH_REC_MISSING_MILESTONE:
        o = ct_sprintf("stage %s; %s not seen", stage ? stage : "none", f->milestone);
        break;
    case BATCH_REC_NOT_REFLECTED:
        o = ct_sprintf("%s at %s (stage %s)", f->milestone, at ? at : "?", stage ? stage : "none");
        break;
    case BATCH_REC_UNKNOWN_ORDER: o = ct_strdup("no event of the order"); break;
    case BATCH_REC_MISSING_FROM_SNAPSHOT:
        t = ct_strdup("not listed");
        o = ct_sprintf("open, stage %s", stage ? stage : "none");
        break;
    default: o = ct_strdup("");
    }
    *theirs = batch_rec_clean(t ? t : status ? status : "", EVT_MAX_TEXT);
    *ours = batch_rec_clean(o, EVT_MAX_TEXT);
    free(t);
    free(o);
}

static void hash_str(uint64_t *h, const char *s)
{
    const char *v = s ? s : "";
    uint64_t x[2] = {*h, ct_hash64(v, strlen(v) + 1)}; /* the NUL tells "ab","c" from "a","bc" */
    *h = ct_hash64(x, sizeof x);
}

json_t *batch_rec_mismatch_event(const batch_rec_mismatch *m)
{
    uint64_t h = m->snapshot_id ^ (m->cleared ? 0x9e3779b97f4a7c15ULL : 0);
    const char *const parts[] = {m->order, m->system, m->check, m->snapshot, m->cleared ? NULL : m->theirs,
                                 m->cleared ? NULL : m->ours, m->cleared ? NULL : m->message};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) hash_str(&h, parts[i]);
    char id[96], at[48];
    snprintf(id, sizeof id, "rec-%s-%c-%016llx", m->system, m->cleared ? 'c' : 'f', (unsigned long long)h);
    evt_time_format(m->at_s, m->at_ns, at);
    json_t *p = json_pack("{s:s,s:s}", "system", m->system, "check", m->check);
    if (m->snapshot) json_object_set_new(p, "snapshot", json_string(m->snapshot));
    if (!m->cleared) {
        if (m->theirs && *m->theirs) json_object_set_new(p, "theirs", json_string(m->theirs));
        if (m->ours && *m->ours) json_object_set_new(p, "ours", json_string(m->ours));
        if (m->message && *m->message) json_object_set_new(p, "message", json_string(m->message));
    }
    return json_pack("{s:s,s:s,s:{s:s},s:s,s:o}", "eventId", id, "occurredAt", at, "source", "system", "tower",
                     "orderId", m->order, m->cleared ? "mismatchCleared" : "mismatchFound", p);
}
