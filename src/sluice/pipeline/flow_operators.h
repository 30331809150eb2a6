// The operators of a streaming-table flow that know about the pipeline (exec/operator.h):
// decoding Kafka values (dead letters aside), the windowed flow's event-time operator, the
// table's schema, expectations (quarantine aside); and where source rows came from
// (SourcePositions), which the operators that set rows aside need. plan_flow_operators
// assembles a flow's chain from its bound query.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>

#include "sluice/common/strong_types.h"
#include "sluice/pipeline/progress_id.h"
#include "sluice/exec/operator.h"
#include "sluice/exec/row_operators.h"
#include "sluice/exec/select_plan.h"
#include "sluice/format/payload_decoder.h"
#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/expectations.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/pipeline/streaming_commit.h"
#include "sluice/pipeline/windowed_flow.h"

namespace sluice::pipeline {

// Where the source rows of a flow's batches came from.
class SourcePositions {
 public:
  virtual ~SourcePositions() = default;
  // Row `source_row` of `batch.source`, for messages ("Kafka topic 't' partition 0 offset 5").
  virtual std::string describe(const exec::OperatorBatch& batch, int64_t source_row) const = 0;
  // The quarantine rows for `dropped`, whose rows of `batch.source` are `source_rows` (int64),
  // without those `quarantine` holds already (from before a crash).
  virtual arrow::Result<std::shared_ptr<arrow::RecordBatch>> quarantine_rows(
      const exec::OperatorBatch& batch, const Expectations::Dropped& dropped,
      const std::shared_ptr<arrow::Array>& source_rows, const SideTable& quarantine) const = 0;
};

// Kafka rows carry their position: topic, partition, offset columns.
class KafkaPositions : public SourcePositions {
 public:
  explicit KafkaPositions(const ProgressIds& ids) : ids_(ids) {}
  KafkaPositions(ProgressIds&&) = delete;  // keeps a reference: never to a temporary
  std::string describe(const exec::OperatorBatch& batch, int64_t source_row) const override;
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> quarantine_rows(
      const exec::OperatorBatch& batch, const Expectations::Dropped& dropped,
      const std::shared_ptr<arrow::Array>& source_rows, const SideTable& quarantine) const override;

 private:
  const ProgressIds& ids_;  // the flow's (StreamingCommit::ids()), outlives this
};

// A Delta row's position is its upstream table and the version that added it
// (OperatorBatch::source_version); `app_id` is the flow's progress on that table.
class DeltaPositions : public SourcePositions {
 public:
  DeltaPositions(std::string upstream, std::string app_id) : upstream_(std::move(upstream)), app_id_(std::move(app_id)) {}
  std::string describe(const exec::OperatorBatch& batch, int64_t source_row) const override;
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> quarantine_rows(
      const exec::OperatorBatch& batch, const Expectations::Dropped& dropped,
      const std::shared_ptr<arrow::Array>& source_rows, const SideTable& quarantine) const override;

 private:
  std::string upstream_;
  std::string app_id_;
};

// read_kafka(value_format => ...): Kafka rows with the value decoded into columns; records that
// cannot be decoded go to the dead-letter side table with their position, the error and the
// raw bytes (unless it holds them from before a crash).
class DecodeOperator : public exec::BatchOperator {
 public:
  DecodeOperator(std::unique_ptr<format::PayloadDecoder> decoder, std::shared_ptr<arrow::Schema> value_schema,
                 SideTable& dead_letters, const ProgressIds& ids, DatasetReport& report)
      : decoder_(std::move(decoder)), value_schema_(std::move(value_schema)), dead_letters_(dead_letters), ids_(ids),
        report_(report) {}
  std::string name() const override { return "decode"; }
  arrow::Result<exec::OperatorBatch> push(exec::OperatorBatch batch) override;

