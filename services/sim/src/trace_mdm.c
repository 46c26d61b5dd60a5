/* The master-data system (contract v1.2, opts.mdm): the definitions of every warehouse, carrier and sku the trace
 * names, reported before the first order, and the occasional undefined sku in an order. Nothing here draws from
 * the story's or the faults' streams, so the rest of the trace stays the same. */
#include <stdio.h>
#include <string.h>

#include "trace_internal.h"

/* The skus orders pick from (trace_flow.c) and the undefined ones an order may name instead. */
#define SKU_LO 10000
#define SKU_HI 13999
#define SKU_UNDEF 90000
#define SKU_UNDEF_N 50

/* Where the warehouses are, in turn: a name, a region and the IANA time zone the dashboard shows. */
static const struct {
    const char *city, *region, *tz;
} sites[] = {
    {"Lyon", "EU-West", "Europe/Paris"},          {"Leipzig", "EU-Central", "Europe/Berlin"},
    {"Newark", "US-East", "America/New_York"},    {"Pune", "APAC-South", "Asia/Kolkata"},
    {"Madrid", "EU-South", "Europe/Madrid"},      {"Chicago", "US-Central", "America/Chicago"},
    {"Singapore", "APAC", "Asia/Singapore"},      {"Manchester", "UK", "Europe/London"},
};
#define NSITES (sizeof sites / sizeof sites[0])

static const char *const carrier_titles[SIM__NCARRIERS] = {"DHL Parcel", "UPS", "PostNL", "DPD", "FedEx"};

void sim__mdm_inst(sim_trace *t, sim__inst *in)
{
    (void)t;
    snprintf(in->name, sizeof in->name, "mdm-1");
    snprintf(in->prefix, sizeof in->prefix, "mdm");
    in->system = "mdm";
    in->offset_min = 0;
    in->zulu = 1;
    in->prec_ns = SIM__SEC;
    in->lat_lo = in->lat_hi = 0;
    in->counter = 0;
}

/* Report the document built since sim__ev_begin at emit (no fault: the master data is clean). */
static void mdm_push(sim_trace *t, int64_t emit)
{
    sim__style st = {0, 0, 1};
    ct_buf_reset(&t->buf);
    sim__doc_render(&t->doc, &st, &t->buf);
    sim__emission em = {{emit, t->seq++}, ct_strndup(t->buf.data, t->buf.len), t->buf.len, SIM_VALID, t->ev_inst};
    sim__heap_push(&t->ems, &em);
}

/* The definitions occur an hour before the first order, reported one millisecond apart. */
void sim__mdm_start(sim_trace *t)
{
    int inst = t->ninst - 1;
    int64_t at = t->o.start_ns - SIM__HOUR, emit = at;
    char buf[64];
    for (uint32_t w = 0; w < t->o.warehouses; w++) {
        sim__ev_begin(t, inst, at);
        int p = sim__doc_obj(&t->doc, 0, "warehouseDefined");
        sim__doc_str(&t->doc, p, "warehouseId", t->whname[w]);
        snprintf(buf, sizeof buf, "%s DC %u", sites[w % NSITES].city, (unsigned)(w + 1));
        sim__doc_str(&t->doc, p, "name", buf);
        sim__doc_str(&t->doc, p, "region", sites[w % NSITES].region);
        sim__doc_str(&t->doc, p, "timeZone", sites[w % NSITES].tz);
        mdm_push(t, emit += SIM__SEC / 1000);
    }
    for (int c = 0; c < SIM__NCARRIERS; c++) {
        sim__ev_begin(t, inst, at);
        int p = sim__doc_obj(&t->doc, 0, "carrierDefined");
        sim__doc_str(&t->doc, p, "carrierId", t->inst[SIM__INST_WMS0 + (int)t->o.warehouses + c].name);
        sim__doc_str(&t->doc, p, "name", carrier_titles[c]);
        mdm_push(t, emit += SIM__SEC / 1000);
    }
    for (uint32_t k = SKU_LO; k <= SKU_HI; k++) {
        sim__ev_begin(t, inst, at);
        int p = sim__doc_obj(&t->doc, 0, "skuDefined");
        snprintf(buf, sizeof buf, "SKU-%05u", (unsigned)k);
        sim__doc_str(&t->doc, p, "sku", buf);
        sim__doc_str(&t->doc, p, "unit", k % 7 == 0 ? "KG" : k % 3 == 0 ? "CS" : "EA");
        snprintf(buf, sizeof buf, "Article %05u", (unsigned)k);
        sim__doc_str(&t->doc, p, "name", buf);
        mdm_push(t, emit += SIM__SEC / 1000);
    }
}

void sim__mdm_skus(sim_trace *t, sim__order *o)
{
    /* Two draws for every order, whatever the rate: the choice of orders stays put when the rate changes. */
    int undefined = sim__rng_chance(&t->mrng, t->o.p_undefined);
    uint32_t which = (uint32_t)sim__rng_below(&t->mrng, SKU_UNDEF_N);
    if (undefined && o->nlines) o->sku[0] = SKU_UNDEF + which;
}
