// Partition value serialization (PROTOCOL.md "Partition Value Serialization").
#include "sluice/delta/partitioning.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <chrono>
#include <cmath>

#include "sluice/common/status.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/stats.h"

namespace sluice::delta {

namespace {

std::string format_timestamp_partition(int64_t micros) {
  using namespace std::chrono;
  int64_t secs = micros / 1'000'000, frac = micros % 1'000'000;
  if (frac < 0) {
    secs -= 1;
    frac += 1'000'000;
  }
  sys_seconds tp{seconds{secs}};
  auto day = floor<days>(tp);
  year_month_day ymd{day};
  hh_mm_ss hms{tp - day};
  return fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{:06d}",
                     static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()), hms.hours().count(), hms.minutes().count(),
                     hms.seconds().count(), frac);
}

}  // namespace

bool is_partitionable(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BOOL:
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::STRING:
    case arrow::Type::DATE32:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DECIMAL128:
      return true;
    default:
      return false;
  }
}

arrow::Result<std::optional<std::string>> serialize_partition_value(const arrow::Scalar& s) {
  if (!s.is_valid) return std::optional<std::string>{};
  switch (s.type->id()) {
    case arrow::Type::BOOL:
      return std::optional<std::string>(static_cast<const arrow::BooleanScalar&>(s).value ? "true"
                                                                                          : "false");
    case arrow::Type::STRING: {
      // An empty string partitions as null, as in Spark and Hive: a directory name cannot
      // tell "" from missing, and other readers read "" back as null.
      auto view = static_cast<const arrow::StringScalar&>(s).view();
      if (view.empty()) return std::optional<std::string>{};
      return std::optional<std::string>(std::string(view));
    }
    case arrow::Type::DATE32:
      return std::optional<std::string>(format_date32(static_cast<const arrow::Date32Scalar&>(s).value));
    case arrow::Type::TIMESTAMP:
      return std::optional<std::string>(
          format_timestamp_partition(static_cast<const arrow::TimestampScalar&>(s).value));
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::DECIMAL128:
      return std::optional<std::string>(s.ToString());
    default:
      return invalid("a {} column cannot be a partition column", delta_type_name(*s.type));
  }
}

arrow::Result<std::shared_ptr<arrow::Scalar>> parse_partition_value(
    const std::optional<std::string>& value, const std::shared_ptr<arrow::DataType>& type) {
  if (!value || value->empty()) return arrow::MakeNullScalar(type);
  if (type->id() == arrow::Type::STRING) return arrow::MakeScalar(*value);
  if (type->id() == arrow::Type::TIMESTAMP) {
    // "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC) or ISO-8601 with 'T' and 'Z'.
    std::string text = *value;
    for (auto& c : text) {
      if (c == ' ') c = 'T';
    }
    if (!text.empty() && text.back() == 'Z') text.pop_back();
    auto parsed = arrow::Scalar::Parse(arrow::timestamp(arrow::TimeUnit::MICRO), text);
    if (!parsed.ok()) {
      return invalid("partition value '{}' is not a timestamp: {}", *value, parsed.status().message());
    }
    const auto& ts = static_cast<const arrow::TimestampScalar&>(**parsed);
    return std::make_shared<arrow::TimestampScalar>(ts.value, type);
  }
  auto parsed = arrow::Scalar::Parse(type, *value);
  if (!parsed.ok()) {
    return invalid("partition value '{}' is not a valid {}: {}", *value, delta_type_name(*type),
                   parsed.status().message());
  }
  return *parsed;
}

std::string escape_partition_path(const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    bool escape = c < 0x20 || c == 0x7F || c == '"' || c == '#' || c == '%' || c == '\'' ||
                  c == '*' || c == '/' || c == ':' || c == '=' || c == '?' || c == '\\' ||
                  c == '{' || c == '[' || c == ']' || c == '^';
    if (escape) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace sluice::delta
