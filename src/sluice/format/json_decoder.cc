// JSON -> Arrow with RapidJSON (see docs/decisions.md for why not simdjson).
#include "sluice/format/json_decoder.h"

#include <arrow/api.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cmath>
#include <string>
#include <unordered_map>

#include "sluice/common/status.h"

namespace sluice::format {

namespace {

using element = const rapidjson::Value&;

// Parses "YYYY-MM-DD[( |T)HH:MM:SS[.ffffff]][Z|+HH:MM]" into microseconds since the epoch (UTC).
bool parse_timestamp(std::string_view s, int64_t* micros, bool date_only_ok) {
  auto digits = [&](size_t pos, size_t n, int* out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      char c = s[pos + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!digits(0, 4, &y) || s.size() < 10 || s[4] != '-' || !digits(5, 2, &mo) || s[7] != '-' ||
      !digits(8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
    return false;
  }
  size_t pos = 10;
  int64_t frac = 0;
  int64_t offset_seconds = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != ' ') return false;
    if (!digits(pos + 1, 2, &h) || s.size() < pos + 9 || s[pos + 3] != ':' || !digits(pos + 4, 2, &mi) ||
        s[pos + 6] != ':' || !digits(pos + 7, 2, &sec)) {
      return false;
    }
    pos += 9;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int n = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (n < 6) frac = frac * 10 + (s[pos] - '0');
        ++n;
        ++pos;
      }
      for (; n < 6; ++n) frac *= 10;
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' && pos + 1 == s.size()) {
        ++pos;
      } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
        int oh, om;
        if (!digits(pos + 1, 2, &oh) || !digits(pos + 4, 2, &om)) return false;
        offset_seconds = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos = s.size();
      } else {
        return false;
      }
    }
  } else if (!date_only_ok) {
    // a bare date is midnight UTC
  }
  using namespace std::chrono;
  auto days = sys_days{year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)}};
  int64_t secs = duration_cast<seconds>(days.time_since_epoch()).count() + h * 3600 + mi * 60 + sec - offset_seconds;
  *micros = secs * 1'000'000 + frac;
  return true;
}

class Decoder {
 public:
  explicit Decoder(JsonDecodeStats* stats) : stats_(stats) {}

  // Appends `value` to `builder` (of `type`); a value that does not fit appends null.
  arrow::Status append(arrow::ArrayBuilder& builder, const arrow::DataType& type, element value) {
    if (value.IsNull()) return builder.AppendNull();
    switch (type.id()) {
      case arrow::Type::STRUCT: {
        if (!value.IsObject()) return mismatch(builder);
        auto& b = static_cast<arrow::StructBuilder&>(builder);
        const int n = type.num_fields();
        std::vector<const rapidjson::Value*> found(n, nullptr);
        for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it) {
          int i = field_index(type, std::string_view(it->name.GetString(), it->name.GetStringLength()));
          if (i >= 0 && !found[i]) found[i] = &it->value;
        }
        ARROW_RETURN_NOT_OK(b.Append());
        for (int i = 0; i < n; ++i) {
          if (found[i]) {
            ARROW_RETURN_NOT_OK(append(*b.field_builder(i), *type.field(i)->type(), *found[i]));
          } else {
            ARROW_RETURN_NOT_OK(b.field_builder(i)->AppendNull());
          }
        }
        return arrow::Status::OK();
      }
      case arrow::Type::LIST: {
        if (!value.IsArray()) return mismatch(builder);
        auto& b = static_cast<arrow::ListBuilder&>(builder);
        ARROW_RETURN_NOT_OK(b.Append());
        for (const auto& v : value.GetArray()) {
          ARROW_RETURN_NOT_OK(append(*b.value_builder(), *type.field(0)->type(), v));
        }
        return arrow::Status::OK();
      }
      case arrow::Type::MAP: {
        if (!value.IsObject()) return mismatch(builder);
        auto& b = static_cast<arrow::MapBuilder&>(builder);
        const auto& m = static_cast<const arrow::MapType&>(type);
        ARROW_RETURN_NOT_OK(b.Append());
        for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it) {
          ARROW_RETURN_NOT_OK(static_cast<arrow::StringBuilder&>(*b.key_builder())
                                  .Append(it->name.GetString(), static_cast<int32_t>(it->name.GetStringLength())));
          ARROW_RETURN_NOT_OK(append(*b.item_builder(), *m.item_type(), it->value));
        }
        return arrow::Status::OK();
      }
      case arrow::Type::STRING: {
        auto& b = static_cast<arrow::StringBuilder&>(builder);
        if (value.IsString()) return b.Append(value.GetString(), static_cast<int32_t>(value.GetStringLength()));
        // Spark keeps the JSON text of a non-string value in a string field.
        rapidjson::StringBuffer text;
        rapidjson::Writer<rapidjson::StringBuffer> writer(text);
        value.Accept(writer);
        return b.Append(text.GetString(), static_cast<int32_t>(text.GetSize()));
      }
      case arrow::Type::BOOL:
        if (!value.IsBool()) return mismatch(builder);
        return static_cast<arrow::BooleanBuilder&>(builder).Append(value.GetBool());
      case arrow::Type::INT8: return append_int<arrow::Int8Builder>(builder, value, INT8_MIN, INT8_MAX);
      case arrow::Type::INT16: return append_int<arrow::Int16Builder>(builder, value, INT16_MIN, INT16_MAX);
      case arrow::Type::INT32: return append_int<arrow::Int32Builder>(builder, value, INT32_MIN, INT32_MAX);
      case arrow::Type::INT64: return append_int<arrow::Int64Builder>(builder, value, INT64_MIN, INT64_MAX);
      case arrow::Type::FLOAT:
      case arrow::Type::DOUBLE: {
        double v;
        if (!value.IsNumber()) return mismatch(builder);
        v = value.GetDouble();
        if (type.id() == arrow::Type::FLOAT) {
          return static_cast<arrow::FloatBuilder&>(builder).Append(static_cast<float>(v));
        }
        return static_cast<arrow::DoubleBuilder&>(builder).Append(v);
      }
      case arrow::Type::TIMESTAMP: {
        int64_t micros;
        if (value.IsString()) {
          if (!parse_timestamp(std::string_view(value.GetString(), value.GetStringLength()), &micros, true)) {
            return mismatch(builder);
          }
        } else if (value.IsInt64()) {
          micros = value.GetInt64() * 1'000'000;  // seconds, as Spark reads numbers
        } else {
          return mismatch(builder);
        }
        return static_cast<arrow::TimestampBuilder&>(builder).Append(micros);
      }
      case arrow::Type::DATE32: {
        int64_t micros;
        if (!value.IsString()) return mismatch(builder);
        std::string_view sv(value.GetString(), value.GetStringLength());
        if (sv.size() != 10 || !parse_timestamp(sv, &micros, true)) return mismatch(builder);
        return static_cast<arrow::Date32Builder&>(builder).Append(static_cast<int32_t>(micros / 86'400'000'000LL));
      }
      default:
        return mismatch(builder);
    }
  }

