// Incremental refresh of materialized views: a single-input GROUP BY whose aggregates merge
// (count, sum, min, max, avg as sum + count) over an append-only input keeps one row of partial
// aggregates per group in a state snapshot (StateStore), tied to the input version the view's
// commit records as a txn; a refresh reads only the files the input added since then, merges
// their partials into the stored ones and finishes (HAVING, SELECT list, ORDER BY, LIMIT) from
// the merged partials. Anything else is recomputed in full, and the refresh says why.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/snapshot.h"
#include "sluice/exec/select_plan.h"
#include "sluice/pipeline/progress_id.h"
#include "sluice/storage/object_store.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

// Why the query cannot be maintained incrementally; none when it can.
std::optional<std::string> incremental_blocker(const exec::SelectPlan& plan);

// Partial aggregates of a mergeable GROUP BY: columns __k<i> (keys), then per aggregate __p<a>
// (count, sum, min, max) or __s<a> and __c<a> (avg). Thread-compatible.
class MergeableAggregate {
 public:
  // Fails (with incremental_blocker's reason) when the plan's aggregation does not merge.
  static arrow::Result<MergeableAggregate> make(const exec::SelectPlan& plan);

  const std::shared_ptr<arrow::Schema>& partial_schema() const { return partial_schema_; }
  // One row per group of the source rows (the plan's input: row stages not yet applied).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> partials_of(const arrow::RecordBatch& source_rows) const;
  // One row per group of several partial batches (stored and new).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> merge(
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& partials) const;
  // The view's rows from merged partials: aggregates finalized, HAVING, SELECT list, ORDER BY,
  // LIMIT.
  arrow::Result<std::shared_ptr<arrow::Table>> finish(const arrow::RecordBatch& merged) const;

 private:
  MergeableAggregate() = default;
  const exec::SelectPlan* plan_ = nullptr;
  std::shared_ptr<arrow::Schema> partial_schema_;
};

enum class RefreshMode { kIncremental, kFull };
const char* refresh_mode_name(RefreshMode mode);

struct ViewRefreshOptions {
  PipelineId pipeline;
  std::string flow;
  std::filesystem::path view_path;   // the view's table folder (state under _sluice_state/<flow>)
  std::filesystem::path input_path;  // the one input table's folder
  uint64_t query_fingerprint = 0;    // state of another query text is not reused
  std::shared_ptr<storage::ObjectStore> objects = storage::local_store();  // where both live
};

struct ViewRefresh {
  RefreshMode mode = RefreshMode::kFull;
  std::string reason;
  std::shared_ptr<arrow::Table> rows;  // the view's new contents (plan's output schema)
  // The progress the view's commit records: the input's table id and the version read.
  std::string input_table_id;
  DeltaVersion input_version{-1};
  // The partials to save with the view's commit; none when the stored ones still hold.
  std::optional<exec::WindowState> partials;
  int64_t rows_read = 0;               // input rows read (only the new ones when incremental)
  int64_t state_rows = 0;              // groups held as partials
};

// Refreshes a view whose plan has no incremental_blocker: incrementally when the view's last
// commit (`view`, null for a new view) has progress on the input, the state of that commit is
// there and the input only appended since; else from the input's whole snapshot. Either way the
// new partials come back, to be saved with the view's commit (ViewPartials).
arrow::Result<ViewRefresh> refresh_view(const exec::SelectPlan& plan, const delta::Snapshot* view,
                                        const ViewRefreshOptions& options);

// The partials of a refresh as the view's StreamingCommit saves them, labelled with its
// progress, before the view's commit. Save-only: refresh_view decides whether stored partials
// can be reused.
class ViewPartials : public CommittedState {
 public:
  std::optional<exec::WindowState> to_save;  // none: nothing new, the stored partials still hold
  arrow::Result<std::vector<exec::WindowState>> snapshot_state() override;
  arrow::Status restore_state(std::optional<std::vector<exec::WindowState>> parts) override;
};

// FNV-1a of a text (stable across builds, unlike std::hash).
uint64_t fingerprint(const std::string& text);

}  // namespace sluice::pipeline
