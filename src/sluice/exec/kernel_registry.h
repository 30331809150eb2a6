// Helpers for sluice's own Arrow compute kernels: one-time registration in Arrow's function
// registry, the usual text-input kernel shape, and arguments as arrays.
#pragma once

#include <arrow/compute/api.h>
#include <arrow/compute/kernel.h>
#include <arrow/array/builder_binary.h>
#include <arrow/result.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::exec {

// Registers the function `make` builds under `name`, once; later calls return the name.
// Thread-safe.
arrow::Result<std::string> register_scalar_once(
    const std::string& name,
    const std::function<arrow::Result<std::shared_ptr<arrow::compute::Function>>()>& make);

// Adds `exec` for STRING and BINARY input, allocating its own output, with `state` as the
// kernel's data.
arrow::Status add_text_kernels(arrow::compute::ScalarFunction& function, arrow::compute::OutputType out,
                               arrow::compute::ArrayKernelExec exec,
                               std::shared_ptr<arrow::compute::KernelState> state);

// Adds one kernel of `inputs` -> `out` computing its own nulls and allocating its own output.
arrow::Status add_kernel(arrow::compute::ScalarFunction& function, std::vector<arrow::compute::InputType> inputs,
                         arrow::compute::OutputType out, arrow::compute::ArrayKernelExec exec,
                         std::shared_ptr<arrow::compute::KernelState> state = nullptr);

// Argument `i` of a kernel call as an array of the batch's length (scalars broadcast).
arrow::Result<std::shared_ptr<arrow::Array>> argument_array(const arrow::compute::ExecSpan& batch, int i);

// The output of a kernel that maps each row of `in` to one text or byte value: a null row gives
// null; any other row calls `fill(row, value)` with `value` empty, which appends the row's
// output to it (or returns an error, which fails the batch). `Builder` is arrow::StringBuilder
// or arrow::BinaryBuilder.
template <typename Builder, typename Fill>
arrow::Status map_non_null_rows(const arrow::Array& in, arrow::compute::ExecResult* out, Fill&& fill) {
  Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(in.length()));
  std::string value;
  for (int64_t r = 0; r < in.length(); ++r) {
    if (in.IsNull(r)) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    value.clear();
    ARROW_RETURN_NOT_OK(fill(r, value));
    ARROW_RETURN_NOT_OK(builder.Append(value));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

}  // namespace sluice::exec
