// The transactional producer (transactional_producer.h) over librdkafka's C API.
#include "sluice/kafka/transactional_producer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/kafka/client_properties.h"

namespace sluice::kafka {

namespace {

int timeout_ms(std::chrono::milliseconds t) { return static_cast<int>(t.count()); }

// Errors that pass by themselves: the broker away, a leader moving, a coordinator loading.
bool passes(rd_kafka_resp_err_t code) {
  switch (code) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
      return true;
    default:
      return false;
  }
}

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)>;
using PartitionsPtr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)>;

}  // namespace

struct TransactionalProducer::Impl {
  std::string cluster;
  std::string bootstrap;
  std::string transactional_id;
  KafkaProperties properties;  // the user's, for the offsets reader and the advice
  std::vector<std::string> secrets;
  rd_kafka_t* rk = nullptr;
  bool in_transaction = false;

  std::mutex mutex;  // guards recent and delivery_error (librdkafka's threads call back)
  std::deque<std::string> recent;  // scrubbed error and log lines, newest last
  std::deque<std::pair<int, std::string>> recent_codes;  // the error events behind them
  std::string delivery_error;      // the first record the broker refused, scrubbed

  ~Impl() {
    if (rk) rd_kafka_destroy(rk);
  }

  std::string scrub(std::string_view text) const { return redact_values(text, secrets); }

  void remember(std::string line) {
    std::lock_guard lock(mutex);
    recent.push_back(std::move(line));
    if (recent.size() > 5) recent.pop_front();
  }
  std::string recent_errors() {
    std::lock_guard lock(mutex);
    std::string out;
    for (const auto& l : recent) out += (out.empty() ? "" : "; ") + l;
    return out;
  }

  // An error of `what` (init, begin, commit ...) as a Status: a refused login or certificate and
  // a fenced producer are fatal, a cluster away retryable; the text names the cluster.
  arrow::Status failed(const char* what, rd_kafka_resp_err_t code, const std::string& raw, bool retriable) {
    const auto text = scrub(raw);
    const auto where = fmt::format("Kafka cluster '{}' ({}), sink transactional.id '{}'", cluster, bootstrap,
                                   transactional_id);
    if (code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
        code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
      return invalid("{}: {} failed: another process took over this flow's transactional.id (a second run "
                     "of the pipeline?): {}", where, what, text);
    }
    auto recent = recent_errors();
    const auto all = text + (recent.empty() ? "" : " (" + recent + ")");
    if (is_login_refusal(code, all)) {
      return invalid("{}: authentication failed: {}; {}", where, all, login_advice(properties));
    }
    if (auto tls = classify_tls_failure(code, all); tls != TlsFailure::kNone && tls != TlsFailure::kOther) {
      return invalid("{}: TLS connection failed: {}", where, tls_advice(tls, properties));
    }
    if (code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
        code == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || code == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
      return invalid("{}: {} failed: not authorized ({}): grant the sink's principal WRITE on the topic, WRITE "
                     "and DESCRIBE on the transactional.id and READ on the progress group",
                     where, what, text);
    }
    auto st = io_error("{}: {} failed: {}", where, what, all);
    return retriable || passes(code) ? mark_retryable(st) : st;
  }
  arrow::Status failed(const char* what, rd_kafka_error_t* error) {
    auto st = failed(what, rd_kafka_error_code(error), rd_kafka_error_string(error),
                     rd_kafka_error_is_retriable(error) != 0);
    rd_kafka_error_destroy(error);
    return st;
  }

  // A refused login or certificate seen in librdkafka's error events: requests would only time
  // out after it, so callers ask between short waits instead of waiting for their deadline.
  std::optional<arrow::Status> refused_connection() {
    std::vector<std::pair<int, std::string>> events;
    {
      std::lock_guard lock(mutex);
      events.assign(recent_codes.begin(), recent_codes.end());
    }
    for (const auto& [code, text] : events) {
      auto tls = classify_tls_failure(code, text);
      if (is_login_refusal(code, text) || (tls != TlsFailure::kNone && tls != TlsFailure::kOther)) {
        return failed("connecting", static_cast<rd_kafka_resp_err_t>(code), text, false);
      }
    }
    return std::nullopt;
  }

