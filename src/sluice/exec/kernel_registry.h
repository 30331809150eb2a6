// Helpers for sluice's own Arrow compute kernels: one-time registration in Arrow's function
// registry, the usual text-input kernel shape, and arguments as arrays.
#pragma once

#include <arrow/compute/api.h>
#include <arrow/compute/kernel.h>
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

}  // namespace sluice::exec
