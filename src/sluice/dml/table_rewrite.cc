// Copy-on-write commits of DELETE, UPDATE and MERGE.
#include "sluice/dml/table_rewrite.h"

#include <arrow/api.h>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/table_features.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::dml {

arrow::Status check_dml_supported(const DmlTarget& target, const std::string& operation) {
  const auto& metadata = target.snapshot->metadata();
  if (delta::is_append_only(metadata)) {
    return invalid(
        "{} on table {} is refused: the table only allows appends (delta.appendOnly = true); "
        "nothing was changed. To permit it, ALTER TABLE ... SET TBLPROPERTIES "
        "('delta.appendOnly' = 'false')",
        operation, target.name);
  }
  return delta::check_write_supported(target.snapshot->protocol(), metadata, target.name);
}

arrow::Result<std::unique_ptr<TableRewrite>> TableRewrite::make(const DmlTarget& target) {
  std::unique_ptr<TableRewrite> r(new TableRewrite());
  r->target_ = target;
  delta::WriteOptions options;
  options.constraints = exec::sql_constraint_compiler();
  options.mode = delta::WriteMode::kAppend;
  ARROW_ASSIGN_OR_RAISE(r->writer_, delta::TableWriter::make(target.store, target.snapshot,
                                                             *target.snapshot->schema(), options));
  const auto& metadata = target.snapshot->metadata();
  if (delta::change_data_feed_enabled(metadata.configuration)) {
    auto changes = delta::ChangeDataWriter::make(target.store, target.snapshot->schema(),
                                                 metadata.partition_columns);
    if (!changes.ok()) return with_context(changes.status(), fmt::format("table {}", target.name));
    r->changes_ = std::move(*changes);
  }
  r->deletion_vectors_ = delta::writes_deletion_vectors(target.snapshot->protocol(),
                                                        target.snapshot->metadata());
  return r;
}

TableRewrite::~TableRewrite() {
  if (!finished_) abort();
}

const std::shared_ptr<arrow::Schema>& TableRewrite::schema() const {
  return target_.snapshot->schema();
}

delta::Remove removal_of(const delta::Add& file) {
  delta::Remove r;
  r.path = file.path;
  r.deletion_timestamp = now_millis();
  r.data_change = true;
  r.extended_file_metadata = true;
  r.partition_values = file.partition_values;
  r.size = file.size;
  r.deletion_vector = file.deletion_vector;
  return r;
}

void TableRewrite::remove(const delta::Add& file) {
  bytes_removed_ += file.size;
  removed_.push_back(removal_of(file));
}

void TableRewrite::drop(const delta::Add& file) {
  remove(file);
  dropped_.push_back(std::move(removed_.back()));
  removed_.pop_back();
}

arrow::Status TableRewrite::write_change(const arrow::RecordBatch& rows, delta::ChangeType type) {
  if (!changes_ || rows.num_rows() == 0) return arrow::Status::OK();
  return changes_->write(rows, type);
}

arrow::Status TableRewrite::mark_deleted(const delta::Add& file, const std::vector<int64_t>& rows) {
  if (rows.empty()) return arrow::Status::OK();
  std::vector<uint64_t> deleted;
  if (file.deletion_vector) {
    ARROW_ASSIGN_OR_RAISE(deleted, delta::read_deletion_vector(*target_.store, *file.deletion_vector,
                                                               file.path));
  }
  // Scan row k is the k-th row the old vector does not mark.
  std::vector<uint64_t> merged;
  merged.reserve(deleted.size() + rows.size());
  size_t d = 0;
  uint64_t physical = 0, scan_row = 0;
  for (int64_t r : rows) {
    const auto target_row = static_cast<uint64_t>(r);
    for (;;) {
      while (d < deleted.size() && deleted[d] == physical) {
        merged.push_back(physical++);
        ++d;
      }
      if (scan_row == target_row) break;
      ++physical;
      ++scan_row;
    }
    merged.push_back(physical++);
    ++scan_row;
  }
  merged.insert(merged.end(), deleted.begin() + static_cast<std::ptrdiff_t>(d), deleted.end());
  delta::Remove old = removal_of(file);
  if (file.deletion_vector) ++vectors_removed_;
  const int64_t live = delta::live_records(file);
  if (live >= 0 && static_cast<int64_t>(merged.size() - deleted.size()) >= live) {
    // No row left: the file goes (as Spark does), not a vector marking all of it.
    bytes_removed_ += file.size;
    removed_.push_back(std::move(old));
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto dv, delta::write_deletion_vector(*target_.store, merged));
  ARROW_ASSIGN_OR_RAISE(auto dv_path, delta::deletion_vector_path(*target_.store, dv));
  vector_files_.push_back(dv_path.string());
  ++vectors_added_;
  if (file.deletion_vector) ++vectors_updated_;
  delta::Add add = file;
  add.deletion_vector = std::move(dv);
  add.data_change = true;
  if (add.stats) {
    // Min/max no longer bound only live rows (PROTOCOL.md "Per-file Statistics").
    auto stats = nlohmann::json::parse(*add.stats, nullptr, false);
    if (stats.is_object()) {
      stats["tightBounds"] = false;
      add.stats = stats.dump();
    }
  }
  vector_removed_.push_back(std::move(old));
  vector_added_.push_back(std::move(add));
  return arrow::Status::OK();
}

arrow::Status TableRewrite::write(const arrow::RecordBatch& rows) {
  if (rows.num_rows() == 0) return arrow::Status::OK();
  return writer_->write(rows);
}

