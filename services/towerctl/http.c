/* towerctl's HTTP client: one libcurl handle per run (keep-alive across pages), bearer token, JSON answers. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "towerctl.h"

struct ctl_http {
    CURL *curl;
    char *base;      /* the base URL as given, without a trailing '/' (may hold credentials) */
    char *shown;     /* the base URL for messages: credentials left out */
    char *auth;      /* "Authorization: Bearer ..." or NULL; never printed */
};

/* The URL without "user:password@", which must not reach a message or a log. */
static char *strip_userinfo(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p) return ct_strdup(url);
    p += 3;
    size_t host_end = strcspn(p, "/?#");
    const char *at = memchr(p, '@', host_end);
    if (!at) return ct_strdup(url);
    return ct_sprintf("%.*s%s", (int)(p - url), url, at + 1);
}

ct_status ctl_http_open(ctl_http **out, const char *base_url, const char *token)
{
    if (!base_url || (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0))
        return CT_USAGE;
    CURL *curl = curl_easy_init();
    if (!curl) return CT_IO;
    ctl_http *h = ct_calloc(1, sizeof *h);
    h->curl = curl;
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/') n--;
    h->base = ct_strndup(base_url, n);
    h->shown = strip_userinfo(h->base);
    if (token && *token) h->auth = ct_sprintf("Authorization: Bearer %s", token);
    *out = h;
    return CT_OK;
}

void ctl_http_destroy(ctl_http *h)
{
    if (!h) return;
    curl_easy_cleanup(h->curl);
    if (h->auth) {
        /* The token does not outlive its use in our memory either. */
        memset(h->auth, 0, strlen(h->auth));
        free(h->auth);
    }
    free(h->base);
    free(h->shown);
    free(h);
}

const char *ctl_http_base(const ctl_http *h)
{
    return h->shown;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    ct_buf_add(ctx, p, size * n);
    return size * n;
}

int ctl_http_request(ctl_http *h, const char *method, const char *path, const char *body, size_t len,
                     const char *ctype, ctl_resp *r)
{
    memset(r, 0, sizeof *r);
    char *url = ct_sprintf("%s%s", h->base, path);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip before a body */
    if (h->auth) hdrs = curl_slist_append(hdrs, h->auth);
    char *ct = NULL;
    int post = strcmp(method, "POST") == 0;
    if (post) {
        ct = ct_sprintf("Content-Type: %s", ctype ? ctype : "application/json");
        hdrs = curl_slist_append(hdrs, ct);
    }

    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect must not carry the token elsewhere */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A stalled server is given up after a minute without a byte; a slow big answer is not. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "towerctl/" "0.1");
    if (post) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, len ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }

    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc != CURLE_OK) {
        snprintf(r->err, sizeof r->err, "%s", *errbuf ? errbuf : curl_easy_strerror(rc));
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    free(ct);
    free(url);
    return ret;
}

void ctl_resp_free(ctl_resp *r)
{
    ct_buf_free(&r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

char *ctl_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    ct_buf b = {0};
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~' || *p == ':') {
            ct_buf_addc(&b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ct_buf_add(&b, e, 3);
        }
    }
    if (!b.data) return ct_strdup("");
    return b.data;
}
