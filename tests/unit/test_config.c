/* Unit tests of the configuration module: precedence, error messages, --help, lists, secrets, parsers. */
#include "ct_config.h"
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#define CMD "towerd projector"

static const ct_opt_def defs[] = {
    {"nats", 'n', "TOWER_NATS_URL", "nats.url", CT_OPT_STRING, "nats://127.0.0.1:4222", "URL", "NATS server", 0, 0},
    {"batch", 'b', "TOWER_BATCH", "projector.batch", CT_OPT_INT, "100", NULL, "events per transaction", 0, 0},
    {"strict", 's', "TOWER_STRICT", "projector.strict", CT_OPT_BOOL, "false", NULL, "fail on dead letters", 0, 0},
    {"flush", 0, "TOWER_FLUSH", "projector.flush", CT_OPT_DURATION, "250ms", NULL, "flush interval", 0, 0},
    {"map-size", 0, "TOWER_MAP_SIZE", "store.map_size", CT_OPT_SIZE, "1GiB", NULL, "LMDB map size", 0, 0},
    {"token", 0, "TOWER_NATS_TOKEN", "nats.token", CT_OPT_STRING, NULL, "TOKEN", "NATS auth token", 1, 0},
    {"peer", 'p', "TOWER_PEERS", "cluster.peers", CT_OPT_STRING, NULL, "URL", "a peer", 0, 1},
    {"data", 'd', "TOWER_DATA", "store.dir", CT_OPT_STRING, NULL, "DIR", "the store", 0, 0},
    {"limit", 0, NULL, "projector.limit", CT_OPT_INT, NULL, NULL, "stop after N events", 0, 0},
    {"quiet", 'q', NULL, NULL, CT_OPT_BOOL, NULL, NULL, "no progress line", 0, 0},
};
#define NDEFS (sizeof defs / sizeof defs[0])

static const char *all_env[] = {"TOWER_NATS_URL", "TOWER_BATCH", "TOWER_STRICT", "TOWER_FLUSH", "TOWER_MAP_SIZE",
                                "TOWER_NATS_TOKEN", "TOWER_PEERS", "TOWER_DATA", "TOWER_CONFIG", NULL};

static void clear_env(void)
{
    for (const char **e = all_env; *e; e++) unsetenv(*e);
}

/* A file in dir with the given text; the path for the caller to free. */
static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = ct_sprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* Redirect fd to a temporary file until cap_end, which returns what was written there. */
typedef struct capture {
    int fd;
    int saved;
    char path[64];
} capture;

static void cap_start(capture *cp, int fd)
{
    fflush(stdout);
    fflush(stderr);
    cp->fd = fd;
    snprintf(cp->path, sizeof cp->path, "/tmp/tower-cap-XXXXXX");
    int t = mkstemp(cp->path);
    if (t < 0) {
        perror("mkstemp");
        exit(2);
    }
    cp->saved = dup(fd);
    dup2(t, fd);
    close(t);
}

static char *cap_end(capture *cp)
{
    fflush(stdout);
    fflush(stderr);
    dup2(cp->saved, cp->fd);
    close(cp->saved);
    ct_buf b = {0};
    FILE *f = fopen(cp->path, "r");
    char chunk[512];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ct_buf_add(&b, chunk, n);
    if (f) fclose(f);
    unlink(cp->path);
    return b.data ? b.data : ct_strdup("");
}

/* One ct_config_parse with stdout and stderr captured. */
typedef struct run {
    ct_status st;
    ct_config *c;
    char **args;
    int nargs;
    int help;
    char *out; /* what went to stdout */
    char *err; /* what went to stderr */
} run;

static run parse_with(char **argv, const char *const *ignore, int want_args)
{
    run r = {.nargs = -1, .help = -1};
    int argc = 0;
    while (argv[argc]) argc++;
    capture co, ce;
    cap_start(&co, 1);
    cap_start(&ce, 2);
    r.st = ct_config_parse(&r.c, CMD, "Usage: towerd projector [OPTIONS] [FILE...]\nFolds events into views.",
                           defs, NDEFS, ignore, argc, argv, want_args ? &r.args : NULL,
                           want_args ? &r.nargs : NULL, &r.help);
    r.err = cap_end(&ce);
    r.out = cap_end(&co);
    return r;
}

static run parse(char **argv) { return parse_with(argv, NULL, 1); }

static void run_free(run *r)
{
    ct_config_destroy(r->c);
    free(r->out);
    free(r->err);
}

#define ARGV(...) ((char *[]){"projector", __VA_ARGS__, NULL})
#define ARGV0 ((char *[]){"projector", NULL})

