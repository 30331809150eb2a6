// The JSON payload decoder: one JSON object per record into the columns of a declared schema,
// with what does not fit in `_rescued_data` (Databricks' rescued data column semantics).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>

#include "sluice/format/payload_decoder.h"

namespace sluice::format {

// A record that is not valid JSON, or not an object, is a DecodeError ("invalid JSON at byte
// 17: Missing a comma or '}' after an object member.") and a row of nulls. Keys match column
// names exactly; keys with no column (including ones differing only in case), and values
// whose JSON type does not fit their column (the column is null, or for a nested mismatch
// partly null), go to `_rescued_data` as {"key": <JSON value>, ...} with their top-level key.
arrow::Result<std::unique_ptr<PayloadDecoder>> make_json_decoder(std::shared_ptr<arrow::Schema> schema,
                                                                 DecoderOptions options);

}  // namespace sluice::format
