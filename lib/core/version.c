/*
 * The version string baked in at configure time.
 */
#include "dakd/core.h"

#include "dakd_version.h"

const char *dk_version_string(void) { return "dakd " DAKD_VERSION " (commit " DAKD_GIT_COMMIT ")"; }
