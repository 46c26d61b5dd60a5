/* The store's environment: opening, format version, reader transactions, small shared helpers. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE ((size_t)256 << 20)

ct_status store__fail(const store *s, int rc, const char *what)
{
    struct statvfs fs;
    if ((rc == EIO || rc == ENOSPC || rc == EFBIG) && s && s->dir && statvfs(s->dir, &fs) == 0) {
        /* LMDB reports a write cut short by a full disk as EIO: say how much room is left. */
        unsigned long long avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
        ct_log(CT_LOG_ERROR, "store", "%s: %s (store %s; %llu bytes free on its file system%s)", what,
               mdb_strerror(rc), s->dir, avail,
               rc == EFBIG ? ": the file size limit (ulimit -f) was reached"
               : avail < ((unsigned long long)4 << 20) ? ": the disk is full" : "");
        return CT_IO;
    }
    ct_log(CT_LOG_ERROR, "store", "%s: %s (store %s)", what, mdb_strerror(rc), s ? s->dir : "?");
    if (rc == MDB_MAP_FULL) return CT_MAP_FULL;
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        return CT_STORE_CORRUPT;
    if (rc == MDB_NOTFOUND) return CT_NOT_FOUND;
    return CT_STORE;
}

void store__put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t store__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

void store__time_key(unsigned char *p, const Tower__V1__Timestamp *t)
{
    store__put_u64(p, (uint64_t)t->seconds ^ 0x8000000000000000ULL);
    uint32_t n = (uint32_t)t->nanos;
    p[8] = (unsigned char)(n >> 24);
    p[9] = (unsigned char)(n >> 16);
    p[10] = (unsigned char)(n >> 8);
    p[11] = (unsigned char)n;
}

void store__ns_time_key(unsigned char *p, int64_t ns)
{
    Tower__V1__Timestamp t = TOWER__V1__TIMESTAMP__INIT;
    t.seconds = ns / 1000000000LL;
    t.nanos = (int32_t)(ns % 1000000000LL);
    if (t.nanos < 0) {
        t.nanos += 1000000000;
        t.seconds--;
    }
    store__time_key(p, &t);
}

int64_t store__time_key_ns(const unsigned char *p)
{
    int64_t secs = (int64_t)(store__get_u64(p) ^ 0x8000000000000000ULL);
    uint32_t nanos = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
    return secs * 1000000000LL + (int64_t)nanos;
}

int64_t store__ts_ns(const Tower__V1__Timestamp *t) { return t ? t->seconds * 1000000000LL + t->nanos : 0; }

void store__json_time(json_t *o, const char *k, const Tower__V1__Timestamp *t)
{
    if (!t) return;
    char buf[48];
    evt_time_format(t->seconds, t->nanos, buf);
    json_object_set_new(o, k, json_string(buf));
}

uint64_t store__meta_u64(MDB_txn *txn, const store *s, const char *key)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    if (mdb_get(txn, s->meta, &k, &v) != 0 || v.mv_size != 8) return 0;
    return store__get_u64(v.mv_data);
}

size_t store__hour_count_key(char *buf, size_t cap, int view, char kind, const char *part, int64_t hour)
{
    /* Without printf: the writer builds one for every index entry it writes or deletes. */
    const char *vn = fold_view_name((fold_view)view);
    size_t vl = strlen(vn), pl = strlen(part), n = 0;
    if (cap < 5 + vl + 3 + pl + 1 + 8 + 1 || hour > 99999999) {
        if (cap) *buf = '\0';
        return 0;
    }
    memcpy(buf, "hcnt/", 5);
    n = 5;
    memcpy(buf + n, vn, vl);
    n += vl;
    buf[n++] = '/';
    buf[n++] = kind;
    buf[n++] = '/';
    memcpy(buf + n, part, pl);
    n += pl;
    buf[n++] = '/';
    if (hour >= 0) {
        for (int i = 7; i >= 0; i--, hour /= 10) buf[n + (size_t)i] = (char)('0' + hour % 10);
        n += 8;
    }
    buf[n] = '\0';
    return n;
}

