/* Unit tests of observability in common/: JSON log lines, latency histograms, /proc parsing, the build's identity. */
#include "ct.h"
#include "ct_metrics.h"
#include "ct_version.h"
#include "test.h"

#include <fcntl.h>
#include <jansson.h>

/* ---- stderr captured into a temporary file ---- */

typedef struct capture {
    int saved;
    char path[64];
} capture;

static void cap_start(capture *cp)
{
    fflush(stderr);
    snprintf(cp->path, sizeof cp->path, "/tmp/tower-obs-XXXXXX");
    int t = mkstemp(cp->path);
    if (t < 0) {
        perror("mkstemp");
        exit(2);
    }
    cp->saved = dup(2);
    dup2(t, 2);
    close(t);
}

static char *cap_end(capture *cp)
{
    fflush(stderr);
    dup2(cp->saved, 2);
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

/* ---- logs ---- */

/* One JSON log line: exactly the four keys, the level and module given; its msg for the caller to free. */
static char *check_json_line(const char *line, const char *level, const char *module)
{
    json_error_t err;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        T_FAIL("not JSON (%s): %s", err.text, line);
        return ct_strdup("");
    }
    T_EQ_INT(json_object_size(o), 4);
    const char *ts = json_string_value(json_object_get(o, "ts"));
    T_ASSERT(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z');
    T_EQ_STR(json_string_value(json_object_get(o, "level")), level);
    T_EQ_STR(json_string_value(json_object_get(o, "module")), module);
    const char *msg = json_string_value(json_object_get(o, "msg"));
    char *out = ct_strdup(msg ? msg : "");
    json_decref(o);
    return out;
}

static void test_log_json(void)
{
    ct_log_set_level(CT_LOG_INFO);
    ct_log_set_format(CT_LOG_JSON);
    capture cp;
    cap_start(&cp);
    ct_log(CT_LOG_INFO, "server", "plain %d", 42);
    ct_log(CT_LOG_WARN, "store", "quote \" backslash \\ newline\nsecond tab\t cr\r bell\a del\x7f");
    ct_log(CT_LOG_ERROR, "sla", "utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x9a bad \xff \xc3 \xed\xa0\x80 end");
    ct_log(CT_LOG_DEBUG, "projector", "below the level: not written");
    ct_log(CT_LOG_INFO, "mod\"ule", "%s", "");
    char *out = cap_end(&cp);
    ct_log_set_format(CT_LOG_TEXT);

    const char *want[][3] = {
        {"info", "server", "plain 42"},
        {"warn", "store", "quote \" backslash \\ newline\nsecond tab\t cr\r bell\a del\x7f"},
        {"error", "sla", "utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x9a bad \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end"},
        {"info", "mod\"ule", ""},
    };
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        if (n >= sizeof want / sizeof want[0]) {
            T_FAIL("an extra line: %s", line);
            break;
        }
        char *msg = check_json_line(line, want[n][0], want[n][1]);
        T_EQ_STR(msg, want[n][2]);
        free(msg);
    }
    T_EQ_INT(n, 4);
    free(out);
}

static void test_log_text(void)
{
    ct_log_set_format(CT_LOG_TEXT);
    capture cp;
    cap_start(&cp);
    ct_log(CT_LOG_WARN, "store", "as %s", "before");
    char *out = cap_end(&cp);
    const char *sp = strchr(out, ' ');
    T_ASSERT(sp && sp - out == 24);
    T_EQ_STR(sp ? sp + 1 : out, "warn  store: as before\n");
    free(out);
}

/* ---- histograms ---- */

static void test_hist_slots(void)
{
    const int64_t ms = 1000000;
    T_EQ_INT(ct_hist_slot(0), 0);
    T_EQ_INT(ct_hist_slot(ms), 0); /* le is inclusive */
    T_EQ_INT(ct_hist_slot(ms + 1), 1);
    T_EQ_INT(ct_hist_slot(10 * ms), 2);
    T_EQ_INT(ct_hist_slot(1000 * ms), 6);
    T_EQ_INT(ct_hist_slot(5000 * ms), 7);
    T_EQ_INT(ct_hist_slot(5000 * ms + 1), CT_HIST_BOUNDS);
    T_EQ_INT(ct_hist_slot(INT64_MAX), CT_HIST_BOUNDS);
}

