/* Fuzz towerd import's pure parts: the first byte picks the mapping parser (0) or the record reader and the
   row mapping under a fixed CSV / fixed-width mapping (its value picks the delimiter and the layout). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

static const char csv_map[] =
    "[import]\nname = fz\nsystem = erp\nheader = no\nkind = 2\ntime_format = %d.%m.%Y %H:%M\n"
    "[kind a]\nmatch = A\ntype = orderCreated\noccurredAt = col 3\norderId = col 1\n"
    "orderCreated.lines[0].sku = col 4\norderCreated.lines[0].qty = col 5\norderCreated.lines[1].qty = col 6\n"
    "orderCreated.promisedBy = col 7 time %Y-%m-%dT%H:%M:%S%z\n"
    "[kind b]\nmatch = B\ntype = packCompleted\noccurredAt = col 3\norderId = col 1\nshipmentId = col 4\n"
    "packCompleted.weightKg = col 5\n";
static const char fixed_map[] =
    "[import]\nname = fz\nsystem = carrier\nformat = fixed\nkind = t\ntime_format = %Y%m%d%H%M\n"
    "[columns]\nt = 1 1\nid = 2 6\nat = 8 12\nref = 20 8\n"
    "[kind p]\nmatch = P\ntype = podCaptured\noccurredAt = col at\nshipmentId = col id\npodCaptured.podRef = col ref\n";

static void rows(const char *map, char delim, const char *data, size_t len)
{
    batch_mapping *m = NULL;
    char *err = NULL;
    if (batch_mapping_parse(&m, map, strlen(map), "fuzz.ini", &err) != CT_OK) abort();
    if (batch_mapping_bind(m, NULL, "fuzz", &err) != 0) abort();
    batch_format f = *batch_mapping_format(m);
    if (delim) f.delim = delim;
    f.max_record = 4096;
    f.max_cols = 64;
    batch_reader *r = batch_reader_new(data, len, &f);
    batch_row row;
    while (batch_reader_next(r, &row) == 1) {
        batch_result res;
        batch_map_row(m, &row, "fuzz", &res);
        batch_result_clear(&res);
    }
    batch_reader_free(r);
    batch_mapping_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] == 0) {
        batch_mapping *m = NULL;
        char *err = NULL;
        if (batch_mapping_parse(&m, rest, len, "fuzz.ini", &err) == CT_OK) batch_mapping_free(m);
        free(err);
        return 0;
    }
    static const char delims[] = {',', ';', '\t', '|'};
    if (data[0] & 1) rows(fixed_map, 0, rest, len);
    else rows(csv_map, delims[(data[0] >> 1) & 3], rest, len);
    return 0;
}
