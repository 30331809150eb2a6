// Row-wise helpers of APPLY CHANGES (cdc_values.h).
#include "sluice/exec/cdc_values.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace sluice::exec::cdc_values {

namespace {

arrow::Status flatten(const std::shared_ptr<arrow::Array>& a, arrow::ArrayVector* out) {
  if (a->type_id() != arrow::Type::STRUCT) {
    out->push_back(a);
    return arrow::Status::OK();
  }
  const auto& s = static_cast<const arrow::StructArray&>(*a);
  for (int i = 0; i < s.num_fields(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto field, s.GetFlattenedField(i));
    ARROW_RETURN_NOT_OK(flatten(field, out));
  }
  return arrow::Status::OK();
}

}  // namespace

// Dense ranks of the sequence values, ascending: equal values share a rank; a struct compares
// field by field, in field order.
arrow::Result<std::vector<int64_t>> sequence_ranks(const std::shared_ptr<arrow::Array>& sequence) {
  arrow::ArrayVector leaves;
  ARROW_RETURN_NOT_OK(flatten(sequence, &leaves));
  const int64_t n = sequence->length();
  std::vector<std::vector<uint64_t>> per_leaf;
  arrow::compute::RankOptions options(arrow::compute::SortOrder::Ascending, arrow::compute::NullPlacement::AtEnd,
                                      arrow::compute::RankOptions::Dense);
  for (const auto& leaf : leaves) {
    ARROW_ASSIGN_OR_RAISE(auto ranked, arrow::compute::CallFunction("rank", {leaf}, &options));
    // Held: a reference into make_array()'s temporary dangled (UBSan under make test-asan).
    const auto array = ranked.make_array();
    const auto& r = static_cast<const arrow::UInt64Array&>(*array);
    per_leaf.emplace_back(r.raw_values(), r.raw_values() + n);
  }
  std::vector<int64_t> out(n);
  if (per_leaf.size() == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(per_leaf[0][i]);
    return out;
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto less = [&](int64_t a, int64_t b) {
    for (const auto& l : per_leaf) {
      if (l[a] != l[b]) return l[a] < l[b];
    }
    return false;
  };
  std::stable_sort(order.begin(), order.end(), less);
  int64_t rank = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (k > 0 && less(order[k - 1], order[k])) ++rank;
    out[order[k]] = rank;
  }
  return out;
}

// A row's key as bytes, for grouping (equal keys, equal bytes).
arrow::Result<std::vector<std::string>> encode_keys(const arrow::ArrayVector& columns, int64_t n) {
  std::vector<std::string> out(n);
  for (const auto& column : columns) {
    for (int64_t i = 0; i < n; ++i) {
      if (column->IsNull(i)) {
        out[i].push_back('\0');
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto scalar, column->GetScalar(i));
      const std::string text = scalar->ToString();
      out[i] += fmt::format("\x01{}:{}", text.size(), text);
    }
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::Array>> concat(const std::shared_ptr<arrow::ChunkedArray>& state,
                                                    const std::shared_ptr<arrow::Array>& batch) {
  arrow::ArrayVector parts;
  if (state) parts.insert(parts.end(), state->chunks().begin(), state->chunks().end());
  parts.push_back(batch);
  return arrow::Concatenate(parts);
}

arrow::Result<std::shared_ptr<arrow::Array>> take(const std::shared_ptr<arrow::Array>& values,
                                                  const std::vector<int64_t>& rows) {
  arrow::Int64Builder b;
  ARROW_RETURN_NOT_OK(b.Reserve(static_cast<int64_t>(rows.size())));
  for (int64_t r : rows) {
    if (r < 0) {
      b.UnsafeAppendNull();
    } else {
      b.UnsafeAppend(r);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
  ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(values, indices));
  return taken.make_array();
}

bool flag(const std::shared_ptr<arrow::Array>& a, int64_t i) {
  if (!a || a->IsNull(i)) return false;
  return static_cast<const arrow::BooleanArray&>(*a).Value(i);
}

}  // namespace sluice::exec::cdc_values
