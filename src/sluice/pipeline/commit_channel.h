// The in-process handoff of a streaming table's rows to the one flow of the same run that reads
// the table (STREAM(t)): the rows as its writer writes them, then whether their commit landed
// and as which version, through a queue bounded in bytes (docs/decisions.md "Bronze's batches
// handed to silver in process").
#pragma once

#include <arrow/record_batch.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace sluice::pipeline {

// One table's channel. Thread-safe: the publisher (the table's StreamingCommit, on its flow's
// thread and its stage thread) and the one consumer (the reading flow's thread); `mutex_` guards
// every field. A batch that would take the queue over its budget waits for the consumer, only
// while one is attached and only as long as it takes a batch at least every kStuckAfter; else
// the commit in progress is lost (the consumer reads that version from its files). A consumer
// that ended (done or failed) never holds the publisher up.
class CommitChannel {
 public:
  struct Event {
    enum class Kind {
      kBegin,      // a writer opened on top of `version` (-1: the table does not exist yet)
      kBatch,      // rows written for the commit in progress, in the order they were written
      kCommitted,  // the commit in progress landed as `version`
      kLost,       // the commit in progress failed, was dropped, or overflowed the budget
      kClosed,     // the table's run ended: nothing more comes
    };
    Kind kind = Kind::kClosed;
    int64_t version = -1;
    std::shared_ptr<arrow::RecordBatch> batch;
  };

  // A consumer that takes no batch for this long while the queue is full is left behind.
  static constexpr std::chrono::milliseconds kStuckAfter{5000};

  CommitChannel(std::string table, std::string consumer_flow, int64_t budget_bytes);

  // Publisher side (StreamingCommit).
  void begin(int64_t base_version);
  void write(const std::shared_ptr<arrow::RecordBatch>& batch);
  void committed(int64_t version);
  void lost();
  void close();

  // Consumer side: attach() when it starts taking events, detach() when it ends (from then on
  // the publisher queues nothing).
  void attach();
  void detach();
  // The next event, waiting until the publisher sends one (it always ends with
  // kClosed, sent when the table's run ends, failed or not).
  Event next();

  const std::string& table() const { return table_; }
  // The one flow that takes the rows.
  const std::string& consumer_flow() const { return consumer_flow_; }
  // Commits lost because the queue was full.
  int64_t overflows() const;

 private:
  void push(Event event);  // under mutex_

  const std::string table_;
  const std::string consumer_flow_;
  const int64_t budget_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Event> events_;
  int64_t queued_bytes_ = 0;  // of the kBatch events in `events_`
  bool in_commit_ = false;    // between begin and committed/lost
  bool dropping_ = false;     // the commit in progress overflowed: its batches are not queued
  bool closed_ = false;
  bool attached_ = false;
  bool detached_ = false;
  int64_t overflows_ = 0;
};

// The channels of one triggered run, by table. Opened before the run starts (one thread), then
// only looked up: thread-safe after that.
class CommitChannels {
 public:
  explicit CommitChannels(int64_t budget_bytes) : budget_bytes_(budget_bytes) {}
  // The channel of `table`'s rows to flow `consumer_flow`.
  CommitChannel* open(const std::string& table, const std::string& consumer_flow);
  // The channel `table`'s commits publish to; null when it has none in this run.
  CommitChannel* find(const std::string& table) const;
  // The channel flow `consumer_flow` takes `table`'s rows from; null when it reads files.
  CommitChannel* find(const std::string& table, const std::string& consumer_flow) const;
  // Ends every channel (a run that stopped before some table ran).
  void close_all();

 private:
  int64_t budget_bytes_;
  std::map<std::string, std::unique_ptr<CommitChannel>> channels_;
};

}  // namespace sluice::pipeline
