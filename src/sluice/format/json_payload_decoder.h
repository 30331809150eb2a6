// The JSON payload decoder: one JSON object per record into the columns of a declared schema,
// with what does not fit in `_rescued_data` (Databricks' rescued data column semantics).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>

#include "sluice/format/field_selection.h"
#include "sluice/format/payload_decoder.h"

namespace sluice::format {

// A record that is not valid JSON, or not an object, is a DecodeError ("invalid JSON at byte
// 17: Missing a comma or '}' after an object member.") and a row of nulls. Keys match column
// names exactly; keys with no column (including ones differing only in case), and values
// whose JSON type does not fit their column (the column is null, or for a nested mismatch
// partly null), go to `_rescued_data` as {"key": <JSON value>, ...} with their top-level key.
// With `read_fields` (a selection of the schema's columns, for a reader that does not read
// `_rescued_data`): every record is still parsed whole (a malformed one is an error as
// before), the columns and nested struct fields selected get the values a whole decode gives,
// the others are null, and `_rescued_data` is null (docs/decisions.md).
arrow::Result<std::unique_ptr<PayloadDecoder>> make_json_decoder(
    std::shared_ptr<arrow::Schema> schema, DecoderOptions options,
    std::shared_ptr<const FieldSelection> read_fields = nullptr);

}  // namespace sluice::format
