// Progress identities (txn appIds), built in one place.
#include "sluice/pipeline/progress_id.h"

#include <fmt/format.h>

namespace sluice::pipeline {

std::string kafka_progress_id(const PipelineId& pipeline, const std::string& flow, const std::string& topic,
                              KafkaPartition partition) {
  return fmt::format("{}/{}/{}/{}", pipeline.value(), flow, topic, partition.value());
}

std::string delta_progress_id(const PipelineId& pipeline, const std::string& flow,
                              const std::string& upstream_table_id, DeltaReader reader) {
  auto id = fmt::format("{}/{}/{}", pipeline.value(), flow, upstream_table_id);
  if (reader == DeltaReader::kSelfJoinRight) id += "/right";
  return id;
}

std::string sink_transactional_id(const PipelineId& pipeline, const std::string& flow) {
  return fmt::format("sluice-{}-{}", pipeline.value(), flow);
}

std::string sink_progress_group(const PipelineId& pipeline, const std::string& flow) {
  return fmt::format("sluice-sink-{}-{}", pipeline.value(), flow);
}

std::string kafka_fingerprint_progress_id(const PipelineId& pipeline, const std::string& flow,
                                          const std::string& topic, KafkaPartition partition) {
  return "sluice:last_record:" + kafka_progress_id(pipeline, flow, topic, partition);
}

std::string view_query_progress_id(const PipelineId& pipeline, const std::string& flow) {
  return fmt::format("sluice:view_query:{}/{}", pipeline.value(), flow);
}

std::string state_kept_progress_id(const PipelineId& pipeline, const std::string& flow) {
  return fmt::format("sluice:state_kept:{}/{}", pipeline.value(), flow);
}

bool is_flow_progress(const std::string& app_id, const PipelineId& pipeline, const std::string& flow) {
  const auto prefix = fmt::format("{}/{}/", pipeline.value(), flow);
  return app_id.rfind(prefix, 0) == 0;
}

std::optional<ProgressOwner> owner_of_progress(const std::string& app_id) {
  // Pipeline names (and so ids) have no '/'; a sluice progress id has at least three segments.
  // Other sluice txns (`sluice:last_record:...`) are not progress.
  if (app_id.rfind("sluice:", 0) == 0) return std::nullopt;
  const auto first = app_id.find('/');
  if (first == std::string::npos || first == 0) return std::nullopt;
  const auto second = app_id.find('/', first + 1);
  if (second == std::string::npos || second == first + 1 || second + 1 == app_id.size()) return std::nullopt;
  return ProgressOwner{app_id.substr(0, first), app_id.substr(first + 1, second - first - 1)};
}

}  // namespace sluice::pipeline
