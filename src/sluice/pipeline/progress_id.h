// Progress identities: the appIds of the Delta `txn` actions that record how far each flow has
// read its sources. Built here and nowhere else, from the pipeline's stable id (kept in its
// storage, see pipeline_identity.h), never from its display name, so a rename keeps progress.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "sluice/common/strong_types.h"

namespace sluice::pipeline {

struct PipelineIdentityRecord;  // pipeline_identity.cc: the only maker of PipelineIds

// The stable id of a pipeline's storage (<storage>/system/pipeline.json). Only the identity
// record makes one (read from pipeline.json, or adopted from the progress in the tables): no
// string, and so no display name (`PipelineConfig::name`), converts into it, and the progress
// id builders below take nothing else. Default-constructed: empty, "storage not opened yet";
// the runners refuse a config whose id is empty.
class PipelineId {
 public:
  PipelineId() = default;
  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }
  auto operator<=>(const PipelineId&) const = default;

 private:
  friend struct PipelineIdentityRecord;
  explicit PipelineId(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

// Which reader of an upstream Delta table the progress belongs to: a self-join reads one
// table twice and keeps two positions in it.
enum class DeltaReader { kOnly, kSelfJoinRight };

// `<pipeline id>/<flow>/<topic>/<partition>`, version = the next offset to read.
std::string kafka_progress_id(const PipelineId& pipeline, const std::string& flow, const std::string& topic,
                              KafkaPartition partition);

// `<pipeline id>/<flow>/<upstream table id>` (`.../right` for a self-join's right side),
// version = the upstream version consumed.
std::string delta_progress_id(const PipelineId& pipeline, const std::string& flow,
                              const std::string& upstream_table_id, DeltaReader reader = DeltaReader::kOnly);

// `sluice:last_record:<kafka progress id>`: the fingerprint of the last record a flow read
// from a partition (kafka/record_fingerprint.h), committed with its progress so a re-created
// topic is recognised. Outside the `<pipeline>/<flow>/` prefix of progress ids (ids have no ':').
std::string kafka_fingerprint_progress_id(const PipelineId& pipeline, const std::string& flow,
                                          const std::string& topic, KafkaPartition partition);

// `sluice:view_query:<pipeline id>/<flow>`: the fingerprint of what a materialized view computes
// (its query text, schema and properties), committed with its inputs' versions so an update
// whose inputs and query did not change commits nothing. A marker, not progress.
std::string view_query_progress_id(const PipelineId& pipeline, const std::string& flow);

// `sluice:state_kept:<pipeline id>/<flow>`: committed (version 1) with the first commit of a flow
// whose state snapshots began after the table had progress (APPLY CHANGES SCD type 2, whose
// tombstones came later): the flow's state must exist from that commit on. A marker, not progress.
std::string state_kept_progress_id(const PipelineId& pipeline, const std::string& flow);

// A Kafka sink flow's transactional.id, `sluice-<pipeline id>-<flow>`: one per flow, so a
// restarted run fences the one before it and aborts its open transaction; and the consumer
// group whose committed offset (written in the same transactions) is the flow's progress.
std::string sink_transactional_id(const PipelineId& pipeline, const std::string& flow);
std::string sink_progress_group(const PipelineId& pipeline, const std::string& flow);

// Whether `app_id` is progress of `flow` of this pipeline (any source).
bool is_flow_progress(const std::string& app_id, const PipelineId& pipeline, const std::string& flow);

// A progress id's pipeline and flow segments (its first two); none for appIds that are not of
// this shape (written by other tools).
struct ProgressOwner {
  std::string pipeline;
  std::string flow;
};
std::optional<ProgressOwner> owner_of_progress(const std::string& app_id);

}  // namespace sluice::pipeline
