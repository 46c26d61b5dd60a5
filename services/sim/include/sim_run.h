/* The simulators: the trace generator's records published to JetStream, each system by its own publisher. */
#ifndef SIM_RUN_H
#define SIM_RUN_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "bus.h"
#include "ct.h"
#include "sim_trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The longest history_ns (30 days). */
#define SIM_HISTORY_MAX_NS (30LL * 86400 * 1000000000LL)

/** Options of sim_run. Start from sim_run_opts_default. */
typedef struct sim_run_opts {
    sim_trace_opts trace;   /**< seed, orders (0: endless), warehouses and fault rates; sim_run sets
                                 orders_per_minute from rate and warp, and start_ns and run itself */
    double rate;            /**< orders per minute of real (wall) time (default 60) */
    double warp;            /**< trace time runs this many times faster than wall time (default 1); the
                                 process clock (ct_clock_set) must run at the same factor, since records
                                 are published when ct_now_ns() reaches their report time */
    int sla_breaches;       /**< also publish what the generator's tower instance reports (slaBreached), a
                                 stand-in for the SLA engine (default 1) */
    const bus_opts *bus;    /**< how to reach NATS (borrowed for the call); each publisher opens its own
                                 connection, named "tower-sim <instance>" */
    const char *state_path; /**< where the progress is kept so that a restart resumes the same trace
                                 (NULL: none; every run is then a new trace, with ids of its own) */
    FILE *dry_run;          /**< when not NULL: write the records that would be published, as NDJSON in
                                 emission order, at full speed, and touch neither NATS nor the clock */
    int64_t progress_ns;    /**< log a progress line this often (0: never) */
    int64_t history_ns;     /**< a new live trace starts this long (business time) before now, so that the
                                 records it reports in the past (a backlog of history: ages and overdue
                                 milestones that look real) go out at once, at full speed, before the
                                 simulators go live; 0 (default): it starts now. A resumed trace keeps its
                                 start. At most 30 days. */
} sim_run_opts;

/** \brief Fill *o with the defaults (sim_trace_opts_default for the trace, orders 0 = endless). */
void sim_run_opts_default(sim_run_opts *o);

/** What the simulators did, updated while they run by sim_run's thread. Each field is atomic: read it
    with atomic_load from any thread, at any time (the fields are not updated together). */
typedef struct sim_run_figures {
    _Atomic uint64_t records;    /**< generator records handed to the publishers (or written, in a dry run) */
    _Atomic uint64_t stored;     /**< acknowledged as stored by JetStream */
    _Atomic uint64_t duplicates; /**< acknowledged as duplicates (same message id within the window) */
    _Atomic uint64_t retries;    /**< publishes that failed and were sent again */
    _Atomic uint32_t orders;     /**< orders created by the generator so far */
    _Atomic uint32_t run;        /**< the run whose ids the records carry (0 in a dry run) */
    _Atomic int64_t trace_ns;    /**< report time of the last record handed over (trace time) */
    atomic_int resumed;          /**< this run continues a trace from the state file */
    atomic_int done;             /**< the trace is over and every record is acknowledged */
    atomic_int live;             /**< every record reported before the start of this run (the history, or what
                                      a resumed trace owed) is handed over: the simulators play live */
    _Atomic uint64_t history;    /**< records handed over before going live (the history) */
    _Atomic int64_t history_real_ns; /**< real (monotonic) time from the start of the run to going live */
} sim_run_figures;

/**
 * \brief Run the simulators until *stop becomes non-zero or the trace is over.
 *
 * One generator (sim_trace, in this thread) produces the records in emission order and hands each to
 * the publisher of the system instance that reports it: the ERP, one WMS per warehouse, the route
 * planner, each carrier, finance (and the tower's SLA stand-in). Each publisher is a thread with its own
 * NATS connection; it converts valid records to protobuf and publishes them with their message ids
 * (bus_publish_event), publishes bad records raw (bus_publish_raw, subject tower.evt.SYSTEM.invalid) so
 * that the projector dead-letters them, waits for the acks, and publishes again what failed.
 *
 * A record is handed over when ct_now_ns() reaches its report time; the trace starts at ct_now_ns() - history_ns
 * (rounded down to a minute: the same story as a dry run, shifted in time) and its order rate is rate / warp per minute of trace time. With a state file, a run continues
 * the trace it describes when the trace options are the same (publishing again, from the earliest record
 * not yet acknowledged, what may not have been stored: message ids make that harmless), and otherwise starts
 * a new run whose ids cannot collide with the earlier ones'. A resumed trace that fell behind (the
 * simulators were stopped) is shifted so that it goes on from now rather than in a burst.
 *
 * \param figures when not NULL, updated as the simulators run
 * \return CT_OK when stopped or done; CT_INVALID for options out of range (logged); CT_BUS when the streams
 *         cannot be made; CT_IO when the state file or the dry-run output cannot be written.
 */
ct_status sim_run(const sim_run_opts *o, volatile sig_atomic_t *stop, sim_run_figures *figures);

#ifdef __cplusplus
}
#endif
#endif
