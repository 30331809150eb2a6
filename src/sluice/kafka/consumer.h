// RAII wrapper over librdkafka's KafkaConsumer: topic metadata, watermarks, offsets by
// timestamp, explicit assignment or consumer-group membership (cooperative rebalancing),
// message polling, seeks, offset commits.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/kafka/record_fingerprint.h"
#include "sluice/kafka/record_source.h"
#include "sluice/kafka/record_view.h"

struct rd_kafka_message_s;
struct rd_kafka_queue_s;

namespace RdKafka {
class KafkaConsumer;
class Metadata;
class Message;
}  // namespace RdKafka

namespace sluice::kafka {

enum class RevokeKind { kRevoked, kLost };

// Told by a group member's consumer when the group moves partitions. Called on the thread
// that calls Consumer::poll (or the destructor), from inside librdkafka's rebalance callback.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // Partitions this member now owns; returns where to start each of them (a partition left
  // out is assigned later by the caller with Consumer::add_partitions).
  virtual std::vector<PartitionStart> on_assigned(const std::vector<TopicPartitionId>& added) = 0;
  // Partitions taken away (kRevoked: cleanly, the listener may still commit their work;
  // kLost: another member may already own them). They are released when this returns.
  virtual void on_revoked(const std::vector<TopicPartitionId>& removed, RevokeKind kind) = 0;
};

// True when a librdkafka error event (code `code`, text `text`) is the broker refusing the
// login, which no retry can change. A SASL exchange that failed locally ("SaslAuthenticateRequest
// failed: Local: Broker transport failure", timed out, disconnected) is a broker that went away.
bool is_login_refusal(int code, std::string_view text);

// What to check when a login with these properties is refused, by sasl.mechanism(s).
std::string login_advice(const KafkaProperties& properties);

// What a TLS failure reported by librdkafka (its error/log text) means for the connection.
enum class TlsFailure {
  kNone,                   // not a TLS failure
  kBrokerNotTrusted,       // the broker's certificate failed verification on our side
  kClientCertRefused,      // the broker refused our certificate, or wanted one we did not send
  kOther,                  // a handshake that broke off (broker restarting, network): retryable
};
TlsFailure classify_tls_failure(int code, std::string_view text);

// The error text for a TLS failure of `kind` (not kNone): the cause and what to set, given
// the client's properties (a missing client certificate is told from a refused one).
std::string tls_advice(TlsFailure kind, const KafkaProperties& properties);

class EventLog;  // collects librdkafka's log/error events (defined in consumer.cc)
class RebalanceAdapter;  // librdkafka's rebalance callback -> RebalanceListener

class Consumer : public RecordSource {
 public:
  // `cluster_name` names the cluster in errors.
  static arrow::Result<std::unique_ptr<Consumer>> make(const std::string& cluster_name,
                                                       const KafkaProperties& properties,
                                                       const std::string& group_id);
  // A consumer-group member using cooperative-sticky assignment (unless the properties
  // choose another partition.assignment.strategy); `listener` must outlive the consumer or be
  // replaced with set_listener(nullptr) first.
  static arrow::Result<std::unique_ptr<Consumer>> make_group_member(
      const std::string& cluster_name, const KafkaProperties& properties,
      const std::string& group_id, RebalanceListener* listener);
  // A consumer that reads single records (fingerprints_at): it does not hold a fetch open at the
  // end of a partition, which would delay its next read by librdkafka's 500 ms fetch wait.
  static arrow::Result<std::unique_ptr<Consumer>> make_record_reader(const std::string& cluster_name,
                                                                     const KafkaProperties& properties,
                                                                     const std::string& group_id);
  ~Consumer() override;

  // Joins the group for these topics; a name starting with '^' is a regular expression.
  arrow::Status subscribe(const std::vector<std::string>& topics);
  void set_listener(RebalanceListener* listener);
  // Partitions this consumer reads now.
  arrow::Result<std::vector<TopicPartitionId>> assignment();
  // Adds partitions to the current assignment (outside a rebalance, e.g. ones the listener
  // could not start when they were assigned).
  arrow::Status add_partitions(const std::vector<PartitionStart>& starts);
  // Assigns an assigned partition anew at `start`: where seek() fails, after librdkafka stopped
  // the partition on an error (an offset out of range).
  arrow::Status reassign(const PartitionStart& start) override;
  // Moves the read position of an assigned partition.
  arrow::Status seek(const PartitionStart& start, std::chrono::milliseconds timeout);

