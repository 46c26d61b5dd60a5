/* The watch: a thread that keeps the events stream's state fresh with short round trips, so that
 * readers (HTTP requests) answer from a snapshot and never wait on NATS. */
#include "bus_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PERIOD_MS 500
#define DEFAULT_TIMEOUT_MS 2000

void bus__watch_init(bus *b)
{
    pthread_mutex_init(&b->watch_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->watch_cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* Record one round trip's outcome (s: its status) and log when NATS stops or resumes answering. */
static void record(bus *b, natsStatus s, const bus_stream_state *st, const char *why)
{
    int answered = s == NATS_OK || s == NATS_NOT_FOUND;
    pthread_mutex_lock(&b->watch_mu);
    if (answered) {
        b->answer_mono_ns = ct_mono_ns();
        b->stream_known = s == NATS_OK;
        if (s == NATS_OK) b->stream_state = *st;
        b->watch_error[0] = '\0';
    } else {
        snprintf(b->watch_error, sizeof b->watch_error, "%s", why);
    }
    int64_t since = b->answer_mono_ns ? (ct_mono_ns() - b->answer_mono_ns) / 1000000LL : -1;
    pthread_mutex_unlock(&b->watch_mu);
    if (answered && b->unresponsive_logged) {
        ct_log(CT_LOG_INFO, "bus", "NATS answers again");
        b->unresponsive_logged = 0;
    } else if (!answered && s != NATS_CONNECTION_DISCONNECTED && !b->unresponsive_logged && (since < 0 || since > BUS_WATCH_STALE_MS)) {
        if (since < 0) ct_log(CT_LOG_WARN, "bus", "NATS at %s does not answer: %s", b->servers, why);
        else ct_log(CT_LOG_WARN, "bus", "NATS at %s has not answered for %lld s: %s", b->servers,
                    (long long)(since / 1000), why);
        b->unresponsive_logged = 1;
    }
}

static void refresh(bus *b)
{
    bus_stream_state st = {0};
    if (!bus_is_connected(b)) {
        record(b, NATS_CONNECTION_DISCONNECTED, &st, "not connected");
        return;
    }
    jsErrCode jerr = 0;
    natsStatus s = bus__stream_info_rt(b, &st, b->timeout_ms, &jerr);
    char why[128];
    snprintf(why, sizeof why, "stream info: %s", natsStatus_GetText(s));
    record(b, s, &st, why);
}

static void *watch_main(void *arg)
{
    bus *b = arg;
    pthread_mutex_lock(&b->watch_mu);
    while (!b->watch_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += b->period_ms / 1000;
        until.tv_nsec += (long)(b->period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!b->watch_stop && pthread_cond_timedwait(&b->watch_cv, &b->watch_mu, &until) != ETIMEDOUT) {
        }
        if (b->watch_stop) break;
        pthread_mutex_unlock(&b->watch_mu);
        refresh(b);
        pthread_mutex_lock(&b->watch_mu);
    }
    pthread_mutex_unlock(&b->watch_mu);
    return NULL;
}

ct_status bus_watch_start(bus *b, int period_ms, int timeout_ms)
{
    pthread_mutex_lock(&b->watch_mu);
    int already = b->watch_claimed;
    b->watch_claimed = 1;
    pthread_mutex_unlock(&b->watch_mu);
    if (already) return CT_OK;
    b->period_ms = period_ms > 0 ? period_ms : DEFAULT_PERIOD_MS;
    b->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    refresh(b); /* the first answer before anyone reads the snapshot */
    int rc = pthread_create(&b->watch_thread, NULL, watch_main, b);
    if (rc == 0) atomic_store(&b->watching, 1);
    if (rc != 0) {
        ct_log(CT_LOG_ERROR, "bus", "cannot start the NATS watch: %s", strerror(rc));
        return CT_BUS;
    }
    return CT_OK;
}

void bus__watch_stop(bus *b)
{
    if (atomic_load(&b->watching)) {
        pthread_mutex_lock(&b->watch_mu);
        b->watch_stop = 1;
        pthread_cond_broadcast(&b->watch_cv);
        pthread_mutex_unlock(&b->watch_mu);
        pthread_join(b->watch_thread, NULL); /* at most one round trip's timeout */
        atomic_store(&b->watching, 0);
    }
    pthread_mutex_destroy(&b->watch_mu);
    pthread_cond_destroy(&b->watch_cv);
}

void bus_health_get(bus *b, bus_health *out)
{
    memset(out, 0, sizeof *out);
    out->connected = bus_is_connected(b);
    out->since_answer_ms = -1;
    if (!atomic_load(&b->watching)) return;
    out->watching = 1;
    pthread_mutex_lock(&b->watch_mu);
    if (b->answer_mono_ns) out->since_answer_ms = (ct_mono_ns() - b->answer_mono_ns) / 1000000LL;
    out->stream_known = b->stream_known;
    out->stream = b->stream_state;
    snprintf(out->error, sizeof out->error, "%s", b->watch_error);
    pthread_mutex_unlock(&b->watch_mu);
}

ct_status bus__watch_stream_info(bus *b, bus_stream_state *out)
{
    bus_health h;
    bus_health_get(b, &h);
    if (!h.connected) return CT_BUS;
    if (h.since_answer_ms < 0 || h.since_answer_ms > BUS_WATCH_STALE_MS) return CT_TIMEOUT;
    if (!h.stream_known) return CT_NOT_FOUND;
    *out = h.stream;
    return CT_OK;
}

int bus__unresponsive(bus *b)
{
    bus_health h;
    bus_health_get(b, &h);
    return !h.connected || (h.watching && (h.since_answer_ms < 0 || h.since_answer_ms > BUS_WATCH_STALE_MS));
}
