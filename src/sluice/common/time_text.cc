// Dates and timestamps as text (time_text.h).
#include "sluice/common/time_text.h"

#include <fmt/format.h>

#include <chrono>

namespace sluice {

std::string format_date32(int32_t days) {
  using namespace std::chrono;
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

std::string format_timestamp_micros(int64_t micros, bool utc, bool round_up) {
  using namespace std::chrono;
  int64_t millis = micros / 1000;
  int64_t rem = micros % 1000;
  if (rem < 0) {  // floor division for times before 1970
    millis -= 1;
    rem += 1000;
  }
  if (round_up && rem != 0) millis += 1;
  sys_time<milliseconds> tp{milliseconds{millis}};
  auto day = floor<std::chrono::days>(tp);
  year_month_day ymd{day};
  hh_mm_ss hms{tp - day};
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}{}",
                     static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count(),
                     utc ? "Z" : "");
}

}  // namespace sluice
