/* The store's space: the data file, the map it may grow to, and how much of the map is in use. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

ct_status store_space_get(store *s, store_space *out)
{
    MDB_envinfo info;
    MDB_stat ms;
    /* Shared: the map size changes only under the exclusive lock (store_reader_begin, store_apply). */
    pthread_rwlock_rdlock(&s->txn_lock);
    int rc = mdb_env_info(s->env, &info);
    if (!rc) rc = mdb_env_stat(s->env, &ms);
    pthread_rwlock_unlock(&s->txn_lock);
    if (rc) return store__fail(s, rc, "read the environment's size");
    char *path = ct_sprintf("%s/data.mdb", s->dir);
    struct stat sb;
    int st = stat(path, &sb);
    free(path);
    if (st != 0) return CT_IO;
    out->file_bytes = (uint64_t)sb.st_size;
    out->map_bytes = (uint64_t)info.me_mapsize;
    out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    return CT_OK;
}