static void test_hist_text(void)
{
    ct_hist h;
    memset(&h, 0, sizeof h);
    const int64_t ms = 1000000;
    int64_t obs[] = {-5, ms / 2, 3 * ms, 3 * ms, 70 * ms, 2000 * ms, 9000 * ms};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) ct_hist_observe(&h, obs[i]);
    uint64_t n[CT_HIST_SLOTS], sum;
    ct_hist_snapshot(&h, n, &sum);
    T_EQ_INT(sum, (uint64_t)(ms / 2 + 6 * ms + 70 * ms + 11000 * ms));
    ct_buf b = {0};
    ct_metrics_hist(&b, "x_seconds", "route=\"views\"", n, sum);
    T_EQ_STR(b.data, "x_seconds_bucket{route=\"views\",le=\"0.001\"} 2\n"
                     "x_seconds_bucket{route=\"views\",le=\"0.005\"} 4\n"
                     "x_seconds_bucket{route=\"views\",le=\"0.01\"} 4\n"
                     "x_seconds_bucket{route=\"views\",le=\"0.05\"} 4\n"
                     "x_seconds_bucket{route=\"views\",le=\"0.1\"} 5\n"
                     "x_seconds_bucket{route=\"views\",le=\"0.5\"} 5\n"
                     "x_seconds_bucket{route=\"views\",le=\"1\"} 5\n"
                     "x_seconds_bucket{route=\"views\",le=\"5\"} 6\n"
                     "x_seconds_bucket{route=\"views\",le=\"+Inf\"} 7\n"
                     "x_seconds_sum{route=\"views\"} 11.076500000\n"
                     "x_seconds_count{route=\"views\"} 7\n");
    ct_buf_reset(&b);
    uint64_t zero[CT_HIST_SLOTS] = {0};
    ct_metrics_hist(&b, "y", "", zero, 0);
    T_ASSERT(strstr(b.data, "y_bucket{le=\"+Inf\"} 0\ny_sum 0.000000000\ny_count 0\n") != NULL);
    ct_buf_free(&b);
}

/* ---- the process ---- */

static void test_proc_stat(void)
{
    /* A command name with spaces and a parenthesis, as proc(5) allows. */
    const char *stat = "4242 (tow) er d) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 7 0 12345 "
                       "1000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    ct_proc_stat ps = {0};
    T_EQ_INT(ct_proc_stat_parse(stat, 100, 4096, 1700000000, &ps), 0);
    T_ASSERT(ps.cpu_seconds == 4.0);
    T_ASSERT(ps.start_seconds == 1700000000.0 + 123.45);
    T_EQ_INT(ps.vsize_bytes, 1000000);
    T_EQ_INT(ps.rss_bytes, 300 * 4096);
    ct_proc_stat untouched = {1, 2, 3, 4};
    T_EQ_INT(ct_proc_stat_parse("4242 (x) S 1 2 3", 100, 4096, 0, &untouched), -1);
    T_EQ_INT(untouched.rss_bytes, 3);
    T_EQ_INT(ct_proc_stat_parse("no parenthesis", 100, 4096, 0, &untouched), -1);
}

/* The value of an unlabelled sample in Prometheus text, or -1. */
static double sample(const char *text, const char *name)
{
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static void test_process_metrics(void)
{
    ct_buf a = {0}, b = {0};
    ct_metrics_process(&a);
    int fd = open("/dev/null", O_RDONLY);
    ct_metrics_process(&b);
    close(fd);
    double fds = sample(a.data, "process_open_fds");
    T_ASSERT(fds > 0);
    T_ASSERT(sample(b.data, "process_open_fds") == fds + 1);
    T_ASSERT(sample(a.data, "process_resident_memory_bytes") > 0);
    T_ASSERT(sample(a.data, "process_cpu_seconds_total") >= 0);
    double start = sample(a.data, "process_start_time_seconds");
    T_ASSERT(start > 1e9 && start <= (double)ct_wall_ns() / 1e9 + 1);
    T_ASSERT(strstr(a.data, "# TYPE process_cpu_seconds_total counter\n") != NULL);
    ct_buf_free(&a);
    ct_buf_free(&b);
}

/* ---- the build ---- */

static void test_version(void)
{
    T_EQ_STR(ct_version(), TOWER_PROJECT_VERSION);
    const char *commit = ct_version_commit();
    T_ASSERT(*commit);
    for (const char *p = commit; *p; p++) T_ASSERT(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", *p));
    /* The contract's major version is the one of the .proto's package (tower.vN). */
    const char *src = getenv("TOWER_SOURCE_DIR");
    char *path = ct_sprintf("%s/proto/tower/v1/event.proto", src ? src : ".");
    FILE *f = fopen(path, "r");
    T_ASSERT(f != NULL);
    char line[512], major[16] = "";
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "package tower.v%15[0-9];", major) == 1) break;
    if (f) fclose(f);
    free(path);
    char *want = ct_sprintf("%s.", major);
    T_ASSERT(*major && !strncmp(ct_version_contract(), want, strlen(want)));
    free(want);
    ct_buf b = {0};
    ct_metrics_build_info(&b);
    char *info = ct_sprintf("tower_build_info{version=\"%s\",commit=\"%s\",contract=\"%s\"} 1\n", ct_version(), commit,
                            ct_version_contract());
    T_ASSERT(strstr(b.data, info) != NULL);
    free(info);
    ct_buf_free(&b);
}

int main(void)
{
    T_RUN(test_log_json);
    T_RUN(test_log_text);
    T_RUN(test_hist_slots);
    T_RUN(test_hist_text);
    T_RUN(test_proc_stat);
    T_RUN(test_process_metrics);
    T_RUN(test_version);
    return t_done();
}
