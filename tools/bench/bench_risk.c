/* Backtest of the predicted delivery risk (docs/risk.md): a seeded simulated week of orders, replayed in
 * business-time order; every open order is evaluated every N minutes with the statistics learned so far
 * (services/risk), and the decisions are scored against what happened, beside the naive baseline (flag
 * an order when one of its SLAs breaches) in the same run. No clock, no I/O but stdout: same seed, same
 * figures. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "risk.h"

#define MIN 60
#define HOUR 3600
#define START INT64_C(1795996800) /* Monday 2026-11-30T00:00:00Z */
#define NWH 3
#define NCA 3
#define LEAD_WANTED (2 * HOUR)    /* a useful warning comes at least this long before promisedBy */

static const char *const WH[NWH] = {"dc-1", "dc-2", "dc-3"};
static const char *const CA[NCA] = {"dhl", "ups", "gls"};
enum { ECOM, EDI, SERVICE };
static const int64_t PROMISE[3] = {60 * HOUR, 84 * HOUR, 48 * HOUR};

typedef struct {
    int days, warmup, per_day, every_min, bad_days;
    uint64_t seed;
} sim_opts;

typedef struct {
    int64_t created, promised, delivered, cancelled, naive_flag;
    int64_t entered[RISK_STAGE_COUNT];
    int wh, ca, ch;
} order;

/* ---- the seeded generator ---- */

static uint64_t rng;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(void) { return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0; }
static double normal(void) { return sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif()); }
static int64_t lognorm(double median_s, double sigma) { return (int64_t)(median_s * exp(sigma * normal())); }
static int pick(const int *weights, int n)
{
    int total = 0, r;
    for (int i = 0; i < n; i++) total += weights[i];
    r = (int)(rnd() % (uint64_t)total);
    for (int i = 0; i < n; i++)
        if ((r -= weights[i]) < 0) return i;
    return n - 1;
}
static int day_index(int64_t t) { return (int)((t - START) / RISK_DAY); }

/* t, or the start of the next working window [from_h, to_h) of the day. */
static int64_t in_shift(int64_t t, int from_h, int to_h)
{
    int64_t sec = t % RISK_DAY, midnight = t - sec;
    if (sec < from_h * HOUR) return midnight + from_h * HOUR;
    if (sec >= to_h * HOUR) return midnight + RISK_DAY + from_h * HOUR;
    return t;
}

/* The carrier's next pickup at or after t: dhl at 11:00 and 17:00, ups at 14:00, gls at 12:00 and
 * 19:00; on a bad day (day 5) ups has an outage and picks nothing up. */
static int64_t next_pickup(int ca, int64_t t, int bad_days)
{
    static const int hours[NCA][2] = {{11, 17}, {14, 14}, {12, 19}};
    for (int64_t d = t / RISK_DAY;; d++) {
        if (bad_days && ca == 1 && day_index(d * RISK_DAY) == 5) continue;
        for (int k = 0; k < 2; k++) {
            int64_t p = d * RISK_DAY + hours[ca][k] * HOUR;
            if (p >= t) return p;
        }
    }
}

/* The earliest built-in SLA breach (release 15m, readiness 4h, routing 1h) of a delivered order, or 0. */
static int64_t naive_breach(const order *o)
{
    int64_t due[3] = {0, 0, 0};
    if (o->entered[RISK_RELEASED] - o->entered[RISK_APPROVED] > 15 * MIN) due[0] = o->entered[RISK_APPROVED] + 15 * MIN;
    if (o->entered[RISK_READY] - o->entered[RISK_RELEASED] > 4 * HOUR) due[1] = o->entered[RISK_RELEASED] + 4 * HOUR;
    if (o->entered[RISK_ROUTED] - o->entered[RISK_READY] > HOUR) due[2] = o->entered[RISK_READY] + HOUR;
    int64_t first = 0;
    for (int i = 0; i < 3; i++)
        if (due[i] && (!first || due[i] < first)) first = due[i];
    return first;
}

