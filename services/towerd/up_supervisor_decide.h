/* The simulated supervisors' decisions, pure (up_supervisor_decide.c): no I/O, no clock, no store. towerd up's
   supervisor thread (up_supervisor.h) samples the open exceptions and acts on them with these. */
#ifndef UP_SUPERVISOR_DECIDE_H
#define UP_SUPERVISOR_DECIDE_H

#include <stdint.h>

#include <jansson.h>

#include "ct.h"
#include "evt.h"
#include "fold.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a simulated supervisor does to one exception. */
typedef enum sup_action {
    SUP_ACK,     /**< exceptionAcknowledged */
    SUP_ASSIGN,  /**< exceptionAssigned (to a named supervisor: also acknowledges) */
    SUP_SNOOZE,  /**< exceptionSnoozed for an hour of business time, with a note */
    SUP_NOTE,    /**< exceptionNoted */
    SUP_RESOLVE, /**< exceptionResolved NOT_AN_ISSUE or OTHER, with a note (anomalies, orphans, dead letters) */
    SUP_REOPEN,  /**< exceptionReopened, with a note (one the supervisors resolved) */
    SUP_NACTIONS
} sup_action;

/** The simulated supervisors' names (actors and assignees). */
#define SUP_NPEOPLE 5
extern const char *const sup_people[SUP_NPEOPLE];

/** How long a snooze lasts, in business time. */
#define SUP_SNOOZE_NS (3600LL * 1000000000LL)

/** What the supervisors know of one open exception: enough to decide, copied out of a view item. */
typedef struct sup_item {
    fold_view view;                        /**< its view */
    char exception_id[EVT_MAX_EXID + 1];   /**< its exceptionId */
    int acknowledged;                      /**< acknowledged (acknowledgedAt set) */
    int assigned;                          /**< assigned to someone */
    int snoozed;                           /**< snoozed at the time it was read */
} sup_item;

/** A decision: the action and its fields (static strings). */
typedef struct sup_choice {
    sup_action action;
    const char *actor;      /**< who acts: one of sup_people */
    const char *assignee;   /**< SUP_ASSIGN: to whom */
    const char *note;       /**< the note (required for SNOOZE, NOTE, RESOLVE, REOPEN), or NULL */
    const char *resolution; /**< SUP_RESOLVE: "NOT_AN_ISSUE" or "OTHER" */
} sup_choice;

/** \brief The next number of a splitmix64 generator whose state is *state. */
uint64_t sup_rand(uint64_t *state);

/** \brief A number in [0, n) from the generator (n > 0). */
uint32_t sup_below(uint64_t *state, uint32_t n);

/** \brief "ack", "assign", "snooze", "note", "resolve", "reopen". */
const char *sup_action_name(sup_action a);

/** \brief The event payload of an action: "exceptionAcknowledged" ... */
const char *sup_action_payload(sup_action a);

/** \brief 1 if the supervisors may resolve items of this view (anomalies, orphans, dead letters). */
int sup_view_resolvable(fold_view v);

/**
 * \brief Fill *out from a view item as read at now_ns. The exceptionId is the item's, else built from its
 * key and since (evt_exid_build). \return 0, or -1 for an item without a usable key (no exception id).
 */
int sup_item_of(const Tower__V1__ViewItem *it, int64_t now_ns, sup_item *out);

/**
 * \brief Decide what to do with one open exception, drawing from the generator:
 * - not yet acknowledged: mostly an acknowledgement, often an assignment to a supervisor, sometimes a
 *   snooze for an hour with a note; an anomaly, orphan or dead letter is sometimes resolved at once
 *   (NOT_AN_ISSUE or OTHER, with a note);
 * - acknowledged: assigned when nobody has it yet, else a note, a snooze, or (anomalies, orphans, dead
 *   letters) a resolution;
 * - snoozed: a note.
 * Deterministic: the same item and generator state give the same choice and the same next state.
 */
void sup_decide(const sup_item *it, uint64_t *rng, sup_choice *out);

/** \brief The reopen decision for an exception the supervisors resolved: actor and note. */
void sup_decide_reopen(uint64_t *rng, sup_choice *out);

/**
 * \brief The event of an action, as JSON (a new reference) for evt_from_json: eventId
 * "sup-<action>-<16 hex>" (a hash of the exception id, the action, occurredAt and serial: unique, and the same
 * for the same inputs), occurredAt now_ns, source tower / supervisor-sim, the payload with exceptionId,
 * actor and the choice's fields; a snooze's until is now_ns + SUP_SNOOZE_NS.
 */
json_t *sup_event_json(const char *exception_id, const sup_choice *c, int64_t now_ns, uint64_t serial);

#ifdef __cplusplus
}
#endif
#endif
