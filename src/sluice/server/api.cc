// The JSON REST API and /metrics (api.h).
#include "sluice/server/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "sluice/common/ids.h"
#include "sluice/common/json_fields.h"
#include "sluice/common/text.h"
#include "sluice/common/time_text.h"
#include "sluice/server/kpi_series.h"
#include "sluice/server/pipeline_metrics.h"

namespace sluice::server {

namespace {

using nlohmann::json;

constexpr int64_t kDefaultEventLimit = 100;
constexpr int64_t kMaxEventLimit = 1000;
constexpr int64_t kDefaultExpectationLimit = 1000;
constexpr int64_t kMaxExpectationLimit = 10000;

ApiResponse json_response(int status, const json& body) {
  // Replace: a table or event text that is not UTF-8 must not make dump() throw.
  return {status, "application/json", body.dump(2, ' ', false, json::error_handler_t::replace) + "\n"};
}

ApiResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

bool is_update(const pipeline::StoredEvent& e) {
  return e.event_type == "flow_progress" && !field_or(flow_progress_of(e), "status", "").empty();
}

// The query parameters of an endpoint: an unknown one, or one given twice, is refused by name.
struct Params {
  std::map<std::string, std::string> values;
  std::optional<std::string> error;
};

Params check_params(const ApiRequest& request, const std::set<std::string>& allowed) {
  Params out;
  for (const auto& [name, value] : request.params) {
    if (!allowed.count(name)) {
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      out.error = fmt::format("unknown parameter '{}' for {}{}", name, request.path,
                              known.empty() ? std::string("; it takes none") : "; allowed: " + known);
      return out;
    }
    if (!out.values.emplace(name, value).second) {
      out.error = fmt::format("parameter '{}' is given more than once", name);
      return out;
    }
  }
  return out;
}

// A whole-number parameter within [min, max], or an error naming it.
arrow::Result<int64_t> int_param(const Params& p, const std::string& name, int64_t fallback, int64_t min, int64_t max) {
  auto it = p.values.find(name);
  if (it == p.values.end()) return fallback;
  auto n = parse_int64(it->second, "parameter '" + name + "'");
  if (!n.ok() || *n < min || *n > max) {
    return arrow::Status::Invalid(fmt::format("parameter '{}' must be a whole number from {} to {}, not '{}'", name, min,
                                              max, quote_for_error(it->second)));
  }
  return *n;
}

ApiResponse pipeline_endpoint(const PipelineReader& reader, const ApiOptions& options,
                              const std::vector<pipeline::StoredEvent>& events) {
  json out = reader.pipeline();
  out["freshness_targets"] = json::object();
  for (const auto& [name, seconds] : options.freshness_targets_seconds) out["freshness_targets"][name] = seconds;
  // The state of the latest update: RUNNING, COMPLETED or FAILED, as its update_progress said.
  out["state"] = events.empty() ? "never run" : "unknown";
  out["update_id"] = nullptr;
  out["state_time"] = nullptr;
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->event_type != "update_progress" || !it->details.is_object()) continue;
    const auto& u = it->details.value("update_progress", json::object());
    const auto state = field_or(u, "state", "");
    if (state.empty()) continue;
    out["state"] = state;
    out["update_id"] = it->update_id;
    out["state_time"] = format_timestamp_micros(it->timestamp_micros, true, false);
    break;
  }
  out["events"] = events.size();
  return json_response(200, out);
}

ApiResponse flows_endpoint(const std::vector<pipeline::StoredEvent>& events) {
  std::map<std::string, const pipeline::StoredEvent*> latest;  // flow -> its latest update
  for (const auto& e : events) {
    if (is_update(e)) latest[e.flow.empty() ? e.dataset : e.flow] = &e;
  }
  json flows = json::array();
  for (const auto& [flow, e] : latest) {
    flows.push_back({{"flow", flow},
                     {"dataset", e->dataset},
                     {"status", flow_progress_of(*e)["status"]},
                     {"timestamp", format_timestamp_micros(e->timestamp_micros, true, false)},
                     {"update_id", e->update_id},
                     {"progress", flow_progress_of(*e)}});
  }
  return json_response(200, {{"flows", flows}});
}

