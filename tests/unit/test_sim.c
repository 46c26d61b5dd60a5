/* Unit tests of the simulators' ground: the warped clock, each record's reporting system, run tags, dry runs. */
#include "sim_run.h"
#include "test.h"

#include <jansson.h>
#include <math.h>

static sim_trace *make(uint32_t orders, uint64_t seed, uint32_t run)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = orders;
    o.seed = seed;
    o.run = run;
    sim_trace *t = NULL;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    return t;
}

/* ct_now_ns() follows origin + (wall - origin) * factor, bracketed by two wall readings. */
static void test_clock(void)
{
    T_ASSERT(ct_clock_factor() == 1.0);
    int64_t w0 = ct_wall_ns(), n = ct_now_ns(), w1 = ct_wall_ns();
    T_ASSERT(w0 <= n && n <= w1);

    int64_t origin = ct_wall_ns() - 10 * 1000000000LL;
    ct_clock_set(origin, 60);
    T_ASSERT(ct_clock_factor() == 60.0);
    w0 = ct_wall_ns();
    n = ct_now_ns();
    w1 = ct_wall_ns();
    /* The warped "now" lies between the warped images of the wall readings around it (1 ns of rounding). */
    T_ASSERT(n >= origin + (w0 - origin) * 60 - 1);
    T_ASSERT(n <= origin + (w1 - origin) * 60 + 1);
    T_ASSERT(n - w1 >= 580LL * 1000000000LL); /* ten real seconds after the origin: ten business minutes */
    int64_t later = ct_now_ns();
    T_ASSERT(later >= n);

    /* An origin in the future runs time forward too (from behind the wall clock). */
    ct_clock_set(ct_wall_ns() + 1000000000LL, 2);
    T_ASSERT(ct_now_ns() < ct_wall_ns());

    /* Factor 1, 0, negative or NaN: the plain wall clock again. */
    const double plain[] = {1, 0, -3, NAN};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        ct_clock_set(origin, 60);
        ct_clock_set(origin, plain[i]);
        T_ASSERT(ct_clock_factor() == 1.0);
        w0 = ct_wall_ns();
        n = ct_now_ns();
        w1 = ct_wall_ns();
        T_ASSERT(w0 <= n && n <= w1);
    }
}

/* Every record names, in its envelope, the system instance it is dispatched to. */
static void test_sources(void)
{
    sim_trace *t = make(400, 3, 0);
    int n = sim_trace_source_count(t);
    T_EQ_INT(n, 4 + 3 + 5); /* ERP, planner, finance, tower, 3 WMS, 5 carriers */
    int *used = calloc((size_t)n, sizeof *used);
    const char *systems[] = {"erp", "tms", "finance", "tower", "wms", "carrier"};
    for (int i = 0; i < n; i++) {
        sim_source s;
        sim_trace_source_get(t, i, &s);
        int known = 0;
        for (size_t k = 0; k < sizeof systems / sizeof systems[0]; k++) known |= strcmp(s.system, systems[k]) == 0;
        T_ASSERT(known);
        for (int j = 0; j < i; j++) {
            sim_source o;
            sim_trace_source_get(t, j, &o);
            T_ASSERT(strcmp(o.instance, s.instance) != 0); /* one publisher per instance */
        }
    }
    sim_record r;
    size_t checked = 0, mismatched = 0, bad_checked = 0;
    while (sim_trace_next(t, &r)) {
        if (r.source < 0 || r.source >= n) {
            T_FAIL("record source %d out of range", r.source);
            break;
        }
        used[r.source]++;
        json_t *j = json_loads(r.line, 0, NULL);
        json_t *src = j ? json_object_get(j, "source") : NULL;
        const char *inst = json_string_value(json_object_get(src, "instance"));
        const char *sys = json_string_value(json_object_get(src, "system"));
        if (inst) {
            sim_source s;
            sim_trace_source_get(t, r.source, &s);
            checked++;
            bad_checked += r.kind == SIM_BAD;
            /* A bad record may name a system the contract does not know ("crm"): its instance still tells. */
            if (strcmp(inst, s.instance) != 0 || (r.kind != SIM_BAD && strcmp(sys ? sys : "", s.system) != 0)) {
                if (!mismatched++) T_FAIL("record from %s/%s dispatched to %s/%s: %s", sys, inst, s.system, s.instance, r.line);
            }
        }
        json_decref(j);
    }
    T_EQ_INT(mismatched, 0);
    T_ASSERT(checked > 4000);
    T_ASSERT(bad_checked > 0);
    for (int i = 0; i < n; i++) {
        sim_source s;
        sim_trace_source_get(t, i, &s);
        if (!used[i]) T_FAIL("instance %s reported nothing in 400 orders", s.instance);
    }
    free(used);
    sim_trace_destroy(t);
}

/* Remove every "R<run>-" the run tag put in a line. */
static void untag(char *s, const char *tag)
{
    size_t n = strlen(tag);
    for (char *p = strstr(s, tag); p; p = strstr(p, tag)) memmove(p, p + n, strlen(p + n) + 1);
}

