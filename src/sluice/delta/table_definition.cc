// A table brought in line with its pipeline definition by metadata-only commits, as Spark's
// ALTER TABLE SET/UNSET TBLPROPERTIES and CHANGE COLUMN write them (table_definition.h).
#include "sluice/delta/table_definition.h"

#include <arrow/type.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/clustering.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/transaction.h"

namespace sluice::delta {

namespace {

using nlohmann::json;

constexpr const char* kCheckConstraintKeyPrefix = "delta.constraints.";

// Properties that turn on a feature sluice does not write, or that need the data rewritten:
// changing them on an existing table is refused instead of recorded and ignored.
bool needs_unsupported_change(const std::string& key) {
  static const char* const kKeys[] = {"delta.columnMapping.mode", "delta.enableRowTracking",
                                      "delta.enableTypeWidening", "delta.enableIcebergCompatV1",
                                      "delta.enableIcebergCompatV2", "delta.universalFormat.enabledFormats",
                                      "delta.checkpointPolicy"};
  for (const char* k : kKeys) {
    if (key == k) return true;
  }
  return key.rfind("delta.feature.", 0) == 0;
}

std::string list_text(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

const arrow::Field* declared_field(const arrow::FieldVector& fields, const std::string& name) {
  for (const auto& f : fields) {
    if (f->name() == name) return f.get();
  }
  for (const auto& f : fields) {
    if (to_lower(f->name()) == to_lower(name)) return f.get();
  }
  return nullptr;
}

// The kept metadata (comment, tags) a declared field asks for.
std::map<std::string, std::string> wanted_metadata(const arrow::Field& field) {
  std::map<std::string, std::string> out;
  if (!field.metadata()) return out;
  for (int64_t i = 0; i < field.metadata()->size(); ++i) {
    if (is_kept_column_metadata(field.metadata()->key(i))) out[field.metadata()->key(i)] = field.metadata()->value(i);
  }
  return out;
}

// Sets the comment and tags of the Delta field `j` (and its struct fields) to what `declared`
// says, leaving every other metadata entry as it is; the dotted names of the changed columns
// go to `changed`.
void align_field(json& j, const arrow::Field& declared, const std::string& path, std::vector<std::string>& changed) {
  if (!j.contains("metadata") || !j["metadata"].is_object()) j["metadata"] = json::object();
  auto& metadata = j["metadata"];
  const auto wanted = wanted_metadata(declared);
  bool differs = false;
  for (auto it = metadata.begin(); it != metadata.end();) {
    if (is_kept_column_metadata(it.key()) && !wanted.count(it.key())) {
      it = metadata.erase(it);
      differs = true;
    } else {
      ++it;
    }
  }
  for (const auto& [k, v] : wanted) {
    if (!metadata.contains(k) || metadata[k] != v) {
      metadata[k] = v;
      differs = true;
    }
  }
  if (differs) changed.push_back(path);
  if (declared.type()->id() == arrow::Type::STRUCT && j.contains("type") && j["type"].is_object() &&
      j["type"].value("type", "") == "struct" && j["type"].contains("fields")) {
    for (auto& child : j["type"]["fields"]) {
      const auto* d = declared_field(declared.type()->fields(), child.value("name", ""));
      if (d) align_field(child, *d, path + "." + child.value("name", ""), changed);
    }
  }
}

// Writer features a legacy writer version implies and sluice writes, listed when the table
// moves to table features (writer 7) so nothing it promised is lost.
Protocol with_deletion_vectors_from(const Protocol& old) {
  Protocol raised = with_deletion_vectors(old);
  if (old.min_writer_version >= 3 && old.min_writer_version < 7) {
    auto& features = *raised.writer_features;
    if (std::find(features.begin(), features.end(), "checkConstraints") == features.end()) {
      features.push_back("checkConstraints");
    }
  }
  return raised;
}

bool has_writer_feature(const Protocol& p, const std::string& name) {
  return p.writer_features &&
         std::find(p.writer_features->begin(), p.writer_features->end(), name) != p.writer_features->end();
}

std::string defined_keys_text(const std::map<std::string, std::string>& configuration) {
  json keys = json::array();
  for (const auto& [key, value] : configuration) {
    if (key != kDefinedPropertiesKey) keys.push_back(key);
  }
  return keys.dump();
}

// The keys a previous definition recorded; empty when the table has no (readable) record.
std::set<std::string> recorded_keys(const std::map<std::string, std::string>& configuration) {
  std::set<std::string> out;
  auto it = configuration.find(kDefinedPropertiesKey);
  if (it == configuration.end()) return out;
  json keys = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!keys.is_array()) return out;
  for (const auto& k : keys) {
    if (k.is_string()) out.insert(k.get<std::string>());
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> with_defined_properties(std::map<std::string, std::string> configuration) {
  configuration.erase(kDefinedPropertiesKey);
  configuration[kDefinedPropertiesKey] = defined_keys_text(configuration);
  return configuration;
}

arrow::Result<std::vector<MetadataChange>> plan_metadata_changes(const Snapshot& snapshot,
                                                                 const TableDefinition& definition,
                                                                 const std::string& table) {
  const Metadata& current = snapshot.metadata();
  if (current.partition_columns != definition.partition_columns) {
    return invalid(
        "table '{}' is partitioned by ({}) but its definition says {}: partition columns cannot change in "
        "place; keep the table's partitioning, or delete the table's folder so that the next run creates it "
        "anew (its data is then read again from its sources)",
        table, list_text(current.partition_columns),
        definition.partition_columns.empty() ? std::string("no PARTITIONED BY")
                                             : fmt::format("PARTITIONED BY ({})", list_text(definition.partition_columns)));
  }
  std::vector<MetadataChange> out;
  Metadata metadata = current;
  Protocol protocol = snapshot.protocol();

  // CLUSTER BY: new clustering columns are one commit of the delta.clustering domain, as
  // Spark's ALTER TABLE ... CLUSTER BY writes it (files clustered by the old columns stay; the
  // next OPTIMIZE clusters by the new ones). A definition without CLUSTER BY on a clustered
  // table is Spark's CLUSTER BY NONE.
  ARROW_ASSIGN_OR_RAISE(auto clustered, clustering_columns(snapshot, table));
  const auto& wanted_clustering = definition.clustering_columns;
  auto columns_text = [](const std::vector<std::vector<std::string>>& columns) {
    std::vector<std::string> names;
    for (const auto& c : columns) names.push_back(column_path_text(c));
    return names;
  };
  if (!clustered && !wanted_clustering.empty()) {
    return invalid(
        "table '{}' was created without CLUSTER BY, but its definition says CLUSTER BY ({}): sluice "
        "does not turn clustering on for an existing table; run ALTER TABLE ... CLUSTER BY ({}) in "
        "Spark first, or delete the table's folder so that the next run creates it clustered (its "
        "data is then read again from its sources)",
        table, fmt::join(columns_text(wanted_clustering), ", "),
        fmt::join(columns_text(wanted_clustering), ", "));
  }
  if (clustered && *clustered != wanted_clustering) {
    MetadataChange change;
    change.operation = "CLUSTER BY";
    change.operation_parameters = {
        {"oldClusteringColumns", fmt::format("{}", fmt::join(columns_text(*clustered), ","))},
        {"newClusteringColumns", fmt::format("{}", fmt::join(columns_text(wanted_clustering), ","))}};
    change.metadata = metadata;
    change.metadata_changed = false;
    change.domain = clustering_domain(wanted_clustering);
    change.summary = wanted_clustering.empty()
                         ? std::string("clustering columns removed (CLUSTER BY NONE)")
                         : fmt::format("clustering columns ({})",
                                       fmt::join(columns_text(wanted_clustering), ", "));
    out.push_back(std::move(change));
  }

  // SET TBLPROPERTIES: new or changed properties, and the comment (Spark's COMMENT ON TABLE
  // is SET TBLPROPERTIES ('comment' = ...)).
  json set = json::object();
  std::vector<std::string> said;
  for (const auto& [key, value] : definition.configuration) {
    if (key == kDefinedPropertiesKey) continue;  // recorded below, from the definition's keys
    auto it = current.configuration.find(key);
    if (it != current.configuration.end() && it->second == value) continue;
    if (needs_unsupported_change(key)) {
      return arrow::Status::NotImplemented(fmt::format(
          "table '{}': changing table property '{}' to '{}' on an existing table is not supported (it needs a "
          "table feature sluice does not write, or the data rewritten): remove it from the definition, or keep "
          "'{}'",
          table, key, value, it == current.configuration.end() ? std::string("it unset") : it->second));
    }
    ARROW_RETURN_NOT_OK(check_delta_properties(std::map<std::string, std::string>{{key, value}}, table));
    if (key.rfind(kCheckConstraintKeyPrefix, 0) == 0 && snapshot.num_files() > 0) {
      // Spark's ADD CONSTRAINT checks the existing rows; sluice does not scan them here, so a
      // constraint the rows might break is refused on a table that holds any.
      return arrow::Status::NotImplemented(fmt::format(
          "table '{}': {} CHECK constraint '{}' ('{}') on an existing table with data is not supported (its "
          "existing rows are not checked against it): run the update with --full-refresh {} (a streaming table; "
          "one read from Kafka needs 'pipelines.reset.allowed' = 'true') so the table is emptied and its rows "
          "are written again under the constraint, or delete the table's folder so that the next run creates it "
          "anew, or keep {}",
          table, it == current.configuration.end() ? "adding" : "changing",
          key.substr(std::string(kCheckConstraintKeyPrefix).size()), value, table,
          it == current.configuration.end() ? std::string("the constraint out of the definition")
                                            : fmt::format("'{}'", it->second)));
    }
    set[key] = value;
    metadata.configuration[key] = value;
    said.push_back(fmt::format("{}={}", key, value));
  }
  if (definition.description != current.description && definition.description) {
    set["comment"] = *definition.description;
    metadata.description = definition.description;
    said.push_back("comment");
  }
  // The record of the defined keys: updated with the UNSET commit when there is one (so that
  // commit still knows what to unset after a re-plan), else with the SET commit.
  const std::string wanted_record = defined_keys_text(definition.configuration);
  const auto recorded = recorded_keys(current.configuration);
  std::vector<std::string> unset;
  for (const auto& [key, value] : current.configuration) {
    if (key == kDefinedPropertiesKey) continue;
    if (definition.configuration.count(key) || key.rfind(kCheckConstraintKeyPrefix, 0) == 0) continue;
    if (!recorded.count(key)) continue;  // set outside the definition: left alone
    if (needs_unsupported_change(key)) {
      return arrow::Status::NotImplemented(fmt::format(
          "table '{}' has table property '{}' = '{}' but its definition no longer sets it: removing it from an "
          "existing table is not supported; add it back to the definition's TBLPROPERTIES",
          table, key, value));
    }
    unset.push_back(key);
  }
  auto record_it = current.configuration.find(kDefinedPropertiesKey);
  const bool record_differs = record_it == current.configuration.end() || record_it->second != wanted_record;
  if (record_differs && unset.empty()) {
    set[kDefinedPropertiesKey] = wanted_record;
    metadata.configuration[kDefinedPropertiesKey] = wanted_record;
    said.push_back(kDefinedPropertiesKey);
  }
  if (!set.empty()) {
    MetadataChange change;
    change.operation = "SET TBLPROPERTIES";
    change.operation_parameters = {{"properties", set.dump()}};
    std::optional<Protocol> raised;
    const bool dv_now = metadata.configuration.count("delta.enableDeletionVectors") &&
                        to_lower(metadata.configuration.at("delta.enableDeletionVectors")) == "true";
    if (dv_now && !has_writer_feature(protocol, "deletionVectors")) raised = with_deletion_vectors_from(protocol);
    if (auto cdf = protocol_for_properties(raised.value_or(protocol), metadata.configuration)) raised = *cdf;
    if (raised) {
      protocol = *raised;
      change.protocol = *raised;
    }
    change.metadata = metadata;
    change.summary = "set " + list_text(said);
    out.push_back(std::move(change));
  }

  // UNSET TBLPROPERTIES: properties the definition no longer names (not CHECK constraints),
  // and a comment it no longer has.
  const bool record_with_unset = !unset.empty() && record_differs;
  if (!definition.description && current.description) unset.push_back("comment");
  if (!unset.empty()) {
    MetadataChange change;
    change.operation = "UNSET TBLPROPERTIES";
    change.operation_parameters = {{"properties", json(unset).dump()}, {"ifExists", "true"}};
    for (const auto& key : unset) {
      if (key == "comment") {
        metadata.description.reset();
      } else {
        metadata.configuration.erase(key);
      }
    }
    if (record_with_unset) metadata.configuration[kDefinedPropertiesKey] = wanted_record;
    change.metadata = metadata;
    change.summary = "unset " + list_text(unset);
    out.push_back(std::move(change));
  }

  // CHANGE COLUMN: a column's comment or tags, one commit per top-level column.
  if (definition.schema) {
    json schema = json::parse(metadata.schema_string, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded() || !schema.contains("fields") || !schema["fields"].is_array()) {
      return invalid("table '{}': its schemaString is not a Delta struct", table);
    }
    for (auto& field : schema["fields"]) {
      const std::string name = field.value("name", "");
      const auto* declared = declared_field(definition.schema->fields(), name);
      if (!declared) continue;  // a column the definition does not produce keeps its metadata
      std::vector<std::string> changed;
      align_field(field, *declared, name, changed);
      if (changed.empty()) continue;
      metadata.schema_string = schema.dump();
      MetadataChange change;
      change.operation = "CHANGE COLUMN";
      change.operation_parameters = {{"column", field.dump()}};
      change.metadata = metadata;
      change.summary = "comment/tags of column " + list_text(changed);
      out.push_back(std::move(change));
    }
  }
  return out;
}

arrow::Result<std::vector<CommittedChange>> apply_table_definition(std::shared_ptr<LogStore> store,
                                                                  const TableDefinition& definition,
                                                                  const std::string& table) {
  std::vector<CommittedChange> done;
  constexpr int kAttempts = 10;
  constexpr size_t kMostCommits = 1000;  // a definition that never matches is a bug, not a loop
  for (int attempt = 1;; ++attempt) {
    if (done.size() >= kMostCommits) {
      return arrow::Status::UnknownError(fmt::format(
          "table '{}': {} metadata commits did not bring it in line with its definition; report this", table,
          done.size()));
    }
    ARROW_ASSIGN_OR_RAISE(auto snapshot, load_latest_if_exists(*store));
    if (!snapshot) return done;
    ARROW_ASSIGN_OR_RAISE(auto changes, plan_metadata_changes(*snapshot, definition, table));
    if (changes.empty()) return done;
    ARROW_RETURN_NOT_OK(check_write_supported(changes.front().protocol.value_or(snapshot->protocol()),
                                              changes.front().metadata, table));
    // One commit per change; a lost race re-reads the table and plans again (a concurrent
    // writer may have made the same change).
    Transaction txn(store, snapshot);
    if (changes.front().protocol) txn.set_protocol(*changes.front().protocol);
    if (changes.front().metadata_changed) txn.set_metadata(changes.front().metadata);
    if (changes.front().domain) txn.set_domain_metadata(*changes.front().domain);
    CommitOptions co;
    co.operation = changes.front().operation;
    co.operation_parameters = changes.front().operation_parameters;
    auto committed = txn.commit(co);
    if (!committed.ok()) {
      if (is_commit_conflict(committed.status()) && attempt < kAttempts) continue;
      return with_context(committed.status(), fmt::format("{} of table '{}'", co.operation, table));
    }
    done.push_back({committed->version.value(), co.operation, changes.front().summary});
    attempt = 0;
  }
}

}  // namespace sluice::delta
