// `sluice forget`, after the erasure: unreferenced files, the log before a fresh checkpoint,
// streaming readers moved past it, a view's partials, the event log's texts.
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
#include "sluice/pipeline/run_lock.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/sql/parser.h"
#include "sluice/sql/types.h"
#include "sluice/storage/local_store.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline::forget_internal {

namespace cp = arrow::compute;
namespace fs = std::filesystem;
using nlohmann::json;

// Deletes every file of the table no longer referenced (vacuum with no retention: the files the
// erasure and earlier statements replaced, change data, orphaned deletion vectors), then writes
// a checkpoint at the latest version: the version the log will start at (cut_log).
arrow::Status vacuum_and_checkpoint(const std::shared_ptr<delta::LogStore>& store, ForgetTableReport& report,
                                    const std::string& name, int64_t started_millis, delta::LogCutCheck& check) {
  auto context = [&](const arrow::Status& st) { return with_context(st, "clean-up of table " + name); };
  delta::VacuumOptions options;
  options.retain_millis = 0;
  options.check = delta::RetentionCheck::kOff;
  options.mode = delta::VacuumMode::kDelete;
  // `sluice sql` DML and `sluice table optimize` do not take the run lock: a file one of them
  // wrote after forget started (not committed yet) is not forget's to delete.
  options.keep_modified_since_millis = started_millis;
  // No tombstone keeps its file: the erasure's own removes are stamped now, and a writer whose
  // clock is ahead (Spark on another host) stamps removes later than our now.
  options.tombstones = delta::TombstoneRule::kIgnore;
  auto vacuumed = delta::vacuum(store, options);
  if (!vacuumed.ok()) return context(vacuumed.status());
  report.files_deleted += vacuumed->deleted_files;
  // What the log cut compares with: the first pass's last read after its deletions, and its
  // own END. Only that read checked the commits against every file the clean-up deleted.
  if (vacuumed->checked_through) check.checked_through = *vacuumed->checked_through;
  if (vacuumed->end_version) check.own.insert(vacuumed->end_version->value());
  bool deleted_a_file = false;
  for (const auto& f : vacuumed->candidates) deleted_a_file = deleted_a_file || !f.is_dir;
  auto latest = delta::Snapshot::load(*store);
  if (!latest.ok()) return context(latest.status());
  if (deleted_a_file && !(*latest)->metadata().partition_columns.empty()) {
    // Partition folders emptied by the first pass (their names can hold a value) go in a second.
    auto again = delta::vacuum(store, options);
    if (!again.ok()) return context(again.status());
    report.files_deleted += again->deleted_files;
    // The second pass checks commits against its own deletions only: one landing between the
    // passes may name a file the first pass deleted. Its checked_through is not taken; its START
    // and END count as forget's own, so any other commit since the first pass's read stops the cut.
    if (again->start_version) check.own.insert(again->start_version->value());
    if (again->end_version) check.own.insert(again->end_version->value());
    latest = delta::Snapshot::load(*store);
    if (!latest.ok()) return context(latest.status());
  }
  if (auto st = delta::write_checkpoint(*store, **latest, /*drop_tombstones=*/true); !st.ok()) return context(st);
  report.version_after = (*latest)->version().value();
  return arrow::Status::OK();
}

