// `sluice forget`: erasure of the rows a predicate matches (GDPR) from every table of a pipeline
// that carries the predicate's columns, bronze's raw Kafka value decoded as the pipeline decodes
// it, then the removal of every file that could still hold them (older commits and checkpoints,
// unreferenced data, change data and deletion-vector files) and a redacted audit event.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {

struct ForgetOptions {
  std::string where;           // the predicate, SQL over bare column names
  bool allow_partial = false;  // erase what can be matched even when a table cannot be
  std::string program = "sluice";  // for the run lock's holder record
};

// How a table's rows are matched.
enum class ForgetMatch {
  kColumns,       // the table has the predicate's columns
  kDecodedValue,  // a raw Kafka `value`, decoded with from_json as the pipeline does
  kNotCarried,    // no column holds or derives from the predicate's columns
  kUnmatched,     // a column derives from them but the predicate cannot be evaluated on it
};

struct ForgetTableReport {
  std::string table;
  ForgetMatch match = ForgetMatch::kNotCarried;
  std::string how;  // what was matched, or why not (never a literal of the predicate)
  std::string left_behind;  // what may still hold the value (kept only with allow_partial)
  int64_t rows_erased = 0;
  int64_t version_before = -1;
  std::optional<int64_t> erase_version;  // the erasure commit (none: not carried / unmatched)
  int64_t version_after = -1;            // the version the fresh checkpoint is at
  int64_t files_deleted = 0;             // data, change data and deletion-vector files
  int64_t log_files_deleted = 0;         // commits, checkpoints, checksums older than the checkpoint
};

struct ForgetReport {
  std::string predicate;  // redacted: every literal shown as '***'
  int literals_redacted = 0;
  std::vector<ForgetTableReport> tables;
  int64_t event_log_rows_scrubbed = 0;
  std::string audit_event_id;  // the update_id of its audit events
  std::vector<std::string> warnings;
};

// Runs forget on the pipeline at `config` (graph: its SQL datasets, for lineage and order;
// null for a pipeline without SQL). Takes the pipeline's run lock (refused while a run is
// active), refuses while a downstream reader has not read everything its upstream committed,
// and refuses a table that carries the columns but cannot be matched unless allow_partial.
// Re-running the same forget after an interruption finishes it. Local storage or an object
// store (s3://, abfss://, gs://): the same steps through the storage's ObjectStore.
arrow::Result<ForgetReport> forget(const PipelineConfig& config, const Graph* graph, const ForgetOptions& options);

const char* forget_match_name(ForgetMatch match);

// A forget predicate as forget records it: the columns it reads, its text with every literal
// shown as '***', how many literals it had. Errors never quote a literal.
struct ForgetPredicate {
  std::set<std::string> columns;
  std::string redacted;
  int literals = 0;
};
arrow::Result<ForgetPredicate> describe_forget_predicate(const std::string& where);

}  // namespace sluice::pipeline
