/* Rebuilding a store from the stream: the steps towerd projector/rebuild and towerd up share
 * (docs/deploy.md "Upgrading"). */
#ifndef TOWERD_STORE_UPGRADE_H
#define TOWERD_STORE_UPGRADE_H

#include <signal.h>

#include "bus.h"
#include "fold.h"

/* 1 if dir holds a store of another format than this build's (a new or missing store: 0). */
int towerd_store_is_old(const char *dir);

/* The events stream's state, asked again every 250 ms until it answers: CT_OK, CT_NOT_FOUND (no such
 * stream), or CT_BUS once *stop is set. */
ct_status towerd_wait_stream(bus *b, bus_stream_state *st, volatile sig_atomic_t *stop);

/* Nothing to replay: make gen (a flat generation) an empty store that has seen the stream st up to its last
 * sequence. rules: the fold's SLA rules (NULL: the defaults). */
ct_status towerd_empty_generation(const char *gen, const bus_stream_state *st, const fold_sla_rules *rules);

/* One replay of the stream into the flat generation gen with the trend hint (projector_opts.trend_drop_before_ns;
 * 0: none), everything the caller's rebuild does before the swap. Returns a PROJECTOR_* code. */
typedef int (*towerd_replay_fn)(void *ctx, const char *gen, int64_t trend_hint);

/* Replay st into gen with the trend hint guessed from the stream's last messages (projector_trend_guess): the
 * trend rows older than 48 hours before their time are not closed on the way. The guess is checked against the
 * trend clock the replay ended with; when it did not hold (rows that are kept were not closed: the last events
 * are dated later than the clock reached), gen is emptied and replayed again without it (logged). Not checked
 * when *stop was set meanwhile (the caller does not swap then). Returns a PROJECTOR_* code. */
int towerd_replay_hinted(bus *b, const bus_stream_state *st, const char *gen, towerd_replay_fn fn, void *ctx,
                         volatile sig_atomic_t *stop);

#endif
