/* What this build is: the tower's version, the git commit it was built from, the event contract's version. */
#ifndef CT_VERSION_H
#define CT_VERSION_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** \brief The tower's version, from the top-level CMakeLists.txt's project() (static storage), e.g. "0.1.0". */
const char *ct_version(void);

/**
 * \brief The git commit the build was made from (static storage): `git describe --always --dirty` at
 * build time, e.g. "d18edac" or "d18edac-dirty" (uncommitted changes); "unknown" when the source was
 * not a git checkout.
 */
const char *ct_version_commit(void);

/** \brief The version of the event contract (proto/tower/v1/event.proto) this build speaks, e.g. "1.0". */
const char *ct_version_contract(void);

/**
 * \brief Print what `--version` prints: "PROGRAM VERSION", then "commit: C" and "contract: V", one per line.
 * \param program the program's name ("towerd", "towerctl")
 */
void ct_version_print(FILE *out, const char *program);

#ifdef __cplusplus
}
#endif
#endif
