// Multi-threaded data file writing.
#include "sluice/delta/parallel_file_writer.h"

#include <arrow/record_batch.h>

#include <algorithm>

#include "sluice/common/status.h"

namespace sluice::delta {

namespace {
// Batches waiting per lane: one keeps a lane busy while the caller produces the next; each is
// up to a 64 Ki-row batch (~15 MB of Kafka rows), so more only holds memory.
constexpr size_t kMaxQueuedBatches = 1;
}

// One writer thread. Shared between the caller and the lane's thread; `mutex` guards
// `queue`, `closing`, `status`, `done`, `open_bytes`; `writer` and `closed_bytes` are
// touched by the lane thread only until the thread is joined.
struct ParallelFileWriter::Lane {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::shared_ptr<arrow::RecordBatch>> queue;
  bool closing = false;
  arrow::Status status;
  std::vector<Add> done;
  int64_t open_bytes = 0;
  int64_t closed_bytes = 0;
  std::unique_ptr<DataFileWriter> writer;
  std::thread thread;
};

ParallelFileWriter::ParallelFileWriter(std::shared_ptr<storage::ObjectStore> objects,
                                       std::filesystem::path table_root, std::string relative_dir,
                                       std::shared_ptr<arrow::Schema> schema,
                                       DataFileOptions options, int lanes,
                                       int64_t spread_after_rows)
    : objects_(std::move(objects)),
      table_root_(std::move(table_root)),
      relative_dir_(std::move(relative_dir)),
      schema_(std::move(schema)),
      options_(options),
      max_lanes_(std::max(1, lanes)),
      spread_after_rows_(spread_after_rows) {}

ParallelFileWriter::~ParallelFileWriter() { abort(); }

void ParallelFileWriter::run_lane(Lane& lane) {
  auto fail = [&](arrow::Status st) {
    std::lock_guard lock(lane.mutex);
    if (lane.status.ok()) lane.status = std::move(st);
    lane.queue.clear();
    lane.cv.notify_all();
  };
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    {
      std::unique_lock lock(lane.mutex);
      lane.cv.wait(lock, [&] { return !lane.queue.empty() || lane.closing; });
      if (lane.queue.empty()) break;  // closing and drained
      batch = std::move(lane.queue.front());
      lane.queue.pop_front();
      lane.cv.notify_all();  // room in the queue
      if (!lane.status.ok()) continue;
    }
    if (auto st = write_rolling(lane, *batch); !st.ok()) {
      fail(st);
      continue;
    }
    std::lock_guard lock(lane.mutex);
    lane.open_bytes = lane.writer ? lane.writer->bytes_written() : 0;
  }
  // Closing: finish the open file unless the lane failed.
  bool ok;
  {
    std::lock_guard lock(lane.mutex);
    ok = lane.status.ok();
  }
  if (lane.writer && ok) {
    auto add = lane.writer->close();
    lane.writer.reset();
    std::lock_guard lock(lane.mutex);
    if (!add.ok()) {
      lane.status = add.status();
    } else {
      lane.closed_bytes += add->size;
      lane.done.push_back(std::move(*add));
    }
  }
}

arrow::Status ParallelFileWriter::write_rolling(Lane& lane, const arrow::RecordBatch& batch) {
  // A batch is cut where max_rows_per_file ends a file, so files hold at most that many rows.
  int64_t offset = 0;
  while (offset < batch.num_rows()) {
    if (!lane.writer) {
      ARROW_ASSIGN_OR_RAISE(lane.writer, DataFileWriter::make(objects_, table_root_, relative_dir_, schema_, options_));
    }
    const int64_t length = std::min(batch.num_rows() - offset, lane.writer->rows_left());
    ARROW_RETURN_NOT_OK(lane.writer->write(length == batch.num_rows() ? batch : *batch.Slice(offset, length)));
    offset += length;
    if (lane.writer->reached_target()) {
      auto add = lane.writer->close();
      lane.writer.reset();
      ARROW_RETURN_NOT_OK(add.status());
      std::lock_guard lock(lane.mutex);
      lane.closed_bytes += add->size;
      lane.done.push_back(std::move(*add));
    }
  }
  return arrow::Status::OK();
}

arrow::Status ParallelFileWriter::write(std::shared_ptr<arrow::RecordBatch> batch) {
  if (batch->num_rows() == 0) return arrow::Status::OK();
  const bool may_spread = rows_in_ >= spread_after_rows_;
  rows_in_ += batch->num_rows();
  if (lanes_.empty() || (may_spread && static_cast<int>(lanes_.size()) < max_lanes_)) {
    auto lane = std::make_unique<Lane>();
    Lane* raw = lane.get();
    lane->thread = std::thread([this, raw] { run_lane(*raw); });
    lanes_.push_back(std::move(lane));
  }
  Lane& lane = *lanes_[may_spread ? next_lane_++ % lanes_.size() : 0];
  std::unique_lock lock(lane.mutex);
  lane.cv.wait(lock, [&] { return lane.queue.size() < kMaxQueuedBatches || !lane.status.ok(); });
  if (!lane.status.ok()) return lane.status;
  lane.queue.push_back(std::move(batch));
  lane.cv.notify_all();
  return arrow::Status::OK();
}

int64_t ParallelFileWriter::bytes_written() const {
  int64_t total = 0;
  for (const auto& lane : lanes_) {
    std::lock_guard lock(lane->mutex);
    total += lane->closed_bytes + lane->open_bytes;
  }
  return total;
}

void ParallelFileWriter::stop_lanes() {
  for (auto& lane : lanes_) {
    {
      std::lock_guard lock(lane->mutex);
      lane->closing = true;
    }
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
}

arrow::Result<std::vector<Add>> ParallelFileWriter::finish() {
  stop_lanes();
  std::vector<Add> adds;
  arrow::Status first_error;
  for (auto& lane : lanes_) {
    if (!lane->status.ok() && first_error.ok()) first_error = lane->status;
    for (auto& a : lane->done) adds.push_back(std::move(a));
    lane->done.clear();
  }
  lanes_.clear();
  if (!first_error.ok()) {
    remove_data_files(*objects_, table_root_, adds);
    return first_error;
  }
  return adds;
}

void ParallelFileWriter::abort() {
  if (lanes_.empty()) return;
  for (auto& lane : lanes_) {
    std::lock_guard lock(lane->mutex);
    lane->queue.clear();
    if (lane->status.ok()) lane->status = arrow::Status::Cancelled("aborted");
  }
  stop_lanes();
  for (auto& lane : lanes_) {
    if (lane->writer) lane->writer->abort();
    remove_data_files(*objects_, table_root_, lane->done);
  }
  lanes_.clear();
}

}  // namespace sluice::delta
