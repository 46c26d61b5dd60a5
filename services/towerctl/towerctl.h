/* towerctl's internal interface: the shared context, the HTTP client, output helpers and the commands. */
#ifndef TOWERCTL_H
#define TOWERCTL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ct.h"
#include "ct_config.h"

/** Exit codes of every towerctl command (documented in --help). */
enum {
    CTL_EXIT_OK = 0,        /**< done */
    CTL_EXIT_FAIL = 1,      /**< server unreachable, 5xx, or a local failure (I/O) */
    CTL_EXIT_USAGE = 2,     /**< bad flags or arguments */
    CTL_EXIT_REJECTED = 3,  /**< input rejected: 400 (and 413), or publish with rejected events */
    CTL_EXIT_NOT_FOUND = 4, /**< 404: no such order, shipment, view, dead letter or route */
    CTL_EXIT_DENIED = 5,    /**< 401 or 403: token missing, wrong, or without the role */
    CTL_EXIT_PARTIAL = 6    /**< an action on several exceptions: some of them failed (the others were done) */
};

/** Returned by ctl_start when the command should go on (any other value is the exit code). */
#define CTL_CONTINUE (-1)

/** The exit-code paragraph every --help ends with. */
#define CTL_EXIT_HELP                                                                                        \
    "Exit codes: 0 ok; 1 server unreachable or 5xx; 2 usage; 3 input rejected (400, or publish with\n"       \
    "rejected events; 409, an action that does not apply); 4 not found (404); 5 unauthorized or forbidden\n" \
    "(401/403); 6 an action on several ids where some failed (the others were done)."

/* ---- HTTP (http.c): libcurl behind a narrow seam ------------------------------------------------ */

/** \brief One HTTP connection to the server (keep-alive across requests); opaque. */
typedef struct ctl_http ctl_http;

/** \brief An answer: status and body, and the body parsed when it is JSON. */
typedef struct ctl_resp {
    long status;   /**< HTTP status; 0 when no answer arrived (then err says why) */
    ct_buf body;   /**< the body bytes, owned */
    json_t *json;  /**< the body parsed (owned reference), or NULL if it is not JSON */
    char err[256]; /**< why there is no answer (transport error), "" otherwise */
} ctl_resp;

/**
 * \brief Prepare a client for the API at \p base_url.
 * \param out      receives the client (destroy with ctl_http_destroy); untouched on failure
 * \param base_url "http://127.0.0.1:8080" (a trailing '/' is ignored); copied
 * \param token    bearer token or NULL; copied, sent as "Authorization: Bearer ..." and never printed
 * \return CT_OK; CT_USAGE if the URL is not http:// or https://; CT_IO if libcurl cannot start
 */
ct_status ctl_http_open(ctl_http **out, const char *base_url, const char *token);

/** \brief Free the client; NULL is a no-op. */
void ctl_http_destroy(ctl_http *h);

/**
 * \brief One request. \p path starts with '/' and is appended to the base URL; \p body (borrowed for the
 * call) is sent with \p ctype when \p method is POST (len 0 sends an empty body).
 * \return 0 when an answer arrived (any status), -1 when none did (r->err says why). Free r with
 *         ctl_resp_free in both cases.
 */
int ctl_http_request(ctl_http *h, const char *method, const char *path, const char *body, size_t len,
                     const char *ctype, ctl_resp *r);

/** \brief Release what a ctl_resp holds; it is zeroed and reusable. */
void ctl_resp_free(ctl_resp *r);

/** \brief Percent-encode a path segment or query value (RFC 3986 unreserved kept); caller frees. */
char *ctl_http_escape(const char *s);

/** \brief The base URL without credentials, for messages (borrowed until ctl_http_destroy). */
const char *ctl_http_base(const ctl_http *h);

/* ---- the shared context (main.c) ----------------------------------------------------------------- */

