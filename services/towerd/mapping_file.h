/* The mapping file of towerd import and towerd reconcile (docs/import.md). */
#ifndef TOWERD_MAPPING_FILE_H
#define TOWERD_MAPPING_FILE_H

#include "batch.h"

/* Read PATH (at most 1 MiB) and parse it with batch_mapping_parse_flags(flags): the mapping (caller frees
 * with batch_mapping_free), or NULL after saying why on stderr, prefixed with cmd ("towerd import"). */
batch_mapping *towerd_mapping_load(const char *cmd, const char *path, unsigned flags);

#endif
