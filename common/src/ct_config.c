/* Command configuration: a flag beats the environment, which beats the INI file, which beats the default. */
#include "ct_config.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Where a value came from, in increasing precedence: a later source replaces an earlier one. */
typedef enum source { SRC_UNSET, SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG } source;

typedef struct opt {
    ct_opt_def def; /**< the definition, copied; its strings stay borrowed from the caller's table */
    source src;     /**< where the current value came from */
    char *text;     /**< the current value as text (a repeat option: its items joined by commas) */
    char *where;    /**< the current value's source as ct_config_source reports it; NULL when unset */
    int64_t num;    /**< the value of an INT, BOOL or DURATION option (a repeat option: its first item) */
    uint64_t bytes; /**< the value of a SIZE option (a repeat option: its first item) */
    char **items;   /**< the current value's items, each owned */
    size_t nitems;  /**< entries in items */
    int file_line;  /**< the config-file line that set this option, 0 if none: a second one is an error */
} opt;

struct ct_config {
    char *cmd;    /**< the command's name, the prefix of every message */
    opt *opts;    /**< the command's options, then the built-in --config */
    size_t nopts; /**< entries in opts */
};

/* The option every command has: which config file to read. It cannot come from the file itself. */
static const ct_opt_def config_def = {"config", 0, "TOWER_CONFIG", NULL, CT_OPT_STRING, NULL, "FILE",
                                      "read options from this INI file", 0, 0};
/* Only for the help listing: --help is recognised before any table lookup. */
static const ct_opt_def help_def = {"help", 'h', NULL, NULL, CT_OPT_BOOL, NULL, NULL,
                                    "print this help and exit", 0, 0};

/* Print "CMD: message" on stderr: the one shape of every usage error. */
static void report(const ct_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const ct_config *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", c->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static opt *find_flag_n(const ct_config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->nopts; i++) {
        const char *f = c->opts[i].def.flag;
        if (strlen(f) == len && strncmp(f, name, len) == 0) return &c->opts[i];
    }
    return NULL;
}

static opt *find_flag(const ct_config *c, const char *name) { return find_flag_n(c, name, strlen(name)); }

static opt *find_short(const ct_config *c, char ch)
{
    for (size_t i = 0; i < c->nopts; i++)
        if (c->opts[i].def.short_flag == ch) return &c->opts[i];
    return NULL;
}

static opt *find_key(const ct_config *c, const char *key)
{
    for (size_t i = 0; i < c->nopts; i++)
        if (c->opts[i].def.key && strcmp(c->opts[i].def.key, key) == 0) return &c->opts[i];
    return NULL;
}

static int parse_bool(const char *s, int64_t *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Is s an optional '-' and digits only? Then a failed integer parse means it was out of range. */
static int looks_numeric(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* What is wrong with text as a value of d's type (to follow the quoted value in a message), or NULL with
 * the value stored in *num or *bytes. */
static const char *check_value(const ct_opt_def *d, const char *text, int64_t *num, uint64_t *bytes)
{
    int64_t n;
    switch (d->type) {
    case CT_OPT_STRING:
        return NULL;
    case CT_OPT_INT:
        if (ct_parse_int(text, &n) < 0) {
            if (!looks_numeric(text)) return "is not an integer";
            return *text == '-' ? "is not a positive integer" : "is out of range";
        }
        if (n < 0) return "is not a positive integer";
        *num = n;
        return NULL;
    case CT_OPT_BOOL:
        if (parse_bool(text, num) < 0) return "is not a boolean (true/false, yes/no, on/off, 1/0)";
        return NULL;
    case CT_OPT_DURATION:
        if (ct_parse_duration_ns(text, num) < 0) return "is not a valid duration (e.g. 250ms, 90s, 15m, 1h30m)";
        return NULL;
    case CT_OPT_SIZE:
        if (ct_parse_size(text, bytes) < 0) return "is not a valid size (e.g. 512, 64KiB, 10MiB, 1GB)";
        return NULL;
    }
    return "has an option type this build does not know";
}

/* The items of a value: for a repeat option the comma-separated parts, trimmed, empty ones dropped; for
 * any other option the whole text. Returns the count; *items is owned by the caller (NULL if none). */
static size_t split(const ct_opt_def *d, const char *text, char ***items)
{
    size_t n = 0;
    char **v = NULL;
    if (!d->repeat) {
        v = ct_malloc(sizeof *v);
        v[n++] = ct_strdup(text);
        *items = v;
        return n;
    }
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && isspace((unsigned char)*b)) b++;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        if (e > b) {
            v = ct_realloc(v, (n + 1) * sizeof *v);
            v[n++] = ct_strndup(b, (size_t)(e - b));
        }
        if (!*end) break;
        p = end + 1;
    }
    *items = v;
    return n;
}

