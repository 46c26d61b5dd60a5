/* Command configuration: each option from a flag, the environment, an INI file or its default, plus --help. */
#ifndef CT_CONFIG_H
#define CT_CONFIG_H

#include "ct.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** \brief The type of an option's value; values are checked against it when they are read. */
typedef enum ct_opt_type {
    CT_OPT_STRING,   /**< any text */
    CT_OPT_INT,      /**< a decimal integer >= 0 */
    CT_OPT_BOOL,     /**< true/false, yes/no, on/off, 1/0 (any case); a bare flag means true */
    CT_OPT_DURATION, /**< see ct_parse_duration_ns */
    CT_OPT_SIZE      /**< see ct_parse_size */
} ct_opt_type;

/**
 * \brief One option of a command; a command describes its options with a static array of these.
 *
 * The strings are borrowed: they must outlive every ct_config parsed from the table (string literals do).
 */
typedef struct ct_opt_def {
    const char *flag;    /**< long flag without dashes, also the name for the getters: "nats" -> --nats VALUE
                              or --nats=VALUE (a bool takes no value: --flag, or --flag=false) */
    char short_flag;     /**< single-letter flag, 0 if none; 'h' is taken by --help */
    const char *env;     /**< environment variable, e.g. "TOWER_NATS_URL", or NULL; an empty variable counts
                              as unset */
    const char *key;     /**< config-file key "section.name", e.g. "nats.url", or NULL */
    ct_opt_type type;    /**< what the value must parse as */
    const char *def;     /**< default as text (parsed like any other value), or NULL = unset */
    const char *metavar; /**< "URL" in the help, or NULL for one derived from the type */
    const char *help;    /**< one line for --help */
    int secret;          /**< never printed: ct_config_describe shows "(set)", errors leave the value out */
    int repeat;          /**< may be given several times as a flag, and in every source as a comma-separated
                              list; see ct_config_list */
} ct_opt_def;

/** \brief The resolved options of one command; opaque, free with ct_config_destroy. */
typedef struct ct_config ct_config;

/**
 * \brief Resolve every option of a command from its flags, the environment, a config file and the defaults.
 *
 * Precedence, highest first: flag, environment, config file, default. Every value found is checked against
 * its option's type, even one a higher source overrides, so a mistake is reported with the source it came
 * from. Besides \p defs every command accepts --config FILE (environment TOWER_CONFIG), the INI file to read,
 * and -h/--help.
 *
 * Command line: --flag VALUE, --flag=VALUE, -f VALUE, -fVALUE, bundled bool short flags (-vq), and "--"
 * to end the options. Positional arguments may be mixed with options: \p argv is reordered in place, as GNU
 * getopt does, so that they come last, in their original order. A value that starts with '-' must be given
 * as --flag=VALUE. A flag given twice keeps the last value, unless its option repeats.
 *
 * Config file: INI as read by inih; keys are "section.name" (a key before any [section] is just "name"),
 * matched exactly. ';' and '#' start a comment line, " ;" an inline comment; leading whitespace is ignored
 * and continuation lines are not supported. A key unknown to \p defs is an error (it is most likely a typo),
 * except in the sections listed in \p ignore_sections, where keys meant for other commands are skipped. A
 * key given twice is an error.
 *
 * Errors are printed to stderr as one line "CMD: WHERE: PROBLEM", for instance
 * "towerd projector: --batch: \"abc\" is not an integer",
 * "towerd projector: environment TOWER_BATCH: \"-5\" is not a positive integer",
 * "towerd projector: /etc/tower.conf:12: unknown key \"nats.urll\"",
 * "towerd projector: /etc/tower.conf:3: syntax error",
 * "towerd projector: cannot read config file x.conf: No such file or directory",
 * "towerd projector: unknown option --foo", "towerd projector: --nats needs a value".
 *
 * \param out             receives the configuration for the caller to destroy; untouched on failure, NULL
 *                        when help was shown
 * \param cmd             the command's name for messages, e.g. "towerd projector" (copied)
 * \param usage_head      the first lines of --help, e.g. "Usage: towerd projector [OPTIONS]\n\nFolds ..."
 * \param defs            the options (borrowed until the configuration is destroyed); may be NULL if ndefs is 0
 * \param ndefs           number of entries in \p defs
 * \param ignore_sections NULL-terminated list of config-file sections whose unknown keys are skipped, or NULL
 * \param argc            number of entries in \p argv
 * \param argv            argv[0] is the command name (the sub-command for towerd); reordered in place
 * \param args            receives a pointer into \p argv to the positional arguments; NULL if the command
 *                        takes none, which makes any positional argument an error
 * \param nargs           receives the number of positional arguments; NULL exactly when \p args is
 * \param help_shown      required; set to 1 when --help was given and the usage was printed to stdout
 * \return CT_OK (also after --help); CT_USAGE after printing what is wrong with a flag, environment
 *         variable or config file; CT_INVALID if \p defs itself is wrong (a bug: duplicate or reserved
 *         names, a default that does not parse).
 */
ct_status ct_config_parse(ct_config **out, const char *cmd, const char *usage_head, const ct_opt_def *defs,
                          size_t ndefs, const char *const *ignore_sections, int argc, char **argv, char ***args,
                          int *nargs, int *help_shown);

