// A table's _delta_log in its ObjectStore (storage/object_store.h): listing, reading, and
// atomic put-if-absent writes of commit files. The table lives at a local path or a URI.
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/storage/local_store.h"
#include "sluice/storage/location.h"
#include "sluice/storage/object_store.h"

namespace sluice::delta {

using storage::PutResult;

class LogStore {
 public:
  // A table in a local folder.
  explicit LogStore(std::filesystem::path table_root);
  // A table at `root` (a path in `objects`' namespace: "bucket/prefix" on S3).
  LogStore(std::shared_ptr<storage::ObjectStore> objects, std::string root);
  // A table at a path or URI ("s3://bucket/prefix"); `what` names the setting in errors.
  static arrow::Result<std::shared_ptr<LogStore>> open(const std::string& location,
                                                       const storage::StorageOptions& options = {},
                                                       const std::string& what = "table path");

  // The root in the store's namespace (a local folder, or "bucket/prefix" on S3): paths of the
  // table's files are built from it and handed to objects().
  const std::filesystem::path& table_root() const { return root_; }
  // The table as the user names it ("/data/t" or "s3://bucket/t"), for messages.
  std::string location() const { return objects_->display(root_.string()); }
  const std::shared_ptr<storage::ObjectStore>& objects() const { return objects_; }
  bool is_local() const { return objects_ == storage::local_store(); }
  std::filesystem::path log_dir() const { return root_ / "_delta_log"; }
  std::filesystem::path commit_path(DeltaVersion v) const;
  // A path as the user would name it, for messages.
  std::string display(const std::filesystem::path& path) const { return objects_->display(path.string()); }

  // Versions of the JSON commit files present, ascending. Empty when there is no log.
  arrow::Result<std::vector<DeltaVersion>> list_commits() const;
  arrow::Result<std::optional<DeltaVersion>> latest_version() const;
  arrow::Result<std::string> read_commit(DeltaVersion v) const;
  // Size and modification time of commit `v`'s file; nullopt when it is not there.
  arrow::Result<std::optional<storage::ObjectInfo>> commit_info(DeltaVersion v) const;
  // When commit `v` was made: its file's modification time, in epoch milliseconds (the
  // protocol's commit timestamp without in-commit timestamps).
  arrow::Result<int64_t> commit_timestamp(DeltaVersion v) const;
  // Every commit with its timestamp, ascending (one listing on an object store, whose
  // LastModified has whole seconds on S3).
  arrow::Result<std::vector<std::pair<DeltaVersion, int64_t>>> commit_timestamps() const;

  // Writes the commit file for `v` only if no file has that name, atomically and durably
  // (local: temp file + fsync, then a no-replace rename or link, then fsync of the directory;
  // S3: a PUT with If-None-Match: *). Readers never see a half-written commit.
  arrow::Result<PutResult> put_commit_if_absent(DeltaVersion v, const std::string& content) const;

 private:
  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path root_;
};

using storage::fsync_directory;
using storage::fsync_file;
using storage::write_file_durably;

}  // namespace sluice::delta