/** \brief What every command has: its name, its options, and the HTTP client. */
typedef struct ctl_ctx {
    const char *cmd;  /**< "towerctl stuck", for messages */
    ct_config *cfg;   /**< the parsed options (owned) */
    ct_opt_def *defs; /**< the option table cfg borrows (owned) */
    ctl_http *http;   /**< the client (owned) */
    char **args;      /**< positional arguments (borrowed from argv) */
    int nargs;        /**< their number */
    int json;         /**< --json */
} ctl_ctx;

/** \brief A command's description for ctl_start. */
typedef struct ctl_spec {
    const char *cmd;         /**< "towerctl stuck" */
    const char *usage;       /**< the head of --help (CTL_EXIT_HELP is appended) */
    const ct_opt_def *defs;  /**< the command's own options (the global ones are added) */
    size_t ndefs;            /**< their number */
    int min_args, max_args;  /**< positional arguments accepted */
} ctl_spec;

/**
 * \brief Parse the command line (global and own options), handle --help, check the positional arguments
 * and open the HTTP client.
 * \return CTL_CONTINUE with \p c ready; otherwise the exit code to return (0 after --help, 2 on a usage
 * error), with \p c already released.
 */
int ctl_start(ctl_ctx *c, const ctl_spec *spec, int argc, char **argv);

/** \brief Release the context; safe on a zeroed one. */
void ctl_end(ctl_ctx *c);

/** \brief The exit code for an HTTP status (2xx 0, 400/413 3, 404 4, 401/403 5, other 4xx 3, else 1). */
int ctl_exit_for_status(long status);

/**
 * \brief Report a failed exchange on stderr ("towerctl: CODE: message (field F)", or what went wrong with
 * the transport) and return its exit code. Returns 0 without printing for a 2xx answer.
 */
int ctl_report(const ctl_ctx *c, const ctl_resp *r);

/**
 * \brief GET \p path and require a 2xx JSON answer.
 * \return 0 with r->json set; else the exit code, the problem already reported (free r in both cases).
 */
int ctl_get_json(ctl_ctx *c, const char *path, ctl_resp *r);

/* ---- errors and notes on stderr (main.c; docs/towerctl.md "Errors") --------------------------------- */

/** \brief 1 when --json is on the command line: then everything towerctl writes to stderr is JSON, one object
 *  a line: errors {"error":{"code","message",...}}, notes {"note":"..."}. Set by main before the command. */
extern int ctl_json_errors;

/**
 * \brief With --json, write {"error":{"code":code,"message":msg[,"field":field]} + extra's keys} as one line on
 * stderr and return 1; without, return 0 (the caller prints its text). \p extra (may be NULL) is stolen.
 */
int ctl_error_json(const char *code, const char *msg, const char *field, json_t *extra);

