/* The HTTP server (civetweb): REST queries on the store, metrics, health, and the static dashboard. */
#ifndef SERVER_H
#define SERVER_H

#include <stdint.h>

#include "bus.h"
#include "ct.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct http_server http_server;

/**
 * Options of http_server_start.
 *
 * http_server_start copies the struct shallowly: the strings and the bus it points to are borrowed, not
 * copied, and must stay valid until http_server_stop.
 */
/** One publisher's count of publishes JetStream acknowledged as duplicates (ack "duplicate": the message id
 *  was in the stream already, so the projector never sees it), since its process started. */
typedef struct server_pub_dups {
    const char *source; /**< the publisher: "server", "simulators", "supervisors" (static text) */
    uint64_t count;
} server_pub_dups;

typedef struct server_opts {
    const char *listen;        /**< HOST:PORT (default 127.0.0.1:8080); loopback only for now */
    const char *data_dir;      /**< the store directory (read-only; may not exist yet) */
    const char *web_root;      /**< static files served at / (NULL: none) */
    unsigned threads;          /**< worker threads (default 32) */
    bus *bus;                  /**< NATS, for the stream's last sequence and readiness (NULL: none) */
    uint64_t ready_max_lag;    /**< /readyz fails beyond this projector lag (default 10000 events) */
    int request_timeout_ms;    /**< per-request I/O timeout (default 10000) */
    unsigned ws_max_clients;   /**< live-stream connections at once (default 256); more get 503 */
    size_t ws_queue;           /**< deltas queued to one client before it is dropped to a resync (default 20000) */
    int ws_ping_ms;            /**< a silent live-stream client is pinged after this (default 30000), dropped after 2 more */
    int ws_coalesce_ms;        /**< a client gets at most one frame per this interval (default 20) */
    unsigned ws_snapshot_max;  /**< items in a snapshot (default 500; count gives the total) */
    const char *stream_listen; /**< HOST:PORT of the libwebsockets live-stream listener (NULL: none; civetweb's /api/v1/stream serves either way) */
    unsigned stream_threads;   /**< its service threads (default 2) */
    unsigned stream_max_clients; /**< its connections at once (default 10000); more get 503 */
    const char *stream_url;    /**< the stream URL the dashboard is told (GET /api/v1/me "stream"), e.g. "/api/v1/stream" behind a proxy */
    const char *tokens_file;   /**< API tokens (see http_tokens_load); NULL: none, loopback only */
    int64_t max_future_skew_ns; /**< ingest refuses an occurredAt further ahead of the clock (0: no check) */
    const char *allowed_hosts; /**< loopback mode: more Host names (comma-separated) a proxy forwards, e.g. "tower.example.com" */
    /** More families appended to /metrics (towerd up: the in-process SLA engine's), or NULL. Called on
     *  request threads, several at once; ctx is borrowed until http_server_stop. */
    void (*metrics_extra)(ct_buf *out, void *ctx);
    void *metrics_ctx;         /**< metrics_extra's argument */
    /** Other publishers of this process that count the duplicates dropped at publish (towerd up: its
     *  simulators and supervisors), for /metrics and GET /api/v1/summary, or NULL: none. Fills up to max
     *  rows and returns how many; called on request threads, several at once; ctx borrowed until stop. */
    size_t (*publish_dups)(void *ctx, server_pub_dups *out, size_t max);
    void *publish_dups_ctx;    /**< publish_dups' argument */
    /** The outbound relay's destinations (docs/outbound.md), shown at /api/v1/integrations, or NULL: none.
     *  Loaded at start: a bad file makes http_server_start fail with CT_USAGE (FILE:LINE logged). */
    const char *relay_file;
    const char *runbooks;      /**< the runbooks directory (docs/runbooks/README.md; default ./docs/runbooks) */
    const char *relay_state;   /**< the relay's state directory (STATE/NAME.status.json, ...; default ./tower-data/relay) */
    /** SSO: addresses (CIDRs, comma-separated) of reverse proxies whose user and groups headers are trusted;
     *  NULL: none (the headers mean nothing). The same headers from any other address are refused (403). */
    const char *trusted_proxies;
    const char *proxy_user_header;   /**< the user's name (default X-Forwarded-User) */
    const char *proxy_groups_header; /**< the user's groups, comma-separated (default X-Forwarded-Groups) */
    const char *proxy_roles;         /**< "GROUP=ROLE,...", "*" for any signed-in user; the highest role wins */
    /** The SLA rules the projector and the SLA engine use (--sla-rules), served at /api/v1/sla/rules so that
     *  the dashboard colours by them; NULL: the contract's defaults. Borrowed. */
    const struct fold_sla_rules *sla_rules;
} server_opts;

/** Roles of API tokens: viewer reads and streams; operator also redrives; ingest only posts events. */
typedef enum http_role { HTTP_ROLE_VIEWER, HTTP_ROLE_OPERATOR, HTTP_ROLE_INGEST } http_role;

/** \brief The role called name ("viewer", "operator", "ingest"). \return 0, or -1 if none is. */
int http_role_parse(const char *name, http_role *out);

/** \brief The SHA-256 of a token as 64 lowercase hex digits and a NUL: what a tokens file keeps. */
void http_token_hash(const char *token, char out[65]);

/**
 * \brief Check a tokens file: one token per line, "NAME ROLE SHA256HEX" ('#' starts a comment).
 * Errors name the file and line (logged). \return CT_OK, CT_IO if unreadable, CT_INVALID if malformed.
 */
ct_status http_tokens_check(const char *path);

/**
 * \brief Check one line of a tokens file: "NAME ROLE SHA256HEX [rate=N/s|N/m|N/h] [burst=N] [systems=a,b]".
 * \return CT_OK, or CT_INVALID with why (whycap bytes) naming the fault.
 */
ct_status http_token_line_check(const char *line, char *why, size_t whycap);

/**
 * \brief Start serving. \return CT_OK; CT_USAGE for a non-loopback address or a bad
 * HOST:PORT; CT_IO if the port cannot be bound (logged).
 */
ct_status http_server_start(http_server **out, const server_opts *o);

/** \brief Stop serving (waits for requests in flight); NULL is a no-op. */
void http_server_stop(http_server *s);

struct mg_context;
/**
 * \brief mg_stop(ctx) without civetweb's wait of up to 2 s for its listening poll: while it stops, the
 * listening port (the first of ctx's; the host of \p listen, "HOST:PORT" as given to civetweb, a wildcard
 * meaning loopback) is connected to every 10 ms so that the poll ends. NULL ctx is a no-op.
 */
void server_civet_stop(struct mg_context *ctx, const char *listen);

#ifdef __cplusplus
}
#endif
#endif
