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

}  // namespace sluice::exec