// Deletes the log before the checkpoint vacuum_and_checkpoint wrote: commits whose stats and
// commitInfo may quote the value, older checkpoints and checksums (time travel to before the
// erasure goes with them). Log cleanup with a copy of the metadata whose retentions are 0.
arrow::Status cut_log(const std::shared_ptr<delta::LogStore>& store, ForgetTableReport& report,
                      const std::string& name, const delta::LogCutCheck& check) {
  auto context = [&](const arrow::Status& st) { return with_context(st, "log clean-up of table " + name); };
  auto latest = delta::Snapshot::load(*store);
  if (!latest.ok()) return context(latest.status());
  delta::Metadata expire_all = (*latest)->metadata();
  expire_all.configuration["delta.logRetentionDuration"] = "interval 0 seconds";
  expire_all.configuration["delta.checkpointRetentionDuration"] = "interval 0 seconds";
  expire_all.configuration["delta.enableExpiredLogCleanup"] = "true";
  // Later than every log file's time, on the store's clock too (an object store stamps with its
  // own, possibly ahead of ours): the cut-off is the latest commit, so the log starts at the
  // newest checkpoint. The local store lists no times; its files carry the local clock's.
  auto listed = store->objects()->list(store->log_dir().string());
  if (!listed.ok()) return context(listed.status());
  int64_t newest = 0;
  for (const auto& o : *listed) newest = std::max(newest, o.mtime_nanos / 1'000'000);
  const int64_t cut_off = std::max(now_millis() + 60'000, newest + 1);
  // Listed again right before the cut: a commit by another writer since the clean-up's last
  // check stops it with the log whole (the commit may name a file the clean-up deleted).
  auto cleaned = delta::cleanup_expired_logs(*store, expire_all, cut_off, &check);
  if (!cleaned.ok()) return context(cleaned.status());
  if (!cleaned->kept_from || cleaned->kept_from->value() < report.version_after) {
    return context(invalid("the log could not be cut at the fresh checkpoint (version {})", report.version_after));
  }
  report.log_files_deleted += cleaned->deleted_commits + cleaned->deleted_checkpoints + cleaned->deleted_other;
  return arrow::Status::OK();
}

// Moves the streaming readers of erased tables past the erasure and its clean-up: their
// progress on the upstream becomes the version its log will start at, in one commit without
// data. They had read everything before the erasure (check_readers_caught_up), and what lies
// between their progress and the checkpoint is checked again to hold no data (a lockless writer
// may have appended meanwhile: then forget fails before any log cut); without this they would
// ask for deleted commits.
arrow::Status advance_readers(Table& reader, const std::vector<Table>& tables, bool move) {
  auto snapshot = delta::Snapshot::load(*reader.store);
  if (!snapshot.ok()) return with_context(snapshot.status(), "table " + reader.name);
  std::vector<std::pair<std::string, int64_t>> moves;
  for (const auto& up : tables) {
    if (!carries(up) || up.name == reader.name || up.report.version_after < 0) continue;
    for (const auto& [app_id, version] : progress_on(**snapshot, up.snapshot->metadata().id)) {
      if (version < 0 || version >= up.report.version_after) continue;
      // Checked again here, not only before the erasure: a writer that takes no maintenance
      // lock (deltalake, Spark) may have appended since; moving past its commit would skip
      // its rows and the log cut would delete it. Only forget's own commits (no data change)
      // may lie between.
      auto pending = delta::added_files_between(*up.store, DeltaVersion(version), DeltaVersion(up.report.version_after),
                                                delta::ChangePolicy::kFail);
      if (!pending.ok() || !pending->empty()) {
        return invalid("table {} cannot be moved past the erasure of {}: a commit between its progress (version {}) "
                       "and the clean-up's checkpoint (version {}) was not forget's own ({}); another writer "
                       "changed {} while forget ran. The log of {} was not cut. Run the pipeline once (so {} reads "
                       "that commit), then run forget again",
                       reader.name, up.name, version, up.report.version_after,
                       pending.ok() ? fmt::format("version {} added data", pending->front().version.value())
                                    : std::string(pending.status().message()),
                       up.name, up.name, reader.name);
      }
      moves.emplace_back(app_id, up.report.version_after);
    }
  }
  if (moves.empty() || !move) return arrow::Status::OK();
  // The reader's operator state (windows, dedup, joins, APPLY CHANGES) is labelled with the
  // progress of the commit it belongs to: saved again under the moved progress (same content)
  // before the commit that moves it, else the next run finds no state for its progress.
  TxnVersions recorded, moved;
  for (const auto& [app_id, txn] : (*snapshot)->txns()) recorded[app_id] = txn.version;
  for (const auto& [app_id, version] : moves) moved[app_id] = version;
  const fs::path state_root = reader.store->table_root() / "_sluice_state";
  auto state_files = objects_under(*reader.store->objects(), state_root);
  if (!state_files.ok()) return with_context(state_files.status(), "operator state of table " + reader.name);
  std::set<fs::path> dirs;
  for (const auto& rel : *state_files) {
    const fs::path file = state_root / rel;
    if (file.extension() == ".arrow") dirs.insert(file.parent_path());
  }
  for (const auto& dir : dirs) {
    StateStore state(reader.store->objects(), dir);
    auto carried = state.carry_forward(recorded, moved);
    if (!carried.ok()) return with_context(carried.status(), "operator state of table " + reader.name);
  }
  delta::Transaction txn(reader.store, *snapshot);
  for (const auto& [app_id, version] : moves) txn.set_txn(app_id, version);
  delta::CommitOptions options;
  options.operation = "STREAMING UPDATE";
  options.operation_parameters = {{"outputMode", "Append"}, {"sluice.forget", "readers moved past the erasure"}};
  auto committed = txn.commit(options);
  if (!committed.ok()) return with_context(committed.status(), "table " + reader.name);
  reader.cut_check.own.insert(committed->version.value());
  return arrow::Status::OK();
}

namespace {

// Replaces every string literal of the predicate inside `value`'s strings (keys and values),
// never in its numbers or structure. True when one was replaced.
bool scrub_json(json& value, const Predicate& p) {
  bool hit = false;
  if (value.is_string()) {
    auto s = value.get<std::string>();
    for (const auto& lit : p.string_literals) {
      for (size_t at = s.find(lit); at != std::string::npos; at = s.find(lit, at + 3)) {
        s.replace(at, lit.size(), kRedacted);
        hit = true;
      }
    }
    if (hit) value = s;
  } else if (value.is_array()) {
    for (auto& v : value) hit = scrub_json(v, p) || hit;
  } else if (value.is_object()) {
    json out = json::object();
    for (auto& [k, v] : value.items()) {
      json key = k;
      hit = scrub_json(key, p) || hit;
      json copy = v;
      hit = scrub_json(copy, p) || hit;
      out[key.get<std::string>()] = std::move(copy);
    }
    if (hit) value = std::move(out);
  }
  return hit;
}

// An event log text: a JSON object or array (the `details` column) has only its string
// values edited and stays valid JSON (a literal '1042' leaves `"rows": 1042` alone); any other
// text has every literal replaced. True when one was replaced.
bool scrub_text(std::string& text, const Predicate& p) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    auto parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      if (!scrub_json(parsed, p)) return false;
      text = parsed.dump();
      return true;
    }
  }
  bool hit = false;
  for (const auto& lit : p.string_literals) {
    for (size_t at = text.find(lit); at != std::string::npos; at = text.find(lit, at + 3)) {
      text.replace(at, lit.size(), kRedacted);
      hit = true;
    }
  }
  return hit;
}

}  // namespace