static void free_items(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
}

/* The items joined by commas, for the caller to free: the text of a repeat option. */
static char *join(char **items, size_t n)
{
    ct_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) ct_buf_addc(&b, ',');
        ct_buf_adds(&b, items[i]);
    }
    return b.data ? b.data : ct_strdup("");
}

static void clear_value(opt *o)
{
    free(o->text);
    free(o->where);
    free_items(o->items, o->nitems);
    o->text = o->where = NULL;
    o->items = NULL;
    o->nitems = 0;
    o->num = 0;
    o->bytes = 0;
    o->src = SRC_UNSET;
}

/*
 * Check text, found in src, against o's type and make it o's value if src outranks the current one (the
 * same flag given again replaces it, or for a repeat option adds to it). Values that lose are checked too,
 * so a mistake anywhere is reported. what names the value's origin in a message ("--batch"); where is what
 * ct_config_source will say. Returns NULL, or the problem for the caller to print and free.
 */
static char *offer(opt *o, source src, const char *text, const char *what, const char *where)
{
    char **items = NULL;
    size_t n = split(&o->def, text, &items);
    int64_t num = 0;
    uint64_t bytes = 0;
    char *err = NULL;

    for (size_t i = 0; i < n; i++) {
        int64_t inum = 0;
        uint64_t ibytes = 0;
        const char *problem = check_value(&o->def, items[i], &inum, &ibytes);
        if (problem) {
            /* A secret stays out of the message even when it is wrong: it may be a near miss. */
            err = o->def.secret ? ct_sprintf("%s: the value %s", what, problem)
                                : ct_sprintf("%s: \"%s\" %s", what, items[i], problem);
            goto out;
        }
        if (i == 0) {
            num = inum;
            bytes = ibytes;
        }
    }

    if (src == SRC_FLAG && o->src == SRC_FLAG && o->def.repeat) {
        if (o->nitems == 0) {
            o->num = num;
            o->bytes = bytes;
        }
        o->items = ct_realloc(o->items, (o->nitems + n + 1) * sizeof *o->items);
        if (n) memcpy(o->items + o->nitems, items, n * sizeof *items);
        o->nitems += n;
        free(items);
        items = NULL;
        n = 0;
        free(o->text);
        o->text = join(o->items, o->nitems);
    } else if (src > o->src || (src == SRC_FLAG && o->src == SRC_FLAG)) {
        clear_value(o);
        o->src = src;
        o->text = o->def.repeat ? join(items, n) : ct_strdup(text);
        o->where = ct_strdup(where);
        o->num = num;
        o->bytes = bytes;
        o->items = items;
        o->nitems = n;
        items = NULL;
        n = 0;
    }
out:
    free_items(items, n);
    return err;
}

/* Is the table sound? Returns NULL, or the mistake for the caller to free. Mistakes here are bugs. */
static char *check_defs(const ct_config *c)
{
    for (size_t i = 0; i < c->nopts; i++) {
        const ct_opt_def *d = &c->opts[i].def;
        if (!d->flag || !*d->flag || d->flag[0] == '-' || strchr(d->flag, '=') || strchr(d->flag, ' '))
            return ct_sprintf("option %zu has no usable flag name", i);
        if (strcmp(d->flag, "help") == 0) return ct_sprintf("--help is built in");
        if (d->short_flag && (d->short_flag == 'h' || !isalnum((unsigned char)d->short_flag)))
            return ct_sprintf("--%s: -%c cannot be used", d->flag, d->short_flag);
        if ((unsigned)d->type > CT_OPT_SIZE) return ct_sprintf("--%s has an unknown type", d->flag);
        if (d->env && !*d->env) return ct_sprintf("--%s has an empty environment variable", d->flag);
        if (d->key && !*d->key) return ct_sprintf("--%s has an empty config-file key", d->flag);
        for (size_t j = 0; j < i; j++) {
            const ct_opt_def *e = &c->opts[j].def;
            if (strcmp(d->flag, e->flag) == 0) return ct_sprintf("--%s is defined twice", d->flag);
            if (d->short_flag && d->short_flag == e->short_flag)
                return ct_sprintf("-%c is used by --%s and --%s", d->short_flag, e->flag, d->flag);
            if (d->env && e->env && strcmp(d->env, e->env) == 0)
                return ct_sprintf("%s is used by --%s and --%s", d->env, e->flag, d->flag);
            if (d->key && e->key && strcmp(d->key, e->key) == 0)
                return ct_sprintf("key %s is used by --%s and --%s", d->key, e->flag, d->flag);
        }
    }
    return NULL;
}

