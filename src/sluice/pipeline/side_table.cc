// Quarantine and dead-letter tables, committed exactly once beside their flow's target.
#include "sluice/pipeline/side_table.h"

#include <arrow/api.h>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/delta/table.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::pipeline {

arrow::Result<std::unique_ptr<SideTable>> SideTable::make(std::shared_ptr<storage::ObjectStore> objects,
                                                          std::filesystem::path path, std::string name,
                                                          std::shared_ptr<arrow::Schema> schema,
                                                          std::string description,
                                                          delta::SnapshotCache* snapshots) {
  std::unique_ptr<SideTable> t(new SideTable());
  t->store_ = std::make_shared<delta::LogStore>(std::move(objects), path.string());
  t->name_ = std::move(name);
  t->description_ = std::move(description);
  t->schema_ = std::move(schema);
  t->snapshots_ = snapshots;
  ARROW_RETURN_NOT_OK(t->reload());
  return t;
}

arrow::Status SideTable::reload() {
  if (writer_) {
    writer_->abort();
    writer_.reset();
  }
  ARROW_ASSIGN_OR_RAISE(snapshot_, snapshots_ ? snapshots_->latest_if_exists(*store_)
                                              : delta::load_latest_if_exists(*store_));
  committed_at_start_.clear();
  reset_.clear();
  if (snapshot_) {
    for (const auto& [app, txn] : snapshot_->txns()) committed_at_start_[app] = txn.version;
  }
  return arrow::Status::OK();
}

int64_t SideTable::committed(const std::string& app_id) const {
  auto it = committed_at_start_.find(app_id);
  return it == committed_at_start_.end() || it->second < 0 ? -1 : it->second;
}

void SideTable::reset(const std::string& app_id) {
  committed_at_start_[app_id] = -1;
  reset_.insert(app_id);
}

arrow::Status SideTable::write(const arrow::RecordBatch& rows) {
  if (rows.num_rows() == 0) return arrow::Status::OK();
  if (!writer_) {
    delta::WriteOptions options;
    options.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
    options.table_name = name_;
    options.description = description_;
    options.schema_mode = delta::SchemaMode::kMerge;  // the target's schema may evolve
    ARROW_ASSIGN_OR_RAISE(writer_, delta::TableWriter::make(store_, snapshot_, *schema_, options));
  }
  return writer_->write(rows);
}

arrow::Status SideTable::commit(const TxnVersions& txns) {
  if (!writer_ && snapshot_ && reset_.empty()) return arrow::Status::OK();
  if (!writer_) {
    delta::WriteOptions options;
    options.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
    options.table_name = name_;
    options.description = description_;
    ARROW_ASSIGN_OR_RAISE(writer_, delta::TableWriter::make(store_, snapshot_, *schema_, options));
  }
  const int64_t rows = writer_->rows_written();
  auto writer = std::move(writer_);
  auto txn = writer->finish();
  if (!txn.ok()) {
    writer->abort();
    return with_context(txn.status(), fmt::format("table '{}'", name_));
  }
  for (const auto& [app, version] : txns) {
    auto done = snapshot_ ? snapshot_->txn_version(app) : std::nullopt;
    if (!done || *done < version || (reset_.count(app) && *done != version)) txn->set_txn(app, version);
  }
  auto result = txn->commit(txn->streaming_update(rows));
  if (!result.ok()) {
    writer->abort();
    return with_context(result.status(), fmt::format("table '{}'", name_));
  }
  snapshot_ = result->snapshot;
  if (snapshots_) snapshots_->remember(*store_, snapshot_);
  rows_committed_ += rows;
  reset_.clear();
  fail_point("after_side_table_commit");
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
