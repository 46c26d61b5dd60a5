/* The HTTP server's options, shared by towerd serve and towerd up: flags, environment and config file. */
#include <string.h>

#include "server_opts.h"

const ct_opt_def towerd_server_defs[] = {
    {"http", 0, "TOWER_HTTP", "server.http", CT_OPT_STRING, "127.0.0.1:8080", "HOST:PORT",
     "listen address (beyond loopback only with --tokens)", 0, 0},
    {"web", 0, "TOWER_WEB", "server.web", CT_OPT_STRING, "./web", "DIR", "the dashboard's static files", 0, 0},
    {"runbooks", 0, "TOWER_RUNBOOKS", "server.runbooks", CT_OPT_STRING, "./docs/runbooks", "DIR",
     "the runbooks (Markdown, one per view, reason, code, rule and alert; docs/runbooks/README.md)", 0, 0},
    {"threads", 0, "TOWER_HTTP_THREADS", "server.threads", CT_OPT_INT, "32", "N",
     "worker threads for requests (the live stream's clients get theirs on top)", 0, 0},
    {"ready-max-lag", 0, "TOWER_READY_MAX_LAG", "server.ready_max_lag", CT_OPT_INT, "10000", "N",
     "/readyz fails when the projector is more events behind", 0, 0},
    {"tokens", 0, "TOWER_TOKENS", "server.tokens", CT_OPT_STRING, NULL, "FILE",
     "API tokens with roles, hashed (lines 'NAME ROLE SHA256HEX', see towerd token); every API route then needs one",
     0, 0},
    {"max-future-skew", 0, "TOWER_MAX_FUTURE_SKEW", "server.max_future_skew", CT_OPT_DURATION, "24h", "DURATION",
     "POST /api/v1/events rejects an event whose occurredAt is further ahead of this clock (0: no check)", 0, 0},
    {"allowed-hosts", 0, "TOWER_ALLOWED_HOSTS", "server.allowed_hosts", CT_OPT_STRING, NULL, "HOSTS",
     "without --tokens: Host names besides the listen addresses that requests may carry (comma-separated, "
     "NAME or NAME:PORT; a proxy that forwards its own Host), also accepted as Origin", 0, 0},
    {"ws-max-clients", 0, "TOWER_WS_MAX_CLIENTS", "server.ws_max_clients", CT_OPT_INT, "256", "N",
     "live-stream connections at once (each holds a worker thread)", 0, 0},
    {"ws-queue", 0, "TOWER_WS_QUEUE", "server.ws_queue", CT_OPT_INT, "20000", "N",
     "changes queued to one live-stream client before it is dropped to a resync", 0, 0},
    {"ws-snapshot-max", 0, "TOWER_WS_SNAPSHOT_MAX", "server.ws_snapshot_max", CT_OPT_INT, "500", "N",
     "items in a live-stream snapshot (the oldest; its count gives the total)", 0, 0},
    {"ws-coalesce", 0, "TOWER_WS_COALESCE", "server.ws_coalesce", CT_OPT_DURATION, "20ms", "DURATION",
     "a live-stream client gets at most one frame per this interval (changes are batched)", 0, 0},
    {"ws-ping", 0, "TOWER_WS_PING", "server.ws_ping", CT_OPT_DURATION, "30s", "DURATION",
     "a live-stream client silent this long is pinged; one that answers no two pings is dropped", 0, 0},
    {"request-timeout", 0, "TOWER_HTTP_REQUEST_TIMEOUT", "server.request_timeout", CT_OPT_DURATION, "10s", "DURATION",
     "a request (headers and body) must arrive within this, and an answer be taken; slower clients are cut off", 0, 0},
    {"stream-listen", 0, "TOWER_STREAM_LISTEN", "server.stream_listen", CT_OPT_STRING, NULL, "HOST:PORT",
     "also serve the live stream (/api/v1/stream) on this address with libwebsockets: a few service threads for "
     "thousands of clients (beyond loopback only with --tokens); the dashboard is told to use it", 0, 0},
    {"stream-threads", 0, "TOWER_STREAM_THREADS", "server.stream_threads", CT_OPT_INT, "2", "N",
     "service threads of the --stream-listen listener (1-16)", 0, 0},
    {"stream-max-clients", 0, "TOWER_STREAM_MAX_CLIENTS", "server.stream_max_clients", CT_OPT_INT, "10000", "N",
     "live-stream connections at once on the --stream-listen listener; more get 503", 0, 0},
    {"stream-url", 0, "TOWER_STREAM_URL", "server.stream_url", CT_OPT_STRING, NULL, "URL",
     "the live stream's URL the dashboard is told (GET /api/v1/me): /api/v1/stream when a proxy routes it to the "
     "--stream-listen listener on the page's own origin, or ws(s)://HOST[:PORT]/api/v1/stream", 0, 0},
    {"trusted-proxies", 0, "TOWER_TRUSTED_PROXIES", "server.trusted_proxies", CT_OPT_STRING, NULL, "CIDRS",
     "SSO: addresses of reverse proxies (comma-separated CIDRs, e.g. 127.0.0.1/32) whose user and groups headers "
     "name the caller; those headers from any other address are refused (403)", 0, 0},
    {"proxy-user-header", 0, "TOWER_PROXY_USER_HEADER", "server.proxy_user_header", CT_OPT_STRING, "X-Forwarded-User",
     "NAME", "SSO: the header in which the trusted proxy names the signed-in user (recorded as the actor of writes)", 0, 0},
    {"proxy-groups-header", 0, "TOWER_PROXY_GROUPS_HEADER", "server.proxy_groups_header", CT_OPT_STRING,
     "X-Forwarded-Groups", "NAME", "SSO: the header in which the trusted proxy lists the user's groups (comma-separated)",
     0, 0},
    {"proxy-roles", 0, "TOWER_PROXY_ROLES", "server.proxy_roles", CT_OPT_STRING, NULL, "GROUP=ROLE,...",
     "SSO: the role of each group (viewer, operator, ingest; '*' any signed-in user); a user gets the highest of "
     "theirs, none: 403", 0, 0},
    /* Last: towerd up has its own --relay and keeps the relay's state in DIR/relay (towerd_server_nshared). */
    {"relay", 0, "TOWER_RELAY", "relay.file", CT_OPT_STRING, NULL, "FILE",
     "the outbound relay's destinations (docs/outbound.md), shown at /api/v1/integrations with their dead letters "
     "and redrive; a bad file stops the server (exit 2)", 0, 0},
    {"relay-state", 0, "TOWER_RELAY_STATE", "relay.state", CT_OPT_STRING, "./tower-data/relay", "DIR",
     "the relay's state directory (towerd relay --state): NAME.status.json, NAME.dead.ndjson", 0, 0},
};
const size_t towerd_server_ndefs = sizeof towerd_server_defs / sizeof towerd_server_defs[0];
const size_t towerd_server_nshared = sizeof towerd_server_defs / sizeof towerd_server_defs[0] - 2;