/** \brief A note (not an error) on stderr: "CMD: text", or {"note":"text"} with --json. */
void ctl_note(const ctl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** \brief Print the answer's body as the server sent it (one line of compact JSON), newline-terminated. */
void ctl_print_body(const ctl_resp *r);

/** \brief Print a JSON value on one line to stdout (key order kept). */
void ctl_print_json(const json_t *j);

/* ---- output helpers (out.c) ---------------------------------------------------------------------- */

/** \brief A text table: rows of cells, printed with aligned columns (the last column unpadded). */
typedef struct ctl_table {
    size_t ncols;   /**< columns */
    char **cells;   /**< rows * ncols owned strings, row-major; the first row is the header */
    size_t nrows;   /**< rows including the header */
    size_t cap;     /**< rows allocated */
} ctl_table;

/** \brief Start a table with a header of \p ncols names (copied). */
void ctl_table_init(ctl_table *t, size_t ncols, const char *const *header);
/** \brief Append a row of ncols cells (copied; NULL prints as "-"). */
void ctl_table_row(ctl_table *t, const char *const *cells);
/** \brief Print with two spaces between columns, to \p f. */
void ctl_table_print(const ctl_table *t, FILE *f);
/** \brief Free the cells. */
void ctl_table_free(ctl_table *t);

/** \brief A compact age: "45s", "12m05s", "3h07m", "2d04h"; negative counts as 0. */
void ctl_fmt_age(int64_t seconds, char *buf, size_t cap);

/** \brief A JSON value as a cell: strings as they are (but a time in one fixed precision, ctl_fmt_time), numbers
 *  as digits, null/absent as NULL; caller frees. */
char *ctl_cell(const json_t *v);
/** \brief The same without touching times (CSV export keeps the server's precision); caller frees. */
char *ctl_cell_raw(const json_t *v);

/** \brief A canonical UTC time ("2026-11-02T06:00:11Z", a fraction of 1-9 digits allowed) in the one precision
 *  towerctl prints: milliseconds, truncated ("2026-11-02T06:00:11.000Z"); \p cap >= 25. 0 (buf untouched)
 *  when \p s is not such a time. */
int ctl_fmt_time(const char *s, char *buf, size_t cap);

/** \brief A JSON string of \p s (NULL: ""), bytes that are not UTF-8 replaced by '?'; a new reference. */
json_t *ctl_json_text(const char *s);

/** \brief \p one when n is 1, else \p many (static strings, borrowed). */
const char *ctl_plural(size_t n, const char *one, const char *many);

/** \brief Write text from the server to a terminal: control characters become '?'. */
void ctl_put_clean(FILE *f, const char *s);

/** \brief Write one CSV field (RFC 4180: quoted when it holds , " CR or LF; quotes doubled). */
void ctl_csv_field(FILE *f, const char *s);

/** \brief The columns of a view's items (docs/contract.md, "Item shape"), then the exception's lifecycle fields
 *  (docs/exceptions.md: exceptionId, state, assignee, ...), NULL-terminated; static. */
const char *const *ctl_view_columns(const char *view);

/* ---- commands ------------------------------------------------------------------------------------- */

int ctl_cmd_summary(int argc, char **argv);
int ctl_cmd_stuck(int argc, char **argv);
int ctl_cmd_export(int argc, char **argv);
int ctl_cmd_order(int argc, char **argv);
int ctl_cmd_shipment(int argc, char **argv);
int ctl_cmd_search(int argc, char **argv);
int ctl_cmd_publish(int argc, char **argv);
int ctl_cmd_dlq_list(int argc, char **argv);
int ctl_cmd_dlq_redrive(int argc, char **argv);
int ctl_cmd_watch(int argc, char **argv);
int ctl_cmd_ack(int argc, char **argv);
int ctl_cmd_assign(int argc, char **argv);
int ctl_cmd_snooze(int argc, char **argv);
int ctl_cmd_note(int argc, char **argv);
int ctl_cmd_resolve(int argc, char **argv);
int ctl_cmd_reopen(int argc, char **argv);
int ctl_cmd_exception(int argc, char **argv);
int ctl_cmd_mine(int argc, char **argv);
int ctl_cmd_relay_list(int argc, char **argv);
/* towerctl reference (cmd_reference.c): GET /api/v1/reference. */
int ctl_cmd_reference(int argc, char **argv);
int ctl_cmd_relay_dead(int argc, char **argv);
int ctl_cmd_relay_redrive(int argc, char **argv);

/** \brief The values --state takes (open, acknowledged, snoozed, attention, all), NULL-terminated. */
extern const char *const ctl_states[];
/** \brief The values --sort takes, NULL-terminated: the server's sort= orders (age, newest, priority, warehouse,
 * carrier, slack). */
extern const char *const ctl_sorts[];

/**
 * \brief Check the lifecycle filters a command was given: --state (one of ctl_states), and with
 * \p view_filters (stuck, export, which define them) --sort (one of ctl_sorts) and --assignee (not
 * empty). \return 0, or 2 after saying which option is wrong and what it takes.
 */
int ctl_check_choices(const ctl_ctx *c, int view_filters);

#endif
