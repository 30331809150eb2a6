// The /metrics exposition of a pipeline (pipeline_metrics.h).
#include "sluice/server/pipeline_metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sluice/common/json_fields.h"
#include "sluice/common/text.h"
#include "sluice/server/metrics_text.h"

namespace sluice::server {

namespace {

using nlohmann::json;

// Every family /metrics can hold: name, type, help. Units are in the names (Prometheus
// conventions: seconds, bytes, records/rows as the counted thing).
struct FamilySpec {
  const char* name;
  MetricType type;
  const char* help;
};

constexpr FamilySpec kFamilies[] = {
    {"sluice_pipeline_healthy", MetricType::kGauge,
     "1 when no flow's latest update FAILED and the event log is readable (sluice status exit 0), else 0"},
    {"sluice_flow_updates_total", MetricType::kCounter,
     "Updates of a flow recorded in the event log (flow_progress events), by their status"},
    {"sluice_flow_input_rows_total", MetricType::kCounter, "Rows a flow read (num_input_rows summed over its updates)"},
    {"sluice_flow_output_rows_total", MetricType::kCounter,
     "Rows a flow wrote to its table or sink (num_output_rows summed over its updates)"},
    {"sluice_flow_dropped_rows_total", MetricType::kCounter,
     "Rows an expectation dropped (ON VIOLATION DROP ROW), summed over the flow's updates"},
    {"sluice_flow_quarantined_rows_total", MetricType::kCounter,
     "Rows written to the <table>_quarantine side table, summed over the flow's updates"},
    {"sluice_flow_dead_lettered_rows_total", MetricType::kCounter,
     "Records that could not be decoded, written to <table>_dead_letter, summed over the flow's updates"},
    {"sluice_rescued_rows_total", MetricType::kCounter,
     "Rows a Kafka flow wrote whose _rescued_data column is not NULL (fields that did not fit the schema), "
     "summed over its updates; only for tables with that column"},
    {"sluice_rescue_rows_written_total", MetricType::kCounter,
     "Rows a Kafka flow wrote to a table with a _rescued_data column, summed over its updates (failed ones "
     "included: their landed commits count); the denominator of the rescued-data rate"},
    {"sluice_flow_late_rows_total", MetricType::kCounter,
     "Rows behind the watermark, dropped by an event-time operator, summed over the flow's updates"},
    {"sluice_flow_update_duration_seconds_total", MetricType::kCounter,
     "Wall time of the flow's updates (read, transform, write and commit) summed; divided by "
     "sluice_flow_updates_total it is the mean update latency"},
    {"sluice_flow_last_update_duration_seconds", MetricType::kGauge,
     "Wall time of the flow's latest update (read, transform, write and commit)"},
    {"sluice_flow_last_update_timestamp_seconds", MetricType::kGauge,
     "When the flow's latest update was recorded, seconds since the epoch"},
    {"sluice_flow_failed", MetricType::kGauge, "1 when the flow's latest update FAILED or was SKIPPED, else 0"},
    {"sluice_expectation_passed_records_total", MetricType::kCounter,
     "Records that met an expectation, summed over the flow's updates"},
    {"sluice_expectation_failed_records_total", MetricType::kCounter,
     "Records that violated an expectation (whatever its ON VIOLATION), summed over the flow's updates"},
    {"sluice_kafka_lag_records", MetricType::kGauge,
     "Records of a Kafka partition not yet in the table, as recorded in the flow's latest progress event "
     "that measured it (high-water mark at that update minus the next offset to read); not a live "
     "broker query"},
    {"sluice_kafka_backlog_records", MetricType::kGauge,
     "Kafka records behind the end offsets over all partitions of a flow, as recorded in its latest "
     "progress event that measured it"},
    {"sluice_watermark_timestamp_seconds", MetricType::kGauge,
     "Event-time watermark of a windowed flow as recorded in its latest progress event, seconds since the epoch"},
    {"sluice_event_time_lag_seconds", MetricType::kGauge,
     "Now minus the flow's recorded watermark: how far event time trails the clock; for a flow without a "
     "watermark that reads Kafka, now minus the newest Kafka record timestamp it committed"},
    {"sluice_flow_commits_total", MetricType::kCounter,
     "Delta commits of the flow's table (each through the streaming commit protocol), summed over its updates"},
    {"sluice_flow_commit_duration_seconds_total", MetricType::kCounter,
     "Wall time of those commits (data files closed, side tables, state, the Delta commit) summed; divided by "
     "sluice_flow_commits_total it is the mean commit latency"},
    {"sluice_flow_last_commit_duration_max_seconds", MetricType::kGauge,
     "The longest commit of the latest update that committed"},
    {"sluice_end_to_end_latency_max_seconds", MetricType::kGauge,
     "Kafka flows, latest update that committed records: the greatest, over its commits, of the commit's end minus "
     "the Kafka timestamp of the oldest record it made visible"},
    {"sluice_end_to_end_latency_min_seconds", MetricType::kGauge,
     "Kafka flows, latest update that committed records: the least, over its commits, of the commit's end minus "
     "the Kafka timestamp of the newest record it made visible"},
    {"sluice_state_rows", MetricType::kGauge,
     "Rows of an operator's state (open windows, materialized-view aggregates) as recorded in the latest progress"},
    {"sluice_state_bytes", MetricType::kGauge,
     "Bytes of an operator's state as recorded in the latest progress: a windowed flow's open windows, an "
     "incremental materialized view's saved partial aggregates"},
    {"sluice_table_version", MetricType::kGauge, "Latest committed Delta version of the table"},
    {"sluice_table_rows", MetricType::kGauge, "Rows in the table's latest snapshot (from the add actions' stats)"},
    {"sluice_table_files", MetricType::kGauge, "Data files in the table's latest snapshot"},
    {"sluice_table_size_bytes", MetricType::kGauge, "Bytes of the data files in the table's latest snapshot"},
    {"sluice_table_last_commit_timestamp_seconds", MetricType::kGauge,
     "When the table's newest commit was written, seconds since the epoch"},
    {"sluice_table_freshness_seconds", MetricType::kGauge,
     "Now minus the table's newest commit (or newest refresh that found nothing to commit), seconds"},
    {"sluice_cost_per_million_records", MetricType::kGauge,
     "CPU cost of one million Kafka records read by this run: process CPU seconds times serve.cpu_price_per_hour "
     "/ 3600, per million records read since the run started (in the price's currency)"},
    {"process_cpu_seconds_total", MetricType::kCounter, "Total user and system CPU time of this sluice process"},
    {"process_resident_memory_bytes", MetricType::kGauge, "Resident memory of this sluice process"},
    {"process_start_time_seconds", MetricType::kGauge, "Start time of this sluice process since the epoch"},
};

double number_or(const json& object, const char* key, double fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

// What the event log says of one flow (dataset and flow name).
struct FlowTotals {
  std::map<std::string, double> updates;  // by status
  double input = 0, output = 0, dropped = 0, quarantined = 0, dead_lettered = 0, late = 0, duration = 0;
  bool has_quarantine = false, has_dead_letter = false, has_late = false;
  double rescued = 0, rescue_written = 0;
  bool has_rescued = false;  // recorded since rs, by Kafka flows whose table has _rescued_data
  const pipeline::StoredEvent* latest = nullptr;
  const pipeline::StoredEvent* lag = nullptr;        // latest that recorded Kafka lag
  const pipeline::StoredEvent* watermark = nullptr;  // latest that recorded a watermark
  const pipeline::StoredEvent* state = nullptr;      // latest that recorded state size
  const pipeline::StoredEvent* commits = nullptr;    // latest that recorded commit timings
  const pipeline::StoredEvent* kafka_time = nullptr;  // latest that recorded end-to-end latency
  double commit_count = 0, commit_seconds = 0;
  bool has_commits = false;
  std::map<std::string, std::pair<double, double>> expectations;  // name -> passed, failed
};

class Writer {
 public:
  explicit Writer(std::string pipeline) : pipeline_(std::move(pipeline)) {}

  arrow::Status declare() {
    for (const auto& f : kFamilies) ARROW_RETURN_NOT_OK(text_.family(f.name, f.type, f.help));
    return arrow::Status::OK();
  }
  // A sample labelled with the pipeline first.
  arrow::Status add(const char* name, MetricLabels labels, double value) {
    labels.insert(labels.begin(), {"pipeline", pipeline_});
    return text_.sample(name, labels, value);
  }
  arrow::Status add_unlabelled(const char* name, double value) { return text_.sample(name, {}, value); }
  std::string text() const { return text_.text(); }

 private:
  std::string pipeline_;
  MetricsText text_;
};

std::map<std::pair<std::string, std::string>, FlowTotals> flow_totals(const std::vector<pipeline::StoredEvent>& events) {
  std::map<std::pair<std::string, std::string>, FlowTotals> out;
  for (const auto& e : events) {
    if (e.event_type != "flow_progress" || e.dataset.empty()) continue;
    const auto& p = flow_progress_of(e);
    const auto status = field_or(p, "status", "");
    if (status.empty()) continue;  // a reset for a full refresh, not an update
    auto& t = out[{e.dataset, e.flow.empty() ? e.dataset : e.flow}];
    t.updates[status] += 1;
    t.latest = &e;
    const json& m = p.contains("metrics") ? p["metrics"] : json();
    t.input += number_or(m, "num_input_rows", 0);
    t.output += number_or(m, "num_output_rows", 0);
    t.dropped += number_or(m, "num_dropped_rows", 0);
    t.duration += number_or(p, "duration_ms", 0) / 1000.0;
    if (m.is_object() && m.contains("num_quarantined_rows")) t.has_quarantine = true;
    t.quarantined += number_or(m, "num_quarantined_rows", 0);
    if (m.is_object() && m.contains("num_dead_letter_rows")) t.has_dead_letter = true;
    t.dead_lettered += number_or(m, "num_dead_letter_rows", 0);
    if (m.is_object() && m.contains("num_late_rows")) t.has_late = true;
    t.late += number_or(m, "num_late_rows", 0);
    if (m.is_object() && (m.contains("kafka_lag") || m.contains("backlog_records"))) t.lag = &e;
    if (m.is_object() && m.contains("watermark_micros")) t.watermark = &e;
    if (m.is_object() && (m.contains("state_rows") || m.contains("state_bytes"))) t.state = &e;
    if (m.is_object() && m.contains("end_to_end_latency_max_ms")) t.kafka_time = &e;
    if (p.contains("rescued_data") && p["rescued_data"].is_object()) {
      t.has_rescued = true;
      t.rescued += number_or(p["rescued_data"], "num_rescued_rows", 0);
      t.rescue_written += number_or(p["rescued_data"], "num_rows", 0);
    }
    if (p.contains("commits") && p["commits"].is_object()) {  // recorded since kp; older events have none
      t.has_commits = true;
      t.commits = &e;
      t.commit_count += number_or(p["commits"], "num_commits", 0);
      t.commit_seconds += number_or(p["commits"], "total_duration_ms", 0) / 1000.0;
    }
    const json& quality = p.contains("data_quality") ? p["data_quality"] : json();
    if (quality.is_object() && quality.contains("expectations") && quality["expectations"].is_array()) {
      for (const auto& x : quality["expectations"]) {
        auto& [passed, failed] = t.expectations[field_or(x, "name", "?")];
        passed += number_or(x, "passed_records", 0);
        failed += number_or(x, "failed_records", 0);
      }
    }
  }
  return out;
}

// The datasets and sinks the pipeline defines now (the status' rows): a flow's series are
// written only for them, so a dataset removed from the SQL leaves /metrics.
std::set<std::string> defined_datasets(const json& status) {
  std::set<std::string> out;
  if (status.contains("datasets") && status["datasets"].is_array()) {
    for (const auto& d : status["datasets"]) out.insert(field_or(d, "name", ""));
  }
  return out;
}

arrow::Status flow_metrics(Writer& w, const std::vector<pipeline::StoredEvent>& events, const std::set<std::string>& defined,
                           int64_t now_micros) {
  for (const auto& [key, t] : flow_totals(events)) {
    if (!defined.count(key.first)) continue;
    const auto& [dataset, flow] = key;
    const MetricLabels labels = {{"dataset", dataset}, {"flow", flow}};
    for (const auto& [status, n] : t.updates) {
      auto with_status = labels;
      with_status.emplace_back("status", status);
      ARROW_RETURN_NOT_OK(w.add("sluice_flow_updates_total", with_status, n));
    }
    ARROW_RETURN_NOT_OK(w.add("sluice_flow_input_rows_total", labels, t.input));
    ARROW_RETURN_NOT_OK(w.add("sluice_flow_output_rows_total", labels, t.output));
    ARROW_RETURN_NOT_OK(w.add("sluice_flow_dropped_rows_total", labels, t.dropped));
    if (t.has_quarantine) ARROW_RETURN_NOT_OK(w.add("sluice_flow_quarantined_rows_total", labels, t.quarantined));
    if (t.has_dead_letter) ARROW_RETURN_NOT_OK(w.add("sluice_flow_dead_lettered_rows_total", labels, t.dead_lettered));
    if (t.has_late) ARROW_RETURN_NOT_OK(w.add("sluice_flow_late_rows_total", labels, t.late));
    if (t.has_rescued) {
      ARROW_RETURN_NOT_OK(w.add("sluice_rescued_rows_total", labels, t.rescued));
      ARROW_RETURN_NOT_OK(w.add("sluice_rescue_rows_written_total", labels, t.rescue_written));
    }
    ARROW_RETURN_NOT_OK(w.add("sluice_flow_update_duration_seconds_total", labels, t.duration));
    const auto& latest = flow_progress_of(*t.latest);
    ARROW_RETURN_NOT_OK(w.add("sluice_flow_last_update_duration_seconds", labels, number_or(latest, "duration_ms", 0) / 1000.0));
    ARROW_RETURN_NOT_OK(
        w.add("sluice_flow_last_update_timestamp_seconds", labels, static_cast<double>(t.latest->timestamp_micros) / 1e6));
    const auto status = field_or(latest, "status", "");
    ARROW_RETURN_NOT_OK(w.add("sluice_flow_failed", labels, status == "FAILED" || status == "SKIPPED" ? 1 : 0));
    for (const auto& [name, counts] : t.expectations) {
      auto with_name = labels;
      with_name.emplace_back("expectation", name);
      ARROW_RETURN_NOT_OK(w.add("sluice_expectation_passed_records_total", with_name, counts.first));
      ARROW_RETURN_NOT_OK(w.add("sluice_expectation_failed_records_total", with_name, counts.second));
    }
    if (t.lag) {
      const auto& m = flow_progress_of(*t.lag)["metrics"];
      if (m.contains("backlog_records") && m["backlog_records"].is_number()) {
        ARROW_RETURN_NOT_OK(w.add("sluice_kafka_backlog_records", labels, m["backlog_records"].get<double>()));
      }
      if (m.contains("kafka_lag") && m["kafka_lag"].is_array()) {
        for (const auto& l : m["kafka_lag"]) {
          auto with_partition = labels;
          with_partition.emplace_back("topic", field_or(l, "topic", "?"));
          with_partition.emplace_back("partition", std::to_string(field_or(l, "partition", int64_t{-1})));
          ARROW_RETURN_NOT_OK(w.add("sluice_kafka_lag_records", with_partition, number_or(l, "lag", 0)));
        }
      }
    }
    if (t.watermark) {
      const auto& m = flow_progress_of(*t.watermark)["metrics"];
      if (m["watermark_micros"].is_number_integer()) {
        const auto watermark = m["watermark_micros"].get<int64_t>();
        ARROW_RETURN_NOT_OK(w.add("sluice_watermark_timestamp_seconds", labels, static_cast<double>(watermark) / 1e6));
        ARROW_RETURN_NOT_OK(
            w.add("sluice_event_time_lag_seconds", labels, static_cast<double>(now_micros - watermark) / 1e6));
      }
    }
    if (t.has_commits) {
      ARROW_RETURN_NOT_OK(w.add("sluice_flow_commits_total", labels, t.commit_count));
      ARROW_RETURN_NOT_OK(w.add("sluice_flow_commit_duration_seconds_total", labels, t.commit_seconds));
      ARROW_RETURN_NOT_OK(w.add("sluice_flow_last_commit_duration_max_seconds", labels,
                                number_or(flow_progress_of(*t.commits)["commits"], "max_duration_ms", 0) / 1000.0));
    }
    if (t.kafka_time) {
      const auto& m = flow_progress_of(*t.kafka_time)["metrics"];
      ARROW_RETURN_NOT_OK(w.add("sluice_end_to_end_latency_max_seconds", labels,
                                number_or(m, "end_to_end_latency_max_ms", 0) / 1000.0));
      ARROW_RETURN_NOT_OK(w.add("sluice_end_to_end_latency_min_seconds", labels,
                                number_or(m, "end_to_end_latency_min_ms", 0) / 1000.0));
      // Event time of a flow without a watermark: the Kafka timestamps of what it committed.
      if (!t.watermark && m.contains("newest_kafka_timestamp_ms") && m["newest_kafka_timestamp_ms"].is_number()) {
        const double newest_micros = m["newest_kafka_timestamp_ms"].get<double>() * 1000.0;
        ARROW_RETURN_NOT_OK(w.add("sluice_event_time_lag_seconds", labels,
                                  (static_cast<double>(now_micros) - newest_micros) / 1e6));
      }
    }
    if (t.state) {
      const auto& m = flow_progress_of(*t.state)["metrics"];
      if (m.contains("state_rows")) ARROW_RETURN_NOT_OK(w.add("sluice_state_rows", labels, number_or(m, "state_rows", 0)));
      if (m.contains("state_bytes")) ARROW_RETURN_NOT_OK(w.add("sluice_state_bytes", labels, number_or(m, "state_bytes", 0)));
    }
  }
  return arrow::Status::OK();
}

// Kafka records read by the flows of Kafka-reading datasets since `since_micros`.
double kafka_records_since(const std::vector<pipeline::StoredEvent>& events, const json& status, int64_t since_micros) {
  std::set<std::string> kafka_datasets;
  if (status.contains("datasets") && status["datasets"].is_array()) {
    for (const auto& d : status["datasets"]) {
      if (field_or(d, "reads_kafka", false)) kafka_datasets.insert(field_or(d, "name", ""));
    }
  }
  double records = 0;
  for (const auto& e : events) {
    if (e.event_type != "flow_progress" || e.timestamp_micros < since_micros || !kafka_datasets.count(e.dataset)) continue;
    const auto& p = flow_progress_of(e);
    if (p.contains("metrics")) records += number_or(p["metrics"], "num_input_rows", 0);
  }
  return records;
}

arrow::Status table_metrics(Writer& w, const json& catalog, int64_t now_micros) {
  if (!catalog.contains("datasets") || !catalog["datasets"].is_array()) return arrow::Status::OK();
  for (const auto& d : catalog["datasets"]) {
    if (!field_or(d, "exists", false)) continue;  // a view, or a table not created yet
    const MetricLabels labels = {{"dataset", field_or(d, "name", "?")}};
    ARROW_RETURN_NOT_OK(w.add("sluice_table_version", labels, number_or(d, "version", 0)));
    if (d.contains("num_rows") && d["num_rows"].is_number()) {
      ARROW_RETURN_NOT_OK(w.add("sluice_table_rows", labels, d["num_rows"].get<double>()));
    }
    ARROW_RETURN_NOT_OK(w.add("sluice_table_files", labels, number_or(d, "num_files", 0)));
    ARROW_RETURN_NOT_OK(w.add("sluice_table_size_bytes", labels, number_or(d, "size_bytes", 0)));
    const int64_t committed = field_or(d, "last_update_ms", int64_t{0});
    if (committed > 0) {
      ARROW_RETURN_NOT_OK(w.add("sluice_table_last_commit_timestamp_seconds", labels, static_cast<double>(committed) / 1e3));
    }
    // The catalog's rule: the newest commit, or the newest refresh that found nothing to commit.
    const int64_t latest = std::max(committed, field_or(d, "last_refresh_ms", int64_t{0}));
    if (latest > 0) {
      ARROW_RETURN_NOT_OK(w.add("sluice_table_freshness_seconds", labels,
                                static_cast<double>(now_micros / 1000 - latest) / 1e3));
    }
  }
  return arrow::Status::OK();
}

}  // namespace

const nlohmann::json& flow_progress_of(const pipeline::StoredEvent& e) {
  static const json kNone;
  if (!e.details.is_object()) return kNone;
  auto it = e.details.find("flow_progress");
  return it != e.details.end() && it->is_object() ? *it : kNone;
}

arrow::Result<ProcessUsage> process_usage() {
  // /proc/self/stat: fields after the command (which may hold spaces and parentheses) start at
  // the last ')'; utime and stime are fields 14 and 15, starttime 22 (clock ticks since boot).
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return arrow::Status::IOError("cannot read /proc/self/stat");
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  if (f.size() < 22) return arrow::Status::IOError("/proc/self/stat has ", f.size() + 2, " fields, not 24 or more");
  // f[0] is field 3 (state): field n is f[n - 3].
  ARROW_ASSIGN_OR_RAISE(const int64_t utime, parse_int64(f[11], "utime in /proc/self/stat"));
  ARROW_ASSIGN_OR_RAISE(const int64_t stime, parse_int64(f[12], "stime in /proc/self/stat"));
  ARROW_ASSIGN_OR_RAISE(const int64_t start_ticks, parse_int64(f[19], "starttime in /proc/self/stat"));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcessUsage usage;
  usage.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  std::ifstream status_file("/proc/self/status");
  for (std::string line; std::getline(status_file, line);) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream in(line.substr(6));
    std::string kib;
    in >> kib;
    ARROW_ASSIGN_OR_RAISE(const int64_t rss_kib, parse_int64(kib, "VmRSS in /proc/self/status"));
    usage.resident_bytes = rss_kib * 1024;
  }
  std::ifstream uptime_file("/proc/uptime");
  std::string uptime_text;
  uptime_file >> uptime_text;
  auto uptime = parse_double(uptime_text, "/proc/uptime");
  if (uptime.ok()) {
    const double now = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count()) / 1e6;
    usage.start_time_seconds = now - *uptime + static_cast<double>(start_ticks) / ticks;
  }
  return usage;
}

