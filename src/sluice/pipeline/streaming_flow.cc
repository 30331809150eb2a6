// The parts of a streaming-table flow both source kinds share (flow_runner.h), and
// stream-stream joins.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/stream_join_flow.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

arrow::Status FlowRunner::run_streaming(const Dataset& d, DatasetReport& report) {
  for (const auto& fname : d.flows) {
    ARROW_RETURN_NOT_OK(run_flow(d, fname, report));
  }
  return arrow::Status::OK();
}

// One flow into a streaming table; its progress is its own txn appId.
arrow::Status FlowRunner::run_flow(const Dataset& d, const std::string& flow_name, DatasetReport& report) {
  const auto& plan = planner_.flow_plans().at(flow_name);
  if (plan.joins() && !plan.streams_on_left_only()) return run_stream_join(d, flow_name, report);
  ARROW_RETURN_NOT_OK(SqlPlanner::refuse_event_time(plan));
  const auto& ex = planner_.expectations().at(d.name);
  const auto& schema = planner_.schemas().at(d.name);
  const auto src = SqlPlanner::streaming_source(plan);
  // Target, side tables, state and progress commit through one protocol (streaming_commit.h).
  StreamingCommitOptions co{config_.id, flow_name, d.name, config_.table_path(d.name), schema, {}, {}};
  co.write.configuration = planner_.properties(d);
  co.write.partition_columns = d.definition->partitioned_by;
  co.write.description = d.definition->comment;
  if (src.kind == exec::PlanSource::Kind::kKafka && co.write.description == "") co.write.description.reset();
  ARROW_ASSIGN_OR_RAISE(auto commit, StreamingCommit::make(std::move(co)));
  SideTable* quarantine = nullptr;
  if (planner_.quarantines(d)) {
    ARROW_ASSIGN_OR_RAISE(quarantine, open_quarantine(d, *commit));
  }
  // GROUP BY window(...): the windows the watermark closed are the table's rows.
  std::unique_ptr<WindowedFlow> windowed;
  if (plan.aggregates() || plan.distinct()) {  // windows, or SELECT DISTINCT (dedup)
    ARROW_ASSIGN_OR_RAISE(auto wo, planner_.windowed_options(d, flow_name, plan));
    ARROW_ASSIGN_OR_RAISE(windowed, WindowedFlow::make(plan, std::move(wo), *commit));
    ARROW_RETURN_NOT_OK(windowed->load());
  }
  // Declared before window_report, which reads the windowed flow when it goes.
  StreamingFlow flow{d, flow_name, report, plan, ex, schema, *commit, quarantine, std::move(windowed), {}};
  struct WindowReport {  // event log: late rows and state size of the windowed flow
    WindowedFlow* flow;
    DatasetReport& report;
    ~WindowReport() {
      if (!flow) return;
      report.rows_late += flow->late_rows();
      report.state_rows = flow->state_rows();
      report.state_bytes = flow->state_bytes();
      report.watermark = flow->watermark();
      report.rows_duplicate += flow->duplicates_dropped();
    }
  } window_report{flow.windowed.get(), report};
  if (src.kind == exec::PlanSource::Kind::kKafka) return run_kafka_source(flow, src);
  return run_delta_source(flow, src);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> FlowRunner::table_rows(StreamingFlow& f,
                                                                          const arrow::RecordBatch& input,
                                                                          const Positions& quarantine_rows,
                                                                          const SourceOf& source_of) {
  const auto& plan = f.plan;
  const auto& ex = f.ex;
  const auto& schema = f.schema;
  auto& report = f.report;
  auto& quarantine = f.quarantine;
  auto& windowed = f.windowed;
  auto& window_consume = f.window_consume;
  std::shared_ptr<arrow::Array> input_rows;
  std::shared_ptr<arrow::RecordBatch> rows;
  if (plan.joins()) {
    // Stream-static join: this batch of the stream against the static tables' snapshots.
    ARROW_ASSIGN_OR_RAISE(auto* join, stream_static_join(f.flow_name, plan));
    ARROW_ASSIGN_OR_RAISE(auto joined, join->run(input));
    ARROW_ASSIGN_OR_RAISE(rows, joined->CombineChunksToBatch());
  } else {
    ARROW_ASSIGN_OR_RAISE(rows, plan.apply_row_stages(input, &input_rows));
  }
  if (windowed) {
    ARROW_ASSIGN_OR_RAISE(rows, window_consume(input, *rows, *input_rows));
    input_rows.reset();  // window rows have no single source row
    ARROW_ASSIGN_OR_RAISE(rows, delta::conform_batch(*rows, schema));
    return ex.apply(rows, report);
  }
  ARROW_ASSIGN_OR_RAISE(rows, delta::conform_batch(*rows, schema));
  SourceOf row_source;
  if (input_rows) {
    row_source = [&](int64_t r) {
      return source_of(static_cast<const arrow::Int64Array&>(*input_rows).Value(r));
    };
  }
  if (!quarantine) return ex.apply(rows, report, nullptr, row_source);
  Expectations::Dropped dropped;
  ARROW_ASSIGN_OR_RAISE(auto kept, ex.apply(rows, report, &dropped, row_source));
  if (dropped.rows) {
    ARROW_ASSIGN_OR_RAISE(auto source_rows, cp::Take(input_rows, dropped.indices));
    ARROW_ASSIGN_OR_RAISE(auto qrows, quarantine_rows(dropped, source_rows.make_array()));
    report.rows_quarantined += qrows->num_rows();
    ARROW_RETURN_NOT_OK(quarantine->write(*qrows));
  }
  return kept;
}

arrow::Result<SideTable*> FlowRunner::open_quarantine(const Dataset& d, StreamingCommit& commit) const {
  const auto qname = d.name + "_quarantine";
  return commit.open_side_table(config_.table_path(qname), qname, quarantine_schema(*planner_.schemas().at(d.name)),
                                fmt::format("rows of '{}' that its DROP ROW expectations removed", d.name));
}

// A flow's stream-static join (exec/stream_static_join.h), kept for the whole run so its hash
// tables are built again only when a static table gets a new version.
arrow::Result<exec::StreamStaticJoin*> FlowRunner::stream_static_join(const std::string& flow_name,
                                                                      const exec::SelectPlan& plan) {
  std::lock_guard lock(static_mutex_);
  auto& join = static_joins_[flow_name];
  if (!join) {
    ARROW_ASSIGN_OR_RAISE(join, exec::StreamStaticJoin::make(plan, &static_tables_));
  }
  return join.get();
}

arrow::Status FlowRunner::run_stream_join(const Dataset& d, const std::string& flow_name, DatasetReport& report) {
  const auto& plan = planner_.flow_plans().at(flow_name);
  const auto& ex = planner_.expectations().at(d.name);
  const auto& schema = planner_.schemas().at(d.name);
  StreamJoinFlowSpec spec;
  spec.pipeline = config_.id;
  spec.table = d.name;
  spec.flow = flow_name;
  spec.table_path = config_.table_path(d.name);
  spec.left_path = config_.table_path(plan.join_left()->source().name);
  spec.right_path = config_.table_path(plan.join_right()->source().name);
  spec.configuration = planner_.properties(d);
  spec.description = d.definition->comment;
  spec.partition_columns = d.definition->partitioned_by;
  spec.schema = schema;
  spec.to_table_rows = [&](const arrow::RecordBatch& rows) -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    ARROW_ASSIGN_OR_RAISE(auto conformed, delta::conform_batch(rows, schema));
    return ex.apply(conformed, report);
  };
  ARROW_ASSIGN_OR_RAISE(auto r, run_stream_join_flow(plan, spec));
  report.rows_read += r.rows_read;
  report.rows_written += r.rows_written;
  report.rows_late += r.rows_late;
  report.state_rows = r.state_rows;
  report.state_bytes = r.state_bytes;
  report.watermark = r.watermark;
  report.version = r.version;
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
