/* towerd up's route planner simulator: the HTTP end of a kind = route_planner relay destination
 * (docs/outbound.md "Route planner"). It takes the relay's route requests on the destination's loopback URL,
 * fails some (knobs: failure rate, latency, periodic outages that open the relay's breaker), and answers the
 * ones it takes the way a route planner does: on the stream, with routePlanned (or routeFailed) naming the
 * requested shipments a moment later. A request it has already taken (the same webhook-id) is answered 200
 * again without planning twice. */
#ifndef UP_PLANNER_H
#define UP_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "relay.h"

/** The knobs: --planner-sim "fail=0.05,latency=50ms,outage=40s/180s,route_fail=0.05,plan_delay=2s". */
typedef struct up_planner_knobs {
    double fail;            /**< fail = share of requests answered 500 (0..1, default 0.05) */
    int64_t latency_ns;     /**< latency = time taken to answer (default 50ms, at most 10s) */
    int64_t outage_for_ns;  /**< outage = FOR/EVERY: unavailable (503, Retry-After) FOR out of every EVERY */
    int64_t outage_every_ns;/**<   (default 40s/180s; 0/0: never) */
    double route_fail;      /**< route_fail = share of taken requests answered with routeFailed (default 0.05) */
    int64_t plan_delay_ns;  /**< plan_delay = time from taking a request to its routePlanned (default 2s) */
} up_planner_knobs;

/** \brief Parse the knobs (NULL or "": the defaults). \return 0, or -1 with err naming the knob. */
int up_planner_parse(const char *spec, up_planner_knobs *out, char *err, size_t errcap);

typedef struct up_planner up_planner;

/**
 * \brief Start one simulator per kind = route_planner destination of conf whose URL is http://127.0.0.1:PORT
 * or http://localhost:PORT, each publishing on its own connection made with bo. \return CT_OK (*out NULL
 * when there is none); CT_IO if a port cannot be listened on.
 */
ct_status up_planner_start(up_planner **out, const relay_conf *conf, const bus_opts *bo, const up_planner_knobs *k);
/** \brief Stop and free; NULL is a no-op. */
void up_planner_stop(up_planner *p);

#endif