arrow::Result<std::string> pipeline_metrics_text(const MetricsInputs& in) {
  const json& status = *in.status;
  Writer w(field_or(status, "pipeline", ""));
  ARROW_RETURN_NOT_OK(w.declare());
  ARROW_RETURN_NOT_OK(w.add("sluice_pipeline_healthy", {}, field_or(status, "healthy", false) ? 1 : 0));
  if (in.events) ARROW_RETURN_NOT_OK(flow_metrics(w, *in.events, defined_datasets(status), in.now_micros));
  if (in.catalog) ARROW_RETURN_NOT_OK(table_metrics(w, *in.catalog, in.now_micros));
  if (in.process) {
    ARROW_RETURN_NOT_OK(w.add_unlabelled("process_cpu_seconds_total", in.process->cpu_seconds));
    ARROW_RETURN_NOT_OK(w.add_unlabelled("process_resident_memory_bytes", static_cast<double>(in.process->resident_bytes)));
    if (in.process->start_time_seconds > 0) {
      ARROW_RETURN_NOT_OK(w.add_unlabelled("process_start_time_seconds", in.process->start_time_seconds));
    }
    if (in.cpu_price_per_hour && in.run_started_micros && in.events) {
      const double records = kafka_records_since(*in.events, status, *in.run_started_micros);
      if (records > 0) {
        const double cost = in.process->cpu_seconds * *in.cpu_price_per_hour / 3600.0;
        ARROW_RETURN_NOT_OK(w.add("sluice_cost_per_million_records", {}, cost / (records / 1e6)));
      }
    }
  }
  return w.text();
}

}  // namespace sluice::server
