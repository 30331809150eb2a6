// RoaringBitmapArray, the 64-bit row-index set Delta deletion vectors store, in its "portable"
// serialization (Spark's RoaringBitmapArray, delta-kernel-rs's RoaringTreemap): a magic number,
// the count of 32-bit Roaring bitmaps, then each as (high 32 bits, Roaring portable format).
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <string>
#include <limits>
#include <string_view>
#include <vector>

namespace sluice::delta {

// Spark's magic for the portable format (the native one, 1681511376, is refused).
constexpr uint32_t kRoaringBitmapArrayPortableMagic = 1681511377;

// The set's values, ascending and distinct. Errors say what is wrong with the bytes. Parsing
// stops with an error once more than `max_values` values were expanded (the descriptor's
// cardinality: a few hostile bytes of run containers would otherwise expand into gigabytes).
arrow::Result<std::vector<uint64_t>> parse_roaring_bitmap_array(
    std::string_view bytes, uint64_t max_values = std::numeric_limits<uint64_t>::max());

// `values` (ascending, distinct) serialized as Spark writes them: one bitmap per high key from 0
// to the largest (empty ones included), array containers up to 4096 values, bitmaps above.
std::string serialize_roaring_bitmap_array(const std::vector<uint64_t>& values);

}  // namespace sluice::delta