 private:
  std::unique_ptr<format::PayloadDecoder> decoder_;
  std::shared_ptr<arrow::Schema> value_schema_;
  SideTable& dead_letters_;
  const ProgressIds& ids_;  // the flow's (StreamingCommit::ids()), outlives this
  DatasetReport& report_;
};

// The windowed flow's event-time operator (window aggregation or dedup; late rows aside). Its
// rows are the windows the watermark closed: no single source row each.
class WindowOperator : public exec::BatchOperator {
 public:
  // Kafka source (`upstream` empty): the watermark per topic partition. Delta source: one
  // input, the upstream table, whose progress is `app_id`.
  WindowOperator(WindowedFlow& flow, std::string upstream, std::string app_id)
      : flow_(flow), upstream_(std::move(upstream)), app_id_(std::move(app_id)) {}
  std::string name() const override { return "event-time window"; }
  arrow::Result<exec::OperatorBatch> push(exec::OperatorBatch batch) override;
  // The state: one part, the window aggregation's or dedup's (buffered rows, watermark, max
  // event time per input), saved with each commit of the flow through its chain.
  bool stateful() const override { return true; }
  arrow::Result<std::vector<exec::WindowState>> snapshot() const override;
  arrow::Status restore(std::optional<std::vector<exec::WindowState>> parts) override;

 private:
  WindowedFlow& flow_;
  std::string upstream_;
  std::string app_id_;
};

// The rows as the table's schema has them (delta::conform_batch: by name, casts, nulls).
class ConformOperator : public exec::BatchOperator {
 public:
  explicit ConformOperator(std::shared_ptr<arrow::Schema> schema) : schema_(std::move(schema)) {}
  std::string name() const override { return "conform"; }
  arrow::Result<exec::OperatorBatch> push(exec::OperatorBatch batch) override;

 private:
  std::shared_ptr<arrow::Schema> schema_;
};

// The dataset's expectations (expectations.h), counted into `report`; with a quarantine, the
// rows DROP ROW removes go there with their source position.
class ExpectationsOperator : public exec::BatchOperator {
 public:
  // `positions` null: the rows never have a source row (Lineage::kNone; stream-stream joins).
  ExpectationsOperator(const Expectations& expectations, DatasetReport& report, const SourcePositions* positions,
                       SideTable* quarantine)
      : expectations_(expectations), report_(report), positions_(positions), quarantine_(quarantine) {}
  std::string name() const override { return "expectations"; }
  arrow::Result<exec::OperatorBatch> push(exec::OperatorBatch batch) override;

 private:
  const Expectations& expectations_;
  DatasetReport& report_;
  const SourcePositions* positions_;
  SideTable* quarantine_;  // null: DROP ROW drops
};

// What a streaming-table flow's operators are made from: its bound query, the target's schema
// and expectations, and what the flow opened for it. Everything referenced outlives the chain.
struct FlowOperatorsSpec {
  const exec::SelectPlan* plan = nullptr;
  const Expectations* expectations = nullptr;
  std::shared_ptr<arrow::Schema> schema;  // the target's
  DatasetReport* report = nullptr;
  const SourcePositions* positions = nullptr;
  SideTable* quarantine = nullptr;             // 'sluice.quarantine'
  WindowedFlow* windowed = nullptr;            // GROUP BY window(...) or SELECT DISTINCT
  exec::StreamStaticJoin* static_join = nullptr;  // a stream-static join, kept between flow runs
  // Kafka sources with value_format: the decoder and the dead-letter table.
  std::unique_ptr<format::PayloadDecoder> decoder;
  std::shared_ptr<arrow::Schema> value_schema;
  SideTable* dead_letters = nullptr;
  const ProgressIds* ids = nullptr;  // the flow's progress ids (its StreamingCommit's)
  // The flow's commit: a stateful chain's state is saved with its commits and continues from
  // the state of its last commit (StreamingCommit::set_state, load_state). Null: not loaded.
  StreamingCommit* commit = nullptr;
  // Delta sources: the upstream table and the flow's progress on it (for the window).
  std::string upstream;
  std::string app_id;
};

// The flow's chain: [decode] -> project/filter | stream-static join -> [event-time window] ->
// conform -> expectations. A stateful chain comes with the state of the commit's last commit.
arrow::Result<std::unique_ptr<exec::OperatorChain>> plan_flow_operators(FlowOperatorsSpec spec);

}  // namespace sluice::pipeline
