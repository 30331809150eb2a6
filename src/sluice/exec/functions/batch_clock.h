// The time current_timestamp() and current_date() return: fixed while one batch is evaluated,
// as Spark fixes it per query (per micro-batch in a stream), so every row and every column of a
// batch sees the same instant.
#pragma once

#include <cstdint>
#include <optional>

namespace sluice::exec {

// Microseconds since the epoch of the innermost open ScopedBatchTime on this thread, or the
// clock's time now when none is open.
int64_t batch_time_micros();

// Fixes batch_time_micros() on this thread while it lives; inside an outer scope it keeps the
// outer scope's time. Not shared between threads (each thread evaluates its own batch).
class ScopedBatchTime {
 public:
  ScopedBatchTime();
  ~ScopedBatchTime();
  ScopedBatchTime(const ScopedBatchTime&) = delete;
  ScopedBatchTime& operator=(const ScopedBatchTime&) = delete;

 private:
  bool owner_ = false;
};

}  // namespace sluice::exec