  arrow::Status set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
    char err[512] = {0};
    const auto res = rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err);
    if (res == RD_KAFKA_CONF_OK) return arrow::Status::OK();
    return with_context(property_rejected(key, value, res == RD_KAFKA_CONF_UNKNOWN, err),
                        fmt::format("Kafka cluster '{}'", cluster));
  }

  // A configuration with our callbacks and `overrides` over the user's properties.
  arrow::Result<ConfPtr> conf(const KafkaProperties& defaults, const KafkaProperties& overrides) {
    ConfPtr c(rd_kafka_conf_new(), &rd_kafka_conf_destroy);
    for (const auto& [k, v] : defaults) ARROW_RETURN_NOT_OK(set(c.get(), k, v));
    for (const auto& [k, v] : properties) ARROW_RETURN_NOT_OK(set(c.get(), k, v));
    for (const auto& [k, v] : overrides) ARROW_RETURN_NOT_OK(set(c.get(), k, v));
    rd_kafka_conf_set_opaque(c.get(), this);
    rd_kafka_conf_set_error_cb(c.get(), [](rd_kafka_t*, int err, const char* reason, void* opaque) {
      auto* self = static_cast<Impl*>(opaque);
      auto text = self->scrub(reason);
      self->remember(fmt::format("{}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), text));
      std::lock_guard lock(self->mutex);
      self->recent_codes.emplace_back(err, std::move(text));
      if (self->recent_codes.size() > 5) self->recent_codes.pop_front();
    });
    const bool debug = properties.count("debug") != 0;
    using LogCallback = void (*)(const rd_kafka_t*, int, const char*, const char*);
    LogCallback print = [](const rd_kafka_t* rk, int, const char* fac, const char* buf) {
      auto* self = static_cast<Impl*>(rd_kafka_opaque(rk));
      std::fprintf(stderr, "sluice: librdkafka %s: %s\n", fac, self->scrub(buf).c_str());
    };
    LogCallback quiet = [](const rd_kafka_t*, int, const char*, const char*) {};
    rd_kafka_conf_set_log_cb(c.get(), debug ? print : quiet);
    return c;
  }
};

arrow::Result<std::optional<int32_t>> partition_for_key(const KafkaProperties& properties,
                                                        std::optional<std::string_view> key, int32_t partitions) {
  if (partitions <= 1) return std::optional<int32_t>(0);
  auto it = properties.find("partitioner");
  const std::string name = it == properties.end() ? "consistent_random" : it->second;
  // librdkafka's CONFIGURATION.md: consistent_random partitions empty and null keys at random,
  // murmur2_random and fnv1a_random only null keys; the others hash a null key as empty.
  const bool empty = !key || key->empty();
  if (name == "random" || (name == "consistent_random" && empty) ||
      ((name == "murmur2_random" || name == "fnv1a_random") && !key)) {
    return std::optional<int32_t>();
  }
  const void* data = key ? static_cast<const void*>(key->data()) : nullptr;
  const size_t size = key ? key->size() : 0;
  // The hashing partitioners read only the key (not the topic handle, which a test has none of).
  if (name == "consistent" || name == "consistent_random") {
    return std::optional<int32_t>(rd_kafka_msg_partitioner_consistent(nullptr, data, size, partitions, nullptr, nullptr));
  }
  if (name == "murmur2" || name == "murmur2_random") {
    return std::optional<int32_t>(rd_kafka_msg_partitioner_murmur2(nullptr, data, size, partitions, nullptr, nullptr));
  }
  if (name == "fnv1a" || name == "fnv1a_random") {
    return std::optional<int32_t>(rd_kafka_msg_partitioner_fnv1a(nullptr, data, size, partitions, nullptr, nullptr));
  }
  return invalid("unknown Kafka partitioner '{}' (librdkafka's: random, consistent, consistent_random, murmur2, "
                 "murmur2_random, fnv1a, fnv1a_random)", name);
}

TransactionalProducer::TransactionalProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TransactionalProducer::~TransactionalProducer() = default;

arrow::Result<std::unique_ptr<TransactionalProducer>> TransactionalProducer::make(
    const std::string& cluster_name, const KafkaProperties& properties, const std::string& transactional_id) {
  auto impl = std::make_unique<Impl>();
  impl->cluster = cluster_name;
  impl->transactional_id = transactional_id;
  impl->properties = properties;
  impl->secrets = remembered_secrets();
  for (const auto& [k, v] : properties) {
    const bool path = k.size() > 9 && k.compare(k.size() - 9, 9, ".location") == 0;
    if (looks_secret(k) && !path) impl->secrets.push_back(v);
  }
  auto it = properties.find("bootstrap.servers");
  if (it == properties.end()) return invalid("Kafka cluster '{}' has no bootstrap.servers", cluster_name);
  impl->bootstrap = it->second;
  ARROW_ASSIGN_OR_RAISE(auto conf, impl->conf({{"client.id", "sluice-sink"}, {"linger.ms", "20"}},
                                              {{"transactional.id", transactional_id}, {"enable.idempotence", "true"}}));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    auto* self = static_cast<Impl*>(opaque);
    std::lock_guard lock(self->mutex);
    if (self->delivery_error.empty()) self->delivery_error = self->scrub(rd_kafka_err2str(m->err));
  });
  char err[512] = {0};
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (!impl->rk) return invalid("Kafka cluster '{}': cannot create producer: {}", cluster_name, impl->scrub(err));
  conf.release();  // rd_kafka_new owns it now
  return std::unique_ptr<TransactionalProducer>(new TransactionalProducer(std::move(impl)));
}

