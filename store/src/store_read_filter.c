/* The view filters judged on each item (customer, channel, reason, SLA state) and the customer ids. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

store_sla_state store_item_sla(const Tower__V1__ViewItem *it, int64_t now_ns)
{
    if (!it->sla_due_at) return STORE_SLA_NONE;
    int64_t due = store__ts_ns(it->sla_due_at), since = store__ts_ns(it->since);
    if (due <= now_ns) return STORE_SLA_BREACHED;
    if (due > since && (double)(now_ns - since) >= STORE_SLA_SOON_SHARE * (double)(due - since))
        return STORE_SLA_DUE_SOON;
    return STORE_SLA_WITHIN;
}

int store__filter_extra(const store_query *q)
{
    return (q->customer && *q->customer) || (q->channel && *q->channel) || (q->reason && *q->reason) || q->sla;
}

/* Is order_id one of the orders created for customer (the customer index holds the pair)? */
static int customer_has(store_reader *r, const char *customer, const char *order_id)
{
    size_t cl = strlen(customer), ol = strlen(order_id);
    if (!cl || cl > 511 || !ol || ol > 511) return 0;
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, r->s->cust, &c) != 0) return 0;
    MDB_val k = {cl, (void *)customer}, v = {ol, (void *)order_id};
    int rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH);
    mdb_cursor_close(c);
    return rc == 0;
}

/* The channel of the order's latest orderCreated in timeline order ("" when none says one). */
static int channel_seen(void *ctx, const evt_event *e, uint64_t seq)
{
    (void)seq;
    if (e->payload_case != TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED) return 0;
    const char **out = ctx;
    const ProtobufCEnumValue *v = NULL;
    if (e->order_created->has_channel)
        v = protobuf_c_enum_descriptor_get_value(&tower__v1__order_created__channel__descriptor,
                                                 (int)e->order_created->channel);
    *out = v ? v->name : "";
    return 0;
}

static int channel_is(store_reader *r, const char *order_id, const char *channel)
{
    const char *got = "";
    if (store_timeline(r, 'o', order_id, channel_seen, &got) != CT_OK) return 0;
    return strcasecmp(got, channel) == 0;
}

int store__filter_wants(store_reader *r, const store_query *q, const Tower__V1__ViewItem *it)
{
    if (q->sla && store_item_sla(it, q->now_ns) != (store_sla_state)q->sla) return 0;
    if (q->reason && *q->reason && !(it->reason && strcasecmp(it->reason, q->reason) == 0) &&
        !(it->last_failure && strcasecmp(it->last_failure, q->reason) == 0))
        return 0;
    if (q->customer && *q->customer && !(it->order_id && customer_has(r, q->customer, it->order_id))) return 0;
    if (q->channel && *q->channel && !(it->order_id && channel_is(r, it->order_id, q->channel))) return 0;
    return 1;
}

int store_reader_customers(store_reader *r, size_t limit, void (*fn)(void *ctx, const char *id), void *ctx)
{
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, r->s->cust, &c) != 0) return 0;
    MDB_val k, v;
    char id[EVT_MAX_ID + 1];
    size_t n = 0;
    int more = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
        if (k.mv_size == 0 || k.mv_size > EVT_MAX_ID) continue;
        if (n == limit) {
            more = 1;
            break;
        }
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        fn(ctx, id);
        n++;
    }
    mdb_cursor_close(c);
    return more;
}

int store_reader_customer_resolve(store_reader *r, const char *id, char *out, size_t cap)
{
    size_t il = strlen(id);
    if (!il || il > EVT_MAX_ID || il >= cap) return 0;
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, r->s->cust, &c) != 0) return 0;
    MDB_val k = {il, (void *)id}, v;
    int found = mdb_cursor_get(c, &k, &v, MDB_SET) == 0;
    size_t seen = 0;
    for (int rc = found ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && seen < 100000;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP), seen++) {
        if (k.mv_size == il && strncasecmp(k.mv_data, id, il) == 0) {
            found = 1;
            break;
        }
    }
    if (found) {
        memcpy(out, k.mv_data, il);
        out[il] = '\0';
    }
    mdb_cursor_close(c);
    return found;
}
