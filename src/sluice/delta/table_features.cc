// Protocol support checks for reading and writing, and the table properties writers honour.
#include "sluice/delta/table_features.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::delta {

namespace {

constexpr const char* kConstraintPrefix = "delta.constraints.";

// Reader features sluice implements (vacuumProtocolCheck only asks VACUUM to check the
// reader and writer protocol, which delta/vacuum.cc does; deletionVectors: every scan drops the
// rows they mark).
const std::set<std::string>& supported_reader_features() {
  static const std::set<std::string> kFeatures = {"deletionVectors", "timestampNtz",
                                                  "vacuumProtocolCheck"};
  return kFeatures;
}

// Writer features sluice honours on every write: appendOnly (no removes when
// delta.appendOnly=true), invariants (only while no column declares one), checkConstraints
// (evaluated on every batch, see constraint_checker.h), changeDataFeed (DELETE/UPDATE/MERGE
// write _change_data files, see change_data.h; appends and overwrites need none), timestampNtz,
// deletionVectors (removes carry the file's vector; DML writes vectors when enabled),
// domainMetadata (every domain is replayed, committed on and checkpointed; see snapshot.h),
// clustering (the delta.clustering domain is kept; appends may add unclustered files and
// OPTIMIZE clusters them, see delta/clustering.h and dml/optimize.h).
const std::set<std::string>& supported_writer_features() {
  static const std::set<std::string> kFeatures = {
      "appendOnly",   "invariants",          "checkConstraints", "changeDataFeed",
      "timestampNtz", "vacuumProtocolCheck", "deletionVectors",  "domainMetadata",
      "clustering"};
  return kFeatures;
}

// Field-metadata keys a writer must act on, with the feature they belong to.
constexpr std::pair<const char*, const char*> kFieldMetadataFeatures[] = {
    {"delta.generationExpression", "generatedColumns"},
    {"delta.identity.start", "identityColumns"},
    {"delta.invariants", "invariants"},
    {"delta.columnMapping.id", "columnMapping"},
};

// Features whose field metadata a column of `type` (a schema JSON type) uses, with the
// dotted column name.
void features_in_use(const nlohmann::json& type, const std::string& prefix,
                     std::vector<std::pair<std::string, std::string>>* out) {
  if (!type.is_object()) return;
  if (auto fields = type.find("fields"); fields != type.end() && fields->is_array()) {
    for (const auto& f : *fields) {
      if (!f.is_object()) continue;
      const std::string name =
          prefix + (f.contains("name") && f["name"].is_string() ? f["name"].get<std::string>() : "?");
      if (auto md = f.find("metadata"); md != f.end() && md->is_object()) {
        for (const auto& [key, feature] : kFieldMetadataFeatures) {
          if (md->contains(key)) out->emplace_back(feature, name);
        }
      }
      if (auto t = f.find("type"); t != f.end()) features_in_use(*t, name + ".", out);
    }
  }
  for (const char* nested : {"elementType", "keyType", "valueType"}) {
    if (auto t = type.find(nested); t != type.end()) features_in_use(*t, prefix, out);
  }
}

}  // namespace

arrow::Status check_read_supported(const Protocol& protocol, const std::string& table) {
  if (protocol.min_reader_version > 3 || protocol.min_reader_version < 1) {
    return arrow::Status::NotImplemented(fmt::format(
        "table {} needs Delta reader version {}; sluice reads versions 1 to 3", table,
        protocol.min_reader_version));
  }
  if (protocol.min_reader_version == 2) {
    return arrow::Status::NotImplemented(fmt::format(
        "table {} needs Delta reader version 2 (column mapping), which sluice does not read yet",
        table));
  }
  if (protocol.min_reader_version == 3 && protocol.reader_features) {
    std::vector<std::string> unsupported;
    for (const auto& f : *protocol.reader_features) {
      if (!supported_reader_features().count(f)) unsupported.push_back(f);
    }
    if (unsupported.size() == 1) {
      return arrow::Status::NotImplemented(fmt::format(
          "table {} uses Delta reader feature '{}', which sluice does not support", table,
          unsupported[0]));
    }
    if (!unsupported.empty()) {
      return arrow::Status::NotImplemented(fmt::format(
          "table {} uses Delta reader features '{}', which sluice does not support", table,
          fmt::join(unsupported, "', '")));
    }
  }
  return arrow::Status::OK();
}

