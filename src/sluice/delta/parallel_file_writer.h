// Writes the batches of one table directory into data files on several threads at once
// ("lanes", one Parquet file in progress each), so Parquet encoding and compression use every
// core. Small writes stay on one lane and so in one file.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/data_file_writer.h"

namespace sluice::delta {

class ParallelFileWriter {
 public:
  // `lanes` threads at most; a second lane starts once `spread_after_rows` rows came in.
  ParallelFileWriter(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path table_root,
                     std::string relative_dir,
                     std::shared_ptr<arrow::Schema> schema, DataFileOptions options, int lanes,
                     int64_t spread_after_rows);
  ~ParallelFileWriter();  // aborts what was not finished

  // Queues a batch (blocks while the chosen lane's queue is full). Returns the first error
  // any lane hit so far.
  arrow::Status write(std::shared_ptr<arrow::RecordBatch> batch);
  int64_t bytes_written() const;

  // Waits for every lane, closes their files and returns the add actions.
  arrow::Result<std::vector<Add>> finish();
  // Stops the lanes and deletes every file they wrote.
  void abort();

 private:
  struct Lane;
  void run_lane(Lane& lane);
  // Writes `batch` into the lane's files, closing each at its target (on the lane's thread).
  arrow::Status write_rolling(Lane& lane, const arrow::RecordBatch& batch);
  void stop_lanes();

  const std::shared_ptr<storage::ObjectStore> objects_;
  const std::filesystem::path table_root_;
  const std::string relative_dir_;
  const std::shared_ptr<arrow::Schema> schema_;
  const DataFileOptions options_;
  const int max_lanes_;
  const int64_t spread_after_rows_;
  std::vector<std::unique_ptr<Lane>> lanes_;  // touched by the caller's thread only
  int64_t rows_in_ = 0;
  size_t next_lane_ = 0;
};

}  // namespace sluice::delta
