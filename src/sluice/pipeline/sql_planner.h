// Planning of a SQL pipeline: every query bound and type-checked, and everything `run` would
// refuse refused, before any data moves (what `sluice validate` runs). The result (plans,
// schemas, expectations per dataset) is read, never changed, by the flows that run it.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "sluice/exec/select_plan.h"
#include "sluice/kafka/consumer.h"
#include "sluice/pipeline/expectations.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/kafka_ingest_flow.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/sink_options.h"
#include "sluice/pipeline/windowed_flow.h"

namespace sluice::pipeline {

// read_kafka(value_format => 'json') without value_schema decodes with a schema inferred from
// a sample of the topic. Where that schema comes from while planning:
enum class SchemaInference {
  kFrozenOnly,        // the frozen file (<storage>/system/inferred_schemas/<flow>.ddl) or nothing:
                      // no broker is contacted (validate, graph)
  kSampleNoFreeze,    // the frozen file, else a sample taken now and not written (validate --infer-schemas)
  kSampleAndFreeze,   // the frozen file, else a sample, written as the frozen file (run)
};

// "streaming table", "materialized view" or "view".
const char* kind_text(sql::DatasetKind k);

// Thread-compatible: planned on one thread; afterwards its const members are read by the flows
// of an update from several threads.
class SqlPlanner {
 public:
  SqlPlanner(const PipelineConfig& config, const Graph& graph, const IngestOptions& options,
             SchemaInference inference = SchemaInference::kSampleAndFreeze)
      : config_(config), graph_(graph), options_(options), inference_(inference) {}

  // Plans every dataset: every query is bound and type-checked before any data moves. All
  // errors are collected; a dataset whose input failed is skipped without a second error.
  arrow::Status plan_all();

  const PipelineConfig& config() const { return config_; }
  const Graph& graph() const { return graph_; }
  const IngestOptions& options() const { return options_; }
  const std::map<std::string, std::string>& not_checked() const { return not_checked_; }
  const std::map<std::string, std::string>& schema_notes() const { return schema_notes_; }
  const std::map<std::string, std::shared_ptr<arrow::Schema>>& schemas() const { return schemas_; }
  const std::map<std::string, exec::SelectPlan>& views() const { return views_; }
  const std::map<std::string, exec::SelectPlan>& flow_plans() const { return flow_plans_; }
  const std::map<std::string, Expectations>& expectations() const { return expectations_; }
  // The Kafka sinks (CREATE SINK) by name; their flows' plans are in flow_plans().
  const std::map<std::string, KafkaSinkSpec>& sink_specs() const { return sink_specs_; }
  // The Delta sinks (CREATE SINK ... format => 'delta') by name.
  const std::map<std::string, DeltaSinkSpec>& delta_sink_specs() const { return delta_sink_specs_; }

  // The stored datasets a dataset reads, through views (which are inlined, never stored).
  std::set<std::string> stored_upstream(const std::string& name) const;

  // Whether several processes may run the dataset at once (scale-out): a streaming table whose
  // every flow reads Kafka as a consumer-group member and keeps no event-time state, so the
  // group splits the partitions and the txns keep each record once. Anything else reads the
  // same input in every process, or keeps state per process.
  bool runs_in_every_process(const Dataset& d) const;

  // The CLUSTER BY columns of a stored dataset as its schema spells them (paths; empty when it
  // is not clustered), checked by plan_all (delta/clustering.h).
  std::vector<std::vector<std::string>> clustering_columns(const std::string& dataset) const {
    auto it = clustering_.find(dataset);
    return it == clustering_.end() ? std::vector<std::vector<std::string>>{} : it->second;
  }

  // TBLPROPERTIES with pipeline.yaml `tables.<name>.properties` over them; they become the Delta
  // table's configuration when it is created.
  std::map<std::string, std::string> properties(const Dataset& d) const;

  // TBLPROPERTIES ('sluice.quarantine' = 'true'): the rows DROP ROW expectations remove go to
  // `<table>_quarantine` instead of away, with the expectations they broke and their source
  // position.
  bool quarantines(const Dataset& d) const;

  // Options of a windowed flow from the table's properties.
  arrow::Result<WindowedFlowOptions> windowed_options(const Dataset& d, const std::string& flow_name,
                                                      const exec::SelectPlan& plan) const;

