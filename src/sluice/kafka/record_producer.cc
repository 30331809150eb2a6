// The one-record producer (record_producer.h) over librdkafka's C API.
#include "sluice/kafka/record_producer.h"

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/kafka/client_properties.h"

namespace sluice::kafka {

struct RecordProducer::Impl {
  std::string cluster;
  std::vector<std::string> secrets;
  rd_kafka_t* rk = nullptr;
  std::mutex mutex;  // guards last_error and outcomes (librdkafka's threads call back)
  std::string last_error;
  // Outcome of each record sent, by its sequence number (the record's opaque): a record given up
  // on may still be reported later, so the callback never points into a caller's frame.
  std::map<intptr_t, rd_kafka_resp_err_t> outcomes;
  intptr_t next_seq = 1;

  ~Impl() {
    if (rk) rd_kafka_destroy(rk);
  }
  std::string scrub(std::string_view text) const { return redact_values(text, secrets); }
};

RecordProducer::RecordProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordProducer::~RecordProducer() = default;

arrow::Result<std::unique_ptr<RecordProducer>> RecordProducer::make(const std::string& cluster_name,
                                                                    const KafkaProperties& properties) {
  auto impl = std::make_unique<Impl>();
  impl->cluster = cluster_name;
  impl->secrets = remembered_secrets();
  for (const auto& [k, v] : properties) {
    const bool path = k.size() > 9 && k.compare(k.size() - 9, 9, ".location") == 0;
    if (looks_secret(k) && !path) impl->secrets.push_back(v);
  }
  std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> conf(rd_kafka_conf_new(), &rd_kafka_conf_destroy);
  auto set = [&](const std::string& key, const std::string& value) -> arrow::Status {
    char err[512] = {0};
    const auto res = rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err);
    if (res == RD_KAFKA_CONF_OK) return arrow::Status::OK();
    return with_context(property_rejected(key, value, res == RD_KAFKA_CONF_UNKNOWN, err),
                        fmt::format("Kafka cluster '{}'", cluster_name));
  };
  ARROW_RETURN_NOT_OK(set("client.id", "sluice-alerts"));
  for (const auto& [k, v] : properties) {
    // A consumer's settings in the cluster's properties mean nothing to a producer.
    if (k == "group.id" || k == "auto.offset.reset" || k == "enable.auto.commit" || k == "isolation.level" ||
        k.rfind("queued.", 0) == 0 || k.rfind("fetch.", 0) == 0 || k == "group.instance.id") {
      continue;
    }
    ARROW_RETURN_NOT_OK(set(k, v));
  }
  ARROW_RETURN_NOT_OK(set("enable.idempotence", "true"));
  ARROW_RETURN_NOT_OK(set("linger.ms", "0"));
  rd_kafka_conf_set_opaque(conf.get(), impl.get());
  rd_kafka_conf_set_error_cb(conf.get(), [](rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    std::lock_guard lock(self->mutex);
    self->last_error = fmt::format("{}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                                   self->scrub(reason));
  });
  rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t*, int, const char*, const char*) {});
  rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    std::lock_guard lock(self->mutex);
    self->outcomes[reinterpret_cast<intptr_t>(m->_private)] = m->err;
  });
  char err[512] = {0};
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (!impl->rk) return invalid("Kafka cluster '{}': cannot create a producer: {}", cluster_name, impl->scrub(err));
  conf.release();  // rd_kafka_new owns it now
  return std::unique_ptr<RecordProducer>(new RecordProducer(std::move(impl)));
}

arrow::Status RecordProducer::send(const std::string& topic, std::string_view key, std::string_view value,
                                   std::chrono::milliseconds timeout) {
  intptr_t seq = 0;
  {
    std::lock_guard lock(impl_->mutex);
    seq = impl_->next_seq++;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto code = rd_kafka_producev(impl_->rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                                RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(seq)), RD_KAFKA_V_END);
  if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return io_error("Kafka cluster '{}', topic '{}': cannot queue the record: {}", impl_->cluster, topic,
                    rd_kafka_err2str(code));
  }
  auto outcome = [&]() -> std::optional<rd_kafka_resp_err_t> {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->outcomes.find(seq);
    if (it == impl_->outcomes.end()) return std::nullopt;
    auto err = it->second;
    impl_->outcomes.erase(it);
    return err;
  };
  std::optional<rd_kafka_resp_err_t> err;
  while (!(err = outcome())) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    rd_kafka_poll(impl_->rk, static_cast<int>(std::min<int64_t>(left.count(), 100)));
  }
  if (!err) {
    // Not sent on: a later alert should not queue behind it. Its late report is dropped below.
    rd_kafka_purge(impl_->rk, RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_poll(impl_->rk, 0);
    std::string recent;
    {
      std::lock_guard lock(impl_->mutex);
      recent = impl_->last_error;
      impl_->outcomes.clear();
    }
    return io_error("Kafka cluster '{}', topic '{}': the broker did not acknowledge the record within {} ms{}",
                    impl_->cluster, topic, timeout.count(), recent.empty() ? "" : " (" + recent + ")");
  }
  if (*err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return io_error("Kafka cluster '{}', topic '{}': the broker refused the record: {}", impl_->cluster, topic,
                    rd_kafka_err2str(*err));
  }
  return arrow::Status::OK();
}

}  // namespace sluice::kafka
