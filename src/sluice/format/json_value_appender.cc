// RapidJSON value -> Arrow builder conversion (Spark's from_json rules), shared by the decoders.
#include "sluice/format/json_value_appender.h"

#include <arrow/api.h>
#include "sluice/format/json_record.h"
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <vector>

namespace sluice::format::internal {

bool parse_timestamp(std::string_view s, int64_t* micros) {
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
  }
  // A bare date is midnight UTC.
  using namespace std::chrono;
  auto days = sys_days{year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)}};
  int64_t secs = duration_cast<seconds>(days.time_since_epoch()).count() + h * 3600 + mi * 60 + sec - offset_seconds;
  *micros = secs * 1'000'000 + frac;
  return true;
}

int find_field(const arrow::DataType& type, std::string_view key, KeyMatch match) {
  for (int i = 0; i < type.num_fields(); ++i) {
    if (type.field(i)->name() == key) return i;
  }
  if (match == KeyMatch::kExact) return -1;
  for (int i = 0; i < type.num_fields(); ++i) {
    const auto& n = type.field(i)->name();
    if (n.size() == key.size() && std::equal(n.begin(), n.end(), key.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return i;
    }
  }
  return -1;
}

arrow::Status JsonValueAppender::append(arrow::ArrayBuilder& builder, const arrow::DataType& type,
                                        const rapidjson::Value& value, const FieldSelection* only) {
  if (value.IsNull()) return builder.AppendNull();
  if (only && only->use != FieldSelection::Use::kSome) only = nullptr;
  switch (type.id()) {
    case arrow::Type::STRUCT: {
      if (!value.IsObject()) return mismatch(builder);
      auto& b = static_cast<arrow::StructBuilder&>(builder);
      const int n = type.num_fields();
      if (only && static_cast<int>(only->fields.size()) != n) only = nullptr;
      // At most a few dozen fields: a small stack array avoids a heap allocation per object.
      constexpr int kStackFields = 64;
      const rapidjson::Value* stack_found[kStackFields] = {};
      std::vector<const rapidjson::Value*> heap_found;
      const rapidjson::Value** found = stack_found;
      if (n > kStackFields) {
        heap_found.assign(n, nullptr);
        found = heap_found.data();
      }
      for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it) {
        int i = find_field(type, std::string_view(it->name.GetString(), it->name.GetStringLength()), match_);
        if (i < 0) {
          ++unknown_keys_;
        } else if (!found[i]) {
          found[i] = &it->value;
        }
      }
      ARROW_RETURN_NOT_OK(b.Append());
      for (int i = 0; i < n; ++i) {
        if (found[i] && (!only || only->fields[i].read())) {
          ARROW_RETURN_NOT_OK(append(*b.field_builder(i), *type.field(i)->type(), *found[i],
                                     only ? &only->fields[i] : nullptr));
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
      if (!value.IsNumber()) return mismatch(builder);
      double v = value.GetDouble();
      if (type.id() == arrow::Type::FLOAT) {
        return static_cast<arrow::FloatBuilder&>(builder).Append(static_cast<float>(v));
      }
      return static_cast<arrow::DoubleBuilder&>(builder).Append(v);
    }
    case arrow::Type::TIMESTAMP: {
      int64_t micros;
      if (value.IsString()) {
        if (!parse_timestamp(std::string_view(value.GetString(), value.GetStringLength()), &micros)) {
          return mismatch(builder);
        }
      } else if (value.IsInt64()) {
        // Seconds, as Spark reads numbers; beyond the microsecond range the value does not fit.
        if (__builtin_mul_overflow(value.GetInt64(), int64_t{1'000'000}, &micros)) return mismatch(builder);
      } else {
        return mismatch(builder);
      }
      return static_cast<arrow::TimestampBuilder&>(builder).Append(micros);
    }
    case arrow::Type::DATE32: {
      int64_t micros;
      if (!value.IsString()) return mismatch(builder);
      std::string_view sv(value.GetString(), value.GetStringLength());
      if (sv.size() != 10 || !parse_timestamp(sv, &micros)) return mismatch(builder);
      return static_cast<arrow::Date32Builder&>(builder).Append(static_cast<int32_t>(micros / 86'400'000'000LL));
    }
    default:
      return mismatch(builder);
  }
}

template <typename Builder>
arrow::Status JsonValueAppender::append_int(arrow::ArrayBuilder& builder, const rapidjson::Value& value,
                                            int64_t lo, int64_t hi) {
  if (!value.IsInt64()) return mismatch(builder);
  int64_t v = value.GetInt64();
  if (v < lo || v > hi) return mismatch(builder);
  return static_cast<Builder&>(builder).Append(static_cast<typename Builder::value_type>(v));
}

arrow::Status JsonValueAppender::mismatch(arrow::ArrayBuilder& builder) {
  ++mismatches_;
  return builder.AppendNull();
}

}  // namespace sluice::format::internal