ApiResponse events_endpoint(const ApiRequest& request, const std::vector<pipeline::StoredEvent>& events,
                            int64_t version) {
  auto p = check_params(request, {"flow", "dataset", "type", "level", "since", "limit"});
  if (p.error) return error_response(400, *p.error);
  auto limit = int_param(p, "limit", kDefaultEventLimit, 1, kMaxEventLimit);
  if (!limit.ok()) return error_response(400, limit.status().message());
  auto since = int_param(p, "since", 0, 0, int64_t{1} << 52);
  if (!since.ok()) return error_response(400, since.status().message() + " (milliseconds since the epoch)");
  auto wanted = [&](const char* name, const std::string& value) {
    auto it = p.values.find(name);
    return it == p.values.end() || it->second == value;
  };
  std::vector<const pipeline::StoredEvent*> matched;
  for (const auto& e : events) {
    if (e.timestamp_micros / 1000 < *since) continue;
    if (!wanted("flow", e.flow) || !wanted("dataset", e.dataset) || !wanted("type", e.event_type) ||
        !wanted("level", e.level)) {
      continue;
    }
    matched.push_back(&e);
  }
  // The newest `limit`, oldest first.
  const size_t from = matched.size() > static_cast<size_t>(*limit) ? matched.size() - static_cast<size_t>(*limit) : 0;
  json out = json::array();
  for (size_t i = from; i < matched.size(); ++i) out.push_back(event_json(*matched[i]));
  // stream_after: the Last-Event-ID that streams what commits after this read append.
  return json_response(200, {{"events", out},
                             {"matched", matched.size()},
                             {"truncated", from > 0},
                             {"stream_after", std::to_string(version)}});
}

ApiResponse expectations_endpoint(const ApiRequest& request, const std::vector<pipeline::StoredEvent>& events) {
  auto p = check_params(request, {"dataset", "expectation", "limit"});
  if (p.error) return error_response(400, *p.error);
  auto limit = int_param(p, "limit", kDefaultExpectationLimit, 1, kMaxExpectationLimit);
  if (!limit.ok()) return error_response(400, limit.status().message());
  json rows = json::array();
  for (const auto& e : events) {
    if (!is_update(e)) continue;
    if (p.values.count("dataset") && p.values.at("dataset") != e.dataset) continue;
    const auto& quality = flow_progress_of(e).value("data_quality", json::object());
    if (!quality.is_object() || !quality.contains("expectations") || !quality["expectations"].is_array()) continue;
    for (const auto& x : quality["expectations"]) {
      const auto name = field_or(x, "name", "?");
      if (p.values.count("expectation") && p.values.at("expectation") != name) continue;
      const int64_t passed = field_or(x, "passed_records", int64_t{0});
      const int64_t failed = field_or(x, "failed_records", int64_t{0});
      rows.push_back({{"dataset", e.dataset},
                      {"flow", e.flow},
                      {"expectation", name},
                      {"update_id", e.update_id},
                      {"timestamp", format_timestamp_micros(e.timestamp_micros, true, false)},
                      {"timestamp_ms", e.timestamp_micros / 1000},
                      {"passed_records", passed},
                      {"failed_records", failed},
                      {"pass_rate", passed + failed > 0 ? json(static_cast<double>(passed) / static_cast<double>(passed + failed))
                                                        : json(nullptr)}});
    }
  }
  const bool truncated = rows.size() > static_cast<size_t>(*limit);
  if (truncated) rows.erase(rows.begin(), rows.end() - *limit);  // the newest
  return json_response(200, {{"expectations", rows}, {"truncated", truncated}});
}

