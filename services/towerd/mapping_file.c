/* The mapping file of towerd import and towerd reconcile (docs/import.md), read whole and parsed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_reconcile.h"
#include "mapping_file.h"

#define MAX_MAPPING (1024 * 1024)

batch_mapping *towerd_mapping_load(const char *cmd, const char *path, unsigned flags)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot read mapping %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    char *text = ct_malloc(MAX_MAPPING + 1);
    size_t n = fread(text, 1, MAX_MAPPING + 1, f);
    int err = ferror(f);
    fclose(f);
    batch_mapping *m = NULL;
    char *why = NULL;
    if (err || n > MAX_MAPPING)
        fprintf(stderr, "%s: %s: %s\n", cmd, path, err ? "read error" : "mapping larger than 1 MiB");
    else if (batch_mapping_parse_flags(&m, text, n, path, flags, &why) != CT_OK)
        fprintf(stderr, "%s: %s\n", cmd, why);
    free(why);
    free(text);
    return m;
}
