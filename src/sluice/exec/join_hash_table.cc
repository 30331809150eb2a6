// A hash join's build side kept between probes (see join_hash_table.h): arrow::compute::Grouper
// maps each distinct build key to a group id; the build rows are sorted by group (counting sort),
// so a probe is a Grouper::Lookup of the left keys and a walk over each group's rows.
#include "sluice/exec/join_hash_table.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> key_columns(const arrow::RecordBatch& batch,
                                                                      const std::vector<arrow::FieldRef>& keys) {
  std::vector<std::shared_ptr<arrow::Array>> out;
  for (const auto& k : keys) {
    ARROW_ASSIGN_OR_RAISE(auto column, k.GetOne(batch));
    out.push_back(std::move(column));
  }
  return out;
}

cp::ExecBatch exec_batch(const std::vector<std::shared_ptr<arrow::Array>>& columns, int64_t length) {
  std::vector<arrow::Datum> values(columns.begin(), columns.end());
  return cp::ExecBatch(std::move(values), length);
}

std::shared_ptr<arrow::Array> indices(std::vector<int64_t> rows) {
  const auto n = static_cast<int64_t>(rows.size());
  return std::make_shared<arrow::Int64Array>(n, arrow::Buffer::FromVector(std::move(rows)));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> take(const std::shared_ptr<arrow::RecordBatch>& batch,
                                                        const std::shared_ptr<arrow::Array>& rows) {
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(batch, rows));
  return taken.record_batch();
}

bool is_identity(const arrow::Array& rows, int64_t n) {
  if (rows.length() != n || rows.null_count() > 0) return false;
  const int64_t* v = static_cast<const arrow::Int64Array&>(rows).raw_values();
  for (int64_t i = 0; i < n; ++i) {
    if (v[i] != i) return false;
  }
  return true;
}

}  // namespace

arrow::Result<ProbeJoinType> probe_join_type(const std::string& sql_type) {
  if (sql_type == "INNER") return ProbeJoinType::kInner;
  if (sql_type == "LEFT") return ProbeJoinType::kLeftOuter;
  if (sql_type == "LEFT_SEMI") return ProbeJoinType::kLeftSemi;
  if (sql_type == "LEFT_ANTI") return ProbeJoinType::kLeftAnti;
  return arrow::Status::NotImplemented(fmt::format(
      "a {} join cannot be answered batch by batch from its left side: keep the stream on the left of an INNER, "
      "LEFT, SEMI or ANTI join",
      sql_type));
}

JoinHashTable::~JoinHashTable() = default;

arrow::Result<std::unique_ptr<JoinHashTable>> JoinHashTable::make(Spec spec,
                                                                  const std::shared_ptr<arrow::Table>& build) {
  if (spec.left_keys.size() != spec.right_keys.size() || spec.left_keys.empty()) {
    return arrow::Status::Invalid("a hash join needs as many left keys as right keys, at least one");
  }
  std::unique_ptr<JoinHashTable> t(new JoinHashTable());
  t->has_filter_ = spec.filter.is_valid() && !spec.filter.Equals(cp::literal(true));
  t->spec_ = std::move(spec);
  ARROW_ASSIGN_OR_RAISE(t->build_, build->CombineChunksToBatch());
  ARROW_ASSIGN_OR_RAISE(auto keys, key_columns(*t->build_, t->spec_.right_keys));
  std::vector<arrow::TypeHolder> types;
  for (const auto& k : keys) {
    t->key_types_.push_back(k->type());
    types.emplace_back(k->type());
  }
  ARROW_ASSIGN_OR_RAISE(t->keys_, cp::Grouper::Make(types));
  // Rows with a null key match nothing: they never enter the index.
  const int64_t n = t->build_->num_rows();
  std::vector<int64_t> indexed;  // build row of each consumed key row
  bool any_null = false;
  for (const auto& k : keys) any_null |= k->null_count() > 0;
  if (any_null) {
    indexed.reserve(n);
    for (int64_t r = 0; r < n; ++r) {
      bool valid = true;
      for (const auto& k : keys) valid = valid && k->IsValid(r);
      if (valid) indexed.push_back(r);
    }
    auto rows = indices(indexed);
    for (auto& k : keys) {
      ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(k, rows));
      k = taken.make_array();
    }
  }
  const int64_t consumed = keys.empty() ? 0 : keys[0]->length();
  ARROW_ASSIGN_OR_RAISE(auto ids_datum, t->keys_->Consume(cp::ExecSpan(exec_batch(keys, consumed))));
  const auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  const uint32_t groups = t->keys_->num_groups();
  t->group_offsets_.assign(groups + 1, 0);
  const uint32_t* id = ids->raw_values();
  for (int64_t i = 0; i < consumed; ++i) ++t->group_offsets_[id[i] + 1];
  for (uint32_t g = 0; g < groups; ++g) t->group_offsets_[g + 1] += t->group_offsets_[g];
  t->group_rows_.resize(consumed);
  std::vector<int64_t> next(t->group_offsets_.begin(), t->group_offsets_.end() - 1);
  for (int64_t i = 0; i < consumed; ++i) t->group_rows_[next[id[i]]++] = any_null ? indexed[i] : i;
  return t;
}

