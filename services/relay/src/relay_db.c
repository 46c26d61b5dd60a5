/* The relay's LMDB (STATE/relay.lmdb): what each destination did about each order, shipment and route (the
 * order page's "customer notified 10:42"), and the route planner destinations' readiness fold and request
 * queue. One environment per directory and process (LMDB forbids opening one twice in a process: `towerd up`
 * runs the relay and the server that reads it side by side), shared by reference count. */
#include "relay_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DB_MAP_SIZE ((size_t)4 << 30)

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static relay__db *reg;

static relay__db *db_new(const char *dir, const char *real)
{
    MDB_env *env = NULL;
    MDB_txn *t = NULL;
    relay__db *db = NULL;
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_mapsize(env, DB_MAP_SIZE);
    /* NOSYNC: a host crash may lose the last writes, never tear them (the fold and its sequence go in one
     * transaction, so it replays from an older sequence); route requests sync (relay__db_sync). */
    if (!rc) rc = mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOTLS, 0644);
    int stale = 0;
    if (!rc) mdb_reader_check(env, &stale); /* readers of a process killed meanwhile */
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &t);
    MDB_dbi dbi = 0;
    if (!rc) rc = mdb_dbi_open(t, NULL, 0, &dbi);
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    if (rc) {
        ct_log(CT_LOG_ERROR, "relay", "cannot open %s: %s", dir, mdb_strerror(rc));
        if (env) mdb_env_close(env);
        return NULL;
    }
    db = ct_calloc(1, sizeof *db);
    db->env = env;
    db->dbi = dbi;
    db->path = ct_strdup(real);
    db->refs = 1;
    return db;
}

relay__db *relay__db_open(const char *state_dir, int create)
{
    char *dir = ct_sprintf("%s/relay.lmdb", state_dir);
    if (create) mkdir(dir, 0755);
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        free(dir);
        return NULL; /* no relay state yet */
    }
    pthread_mutex_lock(&reg_lock);
    relay__db *db = reg;
    while (db && strcmp(db->path, real) != 0) db = db->next;
    if (db) {
        db->refs++;
    } else if ((db = db_new(dir, real)) != NULL) {
        db->next = reg;
        reg = db;
    }
    pthread_mutex_unlock(&reg_lock);
    free(dir);
    return db;
}

void relay__db_close(relay__db *db)
{
    if (!db) return;
    pthread_mutex_lock(&reg_lock);
    int last = --db->refs == 0;
    if (last)
        for (relay__db **p = &reg; *p; p = &(*p)->next)
            if (*p == db) {
                *p = db->next;
                break;
            }
    pthread_mutex_unlock(&reg_lock);
    if (!last) return;
    mdb_env_close(db->env);
    free(db->path);
    free(db);
}

void relay__db_sync(relay__db *db)
{
    if (db) mdb_env_sync(db->env, 1);
}

/* "E" kind ':' id NUL [dest]: the entity's records, one per destination. */
static void entity_key(ct_buf *k, char kind, const char *id, const char *dest)
{
    ct_buf_reset(k);
    ct_buf_addf(k, "E%c:%s", kind, id);
    ct_buf_addc(k, '\0');
    if (dest) ct_buf_adds(k, dest);
}

static void time_str(int64_t ns, char out[48])
{
    evt_time_format(ns / 1000000000LL, (int32_t)(ns % 1000000000LL), out);
}

/* One record: a failure keeps the "since" of the failure run of the same event. */
static int note_one(relay__db *db, MDB_txn *t, ct_buf *k, const relay__note *n)
{
    MDB_val key = {k->len, k->data}, old;
    char since[48] = "";
    if (n->since_ns) time_str(n->since_ns, since);
    if (!since[0] && !strcmp(n->status, "failing") && mdb_get(t, db->dbi, &key, &old) == 0) {
        json_error_t je;
        json_t *o = json_loadb(old.mv_data, old.mv_size, 0, &je);
        const char *ev = json_string_value(json_object_get(o, "eventId"));
        const char *os = json_string_value(json_object_get(o, "since"));
        if (ev && os && !strcmp(ev, n->event_id) && strlen(os) < sizeof since) snprintf(since, sizeof since, "%s", os);
        json_decref(o);
    }
    char at[48];
    time_str(n->at_ns, at);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "destination", n->dest, "status", n->status, "type", n->type,
                          "eventId", n->event_id, "at", at);
    if (!strcmp(n->status, "failing") || !strcmp(n->status, "queued"))
        json_object_set_new(o, "since", json_string(since[0] ? since : at));
    if (n->error && *n->error) json_object_set_new(o, "error", json_string(n->error));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    MDB_val v = {txt ? strlen(txt) : 0, txt};
    int rc = txt ? mdb_put(t, db->dbi, &key, &v, 0) : ENOMEM;
    free(txt);
    return rc;
}