arrow::Status TransactionalProducer::init(std::chrono::milliseconds timeout) {
  if (auto* error = rd_kafka_init_transactions(impl_->rk, timeout_ms(timeout))) {
    return impl_->failed("registering the transactional.id (init_transactions)", error);
  }
  return arrow::Status::OK();
}

arrow::Result<std::optional<CommittedProgress>> TransactionalProducer::committed(const std::string& group,
                                                                                 const std::string& topic,
                                                                                 std::chrono::milliseconds timeout) {
  // A consumer handle only to ask the group coordinator; it never joins the group.
  ARROW_ASSIGN_OR_RAISE(auto conf, impl_->conf({{"client.id", "sluice-sink"}},
                                               {{"group.id", group}, {"isolation.level", "read_committed"},
                                                {"enable.auto.commit", "false"}}));
  char err[512] = {0};
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> consumer(
      rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err), &rd_kafka_destroy);
  if (!consumer) return invalid("Kafka cluster '{}': cannot create consumer: {}", impl_->cluster, impl_->scrub(err));
  conf.release();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    PartitionsPtr list(rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto code = rd_kafka_committed(consumer.get(), list.get(), std::max(1, timeout_ms(left)));
    const auto& tp = list->elems[0];
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) code = tp.err;
    // A transaction that is being completed holds the offset back (KIP-447): ask again.
    if (code == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_poll(consumer.get(), 100);
      continue;
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return impl_->failed("reading the sink's progress (committed offsets)", code, rd_kafka_err2str(code), false);
    }
    rd_kafka_consumer_close(consumer.get());
    if (tp.offset < 0) return std::nullopt;
    CommittedProgress out;
    out.offset = tp.offset;
    if (tp.metadata && tp.metadata_size) out.metadata.assign(static_cast<const char*>(tp.metadata), tp.metadata_size);
    return out;
  }
}