int store__meta_put_u64(MDB_txn *txn, const store *s, const char *key, uint64_t val)
{
    unsigned char b[8];
    store__put_u64(b, val);
    MDB_val k = {strlen(key), (void *)key}, v = {8, b};
    return mdb_put(txn, s->meta, &k, &v, 0);
}

static int open_dbi(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *out)
{
    return mdb_dbi_open(txn, name, flags, out);
}

/* Create or check the format version, and open every table, in one transaction. */
static ct_status open_tables(store *s)
{
    MDB_txn *txn = NULL;
    ct_status st = CT_OK;
    unsigned create = s->read_only ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) return store__fail(s, rc, "begin the opening transaction");

    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } tables[] = {
        {"meta", 0, &s->meta},          {"events", 0, &s->events},   {"tl", MDB_DUPSORT, &s->tl},
        {"links", 0, &s->links},        {"oship", MDB_DUPSORT, &s->oship}, {"items", 0, &s->items},
        {"vidx", 0, &s->vidx},          {"vwh", 0, &s->vwh},         {"vca", 0, &s->vca},
        {"dlq", 0, &s->dlq},            {"dlraw", MDB_DUPSORT, &s->dlraw},
        {"cust", MDB_DUPSORT, &s->cust},
        {"vrule", 0, &s->vrule},        {"dues", 0, &s->dues},       {"duek", 0, &s->duek},
        {"closed", 0, &s->closed},      {"cidx", 0, &s->cidx},       {"vuna", 0, &s->vuna},
        {"vdue", 0, &s->vdue},          {"vsnz", 0, &s->vsnz},       {"trend", 0, &s->trend},
        {"risk_h", 0, &s->risk_h},      {"risk_samp", 0, &s->risk_samp}, {"risk_open", 0, &s->risk_open},
        {"ref", 0, &s->ref},            {"refuse", 0, &s->refuse},
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        rc = open_dbi(txn, tables[i].name, tables[i].flags | create, tables[i].dbi);
        if (rc == MDB_NOTFOUND && s->read_only) {
            /* A table added by a later format: say so rather than "not a store". */
            uint64_t ver = i > 0 ? store__meta_u64(txn, s, "format") : 0;
            if (ver && ver != STORE_FORMAT_VERSION) {
                ct_log(CT_LOG_ERROR, "store",
                       "%s has store format version %llu, this build reads version %d: "
                       "rebuild the store from the stream (towerd rebuild) or use a matching towerd",
                       s->dir, (unsigned long long)ver, STORE_FORMAT_VERSION);
                st = CT_STORE_VERSION;
                goto out;
            }
            ct_log(CT_LOG_ERROR, "store", "%s is not a tower store (table %s missing)", s->dir, tables[i].name);
            st = CT_NOT_FOUND;
            goto out;
        }
        if (rc) {
            st = store__fail(s, rc, "open a table");
            goto out;
        }
    }

    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        if (s->read_only) {
            ct_log(CT_LOG_ERROR, "store", "%s has no format version: not a tower store", s->dir);
            st = CT_NOT_FOUND;
            goto out;
        }
        rc = store__meta_put_u64(txn, s, "format", STORE_FORMAT_VERSION);
        if (rc) {
            st = store__fail(s, rc, "write the format version");
            goto out;
        }
    } else if (rc) {
        st = store__fail(s, rc, "read the format version");
        goto out;
    } else {
        uint64_t ver = v.mv_size == 8 ? store__get_u64(v.mv_data) : 0;
        if (ver != STORE_FORMAT_VERSION) {
            ct_log(CT_LOG_ERROR, "store",
                   "%s has store format version %llu, this build reads version %d: "
                   "rebuild the store from the stream (towerd rebuild) or use a matching towerd",
                   s->dir, (unsigned long long)ver, STORE_FORMAT_VERSION);
            st = CT_STORE_VERSION;
            goto out;
        }
    }
    s->id = store__meta_u64(txn, s, STORE_META_ID);
    if (!s->id && !s->read_only) {
        /* Tells this store's change notices from another's on the same bus (store.h STORE_META_ID). */
        uint64_t id = 0;
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id || !id)
            id = ct_hash64(s->dir, strlen(s->dir)) ^ (uint64_t)ct_now_ns() ^ ((uint64_t)getpid() << 32);
        s->id = id ? id : 1; /* 0 means "no id" */
        rc = store__meta_put_u64(txn, s, STORE_META_ID, s->id);
        if (rc) {
            st = store__fail(s, rc, "write the store's id");
            goto out;
        }
    }
    /* Committed even when read-only: table handles opened in an aborted transaction are closed. */
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) st = store__fail(s, rc, "commit the opening transaction");
out:
    if (txn) mdb_txn_abort(txn);
    return st;
}