/* The defaults go in first and are checked like any value; a default that does not parse is a bug. */
static int set_defaults(ct_config *c)
{
    for (size_t i = 0; i < c->nopts; i++) {
        opt *o = &c->opts[i];
        if (!o->def.def) continue;
        char *what = ct_sprintf("default of --%s", o->def.flag);
        char *err = offer(o, SRC_DEFAULT, o->def.def, what, "default");
        free(what);
        if (err) {
            report(c, "bad option table: %s", err);
            free(err);
            return -1;
        }
    }
    return 0;
}

/* A token that looks like the next option rather than a value; "-" (stdin) and "-5" are values. */
static int is_flag_like(const char *s) { return s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9'); }

/* The argv walk: where it is, and where the tokens it has seen go. */
typedef struct argv_walk {
    int argc;
    char **argv;
    int i;        /**< the token being read */
    char **flags; /**< option tokens and their values, in order */
    int nflags;
    char **pos;   /**< positional arguments, in order */
    int npos;
} argv_walk;

/* Give o the value attached to its flag (attached, may be NULL) or the next token. Returns 0, or -1
 * after reporting. */
static int take_flag(ct_config *c, argv_walk *w, opt *o, const char *what, const char *attached)
{
    const char *value = attached;
    if (!value && o->def.type == CT_OPT_BOOL) value = "true";
    if (!value) {
        if (w->i + 1 >= w->argc || is_flag_like(w->argv[w->i + 1])) {
            report(c, "%s needs a value", what);
            return -1;
        }
        value = w->argv[++w->i];
        w->flags[w->nflags++] = w->argv[w->i];
    }
    char *err = offer(o, SRC_FLAG, value, what, "flag");
    if (err) {
        report(c, "%s", err);
        free(err);
        return -1;
    }
    return 0;
}

/* Read the flags of argv into c and collect the positional arguments. Returns 0, 1 when --help was
 * asked for, or -1 after reporting an error. */
static int parse_argv(ct_config *c, argv_walk *w)
{
    for (w->i = 1; w->i < w->argc; w->i++) {
        char *a = w->argv[w->i];
        if (strcmp(a, "--") == 0) {
            w->flags[w->nflags++] = a;
            for (w->i++; w->i < w->argc; w->i++) w->pos[w->npos++] = w->argv[w->i];
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            w->pos[w->npos++] = a;
            continue;
        }
        w->flags[w->nflags++] = a;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && strncmp(name, "help", 4) == 0) return 1;
            opt *o = find_flag_n(c, name, len);
            if (!o || len == 0) {
                report(c, "unknown option --%.*s", (int)len, name);
                return -1;
            }
            char *what = ct_sprintf("--%s", o->def.flag);
            int r = take_flag(c, w, o, what, eq ? eq + 1 : NULL);
            free(what);
            if (r < 0) return -1;
            continue;
        }
        /* Short flags: bools may be bundled (-vq); a value is the rest of the token or the next one. */
        for (const char *s = a + 1; *s; s++) {
            if (*s == 'h') return 1;
            char what[3] = {'-', *s, '\0'};
            opt *o = find_short(c, *s);
            if (!o) {
                report(c, "unknown option %s", what);
                return -1;
            }
            int takes_value = o->def.type != CT_OPT_BOOL;
            if (take_flag(c, w, o, what, takes_value && s[1] ? s + 1 : NULL) < 0) return -1;
            if (takes_value) break;
        }
    }
    return 0;
}

