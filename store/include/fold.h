/* The fold: pure derivation of view items and order stage from the events of one process. */
#ifndef FOLD_H
#define FOLD_H

#include <stddef.h>

#include "evt.h"
#include "tower/v1/view.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The views are a function of the set of events. The fold therefore never
 * updates state event by event: it derives the items of a whole "process"
 * (an order with the shipments linked to it, or a shipment linked to no
 * order) from that process's events, in any order, duplicates included.
 * The store keeps the events per entity, calls the fold for every process an
 * event touches, and diffs the result against the items it holds; the diff
 * is the set of view changes (add, update, remove) an event caused.
 *
 * Nothing here does I/O or reads a clock: ages are computed by readers.
 */

/** The views of docs/contract.md, in a fixed order (also the order of the dump). */
#define FOLD_VIEW_MAP(X)                                                       \
    X(AWAITING_RELEASE, "awaiting_release")                                    \
    X(BLOCKED, "blocked")                                                      \
    X(PENDING_ROUTE, "pending_route")                                          \
    X(MISSING_POD, "missing_pod")                                              \
    X(POSTING_FAILED, "posting_failed")                                        \
    X(ORPHANS, "orphans")                                                      \
    X(ANOMALIES, "anomalies")                                                  \
    X(DEAD_LETTERS, "dead_letters")                                            \
    X(SLA_BREACHES, "sla_breaches")                                            \
    X(AT_RISK, "at_risk")                                                      \
    X(MISMATCHES, "mismatches")

typedef enum fold_view {
#define FOLD_X(id, name) FOLD_VIEW_##id,
    FOLD_VIEW_MAP(FOLD_X)
#undef FOLD_X
    FOLD_VIEW_COUNT
} fold_view;

/** \brief "awaiting_release" for FOLD_VIEW_AWAITING_RELEASE (static storage). */
const char *fold_view_name(fold_view v);
/** \brief The view of a name. \return 0 and *out set, or -1 if the name is unknown. */
int fold_view_parse(const char *name, fold_view *out);

/** The events of one entity (an order or a shipment), in any order. */
typedef struct fold_entity {
    const char *id;             /**< the order or shipment id (borrowed) */
    evt_event *const *events;   /**< the events naming it (borrowed), any order, duplicates allowed */
    size_t n_events;            /**< how many */
} fold_entity;

/** One process: an order and its linked shipments, or one unlinked shipment. */
typedef struct fold_process {
    fold_entity order;           /**< order.id is NULL for an unlinked shipment */
    const fold_entity *shipments;/**< the shipments linked to the order (or the one unlinked shipment) */
    size_t n_shipments;          /**< how many */
} fold_process;

/* ---- business-milestone SLAs ---------------------------------------------- */

/**
 * The milestone pairs an SLA rule can measure: X(id, from, to, level), level
 * 'o' for a rule on the order, 's' for one on each shipment. docs/contract.md
 * ("SLA rules") defines what each means:
 *  - RELEASE: earliest orderApproved -> any orderReleased;
 *  - READINESS: earliest orderReleased -> a shipmentReady of any shipment of the order;
 *  - ROUTING: the shipment's earliest shipmentReady -> a routePlanned naming it;
 *  - POD: the shipment's earliest deliveryCompleted -> a podCaptured;
 *  - INVOICING: the earliest shipmentConfirmed of the order's shipments -> an invoicePosted;
 *  - POSTING_RECOVERY: the latest postingFailed -> an invoicePosted later than it.
 */
#define FOLD_SLA_PAIR_MAP(X)                                                   \
    X(RELEASE, "orderApproved", "orderReleased", 'o')                          \
    X(READINESS, "orderReleased", "shipmentReady", 'o')                        \
    X(ROUTING, "shipmentReady", "routePlanned", 's')                           \
    X(POD, "deliveryCompleted", "podCaptured", 's')                            \
    X(INVOICING, "shipmentConfirmed", "invoicePosted", 'o')                    \
    X(POSTING_RECOVERY, "postingFailed", "invoicePosted", 'o')

typedef enum fold_sla_pair {
#define FOLD_X(id, from, to, level) FOLD_SLA_##id,
    FOLD_SLA_PAIR_MAP(FOLD_X)
#undef FOLD_X
    FOLD_SLA_PAIR_COUNT
} fold_sla_pair;

/** \brief The pair measured from milestone `from` to `to` (event type names). \return 0, or -1 if unsupported. */
int fold_sla_pair_parse(const char *from, const char *to, fold_sla_pair *out);
/** \brief The from-milestone of a pair, e.g. "orderApproved" (static storage). */
const char *fold_sla_pair_from(fold_sla_pair p);
/** The pair whose awaited milestone ends a view's condition (its items' slaDueAt = since + within), or -1:
 *  the view has no SLA of its own (blocked: a block is not a milestone; late readiness is an sla_breaches item). */
