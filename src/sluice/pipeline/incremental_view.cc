// Incremental refresh of materialized views: partial aggregates, their merge, and the refresh
// decision (incremental or full, and why).
#include "sluice/pipeline/incremental_view.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/common/status.h"
#include "sluice/delta/scan.h"
#include "sluice/exec/group_by.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/pipeline/streaming_commit.h"
#include "sluice/pipeline/table_retention.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

namespace {

constexpr const char* kFingerprintKey = "query_fingerprint";

std::shared_ptr<cp::FunctionOptions> skip_nulls() {
  return std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/1);
}

std::shared_ptr<cp::FunctionOptions> only_valid() {
  return std::make_shared<cp::CountOptions>(cp::CountOptions::ONLY_VALID);
}

}  // namespace

uint64_t fingerprint(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

const char* refresh_mode_name(RefreshMode mode) {
  return mode == RefreshMode::kIncremental ? "incremental" : "full";
}

std::optional<std::string> incremental_blocker(const exec::SelectPlan& plan) {
  if (plan.unions()) return "the query has UNION ALL";
  if (plan.joins()) return "the query joins several inputs";
  if (plan.source().change_feed) return "the query reads a change feed (table_changes)";
  // The merged partial aggregates know nothing of which row DISTINCT ON kept, nor of rows a DISTINCT
  // over the output folded: such views are recomputed whole.
  if (!plan.distinct_on().empty()) return "the query has DISTINCT ON";
  if (plan.distinct()) return "the query has DISTINCT";
  if (!plan.aggregates()) return "the query has no GROUP BY aggregation";
  const auto& agg = *plan.aggregate_spec();
  if (agg.window) return "the query groups by an event-time window";
  if (agg.key_inputs.empty()) return "the query aggregates without GROUP BY keys";
  for (size_t a = 0; a < agg.functions.size(); ++a) {
    const auto& f = agg.functions[a];
    const bool decimal = agg.aggregate_inputs[a].type->id() == arrow::Type::DECIMAL128;
    if (const auto* list = exec::list_aggregate(agg, a)) {
      return fmt::format("{} keeps every row of a group (no partial aggregate to merge)", list->name);
    }
    if (f == "hash_count_distinct") return "count(DISTINCT) does not merge from partial aggregates";
    if (f == "hash_stddev") return "stddev does not merge from partial aggregates";
    if (f == "hash_first" || f == "hash_last") return "first/last depend on the order rows were read in";
    if ((f == "hash_sum" || f == "hash_mean") && decimal) return "sum/avg of decimals are not merged yet";
    if (f != "hash_count" && f != "hash_count_all" && f != "hash_sum" && f != "hash_mean" && f != "hash_min" &&
        f != "hash_max") {
      return fmt::format("aggregate {} does not merge from partial aggregates", f.substr(5));
    }
  }
  return std::nullopt;
}

arrow::Result<MergeableAggregate> MergeableAggregate::make(const exec::SelectPlan& plan) {
  if (auto blocker = incremental_blocker(plan)) return invalid("not incremental: {}", *blocker);
  MergeableAggregate out;
  out.plan_ = &plan;
  const auto& agg = *plan.aggregate_spec();
  arrow::FieldVector fields;
  for (size_t k = 0; k < agg.key_inputs.size(); ++k) {
    fields.push_back(arrow::field(fmt::format("__k{}", k), agg.key_inputs[k].type));
  }
  for (size_t a = 0; a < agg.functions.size(); ++a) {
    const auto& f = agg.functions[a];
    const auto& in_type = agg.aggregate_inputs[a].type;
    auto sum_type = arrow::is_integer(in_type->id()) ? arrow::int64() : arrow::float64();
    if (f == "hash_count" || f == "hash_count_all") {
      fields.push_back(arrow::field(fmt::format("__p{}", a), arrow::int64()));
    } else if (f == "hash_sum") {
      fields.push_back(arrow::field(fmt::format("__p{}", a), sum_type));
    } else if (f == "hash_mean") {
      fields.push_back(arrow::field(fmt::format("__s{}", a), sum_type));
      fields.push_back(arrow::field(fmt::format("__c{}", a), arrow::int64()));
    } else {  // min, max
      fields.push_back(arrow::field(fmt::format("__p{}", a), in_type));
    }
  }
  out.partial_schema_ = arrow::schema(fields);
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MergeableAggregate::partials_of(
    const arrow::RecordBatch& source_rows) const {
  const auto& agg = *plan_->aggregate_spec();
  ARROW_ASSIGN_OR_RAISE(auto rows, plan_->apply_row_stages(source_rows));
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (size_t k = 0; k < agg.key_inputs.size(); ++k) {
    ARROW_ASSIGN_OR_RAISE(auto c, exec::evaluate(agg.key_inputs[k], *rows));
    fields.push_back(partial_schema_->field(static_cast<int>(k)));
    columns.push_back(c);
  }
  std::vector<cp::Aggregate> aggregates;
  for (size_t a = 0; a < agg.functions.size(); ++a) {
    const auto& f = agg.functions[a];
    const auto in = fmt::format("__in{}", a);
    const auto out = fmt::format("__p{}", a);
    if (f != "hash_count_all") {
      ARROW_ASSIGN_OR_RAISE(auto c, exec::evaluate(agg.aggregate_inputs[a], *rows));
      fields.push_back(arrow::field(in, c->type()));
      columns.push_back(c);
    }
    if (f == "hash_count_all") {
      aggregates.emplace_back("hash_count_all", nullptr, std::vector<arrow::FieldRef>{}, out);
    } else if (f == "hash_count") {
      aggregates.emplace_back("hash_count", only_valid(), arrow::FieldRef(in), out);
    } else if (f == "hash_mean") {
      aggregates.emplace_back("hash_sum", skip_nulls(), arrow::FieldRef(in), fmt::format("__s{}", a));
      aggregates.emplace_back("hash_count", only_valid(), arrow::FieldRef(in), fmt::format("__c{}", a));
    } else {  // sum, min, max
      aggregates.emplace_back(f, skip_nulls(), arrow::FieldRef(in), out);
    }
  }
  auto input = arrow::Table::Make(arrow::schema(fields), columns, rows->num_rows());
  return exec::group_by(input, aggregates, partial_schema_, agg.key_inputs.size());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MergeableAggregate::merge(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& partials) const {
  const auto& agg = *plan_->aggregate_spec();
  std::vector<cp::Aggregate> aggregates = exec::partial_merge_aggregates(agg.functions);
  std::vector<std::shared_ptr<arrow::RecordBatch>> nonempty;
  for (const auto& b : partials) {
    if (b && b->num_rows() > 0) nonempty.push_back(b);
  }
  if (nonempty.empty()) return arrow::RecordBatch::MakeEmpty(partial_schema_);
  if (nonempty.size() == 1) return nonempty[0];  // already one row per group
  ARROW_ASSIGN_OR_RAISE(auto input, arrow::Table::FromRecordBatches(partial_schema_, nonempty));
  return exec::group_by(input, aggregates, partial_schema_, agg.key_inputs.size());
}

arrow::Result<std::shared_ptr<arrow::Table>> MergeableAggregate::finish(const arrow::RecordBatch& merged) const {
  const auto& agg = *plan_->aggregate_spec();
  const auto& grouped_schema = agg.grouped_schema;
  const size_t keys = agg.key_inputs.size();
  arrow::ArrayVector columns;
  for (size_t k = 0; k < keys; ++k) columns.push_back(merged.column(static_cast<int>(k)));
  for (size_t a = 0; a < agg.functions.size(); ++a) {
    const auto& f = agg.functions[a];
    const auto& type = grouped_schema->field(static_cast<int>(keys + a))->type();
    std::shared_ptr<arrow::Array> value;
    if (f == "hash_mean") {
      ARROW_ASSIGN_OR_RAISE(auto s, cp::Cast(*merged.GetColumnByName(fmt::format("__s{}", a)), arrow::float64()));
      ARROW_ASSIGN_OR_RAISE(auto c, cp::Cast(*merged.GetColumnByName(fmt::format("__c{}", a)), arrow::float64()));
      // A group whose inputs were all null has a null sum, so the mean is null too.
      ARROW_ASSIGN_OR_RAISE(auto mean, cp::CallFunction("divide", {s, c}));
      value = mean.make_array();
    } else {
      value = merged.GetColumnByName(fmt::format("__p{}", a));
    }
    if (!value->type()->Equals(*type)) {
      ARROW_ASSIGN_OR_RAISE(value, cp::Cast(*value, type));
    }
    columns.push_back(value);
  }
  auto grouped = arrow::RecordBatch::Make(grouped_schema, merged.num_rows(), columns);
  if (agg.having) {
    ARROW_ASSIGN_OR_RAISE(auto mask, exec::evaluate(*agg.having, *grouped));
    ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(grouped, mask));
    grouped = filtered.record_batch();
  }
  arrow::ArrayVector outs;
  for (const auto& o : agg.outputs) {
    ARROW_ASSIGN_OR_RAISE(auto c, exec::evaluate(o, *grouped));
    outs.push_back(c);
  }
  auto result = arrow::RecordBatch::Make(plan_->output_schema(), grouped->num_rows(), outs);
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(plan_->output_schema(), {result}));
  return plan_->order_and_limit(std::move(table));
}

arrow::Result<std::vector<exec::WindowState>> ViewPartials::snapshot_state() {
  std::vector<exec::WindowState> parts;
  if (to_save) parts.push_back(*to_save);
  return parts;
}

arrow::Status ViewPartials::restore_state(std::optional<std::vector<exec::WindowState>>) {
  return arrow::Status::OK();  // refresh_view reads the stored partials itself
}

arrow::Result<ViewRefresh> refresh_view(const exec::SelectPlan& plan, const delta::Snapshot* view,
                                        const ViewRefreshOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto aggregate, MergeableAggregate::make(plan));
  delta::LogStore input(options.objects, options.input_path.string());
  ARROW_ASSIGN_OR_RAISE(auto input_snapshot, delta::Snapshot::load(input));
  const auto& input_name = plan.source().name;
  const std::string app_id = ProgressIds(options.pipeline, options.flow).delta(input_snapshot->metadata().id);
  const int64_t latest = input_snapshot->version().value();
  std::optional<int64_t> done = view ? view->txn_version(app_id) : std::nullopt;
  if (done && *done < 0) done.reset();
  const int64_t done_version = done.value_or(-1);  // -1: nothing consumed yet

  ViewRefresh out;
  out.input_table_id = input_snapshot->metadata().id;
  out.input_version = DeltaVersion(latest);
  StateStore store(options.objects, options.view_path / "_sluice_state" / options.flow);
  // The stored partials, when they belong to the view's last commit and to this query.
  std::shared_ptr<arrow::RecordBatch> stored;
  if (done_version < 0) {
    out.reason = view ? fmt::format("no progress on input '{}' recorded yet", input_name) : "first refresh";
    ARROW_RETURN_NOT_OK(store.load({{app_id, -1}}).status());  // drops stale snapshots
  } else if (done_version > latest) {
    out.reason = fmt::format("input '{}' is at version {}, behind the view's progress {} (was it recreated?)",
                             input_name, latest, done_version);
  } else {
    auto loaded = store.load({{app_id, done_version}});
    if (!loaded.ok()) {
      out.reason = fmt::format("no partial aggregates stored for input version {}", done_version);
    } else if (!*loaded) {
      out.reason = "no partial aggregates stored";
    } else {
      const auto& state = **loaded;
      auto fp = state.input_max_event_time.find(kFingerprintKey);
      if (fp == state.input_max_event_time.end() ||
          static_cast<uint64_t>(fp->second) != options.query_fingerprint ||
          !state.open_rows->schema()->Equals(*aggregate.partial_schema(), /*check_metadata=*/false)) {
        out.reason = "the query changed since the stored partial aggregates were made";
      } else {
        ARROW_ASSIGN_OR_RAISE(stored, state.open_rows->CombineChunksToBatch());
        if (!stored) stored = arrow::RecordBatch::MakeEmpty(aggregate.partial_schema()).ValueOrDie();
      }
    }
  }

  std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
  if (stored) {
    auto added = delta::added_files_between(input, DeltaVersion(done_version), DeltaVersion(latest), delta::ChangePolicy::kFail);
    // added_files_between skips retention deletes (a stream's reading); a view's result must
    // lose the expired rows, so they make it recompute.
    if (added.ok()) {
      ARROW_ASSIGN_OR_RAISE(auto expired, retention_commit_versions(input, DeltaVersion(done_version), DeltaVersion(latest)));
      if (!expired.empty()) {
        added = arrow::Status::Invalid(fmt::format("version {} deleted the rows its retention policy expired",
                                                   *expired.begin()));
      }
    }
    if (!added.ok()) {
      out.reason = fmt::format("input '{}' did not only append between versions {} and {} ({})", input_name, done_version,
                               latest, added.status().message());
      stored.reset();
    } else {
      out.mode = RefreshMode::kIncremental;
      out.reason = fmt::format("input '{}' only appended between versions {} and {}: {} new file(s) read", input_name,
                               done_version, latest, added->size());
      parts.push_back(stored);
      for (const auto& f : *added) {
        ARROW_ASSIGN_OR_RAISE(auto table, delta::read_data_file(input, *input_snapshot, f.add));
        ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());
        if (!batch) continue;
        out.rows_read += batch->num_rows();
        ARROW_ASSIGN_OR_RAISE(auto p, aggregate.partials_of(*batch));
        parts.push_back(p);
      }
    }
  }
  if (out.mode == RefreshMode::kFull) {
    for (const auto& f : input_snapshot->files()) {
      ARROW_ASSIGN_OR_RAISE(auto table, delta::read_data_file(input, *input_snapshot, f));
      ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());
      if (!batch) continue;
      out.rows_read += batch->num_rows();
      ARROW_ASSIGN_OR_RAISE(auto p, aggregate.partials_of(*batch));
      parts.push_back(p);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto merged, aggregate.merge(parts));
  out.state_rows = merged->num_rows();
  ARROW_ASSIGN_OR_RAISE(out.rows, aggregate.finish(*merged));
  // Nothing new: the stored partials already belong to this progress.
  if (!(out.mode == RefreshMode::kIncremental && done.value_or(-1) == latest)) {
    exec::WindowState state;
    state.input_max_event_time[kFingerprintKey] = static_cast<int64_t>(options.query_fingerprint);
    ARROW_ASSIGN_OR_RAISE(state.open_rows, arrow::Table::FromRecordBatches(aggregate.partial_schema(), {merged}));
    out.partials = std::move(state);
  }
  return out;
}

}  // namespace sluice::pipeline