static int read_env(ct_config *c)
{
    for (size_t i = 0; i < c->nopts; i++) {
        opt *o = &c->opts[i];
        if (!o->def.env) continue;
        const char *v = getenv(o->def.env);
        /* Empty counts as unset, so that "TOWER_X=" clears a variable for one run. */
        if (!v || !*v) continue;
        char *what = ct_sprintf("environment %s", o->def.env);
        char *err = offer(o, SRC_ENV, v, what, what);
        free(what);
        if (err) {
            report(c, "%s", err);
            free(err);
            return -1;
        }
    }
    return 0;
}

/* State of one config-file read, shared by the line reader and the key handler. */
typedef struct file_ctx {
    ct_config *c;
    const char *path;
    const char *const *ignore; /**< sections whose unknown keys are skipped, NULL-terminated, or NULL */
    ct_ini_lines lines;        /**< the file, a whole line per read; lines.lineno is the line inih is on */
    char *err;                 /**< the first problem this module found, without its line prefix */
    int err_line;              /**< its line */
} file_ctx;

/* Keep the first problem found (taking msg); later ones are dropped, as inih keeps only its first. */
static void file_fail(file_ctx *fc, char *msg)
{
    if (fc->err) {
        free(msg);
        return;
    }
    fc->err = msg;
    fc->err_line = fc->lines.lineno;
}

/* One reader for every INI file we read (this one, and the SLA rules): see ct_config.h. */
char *ct_ini_read_line(ct_ini_lines *l, char *str, int num, char **problem)
{
    *problem = NULL;
    if (num < 2) return NULL;
    errno = 0;
    ssize_t n = getline(&l->line, &l->cap, l->f);
    if (n < 0) {
        if (ferror(l->f)) l->read_errno = errno ? errno : EIO;
        return NULL;
    }
    l->lineno++;
    const char *s = l->line;
    size_t len = (size_t)n;
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) len--; /* CRLF files from Windows editors too */
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if (memchr(s, '\0', len)) {
        *problem = ct_strdup("line contains a NUL byte");
        len = 0;
    } else if (len > (size_t)num - 2) {
        *problem = ct_sprintf("line too long (at most %d characters)", num - 2);
        len = 0;
    }
    memcpy(str, s, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

char *ct_ini_read_sectioned(ct_ini_lines *l, char *str, int num, char **problem,
                            long (*open)(void *ctx, const char *text, size_t len), void *ctx)
{
    *problem = NULL;
    if (num < 32) return NULL;
    if (!ct_ini_read_line(l, str, num, problem)) return NULL;
    if (*str != '[') return str;
    const char *close = memchr(str, ']', strlen(str) - 1); /* the header, without its '\n' */
    long idx = -1;
    if (!close) *problem = ct_strdup("section header without ']'");
    else idx = open(ctx, str + 1, (size_t)(close - str - 1));
    if (idx >= 0) snprintf(str, (size_t)num, "[%ld]\n", idx);
    else snprintf(str, (size_t)num, "[-]\n");
    return str;
}

/* inih's reader (see ct_ini_read_line). */
static char *read_line(char *str, int num, void *stream)
{
    file_ctx *fc = stream;
    char *problem;
    char *r = ct_ini_read_line(&fc->lines, str, num, &problem);
    if (problem) file_fail(fc, problem);
    return r;
}

static int listed(const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (strcmp(*names, name) == 0) return 1;
    return 0;
}

/* inih's handler: one key = value pair. Returns 0 on an error, which inih records as its line. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    file_ctx *fc = user;
    int ok = 1;
    char *key = *section ? ct_sprintf("%s.%s", section, name) : ct_strdup(name);
    opt *o = find_key(fc->c, key);
    if (!o) {
        if (!listed(fc->ignore, section)) {
            file_fail(fc, ct_sprintf("unknown key \"%s\"", key));
            ok = 0;
        }
    } else if (o->file_line) {
        file_fail(fc, ct_sprintf("key \"%s\" given twice (first on line %d)", key, o->file_line));
        ok = 0;
    } else {
        o->file_line = fc->lines.lineno;
        char *where = ct_sprintf("file %s:%d", fc->path, fc->lines.lineno);
        char *err = offer(o, SRC_FILE, value, key, where);
        free(where);
        if (err) {
            file_fail(fc, err);
            ok = 0;
        }
    }
    free(key);
    return ok;
}

static int load_file(ct_config *c, const char *path, const char *const *ignore)
{
    file_ctx fc = {.c = c, .path = path, .ignore = ignore};
    int rc = -1;
    fc.lines.f = fopen(path, "r");
    if (!fc.lines.f) {
        report(c, "cannot read config file %s: %s", path, strerror(errno));
        goto out;
    }
    int r = ini_parse_stream(read_line, &fc, on_pair, &fc);
    /* inih returns the first line with any error, its own or a handler's; ours may be earlier (the reader's). */
    if (fc.lines.read_errno) report(c, "cannot read config file %s: %s", path, strerror(fc.lines.read_errno));
    else if (fc.err && (r <= 0 || fc.err_line <= r)) report(c, "%s:%d: %s", path, fc.err_line, fc.err);
    else if (r > 0) report(c, "%s:%d: syntax error", path, r);
    else if (r < 0) report(c, "cannot read config file %s: inih error %d", path, r);
    else rc = 0;
out:
    if (fc.lines.f) fclose(fc.lines.f);
    free(fc.lines.line);
    free(fc.err);
    return rc;
}

