/* Internals of the relay shared by its files. */
#ifndef RELAY_INT_H
#define RELAY_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

#include "ct_metrics.h"
#include "relay.h"

/* ---- HTTP (relay_http.c) ---- */

/* One destination's HTTP client: a libcurl easy handle, reused (its connection too). */
typedef struct relay__http {
    CURL *curl;
} relay__http;

/* What one attempt got: the HTTP status (0: no answer), why it failed, and Retry-After (-1: none). */
typedef struct relay__outcome {
    int status;
    char error[200];
    int64_t retry_after_ns;
} relay__outcome;

/* libcurl's global set-up: once per process, before any thread uses it. */
void relay__http_global(void);
void relay__http_init(relay__http *h);
void relay__http_free(relay__http *h);
/* POST body to the destination with its headers (webhook-id = id, webhook-timestamp, webhook-signature when
 * it has a secret), within its timeout. */
void relay__http_post(relay__http *h, const relay_dest *d, const char *id, const char *body, size_t len,
                      relay__outcome *out);

/* ---- SMTP (relay_smtp.c) ---- */

/* Send the event as one email (relay_email_message) to a kind = email destination over the same libcurl
 * handle, within its timeout. out->status: the SMTP reply code of a failure (4xx: transient, retried; 5xx:
 * refused, a dead letter), 250 when accepted, 0 when no reply (no connection, a timeout). */
void relay__smtp_send(relay__http *h, const relay_dest *d, const char *id, const evt_event *e, uint64_t seq,
                      relay__outcome *out);

/* ---- payloads (relay_payload.c, pure) ---- */

/* The body a destination gets for an event (docs/outbound.md): the versioned JSON envelope with the event,
 * or a Slack text. */
void relay__payload(const relay_dest *d, const evt_event *e, uint64_t seq, ct_buf *out);

/* ---- the state directory and delivery (relay.c) ---- */

typedef struct relay relay;
char *relay__state_path(const char *dir, const char *name, const char *suffix);
int relay__write_file(const char *path, const char *data, size_t len);
uint64_t relay__read_checkpoint(const char *dir, const char *name);
int relay__deliver(relay *r, void *worker, const evt_event *e, uint64_t seq, int redrive);

#endif
