/* Predicted delivery risk: buckets, percentiles against hand-computed values, window expiry, fallback,
 * carrier vs warehouse, the conditional remaining time, hysteresis, hostile inputs, and the property
 * that the statistics do not depend on the order in which delivered orders are added. */
#include "risk.h"
#include "test.h"

#define H 3600
#define T0 INT64_C(1795000000) /* 2026-11-18T..Z, a Wednesday; day index 20775 */
#define DAY0 ((T0 / RISK_DAY) * RISK_DAY)

/* One delivered order that entered `stage` at `entered` and was delivered `lead` seconds later. */
static void add_one(risk_stats *st, const char *wh, const char *ca, risk_stage stage, int64_t entered,
                    int64_t lead)
{
    risk_sample s = {.warehouse = wh, .carrier = ca, .delivered_at = entered + lead};
    s.entered[stage] = entered;
    char err[128];
    T_EQ_INT(risk_stats_add(st, &s, err, sizeof err), 1);
}

static void test_buckets(void)
{
    /* 3600 s = 2048 + 12*128 + 16: highest bit 2^11, next four bits 1100 -> [3584, 3712), value 3648;
     * 32 exact buckets, then 16 per power of two from 2^5 */
    T_EQ_INT(risk_bucket_of(3600), 32 + (11 - 5) * 16 + 12);
    T_EQ_INT(risk_bucket_lo(risk_bucket_of(3600)), 3584);
    T_EQ_INT(risk_bucket_hi(risk_bucket_of(3600)), 3712);
    T_EQ_INT(risk_bucket_value(risk_bucket_of(3600)), 3648);
    T_EQ_INT(risk_bucket_of(7), 7);
    T_EQ_INT(risk_bucket_value(7), 7);
    T_EQ_INT(risk_bucket_of(-5), 0);
    T_EQ_INT(risk_bucket_of(INT64_C(1) << 40), RISK_BUCKETS - 1);
    int bad = 0;
    for (int64_t v = 0; v < (INT64_C(1) << 25); v += 1 + v / 7) {
        int b = risk_bucket_of(v);
        if (b < 0 || b >= RISK_BUCKETS || v < risk_bucket_lo(b) || v >= risk_bucket_hi(b)) bad++;
    }
    T_EQ_INT(bad, 0);
    for (int b = 1; b < RISK_BUCKETS; b++) T_EQ_INT(risk_bucket_lo(b), risk_bucket_hi(b - 1));
}

static void test_percentile_hand(void)
{
    risk_stats *st = risk_stats_new(7);
    /* ten orders from PICKING, 1..10 s to delivery: exact buckets */
    for (int i = 1; i <= 10; i++) add_one(st, "dc-1", NULL, RISK_PICKING, T0, i);
    risk_hist h;
    risk_stats_window(st, RISK_PICKING, "dc-1", NULL, T0, &h);
    uint32_t used;
    T_EQ_INT(h.n, 10);
    T_EQ_INT(risk_hist_percentile(&h, 80, -1, &used), 8); /* rank ceil(8.0) = 8 */
    T_EQ_INT(used, 10);
    T_EQ_INT(risk_hist_percentile(&h, 50, -1, &used), 5);
    T_EQ_INT(risk_hist_percentile(&h, 99, -1, &used), 10); /* rank ceil(9.9) = 10 */
    T_EQ_INT(risk_hist_percentile(&h, 80, 5, &used), 9);   /* of 6..10: rank 4 */
    T_EQ_INT(used, 5);
    T_EQ_INT(risk_hist_percentile(&h, 80, 10, &used), -1);
    T_EQ_INT(used, 0);
    /* ten orders 1 h .. 10 h: p80 is the 8th, 8 h = 28800 s = 16384 + 12*1024 + 128 in [28672, 29696),
     * value 29184 */
    for (int i = 1; i <= 10; i++) add_one(st, "dc-2", NULL, RISK_PACKED, T0, i * H);
    risk_stats_window(st, RISK_PACKED, "dc-2", NULL, T0 + 10 * H, &h);
    T_EQ_INT(risk_hist_percentile(&h, 80, -1, &used), 29184);
    /* the stage samples of one order: from each stage it entered */
    risk_sample s = {.warehouse = "dc-3", .delivered_at = T0 + 10 * H};
    s.entered[RISK_CREATED] = T0;
    s.entered[RISK_PICKING] = T0 + 8 * H;
    s.entered[RISK_SHIPPED] = T0 + 11 * H; /* after the delivery: out of order, skipped */
    T_EQ_INT(risk_stats_add(st, &s, NULL, 0), 2);
    risk_stats_window(st, RISK_CREATED, "dc-3", NULL, T0 + 10 * H, &h);
    T_EQ_INT(h.n, 1);
    T_EQ_INT(h.counts[risk_bucket_of(10 * H)], 1);
    risk_stats_window(st, RISK_SHIPPED, "dc-3", NULL, T0 + 10 * H, &h);
    T_EQ_INT(h.n, 0);
    risk_stats_free(st);
}

