// The SQL files of a pipeline folder: chosen by `libraries` globs (default: every .sql file
// in the folder), read, and with `${name}` replaced by pipeline.yaml `configuration` values.
#pragma once

#include <arrow/result.h>

#include <vector>

#include "sluice/pipeline/pipeline_config.h"
#include "sluice/sql/source.h"

namespace sluice::pipeline {

arrow::Result<std::vector<sql::SourceFile>> load_sql_sources(const PipelineConfig& config);

// Replaces ${name} with configuration values; unknown names are left for the parser to report.
// Inside a string literal the value is escaped for it (quotes and backslashes doubled), so the
// literal reads exactly the value; comments are copied as written.
std::string substitute_variables(const std::string& text,
                                 const std::map<std::string, std::string>& configuration);

}  // namespace sluice::pipeline