int64_t JoinHashTable::build_rows() const { return build_->num_rows(); }

int64_t JoinHashTable::build_bytes() const {
  return arrow::util::TotalBufferSize(*build_) +
         static_cast<int64_t>((group_offsets_.size() + group_rows_.size()) * sizeof(int64_t));
}

arrow::Status JoinHashTable::match_keys(const arrow::RecordBatch& left, std::vector<int64_t>* left_rows,
                                        std::vector<int64_t>* right_rows) {
  ARROW_ASSIGN_OR_RAISE(auto keys, key_columns(left, spec_.left_keys));
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!keys[i]->type()->Equals(*key_types_[i])) {
      return arrow::Status::TypeError(fmt::format(
          "join key {} is {} but the column it equals, {}, is {}: CAST one of them so both have the same type",
          spec_.left_keys[i].ToString(), keys[i]->type()->ToString(), spec_.right_keys[i].ToString(),
          key_types_[i]->ToString()));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto ids_datum, keys_->Lookup(cp::ExecSpan(exec_batch(keys, left.num_rows()))));
  const auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  left_rows->reserve(left.num_rows());
  right_rows->reserve(left.num_rows());
  for (int64_t i = 0; i < ids->length(); ++i) {
    if (ids->IsNull(i)) continue;  // no build row has this key (or the key is null)
    const uint32_t g = ids->Value(i);
    for (int64_t k = group_offsets_[g]; k < group_offsets_[g + 1]; ++k) {
      left_rows->push_back(i);
      right_rows->push_back(group_rows_[k]);
    }
  }
  return arrow::Status::OK();
}

