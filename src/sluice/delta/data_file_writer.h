// Writes Arrow record batches into one Parquet data file of a Delta table and describes it
// as an `add` action (size, stats) once closed.
#pragma once

#include <arrow/result.h>
#include <arrow/io/type_fwd.h>
#include <arrow/type_fwd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/recycling_memory_pool.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/row_group_budget.h"
#include "sluice/delta/stats.h"
#include "sluice/storage/object_store.h"

namespace parquet::arrow {
class FileWriter;
}

namespace sluice::delta {

enum class Compression { kZstd, kSnappy, kUncompressed };

struct DataFileOptions {
  Compression compression = Compression::kZstd;
  int64_t row_group_rows = 1 << 20;
  // A row group also ends once this many bytes of Arrow data went into it: the Parquet writer
  // holds a row group's encoded pages in memory until it ends, so this bounds a file's
  // buffer whatever the row width (1 Mi rows of 200-byte Kafka values were ~100 MB per file).
  int64_t row_group_bytes = 64ll << 20;
  // Shared by the row groups in progress of every writer (null: RowGroupBudget::process()):
  // a row group also ends once all of them together reach it.
  RowGroupBudget* row_group_budget = nullptr;
  int64_t target_file_bytes = 128ll << 20;
  // A file also ends once it holds this many rows (0: no bound), as Spark's maxRecordsPerFile;
  // the table writers cut a batch at the bound. OPTIMIZE sets it from its input's bytes per row,
  // since the bytes of a file's open row group are known only once the row group ends.
  int64_t max_rows_per_file = 0;
  // Files written at once by an unpartitioned write (0: one per core), and the rows a write
  // must reach before it spreads over more than one file.
  int parallel_files = 0;
  int64_t spread_after_rows = 1'000'000;
  // Encode a row group's columns on Arrow's CPU pool.
  bool parallel_columns = true;
  // Top-level columns written without a Parquet dictionary: ones whose values do not repeat,
  // where hashing each value into a dictionary the writer later abandons only costs CPU.
  std::vector<std::string> columns_without_dictionary;
};

class DataFileWriter {
 public:
  // Opens a new file under `table_root` (in `relative_dir`, "" for the root) in `objects`.
  static arrow::Result<std::unique_ptr<DataFileWriter>> make(
      std::shared_ptr<storage::ObjectStore> objects, const std::filesystem::path& table_root,
      const std::string& relative_dir, std::shared_ptr<arrow::Schema> schema,
      const DataFileOptions& options);
  // The same in a local folder.
  static arrow::Result<std::unique_ptr<DataFileWriter>> make(
      const std::filesystem::path& table_root, const std::string& relative_dir,
      std::shared_ptr<arrow::Schema> schema, const DataFileOptions& options);
  ~DataFileWriter();

  arrow::Status write(const arrow::RecordBatch& batch);
  int64_t num_rows() const { return stats_.num_records(); }
  // Bytes of Parquet written so far (row groups still buffered are not counted).
  int64_t bytes_written() const;
  bool reached_target() const {
    return bytes_written() >= options_.target_file_bytes ||
           (options_.max_rows_per_file > 0 && num_rows() >= options_.max_rows_per_file);
  }
  // How many more rows the file takes before max_rows_per_file ends it (the int64 maximum
  // without a bound).
  int64_t rows_left() const {
    return options_.max_rows_per_file > 0 ? std::max<int64_t>(0, options_.max_rows_per_file - num_rows())
                                          : std::numeric_limits<int64_t>::max();
  }

  // Finishes and fsyncs the file; returns its add action (path relative, URI-encoded).
  arrow::Result<Add> close();
  // Deletes the file; for errors before commit.
  void abort();

 private:
  DataFileWriter(std::shared_ptr<arrow::Schema> schema, const DataFileOptions& options);
  void release_row_group_bytes();  // gives the open row group's bytes back to the budget
  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path full_path_;
  std::string relative_path_;
  std::shared_ptr<arrow::Schema> schema_;
  DataFileOptions options_;
  std::shared_ptr<arrow::io::OutputStream> sink_;
  std::unique_ptr<parquet::arrow::FileWriter> writer_;
  StatsCollector stats_;
  int64_t row_group_input_bytes_ = 0;  // Arrow bytes written into the open row group
  RowGroupBudget* budget_;             // counts row_group_input_bytes_
  bool closed_ = false;
};

// The pool of every Parquet writer's page and row-group buffers (data_file_writer.cc says why).
RecyclingMemoryPool& parquet_writer_pool();

// Deletes the data files of `adds` (written but never committed); best effort.
void remove_data_files(storage::ObjectStore& objects, const std::filesystem::path& table_root,
                       const std::vector<Add>& adds);

}  // namespace sluice::delta
