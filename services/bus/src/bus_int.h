/* Internals of the bus adapter shared by its files. */
#ifndef BUS_INT_H
#define BUS_INT_H

#include <nats/nats.h>
#include <pthread.h>

#include "bus.h"

/* One asynchronous publish awaiting its ack. */
typedef struct bus__pending {
    natsMsg *msg;      /* the key: the library hands the same message back */
    size_t tag;
    int attempts;
    int done;
    bus_pub_ack ack;
} bus__pending;

struct bus {
    natsOptions *nopts;
    natsConnection *nc;
    jsCtx *js;
    bus_opts o;
    char *stream, *dlq_stream;
    volatile int connected;
    volatile unsigned conn_gen; /* counts reconnections: server-side state (pull requests) is lost */
    volatile int closing;   /* set by bus_close: the disconnection that follows is ours */
    int closed;             /* the closed callback ran: no callback follows it (under mu) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bus__pending *pend;   /* publishes since the last bus_publish_wait */
    size_t n_pend, cap_pend, n_done;
};

ct_status bus__status(natsStatus s, const char *what);
void bus__ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

#endif
