// What the streaming-table flows of both source kinds share (flow_runner.h): the side tables
// and windowed flow they open, the operators they are given (flow_operators.h), the static
// side of stream-static joins; and stream-stream joins.
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/delta/table_definition.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/table.h"
#include "sluice/kafka/source_schema.h"
#include "sluice/pipeline/flow_operators.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/stream_join_flow.h"

namespace sluice::pipeline {

arrow::Status FlowRunner::run_streaming(const Dataset& d, DatasetReport& report) {
  for (const auto& fname : d.flows) {
    ARROW_RETURN_NOT_OK(run_flow(d, fname, report));
  }
  return arrow::Status::OK();
}

// One flow into a streaming table; its progress is its own txn appId.
arrow::Status FlowRunner::run_flow(const Dataset& d, const std::string& flow_name, DatasetReport& report) {
  if (planner_.graph().flows.at(flow_name).apply_changes) return run_apply_changes(d, flow_name, report);
  const auto& plan = planner_.flow_plans().at(flow_name);
  if (plan.joins() && !plan.streams_on_left_only()) return run_stream_join(d, flow_name, report);
  ARROW_RETURN_NOT_OK(SqlPlanner::refuse_event_time(plan));
  const auto& ex = planner_.expectations().at(d.name);
  const auto& schema = planner_.schemas().at(d.name);
  const auto src = SqlPlanner::streaming_source(plan);
  // Target, side tables, state and progress commit through one protocol (streaming_commit.h).
  StreamingCommitOptions co{config_.id, flow_name, d.name, config_.table_path(d.name), schema, {}, {}};
  co.objects = config_.objects;
  co.write.configuration = delta::with_defined_properties(planner_.properties(d));
  co.write.partition_columns = d.definition->partitioned_by;
  co.write.clustering_columns = planner_.clustering_columns(d.name);
  co.write.description = d.definition->comment;
  co.snapshots = options_.snapshots.get();
  co.gate = maintenance_ ? maintenance_->gate(d.name) : nullptr;
  if (src.kind == exec::PlanSource::Kind::kKafka && co.write.description == "") co.write.description.reset();
  if (src.kind == exec::PlanSource::Kind::kKafka) {  // no dictionary for a payload or an offset
    co.write.file.columns_without_dictionary = kafka::kafka_columns_never_repeating(*schema);
  }
  if (channels_ && src.kind == exec::PlanSource::Kind::kDataset && !src.change_feed &&
      channels_->find(src.name, flow_name)) {
    // Taking its input's rows in process, beside it: the two flows already fill the cores, and
    // one file in progress instead of one per core halves this writer's memory.
    co.write.file.parallel_files = 1;
  }
  ARROW_ASSIGN_OR_RAISE(auto commit, StreamingCommit::make(std::move(co)));
  if (channels_) commit->publish_to(channels_->find(d.name));  // to its reader in process, if any
  SideTable* quarantine = nullptr;
  if (planner_.quarantines(d)) {
    ARROW_ASSIGN_OR_RAISE(quarantine, open_quarantine(d, *commit));
  }
  // GROUP BY window(...): the windows the watermark closed are the table's rows.
  std::unique_ptr<WindowedFlow> windowed;
  if (plan.aggregates() || plan.distinct()) {  // windows, or SELECT DISTINCT (dedup)
    ARROW_ASSIGN_OR_RAISE(auto wo, planner_.windowed_options(d, flow_name, plan));
    ARROW_ASSIGN_OR_RAISE(windowed, WindowedFlow::make(plan, std::move(wo), *commit));
  }
  // Declared before window_report, which reads the windowed flow when it goes.
  StreamingFlow flow{d, flow_name, report, plan, ex, schema, *commit, quarantine, std::move(windowed)};
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
  if (src.change_feed) return run_change_feed_source(flow, src);
  return run_delta_source(flow, src);
}

arrow::Result<FlowOperatorsSpec> FlowRunner::operators_spec(StreamingFlow& f, const SourcePositions& positions) {
  FlowOperatorsSpec ops;
  ops.plan = &f.plan;
  ops.expectations = &f.ex;
  ops.schema = f.schema;
  ops.report = &f.report;
  ops.positions = &positions;
  ops.quarantine = f.quarantine;
  ops.windowed = f.windowed.get();
  ops.commit = &f.commit;  // a window's state: saved with the commits, loaded with the chain
  if (f.plan.joins()) {
    ARROW_ASSIGN_OR_RAISE(ops.static_join, stream_static_join(f.flow_name, f.plan));
  }
  return ops;
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
  spec.objects = config_.objects;
  spec.configuration = delta::with_defined_properties(planner_.properties(d));
  spec.description = d.definition->comment;
  spec.partition_columns = d.definition->partitioned_by;
  spec.clustering_columns = planner_.clustering_columns(d.name);
  spec.schema = schema;
  spec.gate = maintenance_ ? maintenance_->gate(d.name) : nullptr;
  auto operators = std::make_unique<exec::OperatorChain>();
  operators->add(std::make_unique<ConformOperator>(schema));
  operators->add(std::make_unique<ExpectationsOperator>(ex, report, nullptr, nullptr));
  spec.operators = std::move(operators);
  ARROW_ASSIGN_OR_RAISE(auto r, run_stream_join_flow(plan, std::move(spec)));
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
