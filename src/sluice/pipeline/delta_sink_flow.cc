// Delta sink flows (delta_sink_flow.h).
#include "sluice/pipeline/delta_sink_flow.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"
#include "sluice/pipeline/sink_capture.h"
#include "sluice/pipeline/sink_files.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

namespace {

std::string sink_columns_text(const arrow::Schema& schema) {
  std::string out;
  for (const auto& f : schema.fields()) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", f->name(), f->type()->ToString());
  }
  return out;
}

// An upstream commit the sink cannot follow (rows rewritten, a commit missing from the log):
// the reader's advice does not apply to rows already appended to the sink's table.
arrow::Status sink_cannot_follow(const arrow::Status& st, const DeltaSinkSpec& spec) {
  std::string what = st.message();
  for (const char* advice : {". Use ignoreDeletes", ". The log is corrupt"}) {
    if (auto at = what.find(advice); at != std::string::npos) what.resize(at);
  }
  return arrow::Status(st.code(), fmt::format(
      "{}. A Delta sink appends and cannot follow rewritten rows: to append the upstream table's current rows "
      "to a new table, give sink '{}' a new path (its table at '{}' keeps the rows appended so far)",
      what, spec.sink, spec.location));
}

}  // namespace

arrow::Status check_sink_table_schema(const DeltaSinkSpec& spec, const std::string& flow, const arrow::Schema& table,
                                      const arrow::Schema& rows) {
  std::vector<std::string> problems;
  for (const auto& want : rows.fields()) {
    std::shared_ptr<arrow::Field> have;
    for (const auto& t : table.fields()) {
      if (to_lower(t->name()) == to_lower(want->name())) have = t;
    }
    if (!have) {
      problems.push_back(fmt::format("the table has no column '{}'", want->name()));
    } else if (!have->type()->Equals(*want->type())) {
      problems.push_back(fmt::format("column '{}' is {} in the table and {} in the flow", want->name(),
                                     have->type()->ToString(), want->type()->ToString()));
    }
  }
  for (const auto& t : table.fields()) {
    if (!rows.GetFieldByName(t->name()) &&
        std::none_of(rows.fields().begin(), rows.fields().end(),
                     [&](const auto& f) { return to_lower(f->name()) == to_lower(t->name()); })) {
      problems.push_back(fmt::format("the flow has no column '{}'", t->name()));
    }
  }
  if (problems.empty()) return arrow::Status::OK();
  std::string listed;
  for (const auto& p : problems) listed += (listed.empty() ? "" : "; ") + p;
  return invalid("sink '{}': the Delta table at '{}' has columns ({}), and flow '{}' writes ({}): {}. Make the flow's "
                 "SELECT give the table's columns and types (CAST, AS), or give the sink a new path",
                 spec.sink, spec.location, sink_columns_text(table), flow, sink_columns_text(rows), listed);
}

arrow::Status DeltaSinks::run(const Sink& sink, DatasetReport& report) const {
  report.dataset = sink.name;
  report.kind = "sink";
  auto spec = planner_.delta_sink_specs().at(sink.name);
  if (auto* capture = active_sink_capture()) {
    // sluice test: the table goes to the case's temporary storage, never to the sink's path.
    spec.objects = storage::local_store();
    spec.root = capture->delta_table(sink.name).string();
  }
  for (const auto& flow : sink.flows) {
    auto st = run_flow(spec, flow, report);
    if (!st.ok()) return with_context(st, fmt::format("sink '{}', flow '{}'", sink.name, flow));
  }
  return arrow::Status::OK();
}

arrow::Status DeltaSinks::run_flow(const DeltaSinkSpec& spec, const std::string& flow, DatasetReport& report) const {
  const auto& plan = planner_.flow_plans().at(flow);
  const auto src = SqlPlanner::streaming_source(plan);
  // The sink's table commits its rows and the flow's progress through the protocol of the
  // pipeline's streaming tables (no side tables, no state), in its own store.
  StreamingCommitOptions co{config_.id, flow, spec.sink, spec.root, plan.output_schema(), {}, {}};
  co.objects = spec.objects;
  ARROW_ASSIGN_OR_RAISE(auto commit, StreamingCommit::make(std::move(co)));
  if (commit->snapshot()) {
    ARROW_RETURN_NOT_OK(check_sink_table_schema(spec, flow, *commit->snapshot()->schema(), *plan.output_schema()));
  }

  delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  const auto& options = planner_.options();
  ARROW_ASSIGN_OR_RAISE(auto snapshot,
                        options.snapshots ? options.snapshots->latest(upstream) : delta::Snapshot::load(upstream));
  const std::string table_id = snapshot->metadata().id;
  std::optional<int64_t> done = commit->recorded(commit->ids().delta(table_id));
  if (done && *done < 0) done.reset();
  const int64_t latest = snapshot->version().value();
  auto to_send = sink_files_to_send(upstream, *snapshot, done);
  if (!to_send.ok()) return sink_cannot_follow(to_send.status(), spec);
  if (!*to_send) {
    report.version = *done;
    return arrow::Status::OK();
  }
  const auto& files = **to_send;
  ARROW_ASSIGN_OR_RAISE(auto* writer, commit->writer());
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(upstream, *snapshot, f.add));
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (!batch) break;
      report.rows_read += batch->num_rows();
      report.rows_from_files += batch->num_rows();
      ARROW_ASSIGN_OR_RAISE(auto rows, plan.apply_row_stages(*batch));
      if (rows->num_rows() > 0) ARROW_RETURN_NOT_OK(writer->write(*rows));
    }
  }
  const int64_t rows = writer->rows_written();
  fail_point("sink_before_commit");  // tests: the sink's files are written, not committed
  auto progress = commit->progress();
  progress.delta(table_id, DeltaReader::kOnly, DeltaVersion(latest));
  auto committed = commit->commit(progress);
  if (!committed.ok()) {
    return with_context(committed.status(), fmt::format("Delta sink table '{}'", spec.location));
  }
  report.rows_written += rows;
  report.version = latest;
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
