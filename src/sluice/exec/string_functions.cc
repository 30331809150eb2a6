// Kernels for concat_ws, md5/sha2 and xxhash64.
#include "sluice/exec/string_functions.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/kernel.h>
#include <arrow/compute/registry.h>
#include <openssl/evp.h>

#include <cstring>
#include <functional>
#include <mutex>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sluice/common/status.h"
#include "sluice/common/utf8.h"
#include "sluice/exec/kernel_registry.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

struct TextState : cp::KernelState {
  std::string text;
  int bits = 0;
};


arrow::Status concat_ws_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto& sep = static_cast<const TextState*>(ctx->kernel()->data.get())->text;
  std::vector<std::shared_ptr<arrow::StringArray>> inputs;
  for (int i = 0; i < batch.num_values(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, i));
    inputs.push_back(std::static_pointer_cast<arrow::StringArray>(a));
  }
  arrow::StringBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  std::string row;
  for (int64_t r = 0; r < batch.length; ++r) {
    row.clear();
    bool first = true;
    for (const auto& in : inputs) {
      if (in->IsNull(r)) continue;
      if (!first) row += sep;
      row += in->GetView(r);
      first = false;
    }
    ARROW_RETURN_NOT_OK(builder.Append(row));  // never null: all-null rows give ""
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

arrow::Status digest_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto* state = static_cast<const TextState*>(ctx->kernel()->data.get());
  const EVP_MD* md = state->text == "md5"    ? EVP_md5()
                     : state->text == "sha1" ? EVP_sha1()
                     : state->bits == 224 ? EVP_sha224()
                     : state->bits == 384 ? EVP_sha384()
                     : state->bits == 512 ? EVP_sha512()
                                          : EVP_sha256();
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::BinaryArray&>(*a);
  arrow::StringBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> evp(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  char hex[2 * EVP_MAX_MD_SIZE];
  static constexpr char kHex[] = "0123456789abcdef";
  for (int64_t r = 0; r < batch.length; ++r) {
    if (in.IsNull(r)) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    auto v = in.GetView(r);
    unsigned int n = 0;
    if (EVP_DigestInit_ex(evp.get(), md, nullptr) != 1 || EVP_DigestUpdate(evp.get(), v.data(), v.size()) != 1 ||
        EVP_DigestFinal_ex(evp.get(), digest, &n) != 1) {
      return arrow::Status::ExecutionError("digest failed");
    }
    for (unsigned int i = 0; i < n; ++i) {
      hex[2 * i] = kHex[digest[i] >> 4];
      hex[2 * i + 1] = kHex[digest[i] & 15];
    }
    ARROW_RETURN_NOT_OK(builder.Append(hex, static_cast<int32_t>(2 * n)));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

// Spark's xxhash64: seed 42, each non-null argument hashed with the previous hash as seed;
// ints as 4 bytes, longs/timestamps as 8, floats/doubles by their bits (-0.0 as 0.0),
// booleans as int 1/0, dates as int days, strings/binaries as their bytes.
arrow::Status xxhash64_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  std::vector<std::shared_ptr<arrow::Array>> inputs;
  for (int i = 0; i < batch.num_values(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, i));
    inputs.push_back(a);
  }
  arrow::Int64Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    uint64_t hash = 42;
    for (const auto& in : inputs) {
      if (in->IsNull(r)) continue;
      auto h4 = [&](int32_t v) { hash = XXH64(&v, 4, hash); };
      auto h8 = [&](int64_t v) { hash = XXH64(&v, 8, hash); };
      switch (in->type_id()) {
        case arrow::Type::BOOL: h4(static_cast<const arrow::BooleanArray&>(*in).Value(r) ? 1 : 0); break;
        case arrow::Type::INT8: h4(static_cast<const arrow::Int8Array&>(*in).Value(r)); break;
        case arrow::Type::INT16: h4(static_cast<const arrow::Int16Array&>(*in).Value(r)); break;
        case arrow::Type::INT32: h4(static_cast<const arrow::Int32Array&>(*in).Value(r)); break;
        case arrow::Type::DATE32: h4(static_cast<const arrow::Date32Array&>(*in).Value(r)); break;
        case arrow::Type::INT64: h8(static_cast<const arrow::Int64Array&>(*in).Value(r)); break;
        case arrow::Type::TIMESTAMP: h8(static_cast<const arrow::TimestampArray&>(*in).Value(r)); break;
        case arrow::Type::FLOAT: {
          float f = static_cast<const arrow::FloatArray&>(*in).Value(r);
          if (f == 0.0f) f = 0.0f;
          int32_t bits;
          std::memcpy(&bits, &f, 4);
          h4(bits);
          break;
        }
        case arrow::Type::DOUBLE: {
          double d = static_cast<const arrow::DoubleArray&>(*in).Value(r);
          if (d == 0.0) d = 0.0;
          int64_t bits;
          std::memcpy(&bits, &d, 8);
          h8(bits);
          break;
        }
        case arrow::Type::STRING:
        case arrow::Type::BINARY: {
          auto v = static_cast<const arrow::BinaryArray&>(*in).GetView(r);
          hash = XXH64(v.data(), v.size(), hash);
          break;
        }
        default:
          return arrow::Status::NotImplemented("xxhash64 of ", in->type()->ToString());
      }
    }
    builder.UnsafeAppend(static_cast<int64_t>(hash));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

struct TypeState : cp::KernelState {
  std::shared_ptr<arrow::DataType> type;
};

// Casts the whole array when it can; otherwise value by value, NULL where one fails (the slow
// path runs only for batches that hold a bad value).
arrow::Status try_cast_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto& type = static_cast<const TypeState*>(ctx->kernel()->data.get())->type;
  ARROW_ASSIGN_OR_RAISE(auto in, argument_array(batch, 0));
  auto options = cp::CastOptions::Safe(type);
  options.allow_float_truncate = true;
  options.allow_time_truncate = true;
  auto whole = cp::Cast(*in, type, options);
  if (whole.ok()) {
    out->value = (*whole)->data();
    return arrow::Status::OK();
  }
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
  for (int64_t r = 0; r < in->length(); ++r) {
    ARROW_ASSIGN_OR_RAISE(auto scalar, in->GetScalar(r));
    auto cast = scalar->is_valid ? cp::Cast(arrow::Datum(scalar), type, options) : arrow::Result<arrow::Datum>();
    if (scalar->is_valid && cast.ok()) {
      ARROW_RETURN_NOT_OK(builder->AppendScalar(*cast->scalar()));
    } else {
      ARROW_RETURN_NOT_OK(builder->AppendNull());
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder->Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

arrow::Status utf8_from_binary_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto in, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto result, to_valid_utf8(in));
  out->value = result->data();
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::string> utf8_from_binary_function() {
  const std::string name = "sluice_utf8_from_binary";
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    for (const auto& [in, out] : {std::pair{arrow::binary(), arrow::utf8()},
                                  std::pair{arrow::large_binary(), arrow::large_utf8()}}) {
      cp::ScalarKernel kernel({cp::InputType(in)}, cp::OutputType(out), utf8_from_binary_exec);
      kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
      kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
      ARROW_RETURN_NOT_OK(f->AddKernel(std::move(kernel)));
    }
    return f;
  });
}

arrow::Result<std::string> try_cast_function(const std::shared_ptr<arrow::DataType>& type) {
  const std::string name = "sluice_try_cast_" + std::to_string(std::hash<std::string>{}(type->ToString()));
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    auto state = std::make_shared<TypeState>();
    state->type = type;
    cp::ScalarKernel kernel({cp::InputType::Any()}, cp::OutputType(type), try_cast_exec);
    kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
    kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
    kernel.data = state;
    ARROW_RETURN_NOT_OK(f->AddKernel(std::move(kernel)));
    return f;
  });
}