static uint32_t window_n(const risk_stats *st, int64_t now)
{
    risk_hist h;
    risk_stats_window(st, RISK_PICKING, "dc-1", NULL, now, &h);
    return h.n;
}

static void test_window_expiry(void)
{
    risk_stats *st = risk_stats_new(7);
    for (int i = 0; i < 3; i++) add_one(st, "dc-1", NULL, RISK_PICKING, DAY0 + H, H); /* day 0 */
    T_EQ_INT(window_n(st, DAY0 + 3 * RISK_DAY), 3);      /* days (-4, 3] */
    T_EQ_INT(window_n(st, DAY0 + 6 * RISK_DAY + H), 3);  /* day 6: (-1, 6] still holds day 0 */
    T_EQ_INT(window_n(st, DAY0 + 7 * RISK_DAY), 0);      /* day 7: (0, 7]: day 0 left */
    T_EQ_INT(window_n(st, DAY0 - RISK_DAY), 0);          /* days after now's day do not count */
    add_one(st, "dc-1", NULL, RISK_PICKING, DAY0 + 8 * RISK_DAY + H, H); /* day 8 evicts day 0... */
    T_EQ_INT(window_n(st, DAY0 + 8 * RISK_DAY + 2 * H), 1);
    T_EQ_INT(window_n(st, DAY0 + 3 * RISK_DAY), 0);      /* ...even for a window in the past */
    add_one(st, "dc-1", NULL, RISK_PICKING, DAY0 + H, H); /* a late day-0 order: dropped */
    T_EQ_INT(window_n(st, DAY0 + 3 * RISK_DAY), 0);
    add_one(st, "dc-1", NULL, RISK_PICKING, DAY0 + 2 * RISK_DAY + H, H); /* day 2: in (1, 8] */
    T_EQ_INT(window_n(st, DAY0 + 8 * RISK_DAY + 2 * H), 2);
    T_EQ_INT(window_n(st, DAY0 + 9 * RISK_DAY + 2 * H), 1); /* day 9: (2, 9] */
    risk_stats_free(st);
}

static void test_fallback(void)
{
    risk_stats *st = risk_stats_new(7);
    for (int i = 0; i < 5; i++) add_one(st, "dc-2", NULL, RISK_PICKING, T0, 2 * H);
    risk_config c;
    risk_config_default(&c);
    T_EQ_INT(c.percentile, 50);
    c.percentile = 80;
    /* defaults: readiness 4h + routing 1h + dispatch 2h + transit 24h from PICKING */
    T_EQ_INT(c.fallback[RISK_PICKING], 31 * H);
    T_EQ_INT(c.fallback[RISK_SHIPPED], 24 * H);
    T_EQ_INT(c.fallback[RISK_APPROVED], 31 * H + 15 * 60);
    risk_query q = {.stage = RISK_PICKING, .entered_at = T0 + 3 * H, .warehouse = "dc-2",
                    .promised_by = T0 + 30 * H, .now = T0 + 4 * H};
    risk_prediction p;
    char err[128];
    T_EQ_INT(risk_predict(st, &c, &q, &p, err, sizeof err), 0);
    T_EQ_INT(p.level, RISK_LEVEL_FALLBACK);
    T_EQ_INT(p.remaining, 30 * H); /* 31 h from entering, 1 h spent */
    T_EQ_INT(p.expected, T0 + 34 * H);
    T_EQ_INT(p.slack, -4 * H);
    T_EQ_STR(p.basis, "SLA windows from PICKING (5 orders at dc-2, fewer than 20)");
    /* with enough samples the warehouse answers */
    c.min_samples = 5;
    T_EQ_INT(risk_predict(st, &c, &q, &p, err, sizeof err), 0);
    T_EQ_INT(p.level, RISK_LEVEL_WAREHOUSE);
    T_EQ_INT(p.remaining, risk_bucket_value(risk_bucket_of(2 * H)) - H);
    T_EQ_STR(p.basis, "p80 of 5 orders from PICKING at dc-2");
    risk_stats_free(st);
}

