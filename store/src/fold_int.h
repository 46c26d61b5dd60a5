/* Internals of the fold shared by its files (fold.c: the views; fold_life.c: the exception lifecycle). */
#ifndef FOLD_INT_H
#define FOLD_INT_H

#include "fold.h"

/* The view items, stages, dues and breaches of a process, without the lifecycle (fold.c). */
void fold__derive_raw(const fold_process *p, const fold_sla_rules *rules, fold_result *out);
/* Exception ids, the lifecycle of every item, SLA due times, and the closed instances someone acted on
 * (fold_life.c). */
void fold__lifecycle(const fold_process *p, const fold_sla_rules *rules, fold_result *out);

/* A new item of view v under key (owned by the result from now on), since = since's occurredAt (fold.c). */
fold_item *fold__item_add(fold_result *r, fold_view v, char *key, const evt_event *since);
/* A new item of view v for an order / a shipment, since = since's occurredAt, sub NULL or the rest of its key
 * (fold.c; strings borrowed, like every item's). */
fold_item *fold__order_item(fold_result *r, fold_view v, const char *oid, const char *sub, const evt_event *since,
                            const char *wh, const char *ca);
fold_item *fold__ship_item(fold_result *r, fold_view v, const char *sid, const char *oid, const char *sub,
                           const evt_event *since, const char *wh, const char *ca);
/* 1 for mismatchFound / mismatchCleared: no milestone, no link, no orphan (fold_mismatch.c). */
int fold__is_mismatch(const evt_event *e);
/* The mismatches items of one entity (kind 'o' or 's'; oid: a shipment's order or NULL) (fold_mismatch.c). */
void fold__mismatches(const fold_entity *ent, char kind, const char *oid, const char *wh, const char *ca,
                      fold_result *out);

#endif
