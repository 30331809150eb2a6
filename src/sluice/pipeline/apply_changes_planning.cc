// Planning of APPLY CHANGES / AUTO CDC flows: what the executor (apply_changes_flow.cc) does not
// do yet is refused here, so that `validate` says so before any data moves.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "sluice/common/text.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/pipeline/read_kafka_binding.h"
#include "sluice/pipeline/sql_planner.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/types.h"

namespace sluice::pipeline {

bool apply_changes_writes(const sql::ApplyChanges& ac, const std::string& column) {
  auto named = [&](const std::vector<std::string>& list) {
    return std::find(list.begin(), list.end(), column) != list.end();
  };
  if (!ac.columns.empty() && !named(ac.columns) && !named(ac.keys)) return false;
  return !named(ac.except_columns);
}

namespace {
// The columns an expression names (their last part).
void named_columns(const sql::Expr& e, std::set<std::string>& out) {
  if (e.kind == sql::ExprKind::kColumn && !e.parts.empty()) out.insert(e.parts.back());
  for (const auto& arg : e.args) {
    if (arg) named_columns(*arg, out);
  }
}
}  // namespace

std::vector<std::pair<std::string, std::set<std::string>>> SqlPlanner::apply_changes_lineage(
    const Flow& flow, const exec::SelectPlan& changes) const {
  const auto& ac = *flow.apply_changes;
  const auto& in = *changes.output_schema();
  const auto sources = changes.lineage();
  std::vector<std::pair<std::string, std::set<std::string>>> out;
  for (int i = 0; i < in.num_fields(); ++i) {
    if (apply_changes_writes(ac, in.field(i)->name())) out.emplace_back(in.field(i)->name(), sources[i]);
  }
  if (ac.scd_type == 2) {
    // __START_AT and __END_AT hold SEQUENCE BY values of the change rows.
    std::set<std::string> sequence_columns, sequence_sources;
    named_columns(*ac.sequence_by, sequence_columns);
    for (int i = 0; i < in.num_fields(); ++i) {
      if (sequence_columns.count(in.field(i)->name())) sequence_sources.insert(sources[i].begin(), sources[i].end());
    }
    out.emplace_back("__START_AT", sequence_sources);
    out.emplace_back("__END_AT", sequence_sources);
  }
  return out;
}

// APPLY CHANGES: the source is read as a stream; keys, SEQUENCE BY, APPLY AS DELETE/TRUNCATE
// and COLUMNS are bound against it. Returns the target's schema (SCD type 2 adds __START_AT
// and __END_AT of the SEQUENCE BY type, as DLT does).
arrow::Result<std::shared_ptr<arrow::Schema>> SqlPlanner::check_apply_changes(
    const Flow& flow, const exec::SelectPlan::InlineLookup& inline_views, std::optional<exec::SelectPlan>* changes) {
  const auto& ac = *flow.apply_changes;
  const auto& file = graph_.files[flow.file];
  sql::Query q;
  q.loc = ac.loc;
  sql::Select sel;
  sel.loc = ac.loc;
  auto star = std::make_unique<sql::Expr>();
  star->kind = sql::ExprKind::kStar;
  star->loc = ac.loc;
  sel.items.push_back({std::move(star), ""});
  auto source = std::make_unique<sql::TableRef>();
  source->kind = ac.source->kind;
  source->loc = ac.source->loc;
  source->name = ac.source->name;
  source->stream = ac.source->stream;
  source->query = ac.source->query;
  sel.from = std::move(source);
  q.selects.push_back(std::move(sel));
  ARROW_ASSIGN_OR_RAISE(auto plan, exec::SelectPlan::make(q, file, schema_lookup(), inline_views, read_kafka_binder()));
  const auto& in = plan.output_schema();
  exec::ExpressionBinder binder(file, in);
  auto require_column = [&](const std::string& name, sql::Location at) -> arrow::Status {
    if (!in->GetFieldByName(name)) {
      std::vector<std::string> names;
      for (const auto& f : in->fields()) names.push_back(f->name());
      std::string best = closest_match(name, names);
      return arrow::Status::Invalid(sql::format_error(file, at, fmt::format(
          "APPLY CHANGES: '{}' is not a column of the source{}", name,
          best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best))));
    }
    return arrow::Status::OK();
  };
  for (const auto& k : ac.keys) ARROW_RETURN_NOT_OK(require_column(k, ac.loc));
  ARROW_ASSIGN_OR_RAISE(auto sequence, binder.bind(*ac.sequence_by));
  for (const auto* cond : {ac.delete_when.get(), ac.truncate_when.get()}) {
    if (!cond) continue;
    ARROW_ASSIGN_OR_RAISE(auto b, binder.bind(*cond));
    if (b.type->id() != arrow::Type::BOOL) {
      return arrow::Status::Invalid(sql::format_error(file, cond->loc, "APPLY AS ... WHEN needs a BOOLEAN condition"));
    }
  }
  for (const auto& c : ac.columns) ARROW_RETURN_NOT_OK(require_column(c, ac.loc));
  for (const auto& c : ac.except_columns) ARROW_RETURN_NOT_OK(require_column(c, ac.loc));
  arrow::FieldVector fields;
  for (const auto& f : in->fields()) {
    if (apply_changes_writes(ac, f->name())) fields.push_back(f);
  }
  if (ac.scd_type == 2) {
    fields.push_back(arrow::field("__START_AT", sequence.type));
    fields.push_back(arrow::field("__END_AT", sequence.type));
  }
  if (changes) changes->emplace(std::move(plan));
  return arrow::schema(fields);
}