/* Expect a usage error whose message is exactly want (one line). */
static void expect_usage(int line, run r, const char *want)
{
    test_checks++;
    if (r.st != CT_USAGE || r.c) {
        fprintf(stderr, "%s:%d: FAIL: status %d (want CT_USAGE), config %p\n", __FILE__, line, (int)r.st,
                (void *)r.c);
        test_failures++;
    }
    char *full = ct_sprintf("%s: %s\n", CMD, want);
    test_checks++;
    if (strcmp(r.err, full) != 0) {
        fprintf(stderr, "%s:%d: FAIL: stderr \"%s\", want \"%s\"\n", __FILE__, line, r.err, full);
        test_failures++;
    }
    free(full);
    run_free(&r);
}
#define EXPECT_USAGE(r, want) expect_usage(__LINE__, r, want)

static void test_defaults(void)
{
    clear_env();
    run r = parse(ARGV0);
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(r.err, "");
    T_EQ_STR(ct_config_str(r.c, "nats"), "nats://127.0.0.1:4222");
    T_EQ_STR(ct_config_source(r.c, "nats"), "default");
    T_EQ_INT(ct_config_int(r.c, "batch"), 100);
    T_EQ_INT(ct_config_bool(r.c, "strict"), 0);
    T_EQ_INT(ct_config_duration_ns(r.c, "flush"), 250000000);
    T_EQ_INT(ct_config_size(r.c, "map-size"), 1073741824);
    T_ASSERT(ct_config_str(r.c, "data") == NULL);
    T_EQ_STR(ct_config_source(r.c, "data"), "unset");
    T_EQ_INT(ct_config_int(r.c, "limit"), 0);
    T_EQ_INT(ct_config_bool(r.c, "quiet"), 0);
    T_ASSERT(ct_config_str(r.c, "config") == NULL);
    const char **items = (const char **)1;
    T_EQ_INT(ct_config_list(r.c, "peer", &items), 0);
    T_ASSERT(items == NULL);
    T_EQ_INT(r.nargs, 0);
    T_EQ_INT(r.help, 0);
    run_free(&r);
}

/* One option through all four sources, each added on top of the last. */
static void test_precedence(void)
{
    clear_env();
    char *dir = t_tmpdir();
    char *conf = write_file(dir, "tower.conf",
                            "; the projector's settings\n"
                            "[projector]\n"
                            "batch = 200\n"
                            "flush = 2s\n"
                            "  strict = yes\n"
                            "[store]\n"
                            "map_size = 64MiB\n");
    char *where = ct_sprintf("file %s:3", conf);

    run r = parse(ARGV("--config", conf));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(r.err, "");
    T_EQ_INT(ct_config_int(r.c, "batch"), 200);
    T_EQ_STR(ct_config_source(r.c, "batch"), where);
    T_EQ_INT(ct_config_duration_ns(r.c, "flush"), 2000000000LL);
    T_EQ_INT(ct_config_bool(r.c, "strict"), 1); /* indented keys are keys, not continuations */
    T_EQ_INT(ct_config_size(r.c, "map-size"), 64 << 20);
    T_EQ_STR(ct_config_str(r.c, "config"), conf);
    T_EQ_STR(ct_config_source(r.c, "config"), "flag");
    run_free(&r);

    setenv("TOWER_BATCH", "300", 1);
    setenv("TOWER_FLUSH", "1m", 1);
    r = parse(ARGV("--config", conf));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(ct_config_int(r.c, "batch"), 300);
    T_EQ_STR(ct_config_source(r.c, "batch"), "environment TOWER_BATCH");
    T_EQ_INT(ct_config_duration_ns(r.c, "flush"), 60000000000LL);
    T_EQ_INT(ct_config_size(r.c, "map-size"), 64 << 20);
    run_free(&r);

    r = parse(ARGV("--config", conf, "--batch", "400", "--strict=off"));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(ct_config_int(r.c, "batch"), 400);
    T_EQ_STR(ct_config_source(r.c, "batch"), "flag");
    T_EQ_INT(ct_config_duration_ns(r.c, "flush"), 60000000000LL);
    T_EQ_INT(ct_config_bool(r.c, "strict"), 0);
    T_EQ_STR(ct_config_source(r.c, "strict"), "flag");
    T_EQ_STR(ct_config_str(r.c, "nats"), "nats://127.0.0.1:4222");
    run_free(&r);

    /* The file named by TOWER_CONFIG, overridden by --config; an empty variable counts as unset. */
    char *other = write_file(dir, "other.conf", "[projector]\nbatch = 7\n");
    clear_env();
    setenv("TOWER_CONFIG", other, 1);
    r = parse(ARGV0);
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(ct_config_int(r.c, "batch"), 7);
    T_EQ_STR(ct_config_source(r.c, "config"), "environment TOWER_CONFIG");
    run_free(&r);
    r = parse(ARGV("--config=" /* no file at all */));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(ct_config_int(r.c, "batch"), 100);
    run_free(&r);
    r = parse(ARGV("--config", conf));
    T_EQ_INT(ct_config_int(r.c, "batch"), 200);
    run_free(&r);
    setenv("TOWER_BATCH", "", 1);
    setenv("TOWER_CONFIG", "", 1);
    r = parse(ARGV0);
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(ct_config_int(r.c, "batch"), 100);
    T_EQ_STR(ct_config_source(r.c, "batch"), "default");
    run_free(&r);

    /* Short flags: attached values, separate values, bundled bools; the last of a flag given twice wins. */
    clear_env();
    r = parse(ARGV("-b7", "-sq", "-n", "nats://a:1", "--batch=8", "-b", "9"));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(r.err, "");
    T_EQ_INT(ct_config_int(r.c, "batch"), 9);
    T_EQ_INT(ct_config_bool(r.c, "strict"), 1);
    T_EQ_INT(ct_config_bool(r.c, "quiet"), 1);
    T_EQ_STR(ct_config_str(r.c, "nats"), "nats://a:1");
    run_free(&r);

    free(where);
    free(conf);
    free(other);
    t_rmdir(dir);
}

