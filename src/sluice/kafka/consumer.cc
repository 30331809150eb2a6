// librdkafka consumer wrapper.
#include "sluice/kafka/consumer.h"

#include <librdkafka/rdkafkacpp.h>

#include <deque>

#include "sluice/common/status.h"

namespace sluice::kafka {

// Receives librdkafka events on its internal threads; keeps the last few error/log lines so
// our errors can say what the client saw (instead of librdkafka printing to stderr).
class EventLog : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    if (event.type() != RdKafka::Event::EVENT_ERROR && event.type() != RdKafka::Event::EVENT_LOG) {
      return;
    }
    if (event.type() == RdKafka::Event::EVENT_LOG && event.severity() > RdKafka::Event::EVENT_SEVERITY_WARNING) {
      return;
    }
    std::lock_guard lock(mutex_);
    recent_.push_back(event.str());
    if (recent_.size() > 5) recent_.pop_front();
  }
  std::string recent() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& s : recent_) {
      if (!out.empty()) out += "; ";
      out += s;
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;  // guards recent_
  std::deque<std::string> recent_;
};

namespace {

arrow::Status set_conf(RdKafka::Conf& conf, const std::string& key, const std::string& value,
                       const std::string& cluster) {
  std::string err;
  if (conf.set(key, value, err) != RdKafka::Conf::CONF_OK) {
    return invalid("Kafka cluster '{}': property '{}' = '{}' rejected: {}", cluster, key, value,
                   err);
  }
  return arrow::Status::OK();
}

// Errors that pass by themselves (continuous mode retries them): the broker is away, or a
// partition has no leader yet (a topic created a moment ago, a leader election).
bool is_unreachable(RdKafka::ErrorCode code) {
  return code == RdKafka::ERR__TRANSPORT || code == RdKafka::ERR__TIMED_OUT ||
         code == RdKafka::ERR__ALL_BROKERS_DOWN || code == RdKafka::ERR__RESOLVE ||
         code == RdKafka::ERR_NOT_LEADER_FOR_PARTITION || code == RdKafka::ERR_LEADER_NOT_AVAILABLE;
}

}  // namespace

arrow::Result<std::unique_ptr<Consumer>> Consumer::make(const std::string& cluster_name,
                                                        const KafkaProperties& properties,
                                                        const std::string& group_id) {
  std::unique_ptr<Consumer> c(new Consumer());
  c->cluster_name_ = cluster_name;
  c->events_ = std::make_unique<EventLog>();
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  // Our defaults first, so the user's properties override them.
  const KafkaProperties defaults = {
      {"group.id", group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"allow.auto.create.topics", "false"},
      {"client.id", "sluice"},
      {"fetch.max.bytes", "52428800"},
      // Prefetch bounded by bytes (256 MiB for the whole consumer), not by message count:
      // librdkafka before 2.2 stops fetching a partition whose queue holds
      // queued.min.messages (default 100,000 = 20 MB of 200-byte events) and looks again
      // only after a fixed 1 s, so a consumer faster than 100k messages/s per partition sat
      // idle most of the time (bronze read 5M events in 24 s; 4-7 s with this; BENCHMARKS.md).
      {"queued.max.messages.kbytes", "262144"},
      {"queued.min.messages", "1000000"},
      // 4 MiB per partition per fetch (default 1 MiB): fewer fetch round trips.
      {"max.partition.fetch.bytes", "4194304"},
  };
  for (const auto& [k, v] : defaults) ARROW_RETURN_NOT_OK(set_conf(*conf, k, v, cluster_name));
  // librdkafka >= 2.2 makes that 1 s wait configurable; older ones do not know the property.
  {
    std::string ignored;
    (void)conf->set("fetch.queue.backoff.ms", "10", ignored);
  }
  for (const auto& [k, v] : properties) ARROW_RETURN_NOT_OK(set_conf(*conf, k, v, cluster_name));
  auto it = properties.find("bootstrap.servers");
  if (it == properties.end()) {
    return invalid("Kafka cluster '{}' has no bootstrap.servers", cluster_name);
  }
  c->bootstrap_ = it->second;
  std::string err;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(c->events_.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return invalid("Kafka cluster '{}': {}", cluster_name, err);
  }
  c->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c->consumer_) return invalid("Kafka cluster '{}': cannot create consumer: {}", cluster_name, err);
  return c;
}

