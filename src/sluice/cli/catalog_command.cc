// `sluice catalog <pipeline-dir> [--format text|json]`: every dataset of a pipeline with its
// columns (types, comments, tags), inputs and column lineage, and for stored tables their rows,
// size, files, last update and freshness, from the Delta logs and the event log (no broker).
#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <map>
#include <set>

#include "sluice/cli/catalog_command.h"
#include "sluice/cli/table_commands.h"
#include "sluice/common/ids.h"
#include "sluice/common/json_fields.h"
#include "sluice/common/time_text.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"
#include "sluice/sql/temporary_table.h"

namespace sluice::cli {

namespace {

using nlohmann::json;

const char* catalog_kind(sql::DatasetKind k) {
  switch (k) {
    case sql::DatasetKind::kStreamingTable: return "streaming table";
    case sql::DatasetKind::kMaterializedView: return "materialized view";
    case sql::DatasetKind::kView: return "view";
    case sql::DatasetKind::kTemporaryView: return "temporary view";
  }
  return "?";
}

std::string iso_millis(int64_t millis) { return format_timestamp_micros(millis * 1000, true, false); }

// A column: type, nullability, comment and tags from its field metadata.
json column_json(const arrow::Field& field) {
  json c = {{"name", field.name()}, {"type", delta::delta_type_name(*field.type())}, {"nullable", field.nullable()}};
  json tags = json::object();
  if (field.metadata()) {
    const std::string prefix = delta::kColumnTagPrefix;
    for (int64_t i = 0; i < field.metadata()->size(); ++i) {
      const auto& key = field.metadata()->key(i);
      const auto& value = field.metadata()->value(i);
      if (key == "comment") c["comment"] = value;
      if (key.rfind(prefix, 0) != 0) continue;
      auto rest = key.substr(prefix.size());
      const auto dot = rest.find('.');
      const auto tag = rest.substr(0, dot);
      if (!tags.contains(tag)) tags[tag] = json::object();
      if (dot == std::string::npos) {
        tags[tag]["value"] = value;
      } else if (rest.substr(dot + 1) == "from") {
        json from = json::array();
        for (size_t at = 0; at <= value.size();) {
          auto comma = value.find(',', at);
          if (comma == std::string::npos) comma = value.size();
          if (comma > at) from.push_back(value.substr(at, comma - at));
          at = comma + 1;
        }
        tags[tag]["from"] = from;
      } else {
        tags[tag][rest.substr(dot + 1)] = value;
      }
    }
  }
  if (!c.contains("comment")) c["comment"] = nullptr;
  c["tags"] = tags;
  return c;
}

// The last time each dataset's flow completed (flow_progress COMPLETED), from the event log.
std::map<std::string, int64_t> last_completed(const pipeline::PipelineConfig& config, std::string* warning,
                                              const arrow::Result<pipeline::SharedEvents>* given) {
  std::map<std::string, int64_t> out;
  arrow::Result<pipeline::SharedEvents> read_here;
  if (!given) read_here = pipeline::read_event_log_shared(config.objects, config.storage);
  const auto& events = given ? *given : read_here;
  if (!events.ok()) {
    *warning = events.status().message();
    return out;
  }
  if (!*events) return out;
  for (const auto& e : **events) {
    if (e.event_type != "flow_progress" || e.dataset.empty() || !e.details.is_object()) continue;
    const auto& p = e.details.value("flow_progress", json::object());
    // field_or: a damaged row ({"flow_progress": {"status": 5}}) would make json::value throw.
    if (!p.is_object() || field_or(p, "status", "") != "COMPLETED") continue;
    auto& at = out[e.dataset];
    at = std::max(at, e.timestamp_micros / 1000);
  }
  return out;
}

}  // namespace

arrow::Result<json> build_catalog(const pipeline::PipelineConfig& config, const pipeline::Graph& graph,
                                  std::vector<std::string>& warnings,
                                  const arrow::Result<pipeline::SharedEvents>* events) {
  // Planned schemas and lineage (no broker: a schema not frozen yet stays unknown).
  std::map<std::string, std::shared_ptr<arrow::Schema>> planned;
  if (auto report = pipeline::validate_sql_pipeline(config, graph, pipeline::SchemaInference::kFrozenOnly); report.ok()) {
    planned = report->schemas;
  } else {
    warnings.push_back("the pipeline does not plan (" + report.status().message() + "): columns come from the tables only");
  }
  std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>> lineage;
  if (auto l = pipeline::sql_pipeline_lineage(config, graph); l.ok()) lineage = std::move(*l);
  std::string event_warning;
  const auto refreshed = last_completed(config, &event_warning, events);
  if (!event_warning.empty()) warnings.push_back(event_warning);
  const int64_t now = now_millis();

  json datasets = json::array();
  for (const auto& name : graph.order) {
    const auto& d = graph.datasets.at(name);
    json out = {{"name", name}, {"kind", catalog_kind(d.kind)}};
    out["comment"] = d.definition && d.definition->comment ? json(*d.definition->comment) : json(nullptr);
    std::set<std::string> inputs;
    for (const auto& f : d.flows) {
      for (const auto& in : graph.flows.at(f).inputs) {
        inputs.insert(in.kind == pipeline::FlowInput::Kind::kKafka ? "kafka:" + in.name : in.name);
      }
    }
    out["inputs"] = inputs;
    std::shared_ptr<arrow::Schema> schema = planned.count(name) ? planned.at(name) : nullptr;
    const bool stored = d.kind == sql::DatasetKind::kStreamingTable || d.kind == sql::DatasetKind::kMaterializedView;
    {
      auto props = d.definition ? d.definition->properties : std::map<std::string, std::string>{};
      if (auto y = config.table_properties.find(name); y != config.table_properties.end()) {
        for (const auto& [k, v] : y->second) props[k] = v;
      }
      out["temporary"] = stored && sql::is_temporary_table(props);
    }
    if (stored) {
      const auto path = config.table_path(name).string();
      out["path"] = config.objects->display(path);
      delta::LogStore store(config.objects, path);
      ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(store));
      out["exists"] = snapshot != nullptr;
      if (snapshot) {
        const auto& m = snapshot->metadata();
        out["comment"] = m.description ? json(*m.description) : json(nullptr);  // what readers see
        out["version"] = snapshot->version().value();
        const int64_t records = snapshot->num_records();
        out["num_rows"] = records >= 0 ? json(records) : json(nullptr);
        out["size_bytes"] = snapshot->size_bytes();
        out["num_files"] = snapshot->num_files();
        out["partition_columns"] = m.partition_columns;
        out["properties"] = m.configuration;
        ARROW_ASSIGN_OR_RAISE(auto committed, store.commit_timestamp(snapshot->version()));
        out["last_update"] = iso_millis(committed);
        out["last_update_ms"] = committed;
        schema = snapshot->schema();  // the table's own columns, comments and tags
      }
      if (auto r = refreshed.find(name); r != refreshed.end()) {
        // A materialized view whose inputs did not change commits nothing but is up to date.
        out["last_refresh"] = iso_millis(r->second);
        out["last_refresh_ms"] = r->second;
      }
      const int64_t latest = std::max(out.value("last_update_ms", int64_t{0}), out.value("last_refresh_ms", int64_t{0}));
      out["freshness_seconds"] = latest > 0 ? json((now - latest) / 1000.0) : json(nullptr);
    }
    json columns = json::array();
    if (schema) {
      const auto& columns_lineage = lineage.count(name) ? lineage.at(name) : decltype(lineage)::mapped_type{};
      for (const auto& field : schema->fields()) {
        auto c = column_json(*field);
        c["lineage"] = json::array();
        for (const auto& [column, sources] : columns_lineage) {
          if (column == field->name()) c["lineage"] = sources;
        }
        columns.push_back(std::move(c));
      }
    }
    out["columns"] = columns;
    datasets.push_back(std::move(out));
  }
  return json{{"pipeline", config.name}, {"generated_at", iso_millis(now)}, {"datasets", datasets}};
}