static void test_errors(void)
{
    clear_env();
    char *dir = t_tmpdir();

    EXPECT_USAGE(parse(ARGV("--batch", "abc")), "--batch: \"abc\" is not an integer");
    EXPECT_USAGE(parse(ARGV("-b", "abc")), "-b: \"abc\" is not an integer");
    EXPECT_USAGE(parse(ARGV("--batch", "99999999999999999999")), "--batch: \"99999999999999999999\" is out of range");
    EXPECT_USAGE(parse(ARGV("--foo")), "unknown option --foo");
    EXPECT_USAGE(parse(ARGV("--foo=1")), "unknown option --foo");
    EXPECT_USAGE(parse(ARGV("-x")), "unknown option -x");
    EXPECT_USAGE(parse(ARGV("--nats")), "--nats needs a value");
    EXPECT_USAGE(parse(ARGV("--nats", "--batch", "5")), "--nats needs a value");
    EXPECT_USAGE(parse(ARGV("-sb")), "-b needs a value");
    EXPECT_USAGE(parse(ARGV("--strict=maybe")),
                 "--strict: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0)");
    EXPECT_USAGE(parse(ARGV("--map-size", "5x")),
                 "--map-size: \"5x\" is not a valid size (e.g. 512, 64KiB, 10MiB, 1GB)");

    setenv("TOWER_BATCH", "-5", 1);
    EXPECT_USAGE(parse(ARGV0), "environment TOWER_BATCH: \"-5\" is not a positive integer");
    /* A bad value is reported even when a higher source overrides it. */
    EXPECT_USAGE(parse(ARGV("--batch", "5")), "environment TOWER_BATCH: \"-5\" is not a positive integer");
    EXPECT_USAGE(parse(ARGV("--batch", "-5")), "--batch: \"-5\" is not a positive integer");
    clear_env();
    setenv("TOWER_FLUSH", "-1s", 1);
    EXPECT_USAGE(parse(ARGV0),
                 "environment TOWER_FLUSH: \"-1s\" is not a valid duration (e.g. 250ms, 90s, 15m, 1h30m)");
    clear_env();

    /* Config files: an unknown key on line 12, a syntax error on line 3, a bad value, a missing file. */
    char *typo = write_file(dir, "typo.conf",
                            "# line 1\n[nats]\n\n\n\n\n\n\n\n\n; line 11\nurll = nats://x:4222\n");
    char *want = ct_sprintf("%s:12: unknown key \"nats.urll\"", typo);
    EXPECT_USAGE(parse(ARGV("--config", typo)), want);
    free(want);

    char *syntax = write_file(dir, "syntax.conf", "[nats]\nurl = nats://x\nthis line has no equals sign\n");
    want = ct_sprintf("%s:3: syntax error", syntax);
    EXPECT_USAGE(parse(ARGV("--config", syntax)), want);
    free(want);

    char *badval = write_file(dir, "badval.conf", "[projector]\nflush = 5x\n");
    want = ct_sprintf("%s:2: projector.flush: \"5x\" is not a valid duration (e.g. 250ms, 90s, 15m, 1h30m)",
                      badval);
    EXPECT_USAGE(parse(ARGV("--config", badval, "--flush", "1s")), want);
    free(want);

    char *twice = write_file(dir, "twice.conf", "[projector]\nbatch = 1\nbatch = 2\n");
    want = ct_sprintf("%s:3: key \"projector.batch\" given twice (first on line 2)", twice);
    EXPECT_USAGE(parse(ARGV("--config", twice)), want);
    free(want);

    /* The first error wins, whichever of inih and this module found it. */
    char *both = write_file(dir, "both.conf", "[nats]\nbogus = 1\n[unclosed\n");
    want = ct_sprintf("%s:2: unknown key \"nats.bogus\"", both);
    EXPECT_USAGE(parse(ARGV("--config", both)), want);
    free(want);

    ct_buf longline = {0};
    ct_buf_adds(&longline, "[nats]\nurl = nats://");
    for (int i = 0; i < 300; i++) ct_buf_addc(&longline, 'a');
    ct_buf_adds(&longline, "\nbatch = 1\n");
    char *toolong = write_file(dir, "long.conf", longline.data);
    ct_buf_free(&longline);
    run r = parse(ARGV("--config", toolong));
    T_EQ_INT(r.st, CT_USAGE);
    want = ct_sprintf("%s: %s:2: line too long", CMD, toolong);
    T_ASSERT(strncmp(r.err, want, strlen(want)) == 0);
    free(want);
    run_free(&r);

    EXPECT_USAGE(parse(ARGV("--config", "/nonexistent/x.conf")),
                 "cannot read config file /nonexistent/x.conf: No such file or directory");
    want = ct_sprintf("cannot read config file %s: Is a directory", dir);
    EXPECT_USAGE(parse(ARGV("--config", dir)), want);
    free(want);
    setenv("TOWER_CONFIG", "/nonexistent/y.conf", 1);
    EXPECT_USAGE(parse(ARGV0), "cannot read config file /nonexistent/y.conf: No such file or directory");
    clear_env();

    /* Sections for other commands: errors unless listed in ignore_sections. */
    char *shared = write_file(dir, "shared.conf",
                              "[nats]\nurl = nats://shared:4222\n[api]\nlisten = :8080\n[projector]\nbatch = 3\n");
    want = ct_sprintf("%s:4: unknown key \"api.listen\"", shared);
    EXPECT_USAGE(parse(ARGV("--config", shared)), want);
    free(want);
    static const char *const ignore[] = {"api", "sim", NULL};
    r = parse_with(ARGV("--config", shared), ignore, 1);
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(r.err, "");
    T_EQ_STR(ct_config_str(r.c, "nats"), "nats://shared:4222");
    T_EQ_INT(ct_config_int(r.c, "batch"), 3);
    run_free(&r);

    /* A command without positional arguments rejects them. */
    r = parse_with(ARGV("stray"), NULL, 0);
    T_EQ_INT(r.st, CT_USAGE);
    T_EQ_STR(r.err, CMD ": unexpected argument \"stray\"\n");
    run_free(&r);

    /* On failure the out-parameter is left alone. */
    ct_config *sentinel = (ct_config *)&r;
    ct_config *c = sentinel;
    int help = -1;
    capture ce;
    cap_start(&ce, 2);
    ct_status st = ct_config_parse(&c, CMD, NULL, defs, NDEFS, NULL, 2, ARGV("--foo"), NULL, NULL, &help);
    free(cap_end(&ce));
    T_EQ_INT(st, CT_USAGE);
    T_ASSERT(c == sentinel);
    T_EQ_INT(help, 0);

    free(typo);
    free(syntax);
    free(badval);
    free(twice);
    free(both);
    free(toolong);
    free(shared);
    t_rmdir(dir);
}

