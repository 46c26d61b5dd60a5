/* The HTTP server's options shared by towerd serve and towerd up. */
#ifndef TOWERD_SERVER_OPTS_H
#define TOWERD_SERVER_OPTS_H

#include "ct_config.h"
#include "server.h"

extern const ct_opt_def towerd_server_defs[];
extern const size_t towerd_server_ndefs;

/* The server's options from a parsed configuration (strings borrowed from it); data_dir and bus are
 * left for the caller. */
void towerd_server_opts(const ct_config *c, server_opts *o);

#endif