arrow::Status check_write_supported(const Protocol& protocol, const Metadata& metadata,
                                    const std::string& table) {
  if (protocol.min_writer_version > 7 || protocol.min_writer_version < 1) {
    return arrow::Status::NotImplemented(fmt::format(
        "table {} needs Delta writer version {}; sluice writes versions 1 to 7", table,
        protocol.min_writer_version));
  }
  // Declared features (writer version 7), then features a legacy version allows and the
  // schema or properties actually use.
  std::vector<std::string> unsupported;
  if (protocol.min_writer_version == 7 && protocol.writer_features) {
    for (const auto& f : *protocol.writer_features) {
      if (!supported_writer_features().count(f)) unsupported.push_back(f);
    }
  }
  std::vector<std::pair<std::string, std::string>> in_use;  // (feature, column)
  auto schema = nlohmann::json::parse(metadata.schema_string, nullptr, false);
  if (!schema.is_discarded()) features_in_use(schema, "", &in_use);
  auto mode = metadata.configuration.find("delta.columnMapping.mode");
  if (mode != metadata.configuration.end() && mode->second != "none") {
    in_use.emplace_back("columnMapping", "(delta.columnMapping.mode = " + mode->second + ")");
  }
  std::vector<std::string> used_columns;
  for (const auto& [feature, column] : in_use) {
    // invariants: a declared-but-unused feature is fine (Spark lists it on every v7 table);
    // an invariant on a column is not evaluated by sluice, so refuse it.
    if (feature != "invariants" && supported_writer_features().count(feature)) continue;
    if (std::find(unsupported.begin(), unsupported.end(), feature) == unsupported.end()) {
      unsupported.push_back(feature);
    }
    used_columns.push_back(fmt::format("{} uses {}", column, feature));
  }
  if (unsupported.empty()) return arrow::Status::OK();
  return arrow::Status::NotImplemented(fmt::format(
      "table {} requires Delta writer table feature(s) that sluice does not implement: {}{}; "
      "sluice refuses to write it, since a write that ignores them would break what they "
      "promise other readers. Write this table with an engine that supports them (Spark, "
      "delta-rs), or write to another table",
      table, fmt::join(unsupported, ", "),
      used_columns.empty() ? "" : fmt::format(" ({})", fmt::join(used_columns, "; "))));
}

bool writes_deletion_vectors(const Protocol& protocol, const Metadata& metadata) {
  auto it = metadata.configuration.find("delta.enableDeletionVectors");
  if (it == metadata.configuration.end()) return false;
  std::string v = it->second;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  auto lists = [](const std::optional<std::vector<std::string>>& features) {
    return features &&
           std::find(features->begin(), features->end(), "deletionVectors") != features->end();
  };
  return v == "true" && lists(protocol.reader_features) && lists(protocol.writer_features);
}

Protocol with_deletion_vectors(Protocol protocol) {
  auto add = [](std::optional<std::vector<std::string>>& features,
                std::initializer_list<const char*> names) {
    if (!features) features.emplace();
    for (const char* name : names) {
      if (std::find(features->begin(), features->end(), name) == features->end()) {
        features->push_back(name);
      }
    }
  };
  if (protocol.min_reader_version < 3) protocol.reader_features.reset();
  if (protocol.min_writer_version < 7) {
    protocol.writer_features.reset();
    add(protocol.writer_features, {"appendOnly", "invariants"});  // what version 2 implied
  }
  protocol.min_reader_version = 3;
  protocol.min_writer_version = 7;
  add(protocol.reader_features, {"deletionVectors"});
  add(protocol.writer_features, {"deletionVectors"});
  return protocol;
}

bool is_append_only(const Metadata& metadata) {
  auto it = metadata.configuration.find("delta.appendOnly");
  if (it == metadata.configuration.end()) return false;
  std::string v = it->second;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true";
}

bool change_data_feed_enabled(const std::map<std::string, std::string>& configuration) {
  auto it = configuration.find("delta.enableChangeDataFeed");
  if (it == configuration.end()) return false;
  std::string v = it->second;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true";
}

std::optional<Protocol> protocol_for_properties(const Protocol& protocol,
                                                const std::map<std::string, std::string>& configuration) {
  // What the properties turn on: the writer feature, and the legacy writer version that implies it.
  std::vector<std::pair<const char*, int>> needed;
  const std::string prefix = kConstraintPrefix;
  if (auto it = configuration.lower_bound(prefix);
      it != configuration.end() && it->first.compare(0, prefix.size(), prefix) == 0) {
    needed.emplace_back("checkConstraints", 3);  // PROTOCOL.md "CHECK Constraints"
  }
  if (change_data_feed_enabled(configuration)) needed.emplace_back("changeDataFeed", 4);
  Protocol raised = protocol;
  bool changed = false;
  for (const auto& [feature, version] : needed) {
    if (raised.min_writer_version >= 7) {
      std::vector<std::string> features = raised.writer_features.value_or(std::vector<std::string>{});
      if (std::find(features.begin(), features.end(), feature) != features.end()) continue;
      features.push_back(feature);
      raised.writer_features = std::move(features);
      changed = true;
    } else if (raised.min_writer_version < version) {
      raised.min_writer_version = version;
      changed = true;
    }
  }
  if (!changed) return std::nullopt;
  return raised;
}