/* A broken table is the programmer's mistake: CT_INVALID, with the reason. */
/* The longest line a config file may hold, as the "line too long" message says. */
static int max_line(const char *dir)
{
    ct_buf b = {0};
    ct_buf_adds(&b, "url = ");
    for (int i = 0; i < 10000; i++) ct_buf_addc(&b, 'a');
    ct_buf_addc(&b, '\n');
    char *path = write_file(dir, "max.conf", b.data);
    ct_buf_free(&b);
    run r = parse(ARGV("--config", path));
    const char *at = strstr(r.err, "(at most ");
    int max = 0;
    T_ASSERT(at && sscanf(at, "(at most %d characters)", &max) == 1 && max > 20);
    run_free(&r);
    free(path);
    return max;
}

/* text with every "\n" made "\r\n", for the caller to free. */
static char *crlf(const char *text)
{
    ct_buf b = {0};
    for (; *text; text++) {
        if (*text == '\n') ct_buf_addc(&b, '\r');
        ct_buf_addc(&b, *text);
    }
    return b.data;
}

/* What a config file resolves to, as ct_config_describe says it (values and sources, line numbers
 * included); for the caller to free. */
static char *described(char *path)
{
    run r = parse(ARGV("--config", path));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(r.err, "");
    ct_buf b = {0};
    if (r.c) ct_config_describe(r.c, &b);
    run_free(&r);
    return b.data;
}