  // The Kafka cluster a read_kafka reads: `cluster` of pipeline.yaml (default "default"),
  // extended by bootstrapServers / kafka.* arguments into a cluster of the flow's own.
  arrow::Result<std::pair<std::string, kafka::KafkaProperties>> kafka_cluster_of(const exec::PlanSource& src,
                                                                                  const std::string& flow_name) const;

  std::filesystem::path inferred_schema_path(const std::string& flow_name) const;

  // read_kafka's topic, offset, timestamp, header and consumer-group options (kafka_options.h).
  static arrow::Status apply_kafka_options(const std::map<std::string, std::string>& options, KafkaFlowSpec& spec);

  // The stream a streaming table's flow reads (with a stream-static join, its streaming side).
  static exec::PlanSource streaming_source(const exec::SelectPlan& plan);

  static arrow::Status refuse_event_time(const exec::SelectPlan& plan);

 private:
  // Schemas of the stored datasets planned so far (upstream of the one being planned).
  exec::SelectPlan::SchemaLookup schema_lookup() const;
  // The pipeline's views, inlined where they are read (each may read the others in turn).
  exec::SelectPlan::InlineLookup view_lookup() const;

  arrow::Status plan_dataset(const Dataset& d);
  // column_tags.cc: `schema` with its columns' tags, declared (TAGS) or taken over along
  // column lineage from the columns they read.
  arrow::Result<std::shared_ptr<arrow::Schema>> tag_columns(const Dataset& d, std::shared_ptr<arrow::Schema> schema) const;
  // A sink's options and its flows' queries (sink_planning.cc); `failed`: datasets not planned.
  arrow::Status plan_sink(const Sink& sink, const std::set<std::string>& failed);
  bool defines(const std::string& name) const;
  arrow::Status check_unique_columns(const Dataset& d, const Flow& flow, const exec::SelectPlan& plan) const;
  arrow::Status check_auto_compaction(const Dataset& d, const arrow::Schema& schema) const;
  arrow::Status check_runnable(const Dataset& d, const Flow& flow, const exec::SelectPlan& plan) const;
  static arrow::Status check_change_feed_stream(const exec::SelectPlan& plan, const sql::SourceFile& file);
  // apply_changes_planning.cc: the target's schema, and (into `changes`) the plan of the rows read.
  arrow::Result<std::shared_ptr<arrow::Schema>> check_apply_changes(
      const Flow& flow, const exec::SelectPlan::InlineLookup& inline_views,
      std::optional<exec::SelectPlan>* changes = nullptr);
  // What the APPLY CHANGES executor does not do yet, refused while planning.
  arrow::Status check_apply_changes_runnable(const Dataset& d, const Flow& flow,
                                             const exec::SelectPlan& changes) const;
  // Columns declared on the target (CREATE STREAMING TABLE t (...)) match the derived ones.
  arrow::Status check_apply_changes_columns(const Dataset& d, const Flow& flow, const arrow::Schema& schema);
  static arrow::Status check_windowed(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc);
  static arrow::Status check_dedup(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc);
  static arrow::Status check_stream_join(const exec::SelectPlan& plan, const sql::SourceFile& file, sql::Location loc);

  // inferred_schema.cc
  arrow::Result<std::string> infer_value_schema(const std::string& flow_name, const exec::PlanSource& src);

  const PipelineConfig config_;  // read-only while flows run on several threads
  const Graph& graph_;
  IngestOptions options_;
  SchemaInference inference_;
  std::optional<std::string> unknown_inferred_;      // set by infer_value_schema with kFrozenOnly
  std::map<std::string, std::string> not_checked_;   // dataset -> why it was not planned
  std::map<std::string, std::string> schema_notes_;  // dataset -> where its inferred schema came from
  std::map<std::string, exec::SelectPlan> flow_plans_;                 // by flow name
  std::map<std::string, std::shared_ptr<arrow::Schema>> schemas_;      // stored datasets
  std::map<std::string, std::vector<std::vector<std::string>>> clustering_;  // CLUSTER BY
  std::map<std::string, Expectations> expectations_;
  std::map<std::string, exec::SelectPlan> views_;  // checked, never run on their own
  std::map<std::string, KafkaSinkSpec> sink_specs_;  // by sink name
  std::map<std::string, DeltaSinkSpec> delta_sink_specs_;  // by sink name
};

}  // namespace sluice::pipeline