int fold_view_sla_pair(fold_view v);
/** \brief The awaited milestone of a pair, e.g. "orderReleased" (static storage). */
const char *fold_sla_pair_to(fold_sla_pair p);
/** \brief 'o' if the pair is measured on the order, 's' if on each shipment. */
char fold_sla_pair_level(fold_sla_pair p);

/**
 * One SLA rule, or one scoped override of it. Several entries may share a
 * name: the one that applies to an entity is the most specific whose scope
 * matches it (fold_sla_resolve). Strings are borrowed from whoever built the
 * rules (static for the defaults, an sla_rules object for a rules file).
 */
typedef struct fold_sla_rule {
    const char *name;       /**< the rule, e.g. "release" (what slaBreached events carry) */
    fold_sla_pair pair;     /**< from which milestone to which */
    int64_t within_ns;      /**< the awaited milestone is due this long after the from-milestone */
    const char *severity;   /**< e.g. "warning", "critical" (for alerts) */
    const char *warehouse;  /**< scope: only entities of this warehouse (NULL: any) */
    const char *carrier;    /**< scope: only entities of this carrier (NULL: any) */
    const char *channel;    /**< scope: only orders of this channel, e.g. "EDI" (NULL: any) */
    int disabled;           /**< the rule does not apply in this scope */
} fold_sla_rule;

/** A set of rules (borrowed array). */
typedef struct fold_sla_rules {
    const fold_sla_rule *v; /**< the rules and overrides, in declaration order */
    size_t n;               /**< how many */
} fold_sla_rules;

/** \brief The rules of docs/contract.md ("SLA rules"), unscoped, severity "warning" (static storage). */
const fold_sla_rules *fold_sla_defaults(void);

/**
 * \brief The entry of rule `name` that applies to an entity of this warehouse,
 * carrier and channel (each may be NULL: unknown, matching only unscoped
 * entries for that dimension): among the matching entries the most specific
 * (warehouse weighs 4, carrier 2, channel 1; on a tie the first declared).
 * \return the entry (possibly disabled), or NULL if none matches.
 */
const fold_sla_rule *fold_sla_resolve(const fold_sla_rules *r, const char *name, const char *warehouse,
                                      const char *carrier, const char *channel);

/**
 * One open due: the from-milestone of a rule was seen, the awaited milestone
 * not yet, and no slaBreached for this very due exists. The SLA engine
 * publishes a breach once the due time has passed.
 */
typedef struct fold_due {
    char kind;                   /**< 'o' (the order) or 's' (a shipment) */
    const char *entity;          /**< its id (borrowed) */
    const char *order_id;        /**< the order (for a shipment: its linked order, or NULL) */
    const char *shipment_id;     /**< the shipment, or NULL for an order-level due */
    const char *rule;            /**< the rule's name (borrowed from the rules) */
    const char *warehouse;       /**< where known (borrowed) */
    const char *carrier;         /**< where known (borrowed) */
    Tower__V1__Timestamp due;    /**< from-milestone's occurredAt + within */
} fold_due;

/** One breach of the process (the earliest slaBreached per entity and rule) and whether it closed. */
typedef struct fold_breach {
    char kind;                               /**< 'o' or 's' */
    const char *entity;                      /**< the order or shipment id (borrowed) */
    const char *rule;                        /**< the rule (borrowed) */
    const Tower__V1__Timestamp *due;         /**< its dueAt (occurredAt if absent) */
    const Tower__V1__Timestamp *closed_at;   /**< when the awaited milestone occurred, NULL while open */
    int cancelled;                           /**< the order was cancelled: the breach left the view */
} fold_breach;

/** One derived view item. */
typedef struct fold_item {
    fold_view view;             /**< which view */
    char *key;                  /**< unique key within the store, "o:<order>|<view>|<sub>" or "s:<shipment>|..."; owned */
    char *exid;                 /**< its exception id (evt_exid_build of key and since); owned, pb.exception_id */
    Tower__V1__Timestamp *due;  /**< storage of pb.sla_due_at, owned (on the heap: items may be moved) */
    Tower__V1__ViewItem pb;     /**< the item; its strings and timestamps are borrowed from the events or static */
} fold_item;

/** The order's stage, docs/contract.md "Stage of an order". */
#define FOLD_STAGE_MAP(X)                                                      \
    X(NONE) X(CREATED) X(APPROVED) X(RELEASED) X(PICKING) X(PACKED) X(READY)    \
    X(ROUTED) X(SHIPPED) X(DELIVERED) X(POD) X(INVOICED) X(CANCELLED)

typedef enum fold_stage {
#define FOLD_X(id) FOLD_STAGE_##id,
    FOLD_STAGE_MAP(FOLD_X)
#undef FOLD_X
    FOLD_STAGE_COUNT
} fold_stage;

/** \brief "PICKING" for FOLD_STAGE_PICKING; "" for NONE (static storage). */
const char *fold_stage_name(fold_stage s);

