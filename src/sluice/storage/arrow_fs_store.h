// The part of an ObjectStore that Arrow's filesystem does alone: data files and checkpoints read
// and streamed through an arrow::fs::FileSystem (S3FileSystem, GcsFileSystem). S3Store and
// GcsStore derive from it and add what Arrow cannot send (conditional commits, start-after
// listings). AzureStore keeps its own: it wraps Arrow's streams to redact SAS signatures.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "sluice/storage/object_store.h"

namespace arrow::fs {
class FileSystem;
}

namespace sluice::storage {

class ArrowFsStore : public ObjectStore {
 public:
  // Counted as a HEAD and a GET: Arrow asks for the object's size, then sends ranged GETs.
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> open_input(const std::string& path) const final;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> open_output(const std::string& path) final;
  // Closing completes the upload: the object appears whole or not at all.
  arrow::Status finish_output(const std::string& path, arrow::io::OutputStream& out) final;

 protected:
  explicit ArrowFsStore(std::shared_ptr<arrow::fs::FileSystem> fs) : fs_(std::move(fs)) {}

  // The filesystem for the next stream: fs_, or (S3Store, GcsStore) one made again when the
  // credentials were refreshed. Streams already open keep the one they were opened with.
  virtual arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> filesystem() const { return fs_; }

  std::shared_ptr<arrow::fs::FileSystem> fs_;
};

}  // namespace sluice::storage
