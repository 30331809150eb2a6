// APPLY CHANGES / AUTO CDC flows (SCD type 1 and 2): the change rows an upstream streaming table
// added since the version in this flow's txn, resolved against the flow's per-key state
// (SCD1: exec/cdc_resolver.h) or the target's histories (SCD2: exec/cdc_history.h) and applied to the target as one MERGE per micro-batch (dml/merge.h,
// copy-on-write, Spark's MERGE commit), with the upstream version as txn progress and the state
// saved under that progress before the commit (the order of streaming_commit.h): a crash
// anywhere leaves either the old target, progress and state, or the new ones.
#include <arrow/api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "sluice/delta/table_definition.h"
#include "sluice/common/failpoint.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/dml/merge.h"
#include "sluice/exec/cdc_history.h"
#include "sluice/exec/cdc_resolver.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/pipeline/flow_runner.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/sql/parser.h"

namespace sluice::pipeline {

namespace {

// A micro-batch ends at the first upstream version boundary past this many change rows.
constexpr int64_t kBatchRows = 64 * 1024;
// DLT's default for pipelines.cdc.tombstoneGCThresholdInSeconds: two days.
constexpr int64_t kDefaultTombstoneSeconds = 2 * 24 * 3600;

std::string backquoted(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    out += c;
    if (c == '`') out += '`';
  }
  return out + "`";
}

// The MERGE that applies a resolved micro-batch (cdc_resolver.h's and cdc_history.h's changes)
// to the target: rows matched on `on` (the keys, and __START_AT for SCD type 2).
std::string merge_text(const std::vector<std::string>& on_columns, const std::vector<std::string>& columns,
                       bool ignore_null_updates) {
  std::vector<std::string> on, set, keep_null, names, values;
  for (const auto& k : on_columns) on.push_back(fmt::format("t.{0} = s.{0}", backquoted(k)));
  for (const auto& c : columns) {
    set.push_back(fmt::format("{0} = s.{0}", backquoted(c)));
    keep_null.push_back(fmt::format("{0} = coalesce(s.{0}, t.{0})", backquoted(c)));
    names.push_back(backquoted(c));
    values.push_back("s." + backquoted(c));
  }
  const std::string action = "s." + backquoted(exec::kActionColumn);
  std::string text = fmt::format("MERGE INTO target AS t USING changes AS s ON {}\n", fmt::join(on, " AND "));
  text += fmt::format("WHEN MATCHED AND {} = {} THEN DELETE\n", action, static_cast<int>(exec::CdcAction::kDelete));
  if (ignore_null_updates) {
    text += fmt::format("WHEN MATCHED AND {} = {} THEN UPDATE SET {}\n", action,
                        static_cast<int>(exec::CdcAction::kUpsertKeepNull), fmt::join(keep_null, ", "));
  }
  text += fmt::format("WHEN MATCHED THEN UPDATE SET {}\n", fmt::join(set, ", "));
  text += fmt::format("WHEN NOT MATCHED AND {} <> {} THEN INSERT ({}) VALUES ({})", action,
                      static_cast<int>(exec::CdcAction::kDelete), fmt::join(names, ", "), fmt::join(values, ", "));
  return text;
}

arrow::Result<std::shared_ptr<arrow::Array>> evaluate_or_null(const std::optional<exec::BoundExpression>& e,
                                                              const arrow::RecordBatch& rows) {
  if (!e) return nullptr;
  return exec::evaluate(*e, rows);
}

}  // namespace

