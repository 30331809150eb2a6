// OPTIMIZE: bin-packing compaction of a Delta table's small files (and files with many rows
// deleted by deletion vectors) into files of the target size, partition by partition,
// optionally Z-ordered; on a clustered table (CLUSTER BY), incremental liquid clustering: the
// files not yet clustered by the clustering columns rewritten along their Hilbert curve, with
// clusteringProvider "liquid". Committed as delta-spark's OPTIMIZE with dataChange=false, so
// streaming and change-feed readers skip it.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"
#include "sluice/storage/object_store.h"

namespace sluice::dml {

struct OptimizeOptions {
  // A condition on partition columns only (Spark's OPTIMIZE ... WHERE); empty: every partition.
  std::string where;
  // Z-order the files of each selected partition by these data columns (all of them rewritten).
  std::vector<std::string> zorder_by;
  // Both size thresholds, in place of the table's delta.targetFileSize (0: the table's).
  int64_t target_file_size = 0;
  // Run once the new files are written, right before the commit (tests commit a concurrent
  // change there); an error deletes the new files and commits nothing.
  std::function<arrow::Status()> before_commit;

  // Auto compaction (pipeline/auto_compaction.h) sets the rest.
  // The snapshot to compact (null: the latest is loaded).
  std::shared_ptr<const delta::Snapshot> snapshot;
  // Files below this size are compacted (0: the target size, as OPTIMIZE does).
  int64_t min_file_size = 0;
  // Compacts only the small files of partitions holding at least this many of them, and with
  // zorder_by sorts each bin of them along the Z-order curve instead of rewriting the whole
  // partition (0: OPTIMIZE's selection).
  int64_t min_small_files = 0;
  // Partitions with the most small files first, bins are taken until their input reaches this
  // many bytes (0: no bound); what one compaction reads, and so its time, stays bounded.
  int64_t max_input_bytes = 0;
  // commitInfo.operationParameters.auto, as delta-spark's auto compaction records it.
  bool automatic = false;
  // Asked between bins and between the batches a bin reads and writes: true abandons the
  // rewrite (its files are deleted, nothing committed).
  std::function<bool()> cancelled;
};

// Spark's spark.databricks.delta.optimize.maxFileSize and minFileSize (both 1 GiB).
inline constexpr int64_t kOptimizeDefaultFileSize = 1ll << 30;
// spark.databricks.delta.optimize.maxDeletedRowsRatio: a file with more of its rows deleted
// (by its deletion vector) is rewritten whatever its size.
inline constexpr double kOptimizeMaxDeletedRowsRatio = 0.05;

struct OptimizeFileSizes {
  int64_t min_file_size = kOptimizeDefaultFileSize;  // smaller files are compacted
  int64_t max_file_size = kOptimizeDefaultFileSize;  // what a bin / output file holds at most
};

// delta.targetFileSize of the table (bytes, or with a b/kb/mb/gb suffix) as both thresholds,
// else Spark's defaults; an unreadable value is an error naming the property.
arrow::Result<OptimizeFileSizes> optimize_file_sizes(const delta::Metadata& metadata,
                                                     const std::string& table);

struct OptimizeOutcome {
  bool committed = false;  // false when no bin needed rewriting (nothing is committed then)
  DeltaVersion version{0};  // the OPTIMIZE commit, else the version read
  int attempts = 1;
  // commitInfo.operationMetrics as delta-spark writes them (values as strings).
  nlohmann::json metrics = nlohmann::json::object();
  int64_t partitions_optimized = 0;
  int64_t batches = 0;           // bins rewritten
  int64_t files_considered = 0;  // live files the WHERE selected
  int64_t files_skipped = 0;     // of those, left as they were
  int64_t rows = 0;              // rows rewritten
  std::vector<std::string> clustered_by;  // a clustered table's columns (dotted), else empty
};

// The new files of an OPTIMIZE, written and not committed yet (rewrite_for_optimize).
struct OptimizeRewrite {
  std::shared_ptr<delta::LogStore> store;
  std::shared_ptr<const delta::Snapshot> snapshot;  // what the rewrite read
  std::vector<delta::Add> added;
  std::vector<delta::Add> removed;
  nlohmann::json operation_parameters = nlohmann::json::object();
  OptimizeOutcome outcome;  // committed = false
  bool empty() const { return added.empty() && removed.empty(); }
};

// The first half of optimize_table: selects and rewrites the bins; nothing is committed.
arrow::Result<OptimizeRewrite> rewrite_for_optimize(std::shared_ptr<delta::LogStore> store,
                                                    const OptimizeOptions& options);
// The second half: commits the rewrite (dataChange=false, on top of appends committed since it
// read the table). A conflict deletes its files; so does discard_rewrite.
arrow::Result<OptimizeOutcome> commit_optimize(OptimizeRewrite rewrite);
void discard_rewrite(const OptimizeRewrite& rewrite);

// Compacts (and with zorder_by, Z-orders) the table at `store`. Appends committed meanwhile
// do not disturb it; a concurrent commit that removed one of its input files makes it fail with
// delta::is_commit_conflict() and its new files deleted (nothing committed: run it again).
arrow::Result<OptimizeOutcome> optimize_table(std::shared_ptr<delta::LogStore> store,
                                              const OptimizeOptions& options);

// The store a sorted bin's size sample is written to (rows per file measured on the output):
// its output streams count the bytes written and keep none. Declared for its test.
std::shared_ptr<storage::ObjectStore> sizing_store();

}  // namespace sluice::dml