arrow::Result<std::string> concat_ws_function(const std::string& separator) {
  const std::string name = "sluice_concat_ws_" + std::to_string(std::hash<std::string>{}(separator));
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::VarArgs(1), cp::FunctionDoc::Empty());
    auto state = std::make_shared<TextState>();
    state->text = separator;
    cp::ScalarKernel kernel({cp::InputType(arrow::utf8())}, cp::OutputType(arrow::utf8()), concat_ws_exec);
    kernel.signature = cp::KernelSignature::Make({cp::InputType(arrow::utf8())}, cp::OutputType(arrow::utf8()),
                                                 /*is_varargs=*/true);
    kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
    kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
    kernel.data = state;
    ARROW_RETURN_NOT_OK(f->AddKernel(std::move(kernel)));
    return f;
  });
}

arrow::Result<std::string> digest_function(const std::string& algorithm, int bits) {
  if (algorithm != "md5" && algorithm != "sha1" && algorithm != "sha2") return invalid("unknown digest {}", algorithm);
  if (algorithm == "sha2" && bits != 224 && bits != 256 && bits != 384 && bits != 512 && bits != 0) {
    return invalid("sha2 takes 224, 256, 384 or 512 bits, not {}", bits);
  }
  const std::string name = "sluice_" + algorithm + (algorithm == "sha2" ? "_" + std::to_string(bits == 0 ? 256 : bits) : "");
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    auto state = std::make_shared<TextState>();
    state->text = algorithm;
    state->bits = bits == 0 ? 256 : bits;
    ARROW_RETURN_NOT_OK(add_text_kernels(*f, cp::OutputType(arrow::utf8()), digest_exec, state));
    return f;
  });
}

arrow::Result<std::string> xxhash64_function() {
  const std::string name = "sluice_xxhash64";
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::VarArgs(1), cp::FunctionDoc::Empty());
    cp::ScalarKernel kernel(cp::KernelSignature::Make({cp::InputType::Any()}, cp::OutputType(arrow::int64()), true),
                            xxhash64_exec);
    kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
    kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
    ARROW_RETURN_NOT_OK(f->AddKernel(std::move(kernel)));
    return f;
  });
}

}  // namespace sluice::exec
