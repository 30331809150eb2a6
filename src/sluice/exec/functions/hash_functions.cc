// Hash functions: md5, sha1, sha2 (hex digests) and Spark's xxhash64.
#include <arrow/api.h>
#include <arrow/compute/api.h>

#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
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
}

}  // namespace sluice::exec
