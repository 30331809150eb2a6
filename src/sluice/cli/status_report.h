// What `sluice status --format json` prints, built for the status command and the server's
// /api/datasets and /metrics (serve_command.cc), so both say the same.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::cli {

constexpr int kStatusHealthy = 0;

struct StatusResult {
  nlohmann::json status;   // as `sluice status --format json` prints it
  nlohmann::json catalog;  // as `sluice catalog --format json` prints it (the status is built from it)
  int exit_code = kStatusHealthy;  // 0 healthy, 1 event log unreadable, 2 a flow's latest state is FAILED
};

// Whether temporary tables (sql/temporary_table.h) get rows: `sluice status` omits them unless
// --all (a failed one is always shown); the server shows them (its graph needs every node).
enum class TemporaryTables { kOmit, kShow };

// Problems that leave the status partial go to `warnings`. `events`: the event log already read
// (its error, or nullopt: none), so a caller holding it does not read it again; null: read here.
arrow::Result<StatusResult> build_status(const pipeline::PipelineConfig& config, const pipeline::Graph& graph,
                                         std::vector<std::string>& warnings,
                                         const arrow::Result<pipeline::SharedEvents>* events = nullptr,
                                         TemporaryTables temporary = TemporaryTables::kShow);

}  // namespace sluice::cli