arrow::Result<int> TransactionalProducer::partition_count(const std::string& topic, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // All topics: asking for one by name would create it where the broker auto-creates topics.
    // Short attempts, so that a refused login is told at once, not after the whole timeout.
    auto code = rd_kafka_metadata(impl_->rk, 1, nullptr, &md, 1000);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    rd_kafka_poll(impl_->rk, 0);  // serves the error callback
    if (auto refused = impl_->refused_connection()) return *refused;
    if (std::chrono::steady_clock::now() >= deadline) {
      return impl_->failed("reading the cluster's topics", code, rd_kafka_err2str(code), false);
    }
  }
  int count = 0;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      count = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return count;
}

arrow::Status TransactionalProducer::begin() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->delivery_error.clear();
  }
  if (auto* error = rd_kafka_begin_transaction(impl_->rk)) return impl_->failed("beginning a transaction", error);
  impl_->in_transaction = true;
  return arrow::Status::OK();
}

arrow::Status TransactionalProducer::produce(const std::string& topic, std::optional<std::string_view> key,
                                             std::string_view value, const std::vector<OutgoingHeader>& headers) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& h : headers) {
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
  }
  const void* key_data = key ? static_cast<const void*>(key->data()) : nullptr;
  const size_t key_size = key ? key->size() : 0;
  while (true) {
    auto code = rd_kafka_producev(
        impl_->rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_KEY(key_data, key_size),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(impl_->rk, 50);  // delivery reports free the queue
      continue;
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (hdrs) rd_kafka_headers_destroy(hdrs);  // owned by the message only when it was queued
      return impl_->failed(fmt::format("producing to topic '{}'", topic).c_str(), code, rd_kafka_err2str(code), false);
    }
    break;
  }
  if (++produced_ % 1024 == 0) rd_kafka_poll(impl_->rk, 0);
  return arrow::Status::OK();
}

arrow::Status TransactionalProducer::flush(std::chrono::milliseconds timeout) {
  auto code = rd_kafka_flush(impl_->rk, timeout_ms(timeout));
  if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return impl_->failed("sending the transaction's records", code, rd_kafka_err2str(code), false);
  }
  return arrow::Status::OK();
}

arrow::Status TransactionalProducer::commit(const std::string& group, const std::string& topic,
                                            const CommittedProgress& progress, std::chrono::milliseconds timeout) {
  PartitionsPtr offsets(rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
  auto* tp = rd_kafka_topic_partition_list_add(offsets.get(), topic.c_str(), 0);
  tp->offset = progress.offset;
  if (!progress.metadata.empty()) {
    tp->metadata = std::malloc(progress.metadata.size());  // freed with the list
    std::memcpy(tp->metadata, progress.metadata.data(), progress.metadata.size());
    tp->metadata_size = progress.metadata.size();
  }
  std::unique_ptr<rd_kafka_consumer_group_metadata_t, decltype(&rd_kafka_consumer_group_metadata_destroy)> cg(
      rd_kafka_consumer_group_metadata_new(group.c_str()), &rd_kafka_consumer_group_metadata_destroy);
  auto abort_after = [&](arrow::Status st) {
    if (impl_->in_transaction) (void)abort(timeout);
    return st;
  };
  if (auto* error = rd_kafka_send_offsets_to_transaction(impl_->rk, offsets.get(), cg.get(), timeout_ms(timeout))) {
    return abort_after(impl_->failed("adding the sink's progress to the transaction", error));
  }
  if (auto* error = rd_kafka_commit_transaction(impl_->rk, timeout_ms(timeout))) {
    std::string delivery;
    {
      std::lock_guard lock(impl_->mutex);
      delivery = impl_->delivery_error;
    }
    auto st = impl_->failed("committing the transaction", error);
    if (!delivery.empty()) st = st.WithMessage(st.message(), "; the broker refused a record: ", delivery);
    return abort_after(st);
  }
  impl_->in_transaction = false;
  return arrow::Status::OK();
}

arrow::Status TransactionalProducer::abort(std::chrono::milliseconds timeout) {
  impl_->in_transaction = false;
  if (auto* error = rd_kafka_abort_transaction(impl_->rk, timeout_ms(timeout))) {
    return impl_->failed("aborting the transaction", error);
  }
  return arrow::Status::OK();
}

}  // namespace sluice::kafka
