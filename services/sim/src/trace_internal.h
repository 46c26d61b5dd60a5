/* Internals shared by the trace generator's files: PRNG, event document, heaps, entities and the generator. */
#ifndef SIM_TRACE_INTERNAL_H
#define SIM_TRACE_INTERNAL_H

#include <stdint.h>

#include "ct.h"
#include "sim_trace.h"

#define SIM__SEC 1000000000LL
#define SIM__MIN (60 * SIM__SEC)
#define SIM__HOUR (60 * SIM__MIN)
#define SIM__DAY (24 * SIM__HOUR)

/* ---- PRNG: xoshiro256** seeded through splitmix64, so traces never depend on libc's rand(). ---- */

typedef struct sim__rng {
    uint64_t s[4];
} sim__rng;

void sim__rng_seed(sim__rng *r, uint64_t seed);
uint64_t sim__rng_next(sim__rng *r);
/* A value in [0, n); 0 when n is 0. */
uint64_t sim__rng_below(sim__rng *r, uint64_t n);
/* A value in [lo, hi]; lo when hi <= lo. */
int64_t sim__rng_range(sim__rng *r, int64_t lo, int64_t hi);
/* A double in [0, 1) with 53 random bits. */
double sim__rng_unit(sim__rng *r);
/* 1 with probability p. Always consumes one draw, so that the stream stays aligned whatever p is. */
int sim__rng_chance(sim__rng *r, double p);

/* ---- A tiny JSON document that can be rendered in several spellings of the same event. ---- */

enum { SIM__OBJ, SIM__ARR, SIM__STR, SIM__NUM, SIM__TIME };

#define SIM__MAX_NODES 384
#define SIM__STR_CAP 8192

typedef struct sim__node {
    const char *key; /* static string (keys are literals), NULL in arrays */
    const char *s;   /* text of a string or number, in the document's arena */
    int64_t t;       /* instant of a time, ns since the epoch */
    int first, last; /* children of objects and arrays, -1 when none */
    int next;        /* next sibling, -1 at the end */
    uint8_t type;
} sim__node;

typedef struct sim__doc {
    sim__node n[SIM__MAX_NODES]; /* node 0 is the root object */
    int count;
    char str[SIM__STR_CAP];
    size_t slen;
} sim__doc;

/* How a document is spelled: key order and the UTC offset of every time in it. */
typedef struct sim__style {
    int reversed;   /* objects list their keys last to first */
    int offset_min; /* times are written in this UTC offset */
    int zulu;       /* and as "Z" rather than "+00:00" when the offset is 0 */
} sim__style;

void sim__doc_reset(sim__doc *d);
int sim__doc_obj(sim__doc *d, int parent, const char *key);
int sim__doc_arr(sim__doc *d, int parent, const char *key);
int sim__doc_str(sim__doc *d, int parent, const char *key, const char *s);
int sim__doc_int(sim__doc *d, int parent, const char *key, int64_t v);
/* A JSON number v / 10^decimals written with exactly that many decimals ("12.30"). */
int sim__doc_fixed(sim__doc *d, int parent, const char *key, int64_t v, int decimals);
int sim__doc_time(sim__doc *d, int parent, const char *key, int64_t ns);
void sim__doc_set_str(sim__doc *d, int node, const char *s);
/* The child of parent named key, or -1. */
int sim__doc_find(const sim__doc *d, int parent, const char *key);
void sim__doc_unlink(sim__doc *d, int parent, int child);
/* The payload of an event document: the root's object child other than "source", or -1. */
int sim__doc_payload(const sim__doc *d);
void sim__doc_render(const sim__doc *d, const sim__style *st, ct_buf *out);

/* Broken-down UTC civil time of ns since the epoch, without TZ or locale. */
typedef struct sim__civil {
    int year;
    int month, day, hour, minute, second;
} sim__civil;

void sim__civil_of(int64_t ns, sim__civil *c);
/* Append an RFC 3339 time: fraction digits in groups of 3 only as far as needed, the given offset. */
void sim__time_format(ct_buf *b, int64_t ns, int offset_min, int zulu);

/* ---- Binary min-heaps keyed by (time, sequence); elements begin with a sim__hkey. ---- */

typedef struct sim__hkey {
    int64_t at;   /* action time or emission time */
    uint64_t seq; /* insertion counter: equal times come out in insertion order */
} sim__hkey;

typedef struct sim__heap {
    char *data;
    size_t n, cap, elsz;
} sim__heap;

void sim__heap_push(sim__heap *h, const void *el);
/* Copy the smallest element to out and remove it; 0 when empty. */
int sim__heap_pop(sim__heap *h, void *out);
/* The smallest key, or 0 when empty. */
int sim__heap_top(const sim__heap *h, sim__hkey *out);
/* Element i in storage order (for destroying what is left). */
void *sim__heap_at(sim__heap *h, size_t i);