static void test_carrier_vs_warehouse(void)
{
    risk_stats *st = risk_stats_new(7);
    for (int i = 0; i < 30; i++) add_one(st, "dc-2", "dhl", RISK_SHIPPED, T0, 10 * H);
    for (int i = 0; i < 30; i++) add_one(st, "dc-2", "ups", RISK_SHIPPED, T0, 2 * H);
    for (int i = 0; i < 10; i++) add_one(st, "dc-2", "gls", RISK_SHIPPED, T0, 30 * H);
    risk_config c;
    risk_config_default(&c);
    c.percentile = 80;
    risk_query q = {.stage = RISK_SHIPPED, .warehouse = "dc-2", .carrier = "dhl",
                    .promised_by = T0 + 48 * H, .now = T0 + 40 * H};
    risk_prediction p;
    T_EQ_INT(risk_predict(st, &c, &q, &p, NULL, 0), 0);
    T_EQ_INT(p.level, RISK_LEVEL_CARRIER);
    T_EQ_INT(p.remaining, risk_bucket_value(risk_bucket_of(10 * H)));
    T_EQ_STR(p.basis, "p80 of 30 orders from SHIPPED at dc-2 via dhl");
    q.carrier = "ups";
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.remaining, risk_bucket_value(risk_bucket_of(2 * H)));
    /* gls has 10 < 20 samples: the warehouse's 70 answer; p80 of 70 is rank 56: a dhl 10 h */
    q.carrier = "gls";
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.level, RISK_LEVEL_WAREHOUSE);
    T_EQ_INT(p.samples, 70);
    T_EQ_INT(p.remaining, risk_bucket_value(risk_bucket_of(10 * H)));
    T_EQ_STR(p.basis, "p80 of 70 orders from SHIPPED at dc-2");
    q.carrier = "never-seen";
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.level, RISK_LEVEL_WAREHOUSE);
    q.carrier = NULL;
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.level, RISK_LEVEL_WAREHOUSE);
    q.warehouse = "dc-9";
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.level, RISK_LEVEL_FALLBACK);
    risk_stats_free(st);
}

static void test_conditional_remaining(void)
{
    risk_stats *st = risk_stats_new(7);
    for (int i = 0; i < 30; i++) add_one(st, "dc-1", NULL, RISK_PICKING, T0, 2 * H);
    for (int i = 0; i < 30; i++) add_one(st, "dc-1", NULL, RISK_PICKING, T0, 12 * H);
    risk_config c;
    risk_config_default(&c);
    c.percentile = 80;
    risk_query q = {.stage = RISK_PICKING, .warehouse = "dc-1", .promised_by = T0 + 48 * H,
                    .entered_at = T0, .now = T0};
    risk_prediction p;
    risk_predict(st, &c, &q, &p, NULL, 0);
    int64_t v12 = risk_bucket_value(risk_bucket_of(12 * H));
    T_EQ_INT(p.remaining, v12);
    T_EQ_INT(p.samples, 60);
    q.now = T0 + 3 * H; /* past the 2 h ones: only the 12 h ones are still possible */
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.samples, 30);
    T_EQ_INT(p.remaining, v12 - 3 * H);
    q.now = T0 + 20 * H; /* longer than every sample: the whole p80 counted from now */
    risk_predict(st, &c, &q, &p, NULL, 0);
    T_EQ_INT(p.samples, 60);
    T_EQ_INT(p.remaining, v12);
    T_EQ_INT(p.expected, T0 + 20 * H + v12);
    risk_stats_free(st);
}

