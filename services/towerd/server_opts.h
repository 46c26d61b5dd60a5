/* The HTTP server's options shared by towerd serve and towerd up. */
#ifndef TOWERD_SERVER_OPTS_H
#define TOWERD_SERVER_OPTS_H

#include "ct_config.h"
#include "server.h"

extern const ct_opt_def towerd_server_defs[];
extern const size_t towerd_server_ndefs;
/* The first towerd_server_nshared of them, without --relay and --relay-state (towerd up has its own --relay
 * and keeps the relay's state in DIR/relay). */
extern const size_t towerd_server_nshared;

/* The server's options from a parsed configuration (strings borrowed from it); data_dir and bus are
 * left for the caller. */
void towerd_server_opts(const ct_config *c, server_opts *o);
/* The same from a table of the first towerd_server_nshared options only (relay_file, relay_state unset). */
void towerd_server_opts_shared(const ct_config *c, server_opts *o);

#endif
