// `sluice serve <dir>` and the server of `sluice run <dir> --serve` (serve_command.cc): the
// JSON API and /metrics over a pipeline's event log and tables.
#pragma once

#include <arrow/result.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/server/http_server.h"

namespace CLI {
class App;
}

namespace sluice::cli {

constexpr const char* kDefaultListen = "127.0.0.1:8080";
constexpr const char* kServeTokenVariable = "SLUICE_SERVE_TOKEN";

// serve.freshness_targets against the graph: each names a stored dataset of the pipeline (a
// streaming table or materialized view; a view has no freshness). Checked by `sluice validate`
// and at server start.
arrow::Status check_freshness_targets(const pipeline::PipelineConfig& config, const pipeline::Graph& graph);

// serve.kpis against the graph: each names a materialized view of the pipeline (a streaming
// table grows without bound and a view is not stored: both refused, saying why), and, where
// `schemas` has the view's schema, columns that fit (server/kpi_series.h check_kpi_columns).
// Checked by `sluice validate` and at server start; errors name the KPI's pipeline.yaml place.
arrow::Status check_kpis(const pipeline::PipelineConfig& config, const pipeline::Graph& graph,
                         const std::map<std::string, std::shared_ptr<arrow::Schema>>* schemas);

// Starts the server of a pipeline on `listen` ("ADDR:PORT"); the token is `token` if given,
// else $SLUICE_SERVE_TOKEN if set. `run_started_micros` is set when the pipeline runs in this
// process (its cost metric counts from then). Prints "sluice: serving <url>" on stdout.
arrow::Result<std::unique_ptr<server::HttpServer>> start_pipeline_server(const pipeline::PipelineConfig& config,
                                                                         const std::string& listen,
                                                                         const std::optional<std::string>& token,
                                                                         std::optional<int64_t> run_started_micros);

// Registers `serve` on `app`.
void add_serve_command(CLI::App& app, int* exit_code);

}  // namespace sluice::cli
