/* The prologue every towerd command shares: options, --help, positional arguments, exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats_opts.h"
#include "towerd.h"

/* Say what is wrong with the number of positional arguments; 0 when it is right. */
static int bad_args(const towerd_spec *spec, char **args, int nargs)
{
    if (nargs >= spec->min_args && nargs <= spec->max_args) return 0;
    if (spec->args_usage)
        fprintf(stderr, "%s: %s\n", spec->cmd, spec->args_usage);
    else if (nargs > spec->max_args)
        fprintf(stderr, "%s: unexpected argument '%s'\n", spec->cmd, args[spec->max_args]);
    else
        fprintf(stderr, "%s: missing argument (see --help)\n", spec->cmd);
    return 1;
}

int towerd_start(towerd_ctx *c, const towerd_spec *spec, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->cmd = spec->cmd;
    size_t ndefs = spec->ndefs;
    if (spec->nats) {
        c->defs = towerd_defs_concat(spec->defs, spec->ndefs, &ndefs);
    } else {
        c->defs = ct_malloc((ndefs ? ndefs : 1) * sizeof *c->defs);
        if (ndefs) memcpy(c->defs, spec->defs, ndefs * sizeof *c->defs);
    }
    int help = 0;
    if (ct_config_parse(&c->cfg, spec->cmd, spec->usage, c->defs, ndefs, spec->ignore, argc, argv, &c->args,
                        &c->nargs, &help) != CT_OK) {
        towerd_end(c);
        return TOWERD_EXIT_USAGE;
    }
    if (help || bad_args(spec, c->args, c->nargs)) {
        towerd_end(c);
        return help ? TOWERD_EXIT_OK : TOWERD_EXIT_USAGE;
    }
    return TOWERD_CONTINUE;
}

void towerd_end(towerd_ctx *c)
{
    ct_config_destroy(c->cfg);
    free(c->defs);
    c->cfg = NULL;
    c->defs = NULL;
    c->args = NULL;
    c->nargs = 0;
}
