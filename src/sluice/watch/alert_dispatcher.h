// Delivers alert transitions to their destinations (a webhook, a command, a Kafka topic) on one
// thread per destination, so a destination that hangs delays only its own deliveries and never
// the pipeline: send() only queues. Each delivery is bounded by its destination's timeout;
// failures are kept for the runner to record in the event log.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/kafka/consumer.h"
#include "sluice/watch/alert_rules.h"

namespace sluice::watch {

struct DeliveryFailure {
  std::string destination;
  std::string kind;  // webhook, command, kafka
  std::string rule;
  std::string dataset;
  std::string state;  // FIRING, RESOLVED
  std::string error;  // never a webhook's URL beyond its host
  int64_t at_ms = 0;
};

// What a destination receives: Slack's `{"text": ...}` and the alert's fields (the `alert`
// event's details), as one JSON object.
std::string alert_payload(const AlertTransition& transition);

// Thread-safe.
class AlertDispatcher {
 public:
  // One worker per destination of `config`; `clusters` are pipeline.yaml's Kafka clusters.
  static arrow::Result<std::unique_ptr<AlertDispatcher>> make(const AlertsConfig& config,
                                                              const std::map<std::string, kafka::KafkaProperties>& clusters);
  ~AlertDispatcher();
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;

  // Queues the transition to each of its destinations; never waits for a delivery.
  void send(const AlertTransition& transition);
  // The failures since the last call.
  std::vector<DeliveryFailure> take_failures();
  // Delivers what is queued and ends the workers, within `limit` as a whole: a delivery in flight
  // then is cut off and what is still queued is recorded as a failure, not delivered.
  void stop(std::chrono::milliseconds limit = kStopLimit);
  static constexpr std::chrono::milliseconds kStopLimit{10'000};

  struct Worker;

 private:
  AlertDispatcher() = default;
  std::map<std::string, std::unique_ptr<Worker>> workers_;  // by destination name
  std::shared_ptr<struct FailureBox> failures_;
};

// One delivery, on the caller's thread (the workers' step; tests call it directly).
arrow::Status deliver(const AlertDestination& destination, const std::string& payload, const std::string& key,
                      const std::map<std::string, kafka::KafkaProperties>& clusters);

}  // namespace sluice::watch
