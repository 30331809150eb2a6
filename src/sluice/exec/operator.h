// The batch operator interface every step of a flow implements, and the chain that runs them
// one after the other. Shaped after Velox's Operator (addInput / getOutput / noMoreInput) and
// DuckDB's PhysicalOperator (Execute / Sink / Finalize), plus what both lack and sluice's
// event-time operators need: state that can be snapshotted and restored (DESIGN.md §4).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/exec/event_time_operator.h"

namespace sluice::exec {

// A batch moving through a flow's operators: the rows, and where they came from.
struct OperatorBatch {
  std::shared_ptr<arrow::RecordBatch> rows;
  // The source rows `rows` derive from (Kafka rows with topic/partition/offset, or a chunk of
  // an upstream table's commit) and how each row of `rows` maps to them (`lineage`).
  std::shared_ptr<arrow::RecordBatch> source;
  std::shared_ptr<arrow::Array> source_rows;  // int64, with kSourceRows
  enum class Lineage {
    kSameRows,    // row i is row i of `source`
    kSourceRows,  // row i is row source_rows[i] of `source` (a filter dropped some)
    kNone,        // no single source row per row (window aggregates, joins)
  };
  Lineage lineage = Lineage::kSameRows;
  // For a source whose rows do not carry their position (an upstream Delta table): the
  // upstream version whose commit added them; -1 otherwise.
  int64_t source_version = -1;
  // Which input of a multi-input operator the batch is for (a stream-stream join: 0 is the left
  // side, 1 the right); operators with one input ignore it, and their output has input 0.
  int32_t input = 0;
  // Kafka partitions ("topic/partition") with records still to come in this update that no
  // batch has brought yet: an event-time operator's watermark waits for them.
  std::vector<std::string> awaited_inputs;

  // A batch straight from a source: every row is its own source row.
  static OperatorBatch from_source(std::shared_ptr<arrow::RecordBatch> rows, int64_t source_version = -1);
};

// Rows and batches an operator took and gave, for metrics.
struct OperatorMetrics {
  int64_t batches_in = 0;
  int64_t rows_in = 0;
  int64_t rows_out = 0;
};

// Thread-compatible: one flow run pushes into it from one thread at a time. Virtual per batch,
// never per row.
class BatchOperator {
 public:
  virtual ~BatchOperator() = default;

  // For metrics and messages ("project/filter", "expectations", ...).
  virtual std::string name() const = 0;
  // Consumes one batch; returns the rows it gives now (a stateful operator may hold rows back
  // and give none: zero rows). Every batch is pushed, even one of zero rows: an event-time
  // operator's watermark and idleness move with the batches.
  virtual arrow::Result<OperatorBatch> push(OperatorBatch batch) = 0;
  // The end of this run's input: rows still held that the end releases. Streaming operators
  // keep their rows in state across runs and give none.
  virtual arrow::Result<std::vector<OperatorBatch>> finish() { return std::vector<OperatorBatch>{}; }

  // Stateful operators (event time): whether the operator holds state across batches, the
  // parts its state is saved in (one WindowState each: a window or dedup has one, named "", a
  // stream-stream join one per side), a copy of them (sharing the buffered arrays) to save with
  // a commit, and the restore of saved ones (none: back to no state, as a new table starts).
  // The streaming commit takes the snapshot of a flow's chain at each commit and restores it at
  // start (StreamingCommit::set_state).
  virtual bool stateful() const { return false; }
  virtual std::vector<std::string> state_parts() const { return {""}; }
  virtual arrow::Result<std::vector<WindowState>> snapshot() const;
  virtual arrow::Status restore(std::optional<std::vector<WindowState>> parts);

  const OperatorMetrics& metrics() const { return metrics_; }

 protected:
  friend class OperatorChain;
  OperatorMetrics metrics_;
};

// Operators run in order, each one's output the next one's input; itself an operator (a
// flow's whole transformation, as its source and sink see it).
class OperatorChain : public BatchOperator {
 public:
  void add(std::unique_ptr<BatchOperator> op) { ops_.push_back(std::move(op)); }
  const std::vector<std::unique_ptr<BatchOperator>>& operators() const { return ops_; }

  std::string name() const override;
  arrow::Result<OperatorBatch> push(OperatorBatch batch) override;
  // Each operator's finish() output goes through the operators after it.
  arrow::Result<std::vector<OperatorBatch>> finish() override;
  // The chain is stateful if one of its operators is; snapshot/restore need exactly one such.
  bool stateful() const override;
  std::vector<std::string> state_parts() const override;
  arrow::Result<std::vector<WindowState>> snapshot() const override;
  arrow::Status restore(std::optional<std::vector<WindowState>> parts) override;

  // push() for a batch straight from a source, returning only the rows.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> push_rows(std::shared_ptr<arrow::RecordBatch> rows,
                                                               int64_t source_version = -1);

 private:
  arrow::Result<OperatorBatch> push_from(size_t first, OperatorBatch batch);
  const BatchOperator* the_stateful_operator() const;

  std::vector<std::unique_ptr<BatchOperator>> ops_;
};

}  // namespace sluice::exec
