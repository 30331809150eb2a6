// `sluice serve <pipeline-dir> [--listen ADDR:PORT] [--serve-token T]`: the JSON API and
// Prometheus /metrics of a pipeline run elsewhere, from its event log and tables alone, until
// SIGINT/SIGTERM; and the same server for `sluice run --serve` (main.cc).
#include "sluice/cli/serve_command.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "sluice/cli/status_report.h"
#include "sluice/cli/table_commands.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"
#include "sluice/server/kpi_series.h"

namespace sluice::cli {

namespace {

// The API's view of one pipeline: its configuration and graph, loaded once; the status and
// events are read again for every request, from committed state only (the event log through a
// cache that reads only what was appended). Immutable after construction but for the cache,
// which is thread-safe, so the server's threads share it freely.
class ServeReader : public server::PipelineReader {
 public:
  ServeReader(pipeline::PipelineConfig config, pipeline::Graph graph, bool runs_here)
      : config_(std::move(config)),
        graph_(std::move(graph)),
        runs_here_(runs_here),
        events_(std::make_unique<pipeline::EventLogCache>(config_.objects, config_.storage)) {}

  nlohmann::json pipeline() const override {
    return {{"name", config_.name},
            {"storage", config_.storage_display()},
            {"mode", config_.mode == pipeline::Mode::kContinuous ? "continuous" : "triggered"},
            {"served_by", runs_here_ ? "sluice run --serve" : "sluice serve"}};
  }

  arrow::Result<nlohmann::json> status(
      nlohmann::json* catalog,
      const arrow::Result<pipeline::SharedEvents>& events) const override {
    std::vector<std::string> warnings;  // the status JSON says the same (event_log.state)
    ARROW_ASSIGN_OR_RAISE(auto result, build_status(config_, graph_, warnings, &events));
    if (catalog) *catalog = std::move(result.catalog);
    return std::move(result.status);
  }

  arrow::Result<pipeline::EventLogView> event_log() const override { return events_->read(); }

  arrow::Result<pipeline::AppendedEvents> appended_since(int64_t first_version) const override {
    return events_->appended_since(first_version);
  }

  arrow::Result<nlohmann::json> kpi_series(const pipeline::KpiConfig& kpi) const override {
    delta::LogStore store(config_.objects, config_.table_path(kpi.dataset).string());
    return server::read_kpi_series(kpi, store);
  }

