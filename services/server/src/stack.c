/* The stack of civetweb's worker threads.
 *
 * Debian's civetweb is built with USE_STACK_SIZE=102400: every thread it starts (the workers that run
 * our request and websocket handlers, the master thread) asks pthread_attr_setstacksize for 100 KiB.
 * Every recursion on input is bounded on its own (CT_JSON_MAX_DEPTH), but 100 KiB leaves little room
 * for the libraries under a handler (jansson, LMDB, protobuf-c, libc's formatting), so this process
 * raises any stack asked for below SERVER_MIN_STACK to it. The definition here takes the place of
 * libc's for the whole program (civetweb's calls bind to it); it forwards to libc's. A larger stack
 * costs address space only: pages are touched as they are used. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "server_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

typedef int (*setstacksize_fn)(pthread_attr_t *, size_t);

int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size)
{
    static setstacksize_fn real;
    setstacksize_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!f) {
        f = (setstacksize_fn)dlsym(RTLD_NEXT, "pthread_attr_setstacksize");
        if (!f) return EINVAL;
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    return f(attr, size < SERVER_MIN_STACK ? SERVER_MIN_STACK : size);
}

size_t server__min_stack(void) { return SERVER_MIN_STACK; }