/* The warehouse steps: approval, release, the pick queue (dc-2's backlog on day 3), pick, pack, ready. */
static int64_t warehouse_steps(order *o, int64_t t, int bad_days)
{
    static const double approve[3] = {5 * MIN, 40 * MIN, 15 * MIN};
    static const double queue[NWH] = {30 * MIN, 45 * MIN, 60 * MIN}, pickt[NWH] = {20 * MIN, 30 * MIN, 40 * MIN};
    t += lognorm(approve[o->ch], 0.7);
    if (rnd() % 100 < 3) t += lognorm(6 * HOUR, 0.8); /* a credit hold */
    o->entered[RISK_APPROVED] = t;
    t += lognorm(4 * MIN, 0.7);
    o->entered[RISK_RELEASED] = t;
    int backlog = bad_days && o->wh == 1 && day_index(t) == 3;
    t = in_shift(t + lognorm(queue[o->wh] * (backlog ? 10 : 1), 0.6), 6, 22);
    o->entered[RISK_PICKING] = t;
    t = in_shift(t + lognorm(pickt[o->wh] * (backlog ? 2 : 1), 0.5), 6, 22);
    o->entered[RISK_PACKED] = t;
    t = in_shift(t + lognorm(15 * MIN, 0.5), 6, 22);
    o->entered[RISK_READY] = t;
    return t;
}

/* Routing, the carrier's pickup, transit (deliveries between 08:00 and 20:00), a cancellation now and then. */
static void carrier_steps(order *o, int64_t t, int bad_days)
{
    static const double transit[NCA] = {18 * HOUR, 22 * HOUR, 28 * HOUR}, sigma[NCA] = {0.35, 0.45, 0.5};
    t += lognorm(20 * MIN, 0.6);
    if (rnd() % 100 < 2) t += lognorm(3 * HOUR, 0.5); /* a failed route, planned again */
    o->entered[RISK_ROUTED] = t;
    t = next_pickup(o->ca, t + 30 * MIN, bad_days);
    o->entered[RISK_SHIPPED] = t;
    o->delivered = in_shift(t + lognorm(transit[o->ca], sigma[o->ca]), 8, 20);
    if (rnd() % 100 == 0) { /* cancelled before it shipped: it leaves, unscored */
        o->cancelled = o->created + (int64_t)(unif() * (double)(o->entered[RISK_SHIPPED] - o->created));
        o->delivered = 0;
    }
}

static void gen_order(order *o, int day, int bad_days)
{
    static const int wh_w[NWH] = {40, 35, 25}, ch_w[3] = {60, 25, 15};
    static const int ca_w[NWH][NCA] = {{50, 30, 20}, {30, 40, 30}, {20, 30, 50}};
    memset(o, 0, sizeof *o);
    double sec = rnd() % 4 ? 8 * HOUR + unif() * 12 * HOUR : unif() * 24 * HOUR;
    o->created = START + (int64_t)day * RISK_DAY + (int64_t)sec;
    o->ch = pick(ch_w, 3);
    o->wh = pick(wh_w, NWH);
    o->ca = pick(ca_w[o->wh], NCA);
    o->promised = o->created + PROMISE[o->ch];
    o->entered[RISK_CREATED] = o->created;
    carrier_steps(o, warehouse_steps(o, o->created, bad_days), bad_days);
    o->naive_flag = naive_breach(o);
}

static int by_created(const void *a, const void *b)
{
    const order *x = a, *y = b;
    return (x->created > y->created) - (x->created < y->created);
}

static order *generate(const sim_opts *so, size_t *n)
{
    *n = (size_t)so->days * (size_t)so->per_day;
    order *o = calloc(*n, sizeof *o);
    if (!o) return NULL;
    rng = so->seed;
    for (size_t i = 0; i < *n; i++) gen_order(&o[i], (int)(i / (size_t)so->per_day), so->bad_days);
    qsort(o, *n, sizeof *o, by_created);
    return o;
}

/* ---- the replay ---- */

typedef struct {
    risk_hyst hyst;
    int raw_at_risk;
    int64_t first_flag;   /* first raise before promisedBy, 0 = none */
    int first_stage;      /* the stage it waited in then */
    int changes, raw_changes, raises;
} eval_state;

typedef struct {
    risk_config rc;
    risk_hyst_config hc;
} params;

