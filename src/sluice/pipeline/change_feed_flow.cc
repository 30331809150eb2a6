// Streaming-table flows that read another table's change data feed (FROM STREAM
// table_changes('t', v)): the feed's rows of the versions after the one recorded in this flow's
// txn (the first run: from `v`), pushed through the flow's operators (flow_operators.h) and
// committed with the upstream's latest version as progress in one commit, so a restart reads
// every change exactly once, as the plain Delta source (delta_source_flow.cc) reads files.
#include <arrow/api.h>
#include <fmt/format.h>

#include "sluice/common/failpoint.h"
#include "sluice/delta/change_feed.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot_cache.h"
#include "sluice/delta/table_writer.h"
#include "sluice/pipeline/flow_operators.h"
#include "sluice/pipeline/flow_runner.h"

namespace sluice::pipeline {

arrow::Status FlowRunner::run_change_feed_source(StreamingFlow& sf, const exec::PlanSource& src) {
  auto& report = sf.report;
  auto& commit = sf.commit;
  delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  ARROW_ASSIGN_OR_RAISE(auto up_snapshot, options_.snapshots ? options_.snapshots->latest(upstream)
                                                             : delta::Snapshot::load(upstream));
  // Progress is the upstream version consumed, under the same appId as a plain Delta source.
  const std::string app_id = commit.ids().delta(up_snapshot->metadata().id);
  const DeltaPositions positions(src.name, app_id);
  ARROW_ASSIGN_OR_RAISE(FlowOperatorsSpec ops, operators_spec(sf, positions));
  ops.upstream = src.name;
  ops.app_id = app_id;
  ARROW_ASSIGN_OR_RAISE(auto operators, plan_flow_operators(std::move(ops)));
  std::optional<int64_t> done = commit.recorded(app_id);
  if (done && *done < 0) done.reset();  // reset by a full refresh
  const DeltaVersion latest = up_snapshot->version();
  delta::ChangeFeedRange range{latest, latest};
  if (done) {
    range.from = DeltaVersion(*done + 1);
  } else {
    ARROW_ASSIGN_OR_RAISE(auto start, delta::parse_change_feed_bound(src.change_feed->starting));
    if (start.version) {
      range.from = DeltaVersion(*start.version);
    } else {
      ARROW_ASSIGN_OR_RAISE(auto resolved, delta::resolve_change_feed_range(upstream, src.name, start, std::nullopt));
      range.from = resolved.from;
    }
  }
  if (range.from > latest) {  // nothing new, or a start the upstream has not reached yet
    report.version = commit.snapshot()->version().value();
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto files, delta::change_files(upstream, src.name, range));
  const auto schema = delta::change_feed_schema(*up_snapshot->schema());
  const auto& partitions = up_snapshot->metadata().partition_columns;
  ARROW_ASSIGN_OR_RAISE(auto* writer, commit.writer());
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_change_file(upstream, schema, partitions, f));
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (!batch) break;
      report.rows_read += batch->num_rows();
      report.rows_from_files += batch->num_rows();
      ARROW_ASSIGN_OR_RAISE(auto rows, operators->push_rows(batch, f.version.value()));
      ARROW_RETURN_NOT_OK(writer->write(*rows));
    }
  }
  report.rows_written += writer->rows_written();
  auto progress = commit.progress();
  progress.delta(up_snapshot->metadata().id, DeltaReader::kOnly, latest);
  fail_point("before_change_feed_commit");  // tests: the changes are written, not committed
  ARROW_ASSIGN_OR_RAISE(auto result, commit.commit(progress));
  report.version = result.version.value();
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
