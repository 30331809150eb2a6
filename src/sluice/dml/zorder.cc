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

unsigned __int128 hilbert_index(std::vector<uint32_t> x, int bits) {
  const size_t n = x.size();
  if (n == 0 || bits <= 0) return 0;
  if (n == 1) return x[0];
  const uint32_t m = 1u << (bits - 1);
  // Inverse undo of the excess work (Skilling's AxestoTranspose).
  for (uint32_t q = m; q > 1; q >>= 1) {
    const uint32_t p = q - 1;
    for (size_t i = 0; i < n; ++i) {
      if (x[i] & q) {
        x[0] ^= p;  // invert the low bits of the first axis
      } else {
        const uint32_t t = (x[0] ^ x[i]) & p;  // exchange the low bits of axes 0 and i
        x[0] ^= t;
        x[i] ^= t;
      }
    }
  }
  // Gray encode.
  for (size_t i = 1; i < n; ++i) x[i] ^= x[i - 1];
  uint32_t t = 0;
  for (uint32_t q = m; q > 1; q >>= 1) {
    if (x[n - 1] & q) t ^= q - 1;
  }
  for (auto& v : x) v ^= t;
  return interleave_bits(x, bits);
}

namespace {

// The column at `path` of `table` (through struct fields; a child is null where its parent is).
arrow::Result<std::shared_ptr<arrow::ChunkedArray>> column_at_path(const arrow::Table& table,
                                                                   const std::vector<std::string>& path) {
  if (path.empty()) return invalid("an empty column path");
  auto column = table.GetColumnByName(path[0]);
  if (!column) return invalid("column '{}' is not in the table", path[0]);
  for (size_t depth = 1; depth < path.size(); ++depth) {
    if (column->type()->id() != arrow::Type::STRUCT) {
      return invalid("column '{}' is not a struct, so it has no field '{}'", path[depth - 1], path[depth]);
    }
    const int index = static_cast<const arrow::StructType&>(*column->type()).GetFieldIndex(path[depth]);
    if (index < 0) return invalid("struct column '{}' has no field '{}'", path[depth - 1], path[depth]);
    arrow::ArrayVector chunks;
    for (const auto& chunk : column->chunks()) {
      ARROW_ASSIGN_OR_RAISE(auto child,
                            static_cast<const arrow::StructArray&>(*chunk).GetFlattenedField(index));
      chunks.push_back(std::move(child));
    }
    ARROW_ASSIGN_OR_RAISE(column, arrow::ChunkedArray::Make(std::move(chunks),
                                                            column->type()->field(index)->type()));
  }
  return column;
}

}  // namespace

arrow::Result<std::vector<int64_t>> curve_permutation(const arrow::Table& table,
                                                      const std::vector<std::vector<std::string>>& paths,
                                                      Curve curve, int ranges) {
  if (paths.empty() || paths.size() > kMaxZOrderColumns) {
    return invalid("a curve takes 1 to {} columns, not {}", kMaxZOrderColumns, paths.size());
  }
  int bits = 1;
  while ((1 << bits) < ranges) ++bits;
  if (curve == Curve::kHilbert && static_cast<int>(paths.size()) * bits > 128) {
    return invalid("a Hilbert index of {} columns of {} bits does not fit 128 bits", paths.size(), bits);
  }
  std::vector<std::vector<uint32_t>> ids;
  for (const auto& path : paths) {
    ARROW_ASSIGN_OR_RAISE(auto column, column_at_path(table, path));
    ARROW_ASSIGN_OR_RAISE(auto column_ids, range_partition_ids(*column, ranges));
    ids.push_back(std::move(column_ids));
  }
  const auto n = static_cast<size_t>(table.num_rows());
  std::vector<unsigned __int128> keys(n);
  std::vector<uint32_t> row_ids(paths.size());
  for (size_t row = 0; row < n; ++row) {
    for (size_t c = 0; c < paths.size(); ++c) row_ids[c] = ids[c][row];
    keys[row] = curve == Curve::kHilbert ? hilbert_index(row_ids, bits) : interleave_bits(row_ids, bits);
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&keys](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  return order;
}

arrow::Result<std::vector<int64_t>> zorder_permutation(const arrow::Table& table,
                                                       const std::vector<std::string>& columns,
                                                       int ranges) {
  if (columns.empty() || columns.size() > kMaxZOrderColumns) {
    return invalid("Z-order takes 1 to {} columns, not {}", kMaxZOrderColumns, columns.size());
  }
  std::vector<std::vector<std::string>> paths;
  for (const auto& name : columns) {
    if (!table.GetColumnByName(name)) return invalid("Z-order column '{}' is not in the table", name);
    paths.push_back({name});
  }
  return curve_permutation(table, paths, Curve::kZOrder, ranges);
}

}  // namespace sluice::dml
