/* towerd up's own nats-server: started on a free loopback port, with credentials made at each start. */
#ifndef TOWERD_UP_NATS_H
#define TOWERD_UP_NATS_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus.h"
#include "ct.h"

/* The user name of up's own clients; the password is new at every start. */
#define UP_NATS_USER "tower-up"

typedef struct up_nats {
    pid_t pid;
    int port, mport;    /* client port, monitoring port (both on 127.0.0.1) */
    char name[48];      /* server_name, to tell our server from another one on the port */
    char url[64];       /* nats://127.0.0.1:PORT */
    char password[65];  /* 32 random bytes in hex; never logged */
    char *log_path;     /* DIR/nats/nats-server.log */
    char *client_conf;  /* DIR/nats/client.conf (0600): [nats] url, user, password for towerd --config */
} up_nats;

/* The nats-server binary: the flag's path, else the first one in PATH, /usr/sbin, /usr/bin; NULL if none. */
char *up_nats_find_server(const char *flag);

/* Make fresh credentials, write DIR/nats/nats.conf (0600: loopback only, JetStream capped, an authorization
   block), start nats-server with it, wait until it answers, then write DIR/nats/client.conf (0600). */
ct_status up_nats_start(up_nats *n, const char *bin, const char *dir, uint64_t max_mem, uint64_t max_file,
                        volatile sig_atomic_t *stop);

/* Point bus options at our server, with our credentials; url1 is room for the one URL (borrowed from n). */
void up_nats_bus_opts(const up_nats *n, bus_opts *o, const char *url1[1]);

/* Send sig, then wait up to timeout_s before SIGKILL; reaps the child. */
void up_nats_stop(up_nats *n, int sig, int timeout_s);

/* 1 (and reaped) when the server exited by itself. */
int up_nats_exited(up_nats *n);

/* Print the end of the server's log on stderr. */
void up_nats_log_tail(const up_nats *n);

/* Free the paths and wipe the password (the server must be stopped). */
void up_nats_free(up_nats *n);

#endif
