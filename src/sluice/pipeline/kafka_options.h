// read_kafka's named arguments (DESIGN.md's snake_case names; read_kafka_binding maps Databricks' and
// Spark's camelCase spellings onto them) -> KafkaFlowSpec.
#pragma once

#include <arrow/status.h>

#include <map>
#include <string>

#include "sluice/pipeline/kafka_ingest_flow.h"

namespace sluice::pipeline {

// Applies topic / topic_pattern, starting_offsets, starting_timestamp,
// starting_offsets_by_timestamp, ending_offsets, ending_timestamp,
// ending_offsets_by_timestamp, max_offsets_per_trigger, fail_on_data_loss, include_headers,
// group_mode, group_id, group_id_prefix. Errors name the argument and show a valid value.
arrow::Status apply_read_kafka_options(const std::map<std::string, std::string>& options,
                                       KafkaFlowSpec& spec);

// Whether a read_kafka with these (normalised, read_kafka_options) options reads as a
// consumer-group member (group_mode => 'subscribe', any spelling), so that several processes
// split its partitions: the one test of it, for the run lock and the continuous runner.
// Options that do not apply (the run reports them) count as not.
bool reads_kafka_as_group_member(const std::map<std::string, std::string>& options);

}  // namespace sluice::pipeline