arrow::Status JoinHashTable::apply_filter(const arrow::RecordBatch& left, std::vector<int64_t>* left_rows,
                                          std::vector<int64_t>* right_rows) const {
  if (left_rows->empty()) return arrow::Status::OK();
  auto left_batch = arrow::RecordBatch::Make(left.schema(), left.num_rows(), left.columns());
  ARROW_ASSIGN_OR_RAISE(auto l, take(left_batch, indices(*left_rows)));
  ARROW_ASSIGN_OR_RAISE(auto r, take(build_, indices(*right_rows)));
  arrow::FieldVector fields = l->schema()->fields();
  arrow::ArrayVector columns = l->columns();
  for (int c = 0; c < r->num_columns(); ++c) {
    fields.push_back(r->schema()->field(c));
    columns.push_back(r->column(c));
  }
  auto both = arrow::schema(fields);
  ARROW_ASSIGN_OR_RAISE(auto bound, spec_.filter.Bind(*both));
  auto pairs = arrow::RecordBatch::Make(both, l->num_rows(), columns);
  ARROW_ASSIGN_OR_RAISE(auto result, cp::ExecuteScalarExpression(bound, cp::ExecBatch(*pairs)));
  std::shared_ptr<arrow::Array> mask;
  if (result.is_scalar()) {
    ARROW_ASSIGN_OR_RAISE(mask, arrow::MakeArrayFromScalar(*result.scalar(), pairs->num_rows()));
  } else {
    mask = result.make_array();
  }
  const auto& keep = static_cast<const arrow::BooleanArray&>(*mask);
  size_t out = 0;
  for (size_t i = 0; i < left_rows->size(); ++i) {
    if (keep.IsValid(i) && keep.Value(i)) {  // a null condition is not a match
      (*left_rows)[out] = (*left_rows)[i];
      (*right_rows)[out] = (*right_rows)[i];
      ++out;
    }
  }
  left_rows->resize(out);
  right_rows->resize(out);
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Table>> JoinHashTable::probe(const arrow::Table& probe,
                                                                  const std::shared_ptr<arrow::Schema>& output) {
  ARROW_ASSIGN_OR_RAISE(auto left, probe.CombineChunksToBatch());
  std::vector<int64_t> left_rows, right_rows;
  ARROW_RETURN_NOT_OK(match_keys(*left, &left_rows, &right_rows));
  if (has_filter_) ARROW_RETURN_NOT_OK(apply_filter(*left, &left_rows, &right_rows));
  std::shared_ptr<arrow::Array> left_take, right_take;
  const bool semi = spec_.type == ProbeJoinType::kLeftSemi || spec_.type == ProbeJoinType::kLeftAnti;
  if (spec_.type == ProbeJoinType::kInner) {
    left_take = indices(std::move(left_rows));
    right_take = indices(std::move(right_rows));
  } else if (semi) {
    // Each left row once, if it has a match (SEMI) or none (ANTI).
    const bool want = spec_.type == ProbeJoinType::kLeftSemi;
    std::vector<int64_t> rows;
    size_t p = 0;
    for (int64_t i = 0; i < left->num_rows(); ++i) {
      bool matched = p < left_rows.size() && left_rows[p] == i;
      while (p < left_rows.size() && left_rows[p] == i) ++p;
      if (matched == want) rows.push_back(i);
    }
    left_take = indices(std::move(rows));
  } else {
    // LEFT OUTER: each left row's matches, or the row once with a null right side.
    arrow::Int64Builder l, r;
    const int64_t n = static_cast<int64_t>(left_rows.size()) + left->num_rows();
    ARROW_RETURN_NOT_OK(l.Reserve(n));
    ARROW_RETURN_NOT_OK(r.Reserve(n));
    size_t p = 0;
    for (int64_t i = 0; i < left->num_rows(); ++i) {
      if (p < left_rows.size() && left_rows[p] == i) {
        for (; p < left_rows.size() && left_rows[p] == i; ++p) {
          l.UnsafeAppend(i);
          r.UnsafeAppend(right_rows[p]);
        }
      } else {
        l.UnsafeAppend(i);
        r.UnsafeAppendNull();
      }
    }
    ARROW_ASSIGN_OR_RAISE(left_take, l.Finish());
    ARROW_ASSIGN_OR_RAISE(right_take, r.Finish());
  }
  // Each left row once, in order (a LEFT join on a unique static key): no copy of the left side.
  std::shared_ptr<arrow::RecordBatch> l = left;
  if (!is_identity(*left_take, left->num_rows())) {
    ARROW_ASSIGN_OR_RAISE(l, take(left, left_take));
  }
  arrow::ArrayVector columns = l->columns();
  if (!semi) {
    ARROW_ASSIGN_OR_RAISE(auto r, take(build_, right_take));
    for (const auto& c : r->columns()) columns.push_back(c);
  }
  if (static_cast<int>(columns.size()) != output->num_fields()) {
    return arrow::Status::Invalid(fmt::format("the join gave {} columns where its schema has {}", columns.size(),
                                              output->num_fields()));
  }
  return arrow::Table::FromRecordBatches(output, {arrow::RecordBatch::Make(output, l->num_rows(), std::move(columns))});
}

}  // namespace sluice::exec
