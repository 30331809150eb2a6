// Materialized views: recomputed from their inputs' snapshots (incrementally where
// incremental_view.h can) and replaced in one commit.
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
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
    delta::LogStore upstream(config_.table_path(src.name));
    ARROW_ASSIGN_OR_RAISE(auto up_snapshot, delta::Snapshot::load(upstream));
    ARROW_ASSIGN_OR_RAISE(auto input, delta::scan_table(upstream, *up_snapshot));
    report.rows_read += input->num_rows();
    return input;
  };
  auto store = std::make_shared<delta::LogStore>(config_.table_path(d.name));
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  std::shared_ptr<arrow::Table> output;
  TxnVersions progress;
  auto blocker = incremental_blocker(plan);
  if (!blocker && plan.source().kind == exec::PlanSource::Kind::kDataset) {
    ViewRefreshOptions ro{config_.id, d.flows[0], config_.table_path(d.name), config_.table_path(plan.source().name),
                          fingerprint(d.name + "\n" + planner_.graph().files.at(d.file).text)};
    ARROW_ASSIGN_OR_RAISE(auto refresh, refresh_view(plan, snapshot.get(), ro));
    output = refresh.rows;
    progress = refresh.progress;
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
  delta::WriteOptions wo;
  wo.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  wo.table_name = d.name;
  wo.configuration = planner_.properties(d);
  wo.description = d.definition->comment;
  wo.mode = delta::WriteMode::kOverwrite;
  wo.schema_mode = delta::SchemaMode::kMerge;  // a changed query replaces the schema
  wo.partition_columns = d.definition->partitioned_by;
  ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *planner_.schemas().at(d.name), wo));
  ARROW_RETURN_NOT_OK(writer->write(*combined));
  report.rows_written = writer->rows_written();
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  for (const auto& [app, version] : progress) txn.set_txn(app, version);
  delta::CommitOptions co;
  co.operation = "CREATE OR REPLACE TABLE AS SELECT";
  ARROW_ASSIGN_OR_RAISE(auto result, txn.commit(co));
  report.version = result.version.value();
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
