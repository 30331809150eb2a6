// The DAG scheduler of an update: which stored dataset runs when, on which thread, and what a
// failure does to the others; triggered (every dataset once, in dependency order) or
// continuous (every dataset in its own loop). It knows datasets only by name and dependency:
// running one is the DatasetRunner's business, so the scheduler is tested with fake datasets.
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "sluice/pipeline/dataset_report.h"

namespace sluice::pipeline {

// A stored dataset as the scheduler sees it.
struct ScheduledDataset {
  std::string name;
  std::set<std::string> upstream;  // the stored datasets it reads (through views)
  // Continuous: a dataset reading Kafka runs again at once while records keep coming.
  bool reads_kafka = false;
  // Continuous scale-out: whether every process runs it, or only the leader
  // (SqlPlanner::runs_in_every_process).
  bool runs_in_every_process = false;
  // Triggered: starts as soon as every stored dataset it reads has started, not finished (it
  // takes their rows in process while they run: commit_channel.h); its run ends after theirs.
  bool starts_with_upstream = false;
};

// Runs the datasets the scheduler starts. run() is called from several threads at once, never
// twice at once for one dataset; the other calls come from any one thread at a time.
class DatasetRunner {
 public:
  virtual ~DatasetRunner() = default;
  // One run of dataset `name`; fills `report`.
  virtual arrow::Status run(const std::string& name, DatasetReport& report) = 0;
  // Triggered runs: `name` is not run because its input `failed_input` failed or was skipped.
  virtual void skipped(const std::string& name, const std::string& failed_input) = 0;
  // Continuous runs: the latest committed version of a stored dataset, -1 while it does not
  // exist (writers in other processes are noticed this way).
  virtual int64_t latest_version(const std::string& name) = 0;
  // Continuous runs: called every few seconds by the thread that waits for the loops.
  virtual void tick() {}
};

struct ContinuousOptions {
  std::chrono::milliseconds trigger_interval{1000};
  // Called (from the flows' threads, one at a time per dataset) after each run that moved rows.
  std::function<void(const DatasetReport&)> on_report;
  // Scale-out runs (RunLock::leads): whether this process runs the datasets that cannot run in
  // several processes at once; asked before each of their runs. Unset: it does. An error stops
  // the run (a process that could never lead would leave those datasets stalled unseen).
  std::function<arrow::Result<bool>()> leads;
};

struct SchedulerOptions {
  std::string pipeline;  // the pipeline's name, for error context
  // Checked before each dataset starts (set by a signal handler: cannot notify, is polled).
  std::function<bool()> stopping = [] { return false; };
  // Threads of the triggered pool; 0: one per core plus one per dataset that starts with its
  // inputs, at most one per dataset.
  size_t threads = 0;
  // How often tick() is called in continuous mode (at least this, and the trigger interval).
  std::chrono::milliseconds tick_interval{2000};
};

// Triggered: runs `datasets` (upstream first) on a pool of threads: a dataset starts once every
// stored dataset it reads has finished (has started, for `starts_with_upstream`), so independent
// branches of the graph run side by side.
// A failed dataset fails (skips) its downstream, never its siblings; a `starts_with_upstream`
// dataset has already started when its input fails, so it ends with what its input committed
// (the update still fails with the input's error). Returns the reports of the
// datasets run, in the order given, or the first real failure listing every failure and skip.
arrow::Result<std::vector<DatasetReport>> run_triggered(const std::vector<ScheduledDataset>& datasets,
                                                        DatasetRunner& runner, const SchedulerOptions& options);

// Continuous mode: every dataset runs in its own loop until `options.stopping()`. A dataset
// that reads Kafka runs again at once while records keep coming, else after the trigger
// interval; a dataset that reads other datasets wakes as soon as one of them commits in this
// process (in-process notification) or, for writers in other processes, when polling their
// versions every trigger interval finds a new one. Retryable errors (broker away, commit race)
// are logged and retried after the trigger interval; any other error stops every loop and is
// returned.
arrow::Status run_continuous(const std::vector<ScheduledDataset>& datasets, DatasetRunner& runner,
                             const SchedulerOptions& options, const ContinuousOptions& continuous);

}  // namespace sluice::pipeline
