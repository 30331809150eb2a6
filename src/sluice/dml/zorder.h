// Z-order for OPTIMIZE ... ZORDER BY: rows sorted by the interleaved bits of each column's
// range-partition id, as delta-spark's ZOrderClustering orders them
// (interleave_bits(range_partition_id(c1, 1000), ...)), so rows close in every column land in
// the same files and min/max stats skip files for a predicate on any one of them.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::dml {

// Delta's spark.databricks.io.skipping.mdc.rangeId.max: ranges per column.
inline constexpr int kZOrderRangeIds = 1000;
// Columns a Z-order key holds (10 bits each in a 128-bit key).
inline constexpr size_t kMaxZOrderColumns = 12;

// Each row's range id in [0, ranges): the rank of its value among the column's values (nulls
// first, equal values share the id of the first of them) scaled to `ranges` buckets of equal
// row counts — exact quantiles where Spark's RangePartitioner samples them.
arrow::Result<std::vector<uint32_t>> range_partition_ids(const arrow::ChunkedArray& column,
                                                         int ranges = kZOrderRangeIds);

// The bits of the ids interleaved, most significant first and the first column's bit first
// within each position (delta-spark's InterleaveBits), over the low `bits` bits of each id.
unsigned __int128 interleave_bits(const std::vector<uint32_t>& ids, int bits);

// The order (row indexes of `table`) that sorts its rows along the Z-order curve of `columns`
// (ties keep their order, so the result is deterministic).
arrow::Result<std::vector<int64_t>> zorder_permutation(const arrow::Table& table,
                                                       const std::vector<std::string>& columns,
                                                       int ranges = kZOrderRangeIds);

}  // namespace sluice::dml
