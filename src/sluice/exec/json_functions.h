// SQL JSON functions as Arrow compute functions in Arrow's function registry, so bound
// expressions call them like any built-in kernel.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <string>

namespace sluice::exec {

// The name of a registered scalar function decoding JSON text into `type` (from_json);
// registered on first use, one function per distinct type.
arrow::Result<std::string> from_json_function(const std::shared_ptr<arrow::DataType>& type);

// The name of a registered function extracting a JSON path ("$.a.b[0]", as Spark's
// get_json_object) from JSON text, as STRING: strings unquoted, other values as JSON text, NULL
// when the path is missing or the text is not JSON. Errors on a malformed path.
arrow::Result<std::string> json_path_function(const std::string& path);

// A registered function of `type` that fails when executed with `message`: for expressions
// that are type-checked now but run only in a later runtime (sliding and session windows).
arrow::Result<std::string> not_yet_function(const std::shared_ptr<arrow::DataType>& type,
                                            const std::string& message);

}  // namespace sluice::exec
