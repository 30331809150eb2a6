// Registration helpers for sluice's kernels.
#include "sluice/exec/kernel_registry.h"

#include <arrow/api.h>
#include <arrow/compute/registry.h>

#include <mutex>

namespace sluice::exec {

namespace cp = arrow::compute;

arrow::Result<std::string> register_scalar_once(
    const std::string& name, const std::function<arrow::Result<std::shared_ptr<cp::Function>>()>& make) {
  static std::mutex mutex;  // guards check-then-add in the global registry
  std::lock_guard lock(mutex);
  auto* registry = cp::GetFunctionRegistry();
  if (registry->GetFunction(name).ok()) return name;
  ARROW_ASSIGN_OR_RAISE(auto function, make());
  ARROW_RETURN_NOT_OK(registry->AddFunction(function, /*allow_overwrite=*/false));
  return name;
}

arrow::Status add_text_kernels(cp::ScalarFunction& function, cp::OutputType out, cp::ArrayKernelExec exec,
                               std::shared_ptr<cp::KernelState> state) {
  for (const auto& in : {arrow::utf8(), arrow::binary()}) {
    cp::ScalarKernel kernel({cp::InputType(in)}, out, exec);
    kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
    kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
    kernel.data = state;
    ARROW_RETURN_NOT_OK(function.AddKernel(std::move(kernel)));
  }
  return arrow::Status::OK();
}

arrow::Status add_kernel(cp::ScalarFunction& function, std::vector<cp::InputType> inputs, cp::OutputType out,
                         cp::ArrayKernelExec exec, std::shared_ptr<cp::KernelState> state) {
  cp::ScalarKernel kernel(std::move(inputs), std::move(out), exec);
  kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
  kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
  kernel.data = std::move(state);
  return function.AddKernel(std::move(kernel));
}

arrow::Result<std::shared_ptr<arrow::Array>> argument_array(const cp::ExecSpan& batch, int i) {
  if (batch[i].is_array()) return batch[i].array.ToArray();
  return arrow::MakeArrayFromScalar(*batch[i].scalar, batch.length);
}

}  // namespace sluice::exec
