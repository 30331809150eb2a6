// Which fields of a (nested) struct a reader uses: what a decoder must convert when a query
// reads a few columns of a wide payload (read_kafka's value_format => 'json').
#pragma once

#include <arrow/type_fwd.h>

#include <vector>

namespace sluice::format {

struct FieldSelection {
  enum class Use { kNone, kWhole, kSome };
  Use use = Use::kNone;
  std::vector<FieldSelection> fields;  // kSome: one per field of the struct (or schema)

  static FieldSelection whole() { return FieldSelection{Use::kWhole, {}}; }
  bool read() const { return use != Use::kNone; }
  // The selection of field `index` of `fields_of` (the struct or schema this one selects
  // from), created unread; a whole selection returns itself (everything below is whole).
  FieldSelection& child(int index, const arrow::FieldVector& fields_of);
  // Reads `other` too (both select from the same type).
  void merge(const FieldSelection& other);
};

}  // namespace sluice::format
