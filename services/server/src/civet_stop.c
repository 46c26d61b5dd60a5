/* Stopping civetweb without its 2-second wait.
 *
 * mg_stop() raises civetweb's stop flag and then waits for its master thread, which looks at the flag
 * only between polls of the listening socket, and Debian's civetweb polls for 2 s at a time: SIGTERM to
 * exit of an idle `towerd serve` took up to 2 s, 1.5 s at the median (tools/bench/bench_stop.py), nearly
 * all of it this wait. A connection to the
 * listening port ends the poll at once. So while mg_stop() waits, a helper thread connects to the port
 * every 10 ms (and closes at once); the master thread takes the connection, sees the flag and ends, and
 * civetweb closes what it accepted. When the helper cannot connect (a host name other than localhost,
 * which is not looked up here; an address it cannot reach; no thread), the stop is only as slow as before. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "server.h"

#include <civetweb.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    struct addrinfo *ai; /* where to connect (owned) */
    int done;            /* set once mg_stop returned (atomic) */
} waker;

/* The host part of a civetweb listening address ("HOST:PORT", "[V6]:PORT" or "PORT"), as a host to
 * connect to: a wildcard becomes the loopback address of its family. */
static void listen_host(const char *listen, char *host, size_t cap)
{
    const char *h = "127.0.0.1";
    size_t n = strlen(h);
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (listen && listen[0] == '[') {
        const char *end = strchr(listen, ']');
        h = listen + 1;
        n = end ? (size_t)(end - h) : 0;
    } else if (colon && colon > listen) {
        h = listen;
        n = (size_t)(colon - listen);
    }
    if (n == 0 || n >= cap) {
        h = "127.0.0.1";
        n = strlen(h);
    }
    memcpy(host, h, n);
    host[n] = '\0';
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "localhost") == 0) snprintf(host, cap, "127.0.0.1");
    if (strcmp(host, "::") == 0) snprintf(host, cap, "::1");
}

static void *wake_master(void *arg)
{
    waker *w = arg;
    const struct timespec tick = {0, 10 * 1000 * 1000};
    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
        int fd = socket(w->ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            (void)connect(fd, w->ai->ai_addr, w->ai->ai_addrlen);
            close(fd);
        }
        nanosleep(&tick, NULL);
    }
    return NULL;
}

void server_civet_stop(struct mg_context *ctx, const char *listen)
{
    if (!ctx) return;
    struct mg_server_port port;
    memset(&port, 0, sizeof port);
    char host[256], serv[16];
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST; /* never a DNS lookup while stopping */
    listen_host(listen, host, sizeof host);
    if (mg_get_server_ports(ctx, 1, &port) == 1 && port.port > 0) {
        snprintf(serv, sizeof serv, "%d", port.port);
        if (getaddrinfo(host, serv, &hints, &ai) != 0) ai = NULL;
    }
    waker w = {ai, 0};
    pthread_t th;
    int started = ai && pthread_create(&th, NULL, wake_master, &w) == 0;
    mg_stop(ctx);
    __atomic_store_n(&w.done, 1, __ATOMIC_RELEASE);
    if (started) pthread_join(th, NULL);
    if (ai) freeaddrinfo(ai);
}
