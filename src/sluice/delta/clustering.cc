// Clustering columns: the delta.clustering domain and delta-spark's rules for them.
#include "sluice/delta/clustering.h"

#include <arrow/type.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/stats.h"

namespace sluice::delta {

namespace {

bool lists(const std::optional<std::vector<std::string>>& features, const char* name) {
  return features && std::find(features->begin(), features->end(), name) != features->end();
}

// Leaf columns of `type` (a struct counts its leaves; anything else is one).
int leaf_count(const arrow::DataType& type) {
  if (type.id() != arrow::Type::STRUCT) return 1;
  int n = 0;
  for (const auto& f : type.fields()) n += leaf_count(*f->type());
  return n;
}

// The 0-based leaf position of the field at `path`, or -1.
int leaf_position(const arrow::FieldVector& fields, const ColumnPath& path, size_t depth) {
  int before = 0;
  for (const auto& f : fields) {
    if (to_lower(f->name()) == to_lower(path[depth])) {
      if (depth + 1 == path.size()) return before;
      if (f->type()->id() != arrow::Type::STRUCT) return -1;
      const int inner = leaf_position(f->type()->fields(), path, depth + 1);
      return inner < 0 ? -1 : before + inner;
    }
    before += leaf_count(*f->type());
  }
  return -1;
}

}  // namespace

bool is_clustered(const Protocol& protocol) {
  return lists(protocol.writer_features, kClusteringFeature);
}

arrow::Result<std::optional<std::vector<ColumnPath>>> clustering_columns(const Snapshot& snapshot,
                                                                         const std::string& table) {
  if (!is_clustered(snapshot.protocol())) return std::nullopt;
  const DomainMetadata* domain = snapshot.domain(kClusteringDomain);
  // A table Spark made clustered and never wrote the domain for is clustered by nothing.
  if (domain == nullptr) return std::vector<ColumnPath>{};
  auto j = nlohmann::json::parse(domain->configuration, nullptr, false);
  auto columns = j.is_object() ? j.find("clusteringColumns") : j.end();
  auto bad = [&] {
    return invalid("table {}: its {} domain metadata '{}' does not hold clusteringColumns as a list "
                   "of column paths; the log is corrupt (restore it, or ALTER TABLE ... CLUSTER BY "
                   "in Spark to write it again)",
                   table, kClusteringDomain, domain->configuration);
  };
  if (!j.is_object() || columns == j.end() || !columns->is_array()) return bad();
  std::vector<ColumnPath> out;
  for (const auto& c : *columns) {
    if (!c.is_array() || c.empty()) return bad();
    ColumnPath path;
    for (const auto& part : c) {
      if (!part.is_string()) return bad();
      path.push_back(part.get<std::string>());
    }
    out.push_back(std::move(path));
  }
  return out;
}

DomainMetadata clustering_domain(const std::vector<ColumnPath>& columns) {
  nlohmann::json paths = nlohmann::json::array();
  for (const auto& c : columns) paths.push_back(c);
  // Insertion order as Spark writes it (clusteringColumns, then domainName).
  nlohmann::ordered_json config;
  config["clusteringColumns"] = paths;
  config["domainName"] = kClusteringDomain;
  return DomainMetadata{kClusteringDomain, config.dump(), false};
}

Protocol with_clustering(Protocol protocol) {
  auto add = [](std::optional<std::vector<std::string>>& features, const char* name) {
    if (!features) features.emplace();
    if (std::find(features->begin(), features->end(), name) == features->end()) {
      features->push_back(name);
    }
  };
  if (protocol.min_writer_version < 7) {
    // What the legacy version implied, listed (delta-spark lists invariants and appendOnly).
    protocol.writer_features.reset();
    protocol.writer_features.emplace();
    if (protocol.min_writer_version >= 2) {
      add(protocol.writer_features, "invariants");
      add(protocol.writer_features, "appendOnly");
    }
    if (protocol.min_writer_version >= 3) add(protocol.writer_features, "checkConstraints");
    if (protocol.min_writer_version >= 4) add(protocol.writer_features, "changeDataFeed");
    protocol.min_writer_version = 7;
  }
  // Spark's order: domainMetadata, clustering first.
  auto& features = *protocol.writer_features;
  std::vector<std::string> ordered = {kDomainMetadataFeature, kClusteringFeature};
  for (const auto& f : features) {
    if (f != kDomainMetadataFeature && f != kClusteringFeature) ordered.push_back(f);
  }
  features = std::move(ordered);
  return protocol;
}

std::string column_path_text(const ColumnPath& path) {
  std::string out;
  for (const auto& part : path) {
    if (!out.empty()) out += '.';
    out += part.find('.') == std::string::npos ? part : "`" + part + "`";
  }
  return out;
}

ColumnPath column_path_of(const std::string& dotted) {
  ColumnPath out;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    out.push_back(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return out;
    start = dot + 1;
  }
}

std::shared_ptr<arrow::Field> field_at_path(const arrow::Schema& schema, const ColumnPath& path) {
  const arrow::FieldVector* fields = &schema.fields();
  std::shared_ptr<arrow::Field> found;
  for (size_t depth = 0; depth < path.size(); ++depth) {
    found = nullptr;
    for (const auto& f : *fields) {
      if (to_lower(f->name()) == to_lower(path[depth])) {
        found = f;
        break;
      }
    }
    if (!found) return nullptr;
    if (depth + 1 < path.size()) {
      if (found->type()->id() != arrow::Type::STRUCT) return nullptr;
      fields = &found->type()->fields();
    }
  }
  return found;
}

arrow::Result<ColumnPath> check_clustering_column(const arrow::Schema& schema, const ColumnPath& path) {
  const std::string text = column_path_text(path);
  auto field = field_at_path(schema, path);
  if (!field) {
    std::vector<std::string> names;
    for (const auto& f : schema.fields()) names.push_back(f->name());
    return invalid("CLUSTER BY names '{}', which is not a column of the table (its columns: {})", text,
                   fmt::join(names, ", "));
  }
  if (!has_min_max(*field->type())) {
    return invalid(
        "CLUSTER BY is not supported for column '{}' of type {}: Delta keeps no min/max statistics "
        "for it, so clustering could not skip files (cluster by number, string, date, timestamp "
        "or decimal columns)",
        text, delta_type_name(*field->type()));
  }
  const int position = leaf_position(schema.fields(), path, 0);
  if (position >= kStatsIndexedLeafColumns) {
    return invalid(
        "CLUSTER BY column '{}' is leaf column {} of the table, but Delta readers keep statistics "
        "on the first {} only and clustering needs them; move the column among the first {}",
        text, position + 1, kStatsIndexedLeafColumns, kStatsIndexedLeafColumns);
  }
  // As the schema spells it.
  ColumnPath spelled;
  const arrow::FieldVector* fields = &schema.fields();
  for (const auto& part : path) {
    for (const auto& f : *fields) {
      if (to_lower(f->name()) == to_lower(part)) {
        spelled.push_back(f->name());
        fields = &f->type()->fields();
        break;
      }
    }
  }
  return spelled;
}

}  // namespace sluice::delta
