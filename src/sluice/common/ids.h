// Random identifiers (UUID v4) and wall-clock time helpers.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

// A random RFC 4122 version-4 UUID in its canonical lowercase text form.
std::string random_uuid();

// Milliseconds since the Unix epoch, wall clock.
int64_t now_millis();

}  // namespace sluice
