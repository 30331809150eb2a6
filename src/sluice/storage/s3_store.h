// The S3 ObjectStore: data files and checkpoints streamed through Arrow's S3FileSystem; the
// commit of a Delta version as a conditional PUT (If-None-Match: *, 412 -> kAlreadyExists)
// and log listings with start-after through S3Client, since Arrow's filesystem sends neither.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "sluice/storage/arrow_fs_store.h"
#include "sluice/storage/s3_client.h"

namespace sluice::storage {

class S3Store final : public ArrowFsStore {
 public:
  static arrow::Result<std::shared_ptr<S3Store>> Make(S3Config config);

  const char* scheme() const override { return "s3"; }
  std::string display(const std::string& path) const override { return "s3://" + path; }
  arrow::Result<std::vector<ObjectInfo>> list(const std::string& dir,
                                              const std::string& start_after) const override;
  arrow::Result<std::vector<ObjectInfo>> list_recursive(const std::string& dir) const override;
  arrow::Result<std::optional<ObjectInfo>> head(const std::string& path) const override;
  arrow::Result<std::string> read(const std::string& path) const override;
  arrow::Result<PutResult> put_if_absent(const std::string& path, const std::string& content) override;
  arrow::Status put(const std::string& path, const std::string& content) override;
  arrow::Status remove(const std::string& path) override;

 private:
  // list() and list_recursive(): a listing with '/' as delimiter, or without one.
  arrow::Result<std::vector<ObjectInfo>> list_objects(const std::string& dir, const std::string& start_after,
                                                      ListDepth depth) const;
  S3Store(S3Client client, std::shared_ptr<arrow::fs::FileSystem> fs, std::string fs_identity)
      : ArrowFsStore(std::move(fs)), client_(std::move(client)), fs_identity_(std::move(fs_identity)) {}
  arrow::Status failed(const char* what, const std::string& path, const S3Response& r) const;
  // Arrow's S3FileSystem for the provider's current credentials: made again when they changed.
  arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> filesystem() const override;

  S3Client client_;
  // Touched by every thread that opens a stream: fs_mutex_ guards current_fs_ and fs_identity_
  // (fs_ stays the first filesystem, never used once current_fs_ is set).
  mutable std::mutex fs_mutex_;
  mutable std::shared_ptr<arrow::fs::FileSystem> current_fs_;
  mutable std::string fs_identity_;
};

}  // namespace sluice::storage
