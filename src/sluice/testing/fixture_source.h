// Kafka records from `sluice test` fixtures behind kafka::RecordSource: the Kafka flow reads
// them exactly as it reads a broker (offsets, end-of-partition events, progress in txn
// actions), so a test runs the same operators and the same commit path as `sluice run --once`.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sluice/kafka/record_source.h"
#include "sluice/testing/fixture.h"

namespace sluice::testing {

// Every record of a case, by topic and partition in the order given; offsets count from 0 per
// partition. Only the batches up to the visible one are in the topics (their high-water
// marks), so each update reads the next batch. Read by the flows' threads at once; the
// visible batch changes only between updates.
class FixtureTopics : public kafka::RecordSourceFactory {
 public:
  // `topics_read`: topics the pipeline reads that the case may give no record of (empty topics,
  // one partition).
  FixtureTopics(const std::vector<FixtureBatch>& batches, const std::set<std::string>& topics_read);

  // Makes the records of batches [0, n) visible.
  void show_batches(size_t n) { visible_ = n; }

  arrow::Result<std::unique_ptr<kafka::RecordSource>> reader(const std::string& cluster,
                                                             const kafka::KafkaProperties& properties,
                                                             const std::string& group_id) override;
  arrow::Result<std::unique_ptr<kafka::RecordSource>> record_reader(const std::string& cluster,
                                                                    const kafka::KafkaProperties& properties,
                                                                    const std::string& group_id) override;

  struct Record {
    std::optional<std::string> key, value;
    int64_t timestamp_ms = 0;
    kafka::RecordView::PlainHeaders headers;
    size_t batch = 0;  // the batch that gives it
  };
  using Partitions = std::map<int32_t, std::vector<Record>>;

  const std::map<std::string, Partitions>& topics() const { return topics_; }
  size_t visible() const { return visible_; }

 private:
  std::map<std::string, Partitions> topics_;
  std::atomic<size_t> visible_{0};
};

}  // namespace sluice::testing
