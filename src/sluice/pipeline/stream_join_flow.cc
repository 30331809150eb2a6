// Runs a stream-stream join flow over two upstream Delta tables, exactly once.
#include "sluice/pipeline/stream_join_flow.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/stream_join.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::pipeline {

namespace {

struct Side {
  exec::JoinSide side;
  std::unique_ptr<delta::LogStore> store;
  std::shared_ptr<const delta::Snapshot> snapshot;
  std::string app_id;
  std::optional<int64_t> done;  // upstream version consumed by the target's last commit
  int64_t latest = -1;
};

// Files the upstream added after `done` (all of them when none), in commit order: the order
// rows arrive in decides which are late, so a replay must see the same order.
arrow::Result<std::vector<delta::AddedFile>> new_files(const Side& s) {
  if (s.done && *s.done >= s.latest) return std::vector<delta::AddedFile>{};
  auto files = delta::added_files_between(*s.store, DeltaVersion(s.done.value_or(-1)), DeltaVersion(s.latest),
                                          delta::ChangePolicy::kFail);
  if (files.ok() || s.done) return files;
  // The log before a checkpoint is gone: the snapshot's files, as of the latest version.
  std::vector<delta::AddedFile> all;
  for (const auto& f : s.snapshot->files()) all.push_back({DeltaVersion(s.latest), f});
  return all;
}

}  // namespace

arrow::Result<StreamJoinFlowResult> run_stream_join_flow(const exec::SelectPlan& plan, const StreamJoinFlowSpec& spec) {
  ARROW_ASSIGN_OR_RAISE(auto join, exec::StreamJoin::make(plan));
  auto target = std::make_shared<delta::LogStore>(spec.table_path);
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*target));
  Side sides[2];
  sides[0].side = exec::JoinSide::kLeft;
  sides[1].side = exec::JoinSide::kRight;
  TxnVersions committed, progress;
  for (int i = 0; i < 2; ++i) {
    auto& s = sides[i];
    s.store = std::make_unique<delta::LogStore>(i == 0 ? spec.left_path : spec.right_path);
    ARROW_ASSIGN_OR_RAISE(s.snapshot, delta::Snapshot::load(*s.store));
    s.app_id = delta_progress_id(spec.pipeline, spec.flow, s.snapshot->metadata().id);
    if (i == 1 && s.app_id == sides[0].app_id) {  // a self-join: two positions in one table
      s.app_id = delta_progress_id(spec.pipeline, spec.flow, s.snapshot->metadata().id, DeltaReader::kSelfJoinRight);
    }
    s.done = snapshot ? snapshot->txn_version(s.app_id) : std::nullopt;
    if (s.done && *s.done < 0) s.done.reset();  // reset by a full refresh
    s.latest = s.snapshot->version().value();
    committed[s.app_id] = s.done.value_or(-1);
    progress[s.app_id] = s.latest;
  }
  StreamJoinFlowResult result;
  result.version = snapshot ? snapshot->version().value() : -1;
  // The state of the last commit: one snapshot per side, both labelled with that commit's progress.
  StateStore left_store(spec.table_path / "_sluice_state" / spec.flow / "left");
  StateStore right_store(spec.table_path / "_sluice_state" / spec.flow / "right");
  {
    ARROW_ASSIGN_OR_RAISE(auto left, left_store.load(committed));
    ARROW_ASSIGN_OR_RAISE(auto right, right_store.load(committed));
    if (left.has_value() != right.has_value()) {
      return invalid("the join state of table '{}' has one side only under {}; run a full refresh of the table",
                     spec.table, (spec.table_path / "_sluice_state" / spec.flow).string());
    }
    if (left) {
      exec::StreamJoinState state;
      state.left_max_time = left->watermark;
      state.right_max_time = right->watermark;
      state.left_rows = left->open_rows;
      state.right_rows = right->open_rows;
      ARROW_RETURN_NOT_OK(join->restore(std::move(state)));
    }
  }
  auto report_state = [&] {
    result.state_rows = join->state_rows();
    result.state_bytes = join->state_bytes();
    result.watermark = std::min(join->watermark(exec::JoinSide::kLeft), join->watermark(exec::JoinSide::kRight));
  };
  std::vector<delta::AddedFile> files[2];
  for (int i = 0; i < 2; ++i) {
    ARROW_ASSIGN_OR_RAISE(files[i], new_files(sides[i]));
  }
  if (files[0].empty() && files[1].empty() && sides[0].done && sides[1].done &&
      *sides[0].done >= sides[0].latest && *sides[1].done >= sides[1].latest) {
    report_state();
    return result;  // nothing new
  }
  delta::WriteOptions wo;
  wo.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  wo.table_name = spec.table;
  wo.configuration = spec.configuration;
  wo.description = spec.description;
  wo.partition_columns = spec.partition_columns;
  ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(target, snapshot, *spec.schema, wo));
  for (int i = 0; i < 2; ++i) {
    // One batch per upstream commit: a side's watermark moves once per batch (as Spark's moves
    // once per trigger), and a commit's rows interleave the upstream's Kafka partitions.
    const auto& side_files = files[i];
    for (size_t first = 0; first < side_files.size();) {
      size_t end = first + 1;
      while (end < side_files.size() && side_files[end].version == side_files[first].version) ++end;
      std::vector<std::shared_ptr<arrow::Table>> parts;
      for (size_t k = first; k < end; ++k) {
        ARROW_ASSIGN_OR_RAISE(auto part, delta::read_data_file(*sides[i].store, *sides[i].snapshot, side_files[k].add));
        parts.push_back(std::move(part));
      }
      first = end;
      ARROW_ASSIGN_OR_RAISE(auto table, arrow::ConcatenateTables(parts));
      ARROW_ASSIGN_OR_RAISE(auto whole, table->CombineChunksToBatch());
      ARROW_ASSIGN_OR_RAISE(table, arrow::Table::FromRecordBatches(whole->schema(), {whole}));
      arrow::TableBatchReader reader(*table);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
        if (!batch) break;
        result.rows_read += batch->num_rows();
        ARROW_ASSIGN_OR_RAISE(auto r, join->consume(sides[i].side, *batch));
        result.rows_late += r.late_rows;
        if (r.output->num_rows() == 0) continue;
        exec::OperatorBatch joined;  // joined rows have no single source row
        joined.rows = r.output;
        joined.lineage = exec::OperatorBatch::Lineage::kNone;
        ARROW_ASSIGN_OR_RAISE(auto rows, spec.operators->push(std::move(joined)));
        ARROW_RETURN_NOT_OK(writer->write(*rows.rows));
      }
    }
  }
  result.rows_written = writer->rows_written();
  report_state();
  // The state first, labelled with the progress of the commit that follows.
  auto save = [&]() -> arrow::Status {
    const auto& st = join->state();
    exec::WindowState left{st.left_max_time, {}, st.left_rows};
    exec::WindowState right{st.right_max_time, {}, st.right_rows};
    ARROW_RETURN_NOT_OK(left_store.save(progress, left).status());
    ARROW_RETURN_NOT_OK(right_store.save(progress, right).status());
    return arrow::Status::OK();
  };
  if (auto st = save(); !st.ok()) {
    writer->abort();
    return st;
  }
  fail_point("after_state_save");  // tests: the state of a commit that never lands
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  for (const auto& [app, v] : progress) txn.set_txn(app, v);
  ARROW_ASSIGN_OR_RAISE(auto committed_result, txn.commit(txn.streaming_update(result.rows_written)));
  result.version = committed_result.version.value();
  return result;
}

}  // namespace sluice::pipeline
