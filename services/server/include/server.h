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

/** Options of http_server_start. */
typedef struct server_opts {
    const char *listen;        /**< HOST:PORT (default 127.0.0.1:8080); loopback only for now */
    const char *data_dir;      /**< the store directory (read-only; may not exist yet) */
    const char *web_root;      /**< static files served at / (NULL: none) */
    unsigned threads;          /**< worker threads (default 32) */
    bus *bus;                  /**< NATS, for the stream's last sequence and readiness (NULL: none) */
    uint64_t ready_max_lag;    /**< /readyz fails beyond this projector lag (default 10000 events) */
    int request_timeout_ms;    /**< per-request I/O timeout (default 10000) */
} server_opts;

/**
 * \brief Start serving. \return CT_OK; CT_USAGE for a non-loopback address or a bad
 * HOST:PORT; CT_IO if the port cannot be bound (logged).
 */
ct_status http_server_start(http_server **out, const server_opts *o);

/** \brief Stop serving (waits for requests in flight); NULL is a no-op. */
void http_server_stop(http_server *s);

#ifdef __cplusplus
}
#endif
#endif
