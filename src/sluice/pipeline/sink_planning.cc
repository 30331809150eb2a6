// Planning of CREATE SINK and the flows into it (SqlPlanner::plan_sink): the options of a Kafka
// or Delta sink checked (sink_options.h), each flow's query bound over the streaming table it reads, and what a sink
// flow cannot do yet refused at its file:line:col.
#include <fmt/format.h>

#include "sluice/pipeline/read_kafka_binding.h"
#include "sluice/pipeline/sql_planner.h"

namespace sluice::pipeline {

arrow::Status SqlPlanner::plan_sink(const Sink& sink, const std::set<std::string>& failed) {
  const auto& file = graph_.files[sink.file];
  ARROW_ASSIGN_OR_RAISE(auto format, sink_format(sink, file));
  std::optional<KafkaSinkSpec> kafka;
  std::optional<DeltaSinkSpec> delta;
  if (format == SinkFormat::kKafka) {
    ARROW_ASSIGN_OR_RAISE(kafka, kafka_sink_spec(sink, file, config_));
  } else {
    ARROW_ASSIGN_OR_RAISE(delta, delta_sink_spec(sink, file, config_));
  }
  if (sink.flows.empty()) {
    return arrow::Status::Invalid(sql::format_error(file, sink.loc, fmt::format(
        "sink '{}' has no flow writing to it: add CREATE FLOW <name> AS INSERT INTO {} SELECT ... FROM STREAM(<table>), "
        "or remove the sink", sink.name, sink.name)));
  }
  for (const auto& fname : sink.flows) {
    const auto& flow = graph_.flows.at(fname);
    const auto& flow_file = graph_.files[flow.file];
    bool skip = false;
    for (const auto& in : flow.inputs) skip |= failed.count(in.name) > 0;
    if (skip) continue;  // its input's error is reported already
    ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(*flow.query, flow_file, schema_lookup(), view_lookup(),
                                                            read_kafka_binder()));
    if (plan.aggregates() || plan.joins() || plan.distinct() || plan.unions() || plan.watermark().has_value() ||
        !flow.query->order_by.empty() || flow.query->limit ||
        !plan.source().streaming || plan.source().kind != exec::PlanSource::Kind::kDataset ||
        plan.source().change_feed) {
      return arrow::Status::NotImplemented(sql::format_error(flow_file, flow.loc, fmt::format(
          "flow '{}' into sink '{}': a sink flow selects and filters the rows of one streaming table read as "
          "STREAM(table) (no aggregation, join, DISTINCT, UNION, ORDER BY, LIMIT, WATERMARK or table_changes yet): compute the rows in a streaming "
          "table and send that table's rows to the sink", fname, sink.name)));
    }
    if (kafka) ARROW_RETURN_NOT_OK(check_sink_columns(*kafka, *plan.output_schema(), flow_file, flow.loc));
    flow_plans_.emplace(fname, std::move(plan));
  }
  if (kafka) sink_specs_.emplace(sink.name, std::move(*kafka));
  if (delta) delta_sink_specs_.emplace(sink.name, std::move(*delta));
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