int relay__db_note_key(relay__db *db, MDB_txn *t, char kind, const char *id, const char *dest, const relay__note *n)
{
    ct_buf k = {0};
    entity_key(&k, kind, id, dest);
    int rc;
    if (n) {
        rc = note_one(db, t, &k, n);
    } else {
        MDB_val key = {k.len, k.data};
        rc = mdb_del(t, db->dbi, &key, NULL);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    ct_buf_free(&k);
    return rc;
}

/* The records of one event, in t. */
static int note_event(relay__db *db, MDB_txn *t, const evt_event *e, const relay__note *n, ct_buf *k)
{
    const char *ship[16];
    size_t ns = relay_ready_ids(e, ship, 16);
    int rc = 0;
    if (e->order_id) entity_key(k, 'o', e->order_id, n->dest), rc = note_one(db, t, k, n);
    for (size_t i = 0; !rc && i < ns; i++) entity_key(k, 's', ship[i], n->dest), rc = note_one(db, t, k, n);
    if (!rc && e->route_id) entity_key(k, 'r', e->route_id, n->dest), rc = note_one(db, t, k, n);
    return rc;
}

void relay__db_note_many(relay__db *db, const evt_event *const *evs, size_t count, const relay__note *n)
{
    if (!db || !count) return;
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(db->env, NULL, 0, &t);
    ct_buf k = {0};
    for (size_t i = 0; i < count && !rc; i++) {
        relay__note one = *n;
        one.type = evt_type_name(evs[i]);
        one.event_id = evs[i]->event_id;
        rc = note_event(db, t, evs[i], &one, &k);
    }
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    if (rc) ct_log(CT_LOG_WARN, "relay", "%s: cannot record what it did about %s: %s", n->dest, evs[0]->event_id,
                   mdb_strerror(rc));
    ct_buf_free(&k);
}

void relay__db_note(relay__db *db, const evt_event *e, const relay__note *n)
{
    relay__note one = *n;
    relay__db_note_many(db, &e, 1, &one);
}

struct relay_reader {
    relay__db *db;
    MDB_txn *t;
};

relay_reader *relay_reader_open(const char *state_dir)
{
    relay__db *db = relay__db_open(state_dir, 0);
    MDB_txn *t = NULL;
    if (!db || mdb_txn_begin(db->env, NULL, MDB_RDONLY, &t) != 0) {
        relay__db_close(db);
        return NULL;
    }
    relay_reader *rd = ct_calloc(1, sizeof *rd);
    rd->db = db;
    rd->t = t;
    return rd;
}

void relay_reader_close(relay_reader *rd)
{
    if (!rd) return;
    mdb_txn_abort(rd->t);
    relay__db_close(rd->db);
    free(rd);
}

json_t *relay_reader_entity(relay_reader *rd, char kind, const char *id)
{
    json_t *out = json_array();
    MDB_cursor *cur = NULL;
    if (!rd || !id || strlen(id) > RELAY_ID_MAX || mdb_cursor_open(rd->t, rd->db->dbi, &cur) != 0) return out;
    ct_buf k = {0};
    entity_key(&k, kind, id, NULL);
    MDB_val key = {k.len, k.data}, v;
    for (int rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE); !rc && json_array_size(out) < 256;
         rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        if (key.mv_size < k.len || memcmp(key.mv_data, k.data, k.len) != 0) break;
        json_error_t je;
        json_t *o = json_loadb(v.mv_data, v.mv_size, 0, &je);
        if (json_is_object(o)) json_array_append_new(out, o);
        else json_decref(o);
    }
    ct_buf_free(&k);
    mdb_cursor_close(cur);
    return out;
}
