// The JSON REST API and /metrics of `sluice serve` and `sluice run --serve`: routes a GET
// request to what it reads (status, catalog, event log) and answers with JSON or the
// Prometheus text. Reads only committed state: the event log and the tables' Delta logs.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <limits>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::server {

struct ApiRequest {
  std::string method;  // GET, HEAD, POST, ...
  std::string path;    // without the query
  std::multimap<std::string, std::string> params;  // query parameters, decoded
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// What the API reads. Implemented by the CLI, where `sluice status` and `sluice catalog` build
// their JSON; called from the server's threads (concurrently: implementations keep no shared
// mutable state, or guard it).
class PipelineReader {
 public:
  virtual ~PipelineReader() = default;
  // name, storage (as the user wrote it), mode.
  virtual nlohmann::json pipeline() const = 0;
  // `sluice status --format json` and, in `catalog`, `sluice catalog --format json`, built
  // from `events` (what events() returned for this request: the log is read once a request).
  // `events` is shared, not copied (a log of 100k events is tens of MB).
  virtual arrow::Result<nlohmann::json> status(nlohmann::json* catalog,
                                               const arrow::Result<pipeline::SharedEvents>& events) const = 0;
  // Every event, oldest first (pipeline::event_before), and the log's version; null events when
  // the pipeline never ran. Asked for every request: implementations cache (EventLogCache).
  virtual arrow::Result<pipeline::EventLogView> event_log() const = 0;
  // What the commits from `first_version` on appended (EventLogCache::appended_since), for
  // /api/stream, polled by every live stream.
  virtual arrow::Result<pipeline::AppendedEvents> appended_since(int64_t first_version) const = 0;
  // A KPI's points from its table's latest snapshot (kpi_series.h read_kpi_series).
  virtual arrow::Result<nlohmann::json> kpi_series(const pipeline::KpiConfig& kpi) const = 0;
};

struct ApiOptions {
  std::optional<double> cpu_price_per_hour;   // pipeline.yaml serve.cpu_price_per_hour
  std::optional<int64_t> run_started_micros;  // set when the pipeline runs in this process
  std::map<std::string, double> freshness_targets_seconds;  // pipeline.yaml serve.freshness_targets
  std::vector<pipeline::KpiConfig> kpis;                    // pipeline.yaml serve.kpis, checked
};

// Answers one request: 200 with JSON or metrics text, 404 (unknown path or dataset), 400 (a bad
// or unknown parameter, named), 405 (not GET/HEAD), 500 (storage unreadable), all errors as
// {"error": "..."}.
ApiResponse handle_request(const PipelineReader& reader, const ApiOptions& options, const ApiRequest& request);

// An event as the API shows it; its "id" ("<timestamp micros>.<sequence>.<update id>") names it
// alike in /api/events and /api/stream (the page removes duplicates by it).
nlohmann::json event_json(const pipeline::StoredEvent& e);

// --- /api/stream: server-sent events (http_server.cc runs the connection) -------------------

// Where a live stream stands: the event log's Delta version and the row within what that
// commit appended of the last event passed; kWholeVersion: every row of that version. Events
// reach the log in commit order, not time order (scale-out workers flush every 2 s, clocks
// step back), so a position in the log's versions, as a Delta streaming source keeps, misses none.
struct EventCursor {
  static constexpr int64_t kWholeVersion = std::numeric_limits<int64_t>::max();
  int64_t version = -1;  // -1: before the first commit
  int64_t row = kWholeVersion;
  // The first version the stream still has to read, and the first row in it.
  int64_t next_version() const { return row == kWholeVersion ? version + 1 : version; }
  int64_t next_row(int64_t v) const { return v == version && row != kWholeVersion ? row + 1 : 0; }
};

// The SSE id of the event at `row` of what `version` appended, "<version>.<row>"; a client's
// Last-Event-ID resumes after it, across reconnects and server restarts. "<version>" alone
// (/api/events' stream_after) resumes after all of that version.
std::string event_stream_id(int64_t version, int64_t row);
// An id event_stream_id made, or a version alone; anything else is an error quoting it.
arrow::Result<EventCursor> parse_event_stream_id(std::string_view id);
// One SSE message: "id: <version>.<row>\ndata: <event_json on one line>\n\n".
std::string event_stream_frame(const pipeline::StoredEvent& e, int64_t version, int64_t row);

// What a stream request asks: the filters (dataset, type) and where to start. Unknown or
// repeated parameters, and an id that is not one of ours, are errors (400).
struct StreamRequest {
  std::optional<std::string> dataset;
  std::optional<std::string> type;
  // From the Last-Event-ID header (a browser's reconnect) or else the last_event_id parameter
  // (a page that read /api/events first: its stream_after); none: only events appended from now on.
  std::optional<EventCursor> after;
};
arrow::Result<StreamRequest> parse_stream_request(const ApiRequest& request, const std::string& last_event_id_header);
bool stream_wants(const StreamRequest& stream, const pipeline::StoredEvent& e);

}  // namespace sluice::server
