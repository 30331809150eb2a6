// SQL JSON functions as Arrow compute functions in Arrow's function registry, so bound
// expressions call them like any built-in kernel.
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <string>
#include <vector>

namespace sluice::exec {

// The name of a registered scalar function decoding JSON text into `type` (from_json);
// registered on first use, one function per distinct type.
arrow::Result<std::string> from_json_function(const std::shared_ptr<arrow::DataType>& type);

// `producer`, which computes column `column` of a stage's output, rebuilt to decode only the
// struct fields `readers` (every expression bound to that output) use, when it is a from_json
// call whose result they read only through struct_field (e.k, never e as a whole); else
// `producer` itself. The other fields come out null; the type, the struct's validity and the
// fields read are unchanged (format::decode_json's decoded-field flags).
arrow::Result<arrow::compute::Expression> from_json_reading_only_used_fields(
    const arrow::compute::Expression& producer, int column, const std::vector<const arrow::compute::Expression*>& readers);

// The name of a registered function extracting a JSON path ("$.a.b[0]", as Spark's
// get_json_object) from JSON text, as STRING: strings unquoted, other values as JSON text, NULL
// when the path is missing or the text is not JSON. Errors on a malformed path.
arrow::Result<std::string> json_path_function(const std::string& path);

// A registered function of `type` that fails when executed with `message`: for expressions
// that are type-checked now but run only in a later runtime (sliding and session windows).
arrow::Result<std::string> not_yet_function(const std::shared_ptr<arrow::DataType>& type,
                                            const std::string& message);

}  // namespace sluice::exec
