/* Run a fuzz input where the server runs it: on a thread with the stack of a civetweb worker in
 * Debian's build (100 KiB). On libFuzzer's main thread (8 MiB) a recursion that kills the server
 * would go unnoticed. The stack is given by address (pthread_attr_setstack), so that no floor the
 * program applies to pthread_attr_setstacksize (services/server/src/stack.c) can enlarge it. */
#ifndef FUZZ_SMALL_STACK_H
#define FUZZ_SMALL_STACK_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_WORKER_STACK (100 * 1024)

typedef struct fuzz_input {
    int (*fn)(const uint8_t *, size_t);
    const uint8_t *data;
    size_t size;
} fuzz_input;

static void *fuzz_small_stack_main(void *arg)
{
    fuzz_input *in = arg;
    in->fn(in->data, in->size);
    return NULL;
}

static void fuzz_on_small_stack(int (*fn)(const uint8_t *, size_t), const uint8_t *data, size_t size)
{
    static void *stack;
    if (!stack && posix_memalign(&stack, 4096, FUZZ_WORKER_STACK) != 0) abort();
    fuzz_input in = {fn, data, size};
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    if (pthread_attr_setstack(&attr, stack, FUZZ_WORKER_STACK) != 0 ||
        pthread_create(&t, &attr, fuzz_small_stack_main, &in) != 0) {
        fprintf(stderr, "fuzz: cannot start the small-stack thread\n");
        abort();
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

#endif
