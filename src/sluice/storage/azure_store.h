// The Azure Blob Storage ObjectStore: data files and checkpoints streamed through Arrow's
// AzureFileSystem; the commit of a Delta version as Put Blob with If-None-Match: *
// (409 BlobAlreadyExists / 412 -> kAlreadyExists), log listings and small log objects through
// AzureClient, since Arrow's filesystem cannot send a conditional write.
#pragma once

#include <memory>

#include "sluice/storage/azure_client.h"
#include "sluice/storage/object_store.h"

namespace arrow::fs {
class FileSystem;
}

namespace sluice::storage {

class AzureStore final : public ObjectStore {
 public:
  static arrow::Result<std::shared_ptr<AzureStore>> Make(AzureConfig config);

  const char* scheme() const override { return "az"; }
  std::string display(const std::string& path) const override { return "az://" + path; }
  // Azure's List Blobs has no start-after: the listing is filtered here, so it grows with the
  // folder (one request per 5,000 objects).
  arrow::Result<std::vector<ObjectInfo>> list(const std::string& dir,
                                              const std::string& start_after) const override;
  arrow::Result<std::vector<ObjectInfo>> list_recursive(const std::string& dir) const override;
  arrow::Result<std::optional<ObjectInfo>> head(const std::string& path) const override;
  arrow::Result<std::string> read(const std::string& path) const override;
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> open_input(const std::string& path) const override;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> open_output(const std::string& path) override;
  arrow::Status finish_output(const std::string& path, arrow::io::OutputStream& out) override;
  arrow::Result<PutResult> put_if_absent(const std::string& path, const std::string& content) override;
  arrow::Status put(const std::string& path, const std::string& content) override;
  arrow::Status remove(const std::string& path) override;

 private:
  // list() and list_recursive(): a listing with '/' as delimiter, or without one.
  arrow::Result<std::vector<ObjectInfo>> list_objects(const std::string& dir, const std::string& start_after,
                                                      ListDepth depth) const;
  AzureStore(AzureClient client, std::shared_ptr<arrow::fs::FileSystem> fs)
      : client_(std::move(client)), fs_(std::move(fs)) {}
  arrow::Status failed(const char* what, const std::string& path, const AzureResponse& r) const;

  AzureClient client_;
  std::shared_ptr<arrow::fs::FileSystem> fs_;  // Arrow's AzureFileSystem
};

// The store (one per endpoint, account and credentials in the process) and root path of an
// az:// location; options normalized (location.h), the rest from the AZURE_STORAGE_* environment.
arrow::Result<OpenedLocation> open_azure_location(const Location& location, const StorageOptions& options);

}  // namespace sluice::storage
