/* Standard Webhooks signing: the secret's text form ("whsec_" + base64) and the webhook-signature value. */
#include "relay.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_PREFIX "whsec_"

/* The value of a base64 digit (standard alphabet), or -1. */
static int b64_digit(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/*
 * Strict base64 with padding: whole groups of four digits, '=' only as the last one or two characters.
 * Writes at most len / 4 * 3 bytes to out; returns how many, or -1 for bad input.
 */
static long b64_decode(const char *s, size_t len, unsigned char *out)
{
    if (len == 0 || len % 4) return -1;
    size_t pad = s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t group = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = i + j >= len - pad ? 0 : b64_digit(s[i + j]); /* the padding counts as zero bits */
            if (d < 0) return -1;
            group = group << 6 | (uint32_t)d;
        }
        out[o++] = (unsigned char)(group >> 16);
        out[o++] = (unsigned char)(group >> 8);
        out[o++] = (unsigned char)group;
    }
    return (long)(o - pad);
}

int relay_secret_decode(const char *text, unsigned char **out, size_t *len)
{
    size_t prefix = strlen(SECRET_PREFIX);
    if (!text || strncmp(text, SECRET_PREFIX, prefix) != 0) return -1;
    const char *b64 = text + prefix;
    size_t n = strlen(b64);
    unsigned char *key = ct_malloc(n / 4 * 3 + 1);
    long got = b64_decode(b64, n, key);
    if (got <= 0) {
        /* Nothing of a bad secret stays behind in freed memory. */
        OPENSSL_cleanse(key, n / 4 * 3 + 1);
        free(key);
        return -1;
    }
    *out = key;
    *len = (size_t)got;
    return 0;
}

void relay_sign(const unsigned char *key, size_t key_len, const char *id, int64_t ts, const char *body, size_t body_len,
                char out[64])
{
    /* The signed content is exactly "<id>.<ts>.<body>" (Standard Webhooks, "Signature scheme"). */
    ct_buf msg = {0};
    ct_buf_addf(&msg, "%s.%lld.", id, (long long)ts);
    ct_buf_add(&msg, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    static const unsigned char no_key[1];
    const unsigned char *k = key ? key : no_key;
    if (!HMAC(EVP_sha256(), k, (int)key_len, (const unsigned char *)msg.data, msg.len, mac, &mac_len) ||
        mac_len != 32) {
        out[0] = '\0'; /* OpenSSL failed (out of memory): no signature rather than a wrong one */
    } else {
        memcpy(out, "v1,", 3);
        EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len); /* 44 characters and a NUL */
    }
    OPENSSL_cleanse(mac, sizeof mac);
    ct_buf_free(&msg);
}
