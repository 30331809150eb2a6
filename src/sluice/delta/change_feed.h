// Reading a table's change data feed (PROTOCOL.md "Change Data Files"; Spark's CDCReader): per
// commit in a version range, the rows of its `cdc` files when it has any, else inserts from
// its data-changing `add` actions and deletes from its data-changing `remove` actions; every
// row with `_change_type`, `_commit_version` and `_commit_timestamp`.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/change_data.h"  // kChangeTypeColumn
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

inline constexpr char kCommitVersionColumn[] = "_commit_version";
inline constexpr char kCommitTimestampColumn[] = "_commit_timestamp";
inline constexpr char kEnableChangeDataFeed[] = "delta.enableChangeDataFeed";

// Whether `metadata` has delta.enableChangeDataFeed = true (any case, as Spark reads it).
bool change_data_feed_enabled(const Metadata& metadata);

// The change feed's columns: the table's, then _change_type (string), _commit_version (long)
// and _commit_timestamp (timestamp, UTC).
std::shared_ptr<arrow::Schema> change_feed_schema(const arrow::Schema& table_schema);

// One end of a range as a user gives it: a version, or a timestamp (epoch microseconds; a
// start is the first commit at or after it, an end the last commit at or before it).
struct ChangeFeedBound {
  std::optional<int64_t> version;
  std::optional<int64_t> timestamp_micros;
  std::string text;  // as written, for messages
};

// A bound from SQL text: a whole number is a version, anything else a timestamp string
// ('2024-05-01', '2024-05-01 10:00:00', ISO 8601; UTC unless it names a zone).
arrow::Result<ChangeFeedBound> parse_change_feed_bound(const std::string& text);

// Versions [from, to] of a table, both committed.
struct ChangeFeedRange {
  DeltaVersion from{0};
  DeltaVersion to{0};
};

// What a start timestamp after the latest commit names: an error (a batch read, as Spark's
// table_changes), or the version after the latest (a stream, as Spark's readChangeFeed with
// startingTimestamp: it waits for that version).
enum class StartAfterLatest { kRefuse, kNextVersion };

// The versions `start` and `end` (the latest when unset) name. Errors name `table` and the
// range: from > to, a start after the latest version, a timestamp outside the history. With
// StartAfterLatest::kNextVersion a start timestamp after the latest commit gives the range
// (latest + 1, latest): nothing yet. `latest`: the version of the snapshot the caller reads
// (commits after it are not seen, so a range never passes it); the log's latest when unset.
arrow::Result<ChangeFeedRange> resolve_change_feed_range(const LogStore& store, const std::string& table,
                                                         const ChangeFeedBound& start,
                                                         const std::optional<ChangeFeedBound>& end,
                                                         StartAfterLatest after_latest = StartAfterLatest::kRefuse,
                                                         std::optional<DeltaVersion> latest = std::nullopt);

// One file of the feed: a cdc file (its rows carry _change_type), or a data file added or
// removed by a commit without cdc files (all its rows inserted or deleted, less those its
// deletion vector marks), or some rows of a file that commit gave a new deletion vector.
struct ChangeFile {
  enum class Kind { kCdc, kInserted, kDeleted };
  Kind kind = Kind::kCdc;
  DeltaVersion version{0};
  int64_t timestamp_millis = 0;  // the commit's (in-commit timestamp, else its file's time)
  Add file;                      // path and partition values (a remove's, for kDeleted)
  // Only these rows of the file (ascending indexes into it; `file` then has no vector): a file
  // removed and added again in one commit without cdc files changed its deletion vector, and
  // its changes are the vectors' difference, as Spark's CDCReader and delta-kernel-rs's
  // table_changes derive them: rows newly marked deleted, rows unmarked (a RESTORE) inserted.
  std::optional<std::vector<uint64_t>> rows;
};

// The files of the feed for versions [range.from, range.to], in commit order. Every version
// must be in the log and have the change data feed enabled (the metadata in force at it);
// errors name `table`, the range and the version, and what to do.
arrow::Result<std::vector<ChangeFile>> change_files(const LogStore& store, const std::string& table,
                                                    const ChangeFeedRange& range);

// One file's rows in `feed_schema` (change_feed_schema of the columns they are read with).
arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_change_file(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& feed_schema,
    const std::vector<std::string>& partition_columns, const ChangeFile& change);

// The whole feed of the range as one table, with the columns of `columns_of` (the table at
// range.to when null; columns a file lacks read as nulls).
arrow::Result<std::shared_ptr<arrow::Table>> read_change_feed(const LogStore& store, const std::string& table,
                                                              const ChangeFeedRange& range,
                                                              const Snapshot* columns_of = nullptr);

// table_changes(table, starting[, ending]) with its bounds as written (parse_change_feed_bound;
// `ending` empty: the latest), read with the columns of the latest snapshot.
arrow::Result<std::shared_ptr<arrow::Table>> read_table_changes(const LogStore& store, const std::string& table,
                                                                const std::string& starting,
                                                                const std::string& ending);

// Whether a commit in versions (after, upto] changed the table's rows or metadata: false when
// each only rearranged files (OPTIMIZE, auto compaction: every add and remove dataChange=false)
// or recorded progress. A commit that cannot be read counts as a change.
arrow::Result<bool> data_changed_between(const LogStore& store, DeltaVersion after, DeltaVersion upto);

}  // namespace sluice::delta