 private:
  template <typename Builder>
  arrow::Status append_int(arrow::ArrayBuilder& builder, element value, int64_t lo, int64_t hi) {
    int64_t v;
    if (!value.IsInt64()) return mismatch(builder);
    v = value.GetInt64();
    if (v < lo || v > hi) return mismatch(builder);
    return static_cast<Builder&>(builder).Append(static_cast<typename Builder::value_type>(v));
  }

  arrow::Status mismatch(arrow::ArrayBuilder& builder) {
    if (stats_) ++stats_->mismatched_fields;
    return builder.AppendNull();
  }

  // Field lookup by exact name, then case-insensitive (Spark matches JSON keys that way).
  int field_index(const arrow::DataType& type, std::string_view key) {
    for (int i = 0; i < type.num_fields(); ++i) {
      if (type.field(i)->name() == key) return i;
    }
    for (int i = 0; i < type.num_fields(); ++i) {
      const auto& n = type.field(i)->name();
      if (n.size() == key.size() &&
          std::equal(n.begin(), n.end(), key.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        return i;
      }
    }
    return -1;
  }

  JsonDecodeStats* stats_;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::Array>> decode_json(const arrow::Array& strings,
                                                         const std::shared_ptr<arrow::DataType>& type,
                                                         JsonDecodeStats* stats) {
  if (strings.type_id() != arrow::Type::STRING && strings.type_id() != arrow::Type::BINARY) {
    return invalid("from_json needs STRING input, not {}", strings.type()->ToString());
  }
  const auto& input = static_cast<const arrow::BinaryArray&>(strings);
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
  ARROW_RETURN_NOT_OK(builder->Reserve(input.length()));
  Decoder decoder(stats);
  rapidjson::Document doc;
  for (int64_t i = 0; i < input.length(); ++i) {
    if (input.IsNull(i)) {
      ARROW_RETURN_NOT_OK(builder->AppendNull());
      continue;
    }
    std::string_view text = input.GetView(i);
    // Parse the whole record first, so a malformed one never leaves half-appended values.
    doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
    bool malformed = doc.HasParseError() || (type->id() == arrow::Type::STRUCT && !doc.IsObject());
    if (malformed) {
      if (stats) ++stats->malformed_records;
      if (type->id() == arrow::Type::STRUCT) {
        // A struct of nulls, as Spark's PERMISSIVE mode gives it.
        auto& b = static_cast<arrow::StructBuilder&>(*builder);
        ARROW_RETURN_NOT_OK(b.Append());
        for (int f = 0; f < b.num_fields(); ++f) ARROW_RETURN_NOT_OK(b.field_builder(f)->AppendNull());
      } else {
        ARROW_RETURN_NOT_OK(builder->AppendNull());
      }
      continue;
    }
    ARROW_RETURN_NOT_OK(decoder.append(*builder, *type, doc));
  }
  return builder->Finish();
}

}  // namespace sluice::format
