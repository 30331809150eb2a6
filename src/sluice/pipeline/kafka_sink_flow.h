// Runs the flows into Kafka sinks (CREATE SINK ... OPTIONS (format => 'kafka')): each flow reads
// the streaming table it streams from, from the upstream version its progress names, and
// produces its rows (JSON or Avro values, optional key and headers) in Kafka transactions; each
// transaction also commits the flow's progress (the upstream version) as a consumer group's
// offset, so records and progress land together (docs/decisions.md "Kafka sinks").
#pragma once

#include <arrow/status.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sluice/kafka/transactional_producer.h"
#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/sink_options.h"
#include "sluice/pipeline/sql_planner.h"

namespace sluice::pipeline {

// Thread-safe: the sinks of an update run on several threads (never one sink twice at once).
class KafkaSinks {
 public:
  explicit KafkaSinks(const SqlPlanner& planner) : planner_(planner), config_(planner.config()) {}

  // Every flow into `sink`, one after the other; `report` counts rows read and records produced,
  // and its version is the upstream version the last flow's progress reached.
  arrow::Status run(const Sink& sink, DatasetReport& report);

 private:
  arrow::Status run_flow(const Sink& sink, const KafkaSinkSpec& spec, const std::string& flow, DatasetReport& report);

  const SqlPlanner& planner_;
  const PipelineConfig& config_;
  // A flow's producer and the progress its last transaction committed (continuous runs need
  // not ask the cluster for it again while the producer lives).
  struct FlowState {
    std::unique_ptr<kafka::TransactionalOutput> producer;  // a cluster's, or a test's capture
    std::optional<kafka::CommittedProgress> committed;
    int32_t schema_id = -1;  // value_format => 'avro': the value schema's id in the registry
  };
  // The flow's state (its producer registered with the cluster), made on first use and again
  // after an error.
  arrow::Result<FlowState*> state(const KafkaSinkSpec& spec, const std::string& flow);

  std::mutex mutex_;  // guards flows_ (the map; one flow's state is used by one thread)
  std::map<std::string, FlowState> flows_;  // by flow
};

}  // namespace sluice::pipeline
