/* towerd token: make an API token for a role, and the line that the server's tokens file keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ct_config.h"
#include "server.h"
#include "towerd.h"

static const ct_opt_def defs[] = {
    {"hash", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "read an existing token from standard input and print only its file line", 0, 0},
};

int towerd_token(int argc, char **argv)
{
    ct_config *cfg = NULL;
    char **args = NULL;
    int nargs = 0, help = 0, rc = TOWERD_EXIT_USAGE;
    static const char *const ignore[] = {"store", "nats", "projector", "server", "sla", "sim", "publish", NULL};
    if (ct_config_parse(&cfg, "towerd token",
                        "usage: towerd token [--hash] NAME ROLE\n\n"
                        "Makes a random API token for ROLE (viewer: read and stream; operator: also redrive\n"
                        "dead letters; ingest: post events). Prints the token on standard output, once: give\n"
                        "it to its user. Prints on standard error the line to add to the server's tokens file\n"
                        "(--tokens): NAME ROLE SHA256. The file keeps only the hash.\n"
                        "With --hash, reads an existing token from standard input and prints its line on stdout.\n\n"
                        "Exit codes: 0 done; 1 no randomness or no input; 2 usage.",
                        defs, sizeof defs / sizeof defs[0], ignore, argc, argv, &args, &nargs, &help) != CT_OK)
        return TOWERD_EXIT_USAGE;
    if (help) {
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    http_role role;
    if (nargs != 2 || http_role_parse(args[1], &role) != 0 || !*args[0] || strpbrk(args[0], " \t#")) {
        fprintf(stderr, "towerd token: expected NAME ROLE (ROLE: viewer, operator or ingest; NAME without spaces)\n");
        goto out;
    }
    char token[80], hash[65];
    if (ct_config_bool(cfg, "hash")) {
        if (!fgets(token, sizeof token, stdin)) {
            fprintf(stderr, "towerd token: no token on standard input\n");
            rc = TOWERD_EXIT_FAIL;
            goto out;
        }
        token[strcspn(token, "\r\n")] = 0;
        http_token_hash(token, hash);
        printf("%s %s %s\n", args[0], args[1], hash);
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        fprintf(stderr, "towerd token: no randomness available\n");
        rc = TOWERD_EXIT_FAIL;
        goto out;
    }
    int n = snprintf(token, sizeof token, "twr_");
    for (size_t i = 0; i < sizeof rnd; i++) n += snprintf(token + n, sizeof token - (size_t)n, "%02x", rnd[i]);
    http_token_hash(token, hash);
    printf("%s\n", token);
    fprintf(stderr, "add to the tokens file:\n%s %s %s\n", args[0], args[1], hash);
    rc = TOWERD_EXIT_OK;
out:
    ct_config_destroy(cfg);
    return rc;
}
