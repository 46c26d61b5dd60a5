/* GET /api/v1/leadtimes (leadtimes.c): parameters parsed purely (unit-tested with hostile input), then the
 * store's lead-time windows as JSON. */
#ifndef SERVER_LEADTIMES_H
#define SERVER_LEADTIMES_H

#include <stdint.h>

#include "query.h"
#include "risk.h"

/** The query of GET /api/v1/leadtimes. */
typedef struct leadtimes_params {
    char warehouse[RISK_ID_MAX + 1]; /**< only this warehouse ("" all) */
    char carrier[RISK_ID_MAX + 1];   /**< only this carrier ("" all; the warehouse keys have none) */
    int stage;                       /**< only this risk_stage (-1 all) */
    int percentile;                  /**< percentileSeconds is this percentile (50-99, default 50) */
    int window_days;                 /**< 1..RISK_MAX_WINDOW_DAYS, default 7 */
    int64_t at_s;                    /**< the window ends on this instant's day (0: now) */
} leadtimes_params;

/** \brief Parse warehouse, carrier, stage, percentile, window and at. \return 0, or -1 with err (400 naming the
 *  field). */
int server__leadtimes_params(const char *qs, leadtimes_params *p, server_query_err *err);

struct mg_connection;
struct http_server;
/** \brief Answer GET /api/v1/leadtimes (qs: the raw query string, may be NULL). */
int server__leadtimes(struct mg_connection *c, struct http_server *s, const char *qs);
struct store_reader;
/** \brief Append the rows of tower_orders_at_risk{warehouse} (its family header is metrics.c's)
 *  (the at_risk view's items per warehouse) to a /metrics body. */
void server__risk_metrics(ct_buf *b, struct store_reader *r);

#endif
