// The SQL files of a pipeline folder: chosen by `libraries` globs (default: every .sql file
// in the folder, and every .py file there that imports `dlt` or `pyspark.pipelines`), read,
// and with `${name}` replaced by pipeline.yaml `configuration` values. The .py files are run by
// the Python definer (`python3 -m sluice._define`, a subprocess) and become the SQL they
// generate, each statement registered with the Python line that made it (generated_source.h).
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <string>
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

// True when a .py file imports the pipeline API (`import dlt`, `from dlt import ...`,
// `from pyspark import pipelines`, `import pyspark.pipelines`): the default `libraries` runs
// only such files, never a helper script that happens to sit in the folder.
bool imports_pipeline_api(const std::string& python_text);

// The folder holding the Python package `sluice` (with sluice/_define/): $SLUICE_PYTHONPATH,
// else <exe dir>/../share/sluice/python, <exe dir>/../python, <exe dir>/../.. (first that holds it).
arrow::Result<std::filesystem::path> python_package_dir();

// What a run of the definer left: its exit (code, or the signal that ended it), stdout, stderr.
struct DefinerExit {
  int code = 0;
  int signal = 0;  // non-zero: ended by this signal
  std::string out;
  std::string err;
};

// The generated SQL files, one per .py file of `names` (in that order), from a definer's
// exit; a Python exception becomes an error naming `names[i]:line`. Nothing of `secrets` is
// ever shown (a message quoting a configuration value is redacted).
arrow::Result<std::vector<sql::SourceFile>> generated_sql_files(const std::vector<std::string>& names,
                                                                 const DefinerExit& exit,
                                                                 const std::vector<std::string>& secrets);

// Runs the definer over `paths` (absolute) with the pipeline's configuration; names are the
// files as errors show them.
arrow::Result<std::vector<sql::SourceFile>> define_python_sources(const PipelineConfig& config,
                                                                   const std::vector<std::filesystem::path>& paths,
                                                                   const std::vector<std::string>& names);

}  // namespace sluice::pipeline
