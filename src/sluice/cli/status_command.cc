// `sluice status <pipeline-dir> [--format text|json]`: every dataset and sink of a pipeline with
// the state of its latest flow, last update, rows, Kafka lag, freshness and failing
// expectations, from the Delta logs (the catalog) and the event log. Contacts no broker.
// Exit code: 0 healthy, 1 status could not be read, 2 a flow's latest state is FAILED.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>

#include "sluice/cli/catalog_command.h"
#include "sluice/cli/status_report.h"
#include "sluice/cli/table_commands.h"
#include "sluice/common/ids.h"
#include "sluice/common/time_text.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/run_lock.h"
#include "sluice/pipeline/sql_sources.h"

namespace sluice::cli {

namespace {

using nlohmann::json;

constexpr int kExitHealthy = kStatusHealthy;
constexpr int kExitUnreadable = 1;
constexpr int kExitFlowFailed = 2;

std::string iso_micros(int64_t micros) { return format_timestamp_micros(micros, true, false); }

const json& progress_of(const pipeline::StoredEvent& e) {
  static const json kNone;
  if (!e.details.is_object()) return kNone;
  auto it = e.details.find("flow_progress");
  return it != e.details.end() && it->is_object() ? *it : kNone;
}

// What the event log says of one dataset: its latest flow_progress event with a status, and the
// latest that recorded a Kafka backlog or a watermark (a FAILED update may record neither).
struct FlowHistory {
  const pipeline::StoredEvent* latest = nullptr;
  const pipeline::StoredEvent* backlog = nullptr;
  const pipeline::StoredEvent* watermark = nullptr;
};

std::map<std::string, FlowHistory> flow_histories(const std::vector<pipeline::StoredEvent>& events) {
  std::map<std::string, FlowHistory> out;
  for (const auto& e : events) {  // oldest first: the last one seen wins
    if (e.event_type != "flow_progress" || e.dataset.empty()) continue;
    const auto& p = progress_of(e);
    if (!p.is_object() || !p.contains("status") || !p["status"].is_string()) continue;  // a reset, not a run
    auto& h = out[e.dataset];
    h.latest = &e;
    const auto metrics = p.value("metrics", json::object());
    if (metrics.is_object() && metrics.contains("backlog_records")) h.backlog = &e;
    if (metrics.is_object() && metrics.contains("watermark_micros") && metrics["watermark_micros"].is_number_integer()) {
      h.watermark = &e;
    }
  }
  return out;
}

// The state columns of one dataset or sink, from its history.
void add_state(json& row, const FlowHistory* history, bool reads_kafka, int64_t now_micros) {
  row["state"] = "never run";
  row["state_time"] = nullptr;
  row["error"] = nullptr;
  row["failing_expectations"] = json::array();
  row["kafka_lag"] = nullptr;
  row["kafka_lag_partitions"] = nullptr;
  row["kafka_lag_recorded_at"] = nullptr;
  row["watermark"] = nullptr;
  row["event_time_freshness_seconds"] = nullptr;
  if (reads_kafka) row["kafka_lag_note"] = "not recorded yet";
  if (!history || !history->latest) return;
  const auto& latest = *history->latest;
  const auto& p = progress_of(latest);
  row["state"] = p["status"];
  row["state_time"] = iso_micros(latest.timestamp_micros);
  if (p.contains("error") && p["error"].is_object()) row["error"] = p["error"].value("message", latest.message);
  const auto quality = p.value("data_quality", json::object());
  if (quality.is_object() && quality.contains("expectations") && quality["expectations"].is_array()) {
    for (const auto& e : quality["expectations"]) {
      if (e.value("failed_records", int64_t{0}) > 0) {
        row["failing_expectations"].push_back({{"name", e.value("name", std::string("?"))},
                                               {"failed_records", e.value("failed_records", int64_t{0})},
                                               {"passed_records", e.value("passed_records", int64_t{0})}});
      }
    }
  }
  if (history->backlog) {
    const auto& m = progress_of(*history->backlog)["metrics"];
    row["kafka_lag"] = m["backlog_records"];
    row["kafka_lag_partitions"] = m.value("kafka_lag", json::array());
    row["kafka_lag_recorded_at"] = iso_micros(history->backlog->timestamp_micros);
    row.erase("kafka_lag_note");
  } else if (reads_kafka) {
    row["kafka_lag_note"] = "not recorded by any update";
  }
  if (history->watermark) {
    const int64_t watermark = progress_of(*history->watermark)["metrics"]["watermark_micros"].get<int64_t>();
    row["watermark"] = iso_micros(watermark);
    row["event_time_freshness_seconds"] = static_cast<double>(now_micros - watermark) / 1e6;
  }
}

// The alerts firing now: the latest `alert` event of each (rule, dataset), when it is FIRING
// (run_alerts.h writes them), by dataset.
std::map<std::string, json> active_alerts(const std::vector<pipeline::StoredEvent>& events) {
  std::map<std::pair<std::string, std::string>, json> latest;
  for (const auto& e : events) {  // oldest first: the last one seen wins
    if (e.event_type != "alert" || !e.details.is_object() || !e.details.contains("alert")) continue;
    const auto& a = e.details["alert"];
    if (!a.is_object() || !a.contains("rule") || !a["rule"].is_string()) continue;
    latest[{a["rule"].get<std::string>(), e.dataset}] = a;
  }
  std::map<std::string, json> out;
  for (const auto& [key, a] : latest) {
    if (a.value("state", std::string()) != "FIRING") continue;
    auto& list = out[key.second];
    if (list.is_null()) list = json::array();
    list.push_back({{"rule", key.first}, {"condition", a.value("condition", json())}, {"since", a.value("since", json())},
                    {"since_ms", a.value("since_ms", json())}, {"value", a.value("value", json())},
                    {"threshold", a.value("threshold", json())}, {"unit", a.value("unit", json())},
                    {"message", a.value("message", json())}});
  }
  return out;
}

// Whether a run holds the pipeline's run lock now (run_lock.h): the holder records under
// <storage>/system/runs/ that their process still locks. A record left by a dead process is not
// locked, so it does not count. Never contacts a broker.
json run_state(const pipeline::PipelineConfig& config) {
  if (!config.storage_is_local()) {
    return {{"state", "unknown"}, {"holders", json::array()},
            {"note", "the storage is on an object store, whose run lease status does not read"}};
  }
  json holders = json::array();
  for (const auto& h : pipeline::RunLock::holders(config.storage)) {
    holders.push_back({{"pid", h.pid}, {"host", h.host}, {"started", format_timestamp_micros(h.started_ms * 1000, true, false)},
                       {"started_ms", h.started_ms}, {"command", h.command},
                       {"mode", h.mode == pipeline::RunLockMode::kShared ? "shared" : "exclusive"}});
  }
  return {{"state", holders.empty() ? "NOT RUNNING" : "RUNNING"}, {"holders", std::move(holders)}};
}

}  // namespace

arrow::Result<StatusResult> build_status(const pipeline::PipelineConfig& config, const pipeline::Graph& graph,
                                         std::vector<std::string>& warnings,
                                         const arrow::Result<pipeline::SharedEvents>* given, TemporaryTables temporary) {
  // Read once: the catalog below is built from this same read.
  arrow::Result<pipeline::SharedEvents> read_here;
  if (!given) read_here = pipeline::read_event_log_shared(config.objects, config.storage);
  const auto& read = given ? *given : read_here;
  std::vector<std::string> catalog_warnings;
  ARROW_ASSIGN_OR_RAISE(auto catalog, sluice::cli::build_catalog(config, graph, catalog_warnings, &read));
  const int64_t now_ms = now_millis();
  const int64_t now_micros = now_ms * 1000;

  StatusResult result;
  json& out = result.status;
  out = {{"pipeline", config.name}, {"generated_at", iso_micros(now_micros)}, {"generated_at_ms", now_ms}};
  static const std::vector<pipeline::StoredEvent> kNoEvents;
  const auto& events = read.ok() && *read ? **read : kNoEvents;
  bool unreadable = false;
  if (!read.ok()) {
    unreadable = true;
    out["event_log"] = {{"state", "unreadable"}, {"error", read.status().message()}};
    warnings.push_back(read.status().message() + "; flow states are unknown");
    result.exit_code = kExitUnreadable;
  } else if (!*read) {
    out["event_log"] = {{"state", "none"}, {"error", nullptr}};  // the pipeline never ran
  } else {
    out["event_log"] = {{"state", "present"}, {"error", nullptr}, {"events", events.size()}};
  }
  for (const auto& w : catalog_warnings) {
    if (!unreadable || w != read.status().message()) warnings.push_back(w);  // said once
  }
  const auto histories = flow_histories(events);
  out["run"] = run_state(config);
  const auto alerts = active_alerts(events);
  auto alerts_of = [&](const std::string& name) {
    auto it = alerts.find(name);
    return it == alerts.end() ? json::array() : it->second;
  };
  size_t firing = 0;
  for (const auto& [name, list] : alerts) firing += list.size();
  out["active_alerts"] = firing;
  auto history_of = [&](const std::string& name) -> const FlowHistory* {
    auto it = histories.find(name);
    return it == histories.end() ? nullptr : &it->second;
  };

  json rows = json::array();
  bool failed = false;
  int64_t omitted = 0;
  for (const auto& d : catalog["datasets"]) {
    const auto name = d["name"].get<std::string>();
    bool reads_kafka = false;
    for (const auto& in : d["inputs"]) reads_kafka |= in.get<std::string>().rfind("kafka:", 0) == 0;
    const bool is_temporary = d.value("temporary", false);
    json row = {{"name", name}, {"kind", d["kind"]}, {"reads_kafka", reads_kafka}, {"temporary", is_temporary}};
    row["last_update"] = d.value("last_update", json());  // the newest commit
    row["last_update_ms"] = d.value("last_update_ms", json());
    row["rows"] = d.value("num_rows", json());
    row["version"] = d.value("version", json());
    // Since the newest commit, or the newest refresh that found nothing to commit (the catalog's
    // rule), against this command's clock.
    const int64_t latest = std::max(d.value("last_update_ms", int64_t{0}), d.value("last_refresh_ms", int64_t{0}));
    row["freshness_seconds"] = latest > 0 ? json(static_cast<double>(now_ms - latest) / 1000.0) : json(nullptr);
    const bool stored = d.contains("path");
    add_state(row, stored ? history_of(name) : nullptr, reads_kafka, now_micros);
    if (!stored) row["state"] = "not stored";  // views are computed by their readers
    if (unreadable && stored) row["state"] = "unknown";
    row["active_alerts"] = alerts_of(name);
    failed |= row["state"] == "FAILED";
    // A temporary table is not published; shown when asked, and always when it failed (the
    // exit code would otherwise name no culprit).
    if (is_temporary && temporary == TemporaryTables::kOmit && row["state"] != "FAILED") {
      ++omitted;
      continue;
    }
    rows.push_back(std::move(row));
  }
  if (omitted > 0) out["temporary_omitted"] = omitted;
  for (const auto& [name, sink] : graph.sinks) {
    json row = {{"name", name}, {"kind", "sink"}, {"reads_kafka", false}, {"last_update", nullptr},
                {"last_update_ms", nullptr}, {"rows", nullptr}, {"version", nullptr}, {"freshness_seconds", nullptr}};
    add_state(row, history_of(name), false, now_micros);
    if (unreadable) row["state"] = "unknown";
    row["active_alerts"] = alerts_of(name);
    failed |= row["state"] == "FAILED";
    rows.push_back(std::move(row));
  }
  out["datasets"] = std::move(rows);
  if (failed) result.exit_code = kExitFlowFailed;  // a failed flow outranks an unreadable log
  out["healthy"] = result.exit_code == kExitHealthy;
  out["exit_code"] = result.exit_code;
  result.catalog = std::move(catalog);
  return result;
}

namespace {

arrow::Result<StatusResult> status_of_folder(const std::string& dir, TemporaryTables temporary,
                                             std::vector<std::string>& warnings) {
  ARROW_ASSIGN_OR_RAISE(auto config, pipeline::load_pipeline_config(dir));
  ARROW_ASSIGN_OR_RAISE(auto files, pipeline::load_sql_sources(config));
  ARROW_ASSIGN_OR_RAISE(auto graph, pipeline::build_graph(std::move(files)));
  return build_status(config, graph, warnings, nullptr, temporary);
}

// 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h.
std::string duration_text(double seconds) {
  if (seconds < 0) seconds = 0;
  const auto s = static_cast<int64_t>(seconds);
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {} s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{} h {} min", s / 3600, s % 3600 / 60);
  return fmt::format("{} d {} h", s / 86400, s % 86400 / 3600);
}

std::string status_cell(const json& row, const char* column) {
  const std::string c = column;
  if (c == "last update") return row["last_update"].is_string() ? row["last_update"].get<std::string>() : "-";
  if (c == "rows") return row["rows"].is_number() ? std::to_string(row["rows"].get<int64_t>()) : "-";
  if (c == "kafka lag") {
    if (!row["reads_kafka"].get<bool>()) return "-";
    if (row["kafka_lag"].is_number()) return std::to_string(row["kafka_lag"].get<int64_t>());
    return "unknown (" + row.value("kafka_lag_note", std::string("not recorded")) + ")";
  }
  if (c == "freshness") {
    std::string text = row["freshness_seconds"].is_number() ? duration_text(row["freshness_seconds"].get<double>()) : "-";
    if (row["event_time_freshness_seconds"].is_number()) {
      text += " (event time " + duration_text(row["event_time_freshness_seconds"].get<double>()) + ")";
    }
    return text;
  }
  if (c == "failing expectations") {
    std::string text;
    for (const auto& e : row["failing_expectations"]) {
      text += fmt::format("{}{}: {} failed", text.empty() ? "" : ", ", e["name"].get<std::string>(),
                          e["failed_records"].get<int64_t>());
    }
    return text.empty() ? "-" : text;
  }
  return row[c].get<std::string>();  // name, kind, state
}

// A multi-line error (a failing row, its Kafka position) indented under its first line.
std::string indented(const std::string& text) {
  std::string out;
  for (char ch : text) out += ch == '\n' ? std::string("\n    ") : std::string(1, ch);
  return out;
}

void print_status_table(const json& status) {
  static const char* kColumns[] = {"name", "kind", "state", "last update", "rows", "kafka lag", "freshness",
                                   "failing expectations"};
  std::cout << "pipeline " << status["pipeline"].get<std::string>() << " at " << status["generated_at"].get<std::string>();
  if (status["event_log"]["state"] == "none") std::cout << " (never run: no event log yet)";
  const auto& run = status["run"];
  if (run["state"] == "RUNNING") {
    std::vector<std::string> by;
    for (const auto& h : run["holders"]) {
      by.push_back(fmt::format("pid {} on {} since {}", h["pid"].get<int64_t>(), h["host"].get<std::string>(),
                               h["started"].get<std::string>()));
    }
    std::cout << ": RUNNING (" << fmt::format("{}", fmt::join(by, "; ")) << ")";
  } else if (run["state"] == "NOT RUNNING") {
    std::cout << ": not running";
  } else {
    std::cout << ": run state unknown (" << run.value("note", std::string()) << ")";
  }
  std::cout << "\n";
  std::vector<std::vector<std::string>> table;
  std::vector<size_t> widths;
  for (const char* c : kColumns) {
    std::string header = c;
    for (auto& ch : header) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    widths.push_back(header.size());
    if (table.empty()) table.emplace_back();
    table[0].push_back(header);
  }
  for (const auto& row : status["datasets"]) {
    std::vector<std::string> line;
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      line.push_back(status_cell(row, kColumns[i]));
      widths[i] = std::max(widths[i], line.back().size());
    }
    table.push_back(std::move(line));
  }
  for (const auto& line : table) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      text += i + 1 == line.size() ? line[i] : fmt::format("{:<{}}  ", line[i], widths[i]);
    }
    std::cout << text << "\n";
  }
  if (status.contains("temporary_omitted")) {
    std::cout << fmt::format("({} temporary table(s) not shown: sluice status --all)\n",
                             status["temporary_omitted"].get<int64_t>());
  }
  for (const auto& row : status["datasets"]) {
    if (row["error"].is_string()) {
      std::cout << fmt::format("{} {} at {}: {}\n", row["name"].get<std::string>(), row["state"].get<std::string>(),
                               row["state_time"].get<std::string>(), indented(row["error"].get<std::string>()));
    }
  }
  for (const auto& row : status["datasets"]) {
    for (const auto& a : row["active_alerts"]) {
      std::cout << fmt::format("{} ALERT {} FIRING since {}: {}\n", row["name"].get<std::string>(),
                               a["rule"].get<std::string>(), a["since"].is_string() ? a["since"].get<std::string>() : "?",
                               a["message"].is_string() ? a["message"].get<std::string>() : "");
    }
  }
  std::cout.flush();
}

}  // namespace

