// Random identifiers (UUID v4) and wall-clock time helpers.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

// A random RFC 4122 version-4 UUID in its canonical lowercase text form.
std::string random_uuid();

// A random number in [0, n) (0 when n <= 0), from the engine random_uuid uses: different per
// process and call (e.g. a back-off's jitter).
int64_t random_below(int64_t n);

// Milliseconds since the Unix epoch, wall clock.
int64_t now_millis();

}  // namespace sluice
