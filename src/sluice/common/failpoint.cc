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
  static const char* paused = std::getenv("SLUICE_FAILPOINT_PAUSE");
  if (paused != nullptr && std::strcmp(paused, name) == 0) {
    // The test acts (writes an object, ...) while the process waits, then sends a line.
    std::fprintf(stderr, "sluice: fail point '%s' paused: send a line on stdin to continue\n", name);
    std::fflush(stderr);
    char c = 0;
    while (::read(0, &c, 1) == 1 && c != '\n') {
    }
  }
  if (fail_point_armed(name)) {
    std::fprintf(stderr, "sluice: fail point '%s' reached: exiting\n", name);
    _exit(137);
  }
}

}  // namespace sluice
