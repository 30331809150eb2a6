// `sluice table optimize`: compaction and Z-order of a Delta table (dml/optimize.h).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "sluice/cli/number_option.h"
#include "sluice/cli/table_commands.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_store.h"
#include "sluice/dml/optimize.h"
#include "sluice/pipeline/maintenance_lock.h"

namespace sluice::cli {

namespace {

struct OptimizeArgs {
  std::string path;
  std::string where;
  std::vector<std::string> zorder_by;
  int64_t target_file_size = 0;
  std::string format = "text";
};

arrow::Status run_optimize(const OptimizeArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto store, delta::LogStore::open(args.path));
  dml::OptimizeOptions options;
  options.where = args.where;
  options.zorder_by = args.zorder_by;
  options.target_file_size = args.target_file_size;
  // Held through the commit and the deletion of its files on a conflict: forget waits for none.
  ARROW_ASSIGN_OR_RAISE(auto lock, pipeline::MaintenanceLock::acquire(*store, args.path,
                                                                      pipeline::MaintenanceLockMode::kShared,
                                                                      "table optimize"));
  ARROW_ASSIGN_OR_RAISE(auto r, dml::optimize_table(store, options));
  const auto metric = [&](const char* key) { return r.metrics.value(key, std::string("0")); };
  if (args.format == "json") {
    // Spark's OPTIMIZE result (path, metrics), plus the version it committed.
    nlohmann::json out = {{"path", args.path},
                          {"committed", r.committed},
                          {"version", r.version.value()},
                          {"attempts", r.attempts},
                          {"numFilesAdded", parse_int64(metric("numAddedFiles"), "numAddedFiles").ValueOr(0)},
                          {"numFilesRemoved", parse_int64(metric("numRemovedFiles"), "numRemovedFiles").ValueOr(0)},
                          {"numRowsRewritten", r.rows},
                          {"partitionsOptimized", r.partitions_optimized},
                          {"numBatches", r.batches},
                          {"totalConsideredFiles", r.files_considered},
                          {"totalFilesSkipped", r.files_skipped},
                          {"zOrderBy", args.zorder_by},
                          {"clusterBy", r.clustered_by},
                          {"operationMetrics", r.metrics}};
    std::cout << out.dump() << "\n";
    return arrow::Status::OK();
  }
  if (!r.committed) {
    std::cout << fmt::format("{}: nothing to optimize ({} files considered, none to compact); "
                             "version {} unchanged\n",
                             args.path, r.files_considered, r.version.value());
    return arrow::Status::OK();
  }
  std::cout << fmt::format("{}: {} files ({} bytes, {} rows) rewritten into {} files ({} bytes) "
                           "in {} partitions{}; committed OPTIMIZE as version {}\n",
                           args.path, metric("numRemovedFiles"), metric("numRemovedBytes"), r.rows,
                           metric("numAddedFiles"), metric("numAddedBytes"), r.partitions_optimized,
                           !r.clustered_by.empty()
                               ? fmt::format(", clustered by {} (Hilbert curve)", fmt::join(r.clustered_by, ", "))
                           : args.zorder_by.empty()
                               ? ""
                               : fmt::format(", Z-ordered by {}", fmt::join(args.zorder_by, ", ")),
                           r.version.value());
  return arrow::Status::OK();
}

}  // namespace

void add_optimize_command(CLI::App& table, int* exit_code) {
  static OptimizeArgs args;
  auto* o = table.add_subcommand(
      "optimize", "Compact small files (bin-packing to delta.targetFileSize, else 1 GiB), "
                  "optionally Z-ordered; on a clustered table (CLUSTER BY), cluster the files not "
                  "clustered yet along a Hilbert curve; committed as OPTIMIZE with dataChange=false");
  o->add_option("path", args.path, "Table folder, s3://bucket/prefix, gs://... or az://...")->required();
  o->add_option("--where", args.where,
                "Only the partitions matching this condition on partition columns, e.g. \"day = '2024-01-01'\"");
  o->add_option("--zorder-by", args.zorder_by, "Z-order each selected partition by these data columns")
      ->delimiter(',');
  o->add_option("--target-file-size", args.target_file_size,
                "Bytes per output file, and the size below which a file is compacted (default: the "
                "table's delta.targetFileSize, else 1 GiB)")
      ->transform(whole_number(1));
  o->add_option("--format", args.format, "text or json")->check(CLI::IsMember({"text", "json"}));
  o->callback([exit_code] {
    auto status = run_optimize(args);
    if (!status.ok()) std::cerr << "sluice: error: " << status.message() << "\n";
    *exit_code = status.ok() ? 0 : 1;
  });
}

}  // namespace sluice::cli