/* The generation DIR/current points at, or NULL if there is no such link. */
static char *current_gen(const char *root)
{
    char *link = ct_sprintf("%s/current", root);
    char buf[256];
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    free(link);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    return ct_strdup(buf);
}

/* `towerd up` keeps its store in DIR/store (beside DIR/nats, DIR/relay...): a DIR that holds no store of its
 * own (no current link, no data file) but DIR/store/current is that store, so that every command takes the
 * same --data DIR. The directory to use (caller frees). */
static char *resolve_root(const char *dir)
{
    struct stat sb;
    char *cur = ct_sprintf("%s/current", dir), *data = ct_sprintf("%s/data.mdb", dir),
         *up = ct_sprintf("%s/store/current", dir);
    int own = lstat(cur, &sb) == 0 || stat(data, &sb) == 0, nested = !own && lstat(up, &sb) == 0;
    free(cur);
    free(data);
    free(up);
    return nested ? ct_sprintf("%s/store", dir) : ct_strdup(dir);
}

/* Point DIR/current at gen, atomically: a new link renamed over the old one. */
static ct_status point_current(const char *root, const char *gen)
{
    char *tmp = ct_sprintf("%s/current.tmp", root), *link = ct_sprintf("%s/current", root);
    ct_status st = CT_OK;
    unlink(tmp);
    if (symlink(gen, tmp) != 0 || rename(tmp, link) != 0) {
        ct_log(CT_LOG_ERROR, "store", "cannot point %s at %s: %s", link, gen, strerror(errno));
        st = CT_IO;
    }
    free(tmp);
    free(link);
    return st;
}

/* Find or create the environment directory under root. */
static ct_status locate(store *s, const char *root, int flat_wanted)
{
    struct stat sb;
    if (stat(root, &sb) != 0) {
        if (s->read_only || errno != ENOENT) {
            ct_log(CT_LOG_ERROR, "store", "cannot open store %s: %s", root, strerror(errno));
            return errno == ENOENT ? CT_NOT_FOUND : CT_IO;
        }
        if (mkdir(root, 0755) != 0) {
            ct_log(CT_LOG_ERROR, "store", "cannot create store directory %s: %s", root, strerror(errno));
            return CT_IO;
        }
    }
    char *gen = current_gen(root);
    if (gen) {
        s->gen = gen;
        s->dir = ct_sprintf("%s/%s", root, gen);
        return CT_OK;
    }
    /* A flat environment (one generation opened directly, as a rebuild does). */
    char *flat = ct_sprintf("%s/data.mdb", root);
    int is_flat = stat(flat, &sb) == 0;
    free(flat);
    if (is_flat || s->read_only || flat_wanted) {
        s->gen = ct_strdup("");
        s->dir = ct_strdup(root);
        return CT_OK;
    }
    s->gen = ct_strdup("gen-1");
    s->dir = ct_sprintf("%s/gen-1", root);
    if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
        ct_log(CT_LOG_ERROR, "store", "cannot create %s: %s", s->dir, strerror(errno));
        return CT_IO;
    }
    /* DIR/current is made only once the generation's tables are committed (open_once): a reader never
       finds a current generation that is not a store yet (a writer killed in between leaves gen-1 without
       current, and the next writer opens it again). */
    s->new_gen = 1;
    return CT_OK;
}

