/* One email attempt over libcurl's SMTP (kind = email, docs/outbound.md): MAIL FROM, RCPT TO each recipient,
 * DATA with relay_email_message; the reply code decides whether it is retried. */
#include "relay_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The message, read by libcurl piece by piece (it does the SMTP dot-stuffing). */
typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t on_read(char *buf, size_t size, size_t n, void *ctx)
{
    upload *u = ctx;
    size_t k = size * n < u->left ? size * n : u->left;
    memcpy(buf, u->p, k);
    u->p += k;
    u->left -= k;
    return k;
}

void relay__smtp_send(relay__http *h, const relay_dest *d, const char *id, const evt_event *e, uint64_t seq,
                      relay__outcome *out)
{
    (void)id; /* the Message-ID carries it (relay_email_message) */
    ct_buf msg = {0};
    relay_email_message(d, e, seq, (int64_t)time(NULL), &msg);
    relay__smtp_send_msg(h, d, &msg, out);
    ct_buf_free(&msg);
}

void relay__smtp_send_msg(relay__http *h, const relay_dest *d, const ct_buf *msgp, relay__outcome *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_ns = -1;
    if (!h->curl) {
        snprintf(out->error, sizeof out->error, "no SMTP client (curl_easy_init failed)");
        return;
    }
    const ct_buf msg = *msgp;
    upload u = {msg.data, msg.len};
    CURL *c = h->curl;
    curl_easy_reset(c);
    char from[300], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(from, sizeof from, "<%s>", d->mail_from);
    struct curl_slist *rcpt = NULL;
    for (size_t i = 0; i < d->n_mail_to; i++) {
        char to[300];
        snprintf(to, sizeof to, "<%s>", d->mail_to[i]);
        rcpt = curl_slist_append(rcpt, to);
    }
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg.len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(d->timeout_ns / 1000000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    /* smtp://: STARTTLS when the server offers it (verified as any TLS); smtps://: TLS from the start. */
    if (!strncasecmp(d->url, "smtp://", 7)) curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (d->smtp_user) curl_easy_setopt(c, CURLOPT_USERNAME, d->smtp_user);
    if (d->smtp_password) curl_easy_setopt(c, CURLOPT_PASSWORD, d->smtp_password);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) {
        out->status = code >= 200 && code < 300 ? (int)code : 250;
    } else if (code >= 400 && code < 600) {
        /* The server answered no: 4xx for now (retried), 5xx for good (a dead letter). */
        out->status = (int)code;
        snprintf(out->error, sizeof out->error, "SMTP %ld (%.150s)", code, why);
    } else {
        snprintf(out->error, sizeof out->error, "%.190s", why);
    }
    curl_slist_free_all(rcpt);
}
