/* The NATS connection options shared by towerd's bus commands: flags, environment and config file. */
#ifndef TOWERD_NATS_OPTS_H
#define TOWERD_NATS_OPTS_H

#include "bus.h"
#include "ct_config.h"

extern const ct_opt_def towerd_nats_defs[];
extern const size_t towerd_nats_ndefs;

/* A command's own options followed by the NATS ones (caller frees). */
ct_opt_def *towerd_defs_concat(const ct_opt_def *a, size_t na, size_t *n);

/* The bus options from a parsed configuration (strings borrowed from it). */
void towerd_bus_opts(const ct_config *c, bus_opts *o, const char *name);

/* The durable consumer's name for a store: "tower-ROLE-HASH", HASH of this host and the store's real path,
   so that two stores on one stream never share a consumer (caller frees). */
char *towerd_consumer_name(const char *role, const char *store_dir);

#endif