typedef struct {
    int scored, late, flagged, flagged_late, early_late, naive_flagged, naive_flagged_late, naive_early_late;
    long changes, raw_changes, raises, predictions, by_level[3];
    int flag_stage[RISK_STAGE_COUNT], flag_stage_late[RISK_STAGE_COUNT];
    int64_t *leads, *naive_leads;
    int nleads, nnaive_leads;
} results;

typedef struct {
    const order *o;
    size_t n;
    size_t *by_delivery; /* indexes of delivered orders in delivery order */
    size_t nd;
} trace;

static int by_delivery_cmp(const void *a, const void *b, void *ctx)
{
    const order *o = ctx;
    int64_t x = o[*(const size_t *)a].delivered, y = o[*(const size_t *)b].delivered;
    return (x > y) - (x < y);
}

/* The windows of every key the simulated orders can ask for, refreshed when the statistics change. */
typedef struct {
    risk_hist wh[RISK_STAGE_COUNT][NWH], ca[RISK_STAGE_COUNT][NWH][NCA];
} window_cache;

static void refresh(window_cache *wc, const risk_stats *st, int64_t now)
{
    for (int s = 0; s < RISK_STAGE_COUNT; s++)
        for (int w = 0; w < NWH; w++) {
            risk_stats_window(st, (risk_stage)s, WH[w], NULL, now, &wc->wh[s][w]);
            for (int c = 0; c < NCA; c++) risk_stats_window(st, (risk_stage)s, WH[w], CA[c], now, &wc->ca[s][w][c]);
        }
}

static int learn(risk_stats *st, const trace *tr, size_t *next, int64_t now)
{
    int added = 0;
    for (; *next < tr->nd && tr->o[tr->by_delivery[*next]].delivered <= now; (*next)++) {
        const order *o = &tr->o[tr->by_delivery[*next]];
        risk_sample s = {.warehouse = WH[o->wh], .carrier = CA[o->ca], .delivered_at = o->delivered};
        memcpy(s.entered, o->entered, sizeof s.entered);
        char err[128];
        if (risk_stats_add(st, &s, err, sizeof err) < 0) {
            fprintf(stderr, "bench_risk: %s\n", err);
            exit(1);
        }
        added = 1;
    }
    return added;
}

static risk_stage stage_at(const order *o, int64_t now)
{
    int s = RISK_CREATED;
    while (s + 1 < RISK_STAGE_COUNT && o->entered[s + 1] <= now) s++;
    return (risk_stage)s;
}

static void evaluate(const order *o, eval_state *e, const window_cache *wc, const params *p, int64_t now,
                     results *r)
{
    risk_stage s = stage_at(o, now);
    int known = s >= RISK_ROUTED; /* the carrier is known once the route is planned */
    risk_query q = {.stage = s, .entered_at = o->entered[s], .warehouse = WH[o->wh],
                    .carrier = known ? CA[o->ca] : NULL, .promised_by = o->promised, .now = now};
    risk_prediction pr;
    char err[128];
    if (risk_predict_hist(known ? &wc->ca[s][o->wh][o->ca] : NULL, &wc->wh[s][o->wh], &p->rc, &q, &pr, err,
                          sizeof err) != 0) {
        fprintf(stderr, "bench_risk: %s\n", err);
        exit(1);
    }
    r->predictions++;
    r->by_level[pr.level]++;
    risk_change ch = risk_hyst_step(&e->hyst, &p->hc, now, pr.slack);
    if (ch != RISK_NO_CHANGE) e->changes++;
    if (ch == RISK_RAISE) e->raises++;
    if (ch == RISK_RAISE && !e->first_flag && now < o->promised) e->first_flag = now, e->first_stage = s;
    int raw = pr.slack < p->hc.raise_below;
    if (raw != e->raw_at_risk) e->raw_changes++, e->raw_at_risk = raw;
}