/* A file saved by a Windows editor (every line ends in CRLF) reads as the same file with LF endings:
 * the '\r' is in no value, does not count towards a line's length, and line numbers stay the file's. */
static void test_crlf(void)
{
    clear_env();
    char *dir = t_tmpdir();
    const char *lf = "; written on Windows\n"
                     "\n"
                     "[projector]\n"
                     "batch = 200\n"
                     "  strict = yes\n"
                     "flush = 2s ; inline comment\n"
                     "[store]\n"
                     "dir = /var/lib/tower\n"
                     "[cluster]\n"
                     "peers = nats://a:1, nats://b:2\n";
    char *dos = crlf(lf);
    char *conf = write_file(dir, "win.conf", lf);
    char *want = described(conf);
    free(write_file(dir, "win.conf", dos));
    char *got = described(conf);
    T_EQ_STR(got, want);
    T_ASSERT(got && strstr(got, "data=/var/lib/tower (file ") && !strchr(got, '\r'));
    free(want);
    free(got);
    free(dos);

    /* An error names the right line, and its message holds no '\r'. */
    dos = crlf("[projector]\nbatch = 1\nflush = 5x\n");
    free(write_file(dir, "win.conf", dos));
    free(dos);
    want = ct_sprintf("%s:3: projector.flush: \"5x\" is not a valid duration (e.g. 250ms, 90s, 15m, 1h30m)", conf);
    EXPECT_USAGE(parse(ARGV("--config", conf)), want);
    free(want);

    /* The longest line allowed is allowed with CRLF too: the '\r' is not counted. */
    int max = max_line(dir);
    ct_buf b = {0};
    ct_buf_adds(&b, "[store]\ndir = /");
    while (b.len < strlen("[store]\n") + (size_t)max) ct_buf_addc(&b, 'd');
    ct_buf_addc(&b, '\n');
    dos = crlf(b.data);
    ct_buf_free(&b);
    free(write_file(dir, "win.conf", dos));
    free(dos);
    run r = parse(ARGV("--config", conf));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(r.err, "");
    T_EQ_INT(ct_config_str(r.c, "data") ? (long long)strlen(ct_config_str(r.c, "data")) : -1,
             max - (int)strlen("dir = "));
    run_free(&r);

    free(conf);
    t_rmdir(dir);
}

