// Reading a table: file selection with partition pruning and stats-based skipping
// (file_skipping.h), scanning the selected files into Arrow batches with the table's schema, and
// the incremental (streaming) read of the files added between two versions.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/file_skipping.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

// Files that may hold rows satisfying every predicate (a conjunction): partition values are
// checked exactly, stats (min/max/nullCount) conservatively; files without stats are kept.
arrow::Result<std::vector<Add>> select_files(const Snapshot& snapshot,
                                             const std::vector<ColumnPredicate>& predicates);

// The same selection among `files` (e.g. the files a concurrent commit added) instead of the
// snapshot's live files; `snapshot` gives the schema and partition columns.
arrow::Result<std::vector<Add>> select_files_among(const Snapshot& snapshot,
                                                   const std::vector<ColumnPredicate>& predicates,
                                                   const std::vector<Add>& files);

struct ScanOptions {
  std::vector<ColumnPredicate> predicates;  // also applied to rows
  // Prunes files only (the caller filters the rows): a query's WHERE (skipping_predicate).
  FilePredicate file_filter;
  std::optional<int64_t> limit;
  ScanReport* report = nullptr;  // when set: the files and bytes read, of all
};

// Reads the table into one Arrow table with the snapshot's schema: partition columns filled
// from partitionValues, columns a file lacks (older schema) as nulls.
arrow::Result<std::shared_ptr<arrow::Table>> scan_table(const LogStore& store,
                                                        const Snapshot& snapshot,
                                                        const ScanOptions& options = {});

// Reads one data file of the table as batches with the snapshot's schema. With `row_filter`,
// only the row groups whose statistics admit rows it keeps (a file without a deletion vector;
// the caller still filters the rows); `report` counts them.
arrow::Result<std::shared_ptr<arrow::Table>> read_data_file(const LogStore& store,
                                                            const Snapshot& snapshot,
                                                            const Add& file,
                                                            const FilePredicate* row_filter = nullptr,
                                                            ScanReport* report = nullptr);

// The same, batch by batch (up to 64 Ki rows each, with the snapshot's schema): memory stays
// at a batch and a page instead of the whole file (a 1 Mi-row file of Kafka values is
// ~250 MB in Arrow). The reader keeps the file open until destroyed.
arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file(const LogStore& store,
                                                                        const Snapshot& snapshot,
                                                                        const Add& file);
// The same with the columns given: `schema` (partition columns among them filled from the
// file's partitionValues), e.g. a change data file's table columns and `_change_type`.
// `row_filter`, `report`: as read_data_file's.
arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::string>& partition_columns, const Add& file,
    const FilePredicate* row_filter = nullptr, ScanReport* report = nullptr);

// What a streaming reader does when a commit removed data (not a pure append).
enum class ChangePolicy {
  kFail,           // error: the reader would miss the deletion
  kIgnoreDeletes,  // skip commits that only remove files
  kIgnoreChanges,  // also accept rewrites (re-added rows may be read again)
};

struct AddedFile {
  DeltaVersion version;
  Add add;
};

// The data files added by versions (after, upto], in commit order; commits with dataChange=false
// (compaction) and retention commits (retention_commit.h) are skipped. A commit missing from the
// log is is_missing_commit() (log_segment.h); one that removed data the policy refuses,
// is_removed_data().
arrow::Result<std::vector<AddedFile>> added_files_between(const LogStore& store,
                                                          DeltaVersion after, DeltaVersion upto,
                                                          ChangePolicy policy);
// Whether `status` is added_files_between's refusal of a commit that removed data.
bool is_removed_data(const arrow::Status& status);

}  // namespace sluice::delta
