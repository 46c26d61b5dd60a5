/* Prometheus text shared by the services: latency histograms, the process's own figures, the build's identity. */
#ifndef CT_METRICS_H
#define CT_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "ct.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Buckets of every latency histogram: upper bounds 1 ms, 5 ms, 10 ms, 50 ms, 100 ms, 500 ms, 1 s, 5 s. */
#define CT_HIST_BOUNDS 8
/** Slots of a histogram: one per bound, then one for what lies above the largest (+Inf). */
#define CT_HIST_SLOTS (CT_HIST_BOUNDS + 1)

/**
 * A latency histogram that any thread may add to and read at any time without a lock: one atomic
 * counter per slot (not cumulative: the text makes them so). Zero-initialise.
 */
typedef struct ct_hist {
    _Atomic uint64_t n[CT_HIST_SLOTS]; /**< observations per slot */
    _Atomic uint64_t sum_ns;           /**< their sum, in nanoseconds */
} ct_hist;

/** \brief The slot of a duration: the first bound it does not exceed (Prometheus' `le`), else CT_HIST_BOUNDS. */
int ct_hist_slot(int64_t ns);

/** \brief Count one duration (negative counts as 0). Thread-safe, lock-free. */
void ct_hist_observe(ct_hist *h, int64_t ns);

/** \brief Copy the counts and the sum out (each slot read atomically; the copy is what gets written). */
void ct_hist_snapshot(const ct_hist *h, uint64_t n[CT_HIST_SLOTS], uint64_t *sum_ns);

/** \brief Write "# HELP" and "# TYPE" lines of a family. */
void ct_metrics_family(ct_buf *b, const char *name, const char *type, const char *help);

/**
 * \brief Write the samples of one histogram series: cumulative NAME_bucket{LABELS,le} (the +Inf one equals
 * _count), NAME_sum in seconds and NAME_count.
 * \param labels the series' labels without braces (e.g. `route="views"`), or "" for none; borrowed
 * \param n per-slot counts (not cumulative), as ct_hist_snapshot gives them
 */
void ct_metrics_hist(ct_buf *b, const char *name, const char *labels, const uint64_t n[CT_HIST_SLOTS], uint64_t sum_ns);

/** The figures of /proc/self/stat the process metrics use. */
typedef struct ct_proc_stat {
    double cpu_seconds;        /**< user + system time */
    double start_seconds;      /**< start time, in seconds since the Unix epoch */
    uint64_t rss_bytes;        /**< resident memory */
    uint64_t vsize_bytes;      /**< virtual memory */
} ct_proc_stat;

/**
 * \brief Parse the text of /proc/PID/stat (the command name in parentheses may hold spaces and parentheses).
 * \param ticks clock ticks per second (sysconf(_SC_CLK_TCK)); \param page the page size in bytes;
 * \param boot_seconds the boot time (btime of /proc/stat), to make the start time absolute
 * \return 0, or -1 when the text has too few fields (out untouched).
 */
int ct_proc_stat_parse(const char *stat, long ticks, long page, uint64_t boot_seconds, ct_proc_stat *out);

/**
 * \brief Write the process families the Prometheus client libraries export, from /proc/self:
 * process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_start_time_seconds, process_open_fds, process_max_fds. What cannot be read is left out.
 */
void ct_metrics_process(ct_buf *b);

/** \brief Write tower_build_info{version,commit,contract} 1 (ct_version.h). */
void ct_metrics_build_info(ct_buf *b);

#ifdef __cplusplus
}
#endif
#endif
