// The table's _delta_log on the local filesystem: listing, reading, and atomic
// put-if-absent writes of commit files.
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"

namespace sluice::delta {

// Outcome of a put-if-absent write: a lost race is an expected result, not an error.
enum class PutResult { kWritten, kAlreadyExists };

class LogStore {
 public:
  explicit LogStore(std::filesystem::path table_root);

  const std::filesystem::path& table_root() const { return root_; }
  std::filesystem::path log_dir() const { return root_ / "_delta_log"; }
  std::filesystem::path commit_path(DeltaVersion v) const;

  // Versions of the JSON commit files present, ascending. Empty when there is no log.
  arrow::Result<std::vector<DeltaVersion>> list_commits() const;
  arrow::Result<std::optional<DeltaVersion>> latest_version() const;
  arrow::Result<std::string> read_commit(DeltaVersion v) const;
  // When commit `v` was made: its file's modification time, in epoch milliseconds (the
  // protocol's commit timestamp without in-commit timestamps).
  arrow::Result<int64_t> commit_timestamp(DeltaVersion v) const;

  // Writes the commit file for `v` only if no file has that name, atomically and durably:
  // temp file + fsync, then a no-replace rename (or link), then fsync of the directory.
  // Readers never see a half-written commit.
  arrow::Result<PutResult> put_commit_if_absent(DeltaVersion v, const std::string& content) const;

 private:
  std::filesystem::path root_;
};

// Durably writes `content` to a new file at `path` (fails if it exists).
arrow::Status write_file_durably(const std::filesystem::path& path, const std::string& content);
// fsync of a written file's data (before it is renamed into place or committed).
arrow::Status fsync_file(const std::filesystem::path& path);
// fsync of a directory, so a new entry in it survives a crash.
arrow::Status fsync_directory(const std::filesystem::path& dir);

}  // namespace sluice::delta
