// APPLY CHANGES ... STORED AS SCD TYPE 2: a micro-batch of change rows against the history the
// target already holds for the same keys becomes the rows a MERGE applies (matched on the keys
// and __START_AT). The history of each key is replayed in SEQUENCE BY order with the new
// changes: an upsert whose tracked columns differ from the open version closes it (__END_AT =
// the change's sequence value) and opens a new one (__START_AT = that value); an upsert with
// the same tracked columns updates the open version in place; a delete closes it. A late
// change lands at its place in the history; a duplicate (same key and sequence) changes nothing.
// A delete that closes nothing (the key has no open version at its sequence value) leaves no
// trace in the table, so it is kept as a tombstone in the flow's state: an older upsert that
// arrives later opens a version the tombstone closes, as if the changes had come in order.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>
#include <vector>

#include "sluice/exec/cdc_resolver.h"

namespace sluice::exec {

inline constexpr const char* kStartAt = "__START_AT";
inline constexpr const char* kEndAt = "__END_AT";

struct CdcHistorySpec {
  std::vector<std::string> keys;
  // The target's columns taken from the change rows (keys included), in target order, without
  // __START_AT and __END_AT.
  std::vector<std::string> columns;
  // The columns whose change starts a new version (TRACK HISTORY ON; all of `columns` by default).
  std::vector<std::string> tracked;
};

class CdcHistoryResolver {
 public:
  static arrow::Result<std::unique_ptr<CdcHistoryResolver>> make(CdcHistorySpec spec,
                                                                 std::shared_ptr<arrow::Schema> source,
                                                                 std::shared_ptr<arrow::DataType> sequence);

  // `columns`, __START_AT, __END_AT, then kActionColumn (kUpsert or kDelete).
  const std::shared_ptr<arrow::Schema>& changes_schema() const { return changes_schema_; }
  // The tombstones: keys, then __sequence, __deleted_at_ms (wall clock of the delete, for GC).
  const std::shared_ptr<arrow::Schema>& state_schema() const { return state_schema_; }

  // `target`: the target's rows (`columns`, __START_AT, __END_AT; only those of the batch's keys
  // are read). `tombstones`: the state (null for none). The outcome's state holds the tombstones
  // after the batch; those deleted before `gc_before_ms` (wall clock) are dropped.
  arrow::Result<CdcOutcome> resolve(const std::shared_ptr<arrow::Table>& target, const CdcBatch& batch,
                                    const std::shared_ptr<arrow::Table>& tombstones = nullptr, int64_t now_ms = 0,
                                    int64_t gc_before_ms = 0) const;

 private:
  CdcHistoryResolver() = default;
  CdcHistorySpec spec_;
  std::shared_ptr<arrow::Schema> changes_schema_;
  std::shared_ptr<arrow::Schema> state_schema_;
};

}  // namespace sluice::exec
