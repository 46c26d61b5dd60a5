/* Internals of the fold shared by its files (fold.c: the views; fold_life.c: the exception lifecycle). */
#ifndef FOLD_INT_H
#define FOLD_INT_H

#include "fold.h"

/* The view items, stages, dues and breaches of a process, without the lifecycle (fold.c). */
void fold__derive_raw(const fold_process *p, const fold_sla_rules *rules, fold_result *out);
/* Exception ids, the lifecycle of every item, SLA due times, and the closed instances someone acted on
 * (fold_life.c). */
void fold__lifecycle(const fold_process *p, const fold_sla_rules *rules, fold_result *out);

#endif
