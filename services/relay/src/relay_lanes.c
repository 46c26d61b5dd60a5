/* Delivery lanes (docs/outbound.md "Lanes"), pure: which lane an event goes through so that each order,
 * shipment and route gets its events in stream order, and the window whose done prefix is the checkpoint. */
#include "relay.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over a one-letter kind and the id, then a splitmix64 finish (so that mod lanes spreads well). */
static uint64_t key_hash(char kind, const char *id)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = (h ^ (unsigned char)kind) * UINT64_C(0x100000001b3);
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * UINT64_C(0x100000001b3);
    h = (h ^ (h >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94D049BB133111EB);
    return h ^ (h >> 31);
}

size_t relay_lane_keys(const evt_event *e, uint64_t keys[RELAY_LANE_KEYS])
{
    /* Room for the order and the route beside the shipments; asking for more than that tells an overflow. */
    const char *ship[RELAY_LANE_KEYS];
    size_t ns = relay_ready_ids(e, ship, RELAY_LANE_KEYS), n = 0;
    if (ns > RELAY_LANE_KEYS - 2) return 0;
    if (e->order_id && *e->order_id) keys[n++] = key_hash('o', e->order_id);
    for (size_t i = 0; i < ns; i++) keys[n++] = key_hash('s', ship[i]);
    if (e->route_id && *e->route_id) keys[n++] = key_hash('r', e->route_id);
    if (!n) keys[n++] = key_hash('e', e->event_id ? e->event_id : "");
    return n;
}

void relay_window_init(relay_window *w, unsigned lanes, uint64_t checkpoint)
{
    memset(w, 0, sizeof *w);
    w->lanes = lanes < 1 ? 1 : lanes > RELAY_LANES_MAX ? RELAY_LANES_MAX : lanes;
    w->cap = (size_t)w->lanes * RELAY_LANE_DEPTH;
    w->v = ct_calloc(w->cap, sizeof *w->v);
    w->checkpoint = checkpoint;
}

void relay_window_free(relay_window *w)
{
    free(w->v);
    w->v = NULL;
    w->n = 0;
}

static int shares(const relay_window_item *it, const uint64_t *keys, size_t nkeys)
{
    if (!it->nkeys || !nkeys) return 1; /* a barrier shares with everything */
    for (size_t i = 0; i < it->nkeys; i++)
        for (size_t j = 0; j < nkeys; j++)
            if (it->keys[i] == keys[j]) return 1;
    return 0;
}

int relay_window_pick(const relay_window *w, const uint64_t *keys, size_t nkeys)
{
    if (w->n >= w->cap) return -1;
    int lane = -1;
    for (size_t k = 0; k < w->n; k++) {
        const relay_window_item *it = &w->v[(w->head + k) % w->cap];
        if (it->done || !shares(it, keys, nkeys)) continue;
        if (lane >= 0 && lane != it->lane) return -1; /* its entities wait on two lanes: after them */
        lane = it->lane;
    }
    if (lane < 0) lane = nkeys ? (int)(keys[0] % w->lanes) : 0;
    return w->queued[lane] >= RELAY_LANE_DEPTH ? -1 : lane;
}

size_t relay_window_add(relay_window *w, uint64_t seq, const uint64_t *keys, size_t nkeys, unsigned lane)
{
    size_t slot = (w->head + w->n) % w->cap;
    relay_window_item *it = &w->v[slot];
    memset(it, 0, sizeof *it);
    it->seq = it->upto = seq;
    it->nkeys = (uint8_t)(nkeys > RELAY_LANE_KEYS ? RELAY_LANE_KEYS : nkeys);
    memcpy(it->keys, keys, it->nkeys * sizeof *keys);
    it->lane = (uint16_t)lane;
    w->queued[lane]++;
    w->n++;
    return slot;
}

void relay_window_skip(relay_window *w, uint64_t seq)
{
    if (w->n) {
        relay_window_item *last = &w->v[(w->head + w->n - 1) % w->cap];
        if (seq > last->upto) last->upto = seq;
    } else if (seq > w->checkpoint) {
        w->checkpoint = seq;
    }
}

void relay_window_done(relay_window *w, size_t slot)
{
    relay_window_item *it = &w->v[slot % w->cap];
    if (it->done) return;
    it->done = 1;
    if (w->queued[it->lane]) w->queued[it->lane]--;
}

uint64_t relay_window_advance(relay_window *w)
{
    while (w->n && w->v[w->head].done) {
        w->checkpoint = w->v[w->head].upto;
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    return w->checkpoint;
}
