// pipeline.yaml: the pipeline's name, storage root, mode, Kafka clusters and (until the SQL
// front end exists) the bronze tables fed from Kafka topics.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/kafka/consumer.h"
#include "sluice/pipeline/progress_id.h"
#include "sluice/storage/object_store.h"
#include "sluice/watch/alert_rules.h"

namespace sluice::pipeline {

enum class Mode { kTriggered, kContinuous };

enum class StartingOffsets { kEarliest, kLatest };

// A streaming table that copies one Kafka topic, in the Kafka source schema.
struct BronzeTableConfig {
  std::string table;
  std::string topic;
  std::string cluster = "default";
  StartingOffsets starting_offsets = StartingOffsets::kEarliest;
  std::string comment;
};

// One chart of the dashboard's business-KPI panel (`serve: {kpis: [...]}`, README "The
// dashboard"): columns of a materialized view, `x` against each of `y`, from its latest snapshot.
struct KpiConfig {
  enum class Kind { kLine, kBar };
  std::string name;     // letters, digits, _-. ; unique; /api/kpis/<name>
  std::string title;    // shown over the chart; default: name
  std::string dataset;  // a materialized view of the pipeline (checked against the graph)
  std::string x;        // an orderable column: date, timestamp, number or string
  std::vector<std::string> y;  // numeric columns, at least one
  Kind kind = Kind::kLine;
  int64_t limit = 500;  // at most this many rows (the greatest x) are charted
  std::string where;    // pipeline.yaml:line:col of the entry, for errors
};

struct PipelineConfig {
  std::string name;  // display name: may change; progress is keyed by `id`
  // The stable id kept in the storage; set by open_pipeline_storage() before anything runs
  // (the runners refuse a config without one: check_storage_opened).
  PipelineId id;
  std::filesystem::path dir;      // the pipeline folder
  // Where the pipeline keeps everything (tables, state, event log, system records): a path in
  // `objects`' namespace (absolute local folder, or "bucket/prefix" for s3://bucket/prefix).
  // Tables live under storage/tables/<name>.
  std::filesystem::path storage;
  std::shared_ptr<storage::ObjectStore> objects = storage::local_store();
  Mode mode = Mode::kTriggered;
  std::chrono::milliseconds trigger_interval{1000};
  // `commit:` settings (unset: IngestOptions' defaults).
  std::optional<int64_t> commit_max_rows;
  std::optional<int64_t> commit_max_bytes;
  std::optional<int64_t> commit_handoff_bytes;  // commit.handoff_bytes (0: no in-process handoff)
  std::optional<std::chrono::milliseconds> commit_interval;
  std::map<std::string, kafka::KafkaProperties> kafka;  // cluster name -> properties
  std::map<std::string, std::string> configuration;
  std::vector<BronzeTableConfig> bronze;
  std::vector<std::string> library_globs;  // `libraries: - glob: {include: "*.sql"}`
  // Per-table overrides: `tables: {name: {properties: {k: v}}}`, merged over TBLPROPERTIES.
  std::map<std::string, std::map<std::string, std::string>> table_properties;
  // `serve: {cpu_price_per_hour: P}`: the price of one CPU hour for the server's cost metric.
  std::optional<double> serve_cpu_price_per_hour;
  // `serve: {freshness_targets: {dataset: duration}}`: the dashboard's SLA view compares each
  // dataset's freshness with its target (a dataset the pipeline does not define is refused when
  // the server starts, where the graph is known).
  std::map<std::string, std::chrono::milliseconds> serve_freshness_targets;
  // `serve: {kpis: [{name, dataset, x, y, kind, limit, title}]}`: the dashboard's KPI panel.
  std::vector<KpiConfig> serve_kpis;
  // `alerts:` (rules and destinations; README "Alerts"); empty when the section is absent.
  watch::AlertsConfig alerts;

  std::filesystem::path table_path(const std::string& table) const {
    return storage / "tables" / table;
  }
  // The storage as the user names it ("/data" or "s3://bucket/prefix"), for messages.
  std::string storage_display() const { return objects->display(storage.string()); }
  bool storage_is_local() const { return objects == storage::local_store(); }
};

// OK once open_pipeline_storage() has set `config.id`; an error (a programming error: progress
// keyed by an empty id would restart every source) otherwise.
arrow::Status check_storage_opened(const PipelineConfig& config);

// Reads <dir>/pipeline.yaml. Errors point at pipeline.yaml:line:col.
arrow::Result<PipelineConfig> load_pipeline_config(const std::filesystem::path& dir);

// Parses "500ms", "1s", "2 minutes", "1 hour" into milliseconds.
arrow::Result<std::chrono::milliseconds> parse_duration(const std::string& text);

}  // namespace sluice::pipeline