// Schema history per update (rs): each COMPLETED update that committed rows or changed the
// table's columns, and each FAILED one whose landed commits changed columns or wrote rows to a
// table with `_rescued_data` (its commits before the failure stay in the table): its status,
// table version and time, the columns its commits added, removed or retyped, and for Kafka flows
// whose table has `_rescued_data` the rows written and how many of them rescued something.
// Events written before these fields existed show empty changes and null rescued counts.
ApiResponse schema_history_endpoint(const ApiRequest& request, const std::vector<pipeline::StoredEvent>& events) {
  auto p = check_params(request, {"dataset", "limit"});
  if (p.error) return error_response(400, *p.error);
  auto limit = int_param(p, "limit", kDefaultExpectationLimit, 1, kMaxExpectationLimit);
  if (!limit.ok()) return error_response(400, limit.status().message());
  auto strings = [](const json& change, const char* key) {
    json out = json::array();
    if (!change.is_object() || !change.contains(key) || !change[key].is_array()) return out;
    for (const auto& v : change[key]) {
      if (v.is_string()) out.push_back(v);
    }
    return out;
  };
  json rows = json::array();
  for (const auto& e : events) {
    if (!is_update(e) || (p.values.count("dataset") && p.values.at("dataset") != e.dataset)) continue;
    const auto& progress = flow_progress_of(e);
    const std::string status = field_or(progress, "status", "");
    if (status != "COMPLETED" && status != "FAILED") continue;
    const json change = progress.value("schema_change", json());
    const json rescued = progress.value("rescued_data", json());
    const json metrics = progress.value("metrics", json::object());
    const int64_t written = metrics.is_object() ? field_or(metrics, "num_output_rows", int64_t{0}) : 0;
    const int64_t rescue_written = rescued.is_object() ? field_or(rescued, "num_rows", int64_t{0}) : 0;
    if (status == "FAILED") {
      // A failed update's report of rows is dropped (num_output_rows omits its landed commits);
      // what those commits did is in schema_change and rescued_data.
      if (rescue_written <= 0 && !change.is_object()) continue;
    } else if (written <= 0 && !change.is_object()) {
      continue;  // nothing committed: no point of the history
    }
    json row = {{"dataset", e.dataset},
                {"flow", e.flow},
                {"update_id", e.update_id},
                {"status", status},
                {"timestamp", format_timestamp_micros(e.timestamp_micros, true, false)},
                {"timestamp_ms", e.timestamp_micros / 1000},
                {"table_version", progress.value("table_version", json())},
                {"rows_written", written},
                {"columns_added", strings(change, "columns_added")},
                {"columns_removed", strings(change, "columns_removed")},
                {"types_changed", strings(change, "types_changed")},
                {"rescued_rows", nullptr},
                {"rescue_rows_written", nullptr},
                {"rescued_rate", nullptr}};
    if (rescued.is_object()) {
      const int64_t n = field_or(rescued, "num_rescued_rows", int64_t{0});
      row["rescued_rows"] = n;
      row["rescue_rows_written"] = rescue_written;
      if (rescue_written > 0) row["rescued_rate"] = static_cast<double>(n) / static_cast<double>(rescue_written);
    }
    rows.push_back(std::move(row));
  }
  const bool truncated = rows.size() > static_cast<size_t>(*limit);
  if (truncated) rows.erase(rows.begin(), rows.end() - *limit);  // the newest
  return json_response(200, {{"schema_history", rows}, {"truncated", truncated}});
}

ApiResponse dataset_endpoint(const std::string& name, const json& status, const json& catalog,
                             const std::vector<pipeline::StoredEvent>& events) {
  json out;
  for (const auto& d : catalog.value("datasets", json::array())) {
    if (d.value("name", "") == name) out = d;
  }
  json state;
  for (const auto& d : status.value("datasets", json::array())) {
    if (d.value("name", "") == name) state = d;
  }
  if (out.is_null() && state.is_null()) return error_response(404, fmt::format("no dataset '{}' in this pipeline", name));
  if (out.is_null()) out = {{"name", name}};  // a sink: no table
  out["status"] = state;
  const pipeline::StoredEvent* latest = nullptr;
  for (const auto& e : events) {
    if (is_update(e) && e.dataset == name) latest = &e;
  }
  out["latest_progress"] = latest ? event_json(*latest) : json(nullptr);
  return json_response(200, out);
}

// The dataset graph: every dataset and sink (status rows), the sources they read (catalog
// inputs such as "kafka:topic" that are not datasets) as nodes of their own, and an edge per input.
ApiResponse graph_endpoint(const json& catalog, const json& status) {
  json nodes = json::array();
  json edges = json::array();
  std::set<std::string> names;
  for (const auto& d : status.value("datasets", json::array())) {
    names.insert(d.value("name", ""));
    nodes.push_back({{"name", d.value("name", "")}, {"kind", d.value("kind", json())}, {"source", false}});
  }
  std::set<std::string> sources;
  for (const auto& d : catalog.value("datasets", json::array())) {
    for (const auto& in : d.value("inputs", json::array())) {
      if (!in.is_string()) continue;
      const auto input = in.get<std::string>();
      if (!names.count(input) && sources.insert(input).second) {
        const auto colon = input.find(':');
        nodes.push_back({{"name", input}, {"kind", colon == std::string::npos ? "source" : input.substr(0, colon)},
                         {"source", true}});
      }
      edges.push_back({{"from", input}, {"to", d.value("name", "")}});
    }
  }
  return json_response(200, {{"nodes", nodes}, {"edges", edges}});
}

