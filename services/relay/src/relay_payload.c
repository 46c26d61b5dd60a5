/* What a destination receives (docs/outbound.md "Payloads"): pure. */
#include "relay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fold.h"

/* The id a Slack line names: the shipment (the more specific), else the order, else the route. */
static const char *subject_of(const evt_event *e, const char **what)
{
    if (e->shipment_id) return *what = "shipment", e->shipment_id;
    if (e->order_id) return *what = "order", e->order_id;
    if (e->route_id) return *what = "route", e->route_id;
    return *what = "event", e->event_id;
}

void relay__payload(const relay_dest *d, const evt_event *e, uint64_t seq, ct_buf *out)
{
    json_t *o;
    if (d->kind == RELAY_SLACK) {
        const char *what, *id = subject_of(e, &what);
        char when[48], text[600];
        evt_time_format(e->occurred_at->seconds, e->occurred_at->nanos, when);
        const char *wh = e->warehouse_id ? e->warehouse_id : NULL;
        snprintf(text, sizeof text, "%s: %s %s at %s%s%s (%s)", evt_type_name(e), what, id, when, wh ? ", " : "",
                 wh ? wh : "", e->source && e->source->system ? e->source->system : "");
        o = json_pack("{s:s}", "text", text);
    } else {
        char id[EVT_MAX_EVENT_ID + 80];
        snprintf(id, sizeof id, "%s.%s", e->event_id, d->name);
        o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:o}", "version", 1, "id", id, "destination", d->name, "seq",
                      (json_int_t)seq, "type", evt_type_name(e), "event", evt_to_json(e));
    }
    char *txt = json_dumps(o, JSON_COMPACT);
    ct_buf_adds(out, txt ? txt : "{}");
    free(txt);
    json_decref(o);
}

void relay__payload_batch(const relay_dest *d, const evt_event *const *evs, const uint64_t *seqs, size_t n, ct_buf *out)
{
    ct_buf_addf(out, "{\"version\":1,\"destination\":\"%s\",\"batch\":[", d->name);
    for (size_t i = 0; i < n; i++) {
        if (i) ct_buf_addc(out, ',');
        relay__payload(d, evs[i], seqs[i], out);
    }
    ct_buf_adds(out, "]}");
}

/* ---- kind = email ------------------------------------------------------------------------------------- */

/* The Message-ID's left part: "<eventId>.<name>" as a dot-atom (RFC 5322): event ids are [A-Za-z0-9._:-],
 * names [A-Za-z0-9_-]; ':' (not atext) is written '=' and a '.' that starts it or follows another '.' is
 * written '~' (neither '=' nor '~' occurs in an id: the mapping keeps distinct ids distinct). */
static void message_id(const relay_dest *d, const evt_event *e, ct_buf *out)
{
    char raw[EVT_MAX_EVENT_ID + 80];
    snprintf(raw, sizeof raw, "%s.%s", e->event_id, d->name);
    ct_buf_addc(out, '<');
    for (size_t i = 0; raw[i]; i++) {
        char c = raw[i];
        if (c == ':') c = '=';
        else if (c == '.' && (i == 0 || raw[i - 1] == '.')) c = '~';
        ct_buf_addc(out, c);
    }
    ct_buf_adds(out, "@tower>");
}

/* RFC 5322 date-time in UTC, independent of the locale. */
static void mail_date(int64_t now_s, char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)now_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Quoted-printable (RFC 2045 6.7) of text whose line breaks are "\n": CRLF line breaks, lines of at most 76
 * characters (soft breaks "=" CRLF), '=', control and non-ASCII bytes as =XX, a blank before a break too. */
static void quoted_printable(const char *text, size_t len, ct_buf *out)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            ct_buf_adds(out, "\r\n");
            col = 0;
            continue;
        }
        int at_end = i + 1 == len || text[i + 1] == '\n';
        int plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_end);
        size_t w = plain ? 1 : 3;
        /* Room for this and, unless the line ends here, the soft break's '='. */
        if (col + w > (at_end ? 76u : 75u)) {
            ct_buf_adds(out, "=\r\n");
            col = 0;
        }
        if (plain) ct_buf_addc(out, (char)c);
        else {
            ct_buf_addc(out, '=');
            ct_buf_addc(out, hexd[c >> 4]);
            ct_buf_addc(out, hexd[c & 15]);
        }
        col += w;
    }
}

static void fact(ct_buf *b, const char *name, const char *value)
{
    if (value && *value) ct_buf_addf(b, "%-12s %s\n", name, value);
}

