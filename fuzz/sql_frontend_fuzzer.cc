// libFuzzer target for the whole SQL front end, as `sluice validate` runs it: any bytes as a
// pipeline's SQL file are parsed, resolved into the dataset graph and planned (names, types,
// views, CTEs, joins, windows, read_kafka options) without a broker. It must report errors,
// never crash, hang, throw or overflow the stack (built with ASan+UBSan by scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/sql/ast.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::pipeline::PipelineConfig config;
  config.name = "fuzz";
  // Planning without --infer-schemas writes nothing and contacts no broker; the folder is
  // never created.
  config.storage = "/nonexistent/sluice-fuzz-storage";
  config.kafka["default"] = {{"bootstrap.servers", "127.0.0.1:1"}};
  config.configuration["x"] = "1";
  std::vector<sluice::sql::SourceFile> files{{"fuzz.sql", std::string(reinterpret_cast<const char*>(data), size)}};
  auto graph = sluice::pipeline::build_graph(std::move(files));
  if (!graph.ok()) {
    (void)graph.status().message();
    return 0;
  }
  for (const auto& statements : graph->statements) {
    for (const auto& st : statements) (void)sluice::sql::to_string(st);
  }
  auto report = sluice::pipeline::validate_sql_pipeline(config, *graph, sluice::pipeline::SchemaInference::kFrozenOnly);
  if (report.ok()) {
    (void)sluice::pipeline::graph_to_json(*graph);
    auto lineage = sluice::pipeline::sql_pipeline_lineage(config, *graph);
    (void)lineage.ok();
  } else {
    (void)report.status().message();
  }
  return 0;
}
