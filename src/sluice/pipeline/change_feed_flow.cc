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
#include "sluice/pipeline/table_retention.h"

namespace sluice::pipeline {

arrow::Status FlowRunner::run_change_feed_source(StreamingFlow& sf, const exec::PlanSource& src) {
  auto& report = sf.report;
  auto& commit = sf.commit;
  delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  ARROW_ASSIGN_OR_RAISE(auto setup, delta_source_setup(sf, src, upstream, std::nullopt));
  const auto& up_snapshot = setup.snapshot;
  const auto& done = setup.done;
  const DeltaVersion latest = up_snapshot->version();
  delta::ChangeFeedRange range{latest, latest};
  bool from_timestamp = false;
  if (done) {
    range.from = DeltaVersion(*done + 1);
  } else {
    ARROW_ASSIGN_OR_RAISE(auto start, delta::parse_change_feed_bound(src.change_feed->starting));
    if (start.version) {
      range.from = DeltaVersion(*start.version);
    } else {
      ARROW_ASSIGN_OR_RAISE(auto resolved, delta::resolve_change_feed_range(upstream, src.name, start, std::nullopt,
                                                                            delta::StartAfterLatest::kNextVersion, latest));
      range.from = resolved.from;
      from_timestamp = true;
    }
  }
  // Nothing new, or a start the upstream has not reached yet. A start timestamp after the latest
  // commit names the next version, whenever it comes: recorded now (the latest as consumed), as
  // Spark's stream fixes its start in its checkpoint, so that later runs do not resolve the
  // timestamp again and skip commits made before it.
  if (range.from > latest && !from_timestamp) {
    report.version = commit.snapshot()->version().value();
    return arrow::Status::OK();
  }
  std::vector<delta::ChangeFile> files;
  if (range.from <= latest) {
    ARROW_ASSIGN_OR_RAISE(files, delta::change_files(upstream, src.name, range));
    // The upstream's retention deletes are not changes downstream (table_retention.h), as for
    // STREAM(t): their rows were read when they were inserted.
    ARROW_ASSIGN_OR_RAISE(auto expired, retention_commit_versions(upstream, DeltaVersion(range.from.value() - 1), range.to));
    std::erase_if(files, [&](const delta::ChangeFile& f) { return expired.count(f.version.value()) > 0; });
  }
  const auto schema = delta::change_feed_schema(*up_snapshot->schema());
  const auto& partitions = up_snapshot->metadata().partition_columns;
  ARROW_ASSIGN_OR_RAISE(auto* writer, commit.writer());
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_change_file(upstream, schema, partitions, f));
    ARROW_RETURN_NOT_OK(push_file(*reader, f.version.value(), *setup.operators, *writer, report));
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
