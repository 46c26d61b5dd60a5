/*
 * Legacy batch files into contract events (towerd import): a reader of CSV (RFC 4180) and fixed-width
 * records, the mapping file (INI) and the mapping of one row into the contract's JSON event, validated
 * by the event codec. Pure: no I/O beyond the buffers given; single-threaded per object.
 */
#ifndef BATCH_H
#define BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ct.h"
#include "evt.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest record (a CSV record may span lines): TOO_LARGE beyond it. */
#define BATCH_MAX_RECORD (256 * 1024)
/** Most columns in one record: TOO_LARGE beyond it. */
#define BATCH_MAX_COLS 1024

/* ---- the reader ----------------------------------------------------------------------------- */

/** One column of a fixed-width file: its first byte (0-based) and its width in bytes. */
typedef struct batch_fixed_col {
    size_t start;
    size_t width;
} batch_fixed_col;

/** How the records of a file are laid out. */
typedef struct batch_format {
    int fixed;                   /**< 0 CSV, 1 fixed-width (one record per line) */
    char delim;                  /**< CSV: the delimiter (',' ';' '\t' '|' ...) */
    const batch_fixed_col *cols; /**< fixed: the columns (borrowed until the reader is freed) */
    size_t ncols;                /**< fixed: their number */
    size_t max_record;           /**< 0: BATCH_MAX_RECORD */
    size_t max_cols;             /**< 0: BATCH_MAX_COLS */
} batch_format;

/** One record. */
typedef struct batch_row {
    size_t line;        /**< 1-based line of the record's first byte */
    size_t ncols;       /**< cells */
    char **cols;        /**< the cells, unquoted and NUL-terminated (borrowed until the next call) */
    size_t *lens;       /**< their lengths */
    const char *raw;    /**< the record's bytes in the buffer, without its line ending (borrowed) */
    size_t raw_len;     /**< their length */
    evt_code code;      /**< EVT_OK, or why the record could not be split (MALFORMED, TOO_LARGE); then ncols is 0 */
    char message[256];  /**< the reason, naming the column ("column 3: text after the closing quote") */
} batch_row;

typedef struct batch_reader batch_reader;

/**
 * \brief A reader over data[0..len) (borrowed until batch_reader_free). Blank lines are skipped; a record
 * that cannot be split is returned with its code and the reader goes on with the next line (after the
 * first line of a quoted field left open).
 */
batch_reader *batch_reader_new(const char *data, size_t len, const batch_format *f);
/** \brief The next record: 1 with *row filled (perhaps with a code), 0 at the end. */
int batch_reader_next(batch_reader *r, batch_row *row);
/** \brief Free the reader; NULL is a no-op. */
void batch_reader_free(batch_reader *r);

/* ---- the mapping ------------------------------------------------------------------------------ */

typedef struct batch_mapping batch_mapping;

/**
 * \brief Parse a mapping file's text (see docs/import.md); every event path is checked against the
 * contract's schema. \param name the file name for messages.
 * \return CT_OK with *out (free with batch_mapping_free); CT_INVALID with *err "NAME:LINE: problem"
 * (for the caller to free).
 */
ct_status batch_mapping_parse(batch_mapping **out, const char *text, size_t len, const char *name, char **err);
/** \brief Free a mapping; NULL is a no-op. */
void batch_mapping_free(batch_mapping *m);
/** \brief The layout of its files (borrowed from m). */
const batch_format *batch_mapping_format(const batch_mapping *m);
/** \brief 1 if the first record of a file is a header row. */
int batch_mapping_has_header(const batch_mapping *m);
/** \brief The mapping's name ([import] name) and source system (borrowed). */
const char *batch_mapping_name(const batch_mapping *m);
const char *batch_mapping_system(const batch_mapping *m);

/**
 * \brief Resolve the mapping's column names for one file: against its header row (NULL when the mapping
 * has none). \return 0; -1 with *err "MAPPING:LINE: column \"x\" is not in the header of FILE (...)".
 */
int batch_mapping_bind(batch_mapping *m, const batch_row *header, const char *file, char **err);

/** What became of one row. */
typedef enum batch_outcome {
    BATCH_EVENT,    /**< a valid event: event and json are set */
    BATCH_REJECTED, /**< rejected: json is the dead-letter record, code and message say why */
    BATCH_SKIPPED   /**< its kind is listed in [import] skip */
} batch_outcome;

typedef struct batch_result {
    batch_outcome outcome;
    evt_event *event;   /**< BATCH_EVENT: the decoded event (owned: evt_free) */
    json_t *json;       /**< the event's JSON, or the dead-letter record: the row's JSON with an "importRejected" object
                             holding the mapping, kind, file, line, code, message and the row (owned: json_decref) */
    evt_code code;      /**< BATCH_REJECTED: the codec's code (or the reader's / the mapping's) */
    char message[768];  /**< BATCH_REJECTED: the reason, naming the field and its column */
    char kind[64];      /**< the row's kind ("" when none was selected) */
} batch_result;

/**
 * \brief Map one row (after batch_mapping_bind) into an event and validate it with the codec
 * (evt_from_json). \param file the file's name recorded in a dead-letter record (no part of the event id).
 */
void batch_map_row(const batch_mapping *m, const batch_row *row, const char *file, batch_result *out);
/** \brief Release what a result holds and zero it. */
void batch_result_clear(batch_result *r);

/**
 * \brief Parse a time with a strptime format (glibc's; %z reads an offset) and a UTC offset in seconds
 * applied when the format has no %z. Out-of-range fields (Feb 30, 25:00) and trailing text are errors.
 * \return 0 with *sec (UTC seconds); -1.
 */
int batch_parse_time(const char *s, const char *format, int zone_s, int64_t *sec);

/** \brief Parse a UTC offset: "Z", "UTC", "+01:00", "-0530", "+01". \return 0 with *sec; -1. */
int batch_parse_zone(const char *s, int *sec);

#ifdef __cplusplus
}
#endif
#endif