const char *store_env_dir(const store *s) { return s->dir; }

int store_generation_changed(const store *s)
{
    if (!s->gen || !*s->gen) return 0;
    char *now = current_gen(s->root);
    int changed = now && strcmp(now, s->gen) != 0;
    free(now);
    return changed;
}

static ct_status rebuild_begin(const char *root, char **out_dir);
static ct_status rebuild_commit(const char *root, const char *gen_dir);

ct_status store_rebuild_begin(const char *dir, char **out_dir)
{
    char *rootp = resolve_root(dir);
    ct_status st = rebuild_begin(rootp, out_dir);
    free(rootp);
    return st;
}

static ct_status rebuild_begin(const char *root, char **out_dir)
{
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        ct_log(CT_LOG_ERROR, "store", "cannot create store directory %s: %s", root, strerror(errno));
        return CT_IO;
    }
    char *gen = current_gen(root);
    long n = gen && !strncmp(gen, "gen-", 4) ? strtol(gen + 4, NULL, 10) : 0;
    free(gen);
    for (;;) {
        char *dir = ct_sprintf("%s/gen-%ld", root, ++n);
        if (mkdir(dir, 0755) == 0) {
            *out_dir = dir;
            return CT_OK;
        }
        int err = errno;
        free(dir);
        if (err != EEXIST) {
            ct_log(CT_LOG_ERROR, "store", "cannot create a generation in %s: %s", root, strerror(err));
            return CT_IO;
        }
    }
}

/* Remove the files in dir: 0, or -1 (errno set) when it cannot be read or a file cannot be removed. */
static int remove_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int err = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = ct_sprintf("%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && errno != ENOENT) err = errno;
        free(p);
    }
    closedir(d);
    errno = err;
    return err ? -1 : 0;
}

static void remove_tree(const char *dir)
{
    remove_files(dir);
    rmdir(dir);
}

ct_status store_rebuild_reset(const char *gen_dir)
{
    if (remove_files(gen_dir) == 0) return CT_OK;
    ct_log(CT_LOG_ERROR, "store", "cannot empty the generation %s: %s", gen_dir, strerror(errno));
    return CT_IO;
}

ct_status store_rebuild_commit(const char *dir, const char *gen_dir)
{
    char *rootp = resolve_root(dir);
    ct_status st = rebuild_commit(rootp, gen_dir);
    free(rootp);
    return st;
}

static ct_status rebuild_commit(const char *root, const char *gen_dir)
{
    const char *base = strrchr(gen_dir, '/');
    base = base ? base + 1 : gen_dir;
    char *old = current_gen(root);
    ct_status st = point_current(root, base);
    if (st == CT_OK && old && strcmp(old, base) != 0) {
        /* Readers that still have the old generation open keep their mapping. */
        char *p = ct_sprintf("%s/%s", root, old);
        remove_tree(p);
        free(p);
    }
    free(old);
    return st;
}

/* Guarding the check below: a SIGBUS of this thread while it runs jumps back to it. */
static __thread sigjmp_buf *bus_jump;

