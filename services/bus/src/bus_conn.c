/* The first connection: one attempt in bus_connect, then (wait_connect) a connector thread that
 * retries until a server answers or the bus is closed, so that no caller is stuck in
 * natsConnection_Connect. Once connected, cnats reconnects on its own. */
#include "bus_int.h"

#include <stdlib.h>
#include <string.h>

natsStatus bus__attempt(bus *b)
{
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_Connect(&nc, b->nopts);
    if (s != NATS_OK) return s;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.AckHandler = bus__ack_handler;
    jo.PublishAsync.AckHandlerClosure = b;
    jsCtx *js = NULL;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        /* Out of memory: keep the connection (its callbacks have closures on us) without a context. */
        bus__status(s, "open the JetStream context");
    }
    pthread_mutex_lock(&b->mu);
    b->nc = nc;
    b->js = js;
    b->connected = 1;
    atomic_store(&b->live, 1);
    /* Those asked for before the connection, in order (the list is newest first). */
    bus_sub *q = b->queued, *rev = NULL;
    b->queued = NULL;
    while (q) {
        bus_sub *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    for (bus_sub *x = rev; x; x = x->next)
        if (bus__sub_open(b, x) != NATS_OK) ct_log(CT_LOG_ERROR, "bus", "cannot subscribe to %s", x->subject);
    pthread_mutex_unlock(&b->mu);
    return NATS_OK;
}

static void *connector(void *arg)
{
    bus *b = arg;
    int64_t next_log = ct_mono_ns() + 30000000000LL;
    while (!atomic_load(&b->conn_stop)) {
        for (int i = 0; i < BUS_RETRY_MS / 50 && !atomic_load(&b->conn_stop); i++) nats_Sleep(50);
        if (atomic_load(&b->conn_stop)) break;
        natsStatus s = bus__attempt(b);
        if (s == NATS_OK) {
            char url[256] = "";
            natsConnection_GetConnectedUrl(b->nc, url, sizeof url);
            ct_log(CT_LOG_INFO, "bus", "connected to %s", url);
            break;
        }
        if (ct_mono_ns() > next_log) {
            ct_log(CT_LOG_WARN, "bus", "still no NATS at %s (%s); retrying", b->servers, natsStatus_GetText(s));
            next_log = ct_mono_ns() + 30000000000LL;
        }
    }
    return NULL;
}

ct_status bus__connector_start(bus *b)
{
    if (pthread_create(&b->connector, NULL, connector, b) != 0) {
        ct_log(CT_LOG_ERROR, "bus", "cannot start the NATS connector thread");
        return CT_BUS;
    }
    b->connector_started = 1;
    return CT_OK;
}

void bus__connector_stop(bus *b)
{
    atomic_store(&b->conn_stop, 1);
    if (b->connector_started) pthread_join(b->connector, NULL); /* at most one attempt (2 s a server) */
    b->connector_started = 0;
    /* Never connected: the subscriptions still queued are their owners' to free (bus_unsubscribe). */
}

ct_status bus__wait_live(bus *b)
{
    while (!atomic_load(&b->live)) {
        if (b->o.stop && *b->o.stop) return CT_TIMEOUT;
        nats_Sleep(50);
    }
    return CT_OK;
}

int bus__sub_queue(bus *b, bus_sub *s)
{
    pthread_mutex_lock(&b->mu);
    int queued = !atomic_load(&b->live);
    if (queued) {
        s->next = b->queued;
        b->queued = s;
    }
    pthread_mutex_unlock(&b->mu);
    return queued;
}

int bus__sub_unqueue(bus *b, bus_sub *s)
{
    int found = 0;
    pthread_mutex_lock(&b->mu);
    for (bus_sub **p = &b->queued; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            found = 1;
            break;
        }
    /* Not connected when queued, and the connection never came: nothing to drain. */
    if (!found && !s->sub) found = 1;
    pthread_mutex_unlock(&b->mu);
    return found;
}
