/* towerd up's simulated supervisors: a thread that works the open exceptions as people would (ack, assign,
   snooze, note, resolve, reopen), each action an event on the stream (docs/simulators.md, docs/exceptions.md). */
#ifndef UP_SUPERVISOR_H
#define UP_SUPERVISOR_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bus.h"
#include "ct.h"
#include "up_supervisor_decide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the thread (up_supervisor.c) ---------------------------------------------------------------- */

/** Options of up_supervisor_run. */
typedef struct up_supervisor_opts {
    const char *store_dir;              /**< the store, opened read-only (it may not exist yet) */
    const fold_sla_rules *sla_rules;    /**< the rules the store is opened with (NULL: defaults) */
    bus *bus;                           /**< publishes the actions (borrowed; the caller closes it) */
    double rate;                        /**< actions per minute of real time (> 0) */
    uint64_t seed;                      /**< seeds the decisions */
    int64_t progress_ns;                /**< log a summary line this often (0: never) */
} up_supervisor_opts;

/** What the supervisors did; atomic, readable from any thread while they run. */
typedef struct up_supervisor_figures {
    _Atomic uint64_t stored[SUP_NACTIONS]; /**< actions stored by JetStream, per action */
    _Atomic uint64_t duplicates;           /**< of the stored, those JetStream had already (ack duplicate) */
    _Atomic uint64_t failed;               /**< actions not stored (or not built) */
    _Atomic uint64_t idle;                 /**< turns with nothing to act on */
} up_supervisor_figures;

/**
 * \brief Act on open exceptions at o->rate until *stop: each turn takes one short read snapshot of the
 * store (a sample of every view's open items), ends it, then decides (sup_decide) and publishes the actions
 * with o->bus, waiting for their acknowledgements. \return CT_OK when stopped; CT_INVALID for a bad rate.
 */
ct_status up_supervisor_run(const up_supervisor_opts *o, volatile sig_atomic_t *stop, up_supervisor_figures *fig);

#ifdef __cplusplus
}
#endif
#endif
