// APPLY CHANGES (DLT's AUTO CDC), the part that decides: one micro-batch of change rows
// against the flow's per-key state (the last SEQUENCE BY value applied to each key, and
// tombstones of deleted keys) becomes the rows a MERGE applies to an SCD type 1 target and the
// state after it. Changes older than (or equal to) what a key already saw are ignored, so
// out-of-order and duplicated changes give the same target; a delete leaves a tombstone that
// rejects older upserts until it is collected.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::exec {

struct CdcSpec {
  std::vector<std::string> keys;
  // The target's columns taken from the change rows (keys included), in target order.
  std::vector<std::string> columns;
  bool ignore_null_updates = false;
};

// One micro-batch of change rows with the per-row values of SEQUENCE BY and the APPLY AS
// conditions (null arrays: the condition was not given; a null value counts as false).
struct CdcBatch {
  std::shared_ptr<arrow::RecordBatch> rows;
  std::shared_ptr<arrow::Array> sequence;
  std::shared_ptr<arrow::Array> is_delete;
  std::shared_ptr<arrow::Array> is_truncate;
};

// What the MERGE applies: the `columns` plus kActionColumn, one row per key that changes.
enum class CdcAction : int8_t {
  kUpsert = 1,          // insert, or replace every column of the target's row
  kUpsertKeepNull = 2,  // IGNORE NULL UPDATES: a null column keeps the target's value
  kDelete = 3,
};
inline constexpr const char* kActionColumn = "__sluice_cdc_action";

struct CdcOutcome {
  std::shared_ptr<arrow::Table> changes;
  std::shared_ptr<arrow::Table> state;  // state_schema()
  int64_t upserts = 0;
  int64_t deletes = 0;
  int64_t ignored = 0;                 // older than or as old as what the key already saw
  int64_t tombstones_collected = 0;
};

class CdcResolver {
 public:
  // `source`: the change rows' schema; `sequence`: the SEQUENCE BY type.
  static arrow::Result<std::unique_ptr<CdcResolver>> make(CdcSpec spec, std::shared_ptr<arrow::Schema> source,
                                                          std::shared_ptr<arrow::DataType> sequence);

  // Keys, then __sequence, __deleted, __deleted_at_ms (wall clock of the delete, for GC).
  const std::shared_ptr<arrow::Schema>& state_schema() const { return state_schema_; }
  const std::shared_ptr<arrow::Schema>& changes_schema() const { return changes_schema_; }

  // `state`: null for none. Tombstones older than `gc_before_ms` (wall clock) are dropped
  // from the new state.
  arrow::Result<CdcOutcome> resolve(const std::shared_ptr<arrow::Table>& state, const CdcBatch& batch,
                                    int64_t now_ms, int64_t gc_before_ms) const;

 private:
  CdcResolver() = default;
  CdcSpec spec_;
  std::shared_ptr<arrow::Schema> source_;
  std::shared_ptr<arrow::Schema> state_schema_;
  std::shared_ptr<arrow::Schema> changes_schema_;
};

}  // namespace sluice::exec
