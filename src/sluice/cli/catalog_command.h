// The catalog of a pipeline (`sluice catalog`), shared with `sluice status`: every dataset with
// its kind, inputs, columns and, for stored tables, rows, size, files, last update, freshness.
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

// The catalog as `sluice catalog --format json` prints it; problems that leave it partial (an
// unplannable query, an unreadable event log) go to `warnings`.
// `events`: the event log already read (its error, or nullopt: none); null: read here.
arrow::Result<nlohmann::json> build_catalog(
    const pipeline::PipelineConfig& config, const pipeline::Graph& graph, std::vector<std::string>& warnings,
    const arrow::Result<pipeline::SharedEvents>* events = nullptr);

}  // namespace sluice::cli
