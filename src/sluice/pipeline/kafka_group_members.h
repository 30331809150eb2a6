// The Kafka consumers a pipeline keeps between the updates of its Kafka flows (make_kafka_group_members,
// kafka_ingest_flow.h): one consumer-group member per flow in subscribe mode, one assigned reader
// per flow in assign mode. Used by kafka_ingest_flow.cc only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/kafka/consumer.h"
#include "sluice/kafka/record_fingerprint.h"

namespace sluice::pipeline {

// One consumer-group member per flow; see kafka_ingest_flow.h.
class KafkaGroupMembers {
 public:
  // A subscribed consumer and what it delivers next per owned partition. Forwards rebalances
  // to the update in progress (`run`); between updates nothing polls, so only the final
  // revocation in the destructor arrives with no update running.
  struct Member : kafka::RebalanceListener {
    std::unique_ptr<kafka::Consumer> consumer;
    kafka::RebalanceListener* run = nullptr;
    // Where the last update that ended cleanly left each owned partition; empty after a failed one.
    std::map<kafka::TopicPartitionId, KafkaOffset> positions;
    std::vector<kafka::TopicPartitionId> unstarted;  // owned but not assigned locally yet
    // Set by every assignment change and failed update: the next rebase() seeks every partition.
    bool reseek = true;
    // Reads the records that check for re-created topics: a member cannot assign at will.
    std::unique_ptr<kafka::Consumer> probe;

    ~Member() override {
      if (consumer) consumer->set_listener(nullptr);
      consumer.reset();  // leaves the group: the others take the partitions over
    }
    std::vector<kafka::PartitionStart> on_assigned(
        const std::vector<kafka::TopicPartitionId>& added) override {
      if (run != nullptr) return run->on_assigned(added);
      unstarted.insert(unstarted.end(), added.begin(), added.end());
      return {};
    }
    void on_revoked(const std::vector<kafka::TopicPartitionId>& removed, kafka::RevokeKind kind) override {
      if (run != nullptr) run->on_revoked(removed, kind);
      for (const auto& tp : removed) {
        positions.erase(tp);
        std::erase(unstarted, tp);
      }
    }
  };

  std::map<std::string, std::unique_ptr<Member>> members;  // by pipeline/flow

  // Assign mode: the flow's consumer with its partitions assigned and its read position, so
  // the next update reads on from librdkafka's prefetch instead of connecting, asking for
  // metadata and watermarks and assigning again (docs/decisions.md "Kafka consumer kept").
  struct Reader {
    struct Position {
      KafkaOffset next;  // where the consumer delivers next = the offset the table recorded
      std::optional<kafka::RecordFingerprint> last_record;
    };
    std::unique_ptr<kafka::Consumer> consumer;
    std::unique_ptr<kafka::Consumer> probe;  // reads the records that check for re-created topics
    // Set by an update that ended cleanly; empty otherwise (the next one plans and assigns anew).
    std::map<kafka::TopicPartitionId, Position> positions;
    // The last full plan (topics, partitions, watermarks from the broker); the next one is due
    // kReplanInterval (kafka_ingest_flow.cc) later, or at once after an error event (replan_now).
    std::chrono::steady_clock::time_point planned_at;
    bool replan_now = true;
  };
  std::map<std::string, std::unique_ptr<Reader>> readers;  // by pipeline/flow
  // Guards the two maps (the flows of a continuous run run on threads of their own); each
  // entry is used by its flow's thread only.
  std::mutex mutex;

  template <typename T>
  std::unique_ptr<T>& slot(std::map<std::string, std::unique_ptr<T>>& of, const std::string& key) {
    std::lock_guard lock(mutex);
    return of[key];  // map references stay valid while other keys are added
  }
};

}  // namespace sluice::pipeline
