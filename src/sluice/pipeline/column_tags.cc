// Column tags of a planned dataset: declared with TAGS (...) on a column, or taken over along
// column lineage from the columns it reads (SqlPlanner::tag_columns, docs/decisions.md).
#include <arrow/type.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>

#include <map>
#include <regex>
#include <set>

#include "sluice/common/bounded_regex.h"
#include "sluice/common/text.h"
#include "sluice/delta/schema.h"
#include "sluice/pipeline/sql_planner.h"

namespace sluice::pipeline {

namespace {

using Derivation = exec::SelectPlan::Derivation;

// A tag taken over from upstream columns.
struct TakenTag {
  std::set<std::string> values;
  std::set<std::string> from;  // "dataset.column"
  std::string derivation;      // identity, renamed or derived: the one that carries most
};

// The tags (name -> value) in a field's metadata, without the notes on where they came from.
std::map<std::string, std::string> tags_of(const arrow::Field& field) {
  std::map<std::string, std::string> out;
  if (!field.metadata()) return out;
  const std::string prefix = delta::kColumnTagPrefix;
  for (int64_t i = 0; i < field.metadata()->size(); ++i) {
    const auto& key = field.metadata()->key(i);
    if (key.rfind(prefix, 0) != 0) continue;
    const auto tag = key.substr(prefix.size());
    if (tag.find('.') == std::string::npos) out[tag] = field.metadata()->value(i);
  }
  return out;
}

std::string comma_list(const std::set<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

int derivation_rank(const std::string& d) { return d == "identity" ? 3 : d == "renamed" ? 2 : 1; }

}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> SqlPlanner::tag_columns(const Dataset& d,
                                                                      std::shared_ptr<arrow::Schema> schema) const {
  static const std::regex kTagName("[A-Za-z0-9_-]+");
  const auto& file = graph_.files[d.file];
  std::map<std::string, const sql::ColumnDef*> declared;  // lower-case name
  for (const auto& c : d.definition->columns) {
    for (const auto& [tag, value] : c.tags) {
      if (!regex_match_bounded(tag, kTagName)) {
        return arrow::Status::Invalid(sql::format_error(file, c.tags_loc, fmt::format(
            "tag name '{}' on column '{}': a tag name is letters, digits, '_' and '-'; rename the tag",
            quote_for_error(tag), c.name)));
      }
    }
    declared[to_lower(c.name)] = &c;
  }
  // Tags taken over from the columns each output column reads, in every flow (by name, as
  // flows insert BY NAME).
  std::map<std::string, std::map<std::string, TakenTag>> taken;  // column -> tag -> ...
  for (const auto& fname : d.flows) {
    auto plan = flow_plans_.find(fname);
    if (plan == flow_plans_.end()) continue;
    const auto derivations = plan->second.column_derivations();
    const auto& out = *plan->second.output_schema();
    for (int i = 0; i < out.num_fields() && i < static_cast<int>(derivations.size()); ++i) {
      const auto& column = out.field(i)->name();
      for (const auto& [source, how] : derivations[i]) {
        if (how == Derivation::kRemoved) continue;
        const auto dot = source.rfind('.');
        if (dot == std::string::npos || source.rfind("kafka:", 0) == 0) continue;
        auto upstream = schemas_.find(source.substr(0, dot));
        if (upstream == schemas_.end()) continue;
        auto field = upstream->second->GetFieldByName(source.substr(dot + 1));
        if (!field) continue;
        const std::string kind = how == Derivation::kDerived ? "derived"
                                 : to_lower(field->name()) == to_lower(column) ? "identity"
                                                                              : "renamed";
        for (const auto& [tag, value] : tags_of(*field)) {
          auto& t = taken[to_lower(column)][tag];
          t.values.insert(value);
          t.from.insert(source);
          if (t.derivation.empty() || derivation_rank(kind) > derivation_rank(t.derivation)) t.derivation = kind;
        }
      }
    }
  }
  arrow::FieldVector fields;
  bool changed = false;
  for (const auto& field : schema->fields()) {
    std::vector<std::string> keys, values;
    bool had_tags = false;
    if (field->metadata()) {  // its comment; tags are recomputed below
      for (int64_t i = 0; i < field->metadata()->size(); ++i) {
        if (field->metadata()->key(i).rfind(delta::kColumnTagPrefix, 0) == 0) {
          had_tags = true;
          continue;
        }
        keys.push_back(field->metadata()->key(i));
        values.push_back(field->metadata()->value(i));
      }
    }
    std::set<std::string> own;
    if (auto c = declared.find(to_lower(field->name())); c != declared.end()) {
      for (const auto& [tag, value] : c->second->tags) {
        if (!own.insert(tag).second) continue;
        keys.push_back(delta::kColumnTagPrefix + tag);
        values.push_back(value);
      }
    }
    if (auto from = taken.find(to_lower(field->name())); from != taken.end()) {
      for (const auto& [tag, info] : from->second) {
        if (own.count(tag)) continue;  // a declared tag says what the column holds
        const std::string prefix = delta::kColumnTagPrefix + tag;
        keys.push_back(prefix);
        values.push_back(comma_list(info.values));
        keys.push_back(prefix + ".derivation");
        values.push_back(info.derivation);
        keys.push_back(prefix + ".from");
        values.push_back(comma_list(info.from));
      }
    }
    const auto t = taken.find(to_lower(field->name()));
    const bool tagged = !own.empty() || (t != taken.end() && !t->second.empty());
    if (!had_tags && !tagged) {  // untouched: an untagged pipeline plans exactly as before
      fields.push_back(field);
      continue;
    }
    changed = true;
    fields.push_back(keys.empty() ? field->RemoveMetadata() : field->WithMetadata(arrow::key_value_metadata(keys, values)));
  }
  if (!changed) return schema;
  return arrow::schema(fields, schema->metadata());
}

}  // namespace sluice::pipeline