static const char *metavar(const ct_opt_def *d)
{
    if (d->metavar) return d->metavar;
    switch (d->type) {
    case CT_OPT_INT: return "N";
    case CT_OPT_DURATION: return "DURATION";
    case CT_OPT_SIZE: return "SIZE";
    default: return "VALUE";
    }
}

enum { HELP_COL = 30 };

static void help_entry(FILE *f, const ct_opt_def *d)
{
    ct_buf left = {0};
    if (d->short_flag) ct_buf_addf(&left, "  -%c, --%s", d->short_flag, d->flag);
    else ct_buf_addf(&left, "      --%s", d->flag);
    if (d->type != CT_OPT_BOOL) ct_buf_addf(&left, " %s", metavar(d));
    if (left.len + 2 > HELP_COL) fprintf(f, "%s\n%*s", left.data, HELP_COL, "");
    else fprintf(f, "%-*s", HELP_COL, left.data);
    ct_buf_free(&left);
    fputs(d->help ? d->help : "", f);
    if (d->repeat) fputs(" (repeatable, or a comma-separated list)", f);
    if (d->def && !d->secret) fprintf(f, " (default: %s)", d->def);
    fputc('\n', f);
    if (d->env || d->key) {
        fprintf(f, "%*s", HELP_COL, "");
        if (d->env) fprintf(f, "env %s%s", d->env, d->key ? ", " : "");
        if (d->key) fprintf(f, "file key %s", d->key);
        fputc('\n', f);
    }
}

static void print_help(const ct_config *c, const char *usage_head, FILE *f)
{
    if (usage_head && *usage_head) {
        fputs(usage_head, f);
        if (usage_head[strlen(usage_head) - 1] != '\n') fputc('\n', f);
        fputc('\n', f);
    }
    fputs("Options:\n", f);
    for (size_t i = 0; i < c->nopts; i++) help_entry(f, &c->opts[i].def);
    help_entry(f, &help_def);
    fputs("\nEach option can be given as a flag, in its environment variable, or under its key in the\n"
          "config file (--config); a flag beats the environment, which beats the file, which beats\n"
          "the default.\n",
          f);
}