void towerd_server_opts(const ct_config *c, server_opts *o)
{
    towerd_server_opts_shared(c, o);
    o->relay_file = ct_config_str(c, "relay");
    o->relay_state = ct_config_str(c, "relay-state");
}

void towerd_server_opts_shared(const ct_config *c, server_opts *o)
{
    memset(o, 0, sizeof *o);
    o->listen = ct_config_str(c, "http");
    o->web_root = ct_config_str(c, "web");
    o->runbooks = ct_config_str(c, "runbooks");
    o->threads = (unsigned)ct_config_int(c, "threads");
    o->ready_max_lag = (uint64_t)ct_config_int(c, "ready-max-lag");
    o->tokens_file = ct_config_str(c, "tokens");
    o->allowed_hosts = ct_config_str(c, "allowed-hosts");
    o->trusted_proxies = ct_config_str(c, "trusted-proxies");
    o->proxy_user_header = ct_config_str(c, "proxy-user-header");
    o->proxy_groups_header = ct_config_str(c, "proxy-groups-header");
    o->proxy_roles = ct_config_str(c, "proxy-roles");
    o->max_future_skew_ns = ct_config_duration_ns(c, "max-future-skew");
    o->ws_max_clients = (unsigned)ct_config_int(c, "ws-max-clients");
    o->ws_queue = (size_t)ct_config_int(c, "ws-queue");
    o->ws_snapshot_max = (unsigned)ct_config_int(c, "ws-snapshot-max");
    o->ws_coalesce_ms = (int)(ct_config_duration_ns(c, "ws-coalesce") / 1000000);
    o->stream_listen = ct_config_str(c, "stream-listen");
    int64_t st = ct_config_int(c, "stream-threads"), sm = ct_config_int(c, "stream-max-clients");
    o->stream_threads = st > 0 ? (unsigned)(st < 16 ? st : 16) : 2;
    o->stream_max_clients = sm > 0 ? (unsigned)(sm < 1000000 ? sm : 1000000) : 10000;
    o->stream_url = ct_config_str(c, "stream-url");
    int64_t ping = ct_config_duration_ns(c, "ws-ping") / 1000000;
    o->ws_ping_ms = ping > 0 && ping < 3600000 ? (int)ping : ping >= 3600000 ? 3600000 : 0;
    int64_t rt = ct_config_duration_ns(c, "request-timeout") / 1000000;
    o->request_timeout_ms = rt > 0 && rt < 3600000 ? (int)rt : rt >= 3600000 ? 3600000 : 0;
}
