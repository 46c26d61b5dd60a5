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

#endif
