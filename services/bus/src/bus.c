/* The bus adapter: connection options, reconnection, and the idempotent stream setup. */
#include "bus_int.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_DUP_WINDOW_NS (120LL * 1000000000LL)

ct_status bus__status(natsStatus s, const char *what)
{
    if (s == NATS_OK) return CT_OK;
    ct_log(CT_LOG_ERROR, "bus", "%s: %s (%s)", what, natsStatus_GetText(s), nats_GetLastError(NULL));
    if (s == NATS_TIMEOUT) return CT_TIMEOUT;
    if (s == NATS_NOT_FOUND) return CT_NOT_FOUND;
    return CT_BUS;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    bus *b = closure;
    b->connected = 0;
    if (!b->closing) ct_log(CT_LOG_WARN, "bus", "disconnected from NATS; reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    bus *b = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    b->conn_gen++;
    b->connected = 1;
    ct_log(CT_LOG_INFO, "bus", "reconnected to %s", url);
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    bus *b = closure;
    pthread_mutex_lock(&b->mu);
    b->connected = 0;
    b->closed = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    ct_log(CT_LOG_WARN, "bus", "asynchronous error: %s", natsStatus_GetText(err));
}

static char *join_urls(const char *const *urls, size_t n)
{
    ct_buf j = {0};
    for (size_t i = 0; i < n; i++) ct_buf_addf(&j, "%s%s", i ? "," : "", urls[i]);
    char *out = ct_strdup(j.data ? j.data : "");
    ct_buf_free(&j);
    return out;
}

const char *bus_servers(bus *b) { return b->servers; }

ct_status bus_connect(bus **out, const bus_opts *o)
{
    bus *b = ct_calloc(1, sizeof *b);
    ct_status st = CT_OK;
    natsStatus s;
    b->o = *o;
    b->stream = ct_strdup(o->stream ? o->stream : BUS_EVENTS_STREAM);
    b->dlq_stream = ct_strdup(o->dlq_stream ? o->dlq_stream : BUS_DLQ_STREAM);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    bus__watch_init(b);

    static const char *def_url[] = {"nats://127.0.0.1:4222"};
    const char *const *urls = o->n_urls ? o->urls : def_url;
    size_t n_urls = o->n_urls ? o->n_urls : 1;
    b->servers = join_urls(urls, n_urls);

    s = natsOptions_Create(&b->nopts);
    if (s == NATS_OK) s = natsOptions_SetServers(b->nopts, (const char **)urls, (int)n_urls);
    if (s == NATS_OK) s = natsOptions_SetName(b->nopts, o->name ? o->name : "towerd");
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(b->nopts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(b->nopts, 250);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(b->nopts, 64 * 1024 * 1024);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(b->nopts, on_disconnected, b);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(b->nopts, on_reconnected, b);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(b->nopts, on_closed, b);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(b->nopts, on_error, b);
    if (s == NATS_OK && o->user) s = natsOptions_SetUserInfo(b->nopts, o->user, o->password ? o->password : "");
    if (s == NATS_OK && o->token) s = natsOptions_SetToken(b->nopts, o->token);
    if (s == NATS_OK && o->creds) s = natsOptions_SetUserCredentialsFromFiles(b->nopts, o->creds, NULL);
    if (s == NATS_OK && o->tls_ca) {
        s = natsOptions_SetSecure(b->nopts, true);
        if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(b->nopts, o->tls_ca);
    }
    if (s != NATS_OK) {
        st = bus__status(s, "set connection options");
        goto out;
    }
    /* No library retry (natsOptions_SetRetryOnFailedConnect): without a callback it blocks for ever,
     * deaf to any stop flag; with one, cnats 3.4 closes the connection for good when a server
     * accepts but never speaks. Our connector retries instead (bus_conn.c). */
    s = bus__attempt(b);
    if (s != NATS_OK && o->wait_connect) {
        ct_log(CT_LOG_WARN, "bus", "NATS at %s does not answer (%s); connecting in the background, retrying every %d ms",
               b->servers, natsStatus_GetText(s), BUS_RETRY_MS);
        st = bus__connector_start(b);
        if (st == CT_OK && !o->connect_async) st = bus__wait_live(b);
    } else if (s != NATS_OK) {
        ct_log(CT_LOG_ERROR, "bus", "cannot connect to NATS at %s%s: %s", urls[0], n_urls > 1 ? " (and others)" : "",
               natsStatus_GetText(s));
        st = CT_BUS;
    }
out:
    if (st != CT_OK) {
        bus_close(b);
        return st;
    }
    *out = b;
    return CT_OK;
}

void bus_close(bus *b)
{
    if (!b) return;
    int hung = bus__unresponsive(b); /* then flushing would only wait out its timeout */
    bus__watch_stop(b);              /* its round trips use the connection */
    bus__connector_stop(b);
    b->closing = 1;
    if (b->js) jsCtx_Destroy(b->js);
    if (b->nc) {
        if (!hung) natsConnection_FlushTimeout(b->nc, 1000);
        /* Callbacks run on the library's thread, after Close returns: wait for the last
         * one (closed) before the memory they use goes away. */
        natsConnection_Close(b->nc);
        pthread_mutex_lock(&b->mu);
        int64_t deadline = ct_mono_ns() + 5000000000LL;
        while (!b->closed && ct_mono_ns() < deadline) {
            pthread_mutex_unlock(&b->mu);
            nats_Sleep(5);
            pthread_mutex_lock(&b->mu);
        }
        pthread_mutex_unlock(&b->mu);
        natsConnection_Destroy(b->nc);
    }
    natsOptions_Destroy(b->nopts);
    for (size_t i = 0; i < b->n_pend; i++)
        if (!b->pend[i].done) natsMsg_Destroy(b->pend[i].msg);
    free(b->pend);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b->stream);
    free(b->dlq_stream);
    free(b->servers);
    free(b);
}

int bus_is_connected(bus *b)
{
    natsConnection *nc = bus__nc(b);
    return nc && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Did JetStream refuse a stream's settings because of its replicas? A single server refuses any
 * number above 1 (10074); a cluster without that many servers finds no place for them (10005, 10023). */
static int replicas_refused(jsErrCode jerr)
{
    return jerr == JSStreamReplicasNotSupportedErr || jerr == JSClusterNoPeersErr || jerr == JSInsufficientResourcesErr;
}

/* Create the stream, or bring its settings to what is configured. A server that cannot keep the replicas
 * asked for is said so in the log, never silently: when it answers with fewer, a warning naming both;
 * a single server (which can keep 1 only) gets the stream with 1 replica and a warning; a cluster
 * too small for them is an error. */
static ct_status ensure(bus *b, const char *name, const char *subject, int64_t dup_ns)
{
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {subject};
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Replicas = b->o.replicas > 0 ? b->o.replicas : 1;
    sc.MaxAge = b->o.max_age_ns;
    sc.MaxBytes = b->o.max_bytes > 0 ? b->o.max_bytes : -1;
    sc.Duplicates = dup_ns;
    const int64_t asked = sc.Replicas;

    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *what = "create";
    natsStatus s = js_GetStreamInfo(&si, b->js, name, NULL, &jerr);
    if (s == NATS_NOT_FOUND) {
        jerr = 0;
        s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
        if (s != NATS_OK && jerr == JSStreamReplicasNotSupportedErr && asked > 1) {
            ct_log(CT_LOG_WARN, "bus",
                   "JetStream refused stream %s with %d replicas (--stream-replicas): a single server keeps 1 "
                   "(JetStream error %d); creating it with 1 replica",
                   name, (int)asked, (int)jerr);
            sc.Replicas = 1;
            jerr = 0;
            s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
        }
        if (s == NATS_OK) ct_log(CT_LOG_INFO, "bus", "created stream %s (subjects %s, %d replica(s))", name, subject, (int)sc.Replicas);
    } else if (s == NATS_OK) {
        what = "update";
        jsStreamConfig *cur = si->Config;
        int64_t cur_replicas = cur->Replicas;
        /* A single server keeps one copy whatever the config says: do not record more there. */
        if (!si->Cluster && sc.Replicas > 1) sc.Replicas = 1;
        int same = cur->Replicas == sc.Replicas && cur->MaxAge == sc.MaxAge && cur->MaxBytes == sc.MaxBytes &&
                   cur->Duplicates == sc.Duplicates && cur->SubjectsLen == 1 && !strcmp(cur->Subjects[0], subject);
        if (!same) {
            jsStreamInfo_Destroy(si);
            si = NULL;
            jerr = 0;
            s = js_UpdateStream(&si, b->js, &sc, NULL, &jerr);
            if (s != NATS_OK && jerr == JSStreamReplicasNotSupportedErr && asked > cur_replicas) {
                ct_log(CT_LOG_WARN, "bus",
                       "JetStream refused %d replicas for stream %s (--stream-replicas): a single server keeps 1 "
                       "(JetStream error %d); keeping its %d",
                       (int)asked, name, (int)jerr, (int)cur_replicas);
                sc.Replicas = cur_replicas;
                jerr = 0;
                s = js_UpdateStream(&si, b->js, &sc, NULL, &jerr);
            }
            if (s == NATS_OK) ct_log(CT_LOG_INFO, "bus", "updated stream %s to the configured limits", name);
        }
    }
    if (s == NATS_OK && asked > 1) {
        /* A single server answers without cluster information, and may keep a config of 3 replicas
         * (nats-server 2.9 accepts that update) while it holds one copy: ask again to be sure. */
        if (si && !si->Cluster) {
            jsStreamInfo_Destroy(si);
            si = NULL;
            jsErrCode e2 = 0;
            if (js_GetStreamInfo(&si, b->js, name, NULL, &e2) != NATS_OK) si = NULL;
        }
        int64_t actual = !si ? asked : !si->Cluster ? 1 : si->Config ? si->Config->Replicas : asked;
        if (actual < asked)
            ct_log(CT_LOG_WARN, "bus",
                   "stream %s has %d replica(s), not the %d asked (--stream-replicas): a single server, or a "
                   "cluster too small",
                   name, (int)actual, (int)asked);
    }
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        if (replicas_refused(jerr) && asked > 1)
            ct_log(CT_LOG_ERROR, "bus",
                   "cannot %s stream %s with %d replicas (--stream-replicas): JetStream error %d (%s): the "
                   "cluster has too few servers with JetStream for them; lower --stream-replicas or add servers",
                   what, name, (int)asked, (int)jerr, natsStatus_GetText(s));
        else
            ct_log(CT_LOG_ERROR, "bus", "cannot create or update stream %s: %s (JetStream error %d)%s", name,
                   natsStatus_GetText(s), (int)jerr,
                   s == NATS_NO_RESPONDERS ? ": is JetStream enabled (nats-server -js)?" : "");
        return CT_BUS;
    }
    return CT_OK;
}

ct_status bus_ensure_streams(bus *b)
{
    if (!bus__nc(b)) return CT_BUS; /* not connected yet */
    int64_t dup = b->o.dup_window_ns > 0 ? b->o.dup_window_ns : DEFAULT_DUP_WINDOW_NS;
    ct_status st = ensure(b, b->stream, BUS_EVENTS_SUBJECTS, dup);
    if (st == CT_OK) st = ensure(b, b->dlq_stream, BUS_DLQ_SUBJECTS, dup);
    return st;
}

natsStatus bus__stream_info_rt(bus *b, bus_stream_state *out, int64_t timeout_ms, jsErrCode *jerr)
{
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms;
    if (!bus__nc(b)) return NATS_CONNECTION_DISCONNECTED;
    natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, timeout_ms > 0 ? &jo : NULL, jerr);
    if (s != NATS_OK) return s;
    out->first_seq = si->State.FirstSeq;
    out->last_seq = si->State.LastSeq;
    out->msgs = si->State.Msgs;
    out->created_ns = si->Created;
    jsStreamInfo_Destroy(si);
    return NATS_OK;
}

