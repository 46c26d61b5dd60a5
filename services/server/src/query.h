/* Parsing an API request's path and query string (pure: no civetweb, no clock, no store), so that
 * route dispatch and parameter checks can be unit-tested and fuzzed on their own. */
#ifndef SERVER_QUERY_H
#define SERVER_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "evt.h"
#include "fold.h"
#include "server.h"

/* Routes counted in tower_http_requests_total (never an id: bounded cardinality). */
#define SERVER_ROUTE_MAP(X)                                                    \
    X(SUMMARY, "summary") X(VIEWS, "views") X(ORDERS, "orders") X(SHIPMENTS, "shipments") \
    X(SEARCH, "search") X(DEAD_LETTERS, "dead_letters") X(INGEST, "ingest") X(OTHER_API, "other_api")  \
    X(STREAM, "stream") X(TREND, "trend") X(REDRIVE, "redrive") X(HEALTHZ, "healthz") X(READYZ, "readyz") X(METRICS, "metrics") \
    X(EXCEPTIONS, "exceptions") X(ACTIONS, "actions") X(ME, "me") \
    X(VALUES, "values") X(SLA_RULES, "sla_rules") \
    X(INTEGRATIONS, "integrations") X(INTEGRATION_REDRIVE, "integration_redrive") \
    X(PRODUCERS, "producers") X(RUNBOOKS, "runbooks") \
    X(REFERENCE, "reference") \
    X(LEADTIMES, "leadtimes")

typedef enum server_route {
#define SERVER_X(id, name) SERVER_ROUTE_##id,
    SERVER_ROUTE_MAP(SERVER_X)
#undef SERVER_X
    SERVER_ROUTE_COUNT
} server_route;

/** The orders a view page may be sorted in (sort=): age (oldest first, the default), newest, priority,
 *  warehouse, carrier (by id, then oldest first). */
typedef enum server_sort {
    SERVER_SORT_AGE = 0,
    SERVER_SORT_NEWEST,
    SERVER_SORT_PRIORITY,
    SERVER_SORT_WAREHOUSE,
    SERVER_SORT_CARRIER,
    SERVER_SORT_SLACK /* at_risk: promisedBy - predictedBy, the latest against its promise first */
} server_sort;

/** Default and largest `limit` of a view page. */
#define SERVER_QUERY_DEFAULT_LIMIT 100
#define SERVER_QUERY_MAX_LIMIT 1000

/** The longest destination name of a relay file (1-64 of [A-Za-z0-9_-]). */
#define SERVER_DEST_MAX 64

/** A parsed API request. Strings are NUL-terminated copies, decoded from the query string. */
typedef struct server_query {
    server_route route;       /**< SERVER_ROUTE_OTHER_API when no route matches (then 404) */
    const char *method;       /**< the method the route takes: "GET" or "POST" (static storage) */
    http_role need;           /**< the role the route needs */
    const char *id;           /**< orders/shipments: the id; views: the view name (borrowed from uri) */
    uint64_t dl_seq;          /**< redrive: the dead letter's sequence */
    fold_view view;           /**< views and dead letters: the view */
    char warehouse[80];       /**< views: the warehouse filter ("" for none) */
    char carrier[80];         /**< views: the carrier filter ("" for none) */
    char cursor[1100];        /**< views: where the previous page ended ("" for the first page) */
    int64_t limit;            /**< views: items per page, 1..SERVER_QUERY_MAX_LIMIT */
    int has_older_than;       /**< views: olderThan was given (0s included: items older than now) */
    int64_t older_than_ns;    /**< views: only items older than this */
    char q[EVT_MAX_ID + 2];   /**< search: the prefix searched */
    /* Exceptions (docs/exceptions.md) and the lifecycle filters of views: */
    char exid[EVT_MAX_EXID + 1]; /**< exceptions and actions: the exception id in the path ("" for a list or bulk) */
    char action[16];          /**< actions: ack, assign, snooze, note, resolve or reopen ("" for the bulk form) */
    char state[16];           /**< views, exceptions: the state filter ("" for none) */
    char code[32];            /**< dead letters: only this code ("" for none) */
    char assignee[EVT_MAX_ACTOR + 1]; /**< views, exceptions: the assignee filter (meaningful when has_assignee) */
    int has_assignee;         /**< assignee was given ("none" is stored as "") */
    int assignee_me;          /**< assignee=me: the caller's name (the handler knows it) */
    int sort_priority;        /**< views: sort=priority */
    server_sort sort;         /**< views: the sort= key (SERVER_SORT_AGE when absent) */
    char customer[EVT_MAX_ID + 2]; /**< views: the customer filter ("" for none) */
    char channel[16];         /**< views: the channel filter, upper case: ECOMMERCE, EDI, SERVICE ("" for none) */
    char reason[EVT_MAX_TEXT + 1]; /**< views: the reason filter: a reason or lastFailure ("" for none) */
    int sla;                  /**< views: the sla= filter, a store_sla_state (0: none) */
    int closed;               /**< exceptions: closed=1, the closed list */
    int has_view;             /**< exceptions: view=V was given (then view is set) */
    int64_t since_ns;         /**< exceptions?closed=1: since (0 for none) */
    /* The relay's destinations (docs/outbound.md): */
    char dest[SERVER_DEST_MAX + 1]; /**< integrations: the destination's name ("" for the list) */
    int dest_dead;            /**< integrations: /{name}/dead-letters (then limit is set) */
    char ref_kind;            /**< reference: kind= 'w', 'c' or 'k' (0: every kind); limit: codes per kind */
} server_query;

/** Why a request is refused: the HTTP status and the JSON error's code, field and message. */
typedef struct server_query_err {
    int status;               /**< 404 (no route, unknown view, bad id) or 400 (a parameter) */
    const char *code;         /**< "NOT_FOUND", "UNKNOWN_VIEW", "INVALID_PARAMETER" (static storage) */
    const char *field;        /**< the parameter at fault, or NULL (static storage) */
    char message[320];        /**< a sentence for the client */
} server_query_err;

/**
 * \brief Parse an API request: its route, the method and role the route needs, the id in its path
 * and its query parameters (views and dead letters: warehouse, carrier, cursor, limit, olderThan;
 * search: q). Parameter names match case-insensitively, the first occurrence wins, values are
 * percent-decoded with '+' as a space (as HTML forms and civetweb's mg_get_var do).
 * \param uri the decoded path ("/api/v1/views/blocked"), borrowed: out->id points into it.
 * \param query_string the raw query string without '?', or NULL.
 * \param out filled as far as parsing went: out->route, method and need are set whenever a route
 *        matched, even when a parameter is then refused, so that the caller can answer 405, 401
 *        and 403 first.
 * \return 0; or -1 with *err: 404 NOT_FOUND when no route matches (out->route is OTHER_API), or,
 *         with a route, 404 (unknown view, impossible id) or 400 INVALID_PARAMETER naming the field.
 */
int server_query_parse(const char *uri, const char *query_string, server_query *out, server_query_err *err);

/** \brief 1 if a is one of the six action names of the API (ack, assign, snooze, note, resolve, reopen). */
int server_action_known(const char *a);

/**
 * \brief One query-string parameter, percent-decoded into buf (NUL-terminated).
 * \return 1 found, 0 absent, -1 longer than cap - 1 bytes, -2 holding a NUL byte (%00).
 */
int server_query_var(const char *query_string, const char *name, char *buf, size_t cap);

#endif
