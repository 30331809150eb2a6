// Store selection by location (object_store.h).
#include "sluice/storage/object_store.h"

#include <map>
#include <memory>
#include <mutex>

#include "sluice/common/status.h"
#include "sluice/storage/azure_store.h"
#include "sluice/storage/gcs_store.h"
#include "sluice/storage/local_store.h"
#include "sluice/storage/s3_store.h"

namespace sluice::storage {

RequestCounts ObjectStore::requests() const {
  RequestCounts c;
  c.list = list_.load(std::memory_order_relaxed);
  c.get = get_.load(std::memory_order_relaxed);
  c.head = head_.load(std::memory_order_relaxed);
  c.put = put_.load(std::memory_order_relaxed);
  c.remove = remove_.load(std::memory_order_relaxed);
  return c;
}

arrow::Result<std::vector<ObjectInfo>> ObjectStore::list_recursive(const std::string& dir) const {
  return arrow::Status::NotImplemented("a recursive listing of ", display(dir), " (", scheme(),
                                       "://) is not supported by this store");
}

std::shared_ptr<ObjectStore> local_store() {
  static const std::shared_ptr<ObjectStore> store = std::make_shared<LocalStore>();
  return store;
}

namespace {

// An option given for one kind of store is refused on another, not ignored.
arrow::Status check_options_apply(const Location& location, const StorageOptions& options) {
  for (const auto& [key, value] : options) {
    ARROW_RETURN_NOT_OK(check_option_applies(location.scheme, location.uri, key, key));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<OpenedLocation> open_location(const Location& location, const StorageOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto normalized, normalize_storage_options(options));
  if (location.scheme == Scheme::kLocal) return OpenedLocation{local_store(), location.path};
  ARROW_RETURN_NOT_OK(check_options_apply(location, normalized));
  if (location.scheme == Scheme::kAzure) return open_azure_location(location, normalized);
  // One store (and request count) per endpoint and identity in the process.
  // Never destroyed: an S3FileSystem must not outlive arrow::fs::FinalizeS3 (run at exit,
  // s3_store.cc), and static destruction would destroy it after.
  static std::mutex mutex;
  static auto& stores = *std::make_unique<std::map<std::string, std::shared_ptr<ObjectStore>>>().release();  // guarded by mutex
  std::shared_ptr<ObjectStore>* store = nullptr;
  std::unique_lock<std::mutex> lock;
  if (location.scheme == Scheme::kGcs) {
    ARROW_ASSIGN_OR_RAISE(auto config, gcs_config_from(normalized));
    lock = std::unique_lock(mutex);
    std::string key = "gs\n" + config.endpoint + '\n' + config.access_token;
    if (const auto& a = config.service_account) key += '\n' + a->client_email + '\n' + a->private_key + '\n' + a->token_uri;
    store = &stores[key];
    if (!*store) {
      ARROW_ASSIGN_OR_RAISE(*store, GcsStore::Make(std::move(config)));
    }
  } else {
    ARROW_ASSIGN_OR_RAISE(auto config, s3_config_from(normalized));
    const std::string key = config.endpoint + '\n' + config.region + '\n' + config.credentials.identity();
    lock = std::unique_lock(mutex);
    store = &stores[key];
    if (!*store) {
      ARROW_ASSIGN_OR_RAISE(*store, S3Store::Make(std::move(config)));
    }
  }
  std::string root = location.bucket;
  if (!location.path.empty()) root += "/" + location.path;
  return OpenedLocation{*store, root};
}

}  // namespace sluice::storage
