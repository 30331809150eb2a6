// Named crash points for crash-consistency tests: when the environment variable
// SLUICE_FAILPOINT names a point, the process dies there at once (as SIGKILL would leave it),
// so tests can stop sluice between two commits deterministically instead of by timing.
#pragma once

namespace sluice {

// Exits the process with status 137 if SLUICE_FAILPOINT equals `name`; a no-op otherwise.
void fail_point(const char* name);

}  // namespace sluice