arrow::Status SqlPlanner::check_apply_changes_runnable(const Dataset& d, const Flow& flow,
                                                       const exec::SelectPlan& changes) const {
  const auto& ac = *flow.apply_changes;
  const auto& file = graph_.files[flow.file];
  auto refuse = [&](sql::Location at, const std::string& what) {
    return arrow::Status::NotImplemented(sql::format_error(file, at, what));
  };
  if (d.kind != sql::DatasetKind::kStreamingTable) {
    return arrow::Status::Invalid(sql::format_error(file, flow.loc, fmt::format(
        "APPLY CHANGES writes a streaming table; '{}' is a {}: declare it CREATE STREAMING TABLE {}", d.name,
        kind_text(d.kind), d.name)));
  }
  if (d.flows.size() != 1) {
    return refuse(flow.loc, fmt::format("'{}' has {} flows; an APPLY CHANGES target with other flows is not "
                                        "supported yet: give each change feed its own target",
                                        d.name, d.flows.size()));
  }
  const auto src = streaming_source(changes);
  if (src.kind != exec::PlanSource::Kind::kDataset || changes.joins() || changes.aggregates() || changes.unions() ||
      changes.distinct()) {
    return refuse(ac.source->loc,
                  "APPLY CHANGES reads the changes from a streaming table (or a view of one without joins or "
                  "aggregation) for now: ingest the Kafka topic into a streaming table first, then APPLY CHANGES "
                  "FROM STREAM(that_table)");
  }
  if (ac.track_history && ac.scd_type != 2) {
    return arrow::Status::Invalid(sql::format_error(file, ac.loc,
        "TRACK HISTORY ON applies to STORED AS SCD TYPE 2 only: remove it, or store the target as SCD TYPE 2"));
  }
  if (ac.scd_type == 2 && ac.truncate_when) {
    return arrow::Status::Invalid(sql::format_error(file, ac.truncate_when->loc,
        "APPLY AS TRUNCATE WHEN applies to SCD TYPE 1 targets only (as in DLT): remove it"));
  }
  if (ac.scd_type == 2 && ac.ignore_null_updates) {
    return refuse(ac.loc, "IGNORE NULL UPDATES with STORED AS SCD TYPE 2 is not supported yet: remove it, or "
                          "store the target as SCD TYPE 1");
  }
  const auto& in = changes.output_schema();
  for (const auto* list : {&ac.track_columns, &ac.track_except_columns}) {
    for (const auto& c : *list) {
      const bool excluded = std::find(ac.except_columns.begin(), ac.except_columns.end(), c) != ac.except_columns.end();
      const bool not_listed = !ac.columns.empty() && std::find(ac.columns.begin(), ac.columns.end(), c) == ac.columns.end();
      if (!in->GetFieldByName(c) || excluded || not_listed) {
        return arrow::Status::Invalid(sql::format_error(file, ac.loc, fmt::format(
            "TRACK HISTORY ON names '{}', which is not a column of the target '{}'", c, d.name)));
      }
    }
  }
  if (!d.definition->constraints.empty()) {
    return refuse(d.loc, fmt::format("expectations on the APPLY CHANGES target '{}' are not supported yet: put "
                                     "them on the table the changes come from",
                                     d.name));
  }
  if (quarantines(d)) {
    return refuse(d.loc, "'sluice.quarantine' on an APPLY CHANGES target is not supported yet");
  }
  for (const auto& [key, value] : properties(d)) {
    if (key == "pipelines.cdc.tombstoneGCFrequencyInSeconds") {
      return refuse(d.loc, "pipelines.cdc.tombstoneGCFrequencyInSeconds is not supported: sluice collects "
                           "tombstones older than pipelines.cdc.tombstoneGCThresholdInSeconds at every "
                           "micro-batch; remove the property");
    }
    if (key == "pipelines.cdc.tombstoneGCThresholdInSeconds") {
      const auto seconds = parse_int64(value, "pipelines.cdc.tombstoneGCThresholdInSeconds");
      if (!seconds.ok() || *seconds < 0) {
        return arrow::Status::Invalid(sql::format_error(file, d.loc, fmt::format(
            "pipelines.cdc.tombstoneGCThresholdInSeconds of '{}' is '{}': write a whole number of seconds >= 0",
            d.name, quote_for_error(value))));
      }
    }
  }
  return arrow::Status::OK();
}

arrow::Status SqlPlanner::check_apply_changes_columns(const Dataset& d, const Flow& flow,
                                                      const arrow::Schema& schema) {
  if (d.definition->columns.empty()) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto derived, check_apply_changes(flow, view_lookup()));
  auto fits = delta::reconcile_schema(schema, *derived, delta::SchemaMode::kStrict);
  if (!fits.ok() || schema.num_fields() != derived->num_fields()) {
    std::vector<std::string> columns;
    for (const auto& f : derived->fields()) columns.push_back(f->name() + " " + sql::sql_type_name(*f->type()));
    return arrow::Status::Invalid(sql::format_error(graph_.files[d.file], d.loc, fmt::format(
        "the columns declared for '{}' do not match what APPLY CHANGES writes into it ({}){}: declare exactly "
        "those columns, or none",
        d.name, fmt::join(columns, ", "), fits.ok() ? "" : ": " + fits.status().message())));
  }
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
