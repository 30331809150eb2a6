// The sluice command line: `sluice run <pipeline-dir> [--once]`, `sluice version`.
#include <CLI/CLI.hpp>
#include <arrow/compute/initialize.h>
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include "sluice/cli/table_commands.h"
#include "sluice/common/status.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/runner.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

int fail(const arrow::Status& status) {
  std::cerr << "sluice: error: " << status.message() << "\n";
  return 1;
}

void print_reports(const std::vector<sluice::pipeline::IngestReport>& reports) {
  for (const auto& r : reports) {
    std::cout << fmt::format("{} <- kafka topic '{}': {} rows in {} commit(s), table version {}\n",
                             r.table, r.topic, r.rows_written, r.commits, r.table_version);
  }
  std::cout.flush();
}

int run_command(const std::string& dir, bool once, const std::string& bootstrap_override) {
  auto config = sluice::pipeline::load_pipeline_config(dir);
  if (!config.ok()) return fail(config.status());
  auto sql = sluice::pipeline::load_sql_sources(*config);
  if (!sql.ok()) return fail(sql.status());
  if (!sql->empty()) {
    if (!once && config->mode == sluice::pipeline::Mode::kContinuous) {
      return fail(arrow::Status::NotImplemented("continuous mode for SQL pipelines comes with the streaming "
                                                "runtime; use --once"));
    }
    auto graph = sluice::pipeline::build_graph(std::move(*sql));
    if (!graph.ok()) return fail(graph.status());
    if (!config->bronze.empty()) {
      auto reports = sluice::pipeline::run_pipeline_once(*config);
      if (!reports.ok()) return fail(reports.status());
      print_reports(*reports);
    }
    auto reports = sluice::pipeline::run_sql_pipeline_once(*config, *graph);
    if (!reports.ok()) return fail(reports.status());
    for (const auto& r : *reports) {
      std::string expectations;
      for (const auto& [name, n] : r.expectation_failures) expectations += fmt::format(" {}:{} failed", name, n);
      std::cout << fmt::format("{} ({}): {} rows read, {} written, {} dropped, table version {}{}\n", r.dataset,
                               r.kind, r.rows_read, r.rows_written, r.rows_dropped, r.version,
                               expectations.empty() ? "" : ";" + expectations);
    }
    return 0;
  }
  if (config->bronze.empty()) {
    return fail(arrow::Status::Invalid(fmt::format(
        "pipeline '{}' defines no tables: add .sql files or a 'bronze:' list", config->name)));
  }
  if (!bootstrap_override.empty()) {
    for (auto& [name, props] : config->kafka) props["bootstrap.servers"] = bootstrap_override;
  }
  const bool continuous = !once && config->mode == sluice::pipeline::Mode::kContinuous;
  if (!continuous) {
    auto reports = sluice::pipeline::run_pipeline_once(*config);
    if (!reports.ok()) return fail(reports.status());
    print_reports(*reports);
    return 0;
  }
  // Continuous: one update per trigger interval until SIGINT/SIGTERM; an update in progress
  // finishes and commits before the process exits.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (!g_stop) {
    auto started = std::chrono::steady_clock::now();
    auto reports = sluice::pipeline::run_pipeline_once(*config);
    if (!reports.ok()) {
      if (!sluice::is_retryable(reports.status())) return fail(reports.status());
      std::cerr << "sluice: warning: " << reports.status().message() << " (retrying)\n";
    } else {
      print_reports(*reports);
    }
    while (!g_stop && std::chrono::steady_clock::now() - started < config->trigger_interval) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  std::cout << "sluice: stopped\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice: declarative streaming pipelines from Kafka into Delta Lake tables"};
  app.require_subcommand(1);

  auto* run = app.add_subcommand("run", "Run a pipeline folder (pipeline.yaml)");
  std::string dir;
  bool once = false;
  std::string bootstrap;
  run->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml")->required();
  run->add_flag("--once", once, "Triggered run: process what is available now, then exit");
  run->add_option("--bootstrap-servers", bootstrap,
                  "Override bootstrap.servers of every Kafka cluster in pipeline.yaml");

  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "sluice " SLUICE_VERSION "\n";
  });

  int exit_code = 0;
  sluice::cli::add_table_commands(app, &exit_code);
  sluice::cli::add_eval_command(app, &exit_code);
  sluice::cli::add_graph_commands(app, &exit_code);

  if (auto st = arrow::compute::Initialize(); !st.ok()) return fail(st);
  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return run_command(dir, once, bootstrap);
  return exit_code;
}
