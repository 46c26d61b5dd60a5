/* The build's identity, from the header common/version.cmake generates at every build. */
#include "ct_version.h"

#include "ct_version_gen.h"

const char *ct_version(void) { return CT_VERSION_GEN; }

const char *ct_version_commit(void) { return CT_COMMIT_GEN; }

const char *ct_version_contract(void) { return CT_CONTRACT_GEN; }

void ct_version_print(FILE *out, const char *program)
{
    fprintf(out, "%s %s\ncommit: %s\ncontract: %s\n", program, ct_version(), ct_version_commit(),
            ct_version_contract());
}
