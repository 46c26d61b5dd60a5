/* A consistent hot copy of a store: LMDB's compacting copy from one read snapshot, into a new data directory. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The backup is laid out as a fresh store is (store.c locate): OUT/gen-1 and OUT/current -> gen-1, so that
 * every command takes --data OUT and a later rebuild continues with gen-2. */
#define BACKUP_GEN "gen-1"

/* A writer that grows the map while the copy starts makes LMDB answer MDB_MAP_RESIZED: adopt and retry. */
#define BACKUP_ATTEMPTS 8

/* Whether out may receive the backup: missing, or an empty directory. Logs why not. */
static ct_status check_out(const char *out)
{
    struct stat sb;
    if (lstat(out, &sb) != 0) {
        if (errno == ENOENT) return CT_OK;
        ct_log(CT_LOG_ERROR, "store", "cannot look at %s: %s", out, strerror(errno));
        return CT_IO;
    }
    int empty = 0;
    DIR *d = S_ISDIR(sb.st_mode) ? opendir(out) : NULL;
    if (d) {
        struct dirent *e;
        empty = 1;
        while (empty && (e = readdir(d)) != NULL) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        closedir(d);
    }
    if (empty) return CT_OK;
    ct_log(CT_LOG_ERROR, "store", "%s exists and is not an empty directory: a backup goes into a new directory",
           out);
    return CT_CONFLICT;
}

/* Remove the temporary backup: its files, one level of directories. Best effort. */
static void remove_tmp(const char *tmp)
{
    const char *files[] = {BACKUP_GEN "/data.mdb", BACKUP_GEN "/lock.mdb", "current"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = ct_sprintf("%s/%s", tmp, files[i]);
        unlink(p);
        free(p);
    }
    char *gen = ct_sprintf("%s/" BACKUP_GEN, tmp);
    rmdir(gen);
    free(gen);
    rmdir(tmp);
}

/* fsync a directory, so that the names created in it survive a host crash. */
static ct_status sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok = fd >= 0 && fsync(fd) == 0;
    if (!ok) ct_log(CT_LOG_ERROR, "store", "cannot sync directory %s: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    return ok ? CT_OK : CT_IO;
}

/* The directory holding path (a new string), "." when it has none. */
static char *parent_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return ct_strdup(".");
    if (slash == path) return ct_strdup("/");
    return ct_sprintf("%.*s", (int)(slash - path), path);
}

/* Copy the live environment into path, compacted, from one read snapshot, then fsync it. */
static ct_status copy_env(store *src, const char *path)
{
    ct_status st = CT_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        ct_log(CT_LOG_ERROR, "store", "cannot create %s: %s", path, strerror(errno));
        return CT_IO;
    }
    int rc = MDB_MAP_RESIZED;
    for (int i = 0; rc == MDB_MAP_RESIZED && i < BACKUP_ATTEMPTS; i++) {
        /* The handle is ours alone and has no transaction open: it may adopt the new size. */
        if (i > 0) {
            ct_log(CT_LOG_DEBUG, "store", "%s: the writer grew the map as the copy began: copying again", src->dir);
            mdb_env_set_mapsize(src->env, 0);
        }
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            rc = errno;
            break;
        }
        rc = mdb_env_copyfd2(src->env, fd, MDB_CP_COMPACT);
    }
    if (rc) st = store__fail(src, rc, "copy the store");
    if (st == CT_OK && fsync(fd) != 0) {
        ct_log(CT_LOG_ERROR, "store", "cannot sync %s: %s", path, strerror(errno));
        st = CT_IO;
    }
    if (close(fd) != 0 && st == CT_OK) {
        ct_log(CT_LOG_ERROR, "store", "cannot write %s: %s", path, strerror(errno));
        st = CT_IO;
    }
    return st;
}

/* Open the copy as every command will (through root/current) and read its totals: the copy's own
 * checkpoint, whatever the live store committed since. */
static ct_status read_copy(const char *root, store_backup_info *info)
{
    store *s = NULL;
    store_reader *r = NULL;
    store_opts o = {.dir = root, .read_only = 1};
    ct_status st = store_open(&s, &o);
    if (st == CT_OK) st = store_reader_begin(s, &r);
    if (st == CT_OK) store_reader_stats(r, &info->stats);
    store_reader_end(r);
    store_close(s);
    /* The lock file the open made belongs to no process any more: the backup is the data file alone. */
    char *lock = ct_sprintf("%s/" BACKUP_GEN "/lock.mdb", root);
    unlink(lock);
    free(lock);
    return st;
}

static uint64_t file_size(const char *dir, const char *name)
{
    struct stat sb;
    char *p = ct_sprintf("%s/%s", dir, name);
    uint64_t n = stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    free(p);
    return n;
}

/* Fill tmp (a new directory) with the copy and its link, each made durable. */
static ct_status fill_tmp(store *src, const char *tmp, store_backup_info *info)
{
    char *gen = ct_sprintf("%s/" BACKUP_GEN, tmp), *data = ct_sprintf("%s/data.mdb", gen);
    char *link = ct_sprintf("%s/current", tmp);
    ct_status st = CT_OK;
    if (mkdir(gen, 0755) != 0 || symlink(BACKUP_GEN, link) != 0) {
        ct_log(CT_LOG_ERROR, "store", "cannot lay out %s: %s", tmp, strerror(errno));
        st = CT_IO;
    }
    if (st == CT_OK) st = copy_env(src, data);
    if (st == CT_OK) st = read_copy(tmp, info);
    if (st == CT_OK) st = sync_dir(gen);
    if (st == CT_OK) st = sync_dir(tmp);
    info->bytes = file_size(gen, "data.mdb");
    free(gen);
    free(data);
    free(link);
    return st;
}

/* Give the finished backup its name: a crash before this leaves only OUT.tmp-PID, never a half OUT. */
static ct_status publish_tmp(const char *tmp, const char *out)
{
    if (rename(tmp, out) != 0) {
        int err = errno;
        if (err == ENOTEMPTY || err == EEXIST || err == ENOTDIR) {
            ct_log(CT_LOG_ERROR, "store", "%s was filled while the backup ran: a backup goes into a new directory",
                   out);
            return CT_CONFLICT;
        }
        ct_log(CT_LOG_ERROR, "store", "cannot rename %s to %s: %s", tmp, out, strerror(err));
        return CT_IO;
    }
    char *parent = parent_of(out);
    ct_status st = sync_dir(parent);
    free(parent);
    return st;
}

ct_status store_backup(const char *dir, const char *out_dir, store_backup_info *info)
{
    memset(info, 0, sizeof *info);
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--; /* "OUT/" names OUT: its sibling is OUT.tmp-PID */
    char *out = ct_sprintf("%.*s", (int)len, out_dir), *tmp = ct_sprintf("%s.tmp-%ld", out, (long)getpid());
    store *src = NULL;
    int made = 0;
    ct_status st = check_out(out);
    if (st == CT_OK) {
        store_opts o = {.dir = dir, .read_only = 1};
        st = store_open(&src, &o);
    }
    if (st == CT_OK && mkdir(tmp, 0755) != 0) {
        ct_log(CT_LOG_ERROR, "store", "cannot create %s: %s", tmp, strerror(errno));
        st = CT_IO;
    }
    made = st == CT_OK;
    if (st == CT_OK) {
        info->source_bytes = file_size(store_env_dir(src), "data.mdb");
        st = fill_tmp(src, tmp, info);
    }
    store_close(src);
    if (st == CT_OK) st = publish_tmp(tmp, out);
    if (st != CT_OK && made) remove_tmp(tmp);
    free(out);
    free(tmp);
    return st;
}
