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

/** The views of EVENTS.md, in a fixed order (also the order of the dump). */
#define FOLD_VIEW_MAP(X)                                                       \
    X(AWAITING_RELEASE, "awaiting_release")                                    \
    X(BLOCKED, "blocked")                                                      \
    X(PENDING_ROUTE, "pending_route")                                          \
    X(MISSING_POD, "missing_pod")                                              \
    X(POSTING_FAILED, "posting_failed")                                        \
    X(ORPHANS, "orphans")                                                      \
    X(ANOMALIES, "anomalies")                                                  \
    X(DEAD_LETTERS, "dead_letters")                                            \
    X(SLA_BREACHES, "sla_breaches")

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

/** One derived view item. */
typedef struct fold_item {
    fold_view view;             /**< which view */
    char *key;                  /**< unique key within the store, "o:<order>|<view>|<sub>" or "s:<shipment>|..."; owned */
    Tower__V1__ViewItem pb;     /**< the item; its strings and timestamps are borrowed from the events or static */
} fold_item;

/** The order's stage, EVENTS.md "Stage of an order". */
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
} fold_result;

/**
 * \brief Derive every view item of a process, and the order's stage.
 * Items borrow from the events of *p: keep those alive while using the result.
 * The result is reset first, so one fold_result can be reused.
 */
void fold_derive(const fold_process *p, fold_result *out);

/** \brief Free what a result owns; the result is empty afterwards. */
void fold_result_free(fold_result *r);

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
