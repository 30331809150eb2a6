// The pipeline's identity, kept in its storage (<storage>/system/pipeline.json): the stable id
// its progress (txn appIds, progress_id.h) is keyed by, the display name it last ran under and
// the folder it last ran from. The id outlives renames of `name:` and moves of the folder.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/progress_id.h"

namespace sluice::pipeline {

struct PipelineIdentity {
  PipelineId id;
  std::string name;              // the display name of the last run
  std::filesystem::path folder;  // the pipeline folder of the last run
  int64_t created_ms = 0;
};

// What opening the storage found, besides the id.
struct IdentityOpening {
  PipelineIdentity identity;
  bool created = false;                     // first run on this storage (or its record was missing)
  std::optional<std::string> renamed_from;  // `name:` changed since the last run
  std::optional<std::filesystem::path> moved_from;  // the folder moved since the last run
};

std::filesystem::path identity_path(const PipelineConfig& config);

// Reads <storage>/system/pipeline.json, or creates it atomically on the first run (two
// processes starting together agree on one). Storage that sluice wrote before the file existed
// keeps its progress: the id becomes the pipeline name its tables' txn appIds were recorded
// under. A new name or folder is recorded (and returned, for the event log). Refused: another
// pipeline folder whose pipeline.yaml still points at this storage (two pipelines would mix
// their tables), and progress of several pipelines with no record of which one is this.
arrow::Result<IdentityOpening> open_pipeline_identity(const PipelineConfig& config);

// open_pipeline_identity(), then config.id set from it and a rename or move written to the
// event log (and stderr).
arrow::Status open_pipeline_storage(PipelineConfig& config);

}  // namespace sluice::pipeline
