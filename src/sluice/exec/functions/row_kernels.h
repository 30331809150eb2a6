// Kernels that map each row of one or two columns to one value through a plain function (no
// per-row virtual call: the row function is a template argument), for the functions Arrow has
// no kernel for (soundex, levenshtein, url_encode, hex, ...). Literal arguments travel in the
// kernel's state; each distinct set of literals is registered once under its own name.
#pragma once

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/exec/kernel_registry.h"

namespace sluice::exec {

// The literal arguments of one call (strings and integers, in the order the function reads them).
struct LiteralArgs : arrow::compute::KernelState {
  std::vector<std::string> text;
  std::vector<int64_t> ints;
};

// What a row function gives: a value (kValue), or NULL for this row (kNull).
enum class RowResult { kValue, kNull };

// Builder and value type for each output type the row kernels produce.
template <typename ArrowType>
struct RowOutput;
template <>
struct RowOutput<arrow::StringType> {
  using Builder = arrow::StringBuilder;
  using Value = std::string;
  static void reset(Value& v) { v.clear(); }
};
template <>
struct RowOutput<arrow::BinaryType> {
  using Builder = arrow::BinaryBuilder;
  using Value = std::string;
  static void reset(Value& v) { v.clear(); }
};
template <>
struct RowOutput<arrow::Int32Type> {
  using Builder = arrow::Int32Builder;
  using Value = int32_t;
  static void reset(Value& v) { v = 0; }
};
template <>
struct RowOutput<arrow::Int64Type> {
  using Builder = arrow::Int64Builder;
  using Value = int64_t;
  static void reset(Value& v) { v = 0; }
};
template <>
struct RowOutput<arrow::DoubleType> {
  using Builder = arrow::DoubleBuilder;
  using Value = double;
  static void reset(Value& v) { v = 0; }
};
template <>
struct RowOutput<arrow::BooleanType> {
  using Builder = arrow::BooleanBuilder;
  using Value = bool;
  static void reset(Value& v) { v = false; }
};

// The view of row `r` of a text/bytes array, or of an int64 array.
inline std::string_view row_view(const arrow::Array& a, int64_t r) {
  return static_cast<const arrow::BinaryArray&>(a).GetView(r);
}
inline int64_t row_int(const arrow::Array& a, int64_t r) { return static_cast<const arrow::Int64Array&>(a).Value(r); }

// Row function shapes: F(args, in, out) for one input column, F(args, a, b, out) for two. In is
// std::string_view (STRING/BINARY input), int64_t (BIGINT input) or double (DOUBLE input).
template <typename In>
In row_input(const arrow::Array& a, int64_t r) {
  if constexpr (std::is_same_v<In, int64_t>) {
    return row_int(a, r);
  } else if constexpr (std::is_same_v<In, double>) {
    return static_cast<const arrow::DoubleArray&>(a).Value(r);
  } else {
    return row_view(a, r);
  }
}

template <typename OutType, typename In, auto F>
arrow::Status unary_row_exec(arrow::compute::KernelContext* ctx, const arrow::compute::ExecSpan& batch,
                             arrow::compute::ExecResult* out) {
  const auto& args = *static_cast<const LiteralArgs*>(ctx->kernel()->data.get());
  ARROW_ASSIGN_OR_RAISE(auto in, argument_array(batch, 0));
  typename RowOutput<OutType>::Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  typename RowOutput<OutType>::Value value;
  for (int64_t r = 0; r < batch.length; ++r) {
    if (in->IsNull(r)) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    RowOutput<OutType>::reset(value);
    ARROW_ASSIGN_OR_RAISE(RowResult result, F(args, row_input<In>(*in, r), value));
    ARROW_RETURN_NOT_OK(result == RowResult::kNull ? builder.AppendNull() : builder.Append(value));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

template <typename OutType, typename In, auto F>
arrow::Status binary_row_exec(arrow::compute::KernelContext* ctx, const arrow::compute::ExecSpan& batch,
                              arrow::compute::ExecResult* out) {
  const auto& args = *static_cast<const LiteralArgs*>(ctx->kernel()->data.get());
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto b, argument_array(batch, 1));
  typename RowOutput<OutType>::Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  typename RowOutput<OutType>::Value value;
  for (int64_t r = 0; r < batch.length; ++r) {
    if (a->IsNull(r) || b->IsNull(r)) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    RowOutput<OutType>::reset(value);
    ARROW_ASSIGN_OR_RAISE(RowResult result, F(args, row_input<In>(*a, r), row_input<In>(*b, r), value));
    ARROW_RETURN_NOT_OK(result == RowResult::kNull ? builder.AppendNull() : builder.Append(value));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

// Registers (once per distinct `args`) a function named after `base` and `args` whose kernel is
// `exec` over `inputs` -> `out`; returns its name for a bound call.
inline arrow::Result<std::string> row_function(const std::string& base, const LiteralArgs& args,
                                               std::vector<std::shared_ptr<arrow::DataType>> inputs,
                                               std::shared_ptr<arrow::DataType> out,
                                               arrow::compute::ArrayKernelExec exec) {
  std::string key;
  for (const auto& t : args.text) key += fmt::format("{}:{};", t.size(), t);
  for (auto n : args.ints) key += fmt::format("{};", n);
  const std::string name = fmt::format("sluice_{}_{:x}", base, std::hash<std::string>{}(key));
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<arrow::compute::Function>> {
    namespace cp = arrow::compute;
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity(static_cast<int>(inputs.size())),
                                                  cp::FunctionDoc::Empty());
    std::vector<cp::InputType> in;
    for (const auto& t : inputs) in.emplace_back(t);
    auto state = std::make_shared<LiteralArgs>(args);
    ARROW_RETURN_NOT_OK(add_kernel(*f, std::move(in), cp::OutputType(std::move(out)), exec, std::move(state)));
    return f;
  });
}

}  // namespace sluice::exec
