/* The projector: folds the events stream into the store, batch by batch, with exactly-once effect. */
#ifndef PROJECTOR_H
#define PROJECTOR_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Exit codes of projector_run (also towerd's). */
enum {
    PROJECTOR_OK = 0,          /**< stopped on request, or reached stop_at_seq */
    PROJECTOR_FAIL = 1,        /**< store or bus failure */
    PROJECTOR_NEED_REBUILD = 4 /**< the store cannot follow this stream: run towerd rebuild */
};

/** The largest batch and batch_behind that towerd accepts (events per commit). */
#define PROJECTOR_BATCH_MAX 1000000

/* The meta keys the projector keeps in the store (PROJECTOR_META_*) are named in store.h. */

typedef struct projector_opts {
    const char *data_dir;     /**< the store directory */
    int flat;                 /**< data_dir is one environment (a rebuild's new generation) */
    const char *consumer;     /**< durable consumer name (default "tower-projector") */
    size_t batch;             /**< events per commit at most while caught up (default 1000) */
    size_t batch_behind;      /**< events per commit at most while the stream holds more than was fetched (a
                                   projector behind, a rebuild): fewer, larger commits, each committed on a
                                   second thread while the next is fetched and decoded (default 10 x batch;
                                   50 x batch for a rebuild: flat with stop_at_seq) */
    int64_t quiet_ms;         /**< commit what arrived after this long without more (default 5) */
    int notify;               /**< publish change notices on BUS_CHANGES_SUBJECT (tower.changes) after each
                                   commit: one subject for every view, the view named in each change */
    int dead_letter_stream;   /**< publish dead letters to TOWER_DLQ */
    uint64_t stop_at_seq;     /**< stop once this sequence is applied (0: run until stopped) */
    int progress;             /**< a progress bar with ETA on stderr (rebuild) */
    const fold_sla_rules *sla_rules; /**< the SLA rules the fold computes dues with (borrowed; NULL: defaults) */
    int64_t trend_drop_before_ns; /**< a rebuild's trend hint, passed to the store (store_opts.trend_drop_before_ns;
                                       0: none): projector_trend_guess, checked with projector_trend_guess_held */
} projector_opts;

/**
 * Figures of the running projector, updated after every commit. projector_run's thread is the only
 * writer; any other thread may read a field at any time with atomic_load (relaxed is enough). Each
 * field is atomic on its own: two fields read one after the other may come from different commits.
 */
typedef struct projector_figures {
    _Atomic uint64_t applied_seq;     /**< last applied stream sequence */
    _Atomic uint64_t stream_last_seq; /**< the stream's last sequence as last seen */
    _Atomic uint64_t events;          /**< distinct events applied */
    _Atomic uint64_t duplicates;      /**< duplicates ignored */
    _Atomic uint64_t dead_letters;    /**< dead letters recorded */
    _Atomic int64_t last_commit_ns;   /**< wall-clock time of the last commit */
    _Atomic double rate;              /**< events per second over the last seconds */
    atomic_int connected;             /**< NATS connected */
} projector_figures;

/**
 * \brief Run the projector until *stop becomes non-zero (or stop_at_seq is reached).
 * Reconnects on its own: while not connected (also before the first connection, with a bus of
 * bus_opts.connect_async) it waits, logging every 30 s, and looks at *stop at least every 250 ms.
 * Refuses to continue (PROJECTOR_NEED_REBUILD) when the
 * store's checkpoint is beyond the stream, when events it has not applied were
 * removed from the stream, or when the stream was recreated.
 * \param figures when not NULL, updated after each commit (start it zeroed: the counters add to it); any
 *        thread may read it meanwhile, under no lock (see projector_figures).
 */
int projector_run(bus *b, const projector_opts *o, volatile sig_atomic_t *stop, projector_figures *figures);

/**
 * \brief A rebuild's guess of store_opts.trend_drop_before_ns: store_trend_guess() of the occurredAt of the
 * valid events among the stream's last 32 messages (the earliest of them, an hour earlier). The trend clock a
 * replay ends with is not simply the last event's time (it moves an hour at most per event, never back, and only
 * with the events applied), so the guess is checked after the replay (projector_trend_guess_held); it is usually
 * right, and when it is not the replay is done again without it. One JetStream request per message looked at.
 * \return the guess, or 0 (no hint) when no message decodes or NATS does not answer.
 */
int64_t projector_trend_guess(bus *b, const bus_stream_state *st);

/**
 * \brief After a replay into the flat generation gen with the hint hint_ns: store_trend_hint_held() of the
 * trend clock it ended with (logged). \return 1: its rows are exactly those of a replay without the hint;
 * 0: they are not, replay again without it (logged as a warning); -1: gen cannot be read.
 */
int projector_trend_guess_held(const char *gen, int64_t hint_ns);

/**
 * \brief Format one line of a rebuild's progress: bar, percentage, done/total, rate and ETA
 * ("rebuild [###...] 42.0%  420/1000  84 events/s  ETA 7s"), without "\r" or newline.
 * The total shown is never below applied (the stream may have grown past target meanwhile), so the
 * line never says more done than the total, and the ETA is 0 once applied reaches it.
 * \param buf receives the line, truncated to cap bytes with its NUL.
 * \param applied the last sequence applied; \p first the one applied when the run began;
 *        \p target the sequence to reach; \p secs the seconds since the run began.
 */
void projector_progress_format(char *buf, size_t cap, uint64_t applied, uint64_t first, uint64_t target, double secs);

#ifdef __cplusplus
}
#endif
#endif
