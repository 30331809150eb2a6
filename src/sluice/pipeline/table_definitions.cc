// A pipeline's tables kept in line with their definitions (table_definitions.h).
#include "sluice/pipeline/table_definitions.h"

#include <fmt/format.h>

#include <memory>

#include "sluice/delta/log_store.h"

namespace sluice::pipeline {

delta::TableDefinition table_definition_of(const SqlPlanner& planner, const Dataset& d) {
  delta::TableDefinition out;
  out.description = d.definition->comment;
  out.configuration = planner.properties(d);
  out.partition_columns = d.definition->partitioned_by;
  out.clustering_columns = planner.clustering_columns(d.name);
  if (auto it = planner.schemas().find(d.name); it != planner.schemas().end()) out.schema = it->second;
  return out;
}

arrow::Status apply_table_definitions(const SqlPlanner& planner, EventLog& events) {
  const auto& config = planner.config();
  for (const auto& name : planner.graph().order) {
    const auto& d = planner.graph().datasets.at(name);
    if (d.definition == nullptr || planner.views().count(name)) continue;
    if (d.kind != sql::DatasetKind::kStreamingTable && d.kind != sql::DatasetKind::kMaterializedView) continue;
    auto store = std::make_shared<delta::LogStore>(config.objects, config.table_path(name).string());
    ARROW_ASSIGN_OR_RAISE(auto committed, delta::apply_table_definition(store, table_definition_of(planner, d), name));
    for (const auto& c : committed) {
      events.add({"table_definition_change", "INFO",
                  fmt::format("Table '{}' changed to match its definition ({}): {}.", name, c.operation, c.summary),
                  d.flows.empty() ? name : d.flows[0], name,
                  {{"table_definition_change",
                    {{"table_version", c.version}, {"operation", c.operation}, {"summary", c.summary}}}},
                  0});
    }
  }
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
