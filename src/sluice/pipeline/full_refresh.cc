// --full-refresh: streaming tables emptied with their progress, so that the update
// reprocesses them from their sources (full_refresh.h).
#include "sluice/pipeline/full_refresh.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

namespace {

// Empties a table and its progress (every txn set to -1, "nothing read") in one commit; the
// new version, or none when the table does not exist. `changes`: the columns that commit
// changed (the planned schema merged in).
arrow::Result<std::optional<int64_t>> reset_table(const SqlPlanner& planner, const std::string& table,
                                                  ColumnChanges* changes) {
  auto store = std::make_shared<delta::LogStore>(planner.config().objects, planner.config().table_path(table).string());
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  if (!snapshot) return std::nullopt;
  delta::WriteOptions wo;
  wo.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  wo.mode = delta::WriteMode::kOverwrite;
  wo.schema_mode = delta::SchemaMode::kMerge;
  auto schema = planner.schemas().count(table) ? planner.schemas().at(table) : snapshot->schema();
  ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *schema, wo));
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  for (const auto& [app, t] : snapshot->txns()) txn.set_txn(app, -1);
  delta::CommitOptions co;
  co.operation = "FULL REFRESH";
  ARROW_ASSIGN_OR_RAISE(auto result, txn.commit(co));
  if (result.snapshot) *changes = column_changes(*snapshot->schema(), *result.snapshot->schema());
  return result.version.value();
}

}  // namespace

// --full-refresh: the named streaming tables (all, for "*") lose their rows and their
// progress in one commit (every txn of the table set to -1, "nothing read"), so this update
// reprocesses them from their sources. A table read straight from Kafka keeps its history
// unless its `pipelines.reset.allowed` property is true: Kafka retention may have dropped
// what it holds.
arrow::Status full_refresh(const SqlPlanner& planner, EventLog& events,
                           std::map<std::string, ColumnChanges>* column_changes_by_table) {
  if (planner.options().full_refresh.empty()) return arrow::Status::OK();
  std::vector<std::string> names = planner.options().full_refresh;
  if (names.size() == 1 && names[0] == "*") {
    names.clear();
    for (const auto& [n, d] : planner.graph().datasets) {
      if (d.kind == sql::DatasetKind::kStreamingTable) names.push_back(n);
    }
  }
  const size_t requested = names.size();
  // A reset table removes rows its downstream streaming tables already read, so they are
  // reset too (transitively); otherwise their streaming reads would have to fail.
  for (size_t i = 0; i < names.size(); ++i) {
    for (const auto& [n, d] : planner.graph().datasets) {
      // Views are followed through (they are inlined); materialized views recompute anyway.
      if (d.kind == sql::DatasetKind::kMaterializedView || std::find(names.begin(), names.end(), n) != names.end()) continue;
      auto upstream = planner.graph().upstream_of(n);
      if (std::find(upstream.begin(), upstream.end(), names[i]) != upstream.end()) names.push_back(n);
    }
  }
  for (size_t index = 0; index < names.size(); ++index) {
    const auto& name = names[index];
    auto it = planner.graph().datasets.find(name);
    if (it == planner.graph().datasets.end()) {
      std::vector<std::string> all;
      for (const auto& [n, d] : planner.graph().datasets) all.push_back(n);
      std::string best = closest_match(name, all);
      return invalid("--full-refresh names '{}', which is not a table of the pipeline{}", name,
                     best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best));
    }
    const auto& d = it->second;
    if (d.kind != sql::DatasetKind::kStreamingTable) continue;  // recomputed every update anyway
    bool reads_kafka = false;
    for (const auto& f : d.flows) {
      if (planner.flow_plans().count(f) && planner.flow_plans().at(f).source().kind == exec::PlanSource::Kind::kKafka) reads_kafka = true;
    }
    auto props = planner.properties(d);
    if (reads_kafka && (props.count("pipelines.reset.allowed") ? to_lower(props["pipelines.reset.allowed"]) != "true" : true)) {
      if (index < requested && planner.options().full_refresh[0] != "*") {
        return invalid("table '{}' reads Kafka directly and keeps its history across full refreshes; set "
                       "TBLPROPERTIES ('pipelines.reset.allowed' = 'true') to allow resetting it", name);
      }
      continue;  // "*": silently keep bronze, as DLT does
    }
    // Its quarantine, dead letters and late rows go with it: they hold rows of the same progress.
    for (const auto& table : {name + "_quarantine", name + "_dead_letter", name + "_late", name}) {
      ColumnChanges changes;
      ARROW_ASSIGN_OR_RAISE(auto version, reset_table(planner, table, &changes));
      if (!version) continue;
      if (table == name && !changes.empty() && column_changes_by_table) (*column_changes_by_table)[name] = std::move(changes);
      events.add({"flow_progress", "INFO", fmt::format("Table '{}' was reset for a full refresh.", table),
                  d.flows.empty() ? name : d.flows[0], table,
                  {{"full_refresh", {{"table_version", *version}}}}, 0});
    }
  }
  return arrow::Status::OK();
}

// A full refresh re-infers the value schemas of the tables it resets: their frozen schema
// files are deleted before planning, which samples the topics again and freezes what it finds.
// A table reading Kafka that keeps its history (no 'pipelines.reset.allowed') keeps its schema.
arrow::Status forget_inferred_schemas(const SqlPlanner& planner) {
  if (planner.options().full_refresh.empty()) return arrow::Status::OK();
  const auto& names = planner.options().full_refresh;
  const bool all = names.size() == 1 && names[0] == "*";
  for (const auto& [name, d] : planner.graph().datasets) {
    if (d.kind != sql::DatasetKind::kStreamingTable) continue;
    if (!all && std::find(names.begin(), names.end(), name) == names.end()) continue;
    bool reads_kafka = false;
    for (const auto& f : d.flows) {
      for (const auto& in : planner.graph().flows.at(f).inputs) reads_kafka |= in.kind == FlowInput::Kind::kKafka;
    }
    auto props = planner.properties(d);
    const bool reset_allowed =
        props.count("pipelines.reset.allowed") && to_lower(props["pipelines.reset.allowed"]) == "true";
    if (reads_kafka && !reset_allowed) continue;
    for (const auto& f : d.flows) {
      auto& objects = *planner.config().objects;
      const auto path = planner.inferred_schema_path(f).string();
      auto removed = objects.remove(path);
      if (!removed.ok()) {
        return io_error("cannot delete {} for the full refresh of '{}': {}", objects.display(path), name,
                        removed.message());
      }
    }
  }
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