// /api/kpis: the KPIs configured; /api/kpis/<name>: one KPI's points, read from its table now.
ApiResponse kpis_endpoint(const PipelineReader& reader, const ApiOptions& options, const std::string& path) {
  if (path == "/api/kpis") {
    json list = json::array();
    for (const auto& k : options.kpis) list.push_back(kpi_json(k));
    return json_response(200, {{"kpis", list}});
  }
  const auto name = path.substr(std::string("/api/kpis/").size());
  for (const auto& k : options.kpis) {
    if (k.name != name) continue;
    auto series = reader.kpi_series(k);
    if (!series.ok()) return error_response(500, series.status().message());
    return json_response(200, *series);
  }
  std::string known;
  for (const auto& k : options.kpis) known += (known.empty() ? "" : ", ") + k.name;
  return error_response(404, fmt::format("no KPI '{}' in pipeline.yaml serve.kpis{}", quote_for_error(name),
                                         known.empty() ? std::string(" (none is configured)") : "; configured: " + known));
}

ApiResponse route(const PipelineReader& reader, const ApiOptions& options, const ApiRequest& request) {
  const auto& path = request.path;
  static const std::set<std::string> kNoParams;
  const bool known = path == "/api/stream" || path == "/api/graph" || path == "/api/pipeline" || path == "/api/datasets" || path.rfind("/api/datasets/", 0) == 0 ||
                     path == "/api/flows" || path == "/api/events" || path == "/api/expectations" ||
                     path == "/api/schema_history" || path == "/api/kpis" || path.rfind("/api/kpis/", 0) == 0 ||
                     path == "/metrics" || path == "/api" || path == "/api/";
  if (!known) {
    return error_response(404, fmt::format("no such path '{}'; the API: /api/pipeline, /api/datasets, "
                                           "/api/datasets/<name>, /api/graph, /api/flows, /api/events, /api/expectations, /api/schema_history, /api/kpis, "
                                           "/api/kpis/<name>, /api/stream, /metrics",
                                           quote_for_error(path)));
  }
  if (path == "/api" || path == "/api/") {
    return json_response(200, {{"endpoints", {"/api/pipeline", "/api/datasets", "/api/datasets/<name>", "/api/graph", "/api/flows",
                                              "/api/events", "/api/expectations", "/api/schema_history", "/api/kpis", "/api/kpis/<name>",
                                              "/api/stream", "/metrics"}}});
  }
  if (path != "/api/events" && path != "/api/expectations" && path != "/api/schema_history") {
    auto p = check_params(request, kNoParams);
    if (p.error) return error_response(400, *p.error);
  }
  if (path == "/api/stream") {  // http_server.cc answers a stream; here only when asked directly
    return error_response(400, "/api/stream is a server-sent event stream: ask with Accept: text/event-stream");
  }
  if (path == "/api/kpis" || path.rfind("/api/kpis/", 0) == 0) return kpis_endpoint(reader, options, path);
  // Read once for the whole request: the status and the catalog are built from this same read.
  auto view = reader.event_log();
  if (!view.ok()) return error_response(500, view.status().message());
  static const std::vector<pipeline::StoredEvent> kNone;
  const auto& events = view->events ? *view->events : kNone;
  if (path == "/api/pipeline") return pipeline_endpoint(reader, options, events);
  if (path == "/api/flows") return flows_endpoint(events);
  if (path == "/api/events") return events_endpoint(request, events, view->version);
  if (path == "/api/expectations") return expectations_endpoint(request, events);
  if (path == "/api/schema_history") return schema_history_endpoint(request, events);
  json catalog;
  auto status = reader.status(&catalog, arrow::Result<pipeline::SharedEvents>(view->events));
  if (!status.ok()) return error_response(500, status.status().message());
  if (path == "/api/datasets") return json_response(200, *status);
  if (path == "/api/graph") return graph_endpoint(catalog, *status);
  if (path == "/metrics") {
    MetricsInputs in;
    in.status = &*status;
    in.catalog = &catalog;
    in.events = &events;
    auto usage = process_usage();
    if (usage.ok()) in.process = *usage;
    in.cpu_price_per_hour = options.cpu_price_per_hour;
    in.run_started_micros = options.run_started_micros;
    in.now_micros = now_millis() * 1000;
    auto text = pipeline_metrics_text(in);
    if (!text.ok()) return error_response(500, text.status().message());
    return {200, "text/plain; version=0.0.4; charset=utf-8", std::move(*text)};
  }
  const auto name = path.substr(std::string("/api/datasets/").size());
  return dataset_endpoint(name, *status, catalog, events);
}

}  // namespace