/* ---- Entities of the story and scheduled steps. ---- */

#define SIM__MAX_LINES 5
#define SIM__MAX_STOPS 10
#define SIM__NCARRIERS 5
#define SIM__MAX_RETRIES 4 /* automatic retries of a failed route or invoice posting */

typedef struct sim__order {
    int refs; /* scheduled steps and live shipments that still need the order */
    uint32_t num;
    char id[32];
    uint32_t customer;
    uint32_t sku[SIM__MAX_LINES];
    uint16_t qty[SIM__MAX_LINES];
    int64_t amount_cents;
    int64_t approved_at, failed_at;
    uint16_t wh;
    uint8_t channel, currency, nlines, nship;
    uint8_t hold, hold_reason, short_pick, short_line;
    uint8_t cancel_at, cancel_drift, stuck, drift, slow_release;
    uint8_t released, cancelled, after_cancel, invoice_sched, posted, failed_once, posting_fails;
} sim__order;

typedef struct sim__ship {
    int refs;
    sim__order *o; /* holds one reference on its order */
    char id[40];
    uint8_t idx, carrier, dock, must_fail, planned, route_fails;
    uint16_t cartons;
    int64_t ready_at, eta;
} sim__ship;

typedef struct sim__route {
    int refs;
    uint32_t num;
    uint16_t wh;
    uint8_t carrier, must_fail, n;
    uint16_t vehicle;
    sim__ship *s[SIM__MAX_STOPS]; /* each holds one reference on its shipment */
} sim__route;

/* A warehouse's shipments waiting for the route planner. */
typedef struct sim__pool {
    sim__ship **items;
    size_t n, cap;
    int tick_pending;
} sim__pool;

typedef struct sim__action {
    sim__hkey k;
    void *ent; /* order, shipment or route, by op; NULL for arrivals and planner ticks */
    uint32_t op, arg;
} sim__action;

typedef struct sim__emission {
    sim__hkey k;
    char *line;
    size_t len;
    int kind;
    int inst; /* the instance that reports it */
} sim__emission;

/* A reporting system instance: its names, clock style and report latency. */
typedef struct sim__inst {
    char name[24];      /* source.instance */
    char prefix[24];    /* eventId prefix */
    const char *system; /* source.system */
    int offset_min, zulu;
    int64_t prec_ns; /* occurredAt is truncated to this precision */
    int64_t lat_lo, lat_hi;
    uint64_t counter;
} sim__inst;

enum { SIM__INST_ERP, SIM__INST_TMS, SIM__INST_FIN, SIM__INST_TOWER, SIM__INST_WMS0 };

struct sim_trace {
    sim_trace_opts o;
    sim__rng rng;  /* the story: which orders, which fates, which delays */
    sim__rng frng; /* faults and report latency, apart so that fault rates do not change the story */
    sim__rng mrng; /* the master data's undefined codes (trace_mdm.c), apart so that they change nothing else */
    sim__heap acts;
    sim__heap ems;
    uint64_t seq;
    int64_t now; /* time of the step being run */
    uint32_t created;
    sim__inst *inst;
    int ninst;
    sim__pool *pools;
    char (*whname)[16];
    uint64_t route_num, invoice_num, pod_num, stray_num, bad_num;
    sim__doc doc;   /* the event being built */
    int ev_inst;    /* its instance */
    int64_t ev_at;  /* its occurredAt */
    ct_buf buf;     /* rendering scratch */
    char *cur;      /* the line last returned, owned here until the next call */
    char tag[16];   /* "" or "R<run>-": what every generated id carries */
    sim_trace_stats st;
};

/* Start an event of instance inst that occurred at (truncated to the instance's precision). */
void sim__ev_begin(sim_trace *t, int inst, int64_t at);
/* Render the event, schedule its report and any faults derived from it. */
void sim__ev_finish(sim_trace *t);
/* Replace the document by an invalid record derived from it, rendered into out; returns the
   instance whose envelope the record carries. */
int sim__fault_bad(sim_trace *t, sim__rng *r, ct_buf *out);
/* Change the document's content (a warehouse) while keeping its eventId. */
void sim__fault_conflict(sim_trace *t, sim__rng *r);

/* With opts.mdm: the master-data system's instance (set up last) and its definitions, before any order; an
   order's undefined sku (trace_mdm.c). */
void sim__mdm_inst(sim_trace *t, sim__inst *in);
void sim__mdm_start(sim_trace *t);
void sim__mdm_skus(sim_trace *t, sim__order *o);

/* Schedule the first order arrival. */
void sim__flow_start(sim_trace *t);
/* Run one scheduled step at its time. */
void sim__flow_run(sim_trace *t, const sim__action *a);
/* Release what a never-run step holds (when the generator is destroyed early). */
void sim__flow_drop(sim_trace *t, const sim__action *a);
/* Release the planner pools. */
void sim__flow_free_pools(sim_trace *t);

#endif
