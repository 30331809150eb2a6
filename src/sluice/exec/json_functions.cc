// from_json as a registered Arrow kernel.
#include "sluice/exec/json_functions.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/kernel.h>
#include <arrow/compute/registry.h>

#include <functional>
#include <mutex>

#include "sluice/format/json_record.h"
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <variant>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/format/json_decoder.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

struct FromJsonState : cp::KernelState {
  std::shared_ptr<arrow::DataType> type;
  std::vector<bool> decoded_fields;  // empty: all
};

arrow::Status from_json_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto* state = static_cast<const FromJsonState*>(ctx->kernel()->data.get());
  ARROW_ASSIGN_OR_RAISE(auto input, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto result, format::decode_json(*input, state->type, nullptr, state->decoded_fields));
  out->value = result->data();
  return arrow::Status::OK();
}

using PathStep = std::variant<std::string, int64_t>;  // field name or array index

struct JsonPathState : cp::KernelState {
  std::vector<PathStep> steps;
};

arrow::Result<std::vector<PathStep>> parse_path(const std::string& path) {
  if (path.empty() || path[0] != '$') return invalid("JSON path '{}' must start with '$'", path);
  std::vector<PathStep> steps;
  size_t i = 1;
  while (i < path.size()) {
    if (path[i] == '.') {
      size_t end = path.find_first_of(".[", i + 1);
      if (end == std::string::npos) end = path.size();
      if (end == i + 1) return invalid("JSON path '{}': empty field name at {}", path, i + 1);
      steps.emplace_back(path.substr(i + 1, end - i - 1));
      i = end;
    } else if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string::npos) return invalid("JSON path '{}': unclosed '['", path);
      std::string inner = path.substr(i + 1, close - i - 1);
      if (inner.size() >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner.back() == inner[0]) {
        steps.emplace_back(inner.substr(1, inner.size() - 2));
      } else if (!inner.empty() && std::all_of(inner.begin(), inner.end(), ::isdigit)) {
        auto index = parse_int64(inner, "JSON path index");
        if (!index.ok()) return invalid("JSON path '{}': index [{}] is out of range", path, inner);
        steps.emplace_back(*index);
      } else {
        return invalid("JSON path '{}': '[{}]' is not an index or a quoted name", path, inner);
      }
      i = close + 1;
    } else {
      return invalid("JSON path '{}': unexpected '{}' at {}", path, std::string(1, path[i]), i);
    }
  }
  return steps;
}

arrow::Status json_path_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto& steps = static_cast<const JsonPathState*>(ctx->kernel()->data.get())->steps;
  ARROW_ASSIGN_OR_RAISE(auto input, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::BinaryArray&>(*input);
  arrow::StringBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(in.length()));
  format::JsonRecordParser parser;
  for (int64_t r = 0; r < in.length(); ++r) {
    if (in.IsNull(r)) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    auto text = in.GetView(r);
    auto& doc = parser.parse<rapidjson::kParseDefaultFlags>(text);
    const rapidjson::Value* v = parser.failed() ? nullptr : &doc;
    for (const auto& step : steps) {
      if (!v) break;
      if (const auto* name = std::get_if<std::string>(&step)) {
        if (!v->IsObject()) {
          v = nullptr;
          break;
        }
        auto it = v->FindMember(rapidjson::StringRef(name->data(), name->size()));
        v = it == v->MemberEnd() ? nullptr : &it->value;
      } else {
        int64_t index = std::get<int64_t>(step);
        v = v->IsArray() && index < static_cast<int64_t>(v->Size()) ? &(*v)[static_cast<rapidjson::SizeType>(index)] : nullptr;
      }
    }
    if (!v || v->IsNull()) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
    } else if (v->IsString()) {
      ARROW_RETURN_NOT_OK(builder.Append(v->GetString(), static_cast<int32_t>(v->GetStringLength())));
    } else {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      v->Accept(writer);
      ARROW_RETURN_NOT_OK(builder.Append(buffer.GetString(), static_cast<int32_t>(buffer.GetSize())));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::string> json_path_function(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto steps, parse_path(path));
  const std::string name = "sluice_json_path_" + std::to_string(std::hash<std::string>{}(path));
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto function = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    auto state = std::make_shared<JsonPathState>();
    state->steps = steps;
    ARROW_RETURN_NOT_OK(add_text_kernels(*function, cp::OutputType(arrow::utf8()), json_path_exec, state));
    return function;
  });
}

namespace {
struct MessageState : cp::KernelState {
  std::string message;
};
arrow::Status not_yet_exec(cp::KernelContext* ctx, const cp::ExecSpan&, cp::ExecResult*) {
  return arrow::Status::NotImplemented(static_cast<const MessageState*>(ctx->kernel()->data.get())->message);
}
}  // namespace

