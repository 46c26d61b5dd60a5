/* Internals of the HTTP server shared by its files. */
#ifndef SERVER_INT_H
#define SERVER_INT_H

#include <civetweb.h>
#include <jansson.h>
#include <pthread.h>

#include "server.h"
#include "store.h"

/* Routes counted in tower_http_requests_total (never an id: bounded cardinality). */
#define SERVER_ROUTE_MAP(X)                                                    \
    X(SUMMARY, "summary") X(VIEWS, "views") X(ORDERS, "orders") X(SHIPMENTS, "shipments") \
    X(SEARCH, "search") X(DEAD_LETTERS, "dead_letters") X(INGEST, "ingest") X(OTHER_API, "other_api")  \
    X(HEALTHZ, "healthz") X(READYZ, "readyz") X(METRICS, "metrics")

typedef enum server_route {
#define SERVER_X(id, name) SERVER_ROUTE_##id,
    SERVER_ROUTE_MAP(SERVER_X)
#undef SERVER_X
    SERVER_ROUTE_COUNT
} server_route;

/* Status codes counted per route. */
#define SERVER_N_CODES 8
extern const int server__codes[SERVER_N_CODES];

struct http_server {
    struct mg_context *ctx;
    server_opts o;
    char *data_dir;
    pthread_rwlock_t lock;   /* guards st: readers use it, a reopen replaces it */
    store *st;
    uint64_t requests[SERVER_ROUTE_COUNT][SERVER_N_CODES];
    int streams_ok;          /* the events streams were ensured (ingest) */
};

/* A read transaction on the current store generation (opened or reopened as needed). */
ct_status server__begin(http_server *s, store_reader **out);
void server__end(http_server *s, store_reader *r);

/* Send a JSON body with a status; the reference is taken. */
int server__json(struct mg_connection *c, http_server *s, server_route route, int status, json_t *body);
/* Send {"error":{code,message,field}}. */
int server__error(struct mg_connection *c, http_server *s, server_route route, int status, const char *code,
                  const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void server__count(http_server *s, server_route route, int status);

int server__api(struct mg_connection *c, void *cbdata);
int server__ingest(struct mg_connection *c, http_server *s);
int server__metrics(struct mg_connection *c, void *cbdata);
int server__healthz(struct mg_connection *c, void *cbdata);
int server__readyz(struct mg_connection *c, void *cbdata);
const char *server__route_name(server_route r);

#endif
