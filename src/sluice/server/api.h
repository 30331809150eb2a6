// The JSON REST API and /metrics of `sluice serve` and `sluice run --serve`: routes a GET
// request to what it reads (status, catalog, event log) and answers with JSON or the
// Prometheus text. Reads only committed state: the event log and the tables' Delta logs.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/pipeline/event_log.h"

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
  virtual arrow::Result<nlohmann::json> status(
      nlohmann::json* catalog, const arrow::Result<std::optional<std::vector<pipeline::StoredEvent>>>& events) const = 0;
  // Every event, oldest first (pipeline::event_before); null when the pipeline never ran. Asked
  // for every request and every poll of a live stream: implementations cache (EventLogCache).
  virtual arrow::Result<std::shared_ptr<const std::vector<pipeline::StoredEvent>>> event_log() const = 0;
};

struct ApiOptions {
  std::optional<double> cpu_price_per_hour;   // pipeline.yaml serve.cpu_price_per_hour
  std::optional<int64_t> run_started_micros;  // set when the pipeline runs in this process
  std::map<std::string, double> freshness_targets_seconds;  // pipeline.yaml serve.freshness_targets
};

// Answers one request: 200 with JSON or metrics text, 404 (unknown path or dataset), 400 (a bad
// or unknown parameter, named), 405 (not GET/HEAD), 500 (storage unreadable), all errors as
// {"error": "..."}.
ApiResponse handle_request(const PipelineReader& reader, const ApiOptions& options, const ApiRequest& request);

// An event as the API shows it (with its stream id).
nlohmann::json event_json(const pipeline::StoredEvent& e);

// --- /api/stream: server-sent events (http_server.cc runs the connection) -------------------

// Where a live stream stands: the key of the last event sent, in event_before's order.
struct EventCursor {
  int64_t timestamp_micros = 0;
  std::string update_id;
  int64_t seq = 0;
};

// The SSE id of an event, "<timestamp micros>.<sequence>.<update id>": a client's Last-Event-ID
// resumes after it, across reconnects and server restarts (it is the event's place in the log's
// order, not a counter of this server).
std::string event_stream_id(const pipeline::StoredEvent& e);
// An id event_stream_id made; anything else is an error quoting it.
arrow::Result<EventCursor> parse_event_stream_id(std::string_view id);
// The index of the first event after `cursor` in `events` (sorted by event_before).
size_t first_event_after(const std::vector<pipeline::StoredEvent>& events, const EventCursor& cursor);
// One SSE message: "id: ...\ndata: <event_json on one line>\n\n".
std::string event_stream_frame(const pipeline::StoredEvent& e);

// What a stream request asks: the filters (dataset, type) and where to start. Unknown or
// repeated parameters, and an id that is not one of ours, are errors (400).
struct StreamRequest {
  std::optional<std::string> dataset;
  std::optional<std::string> type;
  // From the Last-Event-ID header (a browser's reconnect) or else the last_event_id parameter
  // (a page that read /api/events first); none: only events appended from now on.
  std::optional<EventCursor> after;
};
arrow::Result<StreamRequest> parse_stream_request(const ApiRequest& request, const std::string& last_event_id_header);
bool stream_wants(const StreamRequest& stream, const pipeline::StoredEvent& e);

}  // namespace sluice::server
