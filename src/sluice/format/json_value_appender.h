// Appends one parsed RapidJSON value to an Arrow builder of a declared type: the conversion
// shared by from_json (decode_json) and the JSON payload decoder.
#pragma once

#include <arrow/status.h>
#include <arrow/type_fwd.h>
#include "sluice/format/field_selection.h"
#include "sluice/format/json_record.h"

#include <cstdint>
#include <string_view>

namespace sluice::format::internal {

// How JSON keys find struct fields. from_json matches case-insensitively as Spark does; the
// payload decoder matches exactly and rescues the rest, as Databricks' rescued data column does.
enum class KeyMatch { kCaseInsensitive, kExact };

// Parses "YYYY-MM-DD[( |T)HH:MM:SS[.ffffff]][Z|+HH:MM]" into microseconds since the epoch (UTC).
bool parse_timestamp(std::string_view s, int64_t* micros);

// Index of the struct field named `key` under `match`, or -1.
int find_field(const arrow::DataType& struct_type, std::string_view key, KeyMatch match);

class JsonValueAppender {
 public:
  explicit JsonValueAppender(KeyMatch match) : match_(match) {}

  // Appends `value` to `builder` (of `type`); a value that does not fit appends null and
  // counts a mismatch; an object key with no field counts an unknown key. With `only` (a
  // kSome selection of a struct type), the struct's fields it does not read are null, their
  // values neither converted nor counted as mismatches.
  arrow::Status append(arrow::ArrayBuilder& builder, const arrow::DataType& type,
                       const rapidjson::Value& value, const FieldSelection* only = nullptr);

  int64_t mismatches() const { return mismatches_; }
  int64_t unknown_keys() const { return unknown_keys_; }

 private:
  template <typename Builder>
  arrow::Status append_int(arrow::ArrayBuilder& builder, const rapidjson::Value& value, int64_t lo,
                           int64_t hi);
  arrow::Status mismatch(arrow::ArrayBuilder& builder);

  KeyMatch match_;
  int64_t mismatches_ = 0;
  int64_t unknown_keys_ = 0;
};

}  // namespace sluice::format::internal
