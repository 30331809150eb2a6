// Materialized views: recomputed from their inputs' snapshots (incrementally where
// incremental_view.h can) and replaced in one commit.
#include <arrow/api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "sluice/delta/table_definition.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/change_feed.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/incremental_view.h"

namespace sluice::pipeline {

namespace {

// An input of a materialized view as this update finds it.
struct ViewInput {
  std::string name;
  std::string table_id;
  DeltaVersion version;
};

// Functions whose value changes between updates without any input changing: a view that calls
// one is recomputed every update (a conservative look at the file's text).
std::optional<std::string> volatile_call(const std::string& text) {
  const std::string lower = to_lower(text);
  for (const char* f : {"current_timestamp", "current_date", "now(", "rand(", "random(", "uuid("}) {
    if (lower.find(f) != std::string::npos) return std::string(f);
  }
  return std::nullopt;
}

// The view's inputs at their latest versions; none when one cannot be read (the refresh then
// reports why).
std::optional<std::vector<ViewInput>> view_inputs(const exec::SelectPlan& plan, const PipelineConfig& config) {
  std::vector<ViewInput> out;
  for (const auto& src : plan.sources()) {
    if (src.kind != exec::PlanSource::Kind::kDataset) return std::nullopt;
    delta::LogStore upstream(config.objects, config.table_path(src.name).string());
    auto snapshot = delta::Snapshot::load(upstream);
    if (!snapshot.ok()) return std::nullopt;
    out.push_back({src.name, (*snapshot)->metadata().id, (*snapshot)->version()});
  }
  return out;
}

}  // namespace

arrow::Status FlowRunner::run_materialized(const Dataset& d, DatasetReport& report) {
  const auto& plan = planner_.flow_plans().at(d.flows[0]);
  ARROW_RETURN_NOT_OK(SqlPlanner::refuse_event_time(plan));
  if (plan.watermark() && plan.distinct() && !plan.aggregates()) {  // dedup within a watermark: streams only
    return arrow::Status::NotImplemented(
        "WATERMARK with SELECT DISTINCT deduplicates a stream in a streaming table; a materialized view recomputes "
        "from its inputs' snapshots: remove the WATERMARK for a plain DISTINCT");
  }
  auto read = [&](const exec::PlanSource& src) -> arrow::Result<std::shared_ptr<arrow::Table>> {
    if (src.kind == exec::PlanSource::Kind::kKafka) {
      return invalid("a materialized view cannot read Kafka directly; read a streaming table");
    }
    delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
    if (src.change_feed) {  // table_changes(...): the feed of its range, read whole each refresh
      ARROW_ASSIGN_OR_RAISE(auto changes, delta::read_table_changes(upstream, src.name, src.change_feed->starting,
                                                                    src.change_feed->ending));
      report.rows_read += changes->num_rows();
      return changes;
    }
    ARROW_ASSIGN_OR_RAISE(auto up_snapshot, delta::Snapshot::load(upstream));
    // The plan's first WHERE on this input skips files (partition values, stats).
    delta::ScanOptions options;
    if (src.filter) options.file_filter = delta::skipping_predicate(*src.filter, *up_snapshot->schema());
    ARROW_ASSIGN_OR_RAISE(auto input, delta::scan_table(upstream, *up_snapshot, options));
    report.rows_read += input->num_rows();
    return input;
  };
  // The refresh replaces the view's rows; its progress (incremental views) commits with them.
  StreamingCommitOptions co{config_.id, d.flows[0], d.name, config_.table_path(d.name), planner_.schemas().at(d.name),
                            {}, "CREATE OR REPLACE TABLE AS SELECT"};
  co.objects = config_.objects;
  co.write.configuration = delta::with_defined_properties(planner_.properties(d));
  co.write.description = d.definition->comment;
  co.write.mode = delta::WriteMode::kOverwrite;
  co.write.schema_mode = delta::SchemaMode::kMerge;  // a changed query replaces the schema
  co.write.partition_columns = d.definition->partitioned_by;
  co.write.clustering_columns = planner_.clustering_columns(d.name);
  ARROW_ASSIGN_OR_RAISE(auto commit, StreamingCommit::make(std::move(co)));
  const auto* snapshot = commit->snapshot().get();
  std::shared_ptr<arrow::Table> output;
  auto progress = commit->progress();
  // Issue 15: the view records its query's fingerprint and every input's version; an update that
  // finds both as recorded commits nothing (unless --full-refresh names it, or it calls a
  // function such as current_timestamp()).
  // The view's file and every file defining a pipeline view (views are inlined where read, so an
  // edit to one, or a current_timestamp() in one, must count too; all views, conservatively).
  std::set<size_t> query_files{d.file};
  for (const auto& [n, other] : planner_.graph().datasets) {
    if (other.kind == sql::DatasetKind::kView || other.kind == sql::DatasetKind::kTemporaryView) {
      query_files.insert(other.file);
    }
  }
  std::string file_text;
  for (size_t f : query_files) file_text += planner_.graph().files.at(f).text + "\n";
  nlohmann::json props(planner_.properties(d));
  const int64_t query_fp = static_cast<int64_t>(
      fingerprint(d.name + "\n" + file_text + "\n" + planner_.schemas().at(d.name)->ToString(true) + "\n" +
                  props.dump()) & 0x7fffffffffffffffULL);
  progress.view_query(query_fp);
  const auto& refresh_all = options_.full_refresh;
  const bool forced = std::find(refresh_all.begin(), refresh_all.end(), d.name) != refresh_all.end() ||
                      (refresh_all.size() == 1 && refresh_all[0] == "*");
  auto inputs = view_inputs(plan, config_);
  if (inputs) {
    bool unchanged = snapshot && !forced && commit->recorded(commit->ids().view_query()) == query_fp &&
                     !volatile_call(file_text);
    std::vector<std::string> at;
    for (const auto& in : *inputs) {
      progress.delta(in.table_id, DeltaReader::kOnly, in.version);
      const auto recorded = commit->recorded(commit->ids().delta(in.table_id));
      bool same = recorded == in.version.value();
      if (unchanged && !same && recorded && *recorded >= 0 && *recorded < in.version.value()) {
        // Commits that only rearranged the input's files (auto compaction) change no row.
        delta::LogStore upstream(config_.objects, config_.table_path(in.name).string());
        ARROW_ASSIGN_OR_RAISE(auto changed,
                              delta::data_changed_between(upstream, DeltaVersion(*recorded), in.version));
        same = !changed;
      }
      unchanged = unchanged && same;
      at.push_back(fmt::format("{} at version {}", in.name, in.version.value()));
    }
    if (unchanged) {
      report.version = snapshot->version().value();
      report.refresh_mode = "none";
      report.refresh_reason = fmt::format("no input changed since the last refresh ({})", fmt::join(at, ", "));
      return arrow::Status::OK();
    }
  }
  ViewPartials partials;  // incremental views: saved with the commit, labelled with its progress
  auto blocker = incremental_blocker(plan);
  if (!blocker && plan.source().kind == exec::PlanSource::Kind::kDataset) {
    ViewRefreshOptions ro{config_.id, d.flows[0], config_.table_path(d.name), config_.table_path(plan.source().name),
                          fingerprint(d.name + "\n" + file_text)};  // its views' files too
    ro.objects = config_.objects;
    ARROW_ASSIGN_OR_RAISE(auto refresh, refresh_view(plan, snapshot, ro));
    output = refresh.rows;
    progress.delta(refresh.input_table_id, DeltaReader::kOnly, refresh.input_version);
    partials.to_save = std::move(refresh.partials);
    commit->set_state(&partials);
    report.rows_read += refresh.rows_read;
    report.refresh_mode = refresh_mode_name(refresh.mode);
    report.refresh_reason = refresh.reason;
    report.state_rows = refresh.state_rows;
  } else {
    ARROW_ASSIGN_OR_RAISE(output, plan.run(read));
    report.refresh_mode = refresh_mode_name(RefreshMode::kFull);
    report.refresh_reason = blocker.value_or("the query reads Kafka");
  }
  ARROW_ASSIGN_OR_RAISE(auto combined, output->CombineChunksToBatch());
  if (!combined) {
    ARROW_ASSIGN_OR_RAISE(combined, arrow::RecordBatch::MakeEmpty(output->schema()));
  }
  ARROW_ASSIGN_OR_RAISE(combined, delta::conform_batch(*combined, planner_.schemas().at(d.name)));
  ARROW_ASSIGN_OR_RAISE(combined, planner_.expectations().at(d.name).apply(combined, report));
  ARROW_ASSIGN_OR_RAISE(auto* writer, commit->writer());
  ARROW_RETURN_NOT_OK(writer->write(*combined));
  report.rows_written = writer->rows_written();
  ARROW_ASSIGN_OR_RAISE(auto result, commit->commit(progress));
  report.version = result.version.value();
  // An incremental view's state: the bytes of the partials it saved with this commit (what it
  // keeps to refresh without reading its input again); a full refresh keeps none.
  if (report.state_rows && commit->state_file_bytes() > 0) report.state_bytes = commit->state_file_bytes();
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