 private:
  const pipeline::PipelineConfig config_;
  const pipeline::Graph graph_;
  const bool runs_here_;
  const std::unique_ptr<pipeline::EventLogCache> events_;
};

arrow::Result<int> serve(const std::string& dir, const std::string& listen, const std::optional<std::string>& token) {
  ARROW_ASSIGN_OR_RAISE(auto config, pipeline::load_pipeline_config(dir));
  // SIGINT and SIGTERM are taken by sigwait below: blocked here, before the server's threads
  // start (they inherit the mask), so no thread is interrupted by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ARROW_ASSIGN_OR_RAISE(auto server, start_pipeline_server(config, listen, token, std::nullopt));
  int received = 0;
  sigwait(&signals, &received);
  server->stop();
  std::cout << "sluice: stopped serving\n";
  std::cout.flush();
  return 0;
}

}  // namespace

arrow::Status check_freshness_targets(const pipeline::PipelineConfig& config, const pipeline::Graph& graph) {
  for (const auto& [name, target] : config.serve_freshness_targets) {
    auto it = graph.datasets.find(name);
    if (it == graph.datasets.end()) {
      return arrow::Status::Invalid(fmt::format(
          "pipeline.yaml serve.freshness_targets names '{}', which pipeline '{}' does not define; its datasets are "
          "the tables and views of its .sql files",
          name, config.name));
    }
    if (it->second.kind == sql::DatasetKind::kView || it->second.kind == sql::DatasetKind::kTemporaryView) {
      return arrow::Status::Invalid(fmt::format(
          "pipeline.yaml serve.freshness_targets names '{}', a view of pipeline '{}': a view is not stored, so it has "
          "no freshness to compare; give the target to a streaming table or materialized view it reads",
          name, config.name));
    }
  }
  return arrow::Status::OK();
}

arrow::Status check_kpis(const pipeline::PipelineConfig& config, const pipeline::Graph& graph,
                         const std::map<std::string, std::shared_ptr<arrow::Schema>>* schemas) {
  for (const auto& kpi : config.serve_kpis) {
    auto it = graph.datasets.find(kpi.dataset);
    if (it == graph.datasets.end()) {
      std::vector<std::string> views;
      for (const auto& [name, d] : graph.datasets) {
        if (d.kind == sql::DatasetKind::kMaterializedView) views.push_back(name);
      }
      return arrow::Status::Invalid(fmt::format(
          "{}: KPI '{}' charts dataset '{}', which pipeline '{}' does not define; its materialized views: {}", kpi.where,
          kpi.name, kpi.dataset, config.name, views.empty() ? std::string("none") : fmt::format("{}", fmt::join(views, ", "))));
    }
    switch (it->second.kind) {
      case sql::DatasetKind::kMaterializedView: break;
      case sql::DatasetKind::kStreamingTable:
        return arrow::Status::Invalid(fmt::format(
            "{}: KPI '{}' charts '{}', a streaming table: a KPI charts a materialized view (a streaming table grows with "
            "every record, so charting it means reading all of it); define a materialized view that aggregates it "
            "(CREATE MATERIALIZED VIEW ... AS SELECT ... FROM {} GROUP BY ...) and chart that",
            kpi.where, kpi.name, kpi.dataset, kpi.dataset));
      case sql::DatasetKind::kView:
      case sql::DatasetKind::kTemporaryView:
        return arrow::Status::Invalid(fmt::format(
            "{}: KPI '{}' charts '{}', a view: a view is not stored (it is computed where it is read), so there is no "
            "table to chart; make it a materialized view",
            kpi.where, kpi.name, kpi.dataset));
    }
    if (schemas) {
      auto schema = schemas->find(kpi.dataset);
      if (schema != schemas->end() && schema->second) {
        ARROW_RETURN_NOT_OK(server::check_kpi_columns(kpi, *schema->second).status());
      }
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<server::HttpServer>> start_pipeline_server(const pipeline::PipelineConfig& config,
                                                                         const std::string& listen,
                                                                         const std::optional<std::string>& token,
                                                                         std::optional<int64_t> run_started_micros) {
  server::ServerOptions options;
  ARROW_ASSIGN_OR_RAISE(options.listen, server::parse_listen_address(listen));
  options.token = token;
  if (!options.token) {
    if (const char* env = std::getenv(kServeTokenVariable)) options.token = std::string(env);
  }
  options.api.cpu_price_per_hour = config.serve_cpu_price_per_hour;
  options.api.run_started_micros = run_started_micros;
  // Its own graph: a Graph's datasets point into its statements, so it is built, not copied.
  ARROW_ASSIGN_OR_RAISE(auto files, pipeline::load_sql_sources(config));
  ARROW_ASSIGN_OR_RAISE(auto graph, pipeline::build_graph(std::move(files)));
  ARROW_RETURN_NOT_OK(check_freshness_targets(config, graph));
  for (const auto& [name, target] : config.serve_freshness_targets) {
    options.api.freshness_targets_seconds[name] = static_cast<double>(target.count()) / 1000.0;
  }
  if (!config.serve_kpis.empty()) {
    // The views' columns as the SQL defines them (no broker is contacted: schemas inferred at a
    // first run and not frozen yet stay unchecked here, and are checked when read).
    ARROW_ASSIGN_OR_RAISE(auto schemas, pipeline::check_sql_pipeline(config, graph));
    ARROW_RETURN_NOT_OK(check_kpis(config, graph, &schemas));
    options.api.kpis = config.serve_kpis;
  }
  auto reader = std::make_shared<ServeReader>(config, std::move(graph), run_started_micros.has_value());
  ARROW_ASSIGN_OR_RAISE(auto server, server::HttpServer::Start(std::move(options), std::move(reader)));
  std::cout << "sluice: serving " << server->url() << "\n";
  std::cout.flush();
  return server;
}

void add_serve_command(CLI::App& app, int* exit_code) {
  static std::string dir;
  static std::string listen = kDefaultListen;
  static std::string token;
  auto* c = app.add_subcommand(
      "serve", "Serve a pipeline's JSON API (/api/...) and Prometheus metrics (/metrics) from its event log and "
               "tables, until SIGINT/SIGTERM");
  c->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml and .sql files")->required();
  c->add_option("--listen", listen, "ADDR:PORT to listen on (port 0: any free port; the URL is printed)")
      ->default_str(kDefaultListen);
  c->add_option("--serve-token", token,
                std::string("Bearer token every request must send (required off loopback). Visible to other "
                            "users in `ps`: prefer the ") +
                    kServeTokenVariable + " environment variable");
  c->callback([exit_code, c] {
    std::optional<std::string> given;
    if (c->count("--serve-token")) given = token;
    auto served = serve(dir, listen, given);
    if (!served.ok()) {
      std::cerr << "sluice: error: " << served.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    *exit_code = *served;
  });
}

}  // namespace sluice::cli
