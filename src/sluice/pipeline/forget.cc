// `sluice forget`: erasure along column lineage, clean-up of everything older, audit event.
#include "sluice/pipeline/forget.h"
#include "sluice/pipeline/forget_internal.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "sluice/common/failpoint.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/log_cleanup.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"
#include "sluice/delta/vacuum.h"
#include "sluice/dml/assignments.h"
#include "sluice/dml/delete_update.h"
#include "sluice/dml/table_rewrite.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/maintenance_lock.h"
#include "sluice/pipeline/run_lock.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/sql/parser.h"
#include "sluice/sql/types.h"
#include "sluice/storage/local_store.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

const char* forget_match_name(ForgetMatch match) {
  switch (match) {
    case ForgetMatch::kColumns: return "columns";
    case ForgetMatch::kDecodedValue: return "decoded Kafka value";
    case ForgetMatch::kNotCarried: return "not carried";
    case ForgetMatch::kUnmatched: return "cannot be matched";
  }
  return "?";
}

namespace forget_internal {
namespace {

namespace cp = arrow::compute;
namespace fs = std::filesystem;
using nlohmann::json;

// Tries of one table's erasure when a writer without the maintenance lock commits meanwhile.
constexpr int kEraseAttempts = 5;

// Where the rows of a batch match: true, false, or (decoded value) null where the value did not
// decode, then matched by its bytes holding one of the string literals.
arrow::Result<std::shared_ptr<arrow::BooleanArray>> match_mask(const Table& t, const Predicate& p,
                                                               const arrow::RecordBatch& batch) {
  std::shared_ptr<arrow::Array> mask;
  if (t.condition) {
    ARROW_ASSIGN_OR_RAISE(mask, exec::evaluate(*t.condition, batch));
  } else {
    ARROW_ASSIGN_OR_RAISE(auto decoded, exec::evaluate(*t.decode, batch));
    ARROW_ASSIGN_OR_RAISE(auto fields, std::static_pointer_cast<arrow::StructArray>(decoded)->Flatten());
    auto rows = arrow::RecordBatch::Make(t.decoded_schema, batch.num_rows(), fields);
    ARROW_ASSIGN_OR_RAISE(mask, exec::evaluate(*t.decoded_condition, *rows));
    if (mask->type_id() == arrow::Type::BOOL && mask->null_count() > 0 && !p.string_literals.empty()) {
      auto raw = batch.GetColumnByName("value");
      ARROW_ASSIGN_OR_RAISE(auto as_binary, cp::Cast(raw, arrow::binary()));
      const auto binary_array = as_binary.make_array();  // held: `bytes` refers into it
      const auto& bytes = static_cast<const arrow::BinaryArray&>(*binary_array);
      const auto& m = static_cast<const arrow::BooleanArray&>(*mask);
      arrow::BooleanBuilder out;
      ARROW_RETURN_NOT_OK(out.Reserve(m.length()));
      for (int64_t i = 0; i < m.length(); ++i) {
        if (m.IsValid(i)) {
          out.UnsafeAppend(m.Value(i));
          continue;
        }
        bool hit = false;
        if (bytes.IsValid(i)) {
          const auto v = bytes.GetView(i);
          for (const auto& lit : p.string_literals) hit = hit || v.find(lit) != std::string_view::npos;
        }
        out.UnsafeAppend(hit);
      }
      ARROW_ASSIGN_OR_RAISE(mask, out.Finish());
    }
  }
  if (mask->type_id() == arrow::Type::NA) {
    ARROW_ASSIGN_OR_RAISE(mask, arrow::MakeArrayFromScalar(arrow::BooleanScalar(false), batch.num_rows()));
  }
  ARROW_ASSIGN_OR_RAISE(auto filled, cp::CallFunction("coalesce", {arrow::Datum(mask), arrow::Datum(false)}));
  return std::static_pointer_cast<arrow::BooleanArray>(filled.make_array());
}

// Rewrites every file holding a matching row without it (deletion vectors applied: the rows
// they hide are gone from the new files too), in one commit with dataChange=false.
arrow::Status erase(Table& t, const Predicate& p) {
  dml::DmlTarget target;
  target.store = t.store;
  target.snapshot = t.snapshot;
  target.name = t.name;
  ARROW_RETURN_NOT_OK(dml::check_dml_supported(target, "forget"));
  ARROW_ASSIGN_OR_RAISE(auto rewrite, dml::TableRewrite::make(target));
  rewrite->mark_no_data_change();
  int64_t erased = 0, copied = 0;
  delta::ReadSet read;
  read.isolation = delta::isolation_level(t.snapshot->metadata());
  for (const auto& add : t.snapshot->files()) {
    read.files.insert(add.path);
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(*t.store, *t.snapshot, add));
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->ToRecordBatches());
    std::vector<std::shared_ptr<arrow::BooleanArray>> masks;
    int64_t hits = 0, rows = 0;
    bool hidden_hit = false;
    for (const auto& b : batches) {
      auto mask = match_mask(t, p, *b);
      if (!mask.ok()) return scrubbed(with_context(mask.status(), fmt::format("table {} file {}", t.name, add.path)), p);
      hits += (*mask)->true_count();
      rows += b->num_rows();
      masks.push_back(std::move(*mask));
    }
    if (hits == 0 && add.deletion_vector) {
      // Rows a deletion vector hides (an earlier DELETE/UPDATE) are still in the file: read
      // without it, a match there rewrites the file too (its visible rows, the hidden ones gone).
      delta::Add physical = add;
      physical.deletion_vector.reset();
      ARROW_ASSIGN_OR_RAISE(auto all_rows, delta::open_data_file(*t.store, *t.snapshot, physical));
      std::shared_ptr<arrow::RecordBatch> b;
      while (!hidden_hit) {
        ARROW_RETURN_NOT_OK(all_rows->ReadNext(&b));
        if (!b) break;
        auto mask = match_mask(t, p, *b);
        if (!mask.ok()) return scrubbed(with_context(mask.status(), fmt::format("table {} file {}", t.name, add.path)), p);
        hidden_hit = (*mask)->true_count() > 0;
      }
      if (!hidden_hit) continue;
    } else if (hits == 0) {
      continue;
    }
    erased += hits;
    copied += rows - hits;
    rewrite->remove(add);
    for (size_t i = 0; i < batches.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto keep, cp::Invert(masks[i]));
      ARROW_ASSIGN_OR_RAISE(auto kept, dml::filter_rows(*batches[i], *keep.make_array()));
      if (kept->num_rows() > 0) ARROW_RETURN_NOT_OK(rewrite->write(*kept));
    }
  }
  rewrite->mark_scan_done();
  json metrics = {{"numDeletedRows", std::to_string(erased)}, {"numCopiedRows", std::to_string(copied)}};
  auto outcome = rewrite->commit("DELETE", forget_parameters(p), std::move(metrics), std::move(read));
  if (!outcome.ok()) return scrubbed(with_context(outcome.status(), "table " + t.name), p);
  t.report.rows_erased = erased;
  if (outcome->committed) t.report.erase_version = outcome->version.value();
  return arrow::Status::OK();
}

