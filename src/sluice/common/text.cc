// Small text helpers.
#include "sluice/common/text.h"
#include "sluice/common/time_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>

namespace sluice {

std::string to_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string to_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string quote_for_error(std::string_view text, size_t limit) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > limit) out += fmt::format("... ({} characters)", text.size());
  return out;
}

namespace {

template <typename T>
arrow::Result<T> parse_number(std::string_view text, std::string_view what, const char* kind) {
  const std::string prefix = what.empty() ? std::string() : fmt::format("{}: ", what);
  if (text.empty()) return arrow::Status::Invalid(fmt::format("{}expected {}, found nothing", prefix, kind));
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  bool finite = true;
  if constexpr (std::is_floating_point_v<T>) finite = std::isfinite(value);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && ptr == end && !finite)) {
    if constexpr (std::is_floating_point_v<T>) {
      return arrow::Status::Invalid(fmt::format("{}'{}' is out of range (a finite number up to {:g})", prefix,
                                                quote_for_error(text), std::numeric_limits<T>::max()));
    } else {
      return arrow::Status::Invalid(fmt::format("{}'{}' is out of range (a whole number from {} to {})", prefix,
                                                quote_for_error(text), std::numeric_limits<T>::min(),
                                                std::numeric_limits<T>::max()));
    }
  }
  if (ec != std::errc() || ptr != end) {
    return arrow::Status::Invalid(fmt::format("{}'{}' is not {}", prefix, quote_for_error(text), kind));
  }
  return value;
}

}  // namespace

arrow::Result<int64_t> parse_int64(std::string_view text, std::string_view what) {
  return parse_number<int64_t>(text, what, "a whole number");
}

arrow::Result<int32_t> parse_int32(std::string_view text, std::string_view what) {
  return parse_number<int32_t>(text, what, "a whole number");
}

arrow::Result<uint64_t> parse_uint64(std::string_view text, std::string_view what) {
  return parse_number<uint64_t>(text, what, "a whole number >= 0");
}

arrow::Result<double> parse_double(std::string_view text, std::string_view what) {
  return parse_number<double>(text, what, "a number");
}

std::string percent_encode(std::string_view text, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Dates and timestamps as text (time_text.h).
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
