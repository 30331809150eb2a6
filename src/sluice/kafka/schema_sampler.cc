// Samples of a topic's record values (schema inference); see schema_sampler.h.
#include "sluice/kafka/schema_sampler.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>

namespace sluice::kafka {

arrow::Result<std::vector<std::string>> sample_values(const std::string& cluster_name,
                                                      const KafkaProperties& properties,
                                                      const std::string& group_id, const std::string& topic,
                                                      int64_t max_records, std::chrono::milliseconds timeout) {
  ARROW_ASSIGN_OR_RAISE(auto consumer, Consumer::make(cluster_name, properties, group_id));
  ARROW_ASSIGN_OR_RAISE(auto partitions, consumer->partitions(topic, timeout));
  std::vector<PartitionStart> starts;
  int64_t available = 0;
  for (auto p : partitions) {
    ARROW_ASSIGN_OR_RAISE(auto marks, consumer->watermarks(topic, p, timeout));
    if (marks.high > marks.low) starts.push_back({topic, p, marks.low});
    available += marks.high.value() - marks.low.value();
  }
  const int64_t wanted = std::min(max_records, available);
  std::vector<std::string> samples;
  if (starts.empty()) return samples;
  ARROW_RETURN_NOT_OK(consumer->assign(starts));
  size_t at_end = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (static_cast<int64_t>(samples.size()) < wanted && at_end < starts.size() &&
         std::chrono::steady_clock::now() < deadline) {
    auto msg = consumer->poll(std::chrono::milliseconds(200));
    if (!msg) continue;
    if (msg->err() == RdKafka::ERR__PARTITION_EOF) {
      ++at_end;
    } else if (msg->err() == RdKafka::ERR_NO_ERROR && msg->payload() != nullptr) {
      samples.emplace_back(static_cast<const char*>(msg->payload()), msg->len());
    }
  }
  return samples;
}

}  // namespace sluice::kafka
