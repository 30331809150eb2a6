// CREATE SINK's options checked offline (no broker) into what a Kafka sink flow needs: topic,
// Kafka client properties (a pipeline.yaml cluster and/or bootstrap_servers / kafka.*, as
// read_kafka takes them), key and header columns, value format. Errors name the option's
// file:line:col and never show a value that may be secret.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <optional>
#include <string>

#include "sluice/kafka/consumer.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/sql/source.h"

namespace sluice::pipeline {

struct KafkaSinkSpec {
  std::string sink;
  std::string topic;
  std::string cluster_name;  // for errors: a pipeline.yaml cluster or "sink:<name>"
  kafka::KafkaProperties properties;
  std::optional<std::string> key_column;      // key => 'col': the record key (none: no key)
  std::optional<std::string> headers_column;  // headers => 'col': ARRAY<STRUCT<key, value>>
  // Rows per Kafka transaction at most (a transaction ends at an upstream version boundary, so
  // one upstream commit may make a larger one).
  int64_t max_rows_per_transaction = 100000;
};

// The sink's options: format => 'kafka' (required; 'delta' and value_format => 'avro' are
// refused as not supported yet), topic, cluster, bootstrap_servers, kafka.* properties, key,
// headers, value_format => 'json', max_rows_per_transaction.
arrow::Result<KafkaSinkSpec> kafka_sink_spec(const Sink& sink, const sql::SourceFile& file,
                                             const PipelineConfig& config);

// The columns the sink takes from the flow's rows exist and have a usable type: the key any
// scalar, the headers ARRAY<STRUCT<key STRING, value BINARY|STRING>> (Spark's Kafka headers). `flow_loc` is the flow's, for the error.
arrow::Status check_sink_columns(const KafkaSinkSpec& spec, const arrow::Schema& rows,
                                 const sql::SourceFile& file, sql::Location flow_loc);

}  // namespace sluice::pipeline
