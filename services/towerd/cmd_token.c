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
};

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
static int hash_stdin(const char *name, const char *role)
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
    printf("%s %s %s\n", name, role, hash);
    return TOWERD_EXIT_OK;
}

static const char *const ignore[] = {"store", "nats", "projector", "server", "sla", "sim", "publish", NULL};

static const char args_usage[] =
    "expected NAME ROLE (ROLE: viewer, operator or ingest; NAME without spaces)";

static const towerd_spec spec = {
    .cmd = "towerd token",
    .usage = "usage: towerd token [--hash] NAME ROLE\n\n"
             "Makes a random API token for ROLE (viewer: read and stream; operator: also redrive\n"
             "dead letters; ingest: post events). Prints the token on standard output, once: give\n"
             "it to its user. Prints on standard error the line to add to the server's tokens file\n"
             "(--tokens): NAME ROLE SHA256, and nothing else (a hint too when it is a terminal), so\n"
             "that `towerd token NAME ROLE 2>>tokens` appends it. The file keeps only the hash.\n"
             "With --hash, reads an existing token (the first line of standard input, 1 to 4096\n"
             "bytes, without its line end) and prints its line on stdout.\n\n"
             "Exit codes: 0 done; 1 no randomness; 2 usage, or an empty or too long token (--hash).",
    .defs = defs,
    .ndefs = sizeof defs / sizeof defs[0],
    .ignore = ignore,
    .min_args = 2,
    .max_args = 2,
    .args_usage = args_usage,
};

/* A new token on stdout, its file line on stderr. */
static int make_token(const char *name, const char *role)
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
    fprintf(stderr, "%s %s %s\n", name, role, hash);
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
    } else {
        rc = ct_config_bool(c.cfg, "hash") ? hash_stdin(name, role) : make_token(name, role);
    }
    towerd_end(&c);
    return rc;
}
