// A table's state at one version, replayed from its log (from the newest checkpoint at or
// below that version, then the JSON commits after it): protocol, metadata, live files,
// tombstones and application transactions.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/table_features.h"

namespace sluice::delta {

class Snapshot {
 public:
  // The snapshot at `version`, or at the latest one. A table with no commits is an error
  // whose message says so (use load_latest_if_exists() in table.h to tell).
  static arrow::Result<std::shared_ptr<const Snapshot>> load(
      const LogStore& store, std::optional<DeltaVersion> version = std::nullopt);
  // The snapshot a validated log segment describes (the replay step of load()).
  static arrow::Result<std::shared_ptr<const Snapshot>> replay(const LogStore& store,
                                                               const LogListing& listing,
                                                               const LogSegment& segment);
  // The latest version committed at or before `timestamp_millis` (time travel by time).
  static arrow::Result<std::shared_ptr<const Snapshot>> load_at_timestamp(const LogStore& store,
                                                                          int64_t timestamp_millis);
  // This snapshot advanced by the commits after it, up to `version` (or the latest).
  arrow::Result<std::shared_ptr<const Snapshot>> advance(
      const LogStore& store, std::optional<DeltaVersion> version = std::nullopt) const;

  DeltaVersion version() const { return version_; }
  const Protocol& protocol() const { return protocol_; }
  const Metadata& metadata() const { return metadata_; }
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  // Live data files, in the order they were added.
  std::vector<Add> files() const;
  size_t num_files() const { return live_.size(); }
  // Files removed whose removal is still recorded (for checkpoints and VACUUM).
  std::vector<Remove> tombstones() const;
  // The txn version recorded for `app_id`, if any.
  std::optional<int64_t> txn_version(const std::string& app_id) const;
  const std::map<std::string, Txn>& txns() const { return txns_; }
  // The live domain metadata (PROTOCOL.md "Domain Metadata"; a removed domain is dropped), by
  // domain, which every commit and checkpoint this engine writes carries on.
  const std::map<std::string, DomainMetadata>& domains() const { return domains_; }
  const DomainMetadata* domain(const std::string& name) const {
    auto it = domains_.find(name);
    return it == domains_.end() ? nullptr : &it->second;
  }
  int64_t num_records() const;  // from stats; -1 when some file lacks them
  int64_t size_bytes() const;
  // Version of the checkpoint this snapshot was replayed from, if any.
  std::optional<DeltaVersion> checkpoint_version() const { return checkpoint_version_; }

 private:
  Snapshot() = default;
  void apply(Action&& action, bool* saw_protocol, bool* saw_metadata);
  arrow::Status apply_commit(const LogStore& store, DeltaVersion v, bool* saw_protocol,
                             bool* saw_metadata);
  arrow::Status finish(const std::string& table);

  DeltaVersion version_{0};
  Protocol protocol_;
  Metadata metadata_;
  std::shared_ptr<arrow::Schema> schema_;
  // Live files keyed by file_key() (path and deletion vector) with an insertion sequence, so
  // files() keeps add order.
  std::map<std::string, std::pair<int64_t, Add>> live_;
  std::map<std::string, Remove> tombstones_;
  std::map<std::string, Txn> txns_;
  std::map<std::string, DomainMetadata> domains_;
  int64_t sequence_ = 0;
  std::optional<DeltaVersion> checkpoint_version_;
};


}  // namespace sluice::delta