/* A run tag changes the ids and nothing else: same records, kinds, sources and times. */
static void test_run_tag(void)
{
    sim_trace *a = make(300, 9, 0), *b = make(300, 9, 17);
    sim_record ra, rb;
    size_t n = 0, tagged = 0, same_after_untag = 0, valid = 0;
    for (;;) {
        int ha = sim_trace_next(a, &ra), hb = sim_trace_next(b, &rb);
        T_EQ_INT(ha, hb);
        if (!ha || !hb) break;
        n++;
        T_EQ_INT(ra.kind, rb.kind);
        T_EQ_INT(ra.source, rb.source);
        T_EQ_INT(ra.emit_ns, rb.emit_ns);
        T_ASSERT(strstr(ra.line, "R17-") == NULL);
        if (strstr(rb.line, "R17-")) tagged++;
        if (rb.kind == SIM_BAD) continue; /* a truncated record is cut at a share of its (longer) length */
        valid++;
        char *u = ct_strdup(rb.line);
        untag(u, "R17-");
        if (strcmp(u, ra.line) == 0)
            same_after_untag++;
        else if (same_after_untag + 1 == valid)
            T_FAIL("run 17 differs beyond its tag:\n  %s\n  %s", ra.line, rb.line);
        free(u);
        /* Every id of a valid record carries the tag. */
        json_t *j = json_loads(rb.line, 0, NULL);
        const char *keys[] = {"eventId", "orderId", "shipmentId", "routeId"};
        for (size_t k = 0; k < 4; k++) {
            const char *v = json_string_value(json_object_get(j, keys[k]));
            if (v && !strstr(v, "R17-")) T_FAIL("%s %s lacks the run tag", keys[k], v);
        }
        json_decref(j);
    }
    T_ASSERT(n > 3000);
    T_EQ_INT(same_after_untag, valid);
    T_ASSERT(tagged >= valid);
    sim_trace_destroy(a);
    sim_trace_destroy(b);
}

/* A live run starts its trace at "now" rounded down to a minute: the story is the dry run's, shifted. */
static void test_start_shift(void)
{
    sim_trace_opts a;
    sim_trace_opts_default(&a);
    a.orders = 200;
    a.orders_per_minute = 0.5;
    sim_trace_opts b = a;
    b.start_ns = a.start_ns + (3 * 1440 + 17 * 60 + 7) * 60000000000LL; /* another day and time of day */
    sim_trace *ta = NULL, *tb = NULL;
    T_EQ_INT(sim_trace_create(&ta, &a), CT_OK);
    T_EQ_INT(sim_trace_create(&tb, &b), CT_OK);
    sim_record ra, rb;
    size_t n = 0;
    for (;;) {
        int ha = sim_trace_next(ta, &ra), hb = sim_trace_next(tb, &rb);
        T_EQ_INT(ha, hb);
        if (!ha || !hb) break;
        n++;
        if (ra.kind != rb.kind || ra.source != rb.source || ra.emit_ns - a.start_ns != rb.emit_ns - b.start_ns) {
            T_FAIL("record %zu differs beyond its times:\n  %s\n  %s", n, ra.line, rb.line);
            break;
        }
    }
    T_ASSERT(n > 2000);
    sim_trace_destroy(ta);
    sim_trace_destroy(tb);
}

/* A dry run writes the generator's records (at rate / warp orders a minute), minus the tower's if asked. */
static void test_dry_run(void)
{
    for (int sla = 0; sla <= 1; sla++) {
        sim_run_opts o;
        sim_run_opts_default(&o);
        T_EQ_INT(o.trace.orders, 0);
        o.trace.orders = 150;
        o.trace.seed = 21;
        o.rate = 600;
        o.warp = 60;
        o.sla_breaches = sla;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        o.dry_run = f;
        sim_run_figures fig;
        volatile sig_atomic_t stop = 0;
        T_EQ_INT(sim_run(&o, &stop, &fig), CT_OK);
        fclose(f);
        T_ASSERT(fig.done);
        T_EQ_INT(fig.run, 0);

        sim_trace_opts to = o.trace;
        to.orders_per_minute = 10;
        sim_trace *t = NULL;
        T_EQ_INT(sim_trace_create(&t, &to), CT_OK);
        ct_buf want = {0};
        sim_record r;
        uint64_t records = 0, tower = 0;
        while (sim_trace_next(t, &r)) {
            sim_source s;
            sim_trace_source_get(t, r.source, &s);
            if (!sla && strcmp(s.system, "tower") == 0) {
                tower++;
                continue;
            }
            ct_buf_add(&want, r.line, r.len);
            ct_buf_addc(&want, '\n');
            records++;
        }
        T_EQ_INT(fig.records, records);
        T_EQ_INT(len, want.len);
        T_ASSERT(len == want.len && memcmp(buf, want.data, len) == 0);
        if (!sla) T_ASSERT(tower > 0);
        ct_buf_free(&want);
        sim_trace_destroy(t);
        free(buf);
    }

    /* Options out of range are refused before anything runs. */
    sim_run_opts o;
    sim_run_opts_default(&o);
    o.trace.orders = 10;
    o.dry_run = stdout;
    volatile sig_atomic_t stop = 0;
    o.rate = 0;
    T_EQ_INT(sim_run(&o, &stop, NULL), CT_INVALID);
    o.rate = 60;
    o.warp = NAN;
    T_EQ_INT(sim_run(&o, &stop, NULL), CT_INVALID);
    o.warp = 1;
    o.trace.p_block = 2;
    T_EQ_INT(sim_run(&o, &stop, NULL), CT_INVALID);
    /* Without a bus or a dry-run output there is nothing to publish to. */
    sim_run_opts_default(&o);
    T_EQ_INT(sim_run(&o, &stop, NULL), CT_INVALID);
}

int main(void)
{
    T_RUN(test_clock);
    T_RUN(test_sources);
    T_RUN(test_run_tag);
    T_RUN(test_start_shift);
    T_RUN(test_dry_run);
    return t_done();
}
