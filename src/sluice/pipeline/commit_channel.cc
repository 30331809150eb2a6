// The in-process handoff of a streaming table's rows (commit_channel.h).
#include "sluice/pipeline/commit_channel.h"

#include <arrow/util/byte_size.h>

namespace sluice::pipeline {

CommitChannel::CommitChannel(std::string table, std::string consumer_flow, int64_t budget_bytes)
    : table_(std::move(table)), consumer_flow_(std::move(consumer_flow)), budget_bytes_(budget_bytes) {}

void CommitChannel::push(Event event) {
  events_.push_back(std::move(event));
  changed_.notify_all();
}

void CommitChannel::begin(int64_t base_version) {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  if (in_commit_ && !dropping_) push({Event::Kind::kLost, -1, nullptr});
  in_commit_ = true;
  dropping_ = false;
  push({Event::Kind::kBegin, base_version, nullptr});
}

void CommitChannel::write(const std::shared_ptr<arrow::RecordBatch>& batch) {
  std::unique_lock lock(mutex_);
  if (closed_ || !in_commit_ || dropping_ || detached_) return;
  // The buffers the batch holds (shared with the writer's copy until it encodes them).
  const int64_t bytes = static_cast<int64_t>(arrow::util::TotalBufferSize(*batch));
  auto fits = [&] { return queued_bytes_ + bytes <= budget_bytes_; };
  if (!fits() && attached_ && bytes <= budget_bytes_) {
    // A consumer at work: wait while it takes batches (a triggered run ends after it anyway),
    // not for one that is stuck or gone.
    changed_.wait_for(lock, kStuckAfter, [&] { return fits() || detached_ || closed_; });
    if (closed_ || detached_) return;
  }
  if (!fits()) {
    // This commit goes by its files. Its queued batches are dropped at once (the consumer
    // discards what it derived from them at kLost).
    while (!events_.empty() && events_.back().kind == Event::Kind::kBatch) {
      queued_bytes_ -= static_cast<int64_t>(arrow::util::TotalBufferSize(*events_.back().batch));
      events_.pop_back();
    }
    dropping_ = true;
    ++overflows_;
    push({Event::Kind::kLost, -1, nullptr});
    return;
  }
  queued_bytes_ += bytes;
  push({Event::Kind::kBatch, -1, batch});
}

void CommitChannel::committed(int64_t version) {
  std::lock_guard lock(mutex_);
  if (closed_ || !in_commit_) return;
  in_commit_ = false;
  if (dropping_) return;  // kLost was sent when it overflowed
  push({Event::Kind::kCommitted, version, nullptr});
}

void CommitChannel::lost() {
  std::lock_guard lock(mutex_);
  if (closed_ || !in_commit_) return;
  in_commit_ = false;
  if (dropping_) return;
  push({Event::Kind::kLost, -1, nullptr});
}

void CommitChannel::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  if (in_commit_ && !dropping_) push({Event::Kind::kLost, -1, nullptr});
  in_commit_ = false;
  closed_ = true;
  push({Event::Kind::kClosed, -1, nullptr});
}

void CommitChannel::attach() {
  std::lock_guard lock(mutex_);
  attached_ = true;
}

void CommitChannel::detach() {
  std::lock_guard lock(mutex_);
  detached_ = true;
  for (auto& event : events_) event.batch.reset();  // nobody reads them any more
  queued_bytes_ = 0;
  changed_.notify_all();
}

CommitChannel::Event CommitChannel::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !events_.empty(); });
  Event event = std::move(events_.front());
  events_.pop_front();
  if (event.kind == Event::Kind::kBatch && event.batch) {
    queued_bytes_ -= static_cast<int64_t>(arrow::util::TotalBufferSize(*event.batch));
    changed_.notify_all();  // room for a waiting publisher
  }
  if (event.kind == Event::Kind::kClosed) events_.push_back(event);  // later calls see it too
  return event;
}

int64_t CommitChannel::overflows() const {
  std::lock_guard lock(mutex_);
  return overflows_;
}

CommitChannel* CommitChannels::open(const std::string& table, const std::string& consumer_flow) {
  auto& channel = channels_[table];
  channel = std::make_unique<CommitChannel>(table, consumer_flow, budget_bytes_);
  return channel.get();
}

CommitChannel* CommitChannels::find(const std::string& table) const {
  auto it = channels_.find(table);
  return it == channels_.end() ? nullptr : it->second.get();
}

CommitChannel* CommitChannels::find(const std::string& table, const std::string& consumer_flow) const {
  auto* channel = find(table);
  return channel && channel->consumer_flow() == consumer_flow ? channel : nullptr;
}

void CommitChannels::close_all() {
  for (auto& [table, channel] : channels_) channel->close();
}

}  // namespace sluice::pipeline
