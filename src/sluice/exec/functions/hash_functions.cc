// Hash and encoding functions: md5, sha1, sha2 (hex digests), Spark's xxhash64, crc32, hex, unhex.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <array>

#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/functions/row_kernels.h"
#include "sluice/sql/types.h"
#include "sluice/exec/string_functions.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace hash_family {

arrow::Result<BoundExpression> bind_digest(const FunctionCall& c) {
  const std::string& name = c.name();
  int64_t bits = 256;
  if (c.size() == 2) {
    ARROW_ASSIGN_OR_RAISE(bits, c.literal_int(1));
  }
  const std::string algorithm = name == "md5" ? "md5" : name == "sha1" || name == "sha" ? "sha1" : "sha2";
  auto function = digest_function(algorithm, static_cast<int>(bits));
  if (!function.ok()) return c.error(function.status().message());
  auto input = c.type(0).id() == arrow::Type::BINARY ? c.expression(0) : cast_to(c.expression(0), arrow::utf8());
  return c.call(*function, {input});
}


// (fa) crc32, hex, unhex.
arrow::Result<RowResult> crc32_row(const LiteralArgs&, std::string_view bytes, int64_t& out) {
  static const auto kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : bytes) crc = kTable[(crc ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (crc >> 8);
  out = static_cast<int64_t>(crc ^ 0xFFFFFFFFu);
  return RowResult::kValue;
}

constexpr char kHexDigits[] = "0123456789ABCDEF";

arrow::Result<RowResult> hex_bytes_row(const LiteralArgs&, std::string_view bytes, std::string& out) {
  for (char ch : bytes) {
    out += kHexDigits[static_cast<unsigned char>(ch) >> 4];
    out += kHexDigits[static_cast<unsigned char>(ch) & 15];
  }
  return RowResult::kValue;
}

// Long.toHexString, upper case: two's complement for negatives.
arrow::Result<RowResult> hex_int_row(const LiteralArgs&, int64_t x, std::string& out) {
  auto u = static_cast<uint64_t>(x);
  do {
    out.insert(out.begin(), kHexDigits[u & 15]);
    u >>= 4;
  } while (u != 0);
  return RowResult::kValue;
}

// Spark's unhex: an odd count of digits reads as if led by '0'; a non-hex character gives NULL.
arrow::Result<RowResult> unhex_row(const LiteralArgs&, std::string_view text, std::string& out) {
  auto digit = [](char ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
  };
  size_t i = 0;
  if (text.size() % 2 == 1) {
    const int d = digit(text[0]);
    if (d < 0) return RowResult::kNull;
    out += static_cast<char>(d);
    i = 1;
  }
  for (; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return RowResult::kNull;
    out += static_cast<char>(hi * 16 + lo);
  }
  return RowResult::kValue;
}

// STRING as its UTF-8 bytes, BINARY as is; anything else refused.
arrow::Result<cp::Expression> as_bytes(const FunctionCall& c, size_t i) {
  if (is_binary_type(c.type(i))) return c.expression(i);
  if (is_string_type(c.type(i))) return cast_to(c.expression(i), arrow::binary());
  return c.error_at(i, fmt::format("{} needs STRING or BINARY, not {}", c.name(), sql::sql_type_name(c.type(i))));
}

}  // namespace hash_family

void register_hash_functions(FunctionRegistry& r) {
  r.add({"md5", {}, 1, 1, "hash", "STRING", hash_family::bind_digest, ""});
  r.add({"sha1", {"sha"}, 1, 1, "hash", "STRING", hash_family::bind_digest, ""});
  r.add({"sha2", {}, 1, 2, "hash", "STRING", hash_family::bind_digest, "the bit length must be a literal"});
  r.add({"sha256", {}, 1, 1, "hash", "STRING", hash_family::bind_digest, "not in Spark: sha2(x, 256)"});
  r.add({"xxhash64", {}, 1, kVariadic, "hash", "BIGINT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto function, xxhash64_function());
           return c.call(function, c.expressions());
         }, "arrays, maps, structs and decimals are refused"});

  r.add({"crc32", {}, 1, 1, "hash", "BIGINT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto bytes, hash_family::as_bytes(c, 0));
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("crc32", {}, {arrow::binary()}, arrow::int64(),
                                                             unary_row_exec<arrow::Int64Type, std::string_view, hash_family::crc32_row>));
           return c.call(function, {bytes});
         }, ""});
  r.add({"hex", {}, 1, 1, "hash", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (arrow::is_integer(c.type(0).id())) {
             ARROW_ASSIGN_OR_RAISE(auto function, row_function("hex_int", {}, {arrow::int64()}, arrow::utf8(),
                                                               unary_row_exec<arrow::StringType, int64_t, hash_family::hex_int_row>));
             return c.call(function, {cast_to(c.expression(0), arrow::int64())});
           }
           ARROW_ASSIGN_OR_RAISE(auto bytes, hash_family::as_bytes(c, 0));
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("hex_bytes", {}, {arrow::binary()}, arrow::utf8(),
                                                             unary_row_exec<arrow::StringType, std::string_view, hash_family::hex_bytes_row>));
           return c.call(function, {bytes});
         }, "integers, STRING and BINARY (Spark also casts DOUBLE to BIGINT)"});
  r.add({"unhex", {}, 1, 1, "hash", "BINARY",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (!is_string_type(c.type(0))) {
             return c.error_at(0, fmt::format("unhex needs STRING, not {}", sql::sql_type_name(c.type(0))));
           }
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("unhex", {}, {arrow::utf8()}, arrow::binary(),
                                                             unary_row_exec<arrow::BinaryType, std::string_view, hash_family::unhex_row>));
           return c.call(function, {c.expression(0)});
         }, ""});
}

}  // namespace sluice::exec