static void replay(const trace *tr, const sim_opts *so, const params *p, eval_state *es, results *r)
{
    risk_stats *st = risk_stats_new(7);
    static window_cache wc;
    size_t *active = malloc(tr->n * sizeof *active), nactive = 0, next_created = 0, next_delivered = 0;
    if (!st || !active) exit(1);
    int last_day = -1;
    int64_t end = START + (int64_t)(so->days + 4) * RISK_DAY;
    for (int64_t now = START; now < end; now += so->every_min * MIN) {
        int changed = learn(st, tr, &next_delivered, now);
        if (changed || day_index(now) != last_day) refresh(&wc, st, now);
        last_day = day_index(now);
        while (next_created < tr->n && tr->o[next_created].created <= now) active[nactive++] = next_created++;
        for (size_t k = 0; k < nactive;) {
            const order *o = &tr->o[active[k]];
            if ((o->delivered && o->delivered <= now) || (o->cancelled && o->cancelled <= now)) {
                risk_hyst_close(&es[active[k]].hyst);
                active[k] = active[--nactive];
                continue;
            }
            evaluate(o, &es[active[k]], &wc, p, now, r);
            k++;
        }
    }
    free(active);
    risk_stats_free(st);
}

/* ---- scoring ---- */

static void score_one(const order *o, const eval_state *e, results *r)
{
    int late = o->delivered > o->promised;
    int naive = o->naive_flag && o->naive_flag < o->promised;
    r->scored++;
    r->late += late;
    r->flagged += e->first_flag != 0;
    r->flagged_late += e->first_flag && late;
    r->naive_flagged += naive;
    r->naive_flagged_late += naive && late;
    r->changes += e->changes;
    r->raw_changes += e->raw_changes;
    r->raises += e->raises;
    if (e->first_flag) r->flag_stage[e->first_stage]++, r->flag_stage_late[e->first_stage] += late;
    if (!late) return;
    if (e->first_flag && e->first_flag <= o->promised - LEAD_WANTED) r->early_late++;
    if (naive && o->naive_flag <= o->promised - LEAD_WANTED) r->naive_early_late++;
    if (e->first_flag) r->leads[r->nleads++] = o->promised - e->first_flag;
    if (naive) r->naive_leads[r->nnaive_leads++] = o->promised - o->naive_flag;
}

