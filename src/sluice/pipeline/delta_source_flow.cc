// Streaming-table flows that read another streaming table (STREAM(t)): the files its commits
// added since the version recorded in this flow's txn, pushed through the flow's operators
// (flow_operators.h), in one commit with the new version; or, when the upstream is written in
// the same triggered run, its rows as it writes them (commit_channel.h), one commit per upstream
// commit, files only for the versions not at hand.
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/common/failpoint.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/pipeline/commit_channel.h"
#include "sluice/pipeline/flow_operators.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/run_progress.h"

namespace sluice::pipeline {

namespace {

// Whether in-process rows have the columns a file read gives (read_data_file: the snapshot's
// schema); nullability and metadata aside.
bool same_columns(const arrow::Schema& rows, const arrow::Schema& table) {
  if (rows.num_fields() != table.num_fields()) return false;
  for (int i = 0; i < rows.num_fields(); ++i) {
    if (rows.field(i)->name() != table.field(i)->name() || !rows.field(i)->type()->Equals(table.field(i)->type())) {
      return false;
    }
  }
  return true;
}

void add_counts(DatasetReport& into, const DatasetReport& part) {
  into.rows_read += part.rows_read;
  into.rows_dropped += part.rows_dropped;
  into.rows_quarantined += part.rows_quarantined;
  for (const auto& [name, n] : part.expectation_failures) into.expectation_failures[name] += n;
  for (const auto& [name, n] : part.expectation_rows) into.expectation_rows[name] += n;
}

}  // namespace

arrow::Status FlowRunner::run_delta_source(StreamingFlow& sf, const exec::PlanSource& src) {
  // Event time (windows, dedup) reads files: their results depend on the order of rows within
  // a commit, which a file read fixes.
  CommitChannel* channel = sf.windowed || !channels_ ? nullptr : channels_->find(src.name, sf.flow_name);
  if (channel) return take_delta_in_process(sf, src, *channel);
  return read_delta_files(sf, src, std::nullopt);
}

arrow::Result<FlowRunner::DeltaSourceSetup> FlowRunner::delta_source_setup(StreamingFlow& sf,
                                                                            const exec::PlanSource& src,
                                                                            const delta::LogStore& upstream,
                                                                            std::optional<int64_t> upto) {
  DeltaSourceSetup setup;
  // A read up to the version an in-process commit builds on loads exactly that version; any
  // other read advances the kept snapshot of a continuous run, if there is one (a continuous
  // run with a pipeline.yaml bronze list runs its SQL tables as triggered runs with channels).
  ARROW_ASSIGN_OR_RAISE(setup.snapshot,
                        upto ? delta::Snapshot::load(upstream, std::optional(DeltaVersion(*upto)))
                        : options_.snapshots ? options_.snapshots->latest(upstream)
                                             : delta::Snapshot::load(upstream));
  // Progress is the upstream version consumed, under one appId per upstream table (the change
  // feed's as the files').
  setup.app_id = sf.commit.ids().delta(setup.snapshot->metadata().id);
  // A Delta row's position is its upstream table and the version that added it. The chain
  // comes with the state of the last commit (event time), even when there is nothing new.
  setup.positions = std::make_unique<DeltaPositions>(src.name, setup.app_id);
  ARROW_ASSIGN_OR_RAISE(FlowOperatorsSpec ops, operators_spec(sf, *setup.positions));
  ops.upstream = src.name;
  ops.app_id = setup.app_id;
  ARROW_ASSIGN_OR_RAISE(setup.operators, plan_flow_operators(std::move(ops)));
  setup.done = sf.commit.recorded(setup.app_id);
  if (setup.done && *setup.done < 0) setup.done.reset();  // reset by a full refresh
  return setup;
}

arrow::Status FlowRunner::push_file(arrow::RecordBatchReader& reader, int64_t version, exec::OperatorChain& operators,
                                    delta::TableWriter& writer, DatasetReport& report) {
  std::shared_ptr<arrow::RecordBatch> batch;
  while (true) {
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) return arrow::Status::OK();
    report.rows_read += batch->num_rows();
    report.rows_from_files += batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto rows, operators.push_rows(batch, version));
    ARROW_RETURN_NOT_OK(writer.write(*rows));
  }
}

arrow::Status FlowRunner::read_delta_files(StreamingFlow& sf, const exec::PlanSource& src,
                                           std::optional<int64_t> upto) {
  auto& report = sf.report;
  auto& windowed = sf.windowed;
  auto& commit = sf.commit;
  // Delta source: the files the upstream table added since the version recorded in our txn.
  delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  ARROW_ASSIGN_OR_RAISE(auto setup, delta_source_setup(sf, src, upstream, upto));
  const auto& up_snapshot = setup.snapshot;
  const auto& done = setup.done;
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
    const int64_t read_before = report.rows_read;
    ARROW_RETURN_NOT_OK(push_file(*reader, version, *setup.operators, *writer, report));
    if (options_.progress) options_.progress->add_read(sf.d.name, report.rows_read - read_before);
  }
  report.rows_written += writer->rows_written();
  auto progress = commit.progress();
  progress.delta(up_snapshot->metadata().id, DeltaReader::kOnly, DeltaVersion(latest));
  ARROW_ASSIGN_OR_RAISE(auto result, commit.commit(progress));
  report.version = result.version.value();
  return arrow::Status::OK();
}

