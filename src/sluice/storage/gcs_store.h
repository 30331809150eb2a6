// The GCS ObjectStore: data files and checkpoints streamed through Arrow's GcsFileSystem; the
// commit of a Delta version as an upload with ifGenerationMatch=0 (412 -> kAlreadyExists), log
// listings from startOffset and small log objects through GcsClient (the JSON API), since
// Arrow's filesystem sends no preconditions and lists whole folders.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "sluice/storage/gcs_client.h"
#include "sluice/storage/arrow_fs_store.h"

namespace sluice::storage {

class GcsStore final : public ArrowFsStore {
 public:
  static arrow::Result<std::shared_ptr<GcsStore>> Make(GcsConfig config);

  const char* scheme() const override { return "gs"; }
  std::string display(const std::string& path) const override { return "gs://" + path; }
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
  GcsStore(GcsClient client, std::shared_ptr<arrow::fs::FileSystem> fs, std::string fs_token)
      : ArrowFsStore(std::move(fs)), client_(std::move(client)), fs_token_(std::move(fs_token)) {}
  // Arrow's GcsFileSystem for the current token: made again when a service-account token was
  // refreshed.
  arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> filesystem() const override;
  arrow::Status failed(const char* what, const std::string& path, const GcsResponse& r) const;
  // An upload of `content` to `path` (uploadType=multipart), with `precondition` ("" or
  // "&ifGenerationMatch=0") in its query.
  arrow::Result<GcsResponse> upload(const std::string& path, const std::string& content,
                                    const std::string& precondition);

  GcsClient client_;
  // Touched by every thread that opens a stream: fs_mutex_ guards current_fs_ and fs_token_.
  mutable std::mutex fs_mutex_;
  mutable std::shared_ptr<arrow::fs::FileSystem> current_fs_;
  mutable std::string fs_token_;
};

}  // namespace sluice::storage