static void on_sigbus(int sig)
{
    if (bus_jump) siglongjmp(*bus_jump, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Whether every page from `from` to `last` is in the free list: pages past the end of a healthy file
 * are never-written pages a transaction allocated and freed again, which LMDB keeps there. Reading the
 * free list of a truncated file may touch a page past its end; that SIGBUS is caught and means "no".
 * Returns 1 (all free), 0 (some page in use is missing) or -1 (a page of the free list is missing). */
static int tail_is_free(store *s, size_t from, size_t last)
{
    const size_t need = last + 1 - from;
    unsigned char *const seen = ct_calloc(need, 1);
    MDB_txn *volatile txn = NULL;
    MDB_cursor *volatile cur = NULL;
    volatile int result = 0;
    sigjmp_buf jb;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old);
    if (sigsetjmp(jb, 1) == 0) {
        bus_jump = &jb;
        MDB_txn *t = NULL;
        MDB_cursor *c = NULL;
        if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t) == 0) {
            txn = t;
            if (mdb_cursor_open(t, 0 /* the free list */, &c) == 0) {
                cur = c;
                size_t seen_n = 0;
                MDB_val k, v;
                int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
                while (rc == 0) {
                    /* An ID list: its length, then page numbers (not necessarily aligned). */
                    size_t cnt = v.mv_size / sizeof(size_t), n = 0;
                    if (cnt) memcpy(&n, v.mv_data, sizeof n);
                    if (n > cnt - 1) n = cnt ? cnt - 1 : 0;
                    for (size_t i = 1; i <= n; i++) {
                        size_t pg;
                        memcpy(&pg, (const char *)v.mv_data + i * sizeof pg, sizeof pg);
                        if (pg >= from && pg <= last && !seen[pg - from]) {
                            seen[pg - from] = 1;
                            seen_n++;
                        }
                    }
                    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
                }
                result = seen_n == need;
            }
        }
    } else {
        result = -1;
    }
    bus_jump = NULL;
    sigaction(SIGBUS, &old, NULL);
    if (cur) mdb_cursor_close(cur);
    if (txn) mdb_txn_abort(txn);
    free(seen);
    return result;
}

/* A data file shorter than its last committed transaction says (truncated by a copy, a full disk or a
 * careless hand) would make LMDB touch pages past its end: SIGBUS at the first read. Refuse it here.
 * A healthy file may end a few pages early (pages allocated and freed by one transaction are never
 * written): those are all in the free list. */
static ct_status check_length(store *s, const MDB_envinfo *info)
{
    MDB_stat ms;
    struct stat sb;
    char *path = ct_sprintf("%s/data.mdb", s->dir);
    ct_status st = CT_OK;
    if (mdb_env_stat(s->env, &ms) == 0 && stat(path, &sb) == 0) {
        uint64_t need = ((uint64_t)info->me_last_pgno + 1) * ms.ms_psize;
        int free_tail = 1;
        if ((uint64_t)sb.st_size < need)
            free_tail = tail_is_free(s, (size_t)((uint64_t)sb.st_size / ms.ms_psize), info->me_last_pgno);
        if (free_tail != 1) {
            ct_log(CT_LOG_ERROR, "store",
                   "%s is damaged: it is %llu bytes long but its last committed transaction needs %llu "
                   "(truncated?): rebuild the store from the stream (towerd rebuild --data %s)",
                   path, (unsigned long long)sb.st_size, (unsigned long long)need, s->root);
            st = CT_STORE_CORRUPT;
        }
    }
    free(path);
    return st;
}

/* One writer process per store: LMDB would serialise two, but their checkpoints would mix. */
static ct_status lock_writer(store *s)
{
    char *path = ct_sprintf("%s/writer.lock", s->root);
    ct_status st = CT_OK;
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        ct_log(CT_LOG_ERROR, "store", "cannot open %s: %s", path, strerror(errno));
        st = CT_IO;
    } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        ct_log(CT_LOG_ERROR, "store", "another process is writing the store %s (%s is locked): one writer at a time",
               s->root, path);
        st = CT_CONFLICT;
    }
    free(path);
    return st;
}

/* The map size a new or growing environment starts from: TOWER_STORE_MAP_MIB (1-1048576) when set, else
 * DEFAULT_MAP_SIZE. The writer doubles it whenever it fills (store_apply.c), so this only says where the
 * doubling starts: a smaller start makes small stores smaller on disk; tests use it to cross a growth with
 * little data. */
static size_t default_map_size(void)
{
    const char *v = getenv("TOWER_STORE_MAP_MIB");
    if (!v || !*v) return DEFAULT_MAP_SIZE;
    char *end = NULL;
    errno = 0;
    long long mib = strtoll(v, &end, 10);
    if (errno || end == v || *end || mib < 1 || mib > 1048576) {
        ct_log(CT_LOG_WARN, "store", "TOWER_STORE_MAP_MIB=%.32s is not a number of MiB from 1 to 1048576: using %zu",
               v, DEFAULT_MAP_SIZE >> 20);
        return DEFAULT_MAP_SIZE;
    }
    return (size_t)mib << 20;
}

