// The pipeline's identity, kept in its storage (<storage>/system/pipeline.json): the stable id
// its progress (txn appIds, progress_id.h) is keyed by, the display name it last ran under and
// the folder it last ran from. The id outlives renames of `name:` and moves of the folder.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <set>

#include "sluice/pipeline/graph.h"
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

// What a pipeline keeps in its storage: its tables (SQL datasets stored as tables and the
// `bronze:` list) and the flows whose progress they record. Legacy adoption reads only these
// tables (and their _quarantine, _dead_letter and _late side tables), and only these flows'
// progress; two folders on one storage are the same pipeline when name or tables agree.
struct PipelineLayout {
  std::set<std::string> tables;
  std::set<std::string> flows;
};
PipelineLayout pipeline_layout(const PipelineConfig& config, const Graph* graph);

// Reads <storage>/system/pipeline.json, or creates it atomically on the first run (two
// processes starting together agree on one). Storage that sluice wrote before the file existed
// keeps its progress: the id becomes the pipeline name this pipeline's tables recorded its
// flows' txn appIds under (tables that cannot be read are skipped with a warning). A new name
// or folder is recorded (and returned, for the event log). A second folder whose pipeline.yaml
// points at this storage too is the same pipeline (a release directory, a copy for another
// scale-out worker: noted on stderr) when its name or its tables are this one's; refused when
// both differ (two pipelines would mix their tables). Refused too: progress of several names in
// this pipeline's tables with no record of which one this pipeline continues.
arrow::Result<IdentityOpening> open_pipeline_identity(const PipelineConfig& config, const PipelineLayout& layout);

// open_pipeline_identity(), then config.id set from it and a rename or move written to the
// event log (and stderr).
arrow::Status open_pipeline_storage(PipelineConfig& config, const PipelineLayout& layout);

}  // namespace sluice::pipeline