void relay_email_message(const relay_dest *d, const evt_event *e, uint64_t seq, int64_t now_s, ct_buf *out)
{
    const char *what, *id = subject_of(e, &what);
    const char *type = evt_type_name(e);
    char date[40], when[48];
    mail_date(now_s, date);
    evt_time_format(e->occurred_at ? e->occurred_at->seconds : 0, e->occurred_at ? e->occurred_at->nanos : 0, when);
    /* The headers: every value is ASCII without line breaks (the relay file's checks, the contract's ids). */
    ct_buf_addf(out, "Date: %s\r\n", date);
    ct_buf_addf(out, "From: <%s>\r\n", d->mail_from ? d->mail_from : "");
    ct_buf_adds(out, "To: ");
    for (size_t i = 0; i < d->n_mail_to; i++) ct_buf_addf(out, "%s<%s>", i ? ",\r\n " : "", d->mail_to[i]);
    ct_buf_adds(out, "\r\n");
    ct_buf_addf(out, "Subject: %s %s %s %s\r\n", d->subject_prefix ? d->subject_prefix : "[tower]", type, what, id);
    ct_buf_adds(out, "Message-ID: ");
    message_id(d, e, out);
    ct_buf_adds(out, "\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n");
    ct_buf_addf(out, "X-Tower-Event-Type: %s\r\n", type);
    ct_buf_addf(out, "X-Tower-Sequence: %llu\r\n\r\n", (unsigned long long)seq);

    /* The body: the facts, then the event as canonical JSON. */
    ct_buf text = {0};
    ct_buf_addf(&text, "%s: %s %s at %s\n\n", type, what, id, when);
    fact(&text, "event", e->event_id);
    fact(&text, "type", type);
    fact(&text, "occurred", when);
    fact(&text, "source", e->source ? e->source->system : NULL);
    fact(&text, "order", e->order_id);
    fact(&text, "shipment", e->shipment_id);
    fact(&text, "route", e->route_id);
    fact(&text, "warehouse", fold_event_warehouse(e));
    fact(&text, "carrier", fold_event_carrier(e));
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    fact(&text, "sequence", num);
    fact(&text, "destination", d->name);
    json_t *j = evt_to_json(e);
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    ct_buf_addf(&text, "\nThe event (canonical JSON):\n%s\n", txt ? txt : "{}");
    free(txt);
    quoted_printable(text.data, text.len, out);
    ct_buf_free(&text);
}

/* ---- exception changes (relay_exc.c) ------------------------------------------------------------------------ */

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* "blocked shipment S-1" / "pending_route order O-1": what a Slack line and a subject name. */
static void exc_subject(const json_t *env, char *out, size_t cap)
{
    const json_t *item = json_object_get(env, "item");
    const char *s = jstr(item, "shipmentId"), *o = jstr(item, "orderId");
    const char *view = jstr(env, "view");
    snprintf(out, cap, "%s %s %s", view ? view : "?", s ? "shipment" : "order", s ? s : o ? o : "?");
}

/* The Slack line: "exception.opened: blocked shipment S-1 (dc-2, CARRIER: no truck)" and how it closed. */
static void exc_slack(const json_t *env, ct_buf *out)
{
    const json_t *item = json_object_get(env, "item");
    char subj[200], text[700];
    exc_subject(env, subj, sizeof subj);
    const char *wh = jstr(item, "warehouseId"), *why = jstr(item, "reason");
    if (!why) why = jstr(item, "lastFailure");
    if (!why) why = jstr(item, "rule");
    const char *closed = jstr(env, "closedAs"), *res = jstr(env, "resolution");
    const char *type = jstr(env, "type");
    snprintf(text, sizeof text, "%s: %s%s%s%s%s%s%s%s", type ? type : "exception", subj, wh || why ? " (" : "",
             wh ? wh : "", wh && why ? ", " : "", why ? why : "", wh || why ? ")" : "", closed ? ": " : "",
             closed ? closed : "");
    if (res) snprintf(text + strlen(text), sizeof text - strlen(text), " as %s", res);
    json_t *o = json_pack("{s:s}", "text", text);
    char *txt = json_dumps(o, JSON_COMPACT);
    ct_buf_adds(out, txt ? txt : "{}");
    free(txt);
    json_decref(o);
}

/* The email of a change: as relay_email_message, Subject "<prefix> exception.<change> <view> <entity> <id>",
 * Message-ID from the change's webhook-id as a dot-atom ('~' is atext; ':' written '=', a leading or repeated
 * '.' written '_': neither occurs in an id). */
static void exc_email(const relay_dest *d, const json_t *env, int64_t now_s, ct_buf *out)
{
    char date[40], subj[200];
    mail_date(now_s, date);
    exc_subject(env, subj, sizeof subj);
    const char *type = jstr(env, "type"), *id = jstr(env, "id");
    ct_buf_addf(out, "Date: %s\r\nFrom: <%s>\r\nTo: ", date, d->mail_from ? d->mail_from : "");
    for (size_t i = 0; i < d->n_mail_to; i++) ct_buf_addf(out, "%s<%s>", i ? ",\r\n " : "", d->mail_to[i]);
    ct_buf_addf(out, "\r\nSubject: %s %s %s\r\nMessage-ID: <", d->subject_prefix ? d->subject_prefix : "[tower]",
                type ? type : "exception", subj);
    for (const char *p = id ? id : "x"; *p; p++)
        ct_buf_addc(out, *p == ':' ? '=' : (*p == '.' && (p == id || p[-1] == '.')) ? '_' : *p);
    ct_buf_adds(out, "@tower>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n");
    ct_buf_addf(out, "X-Tower-Event-Type: %s\r\n\r\n", type ? type : "exception");
    ct_buf text = {0};
    ct_buf_addf(&text, "%s: %s\n\n", type ? type : "exception", subj);
    fact(&text, "exception", jstr(env, "exceptionId"));
    fact(&text, "state", jstr(env, "state"));
    fact(&text, "closed as", jstr(env, "closedAs"));
    fact(&text, "resolution", jstr(env, "resolution"));
    fact(&text, "customer", jstr(env, "customerId"));
    fact(&text, "destination", d->name);
    char *txt = json_dumps(env, JSON_COMPACT);
    ct_buf_addf(&text, "\nThe change (JSON):\n%s\n", txt ? txt : "{}");
    free(txt);
    quoted_printable(text.data, text.len, out);
    ct_buf_free(&text);
}

void relay__exc_payload(const relay_dest *d, const json_t *env, int64_t now_s, ct_buf *out)
{
    if (d->kind == RELAY_SLACK) return exc_slack(env, out);
    if (d->kind == RELAY_EMAIL) return exc_email(d, env, now_s, out);
    char *txt = json_dumps(env, JSON_COMPACT);
    ct_buf_adds(out, txt ? txt : "{}");
    free(txt);
}
