// Optimistic Delta commits.
#include "sluice/delta/transaction.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/common/ids.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/log_cleanup.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/table_features.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::delta {

namespace {

class CommitConflictDetail : public arrow::StatusDetail {
 public:
  const char* type_id() const override { return "sluice::delta::commit_conflict"; }
  std::string ToString() const override { return "commit conflict"; }
};

// Why version `v` is not a slot the log continues from, or an empty string: its predecessor
// must be in the log (commit or checkpoint). A log cut with zero retention (sluice forget)
// deletes the commits before its checkpoint, so a put-if-absent into a deleted slot succeeds
// although the slot lies behind the table and no reader replays it; Delta (delta-rs: "Invalid
// table version") refuses that write, and so does sluice. (A checkpoint newer than `v` alone
// proves nothing: a concurrent writer may have committed after `v` and checkpointed.)
arrow::Result<std::string> stale_slot(const LogStore& store, DeltaVersion v) {
  const int64_t version = v.value();
  if (version == 0) return std::string();
  const DeltaVersion before(version - 1);
  ARROW_ASSIGN_OR_RAISE(auto listing, list_log(store, before));
  const bool has_before = std::find(listing.commits.begin(), listing.commits.end(), before) != listing.commits.end() ||
                          listing.checkpoints.count(before) > 0;
  if (has_before) return std::string();
  std::string newest = "none";
  if (!listing.checkpoints.empty()) newest = std::to_string(listing.checkpoints.rbegin()->first.value());
  return fmt::format("version {} is no longer in its log (a log cut deleted it; newest checkpoint: {})", version - 1,
                     newest);
}

// Whether a log cut may have reached version `v`: a cut only deletes what lies before a
// checkpoint whose _last_checkpoint it wrote first (forget_cleanup.cc; the hint never moves
// back), so a hint below `v` rules it out. A hint that is there but cannot be read or parsed
// rules nothing out (the caller lists the log); an absent one means no checkpoint, no cut.
arrow::Result<bool> cut_may_reach(const LogStore& store, DeltaVersion v) {
  if (const auto hinted = read_last_checkpoint(store)) return *hinted >= v.value();
  // No hint read: absent (no checkpoint, no cut), or there but unreadable or unparsable.
  auto info = store.objects()->head((store.log_dir() / "_last_checkpoint").string());
  return !(info.ok() && !info->has_value());
}

}  // namespace

bool is_commit_conflict(const arrow::Status& status) {
  return status.detail() != nullptr &&
         std::string_view(status.detail()->type_id()) == "sluice::delta::commit_conflict";
}

Transaction::Transaction(std::shared_ptr<LogStore> store,
                         std::shared_ptr<const Snapshot> read_snapshot)
    : store_(std::move(store)), read_snapshot_(std::move(read_snapshot)), txn_id_(random_uuid()) {}

void Transaction::set_txn(std::string app_id, int64_t version) {
  txns_.push_back(Txn{std::move(app_id), version, now_millis()});
}

std::vector<Action> Transaction::actions_for_commit(const CommitOptions& options,
                                                    int64_t read_version) const {
  std::vector<Action> actions;
  nlohmann::json info = {
      {"timestamp", now_millis()},
      {"operation", options.operation},
      {"operationParameters", options.operation_parameters},
      {"isolationLevel", options.isolation_level},
      // A transaction that read the table (a MERGE that only inserts) is no blind append.
      {"isBlindAppend", removes_.empty() && !metadata_ && read_snapshot_ != nullptr && !read_set_},
      {"operationMetrics", options.operation_metrics},
      {"engineInfo", "sluice/" SLUICE_VERSION},
      {"txnId", txn_id_},
  };
  if (read_version >= 0) info["readVersion"] = read_version;
  // commitInfo first, as Spark writes it, so tools that peek at line 1 find it.
  actions.emplace_back(CommitInfo{std::move(info)});
  if (protocol_) actions.emplace_back(*protocol_);
  if (metadata_) actions.emplace_back(*metadata_);
  for (const auto& d : domains_) actions.emplace_back(to_action(d));
  for (const auto& t : txns_) actions.emplace_back(t);
  for (const auto& r : removes_) actions.emplace_back(r);
  for (const auto& a : adds_) actions.emplace_back(a);
  for (const auto& o : others_) actions.emplace_back(o);
  return actions;
}

