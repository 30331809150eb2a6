// Log cleanup after a checkpoint, as Delta's MetadataCleanup does it (delta.logRetentionDuration,
// delta.checkpointRetentionDuration, delta.enableExpiredLogCleanup): the commits, checksums and
// checkpoints of _delta_log older than the window are deleted, up to the newest checkpoint that
// still lets every version inside the window be read.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <optional>
#include <set>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

struct LogCleanupResult {
  // The checkpoint the log now starts from (everything before it was expired); none when
  // nothing could go (no complete checkpoint at or below the oldest version in the window).
  std::optional<DeltaVersion> kept_from;
  int64_t deleted_commits = 0;      // NNN.json
  int64_t deleted_checkpoints = 0;  // checkpoint files (every part)
  int64_t deleted_other = 0;        // NNN.crc, NNN.MMM.compacted.json
};

// What a caller that deleted data files before cutting the log (forget) has checked: every
// commit up to `checked_through` (vacuum's last read of the log after its deletions), and the
// commits it made itself since (`own`: VACUUM END, a reader's moved progress).
struct LogCutCheck {
  DeltaVersion checked_through{0};
  std::set<int64_t> own;
};

// Deletes what has expired at `now_millis` under `metadata`'s retention properties, as
// PROTOCOL.md "Metadata Cleanup" says: the cut-off commit is the newest commit older than
// now - logRetention (commit times are their files' modification times; the scan goes up from
// the oldest and stops at the first commit inside the window); the log then starts at the
// newest complete checkpoint not newer than it: commits, .crc files and compacted commits
// before that checkpoint are deleted, oldest first (a cleanup cut short leaves a readable
// log), and checkpoints before it once older than now - checkpointRetention. Nothing is
// deleted when delta.enableExpiredLogCleanup is false. Unlike Delta, the cut-off is not
// rounded down to a whole day (docs/decisions.md).
// With `check`: right before the first deletion the log is listed again, and a commit after
// `check->checked_through` that is not one of `check->own` (another writer's, which may name a
// file the caller deleted) stops the cleanup with nothing deleted, naming the version and its
// operation: the log stays whole so that the table can be restored (RESTORE to the version
// before) and the command run again. Fail point "log_cleanup_before_cut" (tests) comes right
// before that listing. The regular cleanup after a checkpoint passes none: it deletes no data
// file and cuts only commits older than the log retention.
arrow::Result<LogCleanupResult> cleanup_expired_logs(const LogStore& store, const Metadata& metadata,
                                                     int64_t now_millis, const LogCutCheck* check = nullptr);

}  // namespace sluice::delta