namespace {

// Without `all`, temporary tables are left out: they are the pipeline's own, not published.
arrow::Result<json> build_catalog(const std::string& dir, bool all, std::vector<std::string>& warnings) {
  ARROW_ASSIGN_OR_RAISE(auto config, pipeline::load_pipeline_config(dir));
  ARROW_ASSIGN_OR_RAISE(auto files, pipeline::load_sql_sources(config));
  ARROW_ASSIGN_OR_RAISE(auto graph, pipeline::build_graph(std::move(files)));
  ARROW_ASSIGN_OR_RAISE(auto catalog, sluice::cli::build_catalog(config, graph, warnings));
  if (!all) {
    json published = json::array();
    for (auto& d : catalog["datasets"]) {
      if (!d.value("temporary", false)) published.push_back(std::move(d));
    }
    catalog["datasets"] = std::move(published);
  }
  return catalog;
}

std::string size_text(int64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024.0));
}

void print_text(const json& catalog) {
  std::cout << "pipeline " << catalog["pipeline"].get<std::string>() << "\n";
  for (const auto& d : catalog["datasets"]) {
    std::cout << "\n" << d["name"].get<std::string>() << " (" << (d.value("temporary", false) ? "temporary " : "")
              << d["kind"].get<std::string>() << ")";
    if (d["comment"].is_string()) std::cout << ": " << d["comment"].get<std::string>();
    std::cout << "\n";
    if (!d["inputs"].empty()) {
      std::string in;
      for (const auto& i : d["inputs"]) in += (in.empty() ? "" : ", ") + i.get<std::string>();
      std::cout << "  inputs: " << in << "\n";
    }
    if (d.contains("path")) {
      std::cout << "  table: " << d["path"].get<std::string>();
      if (d.value("exists", false)) {
        std::cout << fmt::format(", version {}, {} rows, {} files, {}", d["version"].get<int64_t>(),
                                 d["num_rows"].is_null() ? std::string("?") : std::to_string(d["num_rows"].get<int64_t>()),
                                 d["num_files"].get<int64_t>(), size_text(d["size_bytes"].get<int64_t>()))
                  << "\n  last update: " << d["last_update"].get<std::string>();
        if (d.contains("last_refresh")) std::cout << ", last refresh: " << d["last_refresh"].get<std::string>();
        if (d["freshness_seconds"].is_number()) std::cout << fmt::format(" ({:.0f} s ago)", d["freshness_seconds"].get<double>());
      } else {
        std::cout << " (not created yet)";
      }
      std::cout << "\n";
    }
    for (const auto& c : d["columns"]) {
      std::cout << "  - " << c["name"].get<std::string>() << " " << c["type"].get<std::string>()
                << (c["nullable"].get<bool>() ? "" : " NOT NULL");
      if (c["comment"].is_string()) std::cout << " '" << c["comment"].get<std::string>() << "'";
      for (const auto& [tag, info] : c["tags"].items()) {
        std::cout << " [" << tag;
        if (!info.value("value", "").empty()) std::cout << "=" << info["value"].get<std::string>();
        if (info.contains("derivation")) std::cout << ", " << info["derivation"].get<std::string>();
        std::cout << "]";
      }
      if (!c["lineage"].empty()) {
        std::string from;
        for (const auto& s : c["lineage"]) from += (from.empty() ? "" : ", ") + s.get<std::string>();
        std::cout << " <- " << from;
      }
      std::cout << "\n";
    }
  }
}

}  // namespace

void add_catalog_command(CLI::App& app, int* exit_code) {
  static std::string dir;
  static std::string format = "text";
  auto* c = app.add_subcommand(
      "catalog", "List a pipeline's datasets: columns, types, comments, tags, lineage, rows, size, freshness");
  c->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml and .sql files")->required();
  c->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));
  static bool all = false;
  c->add_flag("--all", all, "Also list temporary tables (CREATE TEMPORARY ..., @dlt.table(temporary=True))");
  c->callback([exit_code] {
    std::vector<std::string> warnings;
    auto catalog = build_catalog(dir, all, warnings);
    for (const auto& w : warnings) std::cerr << "sluice: warning: " << w << "\n";
    if (!catalog.ok()) {
      std::cerr << "sluice: error: " << catalog.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    if (format == "json") {
      std::cout << catalog->dump(2) << "\n";
    } else {
      print_text(*catalog);
    }
  });
}

}  // namespace sluice::cli