void Transaction::mark_no_data_change() {
  for (auto& a : adds_) a.data_change = false;
  for (auto& r : removes_) r.data_change = false;
}

arrow::Status Transaction::check_conflicts(const std::vector<Action>& winning,
                                           DeltaVersion v) const {
  const std::string table = store_->location();
  if (!read_snapshot_) {
    return invalid("conflict: table {} was created concurrently (version {} exists)", table,
                   v.value());
  }
  std::set<std::string> my_apps;
  for (const auto& t : txns_) my_apps.insert(t.app_id);
  std::set<std::string> my_removes;
  for (const auto& r : removes_) my_removes.insert(r.path);
  std::set<std::string> my_domains;
  for (const auto& d : domains_) my_domains.insert(d.domain);
  for (const auto& action : winning) {
    if (const auto* o = std::get_if<OtherAction>(&action); o && !my_domains.empty()) {
      auto domain = domain_metadata_of(*o);
      if (domain.ok() && *domain && my_domains.count((*domain)->domain)) {
        return invalid(
            "conflict: a concurrent commit (version {}) to {} changed the metadata of domain '{}', "
            "which this commit changes too; re-read the table and try again",
            v.value(), table, (*domain)->domain);
      }
    }
    if (std::holds_alternative<Metadata>(action) || std::holds_alternative<Protocol>(action)) {
      return invalid(
          "conflict: a concurrent commit (version {}) changed the metadata or protocol of {}; "
          "re-read the table and try again",
          v.value(), table);
    }
    if (const auto* t = std::get_if<Txn>(&action); t && my_apps.count(t->app_id)) {
      return invalid(
          "conflict: a concurrent commit (version {}) to {} recorded progress for '{}' "
          "(another writer is processing the same source)",
          v.value(), table, t->app_id);
    }
    if (const auto* r = std::get_if<Remove>(&action); r && my_removes.count(r->path)) {
      return invalid("conflict: file {} of {} was removed concurrently (version {})", r->path,
                     table, v.value());
    }
  }
  ARROW_RETURN_NOT_OK(check_read_conflicts(winning, v));
  if (metadata_ || protocol_) {
    return invalid("conflict: {} changed (version {}) while this commit changed its metadata",
                   table, v.value());
  }
  return arrow::Status::OK();
}

IsolationLevel isolation_level(const Metadata& metadata) {
  auto it = metadata.configuration.find("delta.isolationLevel");
  if (it != metadata.configuration.end() && it->second == "Serializable") {
    return IsolationLevel::kSerializable;
  }
  return IsolationLevel::kWriteSerializable;
}

const char* isolation_level_name(IsolationLevel level) {
  return level == IsolationLevel::kSerializable ? "Serializable" : "WriteSerializable";
}

// Delta's ConflictChecker for a transaction that read the table: files a concurrent commit
// added that match what was read (under WriteSerializable, a blind append's files excepted)
// would have changed the result; a file it removed that was read is gone from under us.
arrow::Status Transaction::check_read_conflicts(const std::vector<Action>& winning,
                                                DeltaVersion v) const {
  if (!read_set_) return arrow::Status::OK();
  const std::string table = store_->location();
  bool blind_append = false;
  std::vector<Add> added;
  for (const auto& action : winning) {
    if (const auto* c = std::get_if<CommitInfo>(&action)) {
      auto it = c->value.find("isBlindAppend");
      blind_append = it != c->value.end() && it->is_boolean() && it->get<bool>();
    } else if (const auto* a = std::get_if<Add>(&action); a && a->data_change) {
      added.push_back(*a);
    } else if (const auto* r = std::get_if<Remove>(&action);
               r && r->data_change && read_set_->files.count(r->path)) {
      return invalid(
          "conflict: a concurrent commit (version {}) removed or rewrote file {} of {}, which this "
          "command read (ConcurrentDeleteReadException); nothing was committed: run it again",
          v.value(), r->path, table);
    }
  }
  if (added.empty()) return arrow::Status::OK();
  if (blind_append && read_set_->isolation == IsolationLevel::kWriteSerializable) {
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto matching,
                        select_files_among(*read_snapshot_, read_set_->predicates, added));
  if (!matching.empty()) {
    return invalid(
        "conflict: a concurrent commit (version {}) added file {} to {} that may hold rows this "
        "command read (ConcurrentAppendException, isolation level {}); nothing was committed: run "
        "it again",
        v.value(), matching.front().path, table, isolation_level_name(read_set_->isolation));
  }
  return arrow::Status::OK();
}

