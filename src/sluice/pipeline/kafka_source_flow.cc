// Streaming-table flows that read Kafka (read_kafka): the flow's batches, decoded at the
// source (dead letters for what cannot be), through run_kafka_flow_once (kafka_ingest_flow.h).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/exec/select_plan.h"
#include "sluice/format/kafka_values.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/kafka_ingest_flow.h"
#include "sluice/pipeline/read_kafka_binding.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

arrow::Status FlowRunner::run_kafka_source(StreamingFlow& f, const exec::PlanSource& src) {
  auto& d = f.d;
  const auto& flow_name = f.flow_name;
  auto& report = f.report;
  const auto& schema = f.schema;
  auto& quarantine = f.quarantine;
  auto& windowed = f.windowed;
  auto& window_consume = f.window_consume;
  auto to_table_rows = [&](const arrow::RecordBatch& input, const Positions& quarantine_rows,
                           const SourceOf& source_of) { return table_rows(f, input, quarantine_rows, source_of); };
  PipelineConfig flow_config = config_;  // read_kafka arguments may add a cluster of their own
  KafkaFlowSpec spec;
  spec.table = d.name;
  spec.flow = flow_name;
  spec.topic = src.name;
  ARROW_ASSIGN_OR_RAISE(auto cluster, planner_.kafka_cluster_of(src, flow_name));
  spec.cluster = cluster.first;
  flow_config.kafka[spec.cluster] = std::move(cluster.second);
  ARROW_RETURN_NOT_OK(SqlPlanner::apply_kafka_options(src.options, spec));
  if (windowed) {
    window_consume = [&](const arrow::RecordBatch& input, const arrow::RecordBatch& rows, const arrow::Array& input_rows) {
      return windowed->consume_kafka(input, rows, input_rows);
    };
  }
  spec.partition_columns = d.definition->partitioned_by;
  spec.properties = planner_.properties(d);
  spec.comment = d.definition->comment.value_or("");
  spec.output_schema = schema;
  // Kafka rows carry their position: topic, partition, offset.
  const ProgressIds& ids = f.commit.ids();
  auto kafka_positions = [&](const arrow::RecordBatch& input) -> Positions {
    return [&, input_ptr = &input](const Expectations::Dropped& dropped, const std::shared_ptr<arrow::Array>& rows)
               -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
      ARROW_ASSIGN_OR_RAISE(auto topic, cp::Take(input_ptr->GetColumnByName("topic"), rows));
      ARROW_ASSIGN_OR_RAISE(auto partition, cp::Take(input_ptr->GetColumnByName("partition"), rows));
      ARROW_ASSIGN_OR_RAISE(auto offset, cp::Take(input_ptr->GetColumnByName("offset"), rows));
      auto t = std::static_pointer_cast<arrow::StringArray>(topic.make_array());
      auto p = std::static_pointer_cast<arrow::Int32Array>(partition.make_array());
      auto o = std::static_pointer_cast<arrow::Int64Array>(offset.make_array());
      return quarantine_batch(*quarantine->schema(), dropped, t, p, o, [&](int64_t i) {
        return o->Value(i) < quarantine->committed(ids.kafka(t->GetString(i), KafkaPartition(p->Value(i))));
      });
    };
  };
  // value_format: records are decoded at the source; those that cannot be go to
  // `<table>_dead_letter` with their position, the error and the raw bytes.
  std::unique_ptr<format::PayloadDecoder> decoder;
  SideTable* dead_letters = nullptr;
  if (src.options.count("value_format")) {
    ARROW_ASSIGN_OR_RAISE(auto value_format, value_format_of(src.options));
    ARROW_ASSIGN_OR_RAISE(decoder, format::make_value_decoder(&value_format));
    const auto dname = d.name + "_dead_letter";
    ARROW_ASSIGN_OR_RAISE(dead_letters, f.commit.open_side_table(config_.table_path(dname), dname, format::dead_letter_schema(),
                                                                 fmt::format("Kafka records '{}' could not decode", d.name)));
  }
  auto kafka_source_of = [](const arrow::RecordBatch& input) -> SourceOf {
    return [&input](int64_t i) {
      const auto& topic = static_cast<const arrow::StringArray&>(*input.GetColumnByName("topic"));
      const auto& partition = static_cast<const arrow::Int32Array&>(*input.GetColumnByName("partition"));
      const auto& offset = static_cast<const arrow::Int64Array&>(*input.GetColumnByName("offset"));
      return fmt::format("Kafka topic '{}' partition {} offset {}", topic.GetString(i), partition.Value(i),
                         offset.Value(i));
    };
  };
  spec.transform = [&](const arrow::RecordBatch& input) -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    if (!decoder) return to_table_rows(input, kafka_positions(input), kafka_source_of(input));
    ARROW_ASSIGN_OR_RAISE(auto decoded, format::decode_values(input, *decoder, src.schema));
    if (decoded.dead_letters) {
      const auto& dl = *decoded.dead_letters;
      const auto& topic = static_cast<const arrow::StringArray&>(*dl.GetColumnByName("topic"));
      const auto& partition = static_cast<const arrow::Int32Array&>(*dl.GetColumnByName("partition"));
      const auto& offset = static_cast<const arrow::Int64Array&>(*dl.GetColumnByName("offset"));
      arrow::BooleanBuilder fresh;  // not already in the table from before a crash
      for (int64_t i = 0; i < dl.num_rows(); ++i) {
        auto app = ids.kafka(topic.GetString(i), KafkaPartition(partition.Value(i)));
        ARROW_RETURN_NOT_OK(fresh.Append(offset.Value(i) >= dead_letters->committed(app)));
      }
      ARROW_ASSIGN_OR_RAISE(auto mask, fresh.Finish());
      ARROW_ASSIGN_OR_RAISE(auto rows, cp::Filter(decoded.dead_letters, mask));
      report.rows_dead_lettered += rows.record_batch()->num_rows();
      ARROW_RETURN_NOT_OK(dead_letters->write(*rows.record_batch()));
    }
    return to_table_rows(*decoded.rows, kafka_positions(*decoded.rows), kafka_source_of(*decoded.rows));
  };
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
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