/* The stream's state: from the watch when one runs, else a round trip of at most timeout_ms (0: the
 * context's wait). quiet: a failure is a debug line (the caller tries again soon), else an error. */
static ct_status stream_info(bus *b, bus_stream_state *out, int64_t timeout_ms, int quiet)
{
    if (atomic_load(&b->watching)) return bus__watch_stream_info(b, out);
    if (quiet && !bus_is_connected(b)) return CT_BUS;
    jsErrCode jerr = 0;
    natsStatus s = bus__stream_info_rt(b, out, timeout_ms, &jerr);
    if (s == NATS_NOT_FOUND) return CT_NOT_FOUND;
    if (!quiet || s == NATS_OK) return bus__status(s, "read the stream's state");
    ct_log(CT_LOG_DEBUG, "bus", "read the stream's state: %s", natsStatus_GetText(s));
    return s == NATS_TIMEOUT ? CT_TIMEOUT : CT_BUS;
}

ct_status bus_stream_info_wait(bus *b, bus_stream_state *out, int64_t timeout_ms)
{
    return stream_info(b, out, timeout_ms > 0 ? timeout_ms : 1, 1);
}

ct_status bus_stream_info(bus *b, bus_stream_state *out) { return stream_info(b, out, 0, 0); }

ct_status bus_stream_delete(bus *b)
{
    jsErrCode jerr = 0;
    if (!bus__nc(b)) return CT_BUS;
    natsStatus s = js_DeleteStream(b->js, b->stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND) return CT_NOT_FOUND;
    return bus__status(s, "delete the stream");
}

