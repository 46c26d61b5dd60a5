/* Prometheus text shared by the services: latency histograms, the process's own figures, build info. */
#include "ct_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ct_version.h"

/* The bounds in nanoseconds (compared exactly) and as the `le` label prints them. */
static const int64_t bound_ns[CT_HIST_BOUNDS] = {1000000LL,   5000000LL,   10000000LL,   50000000LL,
                                                 100000000LL, 500000000LL, 1000000000LL, 5000000000LL};
static const char *const bound_le[CT_HIST_BOUNDS] = {"0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5"};

int ct_hist_slot(int64_t ns)
{
    int i = 0;
    while (i < CT_HIST_BOUNDS && ns > bound_ns[i]) i++;
    return i;
}

void ct_hist_observe(ct_hist *h, int64_t ns)
{
    if (ns < 0) ns = 0;
    atomic_fetch_add_explicit(&h->n[ct_hist_slot(ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
}

void ct_hist_snapshot(const ct_hist *h, uint64_t n[CT_HIST_SLOTS], uint64_t *sum_ns)
{
    for (int i = 0; i < CT_HIST_SLOTS; i++) n[i] = atomic_load_explicit(&h->n[i], memory_order_relaxed);
    *sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}

void ct_metrics_family(ct_buf *b, const char *name, const char *type, const char *help)
{
    ct_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ct_metrics_hist(ct_buf *b, const char *name, const char *labels, const uint64_t n[CT_HIST_SLOTS], uint64_t sum_ns)
{
    const char *sep = *labels ? "," : "";
    uint64_t total = 0;
    for (int i = 0; i < CT_HIST_SLOTS; i++) {
        total += n[i];
        ct_buf_addf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, i < CT_HIST_BOUNDS ? bound_le[i] : "+Inf",
                    (unsigned long long)total);
    }
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    ct_buf_addf(b, "%s_sum%s%s%s %.9f\n", name, open, labels, close, (double)sum_ns / 1e9);
    ct_buf_addf(b, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)total);
}

/* ---- the process ------------------------------------------------------------------------------- */

int ct_proc_stat_parse(const char *stat, long ticks, long page, uint64_t boot_seconds, ct_proc_stat *out)
{
    /* Fields from the third (state) on follow the last ')': the name may hold anything. */
    const char *p = stat ? strrchr(stat, ')') : NULL;
    if (!p || ticks <= 0 || page <= 0) return -1;
    unsigned long long f[22];
    int n = 0;
    for (p++; n < 22; n++) {
        while (*p == ' ') p++;
        if (!*p || *p == '\n') break;
        f[n] = strtoull(p, NULL, 10); /* the state letter reads as 0: unused */
        while (*p && *p != ' ' && *p != '\n') p++;
    }
    if (n < 22) return -1;
    /* Index k holds field k + 3 of proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24. */
    out->cpu_seconds = (double)(f[11] + f[12]) / (double)ticks;
    out->start_seconds = (double)boot_seconds + (double)f[19] / (double)ticks;
    out->vsize_bytes = f[20];
    out->rss_bytes = f[21] * (uint64_t)page;
    return 0;
}

/* The whole of a small /proc file, NUL-terminated (NULL when unreadable); the caller frees. */
static char *read_proc(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    ct_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ct_buf_add(&b, chunk, n);
    fclose(f);
    return b.data ? b.data : ct_strdup("");
}

static uint64_t boot_seconds(void)
{
    char *text = read_proc("/proc/stat");
    const char *p = text ? strstr(text, "\nbtime ") : NULL;
    uint64_t v = p ? strtoull(p + 7, NULL, 10) : 0;
    free(text);
    return v;
}

/* Descriptors open now, the directory's own excepted; -1 when /proc is not there. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
}

void ct_metrics_process(ct_buf *b)
{
    char *text = read_proc("/proc/self/stat");
    ct_proc_stat ps;
    if (text && ct_proc_stat_parse(text, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_seconds(), &ps) == 0) {
        ct_metrics_family(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        ct_buf_addf(b, "process_cpu_seconds_total %.2f\n", ps.cpu_seconds);
        ct_metrics_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        ct_buf_addf(b, "process_resident_memory_bytes %llu\n", (unsigned long long)ps.rss_bytes);
        ct_metrics_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        ct_buf_addf(b, "process_virtual_memory_bytes %llu\n", (unsigned long long)ps.vsize_bytes);
        ct_metrics_family(b, "process_start_time_seconds", "gauge",
                          "Start time of the process since unix epoch in seconds.");
        ct_buf_addf(b, "process_start_time_seconds %.2f\n", ps.start_seconds);
    }
    free(text);
    long fds = open_fds();
    if (fds >= 0) {
        ct_metrics_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        ct_buf_addf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        ct_metrics_family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        ct_buf_addf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

void ct_metrics_build_info(ct_buf *b)
{
    /* The three values are [A-Za-z0-9._+-] (version.cmake keeps only such a commit): no escaping needed. */
    ct_metrics_family(b, "tower_build_info", "gauge", "The build: version, git commit and event contract version; always 1.");
    ct_buf_addf(b, "tower_build_info{version=\"%s\",commit=\"%s\",contract=\"%s\"} 1\n", ct_version(),
                ct_version_commit(), ct_version_contract());
}
