// A dataset's expectations (CONSTRAINT ... EXPECT ... ON VIOLATION) bound to the rows it
// writes: evaluated as boolean columns per batch, counted per constraint, applied as warn,
// DROP ROW or FAIL UPDATE; and the quarantine rows made from what DROP ROW removed.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/exec/expression_binder.h"
#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/graph.h"

namespace sluice::pipeline {

// Thread-compatible: one per flow run.
class Expectations {
 public:
  static arrow::Result<Expectations> make(const Graph& graph, const Dataset& dataset,
                                          const std::shared_ptr<arrow::Schema>& schema);

  // Rows DROP ROW removed, kept for a quarantine table: the rows, their index in the batch
  // given to apply(), and the names of every expectation each of them broke.
  struct Dropped {
    std::shared_ptr<arrow::RecordBatch> rows;
    std::shared_ptr<arrow::Array> indices;             // int64, into apply()'s batch
    std::shared_ptr<arrow::Array> failed_expectations;  // list<utf8>
  };

  // Counts violations (a NULL result counts as one) and applies DROP ROW / FAIL UPDATE. With
  // `dropped`, the rows DROP ROW removed are handed back instead of discarded.
  // `source_of(row)` names where a row of `batch` came from (topic/partition/offset), for the
  // FAIL UPDATE error.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> apply(
      std::shared_ptr<arrow::RecordBatch> batch, DatasetReport& report, Dropped* dropped = nullptr,
      const std::function<std::string(int64_t)>& source_of = {}) const;

 private:
  struct Check {
    std::string name;
    sql::ViolationAction action;
    exec::BoundExpression expr;
  };
  std::string dataset_;
  std::vector<Check> checks_;
};

// The schema of `<table>_quarantine`: the table's columns (nullable), then
// _failed_expectations, _source_name, _source_partition, _source_offset, _quarantined_at.
std::shared_ptr<arrow::Schema> quarantine_schema(const arrow::Schema& table);

// The quarantine rows for `dropped`; `name`, `partition` and `offset` (the source position) are
// aligned with the dropped rows. Rows for which `already_there(i)` is true (in the quarantine
// table from before a crash) are left out.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> quarantine_batch(
    const arrow::Schema& qschema, const Expectations::Dropped& dropped, std::shared_ptr<arrow::Array> name,
    std::shared_ptr<arrow::Array> partition, std::shared_ptr<arrow::Array> offset,
    const std::function<bool(int64_t)>& already_there);

}  // namespace sluice::pipeline
