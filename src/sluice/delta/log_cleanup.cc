// Expired _delta_log files deleted after a checkpoint (Delta's MetadataCleanup).
#include "sluice/delta/log_cleanup.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/vacuum.h"

namespace sluice::delta {

namespace {

// "%020d.crc" and "%020d.%020d.compacted.json": the version they belong to (a compacted
// commit: its last version).
std::optional<int64_t> other_log_file_version(const std::string& name) {
  auto digits = [&](size_t pos) -> std::optional<int64_t> {
    if (name.size() < pos + 20) return std::nullopt;
    for (size_t i = pos; i < pos + 20; ++i) {
      if (name[i] < '0' || name[i] > '9') return std::nullopt;
    }
    // 20 digits may pass int64 ("99999999999999999999.crc"): no version of any table, skipped.
    const auto version = parse_int64(std::string_view(name).substr(pos, 20), "log file version");
    return version.ok() ? std::optional<int64_t>(*version) : std::nullopt;
  };
  if (name.size() == 24 && name.compare(20, 4, ".crc") == 0) return digits(0);
  if (name.size() == 56 && name[20] == '.' && name.compare(41, 15, ".compacted.json") == 0) return digits(21);
  return std::nullopt;
}

// A listed object's modification time in milliseconds (the local store lists names only).
arrow::Result<int64_t> object_mtime_millis(const LogStore& store, const storage::ObjectInfo& object) {
  if (object.mtime_nanos != 0) return object.mtime_nanos / 1'000'000;
  ARROW_ASSIGN_OR_RAISE(auto info, store.objects()->head((store.log_dir() / object.name).string()));
  // Gone since the listing (another cleanup): as old as can be.
  return info ? info->mtime_nanos / 1'000'000 : INT64_MIN;
}

// With a LogCutCheck: the log listed again; a commit after the check that is not the caller's
// own stops the cut (see the header).
arrow::Status check_no_foreign_commit(const LogStore& store, const LogCutCheck& check) {
  fail_point("log_cleanup_before_cut");  // tests: another writer commits after the last check
  ARROW_ASSIGN_OR_RAISE(auto versions, store.list_commits());
  for (const auto v : versions) {
    if (v.value() <= check.checked_through.value() || check.own.count(v.value())) continue;
    std::string operation = "operation unknown";
    if (auto text = store.read_commit(v); text.ok()) {
      if (auto actions = parse_commit(*text, store.display(store.commit_path(v))); actions.ok()) {
        for (const auto& a : *actions) {
          const auto* info = std::get_if<CommitInfo>(&a);
          if (!info || !info->value.contains("operation") || !info->value["operation"].is_string()) continue;
          operation = fmt::format("operation '{}'", info->value["operation"].get<std::string>());
          if (info->value.contains("engineInfo") && info->value["engineInfo"].is_string()) {
            operation += " by " + info->value["engineInfo"].get<std::string>();
          }
        }
      }
    }
    return arrow::Status::Invalid(fmt::format(
        "the log of {} was not cut: version {} ({}) was committed by another writer after the clean-up's last "
        "check (version {}); the log and its commits stay whole. If that commit names a file the clean-up "
        "deleted, the table is unreadable until it is restored (RESTORE to version {}); then run the command "
        "again",
        store.location(), v.value(), operation, check.checked_through.value(), v.value() - 1));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<LogCleanupResult> cleanup_expired_logs(const LogStore& store, const Metadata& metadata,
                                                     int64_t now_millis, const LogCutCheck* check) {
  LogCleanupResult result;
  auto enabled = metadata.configuration.find("delta.enableExpiredLogCleanup");
  if (enabled != metadata.configuration.end() && to_lower(enabled->second) == "false") return result;
  const std::string table = store.location();
  ARROW_ASSIGN_OR_RAISE(const int64_t log_retention, log_retention_millis(metadata, table));
  ARROW_ASSIGN_OR_RAISE(const int64_t checkpoint_retention, checkpoint_retention_millis(metadata, table));
  const int64_t cutoff = now_millis - log_retention;
  const int64_t checkpoint_cutoff = now_millis - checkpoint_retention;

  ARROW_ASSIGN_OR_RAISE(auto objects, store.objects()->list(store.log_dir().string()));
  std::map<int64_t, const storage::ObjectInfo*> commits;
  LogListing listing;
  for (const auto& o : objects) {
    if (auto v = parse_commit_file_name(o.name)) {
      commits[v->value()] = &o;
      listing.commits.push_back(*v);
    } else if (auto c = parse_checkpoint_file_name(o.name)) {
      c->second.path = store.log_dir() / o.name;
      listing.checkpoints[c->first].push_back(c->second);
    }
  }
  if (commits.empty()) return result;
  for (auto& [version, files] : listing.checkpoints) {  // as list_log sorts them
    std::sort(files.begin(), files.end(), [](const CheckpointFile& a, const CheckpointFile& b) {
      return std::tie(a.parts, a.part) < std::tie(b.parts, b.part);
    });
  }
  // PROTOCOL.md "Metadata Cleanup": the cut-off commit is the newest commit older than the
  // window, scanning up from the oldest (a commit after one inside the window counts as inside).
  std::optional<int64_t> cutoff_commit;
  for (const auto& [version, object] : commits) {
    ARROW_ASSIGN_OR_RAISE(const int64_t mtime, object_mtime_millis(store, *object));
    if (mtime > cutoff) break;
    cutoff_commit = version;
  }
  if (!cutoff_commit) return result;
  // ... and the log then starts at the newest complete checkpoint not newer than it.
  auto start = newest_complete_checkpoint(listing, DeltaVersion(*cutoff_commit));
  if (!start || start->version.value() == 0) return result;
  result.kept_from = start->version;
  const int64_t keep_from = start->version.value();

  // Oldest first: a cleanup cut short leaves a log that still starts at a checkpoint or a
  // contiguous run of commits up to `start`.
  struct Doomed {
    int64_t version;
    int kind;  // 0 commit, 1 checkpoint part, 2 other
    const storage::ObjectInfo* object;
  };
  std::vector<Doomed> doomed;
  for (const auto& o : objects) {
    if (auto v = parse_commit_file_name(o.name); v && v->value() < keep_from) {
      doomed.push_back({v->value(), 0, &o});
    } else if (auto c = parse_checkpoint_file_name(o.name); c && c->first.value() < keep_from) {
      ARROW_ASSIGN_OR_RAISE(const int64_t mtime, object_mtime_millis(store, o));
      if (mtime <= checkpoint_cutoff) doomed.push_back({c->first.value(), 1, &o});
    } else if (auto other = other_log_file_version(o.name); other && *other < keep_from) {
      doomed.push_back({*other, 2, &o});
    }
  }
  std::stable_sort(doomed.begin(), doomed.end(),
                   [](const Doomed& a, const Doomed& b) { return a.version < b.version; });
  if (check && !doomed.empty()) ARROW_RETURN_NOT_OK(check_no_foreign_commit(store, *check));
  for (const auto& d : doomed) {
    const std::string path = (store.log_dir() / d.object->name).string();
    auto st = store.objects()->remove(path);
    if (!st.ok()) return io_failure(st, "cannot delete expired log file", store.display(path));
    (d.kind == 0 ? result.deleted_commits : d.kind == 1 ? result.deleted_checkpoints : result.deleted_other) += 1;
  }
  return result;
}

}  // namespace sluice::delta
