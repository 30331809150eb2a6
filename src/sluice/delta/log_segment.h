// A table's log segment (delta-kernel-rs `log_segment`): the files of `_delta_log` that make
// one version, found in separate steps before any replay: list the log (list_log), then pick
// and validate the segment (build_log_segment: the newest complete checkpoint at or below the
// version, JSON commits contiguous after it, the `_last_checkpoint` hint checked), then replay
// it (snapshot.cc).
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

// One file of a classic checkpoint: part `part` of `parts` (1 of 1 for a single file).
struct CheckpointFile {
  int part = 1;
  int parts = 1;
  std::filesystem::path path;
};

// A complete checkpoint: its version and every one of its files, in part order.
struct CheckpointRef {
  DeltaVersion version;
  std::vector<std::filesystem::path> parts;
};

// What `_delta_log` holds, as named by its files.
struct LogListing {
  std::vector<DeltaVersion> commits;  // JSON commits, ascending
  std::map<DeltaVersion, std::vector<CheckpointFile>> checkpoints;  // checkpoint files by version
  // The version `_last_checkpoint` names (read before listing, so a checkpoint written during
  // the listing cannot look like a missing one); nullopt when absent or unreadable (a hint).
  std::optional<int64_t> last_checkpoint;
};

// Version of a file name: "%020d.json" -> commit; other names nullopt.
std::optional<DeltaVersion> parse_commit_file_name(const std::string& name);
// "%020d.checkpoint.parquet" or "%020d.checkpoint.%010d.%010d.parquet"; other names nullopt.
std::optional<std::pair<DeltaVersion, CheckpointFile>> parse_checkpoint_file_name(
    const std::string& name);

// Every file of `_delta_log`, or with `after` only those named after version `after`'s
// ("%020d" < name: its commit and checkpoint and everything newer), which the store lists
// without reading what precedes (S3 start-after): a listing that does not grow with history.
// The version `_delta_log/_last_checkpoint` names; a missing or unreadable file is no hint.
std::optional<int64_t> read_last_checkpoint(const LogStore& store);

arrow::Result<LogListing> list_log(const LogStore& store, std::optional<DeltaVersion> after = std::nullopt);

// The newest checkpoint of `listing` at or below `at` that has all its parts.
std::optional<CheckpointRef> newest_complete_checkpoint(const LogListing& listing,
                                                        std::optional<DeltaVersion> at);

struct LogSegment {
  DeltaVersion version;                   // the version the segment reconstructs
  std::optional<CheckpointRef> checkpoint;  // where replay starts, if anywhere
  std::vector<DeltaVersion> commits;      // every version after the checkpoint up to `version`
};

// The segment that reconstructs `version` (the latest when unset). Errors name the table, the
// missing commit or checkpoint part, and what to do.
arrow::Result<LogSegment> build_log_segment(const LogListing& listing, const std::string& table,
                                            std::optional<DeltaVersion> version);

// Every commit in (after, upto] is in the listing; the error names the first that is not.
arrow::Status check_commits_present(const LogListing& listing, const std::string& table,
                                    DeltaVersion after, DeltaVersion upto);
// Whether `status` is check_commits_present's error (a commit cleaned up after a checkpoint, or
// lost): the history is not there to replay, though a snapshot may still be.
bool is_missing_commit(const arrow::Status& status);

}  // namespace sluice::delta
