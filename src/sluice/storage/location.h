// Where a table lives: a local path or an object-store URI (s3://bucket/prefix), and the
// options (credentials, endpoint) that reach it.
#pragma once

#include <arrow/result.h>

#include <map>
#include <string>

namespace sluice::storage {

enum class Scheme { kLocal, kS3 };

struct Location {
  Scheme scheme = Scheme::kLocal;
  std::string bucket;  // S3 only
  // Local: the path as given (file:// stripped). S3: the key prefix without leading or
  // trailing '/', "" for the bucket's root.
  std::string path;
  // The text the user gave, for messages.
  std::string uri;
};

// Parses a table location: a plain path, file:///path, or s3://bucket[/prefix]. az://,
// abfs(s)://, gs:// and gcs:// are refused as not supported yet, any other scheme as unknown;
// `what` names the setting in messages ("table path", "storage: in pipeline.yaml").
arrow::Result<Location> parse_location(const std::string& text, const std::string& what);

// Whether `text` names an object store (has a "<scheme>://" other than file://).
bool is_object_store_uri(const std::string& text);

// delta-rs style storage options (AWS_ACCESS_KEY_ID, AWS_REGION, ...), upper-cased keys.
// Values given here win over the environment's.
using StorageOptions = std::map<std::string, std::string>;

// Refuses keys this build does not use (naming the key and the supported ones): a setting is
// never accepted and then ignored. Keys are matched case-insensitively, as delta-rs does.
arrow::Result<StorageOptions> normalize_storage_options(const StorageOptions& options);

}  // namespace sluice::storage
