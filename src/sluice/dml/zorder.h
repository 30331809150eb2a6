// Space-filling curves for OPTIMIZE: Z-order (ZORDER BY) sorts rows by the interleaved bits of
// each column's range-partition id, as delta-spark's ZOrderClustering orders them
// (interleave_bits(range_partition_id(c1, 1000), ...)); liquid clustering sorts them by the
// Hilbert index of the same ids (delta-spark's HilbertClustering). Rows close in every column
// land in the same files, so min/max stats skip files for a predicate on any one of them.
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

// The position of the point `coordinates` (each in [0, 2^bits)) along the Hilbert curve that
// fills the cube of side 2^bits in coordinates.size() dimensions (Skilling, "Programming the
// Hilbert curve", AIP 2004: the coordinates transposed, then their bits interleaved as
// interleave_bits does). The curve starts at the origin and consecutive positions are
// neighbouring cells, so rows close on the curve are close in every column, without Z-order's
// long jumps. One dimension is the identity. coordinates.size() * bits must be at most 128.
unsigned __int128 hilbert_index(std::vector<uint32_t> coordinates, int bits);

// The curve OPTIMIZE orders a partition's rows along.
enum class Curve { kZOrder, kHilbert };

// The order (row indexes of `table`) that sorts its rows along the Z-order curve of `columns`
// (ties keep their order, so the result is deterministic).
arrow::Result<std::vector<int64_t>> zorder_permutation(const arrow::Table& table,
                                                       const std::vector<std::string>& columns,
                                                       int ranges = kZOrderRangeIds);

// The same along `curve` over the columns at `paths` (["s", "x"] is field x of struct s), as
// liquid clustering orders rows (delta-spark's HilbertClustering over range ids).
arrow::Result<std::vector<int64_t>> curve_permutation(const arrow::Table& table,
                                                      const std::vector<std::vector<std::string>>& paths,
                                                      Curve curve, int ranges = kZOrderRangeIds);

}  // namespace sluice::dml