Consumer::~Consumer() {
  if (consumer_) consumer_->close();
}

std::string Consumer::recent_errors() const { return events_->recent(); }

arrow::Result<std::vector<KafkaPartition>> Consumer::partitions(const std::string& topic,
                                                                std::chrono::milliseconds timeout) {
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode code =
      consumer_->metadata(/*all_topics=*/true, nullptr, &raw, static_cast<int>(timeout.count()));
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (code != RdKafka::ERR_NO_ERROR) {
    auto status = io_error(
        "cannot reach Kafka cluster '{}' at {} within {} ms ({}{}{}); check bootstrap.servers "
        "and that the broker is running",
        cluster_name_, bootstrap_, timeout.count(), RdKafka::err2str(code),
        recent_errors().empty() ? "" : ": ", recent_errors());
    return is_unreachable(code) ? mark_retryable(status) : status;
  }
  std::vector<std::string> names;
  for (const auto* t : *metadata->topics()) {
    if (t->topic() != topic) {
      names.push_back(t->topic());
      continue;
    }
    if (t->err() != RdKafka::ERR_NO_ERROR) {
      return invalid("Kafka topic '{}' on cluster '{}' is not readable: {}", topic, cluster_name_,
                     RdKafka::err2str(t->err()));
    }
    std::vector<KafkaPartition> out;
    for (const auto* p : *t->partitions()) out.emplace_back(p->id());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string known;
  for (const auto& n : names) {
    if (n.rfind("__", 0) == 0) continue;  // internal topics
    known += known.empty() ? n : ", " + n;
  }
  return invalid("Kafka topic '{}' does not exist on cluster '{}' ({}); existing topics: {}",
                 topic, cluster_name_, bootstrap_, known.empty() ? "none" : known);
}

arrow::Result<Watermarks> Consumer::watermarks(const std::string& topic, KafkaPartition partition,
                                               std::chrono::milliseconds timeout) {
  int64_t low = 0, high = 0;
  RdKafka::ErrorCode code = consumer_->query_watermark_offsets(
      topic, partition.value(), &low, &high, static_cast<int>(timeout.count()));
  if (code != RdKafka::ERR_NO_ERROR) {
    auto status = io_error("cannot read offsets of Kafka {}[{}] on cluster '{}': {}", topic,
                           partition.value(), cluster_name_, RdKafka::err2str(code));
    return is_unreachable(code) ? mark_retryable(status) : status;
  }
  return Watermarks{KafkaOffset(low), KafkaOffset(high)};
}

arrow::Status Consumer::assign(const std::vector<PartitionStart>& starts) {
  std::vector<RdKafka::TopicPartition*> list;
  for (const auto& s : starts) {
    list.push_back(RdKafka::TopicPartition::create(s.topic, s.partition.value(), s.offset.value()));
  }
  RdKafka::ErrorCode code = consumer_->assign(list);
  RdKafka::TopicPartition::destroy(list);
  if (code != RdKafka::ERR_NO_ERROR) {
    return io_error("Kafka cluster '{}': assign failed: {}", cluster_name_, RdKafka::err2str(code));
  }
  return arrow::Status::OK();
}

std::unique_ptr<RdKafka::Message> Consumer::poll(std::chrono::milliseconds timeout) {
  std::unique_ptr<RdKafka::Message> m(consumer_->consume(static_cast<int>(timeout.count())));
  if (m && m->err() == RdKafka::ERR__TIMED_OUT) return nullptr;
  return m;
}

arrow::Status Consumer::commit_offsets(const std::vector<PartitionStart>& next_offsets) {
  std::vector<RdKafka::TopicPartition*> list;
  for (const auto& s : next_offsets) {
    list.push_back(RdKafka::TopicPartition::create(s.topic, s.partition.value(), s.offset.value()));
  }
  RdKafka::ErrorCode code = consumer_->commitSync(list);
  RdKafka::TopicPartition::destroy(list);
  if (code != RdKafka::ERR_NO_ERROR) {
    return mark_retryable(io_error("Kafka cluster '{}': offset commit failed: {}", cluster_name_,
                                   RdKafka::err2str(code)));
  }
  return arrow::Status::OK();
}

}  // namespace sluice::kafka
