// Expectations and quarantine rows.
#include "sluice/pipeline/expectations.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/sql/source.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

arrow::Result<Expectations> Expectations::make(const Graph& graph, const Dataset& dataset,
                                        const std::shared_ptr<arrow::Schema>& schema) {
  Expectations out;
  out.dataset_ = dataset.name;
  for (const auto& c : dataset.definition->constraints) {
    exec::ExpressionBinder binder(graph.files[dataset.file], schema);
    ARROW_ASSIGN_OR_RAISE(auto bound, binder.bind(*c.expr));
    if (bound.type->id() != arrow::Type::BOOL) {
      return arrow::Status::Invalid(sql::format_error(graph.files[dataset.file], c.expr->loc,
                                                      "an expectation must be a BOOLEAN condition"));
    }
    out.checks_.push_back({c.name, c.action, std::move(bound)});
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> Expectations::apply(std::shared_ptr<arrow::RecordBatch> batch,
                                                                    DatasetReport& report, Dropped* dropped,
                                                                    const std::function<std::string(int64_t)>& source_of) const {
  arrow::Datum keep(true);
  std::vector<arrow::Datum> passes;  // per check
  for (const auto& check : checks_) {
    ARROW_ASSIGN_OR_RAISE(auto result, exec::evaluate(check.expr, *batch));
    ARROW_ASSIGN_OR_RAISE(auto passed, cp::CallFunction("coalesce", {result, arrow::Datum(false)}));
    ARROW_ASSIGN_OR_RAISE(auto pass_count, cp::Sum(passed));
    int64_t n_passed = pass_count.scalar()->is_valid
                           ? static_cast<int64_t>(static_cast<const arrow::UInt64Scalar&>(*pass_count.scalar()).value)
                           : 0;
    int64_t failures = batch->num_rows() - n_passed;
    report.expectation_failures[check.name] += failures;
    report.expectation_rows[check.name] += batch->num_rows();
    passes.push_back(passed);
    if (failures == 0) continue;
    if (check.action == sql::ViolationAction::kFailUpdate) {
      ARROW_ASSIGN_OR_RAISE(auto inverted, cp::Invert(passed));
      ARROW_ASSIGN_OR_RAISE(auto bad, cp::Filter(batch, inverted));
      auto sample = bad.record_batch()->Slice(0, 1)->ToString();
      std::string source;
      if (source_of) {
        const auto pass_array = passed.make_array();  // owns the array `pass` refers to
        const auto& pass = static_cast<const arrow::BooleanArray&>(*pass_array);
        for (int64_t r = 0; r < pass.length(); ++r) {
          if (!pass.Value(r)) {
            source = fmt::format("\nIt came from {}.", source_of(r));
            break;
          }
        }
      }
      return invalid("expectation '{}' of table '{}' failed for {} row(s) (ON VIOLATION FAIL UPDATE); "
                     "nothing was committed. First failing row:\n{}{}",
                     check.name, dataset_, failures, sample, source);
    }
    if (check.action == sql::ViolationAction::kDropRow) {
      ARROW_ASSIGN_OR_RAISE(keep, cp::And(keep, passed));
    }
  }
  if (keep.is_scalar()) return batch;
  ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(batch, keep));
  report.rows_dropped += batch->num_rows() - filtered.record_batch()->num_rows();
  if (dropped && filtered.record_batch()->num_rows() < batch->num_rows()) {
    ARROW_ASSIGN_OR_RAISE(auto drop, cp::Invert(keep));
    ARROW_ASSIGN_OR_RAISE(auto rows, cp::Filter(batch, drop));
    dropped->rows = rows.record_batch();
    arrow::Int64Builder all;
    ARROW_RETURN_NOT_OK(all.Reserve(batch->num_rows()));
    for (int64_t i = 0; i < batch->num_rows(); ++i) all.UnsafeAppend(i);
    ARROW_ASSIGN_OR_RAISE(auto all_indices, all.Finish());
    ARROW_ASSIGN_OR_RAISE(auto indices, cp::Filter(all_indices, drop));
    dropped->indices = indices.make_array();
    // Only the dropped rows (few, normally) are walked one by one.
    std::vector<std::shared_ptr<arrow::BooleanArray>> pass_arrays;
    for (auto& p : passes) pass_arrays.push_back(std::static_pointer_cast<arrow::BooleanArray>(p.make_array()));
    arrow::ListBuilder names(arrow::default_memory_pool(), std::make_shared<arrow::StringBuilder>());
    auto& name_values = static_cast<arrow::StringBuilder&>(*names.value_builder());
    const auto& idx = static_cast<const arrow::Int64Array&>(*dropped->indices);
    for (int64_t r = 0; r < idx.length(); ++r) {
      ARROW_RETURN_NOT_OK(names.Append());
      for (size_t c = 0; c < checks_.size(); ++c) {
        if (!pass_arrays[c]->Value(idx.Value(r))) ARROW_RETURN_NOT_OK(name_values.Append(checks_[c].name));
      }
    }
    ARROW_ASSIGN_OR_RAISE(dropped->failed_expectations, names.Finish());
  }
  return filtered.record_batch();
}


std::shared_ptr<arrow::Schema> quarantine_schema(const arrow::Schema& table) {
  arrow::FieldVector fields;
  for (const auto& f : table.fields()) fields.push_back(f->WithNullable(true));
  fields.push_back(arrow::field("_failed_expectations", arrow::list(arrow::utf8())));
  fields.push_back(arrow::field("_source_name", arrow::utf8()));        // topic or upstream table
  fields.push_back(arrow::field("_source_partition", arrow::int32()));  // Kafka partition
  fields.push_back(arrow::field("_source_offset", arrow::int64()));     // Kafka offset or upstream version
  fields.push_back(arrow::field("_quarantined_at", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  return arrow::schema(fields);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> quarantine_batch(
    const arrow::Schema& qschema, const Expectations::Dropped& dropped, std::shared_ptr<arrow::Array> name,
    std::shared_ptr<arrow::Array> partition, std::shared_ptr<arrow::Array> offset,
    const std::function<bool(int64_t)>& already_there) {
  const int64_t n = dropped.rows->num_rows();
  arrow::ArrayVector columns = dropped.rows->columns();
  columns.push_back(dropped.failed_expectations);
  columns.push_back(name);
  columns.push_back(partition);
  columns.push_back(offset);
  arrow::TimestampBuilder at(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
  ARROW_RETURN_NOT_OK(at.AppendValues(std::vector<int64_t>(n, now_millis() * 1000)));
  ARROW_ASSIGN_OR_RAISE(auto at_array, at.Finish());
  columns.push_back(at_array);
  auto batch = arrow::RecordBatch::Make(std::make_shared<arrow::Schema>(qschema.fields()), n, columns);
  arrow::BooleanBuilder keep;
  bool all = true;
  for (int64_t i = 0; i < n; ++i) {
    bool k = !already_there(i);
    all = all && k;
    ARROW_RETURN_NOT_OK(keep.Append(k));
  }
  if (all) return batch;
  ARROW_ASSIGN_OR_RAISE(auto mask, keep.Finish());
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(batch, mask));
  return kept.record_batch();
}


}  // namespace sluice::pipeline
