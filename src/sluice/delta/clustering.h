// Liquid clustering (PROTOCOL.md "Clustered Table"): the `clustering` writer feature, the
// `delta.clustering` domain metadata naming the clustering columns, and the rules delta-spark
// applies to them (at most 4 columns, types with min/max stats, within the stats columns).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"

namespace sluice::delta {

class Snapshot;

inline constexpr const char* kClusteringDomain = "delta.clustering";
inline constexpr const char* kClusteringFeature = "clustering";
inline constexpr const char* kDomainMetadataFeature = "domainMetadata";
// What OPTIMIZE records in add.clusteringProvider for the files it clustered (as delta-spark).
inline constexpr const char* kLiquidClusteringProvider = "liquid";
// delta-spark's limit (DELTA_CLUSTER_BY_INVALID_NUM_COLUMNS).
inline constexpr size_t kMaxClusteringColumns = 4;
// delta.dataSkippingNumIndexedCols' default: Spark collects stats on the first 32 leaf columns
// only, and a clustering column must have stats (DELTA_CLUSTERING_COLUMN_MISSING_STATS).
inline constexpr int kStatsIndexedLeafColumns = 32;

// A clustering column: its path of field names (["s", "x"] for s.x), as the domain records it.
using ColumnPath = std::vector<std::string>;

// Whether the protocol lists the clustering writer feature.
bool is_clustered(const Protocol& protocol);

// The table's clustering columns: nullopt for a table that is not clustered, an empty list for
// one clustered by none (ALTER TABLE ... CLUSTER BY NONE). A clustered table whose domain is
// missing or unreadable is an error naming the table.
arrow::Result<std::optional<std::vector<ColumnPath>>> clustering_columns(const Snapshot& snapshot,
                                                                         const std::string& table);

// The delta.clustering domain for `columns`: {"clusteringColumns":[["a"],["s","x"]],
// "domainName":"delta.clustering"}, byte for byte as delta-spark 4 writes it.
DomainMetadata clustering_domain(const std::vector<ColumnPath>& columns);

// `protocol` with the clustering and domainMetadata writer features (writer version 7; the
// features writer version 2 implied listed), as delta-spark creates a CLUSTER BY table.
Protocol with_clustering(Protocol protocol);

// "a.b" for {"a", "b"} (backquoted parts that hold a dot), and the reverse for plain names.
std::string column_path_text(const ColumnPath& path);
ColumnPath column_path_of(const std::string& dotted);

// The field at `path` in `schema` (case-insensitively, through structs), or null.
std::shared_ptr<arrow::Field> field_at_path(const arrow::Schema& schema, const ColumnPath& path);

// Refuses a clustering column as delta-spark does: one that does not exist, whose type keeps
// no min/max stats (boolean, binary, nested), or that lies beyond the first 32 leaf columns
// (no stats either). Returns the path as the schema spells it. The message names the column
// and what to do, but not where it was written (the caller adds that).
arrow::Result<ColumnPath> check_clustering_column(const arrow::Schema& schema, const ColumnPath& path);

}  // namespace sluice::delta
