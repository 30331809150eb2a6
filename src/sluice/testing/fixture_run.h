// Runs one `sluice test` case: the pipeline as `sluice run --once` runs it (the same planner,
// operators and streaming commits), on a temporary storage folder, with its Kafka sources
// reading the case's records (fixture_source.h) and the tables the case gives written before
// each update; then compares the datasets with what the case expects.
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sluice/testing/fixture.h"

namespace sluice::testing {

struct CaseResult {
  bool passed = false;
  std::string failure;             // what differed, for a person (empty when passed)
  std::vector<std::string> notes;  // what the run left out (sinks), per case
  double seconds = 0;
};

// Runs `test_case` against the pipeline in `pipeline_dir`. An error is a fixture the pipeline
// cannot take (a dataset or column it does not have, rows that do not fit a table's schema):
// it names the fixture's file:line. A case whose pipeline fails an update fails (unless it
// expected that error).
arrow::Result<CaseResult> run_case(const std::filesystem::path& pipeline_dir, const TestCase& test_case);

}  // namespace sluice::testing
