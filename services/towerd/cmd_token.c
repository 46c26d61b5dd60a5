/* towerd token: make an API token for a role, and the line that the server's tokens file keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ct_config.h"
#include "server.h"
#include "towerd.h"

/* The longest token --hash accepts (bytes, without the line end). */
#define TOKEN_HASH_MAX 4096

static const ct_opt_def defs[] = {
    {"hash", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "read an existing token from standard input and print only its file line", 0, 0},
    {"rate", 0, NULL, NULL, CT_OPT_STRING, NULL, "N/s|N/m|N/h",
     "ingest tokens: at most this many POST /api/v1/events requests (a token bucket; more get 429 with Retry-After)",
     0, 0},
    {"burst", 0, NULL, NULL, CT_OPT_STRING, NULL, "N",
     "with --rate: requests at once before the rate applies (default: one second's worth, at least 1)", 0, 0},
    {"systems", 0, NULL, NULL, CT_OPT_STRING, NULL, "LIST",
     "ingest tokens: the source systems it may publish for (comma-separated: erp, wms, tms, carrier, finance, "
     "tower); events of others are rejected (SOURCE_NOT_ALLOWED)", 0, 0},
};

/* The policy options of the file line (" rate=... burst=... systems=..."), or "" (static buffer). */
static const char *policy_of(const ct_config *cfg)
{
    static char out[400];
    const char *rate = ct_config_str(cfg, "rate"), *burst = ct_config_str(cfg, "burst");
    const char *systems = ct_config_str(cfg, "systems");
    out[0] = 0;
    if (rate) snprintf(out + strlen(out), sizeof out - strlen(out), " rate=%.60s", rate);
    if (burst) snprintf(out + strlen(out), sizeof out - strlen(out), " burst=%.60s", burst);
    if (systems) {
        /* "carrier, tms" on a command line: one word in the file. */
        size_t n = strlen(out);
        n += (size_t)snprintf(out + n, sizeof out - n, " systems=");
        for (const char *p = systems; *p && n < sizeof out - 1; p++)
            if (*p != ' ' && *p != '\t') out[n++] = *p;
        out[n] = 0;
    }
    return out;
}

/* Whether NAME ROLE HASH POLICY is a line the server accepts; if not, why on stderr. */
static int line_ok(const char *name, const char *role, const char *policy)
{
    char line[600], why[200];
    snprintf(line, sizeof line, "%s %s %064d%s", name, role, 0, policy);
    if (http_token_line_check(line, why, sizeof why) == CT_OK) return 1;
    fprintf(stderr, "towerd token: %s\n", why);
    return 0;
}

/* Read one line (the token) from f into buf, which has room for TOKEN_HASH_MAX + 2 bytes, without its line
   end (one \n or \r\n). NULL when it is fine, else why it is refused. */
static const char *read_token(FILE *f, char *buf)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (n > TOKEN_HASH_MAX) return "the token on standard input is longer than 4096 bytes";
        buf[n++] = (char)c;
    }
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    if (n > TOKEN_HASH_MAX) return "the token on standard input is longer than 4096 bytes";
    if (!n) return "no token on standard input (an empty first line)";
    if (memchr(buf, '\0', n)) return "the token on standard input contains a NUL byte";
    return NULL;
}

/* --hash: the file line of the token on standard input, on stdout. */
static int hash_stdin(const char *name, const char *role, const char *policy)
{
    char *token = ct_malloc(TOKEN_HASH_MAX + 2), hash[65];
    const char *why = read_token(stdin, token);
    if (why) {
        fprintf(stderr, "towerd token: %s\n", why);
        free(token);
        return TOWERD_EXIT_USAGE;
    }
    http_token_hash(token, hash);
    free(token);
    printf("%s %s %s%s\n", name, role, hash, policy);
    return TOWERD_EXIT_OK;
}

static const char *const ignore[] = {"store", "nats", "projector", "server", "sla", "sim", "publish", NULL};

static const char args_usage[] =
    "expected NAME ROLE (ROLE: viewer, operator or ingest; NAME without spaces)";

static const towerd_spec spec = {
    .cmd = "towerd token",
    .usage = "usage: towerd token [--hash] [--rate N/s] [--burst N] [--systems LIST] NAME ROLE\n\n"
             "Makes a random API token for ROLE (viewer: read and stream; operator: also redrive\n"
             "dead letters; ingest: post events). Prints the token on standard output, once: give\n"
             "it to its user. Prints on standard error the line to add to the server's tokens file\n"
             "(--tokens): NAME ROLE SHA256, and nothing else (a hint too when it is a terminal), so\n"
             "that `towerd token NAME ROLE 2>>tokens` appends it. The file keeps only the hash.\n"
             "With --hash, reads an existing token (the first line of standard input, 1 to 4096\n"
             "bytes, without its line end) and prints its line on stdout.\n"
             "An ingest token may carry a policy, appended to its line: --rate (requests of\n"
             "POST /api/v1/events per second, minute or hour; more get 429 with Retry-After),\n"
             "--burst, --systems (the source systems its events may name).\n\n"
             "Exit codes: 0 done; 1 no randomness; 2 usage (a bad --rate, --burst or --systems too), or an\n"
             "empty or too long token (--hash).",
    .defs = defs,
    .ndefs = sizeof defs / sizeof defs[0],
    .ignore = ignore,
    .min_args = 2,
    .max_args = 2,
    .args_usage = args_usage,
};

/* A new token on stdout, its file line on stderr. */
static int make_token(const char *name, const char *role, const char *policy)
{
    char token[80], hash[65];
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        fprintf(stderr, "towerd token: no randomness available\n");
        return TOWERD_EXIT_FAIL;
    }
    int n = snprintf(token, sizeof token, "twr_");
    for (size_t i = 0; i < sizeof rnd; i++) n += snprintf(token + n, sizeof token - (size_t)n, "%02x", rnd[i]);
    http_token_hash(token, hash);
    printf("%s\n", token);
    /* Standard error carries the file line alone, so that `2>>tokens` appends exactly it; a hint only for
       a person at a terminal. */
    if (isatty(STDERR_FILENO)) fprintf(stderr, "add this line to the tokens file (--tokens):\n");
    fprintf(stderr, "%s %s %s%s\n", name, role, hash, policy);
    return TOWERD_EXIT_OK;
}

int towerd_token(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    const char *name = c.args[0], *role = c.args[1];
    http_role r;
    if (http_role_parse(role, &r) != 0 || !*name || strpbrk(name, " \t#")) {
        fprintf(stderr, "towerd token: %s\n", args_usage);
        rc = TOWERD_EXIT_USAGE;
    } else if (!line_ok(name, role, policy_of(c.cfg))) {
        rc = TOWERD_EXIT_USAGE;
    } else {
        const char *policy = policy_of(c.cfg);
        rc = ct_config_bool(c.cfg, "hash") ? hash_stdin(name, role, policy) : make_token(name, role, policy);
    }
    towerd_end(&c);
    return rc;
}