arrow::Result<std::string> not_yet_function(const std::shared_ptr<arrow::DataType>& type,
                                            const std::string& message) {
  const std::string name = "sluice_not_yet_" + std::to_string(std::hash<std::string>{}(type->ToString() + message));
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto function = std::make_shared<cp::ScalarFunction>(name, cp::Arity::VarArgs(1), cp::FunctionDoc::Empty());
    auto state = std::make_shared<MessageState>();
    state->message = message;
    cp::ScalarKernel kernel(cp::KernelSignature::Make({cp::InputType::Any()}, cp::OutputType(type), true), not_yet_exec);
    kernel.data = state;
    ARROW_RETURN_NOT_OK(function->AddKernel(std::move(kernel)));
    return function;
  });
}

namespace {

constexpr const char kFromJsonPrefix[] = "sluice_from_json_";

// from_json into `type`, decoding only the fields flagged in `decoded` (empty: all).
arrow::Result<std::string> register_from_json(const std::shared_ptr<arrow::DataType>& type,
                                              const std::vector<bool>& decoded) {
  std::string name = kFromJsonPrefix + std::to_string(std::hash<std::string>{}(type->ToString()));
  if (!decoded.empty()) {
    name += "_only_";
    for (bool d : decoded) name += d ? '1' : '0';
  }
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto function = std::make_shared<cp::ScalarFunction>(
        name, cp::Arity::Unary(), cp::FunctionDoc("Decode JSON text into " + type->ToString(), "", {"json"}));
    auto state = std::make_shared<FromJsonState>();
    state->type = type;
    state->decoded_fields = decoded;
    ARROW_RETURN_NOT_OK(add_text_kernels(*function, cp::OutputType(type), from_json_exec, state));
    return function;
  });
}

// Marks in `used` the fields of column `column` that `e` reads through struct_field; `whole`
// when it reads the column any other way.
void fields_read(const cp::Expression& e, int column, std::vector<bool>* used, bool* whole) {
  if (const auto* p = e.parameter()) {
    if (!p->indices.empty() && p->indices[0] == column) {
      if (p->indices.size() >= 2) {
        (*used)[p->indices[1]] = true;
      } else {
        *whole = true;
      }
    }
    return;
  }
  const auto* call = e.call();
  if (!call) return;
  if (call->function_name == "struct_field" && call->arguments.size() == 1) {
    const auto* p = call->arguments[0].parameter();
    if (p && p->indices.size() == 1 && p->indices[0] == column) {
      const auto* options = static_cast<const cp::StructFieldOptions*>(call->options.get());
      const auto* path = options ? options->field_ref.field_path() : nullptr;
      if (path && !path->indices().empty() && path->indices()[0] < static_cast<int>(used->size())) {
        (*used)[path->indices()[0]] = true;
      } else {
        *whole = true;
      }
      return;
    }
  }
  for (const auto& a : call->arguments) fields_read(a, column, used, whole);
}

}  // namespace

arrow::Result<std::string> from_json_function(const std::shared_ptr<arrow::DataType>& type) {
  return register_from_json(type, {});
}

arrow::Result<cp::Expression> from_json_reading_only_used_fields(const cp::Expression& producer, int column,
                                                                 const std::vector<const cp::Expression*>& readers) {
  const auto* call = producer.call();
  if (!call || call->function_name.rfind(kFromJsonPrefix, 0) != 0 || call->function_name.find("_only_") != std::string::npos ||
      !call->type.type || call->type.type->id() != arrow::Type::STRUCT || call->arguments.size() != 1 || !call->kernel) {
    return producer;
  }
  const auto type = call->type.GetSharedPtr();
  std::vector<bool> used(type->num_fields(), false);
  bool whole = false;
  for (const auto* r : readers) fields_read(*r, column, &used, &whole);
  if (whole || std::all_of(used.begin(), used.end(), [](bool u) { return u; })) return producer;
  ARROW_ASSIGN_OR_RAISE(auto name, register_from_json(type, used));
  // The same bound call with the narrowed function's kernel for the same argument type (the
  // kernels keep no per-call state), so the stage's input schema is not needed again.
  cp::Expression::Call narrowed = *call;
  narrowed.function_name = name;
  ARROW_ASSIGN_OR_RAISE(narrowed.function, cp::GetFunctionRegistry()->GetFunction(name));
  ARROW_ASSIGN_OR_RAISE(narrowed.kernel, narrowed.function->DispatchExact({call->arguments[0].type()}));
  narrowed.kernel_state = nullptr;
  narrowed.ComputeHash();
  return cp::Expression(std::move(narrowed));
}

}  // namespace sluice::exec
