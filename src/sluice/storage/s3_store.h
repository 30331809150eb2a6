// The S3 ObjectStore: data files and checkpoints streamed through Arrow's S3FileSystem; the
// commit of a Delta version as a conditional PUT (If-None-Match: *, 412 -> kAlreadyExists)
// and log listings with start-after through S3Client, since Arrow's filesystem sends neither.
#pragma once

#include <memory>

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
  arrow::Result<std::optional<ObjectInfo>> head(const std::string& path) const override;
  arrow::Result<std::string> read(const std::string& path) const override;
  arrow::Result<PutResult> put_if_absent(const std::string& path, const std::string& content) override;
  arrow::Status put(const std::string& path, const std::string& content) override;
  arrow::Status remove(const std::string& path) override;

 private:
  S3Store(S3Client client, std::shared_ptr<arrow::fs::FileSystem> fs)
      : ArrowFsStore(std::move(fs)), client_(std::move(client)) {}
  arrow::Status failed(const char* what, const std::string& path, const S3Response& r) const;

  S3Client client_;
};

}  // namespace sluice::storage
