// Snapshots kept across updates (snapshot_cache.h).
#include "sluice/delta/snapshot_cache.h"

#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "sluice/delta/table.h"

namespace sluice::delta {

namespace {

// A hash of a commit file's bytes; nullopt when it cannot be read. Size and modification time
// alone can miss a log written anew (a commit of the same length, a coarse clock on NFS/FUSE).
std::optional<size_t> content_hash(const LogStore& store, DeltaVersion v) {
  auto bytes = store.read_commit(v);
  if (!bytes.ok()) return std::nullopt;
  return std::hash<std::string>{}(*bytes);
}

}  // namespace

std::shared_ptr<const Snapshot> SnapshotCache::usable(const LogStore& store) {
  std::lock_guard lock(mutex_);
  auto it = kept_.find(store.location());
  if (it == kept_.end()) return nullptr;
  const DeltaVersion version = it->second.snapshot->version();
  auto info = store.commit_info(version);
  if (!info.ok() || !*info || (*info)->size != it->second.commit_size) return nullptr;
  if ((*info)->mtime_nanos != it->second.commit_mtime_nanos) return nullptr;
  if (content_hash(store, version) != it->second.commit_hash) return nullptr;
  return it->second.snapshot;
}

arrow::Result<std::shared_ptr<const Snapshot>> SnapshotCache::latest_if_exists(const LogStore& store) {
  std::shared_ptr<const Snapshot> snapshot;
  if (auto kept = usable(store)) {
    ARROW_ASSIGN_OR_RAISE(snapshot, kept->advance(store));
    std::lock_guard lock(mutex_);
    ++advanced_;
  } else {
    ARROW_ASSIGN_OR_RAISE(snapshot, load_latest_if_exists(store));
    if (!snapshot) return snapshot;
    std::lock_guard lock(mutex_);
    ++replayed_;
  }
  remember(store, snapshot);
  return snapshot;
}

arrow::Result<std::shared_ptr<const Snapshot>> SnapshotCache::latest(const LogStore& store) {
  ARROW_ASSIGN_OR_RAISE(auto snapshot, latest_if_exists(store));
  if (!snapshot) return Snapshot::load(store);  // its error names the table and what to do
  return snapshot;
}

void SnapshotCache::remember(const LogStore& store, std::shared_ptr<const Snapshot> snapshot) {
  if (!snapshot) return;
  const DeltaVersion version = snapshot->version();
  auto info = store.commit_info(version);
  if (!info.ok() || !*info) return;
  Kept kept{std::move(snapshot), (*info)->size, (*info)->mtime_nanos, std::nullopt};
  kept.commit_hash = content_hash(store, version);
  if (!kept.commit_hash) return;
  std::lock_guard lock(mutex_);
  kept_[store.location()] = std::move(kept);
}

int64_t SnapshotCache::advanced() const {
  std::lock_guard lock(mutex_);
  return advanced_;
}

int64_t SnapshotCache::replayed() const {
  std::lock_guard lock(mutex_);
  return replayed_;
}

}  // namespace sluice::delta