std::string who() {
  std::string user = "?";
  if (const auto* pw = ::getpwuid(::getuid())) user = pw->pw_name;
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) user += "@" + std::string(host);
  return user;
}

json tables_json(const std::vector<Table>& tables) {
  json out = json::array();
  for (const auto& t : tables) {
    const auto& r = t.report;
    out.push_back({{"table", r.table},
                   {"match", forget_match_name(r.match)},
                   {"how", r.how},
                   {"left_behind", r.left_behind.empty() ? json() : json(r.left_behind)},
                   {"rows_erased", r.rows_erased},
                   {"version_before", r.version_before},
                   {"erase_version", r.erase_version ? json(*r.erase_version) : json()},
                   {"version_after", r.version_after >= 0 ? json(r.version_after) : json()},
                   {"files_deleted", r.files_deleted},
                   {"log_files_deleted", r.log_files_deleted}});
  }
  return out;
}

arrow::Status audit(const PipelineConfig& config, const std::string& update_id, const Predicate& p,
                    const std::vector<Table>& tables, const std::string& status, int64_t scrubbed_rows,
                    const std::vector<std::string>& warnings) {
  EventLog log(config.objects, config.storage, config.name, update_id);
  Event e;
  e.event_type = "forget";
  e.level = "INFO";
  int64_t rows = 0;
  int64_t erased_tables = 0;
  for (const auto& t : tables) {
    rows += t.report.rows_erased;
    erased_tables += t.report.rows_erased > 0;
  }
  e.message = fmt::format("forget {}: {} rows erased from {} tables where {} ({} literals redacted)", status, rows,
                          erased_tables, p.redacted, p.literals.size());
  e.details = {{"forget",
                {{"status", status},
                 {"requested_by", who()},
                 {"predicate", p.redacted},
                 {"literals_redacted", p.literals.size()},
                 {"event_log_rows_scrubbed", scrubbed_rows},
                 {"warnings", warnings},
                 {"tables", tables_json(tables)}}}};
  log.add(std::move(e));
  return log.flush();
}

}  // namespace