static void test_bad_table(void)
{
    clear_env();
    static const ct_opt_def dup[] = {
        {"a", 'x', NULL, NULL, CT_OPT_STRING, NULL, NULL, "", 0, 0},
        {"b", 'x', NULL, NULL, CT_OPT_STRING, NULL, NULL, "", 0, 0},
    };
    static const ct_opt_def reserved[] = {{"config", 0, NULL, NULL, CT_OPT_STRING, NULL, NULL, "", 0, 0}};
    static const ct_opt_def short_h[] = {{"host", 'h', NULL, NULL, CT_OPT_STRING, NULL, NULL, "", 0, 0}};
    static const ct_opt_def bad_default[] = {{"n", 0, NULL, NULL, CT_OPT_INT, "ten", NULL, "", 0, 0}};
    struct {
        const ct_opt_def *d;
        size_t n;
        const char *msg;
    } cases[] = {
        {dup, 2, "bad option table: -x is used by --a and --b"},
        {reserved, 1, "bad option table: --config is defined twice"},
        {short_h, 1, "bad option table: --host: -h cannot be used"},
        {bad_default, 1, "bad option table: default of --n: \"ten\" is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_config *c = NULL;
        int help;
        capture ce;
        cap_start(&ce, 2);
        ct_status st = ct_config_parse(&c, CMD, NULL, cases[i].d, cases[i].n, NULL, 1, ARGV0, NULL, NULL, &help);
        char *err = cap_end(&ce);
        char *want = ct_sprintf("%s: %s\n", CMD, cases[i].msg);
        T_EQ_INT(st, CT_INVALID);
        T_ASSERT(c == NULL);
        T_EQ_STR(err, want);
        free(want);
        free(err);
    }
}

static void test_help(void)
{
    clear_env();
    setenv("TOWER_BATCH", "not even checked", 1);
    run r = parse(ARGV("--batch", "5", "--help", "--foo"));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(r.help, 1);
    T_ASSERT(r.c == NULL);
    T_EQ_STR(r.err, "");
    T_ASSERT(strncmp(r.out, "Usage: towerd projector [OPTIONS] [FILE...]\nFolds events into views.\n\n", 70) == 0);
    for (size_t i = 0; i < NDEFS; i++) {
        char *flag = ct_sprintf("--%s", defs[i].flag);
        T_ASSERT(strstr(r.out, flag) != NULL);
        free(flag);
        if (defs[i].short_flag) {
            char *both = ct_sprintf("-%c, --%s", defs[i].short_flag, defs[i].flag);
            T_ASSERT(strstr(r.out, both) != NULL);
            free(both);
        }
        if (defs[i].env) {
            char *env = ct_sprintf("env %s", defs[i].env);
            T_ASSERT(strstr(r.out, env) != NULL);
            free(env);
        }
        if (defs[i].key) {
            char *key = ct_sprintf("file key %s", defs[i].key);
            T_ASSERT(strstr(r.out, key) != NULL);
            free(key);
        }
        if (defs[i].def) {
            char *def = ct_sprintf("(default: %s)", defs[i].def);
            T_ASSERT(strstr(r.out, def) != NULL);
            free(def);
        }
    }
    T_ASSERT(strstr(r.out, "-n, --nats URL") != NULL);
    T_ASSERT(strstr(r.out, "--batch N") != NULL);
    T_ASSERT(strstr(r.out, "--flush DURATION") != NULL);
    T_ASSERT(strstr(r.out, "--config FILE") != NULL);
    T_ASSERT(strstr(r.out, "env TOWER_CONFIG") != NULL);
    T_ASSERT(strstr(r.out, "-h, --help") != NULL);
    T_ASSERT(strstr(r.out, "repeatable") != NULL);
    run_free(&r);

    r = parse(ARGV("-qh"));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(r.help, 1);
    T_ASSERT(strstr(r.out, "--map-size SIZE") != NULL);
    run_free(&r);
    clear_env();
}

static void test_repeat(void)
{
    clear_env();
    const char **items = NULL;
    run r = parse(ARGV("--peer", "a", "-p", "b, c", "--peer=d", "-pe"));
    T_EQ_INT(r.st, CT_OK);
    size_t n = ct_config_list(r.c, "peer", &items);
    T_EQ_INT(n, 5);
    if (n == 5) {
        T_EQ_STR(items[0], "a");
        T_EQ_STR(items[1], "b");
        T_EQ_STR(items[2], "c");
        T_EQ_STR(items[3], "d");
        T_EQ_STR(items[4], "e");
    }
    T_EQ_STR(ct_config_str(r.c, "peer"), "a,b,c,d,e");
    T_EQ_STR(ct_config_source(r.c, "peer"), "flag");
    run_free(&r);

    setenv("TOWER_PEERS", " x , y,,z ", 1);
    r = parse(ARGV0);
    n = ct_config_list(r.c, "peer", &items);
    T_EQ_INT(n, 3);
    if (n == 3) {
        T_EQ_STR(items[0], "x");
        T_EQ_STR(items[1], "y");
        T_EQ_STR(items[2], "z");
    }
    run_free(&r);
    /* Flags replace the environment's list rather than add to it. */
    r = parse(ARGV("--peer", "only"));
    n = ct_config_list(r.c, "peer", &items);
    T_EQ_INT(n, 1);
    if (n == 1) T_EQ_STR(items[0], "only");
    run_free(&r);
    clear_env();

    char *dir = t_tmpdir();
    char *conf = write_file(dir, "peers.conf", "[cluster]\npeers = nats://f1:4222, nats://f2:4222\n");
    r = parse(ARGV("--config", conf));
    n = ct_config_list(r.c, "peer", &items);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(items[0], "nats://f1:4222");
        T_EQ_STR(items[1], "nats://f2:4222");
    }
    /* A plain option's list is its one value. */
    T_EQ_INT(ct_config_list(r.c, "nats", &items), 1);
    T_EQ_STR(items[0], "nats://127.0.0.1:4222");
    run_free(&r);
    free(conf);
    t_rmdir(dir);
}

