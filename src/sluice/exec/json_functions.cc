// from_json as a registered Arrow kernel.
#include "sluice/exec/json_functions.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/kernel.h>
#include <arrow/compute/registry.h>

#include <functional>
#include <mutex>

#include "sluice/format/json_decoder.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

struct FromJsonState : cp::KernelState {
  std::shared_ptr<arrow::DataType> type;
};

arrow::Status from_json_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto* state = static_cast<const FromJsonState*>(ctx->kernel()->data.get());
  std::shared_ptr<arrow::Array> input;
  if (batch[0].is_array()) {
    input = batch[0].array.ToArray();
  } else {
    ARROW_ASSIGN_OR_RAISE(input, arrow::MakeArrayFromScalar(*batch[0].scalar, batch.length));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, format::decode_json(*input, state->type));
  out->value = result->data();
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::string> from_json_function(const std::shared_ptr<arrow::DataType>& type) {
  static std::mutex mutex;  // guards registration
  const std::string name = "sluice_from_json_" + std::to_string(std::hash<std::string>{}(type->ToString()));
  std::lock_guard lock(mutex);
  auto* registry = cp::GetFunctionRegistry();
  if (registry->GetFunction(name).ok()) return name;
  auto function = std::make_shared<cp::ScalarFunction>(
      name, cp::Arity::Unary(), cp::FunctionDoc("Decode JSON text into " + type->ToString(), "", {"json"}));
  auto state = std::make_shared<FromJsonState>();
  state->type = type;
  for (const auto& in : {arrow::utf8(), arrow::binary()}) {
    cp::ScalarKernel kernel({cp::InputType(in)}, cp::OutputType(type), from_json_exec);
    kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
    kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
    kernel.data = state;
    ARROW_RETURN_NOT_OK(function->AddKernel(std::move(kernel)));
  }
  ARROW_RETURN_NOT_OK(registry->AddFunction(function, /*allow_overwrite=*/false));
  return name;
}

}  // namespace sluice::exec