  // Names of the cluster's topics (without internal ones such as __consumer_offsets).
  arrow::Result<std::vector<std::string>> topics(std::chrono::milliseconds timeout) override;
  // Per partition, the first offset whose record timestamp is >= the given time (ms since
  // the epoch); the high-water mark when no record is that new.
  arrow::Result<std::map<KafkaPartition, KafkaOffset>> offsets_for_times(
      const std::string& topic, const std::map<KafkaPartition, int64_t>& timestamps_ms,
      std::chrono::milliseconds timeout) override;

  // The partitions of `topic`. Errors name the topic or the unreachable brokers.
  arrow::Result<std::vector<KafkaPartition>> partitions(const std::string& topic,
                                                        std::chrono::milliseconds timeout) override;
  arrow::Result<Watermarks> watermarks(const std::string& topic, KafkaPartition partition,
                                       std::chrono::milliseconds timeout) override;
  // The watermarks of an assigned partition as the last fetch response told them, without
  // asking the broker; none before the first response. `low` is 0 where it was not told.
  std::optional<Watermarks> cached_watermarks(const std::string& topic, KafkaPartition partition);
  arrow::Status assign(const std::vector<PartitionStart>& starts) override;
  // The fingerprint of the record at exactly each of these offsets; empty for a partition
  // with no record there (compacted away, expired, a transaction marker, past the end).
  // Assigns these partitions and leaves the consumer with no assignment: for a record reader.
  // Waits up to `timeout` for the answers (then a retryable IOError naming the partitions).
  arrow::Result<std::map<TopicPartitionId, std::optional<RecordFingerprint>>> fingerprints_at(
      const std::vector<PartitionStart>& offsets, std::chrono::milliseconds timeout) override;
  // The next message or event (EOF, error), or null on timeout.
  std::unique_ptr<RdKafka::Message> poll(std::chrono::milliseconds timeout);
  // Up to `max` messages or events into `out` (cleared first): what is queued, else the first
  // one to arrive within `timeout`. One queue pop for many messages, where poll() takes a
  // lock, reads the clock and wraps each message. Rebalance callbacks run inside, as in poll().
  // A batch (max > 1) leaves librdkafka's own position (used when a rebalance resumes a
  // partition) one past any partition-EOF event in it (librdkafka#4844): a group member takes
  // one message at a time, or seeks after each rebalance.
  void poll_batch(std::chrono::milliseconds timeout, size_t max, PolledMessages& out) override;
  // Commits consumer-group offsets (for lag monitoring; not the source of truth).
  arrow::Status commit_offsets(const std::vector<PartitionStart>& next_offsets) override;

  const std::string& bootstrap_servers() const { return bootstrap_; }
  std::string recent_errors() const override;

 private:
  Consumer() = default;
  // Metadata of every topic; an unreachable cluster is a retryable IOError naming it.
  arrow::Result<std::unique_ptr<RdKafka::Metadata>> all_topics_metadata(std::chrono::milliseconds timeout);
  // Why a request failed with librdkafka error `code`: a refused login or certificate
  // (fatal), else the cluster unreachable (retryable when the code says it may pass).
  arrow::Status connection_error(int code, std::chrono::milliseconds timeout) const;
  static arrow::Result<std::unique_ptr<Consumer>> make_impl(const std::string& cluster_name,
                                                            const KafkaProperties& properties,
                                                            const std::string& group_id,
                                                            RebalanceListener* listener);
  std::string cluster_name_;
  std::string bootstrap_;
  std::string login_advice_;  // what to check when the broker refuses the login (by mechanism)
  KafkaProperties tls_properties_;  // the ssl.* properties, for tls_advice (no secrets kept)
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<RebalanceAdapter> rebalance_;  // declared before consumer_: outlives it
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  rd_kafka_queue_s* queue_ = nullptr;  // consumer_'s message queue, for poll_batch
};

}  // namespace sluice::kafka
