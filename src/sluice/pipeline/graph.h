// The dataflow graph of a SQL pipeline: datasets (streaming tables, materialized views,
// views), the flows that fill them, and their inputs, resolved across every SQL file
// regardless of order and checked for unknown names, cycles, duplicate definitions and
// streaming reads of materialized views.
#pragma once

#include <arrow/result.h>

#include <map>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::pipeline {

// Where a flow reads from.
struct FlowInput {
  enum class Kind { kDataset, kKafka };
  Kind kind = Kind::kDataset;
  std::string name;       // dataset name, or the Kafka topic(s) for kKafka
  bool streaming = false;  // STREAM(x) / STREAM read_kafka(...)
  const sql::TableRef* ref = nullptr;
  sql::Location loc;
};

struct Flow {
  std::string name;
  std::string target;
  size_t file = 0;  // index into Graph::files
  sql::Location loc;
  std::shared_ptr<sql::Query> query;            // null for APPLY CHANGES
  const sql::ApplyChanges* apply_changes = nullptr;
  std::vector<FlowInput> inputs;
  std::optional<std::string> comment;  // CREATE FLOW ... COMMENT
};

struct Dataset {
  std::string name;
  sql::DatasetKind kind;
  size_t file = 0;
  sql::Location loc;
  const sql::CreateDataset* definition = nullptr;
  std::vector<std::string> flows;  // names of the flows writing it (none for views)
};

// CREATE SINK: a destination outside the pipeline's tables (a Kafka topic, a Delta table), written by the
// flows that INSERT INTO it; not a dataset (nothing reads it, it has no table).
struct Sink {
  std::string name;
  size_t file = 0;
  sql::Location loc;
  const sql::CreateSink* definition = nullptr;
  std::vector<std::string> flows;  // CREATE FLOW ... INSERT INTO <sink>
};

struct Graph {
  std::vector<sql::SourceFile> files;
  std::vector<std::vector<sql::Statement>> statements;  // per file
  std::map<std::string, Dataset> datasets;
  std::map<std::string, Flow> flows;
  std::vector<std::string> order;  // datasets, upstream first
  std::map<std::string, Sink> sinks;

  // Datasets a dataset reads (through its flows), for lineage.
  std::vector<std::string> upstream_of(const std::string& dataset) const;
  // The datasets a sink's flows read.
  std::vector<std::string> sink_upstream(const std::string& sink) const;
};

// Parses every file and resolves the graph. All errors found are reported together, one per
// line block, each with file:line:col and a caret.
arrow::Result<Graph> build_graph(std::vector<sql::SourceFile> files);

// "table function 'x' is not supported (only read_kafka and table_changes are); ..." for FROM x(...).
std::string unsupported_table_function(const std::string& name);

// Renderings of the graph for `sluice graph`.
std::string graph_to_dot(const Graph& graph);
std::string graph_to_mermaid(const Graph& graph);
// `columns`: optional column lineage per dataset (output column -> source columns).
std::string graph_to_json(
    const Graph& graph,
    const std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>>& columns = {});

}  // namespace sluice::pipeline