static void test_hysteresis(void)
{
    risk_hyst_config c;
    risk_hyst_config_default(&c);
    T_ASSERT(risk_hyst_config_check(&c) == NULL);
    T_EQ_INT(c.raise_below, -90 * 60);
    c = (risk_hyst_config){.raise_below = 0, .clear_above = H, .min_dwell = H, .confirm = 0};
    risk_hyst h = {0};
    int64_t t = T0, changes = 0;
    /* noise around the raise threshold: one raise, no flapping */
    for (int i = 0; i < 40; i++, t += 900) changes += risk_hyst_step(&h, &c, t, (i % 2) ? 600 : -600) != 0;
    T_EQ_INT(changes, 1);
    T_EQ_INT(h.at_risk, 1);
    /* the margins: clear needs slack > clear_above, after the dwell */
    risk_hyst g = {0};
    T_EQ_INT(risk_hyst_step(&g, &c, T0, c.raise_below), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&g, &c, T0, c.raise_below - 1), RISK_RAISE);
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + 60, 10 * H), RISK_NO_CHANGE); /* within the dwell */
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + H, c.clear_above), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + H, c.clear_above + 1), RISK_CLEAR);
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + H + 60, -10 * H), RISK_NO_CHANGE); /* dwell after a clear too */
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + 2 * H, -10 * H), RISK_RAISE);
    /* delivered or cancelled: it leaves, nothing more is decided */
    risk_hyst_close(&g);
    T_EQ_INT(g.at_risk, 0);
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + 9 * H, -10 * H), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&g, &c, T0 + 9 * H, 10 * H), RISK_NO_CHANGE);
    c.clear_above = c.raise_below;
    T_ASSERT(risk_hyst_config_check(&c) != NULL);
}

static void test_hysteresis_confirm(void)
{
    risk_hyst_config c = {.raise_below = 0, .clear_above = H, .min_dwell = H, .confirm = H};
    risk_hyst h = {0};
    /* a dip shorter than the confirmation raises nothing */
    T_EQ_INT(risk_hyst_step(&h, &c, T0, -H), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&h, &c, T0 + 1800, -H), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&h, &c, T0 + 2700, 60), RISK_NO_CHANGE); /* back above: starts over */
    T_EQ_INT(risk_hyst_step(&h, &c, T0 + 3600, -H), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&h, &c, T0 + 7199, -H), RISK_NO_CHANGE);
    T_EQ_INT(risk_hyst_step(&h, &c, T0 + 7200, -H), RISK_RAISE);     /* held for 1 h */
    T_EQ_INT(h.at_risk, 1);
    c.confirm = -1;
    T_ASSERT(risk_hyst_config_check(&c) != NULL);
}

static void test_hostile(void)
{
    T_ASSERT(risk_stats_new(0) == NULL);
    T_ASSERT(risk_stats_new(RISK_MAX_WINDOW_DAYS + 1) == NULL);
    risk_stats *st = risk_stats_new(7);
    char longid[RISK_ID_MAX + 2], err[128];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    risk_sample s = {.warehouse = longid, .delivered_at = T0};
    s.entered[RISK_PICKING] = T0 - H;
    T_EQ_INT(risk_stats_add(st, &s, err, sizeof err), -1);
    T_ASSERT(strstr(err, "warehouse") != NULL);
    s.warehouse = "dc-1";
    s.carrier = longid;
    T_EQ_INT(risk_stats_add(st, &s, err, sizeof err), -1);
    T_ASSERT(strstr(err, "carrier") != NULL);
    s.carrier = NULL;
    s.delivered_at = 0;
    T_EQ_INT(risk_stats_add(st, &s, err, sizeof err), -1);
    T_ASSERT(strstr(err, "delivered_at") != NULL);
    T_EQ_INT(risk_stats_keys(st), 0);
    risk_config c;
    risk_config_default(&c);
    risk_query q = {.stage = RISK_STAGE_COUNT, .warehouse = "dc-1", .now = T0};
    risk_prediction p;
    T_EQ_INT(risk_predict(st, &c, &q, &p, err, sizeof err), -1);
    T_ASSERT(strncmp(err, "stage", 5) == 0);
    q.stage = RISK_PICKING;
    q.carrier = longid;
    T_EQ_INT(risk_predict(st, &c, &q, &p, err, sizeof err), -1);
    T_ASSERT(strncmp(err, "carrier", 7) == 0);
    q.carrier = NULL;
    c.percentile = 100;
    T_EQ_INT(risk_predict(st, &c, &q, &p, err, sizeof err), -1);
    T_ASSERT(strstr(err, "percentile") != NULL);
    T_EQ_INT(risk_stage_parse("PICKING"), RISK_PICKING);
    T_EQ_INT(risk_stage_parse("DELIVERED"), -1);
    T_EQ_STR(risk_stage_name((risk_stage)99), "?");
    risk_stats_free(st);
}

