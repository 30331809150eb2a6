// The local-filesystem ObjectStore: durable writes (temp file + fsync, then a no-replace
// rename or link, then an fsync of the folder), so a crash never leaves a half-written commit.
#pragma once

#include <arrow/status.h>

#include <filesystem>
#include <string>

#include "sluice/storage/object_store.h"

namespace sluice::storage {

class LocalStore final : public ObjectStore {
 public:
  const char* scheme() const override { return "file"; }
  std::string display(const std::string& path) const override { return path; }
  // Names only (size and mtime 0): a log listing needs no stat per file; head() has them.
  arrow::Result<std::vector<ObjectInfo>> list(const std::string& dir,
                                              const std::string& start_after) const override;
  arrow::Result<std::optional<ObjectInfo>> head(const std::string& path) const override;
  arrow::Result<std::string> read(const std::string& path) const override;
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> open_input(const std::string& path) const override;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> open_output(const std::string& path) override;
  arrow::Status finish_output(const std::string& path, arrow::io::OutputStream& out) override;
  arrow::Result<PutResult> put_if_absent(const std::string& path, const std::string& content) override;
  arrow::Status put(const std::string& path, const std::string& content) override;
  arrow::Status remove(const std::string& path) override;
};

// Durably writes `content` to a new file at `path` (fails if it exists).
arrow::Status write_file_durably(const std::filesystem::path& path, const std::string& content);
// fsync of a written file's data (before it is renamed into place or committed).
arrow::Status fsync_file(const std::filesystem::path& path);
// fsync of a directory, so a new entry in it survives a crash.
arrow::Status fsync_directory(const std::filesystem::path& dir);

}  // namespace sluice::storage