// The upstream's commits of this run as its writer writes them: the rows of a commit go through
// the operators into the writer while the upstream still writes, and are committed with the
// upstream version as progress once that commit landed as the next version; anything else (a
// lost or overflowed commit, another writer's version in between) is dropped and read from the
// files, as are the versions before the first commit at hand and after the channel closed.
arrow::Status FlowRunner::take_delta_in_process(StreamingFlow& sf, const exec::PlanSource& src,
                                                CommitChannel& channel) {
  using Kind = CommitChannel::Event::Kind;
  auto& commit = sf.commit;
  const delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  // The commit being taken: its operators count into `part`, added to the report if it lands.
  struct Taking {
    std::string app_id;  // empty: the upstream did not exist when the commit began
    int64_t expected = 0;  // the version the commit lands as unless another writer's came first
    std::unique_ptr<DeltaPositions> positions;
    std::unique_ptr<exec::OperatorChain> operators;
    DatasetReport part;
    std::shared_ptr<arrow::Schema> schema;  // of the rows taken
    int64_t rows = 0;
  };
  std::optional<Taking> taking;
  channel.attach();
  struct Detach {  // however this ends, the upstream no longer queues rows for it
    CommitChannel& channel;
    ~Detach() { channel.detach(); }
  } detach{channel};
  auto drop = [&]() -> arrow::Status {
    const bool wrote = taking && taking->rows > 0;
    // Its rows are read again from the files.
    if (wrote && options_.progress) options_.progress->add_read(sf.d.name, -taking->rows);
    taking.reset();
    return wrote ? commit.reload() : arrow::Status::OK();  // its rows and quarantined rows go
  };
  while (true) {
    auto event = channel.next();
    if (event.kind == Kind::kClosed) break;
    if (event.kind == Kind::kBegin) {
      ARROW_RETURN_NOT_OK(drop());
      std::string app_id;
      if (event.version >= 0) {
        // Everything up to the version this commit builds on comes from the files first.
        ARROW_RETURN_NOT_OK(read_delta_files(sf, src, event.version));
        ARROW_ASSIGN_OR_RAISE(auto base, delta::Snapshot::load(upstream, DeltaVersion(event.version)));
        app_id = commit.ids().delta(base->metadata().id);
      } else if (sf.quarantine) {
        continue;  // a new upstream: quarantined rows need its table id for their position
      }
      taking.emplace();
      taking->app_id = app_id;
      taking->expected = event.version + 1;
      taking->positions = std::make_unique<DeltaPositions>(src.name, app_id);
      ARROW_ASSIGN_OR_RAISE(FlowOperatorsSpec ops, operators_spec(sf, *taking->positions));
      ops.report = &taking->part;
      ops.upstream = src.name;
      ops.app_id = app_id;
      ARROW_ASSIGN_OR_RAISE(taking->operators, plan_flow_operators(std::move(ops)));
      continue;
    }
    if (!taking) continue;
    if (event.kind == Kind::kBatch) {
      if (!taking->schema) taking->schema = event.batch->schema();
      if (!taking->schema->Equals(*event.batch->schema(), /*check_metadata=*/false)) {
        ARROW_RETURN_NOT_OK(drop());
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto* writer, commit.writer());
      taking->part.rows_read += event.batch->num_rows();
      taking->rows += event.batch->num_rows();
      if (options_.progress) options_.progress->add_read(sf.d.name, event.batch->num_rows());
      ARROW_ASSIGN_OR_RAISE(auto rows, taking->operators->push_rows(event.batch, taking->expected));
      ARROW_RETURN_NOT_OK(writer->write(*rows));
      commit.publish(rows);
      continue;
    }
    if (event.kind == Kind::kLost) {
      ARROW_RETURN_NOT_OK(drop());
      continue;
    }
    // kCommitted: the rows are exactly those of upstream version `event.version`.
    const int64_t version = event.version;
    ARROW_ASSIGN_OR_RAISE(auto landed, delta::Snapshot::load(upstream, DeltaVersion(version)));
    const std::string app_id = commit.ids().delta(landed->metadata().id);
    std::optional<int64_t> done = commit.recorded(app_id);
    if (done && *done < 0) done.reset();
    const bool next = version == taking->expected && (done ? *done : -1) + 1 == version;
    const bool same_table = taking->app_id.empty() || taking->app_id == app_id;
    const bool columns = !taking->schema || same_columns(*taking->schema, *landed->schema());
    if (taking->rows == 0 || !next || !same_table || !columns) {
      ARROW_RETURN_NOT_OK(drop());  // read from the files, after the channel closes or the next begin
      continue;
    }
    fail_point("before_in_process_commit");  // tests: the upstream's commit landed, ours not
    auto progress = commit.progress();
    progress.delta(landed->metadata().id, DeltaReader::kOnly, DeltaVersion(version));
    const int64_t rows_written = commit.pending_rows();
    ARROW_ASSIGN_OR_RAISE(auto result, commit.commit(progress));
    add_counts(sf.report, taking->part);
    sf.report.rows_in_process += taking->part.rows_read;
    sf.report.rows_written += rows_written;
    sf.report.version = result.version.value();
    taking.reset();
  }
  ARROW_RETURN_NOT_OK(drop());
  // What the upstream committed that was not at hand.
  return read_delta_files(sf, src, std::nullopt);
}

}  // namespace sluice::pipeline
