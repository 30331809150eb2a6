// Where a table lives: a local path or an object-store URI (s3://bucket/prefix,
// gs://bucket/prefix, az://container/prefix), and the options (credentials, endpoint) that
// reach it.
#pragma once

#include <arrow/result.h>

#include <map>
#include <string>

namespace sluice::storage {

enum class Scheme { kLocal, kS3, kGcs, kAzure };

struct Location {
  Scheme scheme = Scheme::kLocal;
  std::string bucket;  // S3 and GCS: the bucket; Azure: the container
  // Azure: the storage account named by abfs[s]://container@<account>.dfs.core.windows.net; ""
  // when the URI names none (az://), then it comes from AZURE_STORAGE_ACCOUNT_NAME.
  std::string account;
  // Local: the path as given (file:// stripped). S3, GCS, Azure: the key (blob name) prefix without leading or
  // trailing '/', "" for the bucket's root.
  std::string path;
  // The text the user gave, for messages.
  std::string uri;
};

// Parses a table location: a plain path, file:///path, s3://bucket[/prefix], gs://bucket[/prefix],
// az://container[/prefix] (also azure://) or abfs[s]://container@account.dfs.core.windows.net[/prefix]
// (also abfs[s]://container[/prefix]). adl:// is refused as not supported yet, any other scheme
// (gcs:// too: Google's and delta-rs's tools write gs://) as unknown;
// `what` names the setting in messages ("table path", "storage: in pipeline.yaml").
arrow::Result<Location> parse_location(const std::string& text, const std::string& what);

// Whether `text` names an object store (has a "<scheme>://" other than file://).
bool is_object_store_uri(const std::string& text);

// delta-rs style storage options (AWS_ACCESS_KEY_ID, AWS_REGION, GOOGLE_SERVICE_ACCOUNT,
// AZURE_STORAGE_ACCOUNT_KEY, ...),
// upper-cased keys.
// Values given here win over the environment's.
using StorageOptions = std::map<std::string, std::string>;

// Refuses keys this build does not use (naming the key and the supported ones): a setting is
// never accepted and then ignored. Keys are matched case-insensitively, as delta-rs does, and
// delta-rs's aliases become the canonical key (AZURE_STORAGE_ACCESS_KEY -> ..._ACCOUNT_KEY).
arrow::Result<StorageOptions> normalize_storage_options(const StorageOptions& options);

// The store a normalized option key belongs to: AWS_* to S3, AZURE_* / AZURITE_* to Azure, the
// rest (GOOGLE_*, STORAGE_EMULATOR_HOST) to GCS.
Scheme option_scheme(const std::string& normalized_key);
// "S3", "Azure Blob", "GCS" (kLocal: "a local folder"), for messages.
const char* scheme_name(Scheme scheme);
// Refuses an option of another store than `scheme`'s (naming the key, both stores and `uri`):
// an option is never accepted and then ignored. `key` as the user wrote it, `normalized` as
// normalize_storage_options made it.
arrow::Status check_option_applies(Scheme scheme, const std::string& uri, const std::string& key,
                                   const std::string& normalized);

}  // namespace sluice::storage
