// Z-order keys: range-partition ids interleaved bit by bit.
#include "sluice/dml/zorder.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <algorithm>
#include <numeric>

#include "sluice/common/status.h"

namespace sluice::dml {

namespace cp = arrow::compute;

arrow::Result<std::vector<uint32_t>> range_partition_ids(const arrow::ChunkedArray& column,
                                                         int ranges) {
  const int64_t n = column.length();
  std::vector<uint32_t> ids(static_cast<size_t>(n), 0);
  if (n == 0) return ids;
  cp::RankOptions options(cp::SortOrder::Ascending, cp::NullPlacement::AtStart, cp::RankOptions::Min);
  // Rank takes one array: a column of many chunks is concatenated first.
  std::shared_ptr<arrow::Array> values;
  if (column.num_chunks() == 1) {
    values = column.chunk(0);
  } else {
    ARROW_ASSIGN_OR_RAISE(values, arrow::Concatenate(column.chunks()));
  }
  ARROW_ASSIGN_OR_RAISE(auto ranked, cp::CallFunction("rank", {values}, &options));
  // Held: a reference into make_array()'s temporary would dangle past this statement.
  const std::shared_ptr<arrow::Array> rank_array = ranked.make_array();
  const auto& rank = static_cast<const arrow::UInt64Array&>(*rank_array);
  for (int64_t i = 0; i < n; ++i) {
    // Rank is 1-based; the first row of each tie decides its bucket.
    const auto position = static_cast<unsigned __int128>(rank.Value(i) - 1);
    ids[static_cast<size_t>(i)] = static_cast<uint32_t>(position * static_cast<unsigned>(ranges) /
                                                        static_cast<uint64_t>(n));
  }
  return ids;
}

unsigned __int128 interleave_bits(const std::vector<uint32_t>& ids, int bits) {
  unsigned __int128 key = 0;
  for (int bit = bits - 1; bit >= 0; --bit) {
    for (uint32_t id : ids) key = (key << 1) | ((id >> bit) & 1u);
  }
  return key;
}

arrow::Result<std::vector<int64_t>> zorder_permutation(const arrow::Table& table,
                                                       const std::vector<std::string>& columns,
                                                       int ranges) {
  if (columns.empty() || columns.size() > kMaxZOrderColumns) {
    return invalid("Z-order takes 1 to {} columns, not {}", kMaxZOrderColumns, columns.size());
  }
  int bits = 1;
  while ((1 << bits) < ranges) ++bits;
  std::vector<std::vector<uint32_t>> ids;
  for (const auto& name : columns) {
    auto column = table.GetColumnByName(name);
    if (!column) return invalid("Z-order column '{}' is not in the table", name);
    ARROW_ASSIGN_OR_RAISE(auto column_ids, range_partition_ids(*column, ranges));
    ids.push_back(std::move(column_ids));
  }
  const auto n = static_cast<size_t>(table.num_rows());
  std::vector<unsigned __int128> keys(n);
  std::vector<uint32_t> row_ids(columns.size());
  for (size_t row = 0; row < n; ++row) {
    for (size_t c = 0; c < columns.size(); ++c) row_ids[c] = ids[c][row];
    keys[row] = interleave_bits(row_ids, bits);
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&keys](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  return order;
}

}  // namespace sluice::dml