static ct_status open_once(store **out, const store_opts *opts)
{
    ct_status st = CT_OK;
    store *s = ct_calloc(1, sizeof *s);
    s->lock_fd = -1;
    pthread_rwlock_init(&s->txn_lock, NULL);
    s->root = opts->flat ? ct_strdup(opts->dir) : resolve_root(opts->dir);
    s->read_only = opts->read_only;
    s->map_size = opts->map_size ? opts->map_size : default_map_size();
    s->sla = opts->sla_rules;
    s->trend_drop_before = opts->trend_drop_before_ns;

    struct stat sb;
    st = locate(s, s->root, opts->flat);
    if (st != CT_OK) goto out;
    if (!s->read_only) {
        st = lock_writer(s);
        if (st != CT_OK) goto out;
    }
    if (s->read_only) {
        char *path = ct_sprintf("%s/data.mdb", s->dir);
        int missing = stat(path, &sb) != 0;
        free(path);
        if (missing) {
            if (!opts->probe) ct_log(CT_LOG_ERROR, "store", "no store in %s: fold or run the projector first", opts->dir);
            st = CT_NOT_FOUND;
            goto out;
        }
    }

    int rc = mdb_env_create(&s->env);
    if (!rc) rc = mdb_env_set_maxdbs(s->env, 32);
    if (!rc) rc = mdb_env_set_maxreaders(s->env, opts->max_readers ? opts->max_readers : 1024);
    if (!rc) rc = mdb_env_set_mapsize(s->env, s->map_size);
    if (rc) {
        st = store__fail(s, rc, "create the environment");
        goto out;
    }
    /* NOTLS: LMDB's reader slots are not tied to threads (one thread may hold several readers, and
     * a thread pool's threads come and go); a store_reader itself still ends on the thread that
     * began it (it holds the store's read lock, store.h). NORDAHEAD: the store is read randomly. */
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (s->read_only) flags |= MDB_RDONLY;
    if (opts->no_sync) flags |= MDB_NOSYNC;
    rc = mdb_env_open(s->env, s->dir, flags, 0644);
    if (rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
        /* Both meta pages unreadable: say which file and what to do, not just LMDB's words. */
        ct_log(CT_LOG_ERROR, "store", "%s/data.mdb is damaged (%s): rebuild the store from the stream "
               "(towerd rebuild --data %s)", s->dir, mdb_strerror(rc), s->root);
        st = CT_STORE_CORRUPT;
        goto out;
    }
    if (rc) {
        st = store__fail(s, rc, "open the environment");
        goto out;
    }
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0) {
        if (info.me_mapsize > s->map_size) s->map_size = info.me_mapsize;
        st = check_length(s, &info);
        if (st != CT_OK) goto out;
    }
    st = open_tables(s);
    if (st == CT_OK && s->new_gen) st = point_current(s->root, s->gen);
out:
    if (st != CT_OK) {
        store_close(s);
        return st;
    }
    *out = s;
    return CT_OK;
}

#define STORE_OPEN_ATTEMPTS 64

ct_status store_open(store **out, const store_opts *opts)
{
    /* A reader may resolve DIR/current just before a rebuild swaps it and removes the generation it
     * named: when the open fails and the link has moved meanwhile, open the new generation, for as
     * long as the link keeps moving under the open (several swaps may land inside one open; bounded,
     * for a link that never settles). */
    char *root = resolve_root(opts->dir);
    for (int attempt = 0;; attempt++) {
        char *before = opts->read_only && !opts->flat ? current_gen(root) : NULL;
        ct_status st = open_once(out, opts);
        char *after = st != CT_OK && before ? current_gen(root) : NULL;
        int moved = after && strcmp(before, after) != 0;
        free(before);
        free(after);
        if (st == CT_OK || !moved || attempt == STORE_OPEN_ATTEMPTS - 1) {
            free(root);
            return st;
        }
        ct_log(CT_LOG_INFO, "store", "%s was rebuilt while it was being opened: opening the new generation", opts->dir);
    }
}