/* Property: the same delivered orders added in any order give the same windows. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define NS 400
static const char *const WH[] = {"dc-1", "dc-2", ""}, *const CA[] = {"dhl", "ups", NULL};

static void gen_samples(risk_sample *s)
{
    for (int i = 0; i < NS; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].warehouse = WH[rnd() % 3];
        s[i].carrier = CA[rnd() % 3];
        s[i].delivered_at = DAY0 + (int64_t)(rnd() % (12 * RISK_DAY)); /* 12 days: eviction happens */
        for (int st = 0; st < RISK_STAGE_COUNT; st++)
            if (rnd() % 4) s[i].entered[st] = s[i].delivered_at - (int64_t)(rnd() % (3 * RISK_DAY));
    }
}

static risk_stats *build(const risk_sample *s, const int *perm)
{
    risk_stats *st = risk_stats_new(7);
    for (int i = 0; i < NS; i++) risk_stats_add(st, &s[perm[i]], NULL, 0);
    return st;
}

static int same_windows(const risk_stats *a, const risk_stats *b)
{
    risk_hist ha, hb;
    for (int day = 0; day <= 13; day++)
        for (int st = 0; st < RISK_STAGE_COUNT; st++)
            for (int w = 0; w < 3; w++)
                for (int c = 0; c < 3; c++) {
                    int64_t now = DAY0 + day * RISK_DAY + 5 * H;
                    risk_stats_window(a, (risk_stage)st, WH[w], CA[c], now, &ha);
                    risk_stats_window(b, (risk_stage)st, WH[w], CA[c], now, &hb);
                    if (memcmp(&ha, &hb, sizeof ha) != 0) return 0;
                }
    return 1;
}

static void test_property_order_independent(void)
{
    static risk_sample s[NS];
    int perm[NS], base[NS];
    rng_state = 42;
    gen_samples(s);
    for (int i = 0; i < NS; i++) base[i] = perm[i] = i;
    risk_stats *ref = build(s, base);
    T_EQ_INT(risk_stats_keys(ref), 3 * RISK_STAGE_COUNT * 3); /* (stage, wh) + (stage, wh, 2 carriers) */
    int differ = 0;
    for (int round = 0; round < 30; round++) {
        if (round == 0) /* newest first: every older day is dropped or evicted the other way round */
            for (int i = 0; i < NS; i++) perm[i] = NS - 1 - i;
        else
            for (int i = NS - 1; i > 0; i--) {
                int j = (int)(rnd() % (uint64_t)(i + 1)), t = perm[i];
                perm[i] = perm[j], perm[j] = t;
            }
        risk_stats *other = build(s, perm);
        differ += !same_windows(ref, other);
        risk_stats_free(other);
    }
    T_EQ_INT(differ, 0);
    risk_stats_free(ref);
}

int main(void)
{
    T_RUN(test_buckets);
    T_RUN(test_percentile_hand);
    T_RUN(test_window_expiry);
    T_RUN(test_fallback);
    T_RUN(test_carrier_vs_warehouse);
    T_RUN(test_conditional_remaining);
    T_RUN(test_hysteresis);
    T_RUN(test_hysteresis_confirm);
    T_RUN(test_hostile);
    T_RUN(test_property_order_independent);
    return t_done();
}
