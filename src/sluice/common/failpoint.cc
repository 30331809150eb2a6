// Crash points for tests (see failpoint.h).
#include "sluice/common/failpoint.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice {

bool fail_point_armed(const char* name) {
  static const char* armed = std::getenv("SLUICE_FAILPOINT");
  return armed != nullptr && std::strcmp(armed, name) == 0;
}

void fail_point(const char* name) {
  if (fail_point_armed(name)) {
    std::fprintf(stderr, "sluice: fail point '%s' reached: exiting\n", name);
    _exit(137);
  }
}

}  // namespace sluice