/*
 * The getters below take an option's long flag name. Asking for a name that is not in the table, or with
 * the getter of another type, is a bug: it prints the mistake and aborts, on the first run. "config" names
 * the built-in --config option (a string).
 */

/** \brief The value as text (for a repeat option, the items joined by commas); NULL if unset. Borrowed
 *  until ct_config_destroy. Works for every type. */
const char *ct_config_str(const ct_config *c, const char *flag);
/** \brief The value of a CT_OPT_INT option (the first item for a repeat option); 0 if unset. */
int64_t ct_config_int(const ct_config *c, const char *flag);
/** \brief The value of a CT_OPT_BOOL option, 1 or 0; 0 if unset. */
int ct_config_bool(const ct_config *c, const char *flag);
/** \brief The value of a CT_OPT_DURATION option in nanoseconds; 0 if unset. */
int64_t ct_config_duration_ns(const ct_config *c, const char *flag);
/** \brief The value of a CT_OPT_SIZE option in bytes; 0 if unset. */
uint64_t ct_config_size(const ct_config *c, const char *flag);
/**
 * \brief The items of an option: for a repeat option those of every occurrence of its flag, or of the
 * comma-separated list of the winning source (items trimmed, empty ones dropped); for any other option its
 * one value.
 * \param items receives the array, borrowed until ct_config_destroy; NULL when there are none
 * \return the number of items, 0 if unset
 */
size_t ct_config_list(const ct_config *c, const char *flag, const char ***items);
/** \brief Where the value came from: "flag", "environment TOWER_X", "file F:12", "default" or "unset".
 *  Borrowed until ct_config_destroy. */
const char *ct_config_source(const ct_config *c, const char *flag);
/** \brief Append one line "name=value (source)" per option for the logs; a set secret shows as "(set)",
 *  an unset option as "name (unset)". */
void ct_config_describe(const ct_config *c, ct_buf *out);
/** \brief Free the configuration; NULL is a no-op. */
void ct_config_destroy(ct_config *c);

/**
 * \brief The state of ct_ini_read_line over one stream. Zero it and set \p f; free \p line after the last read.
 */
typedef struct ct_ini_lines {
    FILE *f;        /**< the stream (borrowed) */
    char *line;     /**< getline's buffer, owned: free() it when done */
    size_t cap;     /**< its size */
    int lineno;     /**< lines read so far; inih counts the same, one per call of its reader */
    int read_errno; /**< errno of a failed read (ferror), 0 if none */
} ct_ini_lines;

/**
 * \brief The body of an inih reader (ini_parse_stream's ini_reader): read one whole line of \p l->f into
 * \p str, so that inih's line numbers are the file's.
 *
 * The line ending ("\n", "\r\n": any '\n' and '\r' at the end) and the leading blanks (spaces, tabs) are
 * dropped; the latter keeps inih from taking an indented line as the continuation of the previous value. \p str gets the rest
 * followed by "\n". A line holding a NUL byte, or too long for \p str (longer than \p num - 2 once
 * trimmed; inih would split it), is handed over as an empty line and described in \p *problem.
 *
 * \param l       the reader's state; lineno counts the line read
 * \param str     inih's buffer, of \p num bytes (at least 2)
 * \param problem receives NULL, or what is wrong with the line for the caller to report and free
 * \return \p str; NULL at the end of the stream or on a read error (then l->read_errno is set)
 */
char *ct_ini_read_line(ct_ini_lines *l, char *str, int num, char **problem);

/**
 * \brief ct_ini_read_line for files of many sections of one kind ("[destination NAME]", "[rule NAME]"):
 * a section header is parsed here, because inih truncates long section names: \p open gets the text between
 * the brackets and returns the section's index (or -1 after reporting why it is bad), and inih is handed
 * "[<index>]" ("[-]" for a bad header). A header without ']' is described in \p *problem.
 * \param num at least 32 (room for "[<index>]"); smaller: NULL.
 */
char *ct_ini_read_sectioned(ct_ini_lines *l, char *str, int num, char **problem,
                            long (*open)(void *ctx, const char *text, size_t len), void *ctx);

/**
 * \brief Parse a duration: integers with units ns, us (or µs), ms, s, m, h, d, concatenated as in "1h30m";
 * a bare integer is seconds ("90" = "90s"). No sign, no fractions, no spaces.
 * \return 0 with *out in nanoseconds; -1 if malformed, negative or over INT64_MAX ns (*out untouched)
 */
int ct_parse_duration_ns(const char *s, int64_t *out);
/**
 * \brief Parse a size: an integer with an optional unit B, KiB, MiB, GiB, TiB, PiB (powers of 1024) or
 * KB, MB, GB, TB, PB (powers of 1000), in any case, with no space: "512", "64KiB", "10MB".
 * \return 0 with *out in bytes; -1 if malformed or over UINT64_MAX (*out untouched)
 */
int ct_parse_size(const char *s, uint64_t *out);
/**
 * \brief Parse a strict decimal integer: an optional '-' and digits, nothing else (no spaces, no '+').
 * \return 0 with *out set; -1 on an empty string, any other character or overflow (*out untouched)
 */
int ct_parse_int(const char *s, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
