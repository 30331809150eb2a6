// Samples of a topic's record values, from which read_kafka(value_format => 'json') without
// value_schema infers the schema to decode with. Contacts the broker: called by a run (or
// `validate --infer-schemas`), never by planning.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "sluice/kafka/consumer.h"
#include "sluice/kafka/record_source.h"

namespace sluice::kafka {

// Up to `max_records` values (null values skipped) from the start of `topic`'s partitions,
// read with a consumer of `properties` (`cluster_name` names the cluster in errors). Fewer when
// the topic holds fewer or `timeout` passes first (also the metadata timeout); none for an
// empty topic. An unreachable cluster or an unknown topic is an error naming them.
arrow::Result<std::vector<std::string>> sample_values(const std::string& cluster_name,
                                                      const KafkaProperties& properties,
                                                      const std::string& group_id, const std::string& topic,
                                                      int64_t max_records, std::chrono::milliseconds timeout);

// The same, read through `source` (a librdkafka consumer, or `sluice test`'s fixture records,
// which then never reach a broker).
arrow::Result<std::vector<std::string>> sample_values(RecordSource& source, const std::string& topic,
                                                      int64_t max_records, std::chrono::milliseconds timeout);

}  // namespace sluice::kafka
