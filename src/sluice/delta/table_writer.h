// Writes record batches into a Delta table: conforms them to the table schema (evolving it
// when allowed), splits them by partition values into Hive-style directories, rolls Parquet
// files at the target size, and hands back a Transaction holding the result.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/constraints.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/parallel_file_writer.h"
#include "sluice/delta/schema_evolution.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/transaction.h"

namespace sluice::delta {

enum class WriteMode { kAppend, kOverwrite };

struct WriteOptions {
  DataFileOptions file;
  SchemaMode schema_mode = SchemaMode::kStrict;
  WriteMode mode = WriteMode::kAppend;
  // Used when the write creates the table.
  std::vector<std::string> partition_columns;
  // CLUSTER BY columns (paths, checked by delta::check_clustering_column): the new table gets
  // the clustering feature and the delta.clustering domain (delta/clustering.h).
  std::vector<std::vector<std::string>> clustering_columns;
  std::string table_name;
  std::optional<std::string> description;
  std::map<std::string, std::string> configuration;
  // Evaluates the table's CHECK constraints (delta.constraints.*) on every batch. A table
  // with constraints is refused when this is null: sluice never writes past a constraint.
  std::shared_ptr<const ConstraintCompiler> constraints;
};

class TableWriter {
 public:
  // `snapshot` is the table's current state, or null to create the table.
  static arrow::Result<std::unique_ptr<TableWriter>> make(std::shared_ptr<LogStore> store,
                                                          std::shared_ptr<const Snapshot> snapshot,
                                                          const arrow::Schema& data_schema,
                                                          WriteOptions options);
  ~TableWriter();

  // The table's schema after this write (evolved if new columns came).
  const std::shared_ptr<arrow::Schema>& table_schema() const { return table_schema_; }
  // Conforms the batch to the table schema, checks NOT NULL columns and CHECK constraints
  // (a violation writes nothing of the batch; abort() removes what earlier batches wrote),
  // then writes it.
  arrow::Status write(const arrow::RecordBatch& batch);
  int64_t rows_written() const { return rows_; }
  int64_t bytes_written() const;

  // Closes every file and returns the transaction to commit: the adds, plus metadata and
  // protocol for a new or evolved table, plus removes of every live file for an overwrite.
  arrow::Result<Transaction> finish();
  // Deletes the files written so far.
  void abort();

 private:
  TableWriter() = default;
  struct OpenFile {
    PartitionValues values;
    std::unique_ptr<DataFileWriter> writer;
  };
  arrow::Status write_partition(const std::string& dir, const PartitionValues& values,
                                const arrow::RecordBatch& data);
  arrow::Status close_file(OpenFile& file);

  std::shared_ptr<LogStore> store_;
  std::shared_ptr<const Snapshot> snapshot_;
  WriteOptions options_;
  std::shared_ptr<arrow::Schema> table_schema_;
  std::shared_ptr<arrow::Schema> file_schema_;  // table schema without partition columns
  std::unique_ptr<ConstraintChecker> checker_;  // null when the table has no constraints
  std::vector<std::string> partition_columns_;
  std::vector<int> partition_indices_;  // in table_schema_
  std::vector<int> data_indices_;       // in table_schema_
  bool schema_changed_ = false;
  std::map<std::string, OpenFile> open_;  // by partition directory
  std::unique_ptr<ParallelFileWriter> unpartitioned_;
  std::vector<Add> done_;
  int64_t rows_ = 0;
  int64_t closed_bytes_ = 0;
};

}  // namespace sluice::delta
