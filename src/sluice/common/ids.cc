// Random identifiers and numbers, and wall-clock time.
#include "sluice/common/ids.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>

namespace sluice {

namespace {

// One engine per process, seeded once, behind a mutex; function-local statics, so that a
// caller's static initialisation in another file may use it.
struct RandomEngine {
  std::mutex mutex;  // guards engine
  std::mt19937_64 engine{std::random_device{}()};
};

RandomEngine& random_engine() {
  static RandomEngine instance;
  return instance;
}

}  // namespace

std::string random_uuid() {
  std::array<uint8_t, 16> bytes;
  {
    auto& random = random_engine();
    std::lock_guard lock(random.mutex);
    for (size_t i = 0; i < bytes.size(); i += 8) {
      uint64_t r = random.engine();
      for (size_t j = 0; j < 8; ++j) bytes[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
  return out;
}

int64_t random_below(int64_t n) {
  if (n <= 0) return 0;
  auto& random = random_engine();
  std::lock_guard lock(random.mutex);
  return static_cast<int64_t>(random.engine() % static_cast<uint64_t>(n));
}

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice
