// Materialized views: recomputed from their inputs' snapshots (incrementally where
// incremental_view.h can) and replaced in one commit.
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
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
    ARROW_ASSIGN_OR_RAISE(auto input, delta::scan_table(upstream, *up_snapshot));
    report.rows_read += input->num_rows();
    return input;
  };
  // The refresh replaces the view's rows; its progress (incremental views) commits with them.
  StreamingCommitOptions co{config_.id, d.flows[0], d.name, config_.table_path(d.name), planner_.schemas().at(d.name),
                            {}, "CREATE OR REPLACE TABLE AS SELECT"};
  co.objects = config_.objects;
  co.write.configuration = planner_.properties(d);
  co.write.description = d.definition->comment;
  co.write.mode = delta::WriteMode::kOverwrite;
  co.write.schema_mode = delta::SchemaMode::kMerge;  // a changed query replaces the schema
  co.write.partition_columns = d.definition->partitioned_by;
  ARROW_ASSIGN_OR_RAISE(auto commit, StreamingCommit::make(std::move(co)));
  const auto* snapshot = commit->snapshot().get();
  std::shared_ptr<arrow::Table> output;
  auto progress = commit->progress();
  ViewPartials partials;  // incremental views: saved with the commit, labelled with its progress
  auto blocker = incremental_blocker(plan);
  if (!blocker && plan.source().kind == exec::PlanSource::Kind::kDataset) {
    ViewRefreshOptions ro{config_.id, d.flows[0], config_.table_path(d.name), config_.table_path(plan.source().name),
                          fingerprint(d.name + "\n" + planner_.graph().files.at(d.file).text)};
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
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
