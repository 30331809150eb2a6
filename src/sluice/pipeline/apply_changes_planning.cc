// Planning of APPLY CHANGES / AUTO CDC flows: what the executor (apply_changes_flow.cc) does not
// do yet is refused here, so that `validate` says so before any data moves.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "sluice/common/text.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/pipeline/sql_planner.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/types.h"

namespace sluice::pipeline {

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
