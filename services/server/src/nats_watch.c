/* NATS as the bus's watch last saw it: what /readyz, /metrics and /api/v1/summary know of NATS,
 * read from a snapshot that a background thread of the bus refreshes (bus_watch_start), so that no
 * request ever waits on a NATS round trip. */
#include "server_int.h"

#include <stdio.h>

/* The watch's period and the bound of each of its round trips. */
#define WATCH_PERIOD_MS 500
#define WATCH_TIMEOUT_MS 2000

void server__nats(http_server *s, bus_health *out)
{
    /* towerd serve starts the watch before serving; a server given an unwatched bus (towerd up)
     * starts it on first use (idempotent: only the first caller waits, for one bounded round trip). */
    bus_health h;
    bus_health_get(s->o.bus, &h);
    if (!h.watching) bus_watch_start(s->o.bus, WATCH_PERIOD_MS, WATCH_TIMEOUT_MS);
    bus_health_get(s->o.bus, out);
}

const char *server__nats_unready(const bus_health *h, char *buf, size_t cap)
{
    if (!h->connected) {
        snprintf(buf, cap, "NATS is not connected");
    } else if (h->since_answer_ms < 0) {
        snprintf(buf, cap, "NATS has not answered yet%s%s", h->error[0] ? ": " : "", h->error);
    } else if (h->since_answer_ms > BUS_WATCH_STALE_MS) {
        snprintf(buf, cap, "NATS has not answered for %lld s%s%s", (long long)(h->since_answer_ms / 1000),
                 h->error[0] ? ": " : "", h->error);
    } else {
        return NULL;
    }
    return buf;
}