void add_status_command(CLI::App& app, int* exit_code) {
  static std::string dir;
  static std::string format = "text";
  auto* c = app.add_subcommand(
      "status",
      "Every dataset's state, last update, rows, Kafka lag, freshness and failing expectations "
      "(exit 0 healthy, 1 unreadable, 2 a flow failed)");
  c->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml and .sql files")->required();
  c->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));
  static bool all = false;
  c->add_flag("--all", all, "Also show temporary tables (CREATE TEMPORARY ..., @dlt.table(temporary=True))");
  c->callback([exit_code] {
    std::vector<std::string> warnings;
    arrow::Result<StatusResult> status;
    try {
      status = status_of_folder(dir, all ? TemporaryTables::kShow : TemporaryTables::kOmit, warnings);
    } catch (const nlohmann::json::exception& e) {  // an event whose details are not of the shape written
      status = arrow::Status::Invalid("the event log holds an event of an unexpected shape: ", e.what());
    }
    for (const auto& w : warnings) std::cerr << "sluice: warning: " << w << "\n";
    if (!status.ok()) {
      std::cerr << "sluice: error: " << status.status().message() << "\n";
      *exit_code = kExitUnreadable;
      return;
    }
    if (format == "json") {
      std::cout << status->status.dump(2) << "\n";
    } else {
      print_status_table(status->status);
    }
    *exit_code = status->exit_code;
  });
}

}  // namespace sluice::cli