int64_t checkpoint_interval(const Metadata& metadata) {
  auto it = metadata.configuration.find("delta.checkpointInterval");
  // sluice refuses a bad value when it is set (check_delta_properties); a table another writer
  // gave "5abc" or 0 checkpoints at Delta's default rather than at 5 or never.
  if (it != metadata.configuration.end()) {
    const auto n = parse_int64(it->second, "delta.checkpointInterval");
    if (n.ok() && *n > 0) return *n;
  }
  return 10;
}

arrow::Result<CommitResult> Transaction::finish_commit(DeltaVersion version, int attempts) {
  CommitResult result{version, attempts, nullptr, arrow::Status::OK()};
  if (read_snapshot_) {
    ARROW_ASSIGN_OR_RAISE(result.snapshot, read_snapshot_->advance(*store_, version));
  } else {
    ARROW_ASSIGN_OR_RAISE(result.snapshot, Snapshot::load(*store_, version));
  }
  const auto& metadata = result.snapshot->metadata();
  if (version.value() > 0 && version.value() % checkpoint_interval(metadata) == 0) {
    result.checkpoint_status = write_checkpoint(*store_, *result.snapshot);
    if (result.checkpoint_status.ok()) {
      // Delta cleans up expired log files right after a checkpoint (MetadataCleanup).
      auto cleaned = cleanup_expired_logs(*store_, metadata, now_millis());
      if (!cleaned.ok()) {
        result.checkpoint_status = with_context(
            cleaned.status(), fmt::format("log cleanup after the checkpoint at version {} (the table is intact; "
                                          "the next checkpoint cleans up again)", version.value()));
      }
    }
  }
  return result;
}

CommitOptions Transaction::streaming_update(int64_t rows) const {
  int64_t bytes = 0;
  for (const auto& add : adds_) bytes += add.size;
  CommitOptions options;
  options.operation = "STREAMING UPDATE";
  options.operation_parameters = {{"outputMode", "Append"}};
  options.operation_metrics = {{"numAddedFiles", std::to_string(adds_.size())},
                               {"numOutputRows", std::to_string(rows)},
                               {"numOutputBytes", std::to_string(bytes)},
                               {"numRemovedFiles", std::to_string(removes_.size())}};
  return options;
}

arrow::Status Transaction::check_writable() const {
  const std::string table = store_->location();
  // The table as this commit leaves it must be one sluice can write: every commit path
  // (data, txn-only progress, full refresh) passes here.
  const Protocol& protocol = protocol_ ? *protocol_ : read_snapshot_->protocol();
  const Metadata& metadata = metadata_ ? *metadata_ : read_snapshot_->metadata();
  ARROW_RETURN_NOT_OK(check_write_supported(protocol, metadata, table));
  if (read_snapshot_ && is_append_only(read_snapshot_->metadata())) {
    size_t removing = 0;
    for (const auto& r : removes_) removing += r.data_change;
    if (removing > 0) {
      return invalid(
          "table {} only allows appends (delta.appendOnly = true), but this commit would remove "
          "{} data file(s) (an overwrite or full refresh); nothing was committed. To permit it, "
          "ALTER TABLE ... SET TBLPROPERTIES ('delta.appendOnly' = 'false')",
          table, removing);
    }
  }
  return arrow::Status::OK();
}