// Earlier events may quote the value (expectation failures, dead-letter errors): every string
// literal of the predicate is replaced by '***' in the event log's text columns.
arrow::Result<int64_t> scrub_event_log(const std::shared_ptr<delta::LogStore>& store, const Predicate& p) {
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  if (!snapshot || p.string_literals.empty()) return 0;
  dml::DmlTarget target;
  target.store = store;
  target.snapshot = snapshot;
  target.name = "event_log";
  ARROW_ASSIGN_OR_RAISE(auto rewrite, dml::TableRewrite::make(target));
  rewrite->mark_no_data_change();
  int64_t rows_scrubbed = 0;
  delta::ReadSet read;
  read.isolation = delta::isolation_level(snapshot->metadata());
  for (const auto& add : snapshot->files()) {
    read.files.insert(add.path);
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(*store, *snapshot, add));
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->ToRecordBatches());
    std::vector<std::shared_ptr<arrow::RecordBatch>> replaced;
    int64_t hits = 0;
    for (const auto& b : batches) {
      arrow::ArrayVector columns = b->columns();
      std::vector<bool> row_hit(b->num_rows(), false);
      for (int c = 0; c < b->num_columns(); ++c) {
        if (columns[c]->type_id() != arrow::Type::STRING) continue;
        const auto& in = static_cast<const arrow::StringArray&>(*columns[c]);
        arrow::StringBuilder out;
        bool changed = false;
        for (int64_t i = 0; i < in.length(); ++i) {
          if (in.IsNull(i)) {
            ARROW_RETURN_NOT_OK(out.AppendNull());
            continue;
          }
          std::string text(in.GetView(i));
          if (scrub_text(text, p)) {
            changed = true;
            row_hit[i] = true;
          }
          ARROW_RETURN_NOT_OK(out.Append(text));
        }
        if (!changed) continue;
        ARROW_ASSIGN_OR_RAISE(columns[c], out.Finish());
      }
      hits += std::count(row_hit.begin(), row_hit.end(), true);
      replaced.push_back(arrow::RecordBatch::Make(b->schema(), b->num_rows(), columns));
    }
    if (hits == 0) continue;
    rows_scrubbed += hits;
    rewrite->remove(add);
    for (const auto& b : replaced) ARROW_RETURN_NOT_OK(rewrite->write(*b));
  }
  rewrite->mark_scan_done();
  json metrics = {{"numUpdatedRows", std::to_string(rows_scrubbed)}};
  auto outcome = rewrite->commit("UPDATE", forget_parameters(p), std::move(metrics), std::move(read));
  if (!outcome.ok()) return scrubbed(with_context(outcome.status(), "event log"), p);
  return rows_scrubbed;
}

