// The GCS ObjectStore: data files and checkpoints streamed through Arrow's GcsFileSystem; the
// commit of a Delta version as an upload with ifGenerationMatch=0 (412 -> kAlreadyExists), log
// listings from startOffset and small log objects through GcsClient (the JSON API), since
// Arrow's filesystem sends no preconditions and lists whole folders.
#pragma once

#include <memory>

#include "sluice/storage/gcs_client.h"
#include "sluice/storage/object_store.h"

namespace arrow::fs {
class FileSystem;
}

namespace sluice::storage {

class GcsStore final : public ObjectStore {
 public:
  static arrow::Result<std::shared_ptr<GcsStore>> Make(GcsConfig config);

  const char* scheme() const override { return "gs"; }
  std::string display(const std::string& path) const override { return "gs://" + path; }
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

 private:
  GcsStore(GcsClient client, std::shared_ptr<arrow::fs::FileSystem> fs)
      : client_(std::move(client)), fs_(std::move(fs)) {}
  arrow::Status failed(const char* what, const std::string& path, const GcsResponse& r) const;
  // An upload of `content` to `path` (uploadType=multipart), with `precondition` ("" or
  // "&ifGenerationMatch=0") in its query.
  arrow::Result<GcsResponse> upload(const std::string& path, const std::string& content,
                                    const std::string& precondition);

  GcsClient client_;
  std::shared_ptr<arrow::fs::FileSystem> fs_;  // Arrow's GcsFileSystem
};

}  // namespace sluice::storage
