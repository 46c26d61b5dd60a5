/* One destination's HTTP attempts over libcurl: POST, the Standard Webhooks headers, the status, Retry-After. */
#include "relay_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ct_version.h"

void relay__http_global(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void relay__http_init(relay__http *h) { h->curl = curl_easy_init(); }

void relay__http_free(relay__http *h)
{
    if (h->curl) curl_easy_cleanup(h->curl);
    h->curl = NULL;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* Keep the Retry-After header's value (header lines come one by one). */
static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    relay__outcome *o = ctx;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        char v[128];
        size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, vl);
        v[vl] = 0;
        char *s = v;
        while (*s == ' ' || *s == '\t') s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) *--e = 0;
        int64_t d;
        if (relay_retry_after(s, (int64_t)time(NULL), &d) == 0) o->retry_after_ns = d;
    }
    return len;
}

/* The options of one POST on c: the Standard Webhooks headers (into *hd, for relay__http_done to free), the
 * body (borrowed until the transfer ends), the timeout; out reset, Retry-After read into it. */
void relay__http_setup(CURL *c, const relay_dest *d, const char *id, const char *body, size_t len,
                       relay__outcome *out, struct curl_slist **hd)
{
    memset(out, 0, sizeof *out);
    out->retry_after_ns = -1;
    curl_easy_reset(c);
    char line[256];
    int64_t ts = (int64_t)time(NULL);
    *hd = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof line, "User-Agent: tower-relay/%s", ct_version());
    *hd = curl_slist_append(*hd, line);
    snprintf(line, sizeof line, "webhook-id: %s", id);
    *hd = curl_slist_append(*hd, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
    *hd = curl_slist_append(*hd, line);
    if (d->secret) {
        char sig[64];
        relay_sign(d->secret, d->secret_len, id, ts, body, len, sig);
        snprintf(line, sizeof line, "webhook-signature: %s", sig);
        *hd = curl_slist_append(*hd, line);
    }
    *hd = curl_slist_append(*hd, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hd);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(d->timeout_ns / 1000000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
}

void relay__http_done(CURL *c, CURLcode rc, relay__outcome *out, struct curl_slist **hd)
{
    if (rc != CURLE_OK) {
        snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    } else {
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        out->status = (int)code;
        if (code < 200 || code >= 300) snprintf(out->error, sizeof out->error, "HTTP %ld", code);
    }
    curl_slist_free_all(*hd);
    *hd = NULL;
}

void relay__http_post(relay__http *h, const relay_dest *d, const char *id, const char *body, size_t len,
                      relay__outcome *out)
{
    if (!h->curl) {
        memset(out, 0, sizeof *out);
        out->retry_after_ns = -1;
        snprintf(out->error, sizeof out->error, "no HTTP client (curl_easy_init failed)");
        return;
    }
    struct curl_slist *hd = NULL;
    relay__http_setup(h->curl, d, id, body, len, out, &hd);
    relay__http_done(h->curl, curl_easy_perform(h->curl), out, &hd);
}
