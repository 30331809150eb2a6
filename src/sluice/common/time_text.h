// Dates and timestamps as text, in the shapes Delta statistics, partition values and Spark's
// to_json use (shared by delta/ and format/; defined in text.cc, so no unity batch shifts).
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

// yyyy-MM-dd of days since 1970-01-01.
std::string format_date32(int32_t days);
// yyyy-MM-dd'T'HH:mm:ss.SSS, with `Z` when `utc` (always three fraction digits: Spark's
// timestampFormatInWrite / timestampNTZFormatInWrite); `round_up` rounds sub-millisecond
// parts up (for max statistics), else they are cut off (floor, also before 1970).
std::string format_timestamp_micros(int64_t micros, bool utc, bool round_up);

}  // namespace sluice
