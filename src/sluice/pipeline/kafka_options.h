// read_kafka's named arguments (DESIGN.md's snake_case names; select_plan maps Databricks' and
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

}  // namespace sluice::pipeline