static void test_secret(void)
{
    clear_env();
    setenv("TOWER_NATS_TOKEN", "s3cr3t-token", 1);
    run r = parse(ARGV("--data", "/var/lib/tower"));
    T_EQ_INT(r.st, CT_OK);
    T_EQ_STR(ct_config_str(r.c, "token"), "s3cr3t-token");
    ct_buf b = {0};
    ct_config_describe(r.c, &b);
    T_ASSERT(b.data && strstr(b.data, "s3cr3t") == NULL);
    T_ASSERT(b.data && strstr(b.data, "token=(set) (environment TOWER_NATS_TOKEN)\n") != NULL);
    T_ASSERT(b.data && strstr(b.data, "data=/var/lib/tower (flag)\n") != NULL);
    T_ASSERT(b.data && strstr(b.data, "batch=100 (default)\n") != NULL);
    T_ASSERT(b.data && strstr(b.data, "limit (unset)\n") != NULL);
    T_ASSERT(b.data && strstr(b.data, "config (unset)\n") != NULL);
    ct_buf_free(&b);
    run_free(&r);
    clear_env();
}

static void test_positional(void)
{
    clear_env();
    char **argv = ARGV("in1", "--batch", "5", "in2", "-", "-q", "--", "--not-a-flag", "-b");
    run r = parse(argv);
    T_EQ_INT(r.st, CT_OK);
    T_EQ_INT(ct_config_int(r.c, "batch"), 5);
    T_EQ_INT(ct_config_bool(r.c, "quiet"), 1);
    T_EQ_INT(r.nargs, 5);
    T_ASSERT(r.args == argv + 5);
    if (r.nargs == 5) {
        T_EQ_STR(r.args[0], "in1");
        T_EQ_STR(r.args[1], "in2");
        T_EQ_STR(r.args[2], "-");
        T_EQ_STR(r.args[3], "--not-a-flag");
        T_EQ_STR(r.args[4], "-b");
    }
    T_EQ_STR(argv[0], "projector");
    T_EQ_STR(argv[1], "--batch");
    T_ASSERT(argv[10] == NULL);
    run_free(&r);

    r = parse(ARGV("only"));
    T_EQ_INT(r.nargs, 1);
    T_EQ_STR(r.args[0], "only");
    run_free(&r);
}

/* Asking for an option the table lacks, or with the wrong getter, aborts. */
static void test_getter_misuse(void)
{
    clear_env();
    run r = parse(ARGV0);
    for (int which = 0; which < 2; which++) {
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            if (which == 0) (void)ct_config_int(r.c, "no-such-option");
            else (void)ct_config_int(r.c, "nats");
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        T_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    }
    run_free(&r);
}

static int64_t dur(const char *s)
{
    int64_t v = -12345;
    return ct_parse_duration_ns(s, &v) == 0 ? v : -1;
}

/* The nesting bound read on raw JSON text: brackets inside strings (escaped quotes too) do not count. */
static void test_json_depth(void)
{
    T_EQ_INT(ct_json_too_deep("", 0, 2), 0);
    T_EQ_INT(ct_json_too_deep("[[]]", 4, 2), 0);
    T_EQ_INT(ct_json_too_deep("[[[]]]", 6, 2), 3);
    T_EQ_INT(ct_json_too_deep("{\"a\":{\"b\":[1]}}", 16, 3), 0);
    T_EQ_INT(ct_json_too_deep("{\"a\":{\"b\":[1]}}", 16, 2), 11);
    T_EQ_INT(ct_json_too_deep("[\"[[[[\"]", 8, 1), 0);
    T_EQ_INT(ct_json_too_deep("[\"\\\"[[[\"]", 9, 1), 0);   /* ["\"[[["] */
    T_EQ_INT(ct_json_too_deep("[\"\\\\\",[[", 8, 2), 8);    /* ["\\",[[ : the string ends after \\ */
    T_EQ_INT(ct_json_too_deep("]]]][[", 6, 1), 6);           /* closing brackets never go below zero */
    T_EQ_INT(ct_json_too_deep("[[[", 2, 2), 0);              /* only n bytes are read */
}

