// Snapshots kept across the updates of a continuous run, by table path: loading a table again
// advances the kept snapshot by the commits after it (delta-kernel's incremental snapshot
// update), instead of replaying the newest checkpoint and the commits after it each time, which
// costs in proportion to the table's size. A kept snapshot is used only while its own commit
// file is still the one it was read from (same size, modification time and bytes): a log deleted and
// written anew under the same path, or cleaned up past it, is replayed from scratch.
// Thread-safe.
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

class SnapshotCache {
 public:
  // The latest snapshot of the table at `store`; null when it has no commit yet.
  arrow::Result<std::shared_ptr<const Snapshot>> latest_if_exists(const LogStore& store);
  // The same; a table with no commits is Snapshot::load's error.
  arrow::Result<std::shared_ptr<const Snapshot>> latest(const LogStore& store);
  // A snapshot the caller made (a commit's): later loads advance from it.
  void remember(const LogStore& store, std::shared_ptr<const Snapshot> snapshot);

  // Loads that advanced a kept snapshot / replayed the log (for tests and benchmarks).
  int64_t advanced() const;
  int64_t replayed() const;

 private:
  struct Kept {
    std::shared_ptr<const Snapshot> snapshot;
    int64_t commit_size = 0;
    int64_t commit_mtime_nanos = 0;
    std::optional<size_t> commit_hash;  // of the commit file's bytes
  };
  // The kept snapshot of `store`'s table if its commit file is unchanged.
  std::shared_ptr<const Snapshot> usable(const LogStore& store);

  mutable std::mutex mutex_;
  std::map<std::string, Kept> kept_;  // by table root
  int64_t advanced_ = 0, replayed_ = 0;
};

}  // namespace sluice::delta