static void score(const trace *tr, const sim_opts *so, const eval_state *es, results *r)
{
    r->leads = calloc(tr->n, sizeof *r->leads);
    r->naive_leads = calloc(tr->n, sizeof *r->naive_leads);
    if (!r->leads || !r->naive_leads) exit(1);
    for (size_t i = 0; i < tr->n; i++) {
        const order *o = &tr->o[i];
        if (o->cancelled || o->created < START + (int64_t)so->warmup * RISK_DAY) continue;
        score_one(o, &es[i], r);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-th percentile (nearest rank) in hours, sorting v. */
static double pct_hours(int64_t *v, int n, int q)
{
    if (!n) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int rank = (n * q + 99) / 100;
    return (double)v[rank > 0 ? rank - 1 : 0] / HOUR;
}

static double share(int a, int b) { return b ? 100.0 * a / b : 0; }

static results run(const trace *tr, const sim_opts *so, const params *p)
{
    results r;
    memset(&r, 0, sizeof r);
    eval_state *es = calloc(tr->n, sizeof *es);
    if (!es) exit(1);
    replay(tr, so, p, es, &r);
    score(tr, so, es, &r);
    free(es);
    return r;
}

static void free_results(results *r)
{
    free(r->leads);
    free(r->naive_leads);
}

static void print_header(void)
{
    printf("| pct | raise below | clear above | dwell | confirm | recall (>= 2 h ahead) | precision | median lead "
           "| p10 lead | alerts/order | flaps avoided |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
}

static void print_row(const params *p, results *r)
{
    printf("| p%d | %+.1f h | %+.1f h | %.1f h | %.1f h | %.1f %% | %.1f %% | %.1f h | %.1f h | %.2f | %ld |\n",
           p->rc.percentile, (double)p->hc.raise_below / HOUR, (double)p->hc.clear_above / HOUR,
           (double)p->hc.min_dwell / HOUR, (double)p->hc.confirm / HOUR, share(r->early_late, r->late), share(r->flagged_late, r->flagged),
           pct_hours(r->leads, r->nleads, 50), pct_hours(r->leads, r->nleads, 10),
           r->scored ? (double)r->raises / r->scored : 0, r->raw_changes - r->changes);
}

static void print_report(const sim_opts *so, const params *p, results *r)
{
    printf("orders scored: %d (days %d..%d of %d, %d per day, seed %" PRIu64 "), late: %d (%.1f %%)\n", r->scored,
           so->warmup + 1, so->days, so->days, so->per_day, so->seed, r->late, share(r->late, r->scored));
    printf("evaluations: %ld every %d min; by carrier %.1f %%, by warehouse %.1f %%, fallback %.1f %%\n",
           r->predictions, so->every_min, 100.0 * r->by_level[0] / (double)r->predictions,
           100.0 * r->by_level[1] / (double)r->predictions, 100.0 * r->by_level[2] / (double)r->predictions);
    printf("predicted risk (p%d, raise below %+.1f h, clear above %+.1f h, dwell %.1f h, confirm %.1f h):\n",
           p->rc.percentile, (double)p->hc.raise_below / HOUR, (double)p->hc.clear_above / HOUR,
           (double)p->hc.min_dwell / HOUR, (double)p->hc.confirm / HOUR);
    printf("  recall %.1f %% (%d of %d late orders flagged >= 2 h before promisedBy), precision %.1f %% (%d of %d)\n",
           share(r->early_late, r->late), r->early_late, r->late, share(r->flagged_late, r->flagged),
           r->flagged_late, r->flagged);
    printf("  warning lead on late orders: median %.1f h, p10 %.1f h\n", pct_hours(r->leads, r->nleads, 50),
           pct_hours(r->leads, r->nleads, 10));
    printf("  decisions: %ld (%ld raises); without hysteresis %ld: %ld flaps avoided\n", r->changes, r->raises,
           r->raw_changes, r->raw_changes - r->changes);
    printf("  first flags by stage (late of flagged):");
    for (int s = 0; s < RISK_STAGE_COUNT; s++)
        if (r->flag_stage[s]) printf(" %s %d/%d", risk_stage_name((risk_stage)s), r->flag_stage_late[s], r->flag_stage[s]);
    printf("\n");
    printf("naive baseline (flag at the first SLA breach: release 15m, readiness 4h, routing 1h):\n");
    printf("  recall %.1f %% (%d of %d), precision %.1f %% (%d of %d)\n", share(r->naive_early_late, r->late),
           r->naive_early_late, r->late, share(r->naive_flagged_late, r->naive_flagged), r->naive_flagged_late,
           r->naive_flagged);
    printf("  warning lead on late orders: median %.1f h, p10 %.1f h\n",
           pct_hours(r->naive_leads, r->nnaive_leads, 50), pct_hours(r->naive_leads, r->nnaive_leads, 10));
}

static void sweep_row(const trace *tr, const sim_opts *so, const params *base, int pct, int64_t raise,
                      const int64_t hyst[3])
{
    params p = *base;
    p.rc.percentile = pct;
    p.hc.raise_below = raise;
    p.hc.clear_above = raise + hyst[0];
    p.hc.min_dwell = hyst[1];
    p.hc.confirm = hyst[2];
    results r = run(tr, so, &p);
    print_row(&p, &r);
    free_results(&r);
}

/* Percentiles x raise thresholds with the default band, dwell and confirmation; then, at the default
 * percentile and threshold, the hysteresis variants (the second is none at all). */
static void sweep(const trace *tr, const sim_opts *so, const params *base)
{
    static const int pcts[] = {50, 60, 70, 80};
    static const int64_t raise[] = {-3 * HOUR, -90 * MIN, 0};
    static const int64_t hyst[][3] = {{HOUR, HOUR, 0}, {1, 0, 0}, {2 * HOUR, 2 * HOUR, 3 * HOUR}};
    const int64_t dflt[3] = {base->hc.clear_above - base->hc.raise_below, base->hc.min_dwell, base->hc.confirm};
    print_header();
    for (size_t i = 0; i < sizeof pcts / sizeof *pcts; i++)
        for (size_t j = 0; j < sizeof raise / sizeof *raise; j++) sweep_row(tr, so, base, pcts[i], raise[j], dflt);
    for (size_t k = 0; k < sizeof hyst / sizeof *hyst; k++)
        sweep_row(tr, so, base, base->rc.percentile, base->hc.raise_below, hyst[k]);
}

static void usage(void)
{
    printf("usage: bench_risk [--seed N] [--days N] [--warmup N] [--orders-per-day N] [--every MIN]\n"
           "                  [--percentile P] [--raise-below MIN] [--clear-above MIN] [--dwell MIN]\n"
           "                  [--confirm MIN] [--min-samples N] [--no-bad-days] [--sweep]\n\n"
           "Simulates DAYS (7) days of orders from SEED (1) at three warehouses and three carriers, with a\n"
           "warehouse backlog (dc-2, day 4) and a carrier outage (ups, day 6); replays them evaluating every open\n"
           "order every MIN (15) minutes; scores orders created after the first WARMUP (1) days. --sweep adds a\n"
           "table over percentiles and margins.\n");
}

static int parse(int argc, char **argv, sim_opts *so, params *p, int *do_sweep)
{
    static const struct option opts[] = {
        {"seed", 1, 0, 's'},  {"days", 1, 0, 'd'},        {"warmup", 1, 0, 'w'},      {"orders-per-day", 1, 0, 'n'},
        {"every", 1, 0, 'e'}, {"percentile", 1, 0, 'p'},  {"raise-below", 1, 0, 'r'}, {"clear-above", 1, 0, 'c'},
        {"dwell", 1, 0, 'D'}, {"min-samples", 1, 0, 'm'}, {"no-bad-days", 0, 0, 'B'}, {"sweep", 0, 0, 'S'}, {"confirm", 1, 0, 'C'},
        {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long v = optarg ? strtol(optarg, NULL, 10) : 0;
        switch (c) {
        case 's': so->seed = strtoull(optarg, NULL, 10); break;
        case 'd': so->days = (int)v; break;
        case 'w': so->warmup = (int)v; break;
        case 'n': so->per_day = (int)v; break;
        case 'e': so->every_min = (int)v; break;
        case 'p': p->rc.percentile = (int)v; break;
        case 'r': p->hc.raise_below = v * MIN; break;
        case 'c': p->hc.clear_above = v * MIN; break;
        case 'D': p->hc.min_dwell = v * MIN; break;
        case 'C': p->hc.confirm = v * MIN; break;
        case 'm': p->rc.min_samples = (uint32_t)v; break;
        case 'B': so->bad_days = 0; break;
        case 'S': *do_sweep = 1; break;
        default: usage(); return c == 'h' ? 0 : 2;
        }
    }
    const char *bad = risk_config_check(&p->rc);
    if (!bad) bad = risk_hyst_config_check(&p->hc);
    if (!bad && (so->days < 1 || so->days > 60 || so->warmup < 0 || so->warmup >= so->days))
        bad = "days/warmup: need 1 <= days <= 60 and 0 <= warmup < days";
    if (!bad && (so->per_day < 1 || so->per_day > 100000)) bad = "orders-per-day: 1..100000";
    if (!bad && (so->every_min < 1 || so->every_min > 24 * 60)) bad = "every: 1..1440 minutes";
    if (bad) fprintf(stderr, "bench_risk: %s\n", bad);
    return bad ? 2 : -1;
}

int main(int argc, char **argv)
{
    sim_opts so = {.days = 7, .warmup = 1, .per_day = 1500, .every_min = 15, .bad_days = 1, .seed = 1};
    params p;
    risk_config_default(&p.rc);
    risk_hyst_config_default(&p.hc);
    int do_sweep = 0, rc = parse(argc, argv, &so, &p, &do_sweep);
    if (rc >= 0) return rc;
    trace tr = {0};
    order *o = generate(&so, &tr.n);
    tr.o = o;
    tr.by_delivery = malloc(tr.n * sizeof *tr.by_delivery);
    if (!o || !tr.by_delivery) return 1;
    for (size_t i = 0; i < tr.n; i++)
        if (o[i].delivered) tr.by_delivery[tr.nd++] = i;
    qsort_r(tr.by_delivery, tr.nd, sizeof *tr.by_delivery, by_delivery_cmp, o);
    results r = run(&tr, &so, &p);
    print_report(&so, &p, &r);
    free_results(&r);
    if (do_sweep) sweep(&tr, &so, &p);
    free(tr.by_delivery);
    free(o);
    return 0;
}
