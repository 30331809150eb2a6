// FieldSelection: see field_selection.h.
#include "sluice/format/field_selection.h"

#include <arrow/type.h>

namespace sluice::format {

FieldSelection& FieldSelection::child(int index, const arrow::FieldVector& fields_of) {
  if (use == Use::kWhole) return *this;
  if (use == Use::kNone) {
    use = Use::kSome;
    fields.assign(fields_of.size(), FieldSelection{});
  }
  return fields[index];
}

void FieldSelection::merge(const FieldSelection& other) {
  if (other.use == Use::kNone || use == Use::kWhole) return;
  if (other.use == Use::kWhole || use == Use::kNone) {
    *this = other;
    return;
  }
  for (size_t i = 0; i < fields.size() && i < other.fields.size(); ++i) fields[i].merge(other.fields[i]);
}

}  // namespace sluice::format
