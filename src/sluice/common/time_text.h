// Dates and timestamps as text, in the shapes Delta statistics, partition values and Spark's
// to_json use (shared by delta/ and format/; defined in text.cc, so no unity batch shifts).
#pragma once

#include <arrow/type_fwd.h>

#include <cstdint>
#include <string>

namespace sluice {

// yyyy-MM-dd of days since 1970-01-01.
std::string format_date32(int32_t days);
// yyyy-MM-dd'T'HH:mm:ss.SSS, with `Z` when `utc` (always three fraction digits: Spark's
// timestampFormatInWrite / timestampNTZFormatInWrite); `round_up` rounds sub-millisecond
// parts up (for max statistics), else they are cut off (floor, also before 1970).
std::string format_timestamp_micros(int64_t micros, bool utc, bool round_up);

// a / b rounded toward negative infinity (b > 0): days of millis, micros of nanos before 1970.
inline int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// An Arrow timestamp/time value of `unit` in microseconds (nanoseconds floored), as the Kafka
// sinks' JSON and Avro encoders write it.
inline int64_t to_micros(int64_t value, arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND: return value * 1000000;
    case arrow::TimeUnit::MILLI: return value * 1000;
    case arrow::TimeUnit::MICRO: return value;
    case arrow::TimeUnit::NANO: return floor_div(value, 1000);
  }
  return value;
}

}  // namespace sluice
