// A table's state at one version, replayed from its log: protocol, metadata, live files and
// application transactions.
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
#include "sluice/delta/log_store.h"

namespace sluice::delta {

class Snapshot {
 public:
  // The snapshot at `version`, or at the latest one. A table with no commits is an error
  // whose message says so (check LogStore::latest_version() first to tell).
  static arrow::Result<std::shared_ptr<const Snapshot>> load(
      const LogStore& store, std::optional<DeltaVersion> version = std::nullopt);

  DeltaVersion version() const { return version_; }
  const Protocol& protocol() const { return protocol_; }
  const Metadata& metadata() const { return metadata_; }
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  // Live data files by path, in the order they were added.
  const std::vector<Add>& files() const { return files_; }
  // The txn version recorded for `app_id`, if any.
  std::optional<int64_t> txn_version(const std::string& app_id) const;
  const std::map<std::string, Txn>& txns() const { return txns_; }
  int64_t num_records() const;  // from stats; -1 when some file lacks them

 private:
  Snapshot() = default;
  DeltaVersion version_{0};
  Protocol protocol_;
  Metadata metadata_;
  std::shared_ptr<arrow::Schema> schema_;
  std::vector<Add> files_;
  std::map<std::string, Txn> txns_;
};

// Reader and writer features this engine understands; a table needing others is refused.
arrow::Status check_protocol_supported(const Protocol& protocol, const std::string& table);

}  // namespace sluice::delta