ct_status bus_notify(bus *b, const char *subject, const void *data, size_t len)
{
    natsConnection *nc = bus__nc(b);
    natsStatus s = nc ? natsConnection_Publish(nc, subject, data, (int)len) : NATS_CONNECTION_DISCONNECTED;
    return s == NATS_OK ? CT_OK : CT_BUS;
}

void bus__on_sub_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    bus_sub *s = closure;
    s->fn(s->ctx, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

natsStatus bus__sub_open(bus *b, bus_sub *s)
{
    natsStatus ns = natsConnection_Subscribe(&s->sub, b->nc, s->subject, bus__on_sub_msg, s);
    /* A slow consumer loses messages rather than memory; the reader detects the gap. */
    if (ns == NATS_OK) natsSubscription_SetPendingLimits(s->sub, 65536, 256 * 1024 * 1024);
    return ns;
}

ct_status bus_subscribe(bus *b, const char *subject, void (*fn)(void *ctx, const char *data, size_t len), void *ctx,
                        bus_sub **out)
{
    bus_sub *s = ct_calloc(1, sizeof *s);
    s->b = b;
    s->subject = ct_strdup(subject);
    s->fn = fn;
    s->ctx = ctx;
    /* Not connected yet: the connector subscribes it with the connection (bus_conn.c). */
    if (bus__sub_queue(b, s)) {
        *out = s;
        return CT_OK;
    }
    natsStatus ns = bus__sub_open(b, s);
    /* A server that does not answer: the subscription goes out with the connection; nobody waits. */
    if (ns == NATS_OK && bus_is_connected(b)) ns = natsConnection_FlushTimeout(b->nc, 2000);
    if (ns == NATS_TIMEOUT) ns = NATS_OK;
    if (ns != NATS_OK) {
        natsSubscription_Destroy(s->sub);
        free(s->subject);
        free(s);
        return bus__status(ns, "subscribe");
    }
    *out = s;
    return CT_OK;
}

void bus_unsubscribe(bus_sub *s)
{
    if (!s) return;
    if (!bus__sub_unqueue(s->b, s)) {
        /* The callback may be running on the library's thread: drain waits until it is done with us
         * (briefly when NATS does not answer: its confirmation would not come). */
        int64_t wait_ms = bus__unresponsive(s->b) ? 500 : 5000;
        if (natsSubscription_Drain(s->sub) != NATS_OK || natsSubscription_WaitForDrainCompletion(s->sub, wait_ms) != NATS_OK)
            natsSubscription_Unsubscribe(s->sub);
        natsSubscription_Destroy(s->sub);
    }
    free(s->subject);
    free(s);
}