arrow::Status FlowRunner::run_apply_changes(const Dataset& d, const std::string& flow_name, DatasetReport& report) {
  const auto& graph = planner_.graph();
  const auto& flow = graph.flows.at(flow_name);
  const auto& ac = *flow.apply_changes;
  const auto& file = graph.files[flow.file];
  const auto& plan = planner_.flow_plans().at(flow_name);
  const auto& schema = planner_.schemas().at(d.name);
  const auto src = SqlPlanner::streaming_source(plan);
  const auto where = fmt::format("APPLY CHANGES INTO {} (flow '{}')", d.name, flow_name);
  // Its MERGEs read and rewrite the target's files: auto compaction commits only between runs.
  TableGate::Hold hold;
  if (auto* gate = maintenance_ ? maintenance_->gate(d.name) : nullptr) hold = gate->hold_writer();

  // What decides: the change rows' sequence and APPLY AS conditions, the state's resolver.
  const auto& changes_schema = plan.output_schema();
  exec::ExpressionBinder binder(file, changes_schema);
  ARROW_ASSIGN_OR_RAISE(auto sequence, binder.bind(*ac.sequence_by));
  std::optional<exec::BoundExpression> delete_when, truncate_when;
  if (ac.delete_when) {
    ARROW_ASSIGN_OR_RAISE(delete_when, binder.bind(*ac.delete_when));
  }
  if (ac.truncate_when) {
    ARROW_ASSIGN_OR_RAISE(truncate_when, binder.bind(*ac.truncate_when));
  }
  const bool history = ac.scd_type == 2;
  std::vector<std::string> columns, on_columns = ac.keys;  // of the target, in its order
  for (const auto& f : schema->fields()) columns.push_back(f->name());
  std::unique_ptr<exec::CdcResolver> resolver;              // SCD type 1
  std::unique_ptr<exec::CdcHistoryResolver> history_resolver;  // SCD type 2
  if (history) {
    exec::CdcHistorySpec spec;
    spec.keys = ac.keys;
    for (const auto& c : columns) {
      if (c != exec::kStartAt && c != exec::kEndAt) spec.columns.push_back(c);
    }
    if (!ac.track_columns.empty()) {
      spec.tracked = ac.track_columns;
    } else {
      for (const auto& c : spec.columns) {
        const auto& except = ac.track_except_columns;
        if (std::find(except.begin(), except.end(), c) == except.end()) spec.tracked.push_back(c);
      }
    }
    ARROW_ASSIGN_OR_RAISE(history_resolver, exec::CdcHistoryResolver::make(spec, changes_schema, sequence.type));
    on_columns.push_back(exec::kStartAt);
  } else {
    exec::CdcSpec spec;
    spec.keys = ac.keys;
    spec.columns = columns;
    spec.ignore_null_updates = ac.ignore_null_updates;
    ARROW_ASSIGN_OR_RAISE(resolver, exec::CdcResolver::make(spec, changes_schema, sequence.type));
  }
  const sql::SourceFile merge_file{fmt::format("<{}>", where),
                                   merge_text(on_columns, columns, ac.ignore_null_updates && !history)};
  ARROW_ASSIGN_OR_RAISE(auto merge_command, sql::parse_command(merge_file));
  const auto properties = planner_.properties(d);
  int64_t tombstone_seconds = kDefaultTombstoneSeconds;
  if (auto it = properties.find("pipelines.cdc.tombstoneGCThresholdInSeconds"); it != properties.end()) {
    ARROW_ASSIGN_OR_RAISE(tombstone_seconds,  // checked while planning, with the file:line:col
                          parse_int64(it->second, "pipelines.cdc.tombstoneGCThresholdInSeconds"));
  }

  // The target: created empty on the first run, then changed by MERGE only.
  const auto table_path = config_.table_path(d.name);
  auto store = std::make_shared<delta::LogStore>(config_.objects, table_path.string());
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  if (!snapshot) {
    StreamingCommitOptions co{config_.id, flow_name, d.name, table_path, schema, {}, {}};
    co.objects = config_.objects;
    co.write.configuration = delta::with_defined_properties(properties);
    co.write.partition_columns = d.definition->partitioned_by;
    co.write.clustering_columns = planner_.clustering_columns(d.name);
    co.write.description = d.definition->comment;
    ARROW_ASSIGN_OR_RAISE(auto create, StreamingCommit::make(std::move(co)));
    ARROW_ASSIGN_OR_RAISE(auto created, create->commit(create->progress()));
    snapshot = created.snapshot;
  }
  const ProgressIds ids(config_.id, flow_name);
  StateStore state_store(config_.objects, table_path / "_sluice_state" / flow_name);
  std::shared_ptr<arrow::Table> state;  // SCD1's per-key state; SCD2's tombstones (deletes that closed nothing)
  // An SCD2 target from before its tombstones were kept has progress and no state: none then,
  // until a commit carries the marker that its state is kept (the first one saving state). Not
  // told by the folder: a snapshot saved for a commit that never landed would be taken for it.
  bool state_committed = true;
  if (history) {
    const auto marker = snapshot->txns().find(ids.state_kept());
    state_committed = marker != snapshot->txns().end() && marker->second.version >= 1;
  }
  {
    auto loaded = state_store.load(ids.recorded_in(snapshot.get()), !state_committed);
    if (!loaded.ok()) return with_context(loaded.status(), where);
    if (*loaded) state = (*loaded)->open_rows;
  }
  // State of another shape (a target switched between SCD types 1 and 2, or whose keys or
  // SEQUENCE BY type changed, without a full refresh) is refused before it is read.
  if (state) {
    const auto& expected = history ? history_resolver->state_schema() : resolver->state_schema();
    if (!state->schema()->Equals(*expected, /*check_metadata=*/false)) {
      return invalid("{}: the flow's saved state ({}) has the columns {} but SCD type {} with these keys and "
                     "SEQUENCE BY needs {} (was the target switched between SCD types without a full refresh?); "
                     "run a full refresh of {} (--full-refresh {})",
                     where, config_.objects->display(state_store.dir().string()), state->schema()->ToString(),
                     ac.scd_type, expected->ToString(), d.name, d.name);
    }
  }

  // The upstream's commits since the recorded progress.
  delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  ARROW_ASSIGN_OR_RAISE(auto up_snapshot, delta::Snapshot::load(upstream));
  const std::string app_id = ids.delta(up_snapshot->metadata().id);
  std::optional<int64_t> done;
  if (auto it = snapshot->txns().find(app_id); it != snapshot->txns().end() && it->second.version >= 0) {
    done = it->second.version;
  }
  const int64_t latest = up_snapshot->version().value();
  report.version = snapshot->version().value();
  if (done && *done >= latest) return arrow::Status::OK();
  std::vector<delta::AddedFile> files;
  if (done) {
    ARROW_ASSIGN_OR_RAISE(files, delta::added_files_between(upstream, DeltaVersion(*done), DeltaVersion(latest),
                                                            delta::ChangePolicy::kFail));
  } else {
    // From the first version, commit by commit, so that each micro-batch is a prefix of the
    // change feed; a log whose history was cleaned up (or holds a commit that removed rows,
    // such as the upstream's full refresh) falls back to the snapshot, as one batch. Any other
    // error (storage, an unreadable commit) is the run's.
    auto history = delta::added_files_between(upstream, DeltaVersion(-1), DeltaVersion(latest),
                                              delta::ChangePolicy::kFail);
    if (history.ok()) {
      files = std::move(*history);
    } else if (delta::is_missing_commit(history.status()) || delta::is_removed_data(history.status())) {
      for (const auto& f : up_snapshot->files()) files.push_back({DeltaVersion(latest), f});
    } else {
      return with_context(history.status(), where);
    }
  }

  // One MERGE per micro-batch: whole upstream versions, at least kBatchRows rows unless the last.
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending;
  int64_t pending_rows = 0;
  int64_t applied = done ? *done : -1;
  auto apply = [&](int64_t upto) -> arrow::Status {
    std::shared_ptr<arrow::RecordBatch> rows;
    if (pending.empty()) {
      ARROW_ASSIGN_OR_RAISE(rows, arrow::RecordBatch::MakeEmpty(changes_schema));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(changes_schema, pending));
      ARROW_ASSIGN_OR_RAISE(rows, table->CombineChunksToBatch());
    }
    pending.clear();
    pending_rows = 0;
    for (const auto& k : ac.keys) {
      if (const int64_t nulls = rows->GetColumnByName(k)->null_count(); nulls > 0) {
        return invalid("{}: key column '{}' is null in {} change row(s) of {} up to version {}, which identify no "
                       "row; filter them out in the source (WHERE {} IS NOT NULL)",
                       where, k, nulls, src.name, upto, k);
      }
    }
    exec::CdcBatch batch;
    batch.rows = rows;
    ARROW_ASSIGN_OR_RAISE(batch.sequence, exec::evaluate(sequence, *rows));
    ARROW_ASSIGN_OR_RAISE(batch.is_delete, evaluate_or_null(delete_when, *rows));
    ARROW_ASSIGN_OR_RAISE(batch.is_truncate, evaluate_or_null(truncate_when, *rows));
    const int64_t now = now_millis();
    arrow::Result<exec::CdcOutcome> resolved;
    if (history) {
      // The target's histories (of the batch's keys): a late change lands between versions.
      ARROW_ASSIGN_OR_RAISE(auto current, delta::scan_table(*store, *snapshot));
      resolved = history_resolver->resolve(current, batch, state, now, now - tombstone_seconds * 1000);
    } else {
      resolved = resolver->resolve(state, batch, now, now - tombstone_seconds * 1000);
    }
    if (!resolved.ok()) return with_context(resolved.status(), where);
    SourceProgress progress(ids);
    progress.delta(up_snapshot->metadata().id, DeltaReader::kOnly, DeltaVersion(upto));
    dml::DmlTarget target;
    target.store = store;
    target.snapshot = snapshot;
    target.name = d.name;
    target.txns = progress.positions();
    if (!state_committed && resolved->state) target.txns[ids.state_kept()] = 1;  // with the state's first commit
    target.before_commit = [&]() -> arrow::Status {
      if (resolved->state) {
        exec::WindowState saved;
        saved.open_rows = resolved->state;
        ARROW_RETURN_NOT_OK(state_store.save(progress.positions(), saved).status());
      }
      fail_point("before_apply_changes_commit");  // tests: files and state written, the commit not
      return arrow::Status::OK();
    };
    auto merged = dml::run_merge(*merge_command.merge, merge_file, target, resolved->changes);
    if (!merged.ok()) return with_context(merged.status(), where);
    ARROW_ASSIGN_OR_RAISE(snapshot, delta::Snapshot::load(*store, merged->version));
    state = resolved->state;
    if (resolved->state) state_committed = true;
    report.rows_written += resolved->upserts + resolved->deletes;
    report.rows_duplicate += resolved->ignored;
    if (state) report.state_rows = state->num_rows();
    report.version = merged->version.value();
    applied = upto;
    return arrow::Status::OK();
  };
  for (size_t i = 0; i < files.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto table, delta::read_data_file(upstream, *up_snapshot, files[i].add));
    arrow::TableBatchReader reader(table);
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
      if (!batch) break;
      report.rows_read += batch->num_rows();
      report.rows_from_files += batch->num_rows();
      ARROW_ASSIGN_OR_RAISE(auto rows, plan.apply_row_stages(*batch));
      pending_rows += rows->num_rows();
      pending.push_back(std::move(rows));
    }
    const bool version_ends = i + 1 == files.size() || files[i + 1].version != files[i].version;
    if (version_ends && pending_rows >= kBatchRows) ARROW_RETURN_NOT_OK(apply(files[i].version.value()));
  }
  if (applied < latest) ARROW_RETURN_NOT_OK(apply(latest));  // progress even without rows
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