namespace {

int64_t millis_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace

arrow::Result<DmlOutcome> TableRewrite::commit(std::string operation, nlohmann::json parameters,
                                               nlohmann::json metrics, delta::ReadSet read,
                                               const Names& names) {
  finished_ = true;
  auto finished = writer_->finish();
  if (!finished.ok()) {
    abort();
    return finished.status();
  }
  delta::Transaction txn = std::move(*finished);
  std::vector<delta::AddCdcFile> change_files;
  if (changes_) {
    auto closed = changes_->finish();
    if (!closed.ok()) {
      abort();
      delta::remove_data_files(*target_.store->objects(), target_.store->table_root(), txn.adds());
      return closed.status();
    }
    change_files = std::move(*closed);
    if (removed_.empty() && dropped_.empty() && vector_added_.empty()) {
      // An append (a MERGE that only inserted): readers derive the inserts from the adds.
      changes_->abort();
      change_files.clear();
    } else if (!change_files.empty() && !dropped_.empty()) {
      abort();
      delta::remove_data_files(*target_.store->objects(), target_.store->table_root(), txn.adds());
      return arrow::Status::NotImplemented(fmt::format(
          "{} on table {} both rewrote and dropped whole files; sluice cannot record that in the "
          "change data feed yet (a commit with change files hides the dropped files' deletes), so "
          "nothing was changed",
          operation, target_.name));
    }
  }
  // Nothing changed: no commit, as Spark's commitIfNeeded (delta-spark 4 makes none for a MERGE,
  // DELETE or UPDATE that matched nothing), unless a streaming flow records its progress with it.
  if (removed_.empty() && dropped_.empty() && txn.adds().empty() && vector_added_.empty() &&
      target_.txns.empty()) {
    DmlOutcome outcome;
    outcome.operation = std::move(operation);
    outcome.version = target_.snapshot->version();
    outcome.metrics = std::move(metrics);
    outcome.committed = false;
    return outcome;
  }
  for (auto& r : removed_) txn.remove_file(r);
  if (no_data_change_ || (changes_ && change_files.empty() && !removed_.empty())) {
    // Files rewritten without a changed row: no data change for the feed (see the header).
    txn.mark_no_data_change();
  }
  for (auto& r : dropped_) txn.remove_file(r);
  int64_t change_bytes = 0;
  for (const auto& c : change_files) {
    change_bytes += c.size;
    txn.add_other(c.to_action());
  }
  if (changes_) {
    // A table whose protocol predates the property (written by an older sluice or another
    // engine) gets the writer version or feature the change data files need.
    const auto& snapshot = *target_.snapshot;
    if (auto raised = delta::protocol_for_properties(snapshot.protocol(), snapshot.metadata().configuration)) {
      txn.set_protocol(std::move(*raised));
    }
  }
  int64_t bytes_added = 0;
  for (const auto& a : txn.adds()) bytes_added += a.size;
  const auto now = std::chrono::steady_clock::now();
  metrics[names.files_added] = std::to_string(txn.adds().size());
  metrics[names.files_removed] = std::to_string(
      removed_.size() + dropped_.size() + (names.vector_files_count_as_removed ? vector_added_.size() : 0));
  metrics[names.change_files] = std::to_string(change_files.size());
  metrics[names.change_bytes] = std::to_string(change_bytes);
  metrics[names.vectors_added] = std::to_string(vectors_added_);
  metrics[names.vectors_removed] = std::to_string(vectors_removed_);
  metrics[names.vectors_updated] = std::to_string(vectors_updated_);
  for (auto& r : vector_removed_) txn.remove_file(r);
  for (auto& a : vector_added_) txn.add_file(a);
  metrics[names.bytes_added] = std::to_string(bytes_added);
  metrics[names.bytes_removed] = std::to_string(bytes_removed_);
  metrics["executionTimeMs"] = std::to_string(millis_between(started_, now));
  metrics["scanTimeMs"] = std::to_string(millis_between(started_, scan_done_));
  metrics["rewriteTimeMs"] = std::to_string(millis_between(scan_done_, now));
  delta::CommitOptions options;
  options.operation = operation;
  options.operation_parameters = std::move(parameters);
  options.operation_metrics = metrics;
  options.isolation_level = delta::isolation_level_name(read.isolation);
  options.max_attempts = 100;
  txn.set_read_set(std::move(read));
  std::vector<delta::Add> adds = txn.adds();
  // The re-added files with vectors are the table's own: only the new data files go.
  std::erase_if(adds, [](const delta::Add& a) { return a.deletion_vector.has_value(); });
  for (const auto& [app, version] : target_.txns) txn.set_txn(app, version);
  if (target_.before_commit) {
    if (auto st = target_.before_commit(); !st.ok()) {
      delta::remove_data_files(*target_.store->objects(), target_.store->table_root(), adds);
      if (changes_) changes_->abort();
      remove_vector_files();
      return st;
    }
  }
  auto committed = txn.commit(options);
  if (!committed.ok()) {
    if (delta::is_commit_conflict(committed.status())) {
      // Nothing refers to the new files: delete them before the statement runs again.
      delta::remove_data_files(*target_.store->objects(), target_.store->table_root(), adds);
      if (changes_) changes_->abort();
      remove_vector_files();
    }
    return committed.status();
  }
  DmlOutcome outcome;
  outcome.operation = std::move(operation);
  outcome.version = committed->version;
  outcome.metrics = std::move(metrics);
  return outcome;
}

void TableRewrite::abort() {
  finished_ = true;
  if (writer_) writer_->abort();
  if (changes_) changes_->abort();
  remove_vector_files();
}

void TableRewrite::remove_vector_files() {
  for (const auto& path : vector_files_) (void)target_.store->objects()->remove(path);
  vector_files_.clear();
}

}  // namespace sluice::dml
