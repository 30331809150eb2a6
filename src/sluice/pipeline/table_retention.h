// Retention policies of streaming tables (issue 15): `pipelines.retention` (a duration, '30 days')
// and `pipelines.retention.column` (a TIMESTAMP, TIMESTAMP_NTZ or DATE column of the table).
// After each update of the table the rows whose column is older than now - retention are
// deleted in one DELETE commit marked as retention's (delta/retention_commit.h): whole files
// whose partition value or min/max stats lie entirely before the cut-off are removed unread (a
// metadata-only delete, no new data file), the rest rewritten without the expired rows, or
// marked in deletion vectors where the table writes them. Nothing expired: no commit.
// Streaming readers in the pipeline skip these commits (docs/decisions.md, retention).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "sluice/common/strong_types.h"
#include "sluice/delta/log_store.h"

namespace sluice::pipeline {

inline constexpr char kRetentionProperty[] = "pipelines.retention";
inline constexpr char kRetentionColumnProperty[] = "pipelines.retention.column";
// For deterministic tests: the instant retention measures from, a timestamp such as
// '2026-12-06 12:00:00' (UTC unless it names a zone); unset: the wall clock.
inline constexpr char kRetentionNowVariable[] = "SLUICE_RETENTION_NOW";

struct RetentionPolicy {
  std::string duration_text;  // as written, for the history and messages
  int64_t duration_millis = 0;
  std::string column;  // as the table's schema spells it
};

// Whether `properties` set either retention key.
bool has_retention_properties(const std::map<std::string, std::string>& properties);

// The table's policy from its properties, checked against its columns; nullopt when it has
// none. Errors (no location: the caller adds where the properties were written) name the key
// and the value: a column without a duration or the reverse, a duration that does not parse
// (Spark's interval grammar, as delta.*RetentionDuration: '30 days', '12 hours', 'interval 1
// week'; months and years refused) or is not positive, a column the table lacks or of another
// type. A duration without a column is refused even when one timestamp column would do: which
// rows a policy deletes should not change when a column is added.
arrow::Result<std::optional<RetentionPolicy>> retention_policy(const std::map<std::string, std::string>& properties,
                                                               const arrow::Schema& schema);

// The instant retention measures from, in epoch milliseconds: SLUICE_RETENTION_NOW when set
// (an error when it is not a timestamp), else the clock.
arrow::Result<int64_t> retention_now_millis();

// The cut-off for `now`: rows with `column < cutoff` are expired. now - duration, floored to a
// step (an hour for durations of a day or more, a minute for an hour or more, else a second), so
// a continuous run commits a retention DELETE at most once per step rather than at every
// micro-batch; a DATE column expires a day once all of it is before that instant. A scalar of
// `type`, the column's.
arrow::Result<std::shared_ptr<arrow::Scalar>> retention_cutoff(const RetentionPolicy& policy,
                                                               const std::shared_ptr<arrow::DataType>& type,
                                                               int64_t now_millis);

struct RetentionOutcome {
  bool committed = false;
  int64_t version = -1;  // the DELETE's version, or the version read when nothing expired
  int64_t rows_deleted = 0;
  int64_t files_removed = 0;  // whole files dropped or rewritten
  int64_t files_added = 0;    // rewritten files (0 for a metadata-only delete)
  std::string cutoff;         // as the commit records it
  int attempts = 1;
};

// Deletes the expired rows of the table at `store` (its latest version), retrying from a new
// snapshot when a concurrent commit conflicts; `table` names it in messages. No table yet:
// nothing done.
arrow::Result<RetentionOutcome> apply_retention(const std::shared_ptr<delta::LogStore>& store, const std::string& table,
                                                const RetentionPolicy& policy, int64_t now_millis);

// The versions in (after, upto] that are retention commits: a change-feed reader and an
// incremental view look them up (added_files_between skips them itself).
arrow::Result<std::set<int64_t>> retention_commit_versions(const delta::LogStore& store, DeltaVersion after,
                                                           DeltaVersion upto);

}  // namespace sluice::pipeline
