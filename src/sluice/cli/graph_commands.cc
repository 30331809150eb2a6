// `sluice validate <dir>` (resolve the SQL graph and report every error at once) and
// `sluice graph <dir> --format dot|mermaid|json` (lineage).
#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>
#include <nlohmann/json.hpp>
#include <optional>

#include "sluice/cli/number_option.h"
#include "sluice/cli/serve_command.h"
#include "sluice/cli/table_commands.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/stats.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/event_log.h"
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

int validate(const std::string& dir, bool infer_schemas) {
  pipeline::PipelineConfig config;
  auto graph = load_graph(dir, &config);
  if (!graph.ok()) {
    std::cerr << "sluice: " << graph.status().message() << "\n";
    return 1;
  }
  if (auto targets = check_freshness_targets(config, *graph); !targets.ok()) {
    std::cerr << "sluice: " << targets.message() << "\n";
    return 1;
  }
  // Without --infer-schemas no broker is contacted: inferred schemas come from their frozen
  // files or stay unknown.
  auto report = pipeline::validate_sql_pipeline(
      config, *graph,
      infer_schemas ? pipeline::SchemaInference::kSampleNoFreeze : pipeline::SchemaInference::kFrozenOnly);
  if (!report.ok()) {
    std::cerr << "sluice: " << report.status().message() << "\n";
    return 1;
  }
  const auto* schemas = &report->schemas;
  if (auto kpis = check_kpis(config, *graph, schemas); !kpis.ok()) {
    std::cerr << "sluice: " << kpis.message() << "\n";
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
    if (auto why = report->not_checked.find(name); why != report->not_checked.end()) {
      std::cout << fmt::format("      not checked: {}\n", why->second);
      continue;
    }
    std::vector<std::string> columns;
    for (const auto& f : schemas->at(name)->fields()) columns.push_back(f->name() + " " + sql::sql_type_name(*f->type()));
    std::cout << fmt::format("      {}\n", fmt::join(columns, ", "));
    if (auto note = report->notes.find(name); note != report->notes.end()) {
      std::cout << fmt::format("      ({})\n", note->second);
    }
  }
  for (const auto& [name, sink] : graph->sinks) {
    std::vector<std::string> inputs;
    for (const auto& up : graph->sink_upstream(name)) inputs.push_back(up + " (stream)");
    std::cout << fmt::format("  {} (sink) <- {}\n", name, fmt::join(inputs, ", "));
  }
  if (!report->not_checked.empty()) {
    std::cout << fmt::format("OK, except {} dataset(s) not checked yet (see above)\n", report->not_checked.size());
    return 0;
  }
  std::cout << "OK\n";
  return 0;
}

}  // namespace

// Prints the events that pass the filters, oldest first (the last `limit` of them when
// limit > 0). Text mode adds the numbers of each flow_progress event to its message.
void print_events(std::vector<pipeline::StoredEvent> events, const std::string& type,
                  std::optional<int64_t> since_micros, int64_t limit, const std::string& format) {
  std::erase_if(events, [&](const pipeline::StoredEvent& e) {
    return (!type.empty() && e.event_type != type) || (since_micros && e.timestamp_micros < *since_micros);
  });
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return std::tie(a.timestamp_micros, a.seq) < std::tie(b.timestamp_micros, b.seq);
  });
  if (limit > 0 && static_cast<int64_t>(events.size()) > limit) events.erase(events.begin(), events.end() - limit);
  for (const auto& e : events) {
    std::string when = delta::format_timestamp_micros(e.timestamp_micros, true, false);
    if (format == "json") {
      nlohmann::json j = {{"timestamp", when}, {"level", e.level}, {"event_type", e.event_type},
                          {"dataset", e.dataset.empty() ? nlohmann::json() : nlohmann::json(e.dataset)},
                          {"message", e.message}, {"details", e.details}};
      std::cout << j.dump() << "\n";
    } else {
      std::string message = e.message;
      if (e.event_type == "flow_progress") {
        if (auto numbers = pipeline::flow_progress_numbers(e.details); !numbers.empty()) message += " | " + numbers;
      }
      std::cout << fmt::format("{} {:<5} {:<16} {:<24} {}\n", when, e.level, e.event_type, e.dataset, message);
    }
  }
  std::cout.flush();
}

std::atomic<bool> g_follow_stop{false};

