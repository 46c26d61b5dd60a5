/* The NATS connection options shared by every towerd command that talks to the bus. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nats_opts.h"

const ct_opt_def towerd_nats_defs[] = {
    {"nats", 0, "TOWER_NATS_URL", "nats.url", CT_OPT_STRING, "nats://127.0.0.1:4222", "URL",
     "NATS server URL(s), comma-separated or repeated", 0, 1},
    {"nats-user", 0, "TOWER_NATS_USER", "nats.user", CT_OPT_STRING, NULL, "USER", "NATS user name", 0, 0},
    {"nats-password", 0, "TOWER_NATS_PASSWORD", "nats.password", CT_OPT_STRING, NULL, "PASSWORD", "NATS password", 1, 0},
    {"nats-token", 0, "TOWER_NATS_TOKEN", "nats.token", CT_OPT_STRING, NULL, "TOKEN", "NATS auth token", 1, 0},
    {"nats-creds", 0, "TOWER_NATS_CREDS", "nats.creds", CT_OPT_STRING, NULL, "FILE", "NATS credentials file (JWT and seed)", 0, 0},
    {"nats-ca", 0, "TOWER_NATS_CA", "nats.tls_ca", CT_OPT_STRING, NULL, "FILE", "CA certificate: connect with TLS and verify the server", 0, 0},
    {"stream-replicas", 0, "TOWER_STREAM_REPLICAS", "stream.replicas", CT_OPT_INT, "1", "N", "replicas of the streams (3 on a cluster)", 0, 0},
    {"stream-max-age", 0, "TOWER_STREAM_MAX_AGE", "stream.max_age", CT_OPT_DURATION, "0", "DURATION", "drop events older than this (0: keep)", 0, 0},
    {"stream-max-bytes", 0, "TOWER_STREAM_MAX_BYTES", "stream.max_bytes", CT_OPT_SIZE, "0", "SIZE", "stream size limit (0: none)", 0, 0},
    {"dup-window", 0, "TOWER_STREAM_DUP_WINDOW", "stream.duplicate_window", CT_OPT_DURATION, "2m", "DURATION", "JetStream duplicate window", 0, 0},
};
const size_t towerd_nats_ndefs = sizeof towerd_nats_defs / sizeof towerd_nats_defs[0];

ct_opt_def *towerd_defs_concat(const ct_opt_def *a, size_t na, size_t *n)
{
    ct_opt_def *d = ct_malloc((na + towerd_nats_ndefs) * sizeof *d);
    memcpy(d, a, na * sizeof *d);
    memcpy(d + na, towerd_nats_defs, towerd_nats_ndefs * sizeof *d);
    *n = na + towerd_nats_ndefs;
    return d;
}

void towerd_bus_opts(const ct_config *c, bus_opts *o, const char *name)
{
    memset(o, 0, sizeof *o);
    const char **urls = NULL;
    o->n_urls = ct_config_list(c, "nats", &urls);
    o->urls = urls;
    o->user = ct_config_str(c, "nats-user");
    o->password = ct_config_str(c, "nats-password");
    o->token = ct_config_str(c, "nats-token");
    o->creds = ct_config_str(c, "nats-creds");
    o->tls_ca = ct_config_str(c, "nats-ca");
    o->replicas = (int)ct_config_int(c, "stream-replicas");
    o->max_age_ns = ct_config_duration_ns(c, "stream-max-age");
    o->max_bytes = (int64_t)ct_config_size(c, "stream-max-bytes");
    o->dup_window_ns = ct_config_duration_ns(c, "dup-window");
    o->name = name;
}

char *towerd_consumer_name(const char *role, const char *store_dir)
{
    char host[256] = "", *real = realpath(store_dir, NULL);
    gethostname(host, sizeof host - 1);
    char *who = ct_sprintf("%s:%s", host, real ? real : store_dir);
    char *name = ct_sprintf("tower-%s-%08llx", role, (unsigned long long)(ct_hash64(who, strlen(who)) & 0xffffffffULL));
    free(who);
    free(real);
    return name;
}
