// SQL functions Arrow has no kernel for, registered in Arrow's function registry: concat_ws,
// md5, sha2, xxhash64 (Spark's seed-42 chaining over typed values).
#pragma once

#include <arrow/result.h>

#include <arrow/type_fwd.h>

#include <memory>
#include <string>

namespace sluice::exec {

// Name of the variadic STRING function joining its non-null arguments with `separator`.
arrow::Result<std::string> concat_ws_function(const std::string& separator);
// Hex digests of STRING/BINARY input: "md5", "sha1", or "sha2" with 224, 256, 384 or 512 bits.
arrow::Result<std::string> digest_function(const std::string& algorithm, int bits);
// Variadic 64-bit xxHash of the arguments, as Spark's xxhash64 (seed 42, nulls skipped).
arrow::Result<std::string> xxhash64_function();

// BINARY -> STRING (and LARGE_BINARY -> LARGE_STRING) with each maximal invalid UTF-8 subpart
// replaced by U+FFFD, where Arrow's cast would fail the whole batch on one bad value.
arrow::Result<std::string> utf8_from_binary_function();
// TRY_CAST to `type`: a value that cannot be cast becomes NULL instead of failing the batch.
arrow::Result<std::string> try_cast_function(const std::shared_ptr<arrow::DataType>& type);

}  // namespace sluice::exec
