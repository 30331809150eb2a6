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
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

struct KafkaSinkSpec {
  std::string sink;
  std::string topic;
  std::string cluster_name;  // for errors: a pipeline.yaml cluster or "sink:<name>"
  kafka::KafkaProperties properties;
  std::optional<std::string> key_column;      // key => 'col': the record key (none: no key)
  std::optional<std::string> headers_column;  // headers => 'col': ARRAY<STRUCT<key, value>>
  // value_format => 'json' (one JSON object per row) or 'avro' (Confluent's wire format, the
  // schema registered under <topic>-value, TopicNameStrategy).
  enum class ValueFormat { kJson, kAvro };
  ValueFormat value_format = ValueFormat::kJson;
  std::string registry_url;          // schema_registry_url (avro)
  std::string registry_ca_location;  // schema_registry_ca_location: an https registry's CA file
  std::string registry_auth;         // "user:password" from schema_registry_auth_file (a secret)
  // Rows per Kafka transaction at most (a transaction ends at an upstream version boundary, so
  // one upstream commit may make a larger one).
  int64_t max_rows_per_transaction = 100000;
};

// A Delta sink: a table outside the pipeline's storage (a path or an object-store URI), written
// exactly once with the flow's progress in the table's own txn actions.
struct DeltaSinkSpec {
  std::string sink;
  std::string location;  // as the user wrote it, for messages
  std::shared_ptr<storage::ObjectStore> objects;
  std::string root;  // the table's path in `objects`
};

enum class SinkFormat { kKafka, kDelta };

// The sink's format => 'kafka' | 'delta' (required; any other refused at its line).
arrow::Result<SinkFormat> sink_format(const Sink& sink, const sql::SourceFile& file);

// A Delta sink's options: format => 'delta', path => '<folder or s3://, gs://, az:// URI>'
// (relative paths from the pipeline folder), and storage options as pipeline.yaml's
// storage_options takes them (delta-rs keys, any case); tableName (a catalog table) is refused
// as not supported yet, as is a path inside the pipeline's storage.
arrow::Result<DeltaSinkSpec> delta_sink_spec(const Sink& sink, const sql::SourceFile& file,
                                             const PipelineConfig& config);

// The sink's options: format => 'kafka' (required), topic, cluster, bootstrap_servers, kafka.*
// properties, key, headers, value_format => 'json' | 'avro' (with schema_registry_url, and
// schema_registry_ca_location / schema_registry_auth_file as read_kafka takes them; relative
// paths from the SQL file), max_rows_per_transaction.
arrow::Result<KafkaSinkSpec> kafka_sink_spec(const Sink& sink, const sql::SourceFile& file,
                                             const PipelineConfig& config);

// The columns the sink takes from the flow's rows exist and have a usable type: the key any
// scalar, the headers ARRAY<STRUCT<key STRING, value BINARY|STRING>> (Spark's Kafka headers). `flow_loc` is the flow's, for the error.
arrow::Status check_sink_columns(const KafkaSinkSpec& spec, const arrow::Schema& rows,
                                 const sql::SourceFile& file, sql::Location flow_loc);

}  // namespace sluice::pipeline