json event_json(const pipeline::StoredEvent& e) {
  return {{"id", fmt::format("{}.{}.{}", e.timestamp_micros, e.seq, e.update_id)},
          {"timestamp", format_timestamp_micros(e.timestamp_micros, true, false)},
          {"timestamp_ms", e.timestamp_micros / 1000},
          {"update_id", e.update_id},
          {"sequence", e.seq},
          {"level", e.level},
          {"event_type", e.event_type},
          {"message", e.message},
          {"flow", e.flow.empty() ? json(nullptr) : json(e.flow)},
          {"dataset", e.dataset.empty() ? json(nullptr) : json(e.dataset)},
          {"details", e.details.is_discarded() ? json(nullptr) : e.details}};
}

std::string event_stream_id(int64_t version, int64_t row) { return fmt::format("{}.{}", version, row); }

arrow::Result<EventCursor> parse_event_stream_id(std::string_view id) {
  auto bad = [&] {
    return arrow::Status::Invalid(fmt::format(
        "event id '{}' is not one this server gave (<log version>.<row>, or <log version>)", quote_for_error(id)));
  };
  const auto dot = id.find('.');
  auto version = parse_int64(id.substr(0, dot), "version");
  if (!version.ok() || *version < -1) return bad();
  if (dot == std::string_view::npos) return EventCursor{*version, EventCursor::kWholeVersion};
  auto row = parse_int64(id.substr(dot + 1), "row");
  if (!row.ok() || *row < 0 || *version < 0) return bad();
  return EventCursor{*version, *row};
}

std::string event_stream_frame(const pipeline::StoredEvent& e, int64_t version, int64_t row) {
  // dump() escapes newlines inside strings: the data is one line, as SSE needs.
  auto data = event_json(e);
  data["stream_id"] = event_stream_id(version, row);
  return fmt::format("id: {}\ndata: {}\n\n", event_stream_id(version, row),
                     data.dump(-1, ' ', false, json::error_handler_t::replace));
}

arrow::Result<StreamRequest> parse_stream_request(const ApiRequest& request, const std::string& last_event_id_header) {
  auto p = check_params(request, {"dataset", "type", "last_event_id"});
  if (p.error) return arrow::Status::Invalid(*p.error);
  StreamRequest out;
  if (p.values.count("dataset")) out.dataset = p.values.at("dataset");
  if (p.values.count("type")) out.type = p.values.at("type");
  std::string from = last_event_id_header;
  if (from.empty() && p.values.count("last_event_id")) from = p.values.at("last_event_id");
  if (!from.empty()) {
    ARROW_ASSIGN_OR_RAISE(out.after, parse_event_stream_id(from));
  }
  return out;
}

bool stream_wants(const StreamRequest& stream, const pipeline::StoredEvent& e) {
  return (!stream.dataset || *stream.dataset == e.dataset) && (!stream.type || *stream.type == e.event_type);
}

ApiResponse handle_request(const PipelineReader& reader, const ApiOptions& options, const ApiRequest& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    return error_response(405, fmt::format("method {} is not allowed: the API is read-only (GET)", request.method));
  }
  try {
    return route(reader, options, request);
  } catch (const nlohmann::json::exception& e) {  // an event whose details are not of the shape written
    return error_response(500, std::string("the event log holds an event of an unexpected shape: ") + e.what());
  }
}

}  // namespace sluice::server
