/* A destination's reader: one thread that fetches the events stream ahead of the deliveries (up to FEED_DEPTH
 * fetched batches), so that NATS delivers the next messages while the destination encodes, sends and records
 * the last ones. The destination's thread takes the batches in stream order; the checkpoint stays its own. */
#include "relay_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FEED_DEPTH 4
#define FEED_WAIT_MS 500

struct relay__feed {
    relay__worker *w;
    size_t want;              /* messages per fetch */
    uint64_t next_seq;        /* where a (re)opened consumer starts: after the last message queued */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* a batch queued, one taken, or stopping */
    bus_batch q[FEED_DEPTH];  /* a ring of fetched batches, owned until taken */
    size_t head, n;
    int stop;
    void (*wake)(void *);     /* called after a batch is queued (or NULL) */
    void *wake_arg;
};

/* Wait for room in the ring. 0, or -1 when stopping. */
static int wait_room(relay__feed *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->n == FEED_DEPTH && !f->stop && !atomic_load(&f->w->r->stop)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000L; /* a relay stop is seen within 0.1 s */
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&f->cv, &f->mu, &until);
    }
    int rc = f->n < FEED_DEPTH && !f->stop && !atomic_load(&f->w->r->stop) ? 0 : -1;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void push(relay__feed *f, bus_batch *b)
{
    pthread_mutex_lock(&f->mu);
    f->q[(f->head + f->n++) % FEED_DEPTH] = *b;
    f->next_seq = b->v[b->n - 1].seq + 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    memset(b, 0, sizeof *b);
    if (f->wake) f->wake(f->wake_arg);
}

/* A fetched batch goes to the queue (push takes its messages); an empty one is nothing. */
static int feed_take(void *ctx, bus_batch *b)
{
    if (b->n) push(ctx, b);
    return 0;
}

static void *feed_main(void *arg)
{
    relay__feed *f = arg;
    bus_consumer *c = NULL;
    while (wait_room(f) == 0) relay__consume(f->w, &c, f->next_seq, f->want, FEED_WAIT_MS, feed_take, f);
    bus_consumer_close(c);
    return NULL;
}

relay__feed *relay__feed_start(relay__worker *w, uint64_t start_seq, size_t want, void (*wake)(void *),
                               void *wake_arg)
{
    relay__feed *f = ct_calloc(1, sizeof *f);
    f->w = w;
    f->wake = wake;
    f->wake_arg = wake_arg;
    f->want = want;
    f->next_seq = start_seq;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->started = pthread_create(&f->thread, NULL, feed_main, f) == 0;
    if (!f->started) ct_log(CT_LOG_ERROR, "relay", "%s: cannot start its reader: %s", w->d->name, strerror(errno));
    return f;
}

ct_status relay__feed_next(relay__feed *f, int64_t wait_ms, bus_batch *out)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&f->mu);
    int timed_out = 0;
    while (!f->n && !timed_out && !atomic_load(&f->w->r->stop))
        timed_out = pthread_cond_timedwait(&f->cv, &f->mu, &until) == ETIMEDOUT;
    ct_status st = CT_TIMEOUT;
    if (f->n) {
        *out = f->q[f->head];
        f->head = (f->head + 1) % FEED_DEPTH;
        f->n--;
        pthread_cond_broadcast(&f->cv);
        st = CT_OK;
    }
    pthread_mutex_unlock(&f->mu);
    return st;
}

int relay__feed_ready(relay__feed *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->n > 0;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void relay__feed_stop(relay__feed *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->started) pthread_join(f->thread, NULL);
    for (size_t i = 0; i < f->n; i++) bus_batch_free(&f->q[(f->head + i) % FEED_DEPTH]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
