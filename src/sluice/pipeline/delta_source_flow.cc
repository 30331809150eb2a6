// Streaming-table flows that read another streaming table (STREAM(t)): the files its commits
// added since the version recorded in this flow's txn, pushed through the flow's operators
// (flow_operators.h), in one commit with the new version.
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/pipeline/flow_operators.h"
#include "sluice/pipeline/flow_runner.h"

namespace sluice::pipeline {

arrow::Status FlowRunner::run_delta_source(StreamingFlow& sf, const exec::PlanSource& src) {
  auto& report = sf.report;
  auto& windowed = sf.windowed;
  // Delta source: the files the upstream table added since the version recorded in our txn.
  delta::LogStore upstream(config_.table_path(src.name));
  ARROW_ASSIGN_OR_RAISE(auto up_snapshot, options_.snapshots ? options_.snapshots->latest(upstream)
                                                              : delta::Snapshot::load(upstream));
  auto& commit = sf.commit;
  const std::string app_id = commit.ids().delta(up_snapshot->metadata().id);
  // A Delta row's position is its upstream table and the version that added it. The chain
  // comes with the state of the last commit (event time), even when there is nothing new.
  const DeltaPositions positions(src.name, app_id);
  ARROW_ASSIGN_OR_RAISE(FlowOperatorsSpec ops, operators_spec(sf, positions));
  ops.upstream = src.name;
  ops.app_id = app_id;
  ARROW_ASSIGN_OR_RAISE(auto operators, plan_flow_operators(std::move(ops)));
  std::optional<int64_t> done = commit.recorded(app_id);
  if (done && *done < 0) done.reset();  // reset by a full refresh
  const int64_t latest = up_snapshot->version().value();
  if (done && *done >= latest) {
    report.version = commit.snapshot()->version().value();
    return arrow::Status::OK();
  }
  std::vector<delta::AddedFile> files;
  if (!done && windowed) {
    // Event time reads the upstream commit by commit from its first version (the watermark
    // moves once per commit, so the batches must be the same on replay); a log whose history
    // was cleaned up or rewritten falls back to the snapshot, as one batch.
    auto history = delta::added_files_between(upstream, DeltaVersion(-1), DeltaVersion(latest),
                                              delta::ChangePolicy::kFail);
    if (history.ok()) files = std::move(*history);
  }
  if (!done && files.empty()) {
    // The whole snapshot: its files are taken as of the latest version.
    for (const auto& f : up_snapshot->files()) files.push_back({DeltaVersion(latest), f});
  } else if (done) {
    ARROW_ASSIGN_OR_RAISE(files, delta::added_files_between(upstream, DeltaVersion(*done), DeltaVersion(latest),
                                                            delta::ChangePolicy::kFail));
  }
  ARROW_ASSIGN_OR_RAISE(auto* writer, commit.writer());
  for (size_t first = 0; first < files.size();) {
    const auto& f = files[first];
    // With event time, one batch per upstream commit: its watermark moves once per batch, as
    // Spark's moves once per trigger, and a commit's rows interleave the Kafka partitions.
    size_t end = first + 1;
    while (windowed && end < files.size() && files[end].version == f.version) ++end;
    std::shared_ptr<arrow::Table> table;
    // Without event time a file is read batch by batch, so memory holds a batch, not the file.
    std::unique_ptr<arrow::RecordBatchReader> reader;
    if (!windowed) {
      ARROW_ASSIGN_OR_RAISE(reader, delta::open_data_file(upstream, *up_snapshot, f.add));
    } else {
      std::vector<std::shared_ptr<arrow::Table>> parts;
      for (size_t k = first; k < end; ++k) {
        ARROW_ASSIGN_OR_RAISE(auto part, delta::read_data_file(upstream, *up_snapshot, files[k].add));
        parts.push_back(std::move(part));
      }
      if (parts.size() == 1) {
        table = parts[0];
      } else {
        ARROW_ASSIGN_OR_RAISE(table, arrow::ConcatenateTables(parts, arrow::ConcatenateTablesOptions::Defaults()));
      }
      ARROW_ASSIGN_OR_RAISE(auto whole, table->CombineChunksToBatch());
      ARROW_ASSIGN_OR_RAISE(table, arrow::Table::FromRecordBatches(whole->schema(), {whole}));
    }
    first = end;
    const int64_t version = f.version.value();
    if (!reader) reader = std::make_unique<arrow::TableBatchReader>(table);
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (!batch) break;
      report.rows_read += batch->num_rows();
      ARROW_ASSIGN_OR_RAISE(auto rows, operators->push_rows(batch, version));
      ARROW_RETURN_NOT_OK(writer->write(*rows));
    }
  }
  report.rows_written += writer->rows_written();
  auto progress = commit.progress();
  progress.delta(up_snapshot->metadata().id, DeltaReader::kOnly, DeltaVersion(latest));
  ARROW_ASSIGN_OR_RAISE(auto result, commit.commit(progress));
  report.version = result.version.value();
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
