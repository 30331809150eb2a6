// table_changes(...) bound to a plan source; see table_changes_binding.h.
#include "sluice/exec/table_changes_binding.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/common/text.h"
#include "sluice/delta/change_feed.h"

namespace sluice::exec {

namespace {

// 'live.t' and 't' name dataset t; 'delta.`/path`' a table by its location (`sluice sql`).
std::string table_name_of(const std::string& text) {
  std::string name = text;
  if (to_lower(name.substr(0, 5)) == "live.") name = name.substr(5);
  if (to_lower(name.substr(0, 7)) == "delta.`" && name.size() > 8 && name.back() == '`') {
    return "delta." + name.substr(7, name.size() - 8);
  }
  return name;
}

}  // namespace

bool is_table_changes(const sql::TableRef& from) {
  return from.kind == sql::TableRefKind::kFunction && !from.name.empty() &&
         to_lower(from.name.back()) == "table_changes";
}

std::string table_changes_table(const sql::TableRef& from) {
  if (from.args.empty() || from.args[0]->kind != sql::ExprKind::kLiteral || from.args[0]->literal_type != "string") {
    return "";
  }
  return table_name_of(from.args[0]->value);
}

arrow::Result<PlanSource> bind_table_changes(const sql::TableRef& from, const sql::SourceFile& file,
                                             const SelectPlan::SchemaLookup& schema_of) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  constexpr const char* kUsage =
      "table_changes('table', starting_version_or_timestamp[, ending_version_or_timestamp])";
  if (from.args.size() < 2 || from.args.size() > 3) {
    return fail(from.loc, fmt::format("table_changes takes 2 or 3 arguments: {}", kUsage));
  }
  std::vector<std::string> values;
  for (const auto& a : from.args) {
    const bool literal = a->kind == sql::ExprKind::kLiteral &&
                         (a->literal_type == "string" || a->literal_type == "integer");
    if (!literal) {
      return fail(a->loc, fmt::format("table_changes takes literal arguments (a table name string, then versions "
                                      "or timestamp strings): {}", kUsage));
    }
    values.push_back(a->value);
  }
  if (from.args[0]->literal_type != "string") {
    return fail(from.args[0]->loc, fmt::format("table_changes names its table as a string: {}", kUsage));
  }
  for (size_t i = 1; i < values.size(); ++i) {
    auto bound = delta::parse_change_feed_bound(values[i]);
    if (!bound.ok()) return fail(from.args[i]->loc, bound.status().message());
  }
  PlanSource src;
  src.kind = PlanSource::Kind::kDataset;
  src.name = table_name_of(values[0]);
  src.streaming = from.stream;
  src.loc = from.loc;
  auto schema = schema_of(src.name);
  if (!schema.ok()) return fail(from.args[0]->loc, schema.status().message());
  for (const char* column : {delta::kChangeTypeColumn, delta::kCommitVersionColumn, delta::kCommitTimestampColumn}) {
    if ((*schema)->GetFieldByName(column)) {
      return fail(from.args[0]->loc, fmt::format("table '{}' has a column '{}', which its change feed adds; rename "
                                                 "the column to read the feed", src.name, column));
    }
  }
  src.schema = delta::change_feed_schema(**schema);
  src.change_feed = ChangeFeedSource{values[1], values.size() > 2 ? values[2] : ""};
  return src;
}

}  // namespace sluice::exec