arrow::Status Transaction::discard_after_failed_put(const arrow::Status& error, DeltaVersion v,
                                                    const std::string& content) {
  // Did the commit land anyway (published, then the directory fsync failed)? Then its files
  // are the table's and stay. Otherwise nothing refers to them: delete them, so a full disk
  // gets its space back and no orphan is left, and refuse to commit this transaction again.
  auto there = store_->commit_info(v);
  if (!there.ok() || *there) {
    auto landed = store_->read_commit(v);
    if (!landed.ok() || *landed == content) return error;  // landed, or cannot tell
  }
  remove_data_files(*store_->objects(), store_->table_root(), adds_);
  discarded_ = true;
  return with_context(error, fmt::format("nothing was committed to {} (its {} new data file(s) "
                                         "were removed)",
                                         store_->location(), adds_.size()));
}

arrow::Result<CommitResult> Transaction::commit(const CommitOptions& options) {
  if (discarded_) {
    return invalid("this transaction on {} failed and its files were removed; write again",
                   store_->location());
  }
  if (!read_snapshot_ && (!protocol_ || !metadata_)) {
    return invalid("creating table {} needs protocol and metadata",
                   store_->location());
  }
  ARROW_RETURN_NOT_OK(check_writable());
  const int64_t read_version = read_snapshot_ ? read_snapshot_->version().value() : -1;
  DeltaVersion attempt_version(read_version + 1);
  const auto refuse_stale = [&](const std::string& why, DeltaVersion v) {
    remove_data_files(*store_->objects(), store_->table_root(), adds_);
    discarded_ = true;
    return invalid("cannot commit version {} to {}: this write read version {}, but {}; nothing was committed (its {} "
                   "new data file(s) were removed): write again from the table's latest version",
                   v.value(), store_->location(), read_version, why, adds_.size());
  };
  if (read_snapshot_ && attempt_version.value() > 0) {
    // Before the put too: two writers that read a version a cut then deleted would otherwise
    // stack on each other's commits in deleted slots (the second finds the first's commit as
    // its predecessor before the first takes it back).
    ARROW_ASSIGN_OR_RAISE(const bool reached, cut_may_reach(*store_, attempt_version));
    if (reached) {
      ARROW_ASSIGN_OR_RAISE(auto why, stale_slot(*store_, attempt_version));
      if (!why.empty()) return refuse_stale(why, attempt_version);
    }
  }
  for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
    const std::string content = serialize_commit(actions_for_commit(options, read_version));
    auto put = store_->put_commit_if_absent(attempt_version, content);
    if (!put.ok()) return discard_after_failed_put(put.status(), attempt_version, content);
    if (*put == PutResult::kWritten) {
      // A log cut (forget's) may have deleted the version read before the put, and then the
      // commit sits in a deleted slot that no reader replays: taken back. The log is listed
      // only when a cut may have reached this version (cut_may_reach): a GET per check
      // otherwise, the log's listings per commit unchanged.
      bool reached = false;
      if (attempt_version.value() > 0) {
        ARROW_ASSIGN_OR_RAISE(reached, cut_may_reach(*store_, attempt_version));
      }
      if (reached) {
        ARROW_ASSIGN_OR_RAISE(auto why, stale_slot(*store_, attempt_version));
        if (!why.empty()) {
          (void)store_->objects()->remove(store_->commit_path(attempt_version).string());
          return refuse_stale(why, attempt_version);
        }
      }
      return finish_commit(attempt_version, attempt);
    }
    // Lost the race: check what won, then try the next version.
    ARROW_ASSIGN_OR_RAISE(auto text, store_->read_commit(attempt_version));
    ARROW_ASSIGN_OR_RAISE(auto winning,
                          parse_commit(text, store_->display(store_->commit_path(attempt_version))));
    if (auto conflict = check_conflicts(winning, attempt_version); !conflict.ok()) {
      return conflict.WithDetail(std::make_shared<CommitConflictDetail>());
    }
    attempt_version = attempt_version.next();
  }
  return mark_retryable(invalid("gave up committing to {} after {} lost races",
                                store_->location(), options.max_attempts));
}

}  // namespace sluice::delta
