// Pipeline update: source checks, then the flows.
#include "sluice/pipeline/runner.h"
#include "sluice/pipeline/run_progress.h"

#include "sluice/common/status.h"
#include "sluice/kafka/consumer.h"

namespace sluice::pipeline {

arrow::Status check_sources(const PipelineConfig& config, const IngestOptions& options) {
  std::map<std::string, std::unique_ptr<kafka::Consumer>> consumers;
  for (const auto& t : config.bronze) {
    auto& consumer = consumers[t.cluster];
    if (!consumer) {
      ARROW_ASSIGN_OR_RAISE(consumer, kafka::Consumer::make(t.cluster, config.kafka.at(t.cluster),
                                                            "sluice-" + config.name));
    }
    auto partitions = consumer->partitions(t.topic, options.metadata_timeout);
    if (!partitions.ok()) {
      return with_context(partitions.status(),
                          fmt::format("pipeline '{}', table '{}'", config.name, t.table));
    }
  }
  return arrow::Status::OK();
}

arrow::Result<IngestReport> run_kafka_ingest_once(const PipelineConfig& config,
                                                  const BronzeTableConfig& table,
                                                  const IngestOptions& options) {
  KafkaFlowSpec spec;
  spec.table = table.table;
  spec.flow = table.table;
  spec.topic = table.topic;
  spec.cluster = table.cluster;
  spec.starting_offsets = table.starting_offsets;
  spec.comment = table.comment;
  return run_kafka_flow_once(config, spec, options);
}

arrow::Result<std::vector<IngestReport>> run_pipeline_once(const PipelineConfig& config,
                                                           const IngestOptions& options) {
  ARROW_RETURN_NOT_OK(check_sources(config, options));
  std::vector<IngestReport> reports;
  if (options.progress) {
    for (const auto& t : config.bronze) options.progress->waiting(t.table);
  }
  for (const auto& t : config.bronze) {
    if (options.progress) options.progress->started(t.table);
    auto report = run_kafka_ingest_once(config, t, options);
    if (options.progress) options.progress->finished(t.table, report.ok(), report.ok() ? report->rows_read : 0);
    ARROW_RETURN_NOT_OK(report.status());
    reports.push_back(std::move(*report));
  }
  return reports;
}

}  // namespace sluice::pipeline
