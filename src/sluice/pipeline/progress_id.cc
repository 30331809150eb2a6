// Progress identities (txn appIds), built in one place.
#include "sluice/pipeline/progress_id.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace sluice::pipeline {

namespace {

const std::string& checked(const PipelineId& pipeline) {
  if (pipeline.empty()) {
    // Progress keyed by an empty id would silently restart every source: never write it.
    std::fprintf(stderr, "sluice: internal error: progress id built before the pipeline's storage was opened\n");
    std::abort();
  }
  return pipeline.value();
}

}  // namespace

std::string kafka_progress_id(const PipelineId& pipeline, const std::string& flow, const std::string& topic,
                              KafkaPartition partition) {
  return fmt::format("{}/{}/{}/{}", checked(pipeline), flow, topic, partition.value());
}

std::string delta_progress_id(const PipelineId& pipeline, const std::string& flow,
                              const std::string& upstream_table_id, DeltaReader reader) {
  auto id = fmt::format("{}/{}/{}", checked(pipeline), flow, upstream_table_id);
  if (reader == DeltaReader::kSelfJoinRight) id += "/right";
  return id;
}

std::string kafka_fingerprint_progress_id(const PipelineId& pipeline, const std::string& flow,
                                          const std::string& topic, KafkaPartition partition) {
  return "sluice:last_record:" + kafka_progress_id(pipeline, flow, topic, partition);
}

bool is_flow_progress(const std::string& app_id, const PipelineId& pipeline, const std::string& flow) {
  const auto prefix = fmt::format("{}/{}/", checked(pipeline), flow);
  return app_id.rfind(prefix, 0) == 0;
}

std::optional<PipelineId> pipeline_of_progress(const std::string& app_id) {
  // Pipeline names (and so ids) have no '/'; a sluice progress id has at least three segments.
  // Other sluice txns (`sluice:last_record:...`) are not progress.
  if (app_id.rfind("sluice:", 0) == 0) return std::nullopt;
  const auto first = app_id.find('/');
  if (first == std::string::npos || first == 0) return std::nullopt;
  const auto second = app_id.find('/', first + 1);
  if (second == std::string::npos || second == first + 1 || second + 1 == app_id.size()) return std::nullopt;
  return PipelineId(app_id.substr(0, first));
}

}  // namespace sluice::pipeline
