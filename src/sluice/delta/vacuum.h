// Removing data a table no longer needs (PROTOCOL.md "VACUUM", Spark's VacuumCommand): files no
// version inside the retention window references, and the retention durations of table
// properties as Spark parses them. Log cleanup after a checkpoint is in log_cleanup.h.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

// A duration as Spark reads a table property such as delta.deletedFileRetentionDuration
// (DeltaConfigs.parseCalendarInterval): "interval 7 days", "1 week 2 hours", "30 seconds",
// units week, day, hour, minute, second, millisecond, microsecond (singular or plural),
// fractions for seconds only; months and years are refused, as Delta refuses them.
arrow::Result<int64_t> parse_interval_millis(std::string_view text);

// A table's retention property in milliseconds, or its default (deleted files 7 days, log 30
// days, checkpoints 2 days); an error naming the property and the table when it does not parse.
arrow::Result<int64_t> deleted_file_retention_millis(const Metadata& metadata, const std::string& table);
arrow::Result<int64_t> log_retention_millis(const Metadata& metadata, const std::string& table);
arrow::Result<int64_t> checkpoint_retention_millis(const Metadata& metadata, const std::string& table);

// The file of an on-disk deletion vector relative to the table root (storageType 'u': an
// optional random prefix folder, then deletion_vector_<uuid>.bin from the Z85-encoded uuid),
// the absolute path ('p'), or none (inline 'i'); an error when the descriptor is malformed.
arrow::Result<std::optional<std::string>> deletion_vector_file(std::string_view storage_type,
                                                               std::string_view path_or_inline_dv);

// Whether Spark treats a file or folder name under the table root as hidden and leaves it
// alone (DeltaTableUtils.isHiddenDirectory): names starting with '_' or '.', except
// partition folders ("<partition column>=..."), _change_data and _delta_index; and "metadata".
bool is_hidden_for_vacuum(std::string_view name, const std::vector<std::string>& partition_columns);

// A file or folder under the table root, path relative to it ('/'-separated, not encoded).
struct ListedFile {
  std::string path;
  int64_t size = 0;
  int64_t mtime_millis = 0;
  bool is_dir = false;
};

// Spark's choice of what to delete, from the table's listing (hidden names already left out)
// and the paths a version inside the window still needs (`valid`: live files, unexpired
// tombstones, their deletion vectors, and every folder above them): files older than
// `delete_before_millis` that are not valid, and folders that hold no such old file at all
// (a folder emptied by this vacuum goes in the next one, as in Spark). Sorted by path.
std::vector<ListedFile> select_vacuum_candidates(const std::vector<ListedFile>& listing,
                                                 const std::set<std::string>& valid,
                                                 int64_t delete_before_millis);

// Removes from `candidates` the files (and the folders above them) that a version committed
// after `decided` names: an add (with its deletion vector) or a cdc action of any later commit.
// A writer that takes no maintenance lock (Spark) may commit, between a vacuum's listing and
// its deletions, a file it wrote before the cut-off; vacuum() calls this after VACUUM START so
// that such a file is kept. Returns how many files were dropped; `newest_read` (when given) is
// set to the newest version the re-read saw. A commit landing after this re-read is not seen
// here: one that names a file vacuum then deletes leaves the table naming a missing file;
// vacuum() reads the log once more after its deletions and fails naming it (README "Privacy"
// (a) says what remains).
arrow::Result<int64_t> drop_committed_since(const LogStore& store, DeltaVersion decided,
                                            std::vector<ListedFile>& candidates,
                                            DeltaVersion* newest_read = nullptr);

enum class VacuumMode { kDelete, kDryRun };
// Spark's spark.databricks.delta.retentionDurationCheck.enabled: a window shorter than the
// table's delta.deletedFileRetentionDuration is refused unless the check is off (--force).
enum class RetentionCheck { kEnforced, kOff };
// Whether a tombstone stamped inside the window keeps its file (Spark's rule), or no tombstone
// does (forget: a writer's clock ahead of ours would stamp a remove "in the future" and keep a
// file holding an erased value while forget reports it gone).
enum class TombstoneRule { kKeepUnexpired, kIgnore };

struct VacuumOptions {
  std::optional<int64_t> retain_millis;  // none: the table's delta.deletedFileRetentionDuration
  VacuumMode mode = VacuumMode::kDelete;
  RetentionCheck check = RetentionCheck::kEnforced;
  // Files modified at or after this time are kept whatever the retention (forget: its start,
  // so a file another command wrote meanwhile, not committed yet, is never deleted).
  std::optional<int64_t> keep_modified_since_millis;
  TombstoneRule tombstones = TombstoneRule::kKeepUnexpired;
};

struct VacuumResult {
  DeltaVersion read_version{0};  // the version whose files were kept
  int64_t retention_millis = 0;
  int64_t delete_before_millis = 0;
  std::vector<ListedFile> candidates;  // what goes (dry run) or went, files and folders
  int64_t bytes = 0;                   // the candidate files' sizes
  int64_t deleted_files = 0;
  int64_t deleted_dirs = 0;
  std::optional<DeltaVersion> start_version;  // the VACUUM START and END commits (none: dry run)
  std::optional<DeltaVersion> end_version;
  // The newest version the last read of the log after the deletions saw (none: dry run): every
  // commit up to it was checked not to name a deleted file. A log cut after this vacuum (forget)
  // stops when a commit other than VACUUM END landed after it (log_cleanup.h LogCutCheck).
  std::optional<DeltaVersion> checked_through;
};

// VACUUM of the table at `store` (a local folder, or S3, GCS or Azure through one recursive
// listing): checks the protocol (vacuumProtocolCheck asks for reader and writer checks), the
// window, lists the table, then either returns the candidates (dry run) or commits VACUUM
// START, deletes them, and commits VACUUM END, as Spark does. Fail points (tests):
// "vacuum_after_choice" once the candidates are chosen, "vacuum_before_delete" after the log's
// re-read (drop_committed_since), right before the first deletion. The deletion vectors of live
// files and unexpired tombstones are kept, orphaned ones go. _delta_log is never touched (log
// cleanup is log_cleanup.h's).
arrow::Result<VacuumResult> vacuum(const std::shared_ptr<LogStore>& store, const VacuumOptions& options);

// The path of an add/remove action or a deletion vector relative to the table root `root`
// (as the store names it: "bucket/prefix" on an object store); none when it lies outside.
std::optional<std::string> vacuum_relative_path(const std::string& decoded, const std::string& root);

}  // namespace sluice::delta