arrow::Result<ForgetPredicate> describe(const std::string& where) {
  ARROW_ASSIGN_OR_RAISE(auto p, parse_predicate(where));
  return ForgetPredicate{p.columns, p.redacted, static_cast<int>(p.literals.size())};
}

arrow::Result<ForgetReport> run(const PipelineConfig& config, const Graph* graph, const ForgetOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto p, parse_predicate(options.where));
  const fs::path event_log_path = config.storage / "system" / "event_log";
  auto event_log = std::make_shared<delta::LogStore>(config.objects, event_log_path.string());
  RunCommand command{options.program, {"--where"}, "forget"};
  if (options.allow_partial) command.flags.push_back("--allow-partial");
  ARROW_ASSIGN_OR_RAISE(auto lock, RunLock::acquire(config, RunLockMode::kExclusive, command));
  ARROW_ASSIGN_OR_RAISE(const int64_t started_millis, start_time(config));

  std::vector<std::string> warnings;
  ARROW_ASSIGN_OR_RAISE(auto tables, list_tables(config, graph));
  // Every table's maintenance lock, exclusively, until the clean-up is done: no `sluice sql` DML,
  // `table optimize` or `table vacuum` runs on them meanwhile (their new files could hold the
  // rows erased, or be deleted by the clean-up before they commit them); one already running
  // makes forget refuse, nothing changed. The snapshots are read again once locked.
  std::vector<std::unique_ptr<MaintenanceLock>> locks;
  for (auto& t : tables) {
    auto lock = MaintenanceLock::acquire(*t.store, t.name, MaintenanceLockMode::kExclusive, "forget");
    if (!lock.ok()) {
      return arrow::Status(lock.status().code(),
                           fmt::format("forget on pipeline '{}' is refused: {}", config.name, lock.status().message()));
    }
    locks.push_back(std::move(*lock));
    ARROW_ASSIGN_OR_RAISE(t.snapshot, delta::Snapshot::load(*t.store));
    t.report.version_before = t.snapshot->version().value();
  }
  ARROW_RETURN_NOT_OK(plan_tables(tables, p, config, graph, warnings));
  std::vector<std::string> unmatched;
  bool any = false;
  for (auto& t : tables) {
    if (t.report.match == ForgetMatch::kUnmatched) unmatched.push_back(t.name + ": " + t.report.how);
    if (!t.report.left_behind.empty()) unmatched.push_back(t.name + ": " + t.report.left_behind);
    bool has_state = false;
    if (carries(t) && !is_view(t, graph)) {
      ARROW_ASSIGN_OR_RAISE(auto state, objects_under(*t.store->objects(), t.store->table_root() / "_sluice_state"));
      has_state = !state.empty();
    }
    if (has_state) {
      // Event-time state (windows, dedup, joins) is keyed by what the flow groups on; forget
      // cannot rewrite it, and recovery needs it.
      t.report.left_behind = "its event-time operator state (_sluice_state/) may hold the value and is kept";
      unmatched.push_back(t.name + ": " + t.report.left_behind);
    }
    any = any || t.report.match == ForgetMatch::kColumns;
  }
  if (graph) {
    // A sink copies rows out of the pipeline's storage (a Kafka topic, an external Delta
    // table): forget does not reach there.
    for (const auto& [sink, _] : graph->sinks) {
      for (const auto& up : graph->sink_upstream(sink)) {
        for (const auto& t : tables) {
          if (t.name == up && carries(t)) {
            unmatched.push_back(fmt::format("sink {} copies rows of {} out of the pipeline's storage", sink, up));
          }
        }
      }
    }
  }
  // A column no table has is a misspelling first: say so before what could not be matched.
  if (!any) {
    // A raw Kafka value alone decodes into any name: a misspelt column would match nothing.
    return invalid("forget on pipeline '{}' is refused: no table has the columns {} (sluice catalog lists them). "
                   "Nothing was changed",
                   config.name, fmt::join(p.columns, ", "));
  }
  if (!unmatched.empty() && !options.allow_partial) {
    return invalid("forget on pipeline '{}' is refused: the value cannot be erased everywhere ({}). Erase it there "
                   "another way, or pass --allow-partial to erase the rest and have these reported. Nothing was changed",
                   config.name, fmt::join(unmatched, "; "));
  }
  for (const auto& u : unmatched) warnings.push_back("not erased (--allow-partial): " + u);
  ARROW_RETURN_NOT_OK(check_readers_caught_up(tables, config, graph));

  // Every table's refusal comes before any erasure (a table DML cannot change, e.g.
  // delta.appendOnly, would otherwise stop forget half-way).
  for (auto& t : tables) {
    if (!carries(t)) continue;
    dml::DmlTarget target;
    target.store = t.store;
    target.snapshot = t.snapshot;
    target.name = t.name;
    if (auto st = dml::check_dml_supported(target, "forget"); !st.ok()) {
      return scrubbed(arrow::Status(st.code(), fmt::format("forget on pipeline '{}' is refused: table {}: {}. "
                                                           "Nothing was changed",
                                                           config.name, t.name, st.message())),
                      p);
    }
  }
  const std::string update_id = random_uuid();
  // Recorded before the first erasure: a forget that fails or is killed during it leaves a trace.
  ARROW_RETURN_NOT_OK(audit(config, update_id, p, tables, "STARTED", 0, warnings));
  {
    // The event log too (its texts are scrubbed, its files vacuumed and its log cut): no `table
    // optimize|vacuum|append` of system/event_log meanwhile. Taken once the audit event made
    // sure it exists (a lock on a missing table is none).
    auto lock = MaintenanceLock::acquire(*event_log, "system/event_log", MaintenanceLockMode::kExclusive, "forget");
    if (!lock.ok()) {
      (void)audit(config, update_id, p, tables, "FAILED", 0, warnings);
      return arrow::Status(lock.status().code(),
                           fmt::format("forget on pipeline '{}' is refused: {}", config.name, lock.status().message()));
    }
    locks.push_back(std::move(*lock));
  }
  for (auto& t : tables) {
    if (!carries(t)) continue;
    // A writer that takes no maintenance lock (Spark, deltalake) may commit meanwhile: Delta's
    // conflict check fails the erasure when it removed or added files the erasure read, and the
    // erasure is then tried again from the new snapshot (its own new files deleted first).
    for (int attempt = 1;; ++attempt) {
      auto st = erase(t, p);
      if (st.ok()) break;
      if (delta::is_commit_conflict(st) && attempt < kEraseAttempts) {
        auto again = delta::Snapshot::load(*t.store);
        if (again.ok()) {
          t.snapshot = std::move(*again);
          continue;
        }
        st = again.status();
      }
      (void)audit(config, update_id, p, tables, "FAILED", 0, warnings);
      return st;
    }
  }
  ARROW_ASSIGN_OR_RAISE(const int64_t scrubbed_rows, scrub_event_log(event_log, p));
  // The erasure is recorded before the clean-up: an interrupted forget leaves its counts.
  ARROW_RETURN_NOT_OK(audit(config, update_id, p, tables, "ERASED", scrubbed_rows, warnings));
  fail_point("forget_before_clean_up");
  // Clean-up in three passes, each safe to interrupt (a re-run finishes it): files and a fresh
  // checkpoint; streaming readers moved to that checkpoint; the log before it deleted.
  for (auto& t : tables) {
    if (carries(t)) ARROW_RETURN_NOT_OK(vacuum_and_checkpoint(t.store, t.report, t.name, started_millis, t.cut_check));
  }
  for (auto& t : tables) {
    if (!is_view(t, graph) && is_streaming_reader(t, graph)) ARROW_RETURN_NOT_OK(advance_readers(t, tables, false));
  }
  for (auto& t : tables) {
    if (is_view(t, graph)) {
      // A materialized view recomputes from its inputs; its stored partial aggregates (keyed
      // by its groups) are a cache that could hold the value, and an incremental refresh would
      // add them to the erased inputs: dropped, so the next refresh is full.
      bool reads_erased = carries(t);
      for (const auto& up : tables) {
        reads_erased = reads_erased || (carries(up) && !progress_on(*t.snapshot, up.snapshot->metadata().id).empty());
      }
      if (!reads_erased) continue;
      ARROW_RETURN_NOT_OK(remove_state(t));
      continue;
    }
    if (is_streaming_reader(t, graph)) ARROW_RETURN_NOT_OK(advance_readers(t, tables, true));
  }
  fail_point("forget_before_log_cut");
  // A stopped cut (another writer committed after the clean-up's last check) stops that table's
  // only: the other tables' logs and the event log (vacuumed, its log cut: the files its scrub
  // replaced still quote the value) are cleaned, then forget fails naming every stop.
  std::vector<std::string> stopped;
  for (auto& t : tables) {
    if (!carries(t)) continue;
    if (auto st = cut_log(t.store, t.report, t.name, t.cut_check); !st.ok()) {
      stopped.push_back("the clean-up stopped before the log cut of table " + t.name + ": " + scrubbed(st, p).message());
    }
  }
  ForgetTableReport event_log_report;
  delta::LogCutCheck event_log_check;
  auto event_log_cleaned =
      vacuum_and_checkpoint(event_log, event_log_report, "event_log", started_millis, event_log_check);
  if (event_log_cleaned.ok()) event_log_cleaned = cut_log(event_log, event_log_report, "event_log", event_log_check);
  if (!event_log_cleaned.ok()) {
    stopped.push_back("the clean-up of the event log stopped: " + scrubbed(event_log_cleaned, p).message());
  }
  if (!stopped.empty()) {
    // The rows are erased; a log not cut (and the commits that may quote the value) stays until a
    // re-run cuts it. Recorded, so the audit trail says why forget did not complete.
    std::vector<std::string> with_why = warnings;
    with_why.insert(with_why.end(), stopped.begin(), stopped.end());
    (void)audit(config, update_id, p, tables, "FAILED", scrubbed_rows, with_why);
    return invalid("forget on pipeline '{}': the rows are erased but {}. Run forget again to finish",
                   config.name, fmt::join(stopped, "; "));
  }
  ARROW_RETURN_NOT_OK(audit(config, update_id, p, tables, "COMPLETED", scrubbed_rows, warnings));

  ForgetReport report;
  report.predicate = p.redacted;
  report.literals_redacted = static_cast<int>(p.literals.size());
  report.event_log_rows_scrubbed = scrubbed_rows;
  report.audit_event_id = update_id;
  for (auto& t : tables) report.tables.push_back(std::move(t.report));
  report.warnings = std::move(warnings);
  return report;
}

}  // namespace forget_internal

arrow::Result<ForgetPredicate> describe_forget_predicate(const std::string& where) {
  return forget_internal::describe(where);
}

arrow::Result<ForgetReport> forget(const PipelineConfig& config, const Graph* graph, const ForgetOptions& options) {
  return forget_internal::run(config, graph, options);
}

}  // namespace sluice::pipeline
