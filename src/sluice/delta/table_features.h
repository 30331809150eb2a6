// What sluice can read and write of the Delta protocol: reader and writer versions, table
// features (PROTOCOL.md "Table Features", and the features legacy versions imply), and the
// table properties a writer must honour (delta.appendOnly, delta.constraints.*).
#pragma once

#include <arrow/status.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"

namespace sluice::delta {

// Refuses a table whose reader version or reader features sluice does not implement, naming
// the feature(s).
arrow::Status check_read_supported(const Protocol& protocol, const std::string& table);
// Kept for callers of the old name.
inline arrow::Status check_protocol_supported(const Protocol& protocol, const std::string& table) {
  return check_read_supported(protocol, table);
}

// Refuses to write a table whose writer version or writer features (declared, or implied by a
// legacy writer version and in use: generated columns, identity columns, column invariants,
// column mapping) sluice does not implement: a writer that ignores them writes a table other
// engines read wrongly or refuse.
arrow::Status check_write_supported(const Protocol& protocol, const Metadata& metadata,
                                    const std::string& table);

// Whether DML marks deleted rows in deletion vectors: delta.enableDeletionVectors = true on
// a protocol that lists the deletionVectors reader and writer feature.
bool writes_deletion_vectors(const Protocol& protocol, const Metadata& metadata);

// `protocol` with the deletionVectors reader and writer feature (reader 3, writer 7; the
// features writer version 2 implied listed), as Spark sets it for a new table whose properties
// enable them.
Protocol with_deletion_vectors(Protocol protocol);

// delta.appendOnly=true forbids removing data (overwrite, full refresh).
bool is_append_only(const Metadata& metadata);

// delta.enableChangeDataFeed = true: DELETE, UPDATE and MERGE write _change_data files
// (change_data.h); appends and overwrites need none (readers derive them from add/remove).
bool change_data_feed_enabled(const std::map<std::string, std::string>& configuration);

// `protocol` raised to what `configuration` needs, as Spark raises it when a property turns a
// feature on: CHECK constraints (delta.constraints.*) need writer version 3, the change data
// feed writer version 4, or `checkConstraints` / `changeDataFeed` among the writer features of
// a table on table features (writer version 7). Nullopt when `protocol` already covers it.
std::optional<Protocol> protocol_for_properties(const Protocol& protocol,
                                                const std::map<std::string, std::string>& configuration);

// Whether sluice honours the table property `key` (delta.appendOnly, delta.checkpointInterval,
// the retention/log durations, delta.enableExpiredLogCleanup, delta.enableChangeDataFeed,
// delta.enableDeletionVectors, delta.isolationLevel, delta.targetFileSize, delta.constraints.*;
// delta.autoOptimize.autoCompact; the DLT keys pipelines.* it acts on). Other keys (comment, sluice.*) are not checked here.
bool is_supported_delta_property(const std::string& key);

// Refuses a `delta.*` or `pipelines.*` property that sluice does not honour (e.g.
// delta.enableRowTracking: other engines would misread the table; pipelines.retentoin: ignored
// silently; a delta.autoOptimize.autoCompact value other than true/false/legacy). Names the table, the key (with the closest known key) and what to do.
arrow::Status check_delta_properties(const std::map<std::string, std::string>& configuration,
                                     const std::string& table);

// A CHECK constraint: table property `delta.constraints.<name>` = a Spark SQL boolean
// expression over the table's columns.
struct CheckConstraint {
  std::string name;
  std::string expression;
  bool operator==(const CheckConstraint&) const = default;
};

std::vector<CheckConstraint> check_constraints_of(const Metadata& metadata);

}  // namespace sluice::delta
