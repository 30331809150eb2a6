// The JSON REST API and /metrics of `sluice serve` and `sluice run --serve`: routes a GET
// request to what it reads (status, catalog, event log) and answers with JSON or the
// Prometheus text. Reads only committed state: the event log and the tables' Delta logs.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
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
  // Every event, oldest first; nullopt when the pipeline never ran.
  virtual arrow::Result<std::optional<std::vector<pipeline::StoredEvent>>> events() const = 0;
};

struct ApiOptions {
  std::optional<double> cpu_price_per_hour;   // pipeline.yaml serve.cpu_price_per_hour
  std::optional<int64_t> run_started_micros;  // set when the pipeline runs in this process
};

// Answers one request: 200 with JSON or metrics text, 404 (unknown path or dataset), 400 (a bad
// or unknown parameter, named), 405 (not GET/HEAD), 500 (storage unreadable), all errors as
// {"error": "..."}.
ApiResponse handle_request(const PipelineReader& reader, const ApiOptions& options, const ApiRequest& request);

// An event as the API shows it.
nlohmann::json event_json(const pipeline::StoredEvent& e);

}  // namespace sluice::server
