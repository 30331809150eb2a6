// Fixture records read as a Kafka cluster (fixture_source.h).
#include "sluice/testing/fixture_source.h"

#include <fmt/format.h>

namespace sluice::testing {

namespace {

// One flow's reader: an assignment and a read position per partition, over the shared records.
class FixtureReader : public kafka::RecordSource {
 public:
  explicit FixtureReader(const FixtureTopics& topics) : topics_(topics) {}

  arrow::Result<std::vector<std::string>> topics(std::chrono::milliseconds) override {
    std::vector<std::string> out;
    for (const auto& [name, _] : topics_.topics()) out.push_back(name);
    return out;
  }

  arrow::Result<std::vector<KafkaPartition>> partitions(const std::string& topic, std::chrono::milliseconds) override {
    ARROW_ASSIGN_OR_RAISE(const auto* parts, find(topic));
    std::vector<KafkaPartition> out;
    for (const auto& [p, _] : *parts) out.emplace_back(p);
    return out;
  }

  arrow::Result<kafka::Watermarks> watermarks(const std::string& topic, KafkaPartition partition,
                                              std::chrono::milliseconds) override {
    return kafka::Watermarks{KafkaOffset(0), KafkaOffset(high(topic, partition))};
  }

  arrow::Result<std::map<KafkaPartition, KafkaOffset>> offsets_for_times(
      const std::string& topic, const std::map<KafkaPartition, int64_t>& timestamps_ms,
      std::chrono::milliseconds) override {
    std::map<KafkaPartition, KafkaOffset> out;
    for (const auto& [p, ts] : timestamps_ms) {
      const auto* records = records_of(topic, p);
      const int64_t end = high(topic, p);
      int64_t at = end;
      for (int64_t o = 0; records != nullptr && o < end; ++o) {
        if ((*records)[o].timestamp_ms >= ts) {
          at = o;
          break;
        }
      }
      out[p] = KafkaOffset(at);
    }
    return out;
  }

  arrow::Status assign(const std::vector<kafka::PartitionStart>& starts) override {
    positions_.clear();
    for (const auto& s : starts) positions_[{s.topic, s.partition}] = s.offset.value();
    return arrow::Status::OK();
  }

  arrow::Status reassign(const kafka::PartitionStart& start) override {
    positions_[{start.topic, start.partition}] = start.offset.value();
    return arrow::Status::OK();
  }

  // Everything assigned up to the visible end at once, then each partition's end event.
  void poll_batch(std::chrono::milliseconds, size_t max, kafka::PolledMessages& out) override {
    out.clear();
    for (auto& [tp, next] : positions_) {
      const auto* records = records_of(tp.topic, tp.partition);
      const int64_t end = high(tp.topic, tp.partition);
      while (next < end && out.records().size() < max) {
        const auto& r = (*records)[next];
        kafka::RecordView v;
        v.kind = kafka::RecordKind::kRecord;
        v.topic = topic_name(tp.topic);
        v.partition = tp.partition;
        v.offset = KafkaOffset(next);
        v.timestamp_ms = r.timestamp_ms;
        v.timestamp_type = kafka::TimestampType::kCreateTime;
        if (r.key) v.key = std::string_view(*r.key);
        if (r.value) v.value = std::string_view(*r.value);
        if (!r.headers.empty()) v.set_plain_headers(&r.headers);
        out.add(v);
        ++next;
      }
      if (out.records().size() >= max) return;
      if (next >= end && !ended_.count(tp)) {
        kafka::RecordView eof;
        eof.kind = kafka::RecordKind::kPartitionEnd;
        eof.topic = topic_name(tp.topic);
        eof.partition = tp.partition;
        eof.offset = KafkaOffset(end);
        out.add(eof);
        ended_.insert(tp);
      }
    }
  }

  arrow::Result<std::map<kafka::TopicPartitionId, std::optional<kafka::RecordFingerprint>>> fingerprints_at(
      const std::vector<kafka::PartitionStart>& offsets, std::chrono::milliseconds) override {
    std::map<kafka::TopicPartitionId, std::optional<kafka::RecordFingerprint>> out;
    for (const auto& s : offsets) {
      const auto* records = records_of(s.topic, s.partition);
      auto& slot = out[{s.topic, s.partition}];
      if (records == nullptr || s.offset.value() < 0 || s.offset.value() >= high(s.topic, s.partition)) continue;
      const auto& r = (*records)[s.offset.value()];
      kafka::RecordView v;
      v.kind = kafka::RecordKind::kRecord;
      v.offset = s.offset;
      v.timestamp_ms = r.timestamp_ms;
      if (r.key) v.key = std::string_view(*r.key);
      if (r.value) v.value = std::string_view(*r.value);
      slot = kafka::fingerprint_of(v);
    }
    return out;
  }

  arrow::Status commit_offsets(const std::vector<kafka::PartitionStart>&) override { return arrow::Status::OK(); }
  std::string recent_errors() const override { return {}; }

 private:
  arrow::Result<const FixtureTopics::Partitions*> find(const std::string& topic) const {
    auto it = topics_.topics().find(topic);
    if (it == topics_.topics().end()) {
      return arrow::Status::Invalid(fmt::format("the test gives no topic '{}'", topic));
    }
    return &it->second;
  }
  const std::vector<FixtureTopics::Record>* records_of(const std::string& topic, KafkaPartition p) const {
    auto t = topics_.topics().find(topic);
    if (t == topics_.topics().end()) return nullptr;
    auto r = t->second.find(p.value());
    return r == t->second.end() ? nullptr : &r->second;
  }
  // The partition's end: its records of the visible batches (they come batch by batch).
  int64_t high(const std::string& topic, KafkaPartition p) const {
    const auto* records = records_of(topic, p);
    if (records == nullptr) return 0;
    int64_t n = 0;
    while (n < static_cast<int64_t>(records->size()) && (*records)[n].batch < topics_.visible()) ++n;
    return n;
  }
  // A view's topic must outlive the poll: the name held by the shared map.
  std::string_view topic_name(const std::string& topic) const { return topics_.topics().find(topic)->first; }

  const FixtureTopics& topics_;
  std::map<kafka::TopicPartitionId, int64_t> positions_;
  std::set<kafka::TopicPartitionId> ended_;
};

}  // namespace

FixtureTopics::FixtureTopics(const std::vector<FixtureBatch>& batches, const std::set<std::string>& topics_read) {
  for (const auto& t : topics_read) topics_[t][0];
  for (size_t b = 0; b < batches.size(); ++b) {
    for (const auto& r : batches[b].records) {
      auto& partitions = topics_[r.topic];
      // Partitions up to the highest one named exist (empty ones too), as in a real topic.
      for (int32_t p = 0; p <= r.partition; ++p) partitions[p];
      partitions[r.partition].push_back({r.key, r.value, r.timestamp_ms, r.headers, b});
    }
  }
}

arrow::Result<std::unique_ptr<kafka::RecordSource>> FixtureTopics::reader(const std::string&, const kafka::KafkaProperties&,
                                                                         const std::string&) {
  return std::make_unique<FixtureReader>(*this);
}

arrow::Result<std::unique_ptr<kafka::RecordSource>> FixtureTopics::record_reader(const std::string&,
                                                                                const kafka::KafkaProperties&,
                                                                                const std::string&) {
  return std::make_unique<FixtureReader>(*this);
}

}  // namespace sluice::testing