int show_events(const std::string& dir, const std::string& type, const std::string& since, int64_t limit,
                const std::string& format, bool follow) {
  auto config = pipeline::load_pipeline_config(dir);
  if (!config.ok()) {
    std::cerr << "sluice: error: " << config.status().message() << "\n";
    return 1;
  }
  std::optional<int64_t> since_micros;
  if (!since.empty()) {
    std::string t = since;
    for (auto& c : t) c = c == ' ' ? 'T' : c;
    if (!t.empty() && t.back() == 'Z') t.pop_back();
    auto parsed = arrow::Scalar::Parse(arrow::timestamp(arrow::TimeUnit::MICRO), t);
    if (!parsed.ok()) {
      std::cerr << "sluice: error: --since '" << since << "' is not a time (2026-01-01T12:00:00Z)\n";
      return 1;
    }
    since_micros = static_cast<const arrow::TimestampScalar&>(**parsed).value;
  }
  auto fail = [](const arrow::Status& st) {
    std::cerr << "sluice: error: " << st.message() << "\n";
    return 1;
  };
  delta::LogStore store(config->objects, (config->storage / "system" / "event_log").string());
  std::signal(SIGINT, [](int) { g_follow_stop = true; });
  std::signal(SIGTERM, [](int) { g_follow_stop = true; });
  auto snapshot = delta::load_latest_if_exists(store);
  if (!snapshot.ok()) return fail(snapshot.status());
  // --follow waits for the log to appear; without it, no log is an error.
  while (follow && !*snapshot && !g_follow_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    snapshot = delta::load_latest_if_exists(store);
    if (!snapshot.ok()) return fail(snapshot.status());
  }
  if (!*snapshot) {
    if (follow) return 0;
    std::cerr << "sluice: error: no event log yet at " << store.location() << " (run the pipeline first)\n";
    return 1;
  }
  // The snapshot's own files: --follow goes on from its version.
  auto table = delta::scan_table(store, **snapshot);
  if (!table.ok()) return fail(table.status());
  auto rows = (*table)->CombineChunksToBatch();
  if (!rows.ok()) return fail(rows.status());
  auto events = pipeline::events_from_batch(**rows);
  if (!events.ok()) return fail(arrow::Status::Invalid("event log ", store.location(), ": ", events.status().message()));
  print_events(std::move(*events), type, since_micros, limit, format);
  if (!follow) return 0;
  // Follow: every commit appended since is read from the files it added, in commit order.
  int64_t seen = (*snapshot)->version().value();
  while (!g_follow_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto latest = delta::load_latest_if_exists(store);
    if (!latest.ok()) return fail(latest.status());
    if (!*latest || (*latest)->version().value() <= seen) continue;
    auto added = delta::added_files_between(store, DeltaVersion(seen), (*latest)->version(), delta::ChangePolicy::kFail);
    if (!added.ok()) return fail(added.status());
    for (const auto& f : *added) {
      auto file = delta::read_data_file(store, **latest, f.add);
      if (!file.ok()) return fail(file.status());
      auto batch = (*file)->CombineChunksToBatch();
      if (!batch.ok()) return fail(batch.status());
      auto events = pipeline::events_from_batch(**batch);
      if (!events.ok()) return fail(arrow::Status::Invalid("event log ", store.location(), ": ", events.status().message()));
      print_events(std::move(*events), type, since_micros, 0, format);
    }
    seen = (*latest)->version().value();
  }
  return 0;
}

void add_graph_commands(CLI::App& app, int* exit_code) {
  static std::string dir;
  static std::string format = "dot";
  auto* v = app.add_subcommand("validate", "Check a pipeline's SQL and print its resolved graph");
  v->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml and .sql files")->required();
  static bool infer_schemas = false;
  v->add_flag("--infer-schemas", infer_schemas,
              "Sample Kafka topics whose value schema is inferred and not frozen yet (without it, validate "
              "contacts no broker); nothing is written");
  v->callback([exit_code] { *exit_code = validate(dir, infer_schemas); });

  static std::string event_type, since, events_format = "text";
  static int64_t limit = 0;
  auto* ev = app.add_subcommand("events", "Read a pipeline's event log");
  ev->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml")->required();
  ev->add_option("--type", event_type, "Only events of this type (flow_progress, update_progress, ...)");
  ev->add_option("--since", since, "Only events at or after this time");
  ev->add_option("--limit", limit, "Only the last N events")->transform(whole_number(0));
  ev->add_option("--format", events_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  static bool follow = false;
  ev->add_flag("--follow,-f", follow, "Keep printing new events as updates commit them (until Ctrl-C)");
  ev->callback([exit_code] { *exit_code = show_events(dir, event_type, since, limit, events_format, follow); });

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