static void test_durations(void)
{
    T_EQ_INT(dur("250ms"), 250000000LL);
    T_EQ_INT(dur("90s"), 90000000000LL);
    T_EQ_INT(dur("15m"), 900000000000LL);
    T_EQ_INT(dur("2h"), 7200000000000LL);
    T_EQ_INT(dur("1d"), 86400000000000LL);
    T_EQ_INT(dur("1h30m"), 5400000000000LL);
    T_EQ_INT(dur("1m30s500ms"), 90500000000LL);
    T_EQ_INT(dur("0"), 0);
    T_EQ_INT(dur("0s"), 0);
    T_EQ_INT(dur("90"), 90000000000LL);
    T_EQ_INT(dur("7ns"), 7);
    T_EQ_INT(dur("3us"), 3000);
    T_EQ_INT(dur("3\xc2\xb5s"), 3000);
    T_EQ_INT(dur("106751d"), 106751LL * 86400 * 1000000000);
    T_EQ_INT(dur("9223372036854775807ns"), INT64_MAX);
    T_EQ_INT(dur("9223372036"), 9223372036000000000LL);

    const char *bad[] = {"", "5x", "-1s", "-1", "+1s", "1h30", "s", "1.5s", " 1s", "1s ", "1 s", "1S", "ms",
                         "106752d", "106751d1d", "9223372037", "9223372036854775808ns", "99999999999999999999s",
                         NULL};
    for (const char **b = bad; *b; b++) {
        int64_t v = -7;
        test_checks++;
        if (ct_parse_duration_ns(*b, &v) != -1 || v != -7) {
            fprintf(stderr, "%s:%d: FAIL: duration \"%s\" accepted as %" PRId64 "\n", __FILE__, __LINE__, *b, v);
            test_failures++;
        }
    }
    T_EQ_INT(ct_parse_duration_ns(NULL, &(int64_t){0}), -1);
}

static void test_sizes(void)
{
    struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"512", 512},
        {"0", 0},
        {"512B", 512},
        {"64KiB", 65536},
        {"10MiB", 10485760},
        {"1GiB", 1073741824ULL},
        {"2TiB", 2199023255552ULL},
        {"1KB", 1000},
        {"1kb", 1000},
        {"5MB", 5000000},
        {"1GB", 1000000000ULL},
        {"3TB", 3000000000000ULL},
        {"8192PiB", 1ULL << 63},
        {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 7;
        test_checks++;
        if (ct_parse_size(good[i].s, &v) != 0 || v != good[i].v) {
            fprintf(stderr, "%s:%d: FAIL: size \"%s\" = %" PRIu64 ", want %" PRIu64 "\n", __FILE__, __LINE__,
                    good[i].s, v, good[i].v);
            test_failures++;
        }
    }
    const char *bad[] = {"", "5x", "-1", "1.5GiB", "KiB", " 1", "1 KiB", "1K", "1KiBB", "16384PiB",
                         "18446744073709551616", "20000000PB", NULL};
    for (const char **b = bad; *b; b++) {
        uint64_t v = 7;
        test_checks++;
        if (ct_parse_size(*b, &v) != -1 || v != 7) {
            fprintf(stderr, "%s:%d: FAIL: size \"%s\" accepted as %" PRIu64 "\n", __FILE__, __LINE__, *b, v);
            test_failures++;
        }
    }
}

static void test_ints(void)
{
    int64_t v = 0;
    T_EQ_INT(ct_parse_int("0", &v), 0);
    T_EQ_INT(v, 0);
    T_EQ_INT(ct_parse_int("-5", &v), 0);
    T_EQ_INT(v, -5);
    T_EQ_INT(ct_parse_int("007", &v), 0);
    T_EQ_INT(v, 7);
    T_EQ_INT(ct_parse_int("9223372036854775807", &v), 0);
    T_ASSERT(v == INT64_MAX);
    T_EQ_INT(ct_parse_int("-9223372036854775808", &v), 0);
    T_ASSERT(v == INT64_MIN);
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "12a", "0x10", "9223372036854775808", "-9223372036854775809",
                         "1e3", NULL};
    for (const char **b = bad; *b; b++) {
        v = 42;
        test_checks++;
        if (ct_parse_int(*b, &v) != -1 || v != 42) {
            fprintf(stderr, "%s:%d: FAIL: int \"%s\" accepted as %" PRId64 "\n", __FILE__, __LINE__, *b, v);
            test_failures++;
        }
    }
}

int main(void)
{
    T_RUN(test_getter_misuse); /* first: its children abort, and should hold nothing setenv allocated */
    T_RUN(test_defaults);
    T_RUN(test_precedence);
    T_RUN(test_errors);
    T_RUN(test_crlf);
    T_RUN(test_bad_table);
    T_RUN(test_help);
    T_RUN(test_repeat);
    T_RUN(test_secret);
    T_RUN(test_positional);
    T_RUN(test_durations);
    T_RUN(test_json_depth);
    T_RUN(test_sizes);
    T_RUN(test_ints);
    return t_done();
}
