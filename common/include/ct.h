/* Common ground of every module: the status enum, the allocator, logging, byte buffers. */
#ifndef CT_H
#define CT_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The one status list of the tower: name and default message.
 * CT_OK is 0; everything else is a failure the caller can act on.
 */
#define CT_STATUS_MAP(X)                                                      \
    X(OK, "ok")                                                               \
    X(INVALID, "invalid input")                                               \
    X(NOT_FOUND, "not found")                                                 \
    X(IO, "input/output error")                                               \
    X(STORE, "store error")                                                   \
    X(STORE_VERSION, "store format version mismatch")                         \
    X(STORE_CORRUPT, "store is corrupt")                                      \
    X(MAP_FULL, "store map is full")                                          \
    X(BUS, "message bus error")                                               \
    X(TIMEOUT, "timed out")                                                   \
    X(CONFLICT, "conflict")                                                   \
    X(TOO_LARGE, "too large")                                                 \
    X(USAGE, "usage error")

/** \brief Status of every fallible call. */
typedef enum ct_status {
#define CT_X(name, msg) CT_##name,
    CT_STATUS_MAP(CT_X)
#undef CT_X
    CT_STATUS_COUNT
} ct_status;

/** \brief How deep any JSON we parse may nest. jansson parses recursively and civetweb's worker
 * threads have small stacks (100 KiB in Debian's build): deeper input is refused before parsing. */
#define CT_JSON_MAX_DEPTH 32

/**
 * \brief Whether JSON text nests deeper than max_depth arrays and objects.
 *
 * A linear scan that needs no valid JSON (strings and escapes are skipped; the parser judges the
 * rest). Thread-safe, no allocation.
 * \return 0 when the text stays within the bound, else the 1-based byte offset of the bracket that
 *         went past it.
 */
size_t ct_json_too_deep(const char *s, size_t n, int max_depth);

/** \brief The default sentence of a status (static storage). */
const char *ct_status_str(ct_status s);

/** \brief malloc that aborts on exhaustion; never returns NULL. */
void *ct_malloc(size_t n);
/** \brief calloc that aborts on exhaustion. */
void *ct_calloc(size_t count, size_t size);
/** \brief realloc that aborts on exhaustion. */
void *ct_realloc(void *p, size_t n);
/** \brief strdup that aborts on exhaustion; ct_strdup(NULL) is NULL. */
char *ct_strdup(const char *s);
/** \brief Copy of n bytes of s plus a terminating NUL. */
char *ct_strndup(const char *s, size_t n);
/** \brief printf into a new string for the caller to free. */
char *ct_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** \brief A growable byte buffer; zero-initialise, free with ct_buf_free. */
typedef struct ct_buf {
    char *data;  /**< owned bytes; always NUL-terminated when len > 0 */
    size_t len;  /**< bytes used */
    size_t cap;  /**< bytes allocated */
} ct_buf;

/** \brief Append n bytes. */
void ct_buf_add(ct_buf *b, const void *p, size_t n);
/** \brief Append a NUL-terminated string. */
void ct_buf_adds(ct_buf *b, const char *s);
/** \brief Append one byte. */
void ct_buf_addc(ct_buf *b, char c);
/** \brief Append formatted text. */
void ct_buf_addf(ct_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** \brief Empty the buffer, keeping its memory. */
void ct_buf_reset(ct_buf *b);
/** \brief Release the memory; the buffer is empty and reusable afterwards. */
void ct_buf_free(ct_buf *b);

/** \brief Log levels, in increasing severity. */
typedef enum ct_log_level { CT_LOG_DEBUG, CT_LOG_INFO, CT_LOG_WARN, CT_LOG_ERROR } ct_log_level;

/** \brief Only messages at or above this level are written (default INFO; env TOWER_LOG=debug|info|warn|error). */
void ct_log_set_level(ct_log_level lvl);
/** \brief Formats of log lines: text (time, level, module: message), or one JSON object per line. */
typedef enum ct_log_format { CT_LOG_TEXT, CT_LOG_JSON } ct_log_format;

/**
 * \brief Set the format of log lines. Default: TOWER_LOG_FORMAT from the environment (`json`, else text).
 * Call it before starting threads.
 */
void ct_log_set_format(ct_log_format f);
/**
 * \brief Write one line to stderr (with a single write): time, level, module, message. In the JSON
 * format the line is {"ts","level","module","msg"}, ts in RFC 3339 UTC with milliseconds; the message
 * is escaped, and bytes that are not UTF-8 become U+FFFD.
 */
void ct_log(ct_log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** \brief 64-bit FNV-1a hash of n bytes. */
uint64_t ct_hash64(const void *p, size_t n);

/**
 * \brief The process's "now": wall-clock time in nanoseconds since the Unix epoch,
 * or a time-warped one after ct_clock_set.
 *
 * Everything that compares event times with "now" (ages, SLA deadlines, dead
 * letters' receivedAt, the simulators' schedule) reads this clock, so that a
 * demo can run business time faster than real time consistently.
 */
int64_t ct_now_ns(void);

/**
 * \brief Warp the process clock: from now on ct_now_ns() returns
 * origin_wall_ns + (real - origin_wall_ns) * factor, where real is the wall clock.
 *
 * factor 1 (the default) is the plain wall clock; factor 60 runs an hour of
 * business time per real minute from origin_wall_ns on (pass the real time of
 * start, or an earlier origin kept across restarts so that "now" never goes
 * back). Call it once, before starting threads: it is not synchronised.
 * \param origin_wall_ns where warped and real time coincide (ns since the epoch)
 * \param factor > 0; anything else (or NaN) restores the plain wall clock
 */
void ct_clock_set(int64_t origin_wall_ns, double factor);

/** \brief The clock's warp factor (1 unless ct_clock_set changed it). */
double ct_clock_factor(void);

/** \brief The real wall-clock time in nanoseconds since the Unix epoch, never warped. */
int64_t ct_wall_ns(void);
/** \brief Monotonic time in nanoseconds. */
int64_t ct_mono_ns(void);

#ifdef __cplusplus
}
#endif
#endif