ct_status ct_config_parse(ct_config **out, const char *cmd, const char *usage_head, const ct_opt_def *defs,
                          size_t ndefs, const char *const *ignore_sections, int argc, char **argv, char ***args,
                          int *nargs, int *help_shown)
{
    ct_status st = CT_USAGE;
    size_t slots = argc > 0 ? (size_t)argc : 1;
    argv_walk w = {.argc = argc, .argv = argv};
    w.flags = ct_calloc(slots, sizeof *w.flags);
    w.pos = ct_calloc(slots, sizeof *w.pos);
    ct_config *c = ct_calloc(1, sizeof *c);
    c->cmd = ct_strdup(cmd ? cmd : "?");
    c->nopts = ndefs + 1;
    c->opts = ct_calloc(c->nopts, sizeof *c->opts);
    for (size_t i = 0; i < ndefs; i++) c->opts[i].def = defs[i];
    c->opts[ndefs].def = config_def;
    *help_shown = 0;

    char *bad = check_defs(c);
    if (bad) {
        report(c, "bad option table: %s", bad);
        free(bad);
        st = CT_INVALID;
        goto out;
    }
    if (set_defaults(c) < 0) {
        st = CT_INVALID;
        goto out;
    }
    int r = parse_argv(c, &w);
    if (r < 0) goto out;
    if (r == 1) {
        print_help(c, usage_head, stdout);
        fflush(stdout);
        *help_shown = 1;
        *out = NULL;
        if (args) *args = NULL;
        if (nargs) *nargs = 0;
        st = CT_OK;
        goto out;
    }
    if (!args && w.npos > 0) {
        report(c, "unexpected argument \"%s\"", w.pos[0]);
        goto out;
    }
    if (read_env(c) < 0) goto out;
    /* The file comes last: --config and TOWER_CONFIG have to be known first. "--config=" reads none. */
    const char *path = c->opts[ndefs].text;
    if (path && *path && load_file(c, path, ignore_sections) < 0) goto out;

    /* Options first, then the positional arguments, so that the caller gets them as a slice of argv. */
    if (argc > 0) {
        memcpy(argv + 1, w.flags, (size_t)w.nflags * sizeof *argv);
        memcpy(argv + 1 + w.nflags, w.pos, (size_t)w.npos * sizeof *argv);
    }
    if (args) *args = argc > 0 ? argv + 1 + w.nflags : argv;
    if (nargs) *nargs = w.npos;
    *out = c;
    c = NULL;
    st = CT_OK;
out:
    ct_config_destroy(c);
    free(w.flags);
    free(w.pos);
    return st;
}

/* The option named flag, or a crash: asking for an option the table lacks, or with the getter of another
 * type, is a bug that the first run should show. type -1 accepts any type. */
static const opt *must_find(const ct_config *c, const char *flag, int type, const char *getter)
{
    const opt *o = c && flag ? find_flag(c, flag) : NULL;
    if (!o) {
        fprintf(stderr, "%s: no option \"%s\" in this configuration\n", getter, flag ? flag : "(null)");
        abort();
    }
    if (type >= 0 && (int)o->def.type != type) {
        fprintf(stderr, "%s: option \"%s\" has another type\n", getter, flag);
        abort();
    }
    return o;
}

const char *ct_config_str(const ct_config *c, const char *flag)
{
    return must_find(c, flag, -1, "ct_config_str")->text;
}

int64_t ct_config_int(const ct_config *c, const char *flag)
{
    return must_find(c, flag, CT_OPT_INT, "ct_config_int")->num;
}

int ct_config_bool(const ct_config *c, const char *flag)
{
    return must_find(c, flag, CT_OPT_BOOL, "ct_config_bool")->num != 0;
}

int64_t ct_config_duration_ns(const ct_config *c, const char *flag)
{
    return must_find(c, flag, CT_OPT_DURATION, "ct_config_duration_ns")->num;
}

uint64_t ct_config_size(const ct_config *c, const char *flag)
{
    return must_find(c, flag, CT_OPT_SIZE, "ct_config_size")->bytes;
}

size_t ct_config_list(const ct_config *c, const char *flag, const char ***items)
{
    const opt *o = must_find(c, flag, -1, "ct_config_list");
    *items = o->nitems ? (const char **)o->items : NULL;
    return o->nitems;
}

const char *ct_config_source(const ct_config *c, const char *flag)
{
    const opt *o = must_find(c, flag, -1, "ct_config_source");
    return o->where ? o->where : "unset";
}

void ct_config_describe(const ct_config *c, ct_buf *out)
{
    for (size_t i = 0; i < c->nopts; i++) {
        const opt *o = &c->opts[i];
        if (o->src == SRC_UNSET) ct_buf_addf(out, "%s (unset)\n", o->def.flag);
        else ct_buf_addf(out, "%s=%s (%s)\n", o->def.flag, o->def.secret ? "(set)" : o->text, o->where);
    }
}

void ct_config_destroy(ct_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nopts; i++) clear_value(&c->opts[i]);
    free(c->opts);
    free(c->cmd);
    free(c);
}