// Deletes a materialized view's stored partials (_sluice_state/): locally the folder, on an
// object store every object under its prefix.
arrow::Status remove_state(const Table& t) {
  const fs::path root = t.store->table_root() / "_sluice_state";
  if (t.store->is_local()) {
    std::error_code ec;
    fs::remove_all(root, ec);
    if (ec) return invalid("table {}: cannot delete its _sluice_state/: {}", t.name, ec.message());
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto files, objects_under(*t.store->objects(), root));
  for (const auto& rel : files) {
    if (auto st = t.store->objects()->remove((root / rel).string()); !st.ok()) {
      return with_context(st, "table " + t.name + ": deleting its _sluice_state/");
    }
  }
  return arrow::Status::OK();
}

// When forget starts, on the clock the clean-up compares file times with: files written since
// are kept (a concurrent `sluice sql` or `table optimize` may not have committed them yet),
// older unreferenced ones are deleted. Locally the local clock. An object store stamps objects
// with its own clock, in whole seconds on S3 (LastModified), so a local millisecond would
// either keep a file written just before forget (holding the value) or delete one written just
// after: forget writes a marker object until the store's stamp moves to the next second and
// starts at that second; every file written before the first marker is older than it (one
// written during the wait, under a second, counts as older too).
arrow::Result<int64_t> start_time(const PipelineConfig& config) {
  if (config.storage_is_local()) return now_millis();
  const std::string marker = (config.storage / "system" / "forget" / (random_uuid() + ".started")).string();
  auto stamp = [&]() -> arrow::Result<int64_t> {
    ARROW_RETURN_NOT_OK(config.objects->put(marker, "forget\n"));
    ARROW_ASSIGN_OR_RAISE(auto info, config.objects->head(marker));
    if (!info) return io_error("forget: the marker {} written to read the store's clock is not there",
                               config.objects->display(marker));
    return info->mtime_nanos / 1'000'000;
  };
  ARROW_ASSIGN_OR_RAISE(const int64_t first, stamp());
  int64_t started = first;
  // A stamp with milliseconds is exact; a whole-second one is not (1 in 1000 by chance).
  for (int i = 0; i < 50 && started % 1000 == 0 && started <= first; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ARROW_ASSIGN_OR_RAISE(started, stamp());
  }
  auto removed = config.objects->remove(marker);
  if (started <= first && started % 1000 == 0) {
    return io_error("forget: the clock of {} did not move in 5 s (marker {})", config.storage_display(),
                    config.objects->display(marker));
  }
  ARROW_RETURN_NOT_OK(removed);
  return started;
}

}  // namespace sluice::pipeline::forget_internal
