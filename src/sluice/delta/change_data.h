// The change data feed as a writer records it (PROTOCOL.md "Change Data Files", "Add CDC
// File"): the rows a DELETE, UPDATE or MERGE changed, with `_change_type`, in Parquet files
// under `_change_data/` that `cdc` actions of the same commit reference.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

// The directory of change data files under the table root, and their extra column.
inline constexpr const char* kChangeDataDir = "_change_data";
inline constexpr const char* kChangeTypeColumn = "_change_type";

// `_change_type` values (Spark's CDCReader).
enum class ChangeType { kInsert, kDelete, kUpdatePreimage, kUpdatePostimage };
const char* change_type_name(ChangeType type);

// An `add cdc` action: a change data file, its size and partition values. dataChange is always
// false (the add/remove actions of the commit carry the data change).
struct AddCdcFile {
  std::string path;  // relative to the table root, URI-encoded
  PartitionValues partition_values;
  int64_t size = 0;
  OtherAction to_action() const;
};

// Writes change rows (of the table schema) into `_change_data/<partition dirs>/` Parquet
// files holding the table's non-partition columns then `_change_type`, partitioned as the
// table is. Not thread-safe: one statement writes through it.
class ChangeDataWriter {
 public:
  static arrow::Result<std::unique_ptr<ChangeDataWriter>> make(
      std::shared_ptr<LogStore> store, std::shared_ptr<arrow::Schema> table_schema,
      std::vector<std::string> partition_columns, DataFileOptions options = {});
  ~ChangeDataWriter();

  arrow::Status write(const arrow::RecordBatch& rows, ChangeType type);
  int64_t rows_written() const { return rows_; }

  // Closes every file; the cdc actions to commit.
  arrow::Result<std::vector<AddCdcFile>> finish();
  // Deletes every file written (before commit, or after a lost race).
  void abort();

 private:
  ChangeDataWriter() = default;
  arrow::Status write_partition(const std::string& dir, const PartitionValues& values,
                                const arrow::RecordBatch& data);

  struct OpenFile {
    PartitionValues values;
    std::unique_ptr<DataFileWriter> writer;
  };
  std::shared_ptr<LogStore> store_;
  std::shared_ptr<arrow::Schema> table_schema_;
  std::shared_ptr<arrow::Schema> file_schema_;  // data columns then _change_type
  std::vector<std::string> partition_columns_;
  std::vector<int> partition_indices_, data_indices_;  // in table_schema_
  DataFileOptions options_;
  std::map<std::string, OpenFile> open_;  // by directory under the table root
  std::vector<Add> closed_;               // path, size and partition values of closed files
  int64_t rows_ = 0;
};

}  // namespace sluice::delta
