// A stream-static join in a streaming table: each batch of the stream joins the latest snapshot
// of the static tables, whose hash tables are kept between batches and built again only when a
// static table they read has a new version.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/exec/join_hash_table.h"
#include "sluice/exec/select_plan.h"

namespace sluice::exec {

// A static table's rows as of one version.
struct StaticTable {
  int64_t version = -1;
  std::shared_ptr<arrow::Table> rows;
};

// Where the static sides of a join come from. latest_version() runs for every batch, so it must
// be cheap (a Delta log listing); read() only when the version changed.
// Implementations are used by several flows' threads at once.
class StaticTables {
 public:
  virtual ~StaticTables() = default;
  virtual arrow::Result<int64_t> latest_version(const std::string& name) = 0;
  virtual arrow::Result<StaticTable> read(const std::string& name) = 0;
};

// Spark's stream-static semantics: a batch sees the static tables as they are when it is joined;
// rows written before keep what they were joined with. Every join of the plan (stream JOIN a
// JOIN b ...) has its own hash table over its right side, keyed by the versions of the static
// tables that side reads. Thread-compatible: one flow's batches, one at a time.
class StreamStaticJoin {
 public:
  // `plan`: a join whose streaming source is on the left of every join (INNER, LEFT, SEMI or
  // ANTI); `plan` and `statics` outlive the join.
  static arrow::Result<std::unique_ptr<StreamStaticJoin>> make(const SelectPlan& plan, StaticTables* statics);

  // The plan's rows (output_schema()) for one batch of its streaming source.
  arrow::Result<std::shared_ptr<arrow::Table>> run(const arrow::RecordBatch& stream_rows);

  // Hash tables built so far (one per join at the first batch, then one per static change).
  int64_t builds() const { return builds_; }
  int64_t build_bytes() const;

 private:
  struct Build {
    std::vector<std::pair<std::string, int64_t>> versions;  // static table -> version built from
    std::unique_ptr<JoinHashTable> table;
  };
  StreamStaticJoin(const SelectPlan& plan, StaticTables* statics) : plan_(plan), statics_(statics) {}
  // `p`'s rows for the batch: for a join, its left side's rows probing its kept build.
  arrow::Result<std::shared_ptr<arrow::Table>> run_plan(const SelectPlan& p, const arrow::RecordBatch& stream_rows);
  // The build of `join`'s right side, made again if a static table it reads changed.
  arrow::Result<JoinHashTable*> build_of(const SelectPlan& join);

  const SelectPlan& plan_;
  StaticTables* statics_;
  std::map<const SelectPlan*, Build> builds_by_join_;
  int64_t builds_ = 0;
};

}  // namespace sluice::exec
