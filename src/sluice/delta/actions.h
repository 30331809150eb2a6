// Delta log actions (PROTOCOL.md "Actions") as plain structs, and their JSON form: one action
// per line of a commit file.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::delta {

struct Protocol {
  int32_t min_reader_version = 1;
  int32_t min_writer_version = 2;
  std::optional<std::vector<std::string>> reader_features;
  std::optional<std::vector<std::string>> writer_features;
  bool operator==(const Protocol&) const = default;
};

struct Format {
  std::string provider = "parquet";
  std::map<std::string, std::string> options;
  bool operator==(const Format&) const = default;
};

struct Metadata {
  std::string id;
  std::optional<std::string> name;
  std::optional<std::string> description;
  Format format;
  std::string schema_string;  // Delta schema JSON (Spark StructType JSON)
  std::vector<std::string> partition_columns;
  std::map<std::string, std::string> configuration;
  std::optional<int64_t> created_time;
  bool operator==(const Metadata&) const = default;
};

// Where a data file's deleted rows are recorded (PROTOCOL.md "Deletion Vectors"): storage type
// 'u' (a file beside the data, named by a Z85-encoded UUID after an optional random prefix),
// 'p' (an absolute path) or 'i' (the bitmap inline, Z85-encoded); see deletion_vector.h.
struct DeletionVectorDescriptor {
  std::string storage_type;
  std::string path_or_inline_dv;
  std::optional<int32_t> offset;  // into the file; absent for 'i'
  int32_t size_in_bytes = 0;
  int64_t cardinality = 0;  // rows deleted
  // The id that, with the data file's path, names a logical file in log replay.
  std::string unique_id() const {
    return storage_type + path_or_inline_dv + (offset ? "@" + std::to_string(*offset) : "");
  }
  bool operator==(const DeletionVectorDescriptor&) const = default;
};

// A partition value as the protocol serializes it: a string, or null.
using PartitionValues = std::map<std::string, std::optional<std::string>>;

struct Add {
  std::string path;  // relative to the table root, URI-encoded
  PartitionValues partition_values;
  int64_t size = 0;
  int64_t modification_time = 0;
  bool data_change = true;
  std::optional<std::string> stats;  // JSON text, see stats.h
  std::optional<std::map<std::string, std::string>> tags;
  std::optional<DeletionVectorDescriptor> deletion_vector;
  // The clustering implementation that wrote the file clustered ("liquid": OPTIMIZE of a
  // clustered table, PROTOCOL.md "Clustered Table"); absent for files not clustered yet.
  std::optional<std::string> clustering_provider;
  bool operator==(const Add&) const = default;
};

struct Remove {
  std::string path;
  std::optional<int64_t> deletion_timestamp;
  bool data_change = true;
  std::optional<bool> extended_file_metadata;
  std::optional<PartitionValues> partition_values;
  std::optional<int64_t> size;
  std::optional<DeletionVectorDescriptor> deletion_vector;
  bool operator==(const Remove&) const = default;
};

// Application transaction progress: the idempotency key of exactly-once writes.
struct Txn {
  std::string app_id;
  int64_t version = 0;
  std::optional<int64_t> last_updated;
  bool operator==(const Txn&) const = default;
};

// Free-form provenance; kept as JSON since writers put arbitrary fields in it.
struct CommitInfo {
  nlohmann::json value = nlohmann::json::object();
  bool operator==(const CommitInfo&) const = default;
};

// An action this engine does not model (cdc, domainMetadata, sidecar, ...), kept verbatim.
struct OtherAction {
  std::string kind;
  nlohmann::json value;
  bool operator==(const OtherAction&) const = default;
};

// A domainMetadata action (PROTOCOL.md "Domain Metadata"), which is kept as an OtherAction of
// kind "domainMetadata": its domain, its configuration (a JSON string the domain's owner
// defines) and whether it removes the domain.
struct DomainMetadata {
  std::string domain;
  std::string configuration;
  bool removed = false;
  bool operator==(const DomainMetadata&) const = default;
};
inline constexpr const char* kDomainMetadataKind = "domainMetadata";
// The action of `domain` (kind "domainMetadata").
OtherAction to_action(const DomainMetadata& domain);
// The domain metadata an OtherAction holds; nullopt for other kinds, an error for a
// domainMetadata action that lacks a field.
arrow::Result<std::optional<DomainMetadata>> domain_metadata_of(const OtherAction& action);

// The key of a logical file in log replay: its path, and its deletion vector's id if any.
std::string file_key(const std::string& path, const std::optional<DeletionVectorDescriptor>& dv);

using Action = std::variant<Protocol, Metadata, Add, Remove, Txn, CommitInfo, OtherAction>;

nlohmann::json to_json(const Action& action);
arrow::Result<Action> action_from_json(const nlohmann::json& j);

// One commit file's text: each action on its own line, newline-terminated.
std::string serialize_commit(const std::vector<Action>& actions);
// Parses a commit file; `source` names it in errors (e.g. the file path).
arrow::Result<std::vector<Action>> parse_commit(std::string_view text, const std::string& source);

// Whether JSON text nests objects/arrays deeper than `limit` (brackets in strings skipped);
// checked before parsing text whose later handling recurses per level.
bool json_nests_deeper_than(std::string_view text, int limit);

// Percent-encoding of paths in add/remove actions (RFC 3986 unreserved set kept, '/' kept).
std::string uri_encode_path(std::string_view path);
arrow::Result<std::string> uri_decode_path(std::string_view path);

}  // namespace sluice::delta