/** What the fold derives from one process. Zero-initialise; release with fold_result_free. */
typedef struct fold_result {
    fold_item *items;           /**< the items of every entity of the process, owned */
    size_t n_items;             /**< how many */
    size_t cap;                 /**< allocated */
    fold_stage stage;           /**< the order's stage (NONE for an unlinked shipment) */
    fold_stage *shipment_stages;/**< per shipment of the process, its own stage (PACKED..POD or NONE); owned */
    fold_due *dues;             /**< the open SLA dues of the process, owned array (strings borrowed) */
    size_t n_dues;              /**< how many */
    fold_breach *breaches;      /**< every breach of the process, open or closed; owned array */
    size_t n_breaches;          /**< how many */
    fold_item *closed;          /**< closed exceptions someone acted on (docs/exceptions.md "Closing"), with
                                     closed_at, closed_by and, when resolved, resolution; owned, like items */
    size_t n_closed;            /**< how many */
    const char *channel;        /**< the order's channel ("EDI"...) from its latest orderCreated, or NULL (static) */
} fold_result;

/**
 * \brief Derive every view item of a process, and the order's stage.
 * Items borrow from the events of *p: keep those alive while using the result.
 * The result is reset first, so one fold_result can be reused.
 */
void fold_derive(const fold_process *p, fold_result *out);

/**
 * \brief fold_derive with the SLA rules that decide the process's dues (and
 * which milestone closes a breach of a rule not among the defaults).
 * \param rules borrowed during the call and while the result is used; NULL: fold_sla_defaults().
 */
void fold_derive_sla(const fold_process *p, const fold_sla_rules *rules, fold_result *out);

/**
 * \brief The exception lifecycle of one instance (docs/exceptions.md "State") from its actions, in any
 * order, duplicates allowed (all acting on the instance: the caller filtered them by exception id). Sets
 * assignee, acknowledged_at/by, snoozed_until and notes on *pb (borrowed from the actions).
 * \return the resolving action when the latest of its resolve and reopen actions is a resolve, else NULL.
 */
const evt_event *fold_life_apply(Tower__V1__ViewItem *pb, evt_event *const *acts, size_t n);

/** \brief "FIXED_AT_SOURCE" etc. for a resolving action's resolution ("OTHER" when unknown; static). */
const char *fold_resolution_name(const evt_event *resolve);

/** \brief Free what a result owns; the result is empty afterwards. */
void fold_result_free(fold_result *r);

/* ---- reference data (contract v1.2; store_ref_fold.c, docs/contract/reference.md) ---- */

/** The kinds of code reference data defines: 'w' warehouse, 'c' carrier, 'k' sku. */
#define FOLD_REF_KINDS "wck"

/** What the reference data holds, as the fold asks it (the store answers from its reference table). */
typedef struct fold_ref {
    int (*defined)(void *ctx, char kind, const char *code); /**< 1 if a definition covers the code */
    int (*any)(void *ctx, char kind);                       /**< 1 if any definition of that kind exists */
    void *ctx;                                              /**< passed to both */
} fold_ref;

/** \brief "warehouse", "carrier" or "sku" for 'w', 'c', 'k' ("" otherwise; static storage). */
const char *fold_ref_kind_name(char kind);

/**
 * \brief The codes an event names, fn called once per (kind, code) (strings borrowed from the event):
 * warehouseId and carrierId of its payload and envelope, the skus of orderCreated lines, pickShort and
 * inventoryResolved. Actions and definitions name none.
 */
void fold_event_codes(const evt_event *e, void (*fn)(void *ctx, char kind, const char *code), void *ctx);

/**
 * \brief fold_derive_sla, plus the UNKNOWN_CODE anomalies: per entity and code its events name that no
 * definition covers (once a definition of that kind exists). An event with an envelope orderId counts for
 * the order, any other for the shipments whose timeline holds it. since = the earliest such event, which
 * also gives eventId, producer and producerInstance. \param ref NULL: none (fold_derive_sla).
 */
void fold_derive_ref(const fold_process *p, const fold_sla_rules *rules, const fold_ref *ref, fold_result *out);

/**
 * \brief The order a shipment belongs to: that of the earliest event (by
 * occurredAt, then eventId) whose envelope carries both this shipment id and
 * an order id. \return the order id (borrowed from the events), or NULL.
 */
const char *fold_link(const fold_entity *shipment);

/** \brief Compare two events by occurredAt, then eventId bytewise ("latest" is the greatest). */
int fold_event_cmp(const evt_event *a, const evt_event *b);

/** \brief The warehouse id an event carries (payload first, then envelope), or NULL. */
const char *fold_event_warehouse(const evt_event *e);
/** \brief The carrier id an event carries (payload first, then envelope), or NULL. */
const char *fold_event_carrier(const evt_event *e);

#ifdef __cplusplus
}
#endif
#endif
