// Streaming-table flows that read Kafka (read_kafka): run_kafka_flow_once (kafka_ingest_flow.h)
// pushes each batch through the flow's operators (flow_operators.h), decoded first when the
// value has a format (dead letters for what cannot be).
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/delta/table_definition.h"
#include "sluice/exec/select_plan.h"
#include "sluice/format/kafka_values.h"
#include "sluice/pipeline/flow_operators.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/kafka_ingest_flow.h"
#include "sluice/pipeline/read_kafka_binding.h"

namespace sluice::pipeline {

namespace {

// The fields of the decoded `value` the flow reads (null: all of them, also when it reads
// `_rescued_data`, which only a whole decode fills): docs/decisions.md "read_kafka decodes
// the fields read".
std::shared_ptr<const format::FieldSelection> value_fields_read(const exec::SelectPlan& plan,
                                                                const exec::PlanSource& src) {
  using format::FieldSelection;
  const auto read = plan.source_fields_read();
  if (read.use != FieldSelection::Use::kSome || !plan.source().schema->Equals(*src.schema)) return nullptr;
  const int value = src.schema->GetFieldIndex("value");
  const int rescued = src.schema->GetFieldIndex(format::kRescuedDataColumn);
  if (value < 0 || (rescued >= 0 && read.fields[rescued].read())) return nullptr;
  const auto& type = src.schema->field(value)->type();
  if (type->id() != arrow::Type::STRUCT) return nullptr;
  auto out = std::make_shared<FieldSelection>(read.fields[value]);
  if (out->use == FieldSelection::Use::kWhole) return nullptr;
  if (out->use == FieldSelection::Use::kNone) {  // no value field read: parsed only, for errors
    out->use = FieldSelection::Use::kSome;
    out->fields.assign(type->num_fields(), FieldSelection{});
  }
  return out;
}

}  // namespace

arrow::Status FlowRunner::run_kafka_source(StreamingFlow& f, const exec::PlanSource& src) {
  auto& d = f.d;
  const auto& flow_name = f.flow_name;
  auto& report = f.report;
  PipelineConfig flow_config = config_;  // read_kafka arguments may add a cluster of their own
  KafkaFlowSpec spec;
  spec.table = d.name;
  spec.flow = flow_name;
  spec.topic = src.name;
  ARROW_ASSIGN_OR_RAISE(auto cluster, planner_.kafka_cluster_of(src, flow_name));
  spec.cluster = cluster.first;
  flow_config.kafka[spec.cluster] = std::move(cluster.second);
  ARROW_RETURN_NOT_OK(SqlPlanner::apply_kafka_options(src.options, spec));
  spec.partition_columns = d.definition->partitioned_by;
  spec.clustering_columns = planner_.clustering_columns(d.name);
  spec.properties = delta::with_defined_properties(planner_.properties(d));
  spec.comment = d.definition->comment.value_or("");
  spec.output_schema = f.schema;
  // Kafka rows carry their position: topic, partition, offset.
  const KafkaPositions positions(f.commit.ids());
  ARROW_ASSIGN_OR_RAISE(FlowOperatorsSpec ops, operators_spec(f, positions));
  ops.ids = &f.commit.ids();
  // value_format: records are decoded at the source; those that cannot be go to
  // `<table>_dead_letter` with their position, the error and the raw bytes.
  if (src.options.count("value_format")) {
    ARROW_ASSIGN_OR_RAISE(auto value_format, value_format_of(src.options));
    ARROW_ASSIGN_OR_RAISE(ops.decoder, format::make_value_decoder(&value_format, value_fields_read(f.plan, src)));
    ops.value_schema = src.schema;
    const auto dname = d.name + "_dead_letter";
    ARROW_ASSIGN_OR_RAISE(ops.dead_letters,
                          f.commit.open_side_table(config_.table_path(dname), dname, format::dead_letter_schema(),
                                                   fmt::format("Kafka records '{}' could not decode", d.name)));
  }
  ARROW_ASSIGN_OR_RAISE(auto operators, plan_flow_operators(std::move(ops)));
  spec.operators = operators.get();
  spec.commit = &f.commit;  // side tables and state commit before the target
  spec.on_data_loss = [&report, &flow_name](const KafkaDataLoss& loss) {
    report.data_loss.push_back(loss);
    report.data_loss.back().flow = flow_name;
  };
  ARROW_ASSIGN_OR_RAISE(auto r, run_kafka_flow_once(flow_config, spec, options_));
  report.rows_read += r.rows_read;
  report.rows_written += r.rows_written;
  report.version = r.table_version;
  report.backlog = report.backlog.value_or(0) + r.backlog;
  report.kafka_lag.insert(report.kafka_lag.end(), r.kafka_lag.begin(), r.kafka_lag.end());
  if (options_.group_members) report.kafka_consumers_created = report.kafka_consumers_created.value_or(0) + r.consumers_created;
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
