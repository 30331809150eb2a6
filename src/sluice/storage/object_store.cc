// Store selection by location (object_store.h).
#include "sluice/storage/object_store.h"

#include <map>
#include <memory>
#include <mutex>

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

std::shared_ptr<ObjectStore> local_store() {
  static const std::shared_ptr<ObjectStore> store = std::make_shared<LocalStore>();
  return store;
}

arrow::Result<OpenedLocation> open_location(const Location& location, const StorageOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto normalized, normalize_storage_options(options));
  if (location.scheme == Scheme::kLocal) return OpenedLocation{local_store(), location.path};
  ARROW_ASSIGN_OR_RAISE(auto config, s3_config_from(normalized));
  // One store (and request count) per endpoint and identity in the process.
  // Never destroyed: an S3FileSystem must not outlive arrow::fs::FinalizeS3 (run at exit,
  // s3_store.cc), and static destruction would destroy it after.
  static std::mutex mutex;
  static auto& stores = *std::make_unique<std::map<std::string, std::shared_ptr<ObjectStore>>>().release();  // guarded by mutex
  const std::string key = config.endpoint + '\n' + config.region + '\n' + config.access_key + '\n' +
                          config.secret_key + '\n' + config.session_token;
  std::lock_guard lock(mutex);
  auto& store = stores[key];
  if (!store) {
    ARROW_ASSIGN_OR_RAISE(auto made, S3Store::Make(std::move(config)));
    store = std::move(made);
  }
  std::string root = location.bucket;
  if (!location.path.empty()) root += "/" + location.path;
  return OpenedLocation{store, root};
}

}  // namespace sluice::storage
