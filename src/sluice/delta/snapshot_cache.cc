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
std::optional<size_t> content_hash(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return std::hash<std::string>{}(bytes);
}

}  // namespace

std::shared_ptr<const Snapshot> SnapshotCache::usable(const LogStore& store) {
  std::lock_guard lock(mutex_);
  auto it = kept_.find(store.table_root().string());
  if (it == kept_.end()) return nullptr;
  std::error_code ec;
  const auto path = store.commit_path(it->second.snapshot->version());
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size != it->second.commit_size) return nullptr;
  const auto mtime = std::filesystem::last_write_time(path, ec);
  if (ec || mtime != it->second.commit_mtime) return nullptr;
  if (content_hash(path) != it->second.commit_hash) return nullptr;
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
  std::error_code ec;
  const auto path = store.commit_path(snapshot->version());
  Kept kept{std::move(snapshot), std::filesystem::file_size(path, ec), {}, std::nullopt};
  if (ec) return;
  kept.commit_mtime = std::filesystem::last_write_time(path, ec);
  if (ec) return;
  kept.commit_hash = content_hash(path);
  if (!kept.commit_hash) return;
  std::lock_guard lock(mutex_);
  kept_[store.table_root().string()] = std::move(kept);
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
