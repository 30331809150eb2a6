// Runs a stream-stream join flow over two upstream Delta tables, exactly once.
#include "sluice/pipeline/stream_join_flow.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/status.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table.h"
#include "sluice/exec/stream_join.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

namespace {

struct Side {
  std::unique_ptr<delta::LogStore> store;
  std::shared_ptr<const delta::Snapshot> snapshot;
  DeltaReader reader = DeltaReader::kOnly;
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

arrow::Result<StreamJoinFlowResult> run_stream_join_flow(const exec::SelectPlan& plan, StreamJoinFlowSpec spec) {
  if (!spec.operators || spec.operators->stateful()) {
    return arrow::Status::Invalid("internal: a stream-stream join flow needs the table's stateless operators");
  }
  // The flow's chain: the join (two inputs, the state), then the table's operators.
  exec::OperatorChain chain;
  ARROW_ASSIGN_OR_RAISE(auto join_operator, exec::StreamJoinOperator::make(plan));
  const exec::StreamJoinOperator& join_op = *join_operator;
  const exec::StreamJoin* join = &join_op.join();
  chain.add(std::move(join_operator));
  chain.add(std::move(spec.operators));
  StreamingCommitOptions co;
  co.pipeline = spec.pipeline;
  co.flow = spec.flow;
  co.table = spec.table;
  co.table_path = spec.table_path;
  co.objects = spec.objects;
  co.schema = spec.schema;
  co.write.configuration = spec.configuration;
  co.write.description = spec.description;
  co.write.partition_columns = spec.partition_columns;
  co.write.clustering_columns = spec.clustering_columns;
  co.gate = spec.gate;
  ARROW_ASSIGN_OR_RAISE(auto target, StreamingCommit::make(std::move(co)));
  target->set_state(chain);  // parts "left" and "right"
  Side sides[2];
  TxnVersions committed;
  auto progress = target->progress();
  for (int i = 0; i < 2; ++i) {
    auto& s = sides[i];
    s.store = std::make_unique<delta::LogStore>(spec.objects, (i == 0 ? spec.left_path : spec.right_path).string());
    ARROW_ASSIGN_OR_RAISE(s.snapshot, delta::Snapshot::load(*s.store));
    s.reader = DeltaReader::kOnly;
    s.app_id = target->ids().delta(s.snapshot->metadata().id);
    if (i == 1 && s.app_id == sides[0].app_id) {  // a self-join: two positions in one table
      s.reader = DeltaReader::kSelfJoinRight;
      s.app_id = target->ids().delta(s.snapshot->metadata().id, s.reader);
    }
    s.done = target->recorded(s.app_id);
    if (s.done && *s.done < 0) s.done.reset();  // reset by a full refresh
    s.latest = s.snapshot->version().value();
    committed[s.app_id] = s.done.value_or(-1);
    progress.delta(s.snapshot->metadata().id, s.reader, DeltaVersion(s.latest));
  }
  StreamJoinFlowResult result;
  result.version = target->snapshot() ? target->snapshot()->version().value() : -1;
  // The state of the last commit: one snapshot per side, both labelled with that commit's progress.
  ARROW_RETURN_NOT_OK(target->load_state(committed));
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
  ARROW_ASSIGN_OR_RAISE(auto* writer, target->writer());
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
        auto side_batch = exec::OperatorBatch::from_source(batch);
        side_batch.input = i;  // 0: left, 1: right
        ARROW_ASSIGN_OR_RAISE(auto rows, chain.push(std::move(side_batch)));
        if (rows.rows->num_rows() == 0) continue;
        ARROW_RETURN_NOT_OK(writer->write(*rows.rows));
      }
    }
  }
  result.rows_written = writer->rows_written();
  result.rows_late = join_op.late_rows();
  report_state();
  // The state first, labelled with the progress of the commit that follows (streaming_commit.h).
  ARROW_ASSIGN_OR_RAISE(auto committed_result, target->commit(progress));
  result.version = committed_result.version.value();
  return result;
}

}  // namespace sluice::pipeline
