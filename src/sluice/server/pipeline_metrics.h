// The /metrics exposition of a pipeline: row counters, expectation counts, Kafka lag, watermark,
// update durations, state size and table freshness from the event log and the tables (what
// `sluice status` reads), and the serving process's CPU and memory.
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/pipeline/event_log.h"

namespace sluice::server {

// The serving process, from /proc/self (Linux).
struct ProcessUsage {
  double cpu_seconds = 0;       // user + system
  int64_t resident_bytes = 0;   // VmRSS
  double start_time_seconds = 0;  // since the epoch
};

// This process's usage; an error when /proc/self cannot be read.
arrow::Result<ProcessUsage> process_usage();

struct MetricsInputs {
  const nlohmann::json* status = nullptr;                     // `sluice status --format json`
  const nlohmann::json* catalog = nullptr;                    // `sluice catalog --format json`
  const std::vector<pipeline::StoredEvent>* events = nullptr;  // oldest first
  std::optional<ProcessUsage> process;
  // `serve: {cpu_price_per_hour: P}`; with `run_started_micros` (the pipeline runs in this
  // process, `sluice run --serve`) the cost per million Kafka records read since then.
  std::optional<double> cpu_price_per_hour;
  std::optional<int64_t> run_started_micros;
  int64_t now_micros = 0;
};

// The details.flow_progress object of an event, or null.
const nlohmann::json& flow_progress_of(const pipeline::StoredEvent& e);

// The exposition text (Prometheus text format 0.0.4).
arrow::Result<std::string> pipeline_metrics_text(const MetricsInputs& in);

}  // namespace sluice::server
