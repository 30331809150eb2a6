// What a pipeline declares about a table it owns (comment, properties, partitioning, column
// comments and tags), compared with the table's metadata: the commits that bring an existing
// table in line, in the shape Spark's ALTER TABLE writes them (docs/decisions.md).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

struct TableDefinition {
  std::optional<std::string> description;           // COMMENT on the dataset
  std::map<std::string, std::string> configuration;  // TBLPROPERTIES (+ pipeline.yaml properties)
  std::vector<std::string> partition_columns;
  // CLUSTER BY columns (paths as the schema spells them); empty: not clustered.
  std::vector<std::vector<std::string>> clustering_columns;
  // The declared/planned schema: only its field metadata kept by is_kept_column_metadata
  // ("comment", "sluice.tag.*") is compared, column by column (by name, through structs).
  std::shared_ptr<arrow::Schema> schema;
};

// One commit of a metadata update: Spark's SET TBLPROPERTIES (properties and the comment),
// UNSET TBLPROPERTIES, CHANGE COLUMN (a column's comment or tags), or CLUSTER BY (new
// clustering columns: a delta.clustering domainMetadata action; the data stays as it is).
struct MetadataChange {
  std::string operation;
  nlohmann::json operation_parameters = nlohmann::json::object();
  Metadata metadata;
  bool metadata_changed = true;  // false: the commit carries only `domain` (Spark's CLUSTER BY)
  std::optional<Protocol> protocol;  // raised when a property turns a feature on
  std::optional<DomainMetadata> domain;  // ALTER TABLE ... CLUSTER BY: the new delta.clustering
  std::string summary;               // for the event log: "set delta.enableChangeDataFeed=true"
};

// Table property recording which properties the pipeline definition set (a JSON array of
// keys): a later run unsets only those of them the definition no longer names, never a
// property set outside the definition (e.g. by Spark's ALTER TABLE).
inline constexpr const char* kDefinedPropertiesKey = "sluice.definedProperties";

// `configuration` with kDefinedPropertiesKey listing its keys: what a table is created with.
std::map<std::string, std::string> with_defined_properties(std::map<std::string, std::string> configuration);

// The commits (in order, each applied on the previous) that bring `snapshot`'s table to
// `definition`; empty when it already matches. Refuses what cannot change in place (the
// partition columns, column mapping, delta.* properties sluice does not honour, a new or
// changed CHECK constraint on a table with data) with the table, the values and what to do.
// Properties a previous definition set (kDefinedPropertiesKey) and this one no longer names
// are unset, as Spark's UNSET TBLPROPERTIES does (the features they turned on stay in the
// protocol, as in Spark), except CHECK constraints (delta.constraints.*); properties set
// outside the definition are left alone.
arrow::Result<std::vector<MetadataChange>> plan_metadata_changes(const Snapshot& snapshot,
                                                                 const TableDefinition& definition,
                                                                 const std::string& table);

// Commits plan_metadata_changes' commits to the table at `store` (re-read and re-planned when
// a concurrent commit wins the race). Returns what was committed (empty: nothing to do, or no
// table yet: it is created with the definition).
struct CommittedChange {
  int64_t version = 0;
  std::string operation;
  std::string summary;
};
arrow::Result<std::vector<CommittedChange>> apply_table_definition(std::shared_ptr<LogStore> store,
                                                                  const TableDefinition& definition,
                                                                  const std::string& table);

}  // namespace sluice::delta