void store_close(store *s)
{
    if (!s) return;
    if (s->env) mdb_env_close(s->env);
    if (s->lock_fd >= 0) close(s->lock_fd);
    pthread_rwlock_destroy(&s->txn_lock);
    if (s->wload) store__loader_free(s->wload);
    free(s->wload);
    store__keep_free(s->wkeep);
    free(s->dir);
    free(s->root);
    free(s->gen);
    free(s);
}

size_t store_map_size(store *s) { return s->map_size; }

ct_status store_reader_begin(store *s, store_reader **out)
{
    MDB_txn *txn = NULL;
    pthread_rwlock_rdlock(&s->txn_lock);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
        /* The writer (maybe another process) grew the map: adopt its size, with no
         * transaction of this process open, and retry. */
        pthread_rwlock_unlock(&s->txn_lock);
        pthread_rwlock_wrlock(&s->txn_lock);
        mdb_env_set_mapsize(s->env, 0);
        pthread_rwlock_unlock(&s->txn_lock);
        pthread_rwlock_rdlock(&s->txn_lock);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    }
    if (rc) {
        pthread_rwlock_unlock(&s->txn_lock);
        return store__fail(s, rc, "begin a read transaction");
    }
    store_reader *r = ct_malloc(sizeof *r);
    r->s = s;
    r->txn = txn;
    *out = r;
    return CT_OK;
}

void store_reader_end(store_reader *r)
{
    if (!r) return;
    mdb_txn_abort(r->txn);
    pthread_rwlock_unlock(&r->s->txn_lock);
    free(r);
}

void store_reader_stats(store_reader *r, store_stats *out)
{
    out->applied_seq = store__meta_u64(r->txn, r->s, "applied_seq");
    out->events = store__meta_u64(r->txn, r->s, "stat/events");
    out->duplicates = store__meta_u64(r->txn, r->s, "stat/duplicates");
    out->dead_letters = store__meta_u64(r->txn, r->s, "stat/dead_letters");
}

uint64_t store_reader_meta(store_reader *r, const char *key) { return store__meta_u64(r->txn, r->s, key); }

uint64_t store_reader_count(store_reader *r, fold_view v)
{
    char key[64];
    snprintf(key, sizeof key, "count/%s", fold_view_name(v));
    return store__meta_u64(r->txn, r->s, key);
}

void store_reader_breakdown(store_reader *r, fold_view v, char kind,
                            void (*fn)(void *ctx, const char *id, uint64_t count), void *ctx)
{
    char prefix[64];
    int pl = snprintf(prefix, sizeof prefix, "count/%s/%c/", fold_view_name(v), kind);
    MDB_cursor *c;
    if (mdb_cursor_open(r->txn, r->s->meta, &c) != 0) return;
    MDB_val k = {(size_t)pl, prefix}, val;
    int rc = mdb_cursor_get(c, &k, &val, MDB_SET_RANGE);
    char id[EVT_MAX_ID + 1];
    while (rc == 0 && k.mv_size >= (size_t)pl && !memcmp(k.mv_data, prefix, (size_t)pl)) {
        size_t il = k.mv_size - (size_t)pl;
        if (il > 0 && il <= EVT_MAX_ID && val.mv_size == 8) {
            memcpy(id, (const char *)k.mv_data + pl, il);
            id[il] = 0;
            uint64_t n = store__get_u64(val.mv_data);
            if (n) fn(ctx, id, n);
        }
        rc = mdb_cursor_get(c, &k, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

const char *store_op_name(store_op op)
{
    switch (op) {
    case STORE_OP_ADD: return "add";
    case STORE_OP_UPDATE: return "update";
    case STORE_OP_REMOVE: return "remove";
    }
    return "";
}

void store_changes_free(store_changes *c)
{
    for (size_t i = 0; i < c->n; i++) tower__v1__view_item__free_unpacked(c->v[i].item, NULL);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}