namespace {
constexpr const char* kSupportedDeltaProperties[] = {
    "delta.appendOnly",          "delta.checkpointInterval",        "delta.checkpointRetentionDuration",
    "delta.logRetentionDuration", "delta.deletedFileRetentionDuration", "delta.enableExpiredLogCleanup",
    "delta.enableChangeDataFeed", "delta.enableDeletionVectors",     "delta.isolationLevel",
    "delta.targetFileSize",       "delta.autoOptimize.autoCompact"};

// DLT's table properties (pipelines.*) sluice acts on. One key a line: other slices add theirs.
constexpr const char* kSupportedPipelinesProperties[] = {
    "pipelines.reset.allowed",
    "pipelines.cdc.tombstoneGCThresholdInSeconds",
    "pipelines.cdc.tombstoneGCFrequencyInSeconds",  // refused with its reason by the APPLY CHANGES planner
    "pipelines.autoOptimize.managed",
    "pipelines.autoOptimize.zOrderCols",
    "pipelines.retention",         // table_retention.h
    "pipelines.retention.column",  // table_retention.h
};

bool is_supported_pipelines_property(const std::string& key) {
  for (const char* k : kSupportedPipelinesProperties) {
    if (key == k) return true;
  }
  return false;
}

std::string lower_text(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}
}  // namespace

bool is_supported_delta_property(const std::string& key) {
  const std::string lower = lower_text(key);
  if (lower.rfind("pipelines.", 0) == 0) return is_supported_pipelines_property(key);
  if (lower.rfind("delta.", 0) != 0) return true;
  if (key.rfind(kConstraintPrefix, 0) == 0 && key.size() > std::string(kConstraintPrefix).size()) return true;
  for (const char* k : kSupportedDeltaProperties) {
    if (key == k) return true;
  }
  return false;
}

arrow::Status check_delta_properties(const std::map<std::string, std::string>& configuration,
                                     const std::string& table) {
  for (const auto& [key, value] : configuration) {
    if (key == "delta.checkpointInterval") {
      // Honoured as a number (transaction.h): "5abc" or 0 would otherwise fall back to 10 unsaid.
      const auto n = parse_int64(value, "delta.checkpointInterval");
      if (!n.ok() || *n <= 0) {
        return arrow::Status::Invalid(fmt::format(
            "table '{}': delta.checkpointInterval = '{}' is not a positive whole number of commits; set it to "
            "e.g. 10 (a checkpoint every 10 commits)",
            table, quote_for_error(value)));
      }
    }
    if (key == "delta.autoOptimize.autoCompact") {
      const std::string v = lower_text(value);
      if (v == "true" || v == "false" || v == "legacy") continue;
      return arrow::Status::NotImplemented(fmt::format(
          "table '{}': delta.autoOptimize.autoCompact = '{}' is not supported: write 'true' (compact small files "
          "into files of delta.targetFileSize, else 128 MB), 'legacy' (the same) or 'false' (no auto "
          "compaction){}",
          table, value,
          v == "auto" ? "; 'auto' (Databricks' target size tuned to the table's size) is not implemented" : ""));
    }
    if (is_supported_delta_property(key)) continue;
    if (key == "delta.autoOptimize.optimizeWrite") {
      return arrow::Status::NotImplemented(fmt::format(
          "table '{}': delta.autoOptimize.optimizeWrite is not implemented by sluice (it would be ignored): each "
          "commit writes one file per partition and writer lane, up to delta.targetFileSize; the small files a "
          "streaming table gathers are merged by auto compaction, which is on by default "
          "(pipelines.autoOptimize.managed, delta.autoOptimize.autoCompact). Remove the property",
          table));
    }
    if (to_lower(key).rfind("pipelines.", 0) == 0) {
      std::vector<std::string> known(std::begin(kSupportedPipelinesProperties), std::end(kSupportedPipelinesProperties));
      const std::string best = closest_match(key, known);
      return arrow::Status::NotImplemented(fmt::format(
          "table '{}': table property '{}' is not supported by sluice{} (a pipeline setting sluice does not act "
          "on would be silently ignored): remove it from the table's TBLPROPERTIES / pipeline.yaml properties. "
          "Supported pipelines.* properties: {}",
          table, key, best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best), fmt::join(known, ", ")));
    }
    return arrow::Status::NotImplemented(fmt::format(
        "table '{}': table property '{}' is not supported by sluice (it turns on a Delta feature sluice does "
        "not write, or sluice would ignore it, and other engines would then misread or refuse the table): "
        "remove it from the table's TBLPROPERTIES / pipeline.yaml properties. Supported delta.* properties: "
        "{}, delta.constraints.<name>",
        table, key, fmt::join(kSupportedDeltaProperties, ", ")));
  }
  return arrow::Status::OK();
}

std::vector<CheckConstraint> check_constraints_of(const Metadata& metadata) {
  std::vector<CheckConstraint> out;
  const std::string prefix = kConstraintPrefix;
  for (auto it = metadata.configuration.lower_bound(prefix);
       it != metadata.configuration.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    out.push_back({it->first.substr(prefix.size()), it->second});
  }
  return out;
}

}  // namespace sluice::delta
