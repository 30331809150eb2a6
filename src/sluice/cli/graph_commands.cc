// `sluice validate <dir>` (resolve the SQL graph and report every error at once) and
// `sluice graph <dir> --format dot|mermaid|json` (lineage).
#include <CLI/CLI.hpp>
#include <arrow/type.h>
#include <fmt/format.h>

#include <iostream>

#include "sluice/cli/table_commands.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"
#include "sluice/sql/types.h"

namespace sluice::cli {

namespace {

arrow::Result<pipeline::Graph> load_graph(const std::string& dir,
                                          pipeline::PipelineConfig* config_out = nullptr) {
  ARROW_ASSIGN_OR_RAISE(auto config, pipeline::load_pipeline_config(dir));
  if (config_out) *config_out = config;
  ARROW_ASSIGN_OR_RAISE(auto files, pipeline::load_sql_sources(config));
  return pipeline::build_graph(std::move(files));
}

const char* kind_name(sql::DatasetKind k) {
  switch (k) {
    case sql::DatasetKind::kStreamingTable: return "streaming table";
    case sql::DatasetKind::kMaterializedView: return "materialized view";
    case sql::DatasetKind::kView: return "view";
    case sql::DatasetKind::kTemporaryView: return "temporary view";
  }
  return "?";
}

int validate(const std::string& dir) {
  pipeline::PipelineConfig config;
  auto graph = load_graph(dir, &config);
  if (!graph.ok()) {
    std::cerr << "sluice: " << graph.status().message() << "\n";
    return 1;
  }
  auto schemas = pipeline::check_sql_pipeline(config, *graph);
  if (!schemas.ok()) {
    std::cerr << "sluice: " << schemas.status().message() << "\n";
    return 1;
  }
  std::cout << fmt::format("{} datasets, {} flows, in dependency order:\n", graph->datasets.size(),
                           graph->flows.size());
  for (const auto& name : graph->order) {
    const auto& d = graph->datasets.at(name);
    std::vector<std::string> inputs;
    for (const auto& f : d.flows) {
      for (const auto& in : graph->flows.at(f).inputs) {
        inputs.push_back((in.kind == pipeline::FlowInput::Kind::kKafka ? "kafka:" : "") + in.name +
                         (in.streaming ? " (stream)" : ""));
      }
    }
    std::cout << fmt::format("  {} ({}){}{}\n", name, kind_name(d.kind), inputs.empty() ? "" : " <- ",
                             fmt::join(inputs, ", "));
    std::vector<std::string> columns;
    for (const auto& f : schemas->at(name)->fields()) columns.push_back(f->name() + " " + sql::sql_type_name(*f->type()));
    std::cout << fmt::format("      {}\n", fmt::join(columns, ", "));
  }
  std::cout << "OK\n";
  return 0;
}

}  // namespace

void add_graph_commands(CLI::App& app, int* exit_code) {
  static std::string dir;
  static std::string format = "dot";
  auto* v = app.add_subcommand("validate", "Check a pipeline's SQL and print its resolved graph");
  v->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml and .sql files")->required();
  v->callback([exit_code] { *exit_code = validate(dir); });

  auto* g = app.add_subcommand("graph", "Print a pipeline's lineage graph");
  g->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml and .sql files")->required();
  g->add_option("--format", format, "dot, mermaid or json")->check(CLI::IsMember({"dot", "mermaid", "json"}));
  g->callback([exit_code] {
    pipeline::PipelineConfig config;
    auto graph = load_graph(dir, &config);
    if (!graph.ok()) {
      std::cerr << "sluice: " << graph.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    std::cout << (format == "dot" ? pipeline::graph_to_dot(*graph)
                  : format == "mermaid" ? pipeline::graph_to_mermaid(*graph)
                                        : pipeline::graph_to_json(*graph, [&] {
                      // Column lineage needs every query planned; without it the graph still prints.
                      auto lineage = pipeline::sql_pipeline_lineage(config, *graph);
                      if (!lineage.ok()) {
                        std::cerr << "sluice: warning: no column lineage: " << lineage.status().message() << "\n";
                        return decltype(lineage)::ValueType{};
                      }
                      return *lineage;
                    }()));
  });
}

}  // namespace sluice::cli
