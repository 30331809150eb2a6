// librdkafka consumer wrapper.
#include "sluice/kafka/consumer.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <thread>
#include <utility>

#include <fmt/ranges.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <set>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/kafka/bootstrap_probe.h"
#include "sluice/kafka/client_properties.h"

namespace sluice::kafka {

bool is_login_refusal(int code, std::string_view text) {
  if (code == RdKafka::ERR_SASL_AUTHENTICATION_FAILED) return true;
  if (code != RdKafka::ERR__AUTHENTICATION &&
      text.find("SASL authentication error") == std::string_view::npos) {
    return false;
  }
  // librdkafka words its own failures "Local: ..." (transport failure, timed out) and reports
  // a connection closed during the exchange as "Disconnected"; the broker's refusal is neither.
  for (std::string_view transient : {"Local:", "Disconnected", "disconnected", "timed out"}) {
    if (text.find(transient) != std::string_view::npos) return false;
  }
  return true;
}

std::string login_advice(const KafkaProperties& properties) {
  auto it = properties.find("sasl.mechanisms");
  if (it == properties.end()) it = properties.find("sasl.mechanism");
  const std::string mechanism = it == properties.end() ? "GSSAPI" : it->second;  // librdkafka's default
  // librdkafka before 2.6.1 repeated the client nonce in its SCRAM final message
  // (librdkafka#4895), which Kafka 4.0+ refuses even with a right password; CMakeLists.txt
  // builds only against a newer one (scripts/build-librdkafka.sh), so a refusal is the password.
  static_assert(RD_KAFKA_VERSION >= 0x020601ff, "SCRAM needs librdkafka 2.6.1 or newer");
  if (mechanism == "PLAIN" || mechanism.rfind("SCRAM-", 0) == 0) {
    return fmt::format("check sasl.username and sasl.password of this cluster (mechanism {})",
                       mechanism);
  }
  if (mechanism == "OAUTHBEARER") {
    return "check the sasl.oauthbearer.* settings of this cluster (token endpoint, client id "
           "and secret, or sasl.oauthbearer.config for unsecured tokens)";
  }
  if (mechanism == "GSSAPI") {
    return "check sasl.kerberos.principal, sasl.kerberos.keytab and sasl.kerberos.service.name "
           "of this cluster (mechanism GSSAPI, librdkafka's default when sasl.mechanisms is unset)";
  }
  return fmt::format("check the SASL settings of this cluster (sasl.mechanisms is {})",
                     shown_value("sasl.mechanisms", mechanism));
}

TlsFailure classify_tls_failure(int code, std::string_view text) {
  auto has = [&](std::string_view part) { return text.find(part) != std::string_view::npos; };
  // The broker's alert after our certificate (or its absence): TLS 1.3 reports it on the first
  // read after the handshake ("Receive failed: ...alert bad certificate"), TLS 1.2 during it.
  if (has("alert bad certificate") || has("alert certificate required") ||
      has("alert unknown ca") || has("alert certificate unknown") ||
      has("alert certificate expired") || has("alert certificate revoked")) {
    return TlsFailure::kClientCertRefused;
  }
  if (has("certificate verify failed") || has("Broker certificate could not be verified")) {
    return TlsFailure::kBrokerNotTrusted;
  }
  if (code == RdKafka::ERR__SSL || has("SSL handshake failed") || has("SSL routines")) {
    return TlsFailure::kOther;
  }
  return TlsFailure::kNone;
}

std::string tls_advice(TlsFailure kind, const KafkaProperties& properties) {
  auto set = [&](const char* key) { return properties.count(key) != 0; };
  switch (kind) {
    case TlsFailure::kBrokerNotTrusted:
      if (set("ssl.ca.location") || set("ssl.ca.pem")) {
        return "the broker's certificate is not trusted by the CA in ssl.ca.location (or "
               "ssl.ca.pem), or does not name the host in bootstrap.servers; set it to the PEM "
               "file of the CA that signed the broker's certificate";
      }
      return "the broker's certificate is not trusted (its CA is not in the system's CA store); "
             "if the broker's certificate is signed by a private CA, set ssl.ca.location to that "
             "CA's PEM file";
    case TlsFailure::kClientCertRefused:
      if (!set("ssl.certificate.location") && !set("ssl.certificate.pem") &&
          !set("ssl.keystore.location")) {
        return "the broker requires a client certificate (mutual TLS) and none is configured; "
               "set ssl.certificate.location and ssl.key.location (and ssl.key.password if the "
               "key is encrypted) to a certificate signed by a CA the broker trusts";
      }
      return "the broker refused this client's certificate; it must be signed by a CA in the "
             "broker's truststore and be valid now (check ssl.certificate.location)";
    case TlsFailure::kOther:
      return "the TLS handshake broke off; check that the address is the broker's TLS listener "
             "(security.protocol SSL or SASL_SSL)";
    case TlsFailure::kNone:
      break;
  }
  return "";
}

// Receives librdkafka events on its internal threads; keeps the last few error/log lines so
// our errors can say what the client saw (instead of librdkafka printing to stderr).
// Every text librdkafka produces may quote a configuration value (`Unrecognized
// sasl.oauthbearer.config beginning at: ...`), so each is scrubbed of the client's secrets
// (values of secret-looking keys and of ${env:}/${file:} references) before it is kept.
class EventLog : public RdKafka::EventCb {
 public:
  // `print_debug`: the properties set librdkafka's `debug`, so its debug lines go to stderr
  // (scrubbed) instead of being dropped with the other lines below warning level.
  EventLog(std::vector<std::string> secrets, bool print_debug)
      : secrets_(std::move(secrets)), print_debug_(print_debug) {}
  std::string scrub(std::string_view text) const { return redact_values(text, secrets_); }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() != RdKafka::Event::EVENT_ERROR && event.type() != RdKafka::Event::EVENT_LOG) {
      return;
    }
    if (event.type() == RdKafka::Event::EVENT_LOG && event.severity() > RdKafka::Event::EVENT_SEVERITY_WARNING) {
      if (print_debug_) {
        std::fprintf(stderr, "sluice: librdkafka %s: %s\n", event.fac().c_str(), scrub(event.str()).c_str());
      }
      return;
    }
    {
      // A refused login or certificate makes later requests time out like a broker that is
      // away; remembered so the error says what really happened. librdkafka 2.0 reports both
      // as log lines and transport errors, so the text decides.
      // Sorted by librdkafka's own words, kept scrubbed: a secret's fragment may match part of
      // them (a key path holding "certificate" hid "certificate unknown").
      const std::string raw = event.str();
      const auto text = scrub(raw);
      std::lock_guard lock(mutex_);
      if (is_login_refusal(event.err(), raw)) {
        auth_failure_ = text;
      } else if (auto kind = classify_tls_failure(event.err(), raw); kind != TlsFailure::kNone) {
        // A broken-off handshake does not hide the certificate failure that caused it.
        if (kind != TlsFailure::kOther || tls_kind_ == TlsFailure::kNone ||
            tls_kind_ == TlsFailure::kOther) {
          tls_failure_ = text;
          tls_kind_ = kind;
        }
      }
    }
    note(event.str());
  }
  std::string auth_failure() const {
    std::lock_guard lock(mutex_);
    return auth_failure_;
  }
  std::pair<TlsFailure, std::string> tls_failure() const {
    std::lock_guard lock(mutex_);
    return {tls_kind_, tls_failure_};
  }
  void clear_failures() {
    std::lock_guard lock(mutex_);
    auth_failure_.clear();
    tls_failure_.clear();
    tls_kind_ = TlsFailure::kNone;
  }
  void note(std::string_view line) {
    auto scrubbed = scrub(line);
    std::lock_guard lock(mutex_);
    recent_.push_back(std::move(scrubbed));
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
  const std::vector<std::string> secrets_;
  const bool print_debug_;
  mutable std::mutex mutex_;  // guards recent_, auth_failure_, tls_failure_
  std::deque<std::string> recent_;
  std::string auth_failure_;  // the last SASL authentication error, if any
  std::string tls_failure_;   // the last TLS (handshake, certificate) error, if any
  TlsFailure tls_kind_ = TlsFailure::kNone;  // what tls_failure_ means
};

// Turns librdkafka's rebalance callback into RebalanceListener calls and applies the
// (incremental, for cooperative protocols) assignment change librdkafka expects.
class RebalanceAdapter : public RdKafka::RebalanceCb {
 public:
  explicit RebalanceAdapter(EventLog* events) : events_(events) {}
  void set_listener(RebalanceListener* listener) { listener_ = listener; }

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    std::vector<TopicPartitionId> ids;
    for (const auto* p : partitions) ids.push_back({p->topic(), KafkaPartition(p->partition())});
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      std::vector<PartitionStart> starts;
      if (listener_ != nullptr) starts = listener_->on_assigned(ids);
      std::vector<RdKafka::TopicPartition*> list;
      for (const auto& s : starts) {
        list.push_back(
            RdKafka::TopicPartition::create(s.topic, s.partition.value(), s.offset.value()));
      }
      if (cooperative) {
        check(consumer->incremental_assign(list), "incremental assign");
      } else {
        check_code(consumer->assign(list), "assign");
      }
      RdKafka::TopicPartition::destroy(list);
      return;
    }
    if (err == RdKafka::ERR__REVOKE_PARTITIONS) {
      if (listener_ != nullptr) {
        listener_->on_revoked(ids,
                              consumer->assignment_lost() ? RevokeKind::kLost : RevokeKind::kRevoked);
      }
      if (cooperative) {
        check(consumer->incremental_unassign(partitions), "incremental unassign");
      } else {
        check_code(consumer->unassign(), "unassign");
      }
      return;
    }
    events_->note("rebalance failed: " + RdKafka::err2str(err));
    if (listener_ != nullptr) listener_->on_revoked(ids, RevokeKind::kLost);
    check_code(consumer->unassign(), "unassign");
  }

 private:
  void check(RdKafka::Error* raw, const char* what) {
    std::unique_ptr<RdKafka::Error> error(raw);  // librdkafka hands over ownership
    if (error) events_->note(std::string(what) + " failed: " + error->str());
  }
  void check_code(RdKafka::ErrorCode code, const char* what) {
    if (code != RdKafka::ERR_NO_ERROR) {
      events_->note(std::string(what) + " failed: " + RdKafka::err2str(code));
    }
  }

  EventLog* events_;
  RebalanceListener* listener_ = nullptr;  // only touched on the polling thread
};

namespace {

arrow::Status set_conf(RdKafka::Conf& conf, const std::string& key, const std::string& value,
                       const std::string& cluster) {
  std::string err;
  const auto res = conf.set(key, value, err);
  if (res == RdKafka::Conf::CONF_OK) return arrow::Status::OK();
  return with_context(property_rejected(key, value, res == RdKafka::Conf::CONF_UNKNOWN, err),
                      fmt::format("Kafka cluster '{}'", cluster));
}

// A client that never reached its cluster probes whether every bootstrap broker refuses
// connections from kConnectWindow on, every kProbeEvery; it gives up early only when every probe
// up to kRefusedFor was refused (a broker still starting opens its port within seconds; one
// refusing for that long is, as a rule, not started or at a wrong address) (all_topics_metadata).
constexpr std::chrono::milliseconds kConnectWindow{2'000};
constexpr std::chrono::milliseconds kProbeEvery{1'000};
constexpr std::chrono::milliseconds kRefusedFor{5'000};

// Bootstrap lists (bootstrap.servers values) some consumer of this process got metadata from.
std::mutex reached_mutex;
std::set<std::string>& reached_clusters() {  // guarded by reached_mutex
  static std::set<std::string> reached;
  return reached;
}

bool cluster_reached(const std::string& bootstrap) {
  std::lock_guard lock(reached_mutex);
  return reached_clusters().count(bootstrap) != 0;
}

void note_cluster_reached(const std::string& bootstrap) {
  std::lock_guard lock(reached_mutex);
  reached_clusters().insert(bootstrap);
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
  return make_impl(cluster_name, properties, group_id, nullptr);
}

arrow::Result<std::unique_ptr<Consumer>> Consumer::make_record_reader(const std::string& cluster_name,
                                                                      const KafkaProperties& properties,
                                                                      const std::string& group_id) {
  KafkaProperties props = properties;
  // No fetch held open at the end of a partition: the next check would wait for it first.
  props["fetch.wait.max.ms"] = "10";
  return make_impl(cluster_name, props, group_id, nullptr);
}

arrow::Result<std::unique_ptr<Consumer>> Consumer::make_group_member(
    const std::string& cluster_name, const KafkaProperties& properties,
    const std::string& group_id, RebalanceListener* listener) {
  KafkaProperties props = properties;
  props.emplace("partition.assignment.strategy", "cooperative-sticky");
  // Regex subscriptions see new topics at the next metadata refresh (default: 5 minutes).
  props.emplace("topic.metadata.refresh.interval.ms", "5000");
  return make_impl(cluster_name, props, group_id, listener);
}

arrow::Result<std::unique_ptr<Consumer>> Consumer::make_impl(const std::string& cluster_name,
                                                             const KafkaProperties& properties,
                                                             const std::string& group_id,
                                                             RebalanceListener* listener) {
  std::unique_ptr<Consumer> c(new Consumer());
  c->cluster_name_ = cluster_name;
  auto secrets = remembered_secrets();
  for (const auto& [k, v] : properties) {
    // A file's path (ssl.key.location, ssl.keystore.location) is not the secret it holds; as a
    // scrub target its pieces would cut librdkafka's words ("/etc/certificates/client.key"
    // turned "alert certificate unknown" into "alert <redacted> unknown").
    const bool path = k.size() > 9 && k.compare(k.size() - 9, 9, ".location") == 0;
    if (looks_secret(k) && !path) secrets.push_back(v);
  }
  c->events_ = std::make_unique<EventLog>(std::move(secrets), properties.count("debug") != 0);
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (listener != nullptr) {
    c->rebalance_ = std::make_unique<RebalanceAdapter>(c->events_.get());
    c->rebalance_->set_listener(listener);
    std::string err;
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(c->rebalance_.get()), err) !=
        RdKafka::Conf::CONF_OK) {
      return invalid("Kafka cluster '{}': {}", cluster_name, err);
    }
  }
  // Our defaults first, so the user's properties override them.
  const KafkaProperties defaults = {
      {"group.id", group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"allow.auto.create.topics", "false"},
      // A read position that left the log (retention, a re-created topic) is an error the flow
      // handles as data loss; librdkafka's default jumps to the end and skips records silently.
      {"auto.offset.reset", "error"},
      {"client.id", "sluice"},
      {"fetch.max.bytes", "52428800"},
      // Prefetch bounded by bytes (64 MiB of payload for the whole consumer), not by message
      // count: librdkafka before 2.2 stops fetching a partition whose queue holds
      // queued.min.messages (default 100,000 = 20 MB of 200-byte events) and looks again
      // only after a fixed 1 s, so a consumer faster than 100k messages/s per partition sat
      // idle most of the time (bronze read 5M events in 24 s; 4-7 s with this; BENCHMARKS.md).
      // Each queued message costs ~2.3x its payload in librdkafka's memory: 256 MiB here was
      // ~600 MiB of the process's RSS; 64 MiB (~0.3 s of reading) keeps the reader fed.
      {"queued.max.messages.kbytes", "65536"},
      // We assign partitions and never join a group, so this only bounds how long an offset
      // commit (lag monitoring only) and close() wait for a broker that is away: 45 s by
      // default, which stalled every update and SIGTERM during a broker outage.
      {"session.timeout.ms", "6000"},
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
  c->login_advice_ = login_advice(properties);
  for (const auto& [k, v] : properties) {
    if (k.rfind("ssl.", 0) == 0) c->tls_properties_.emplace(k, "");  // which are set, not values
  }
  std::string err;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(c->events_.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return invalid("Kafka cluster '{}': {}", cluster_name, err);
  }
  c->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c->consumer_) {
    // OpenSSL's "PEM lib" says nothing about the usual cause: a wrong or missing key password.
    std::string advice;
    if (err.find("ssl.key.location failed") != std::string::npos) {
      advice = properties.count("ssl.key.password") != 0
                   ? "; the private key in ssl.key.location could not be read: check "
                     "ssl.key.password (it does not decrypt the key) and that the file is a PEM "
                     "private key"
                   : "; the private key in ssl.key.location could not be read: if it is "
                     "encrypted, set ssl.key.password; else check that the file is a PEM private key";
    } else if (err.find("ssl.certificate.location failed") != std::string::npos) {
      advice = "; check that ssl.certificate.location is a PEM certificate file";
    }
    return invalid("Kafka cluster '{}': cannot create consumer: {}{}", cluster_name,
                   c->events_->scrub(err), advice);
  }
  return c;
}

Consumer::~Consumer() {
  if (queue_) rd_kafka_queue_destroy(queue_);
  if (!consumer_) return;
  // close() leaves the group and waits for in-flight offset commits, which a broker that went
  // away can hold for minutes. It runs on a thread of its own that owns the handle (and the
  // callbacks it calls); after kCloseWait the pipeline goes on (or exits) without it.
  constexpr auto kCloseWait = std::chrono::seconds(10);
  struct Closing {
    std::unique_ptr<EventLog> events;
    std::unique_ptr<RebalanceAdapter> rebalance;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer;
    std::promise<void> closed;
  };
  auto closing = std::make_unique<Closing>();
  closing->events = std::move(events_);
  closing->rebalance = std::move(rebalance_);
  closing->consumer = std::move(consumer_);
  auto closed = closing->closed.get_future();
  std::thread([c = std::move(closing)]() mutable {
    c->consumer->close();
    c->consumer.reset();
    c->closed.set_value();
  }).detach();
  if (closed.wait_for(kCloseWait) == std::future_status::timeout) {
    std::fprintf(stderr, "sluice: warning: Kafka cluster '%s' did not close its consumer within %llds (broker "
                 "away?); going on without waiting\n", cluster_name_.c_str(),
                 static_cast<long long>(kCloseWait.count()));
  }
}

std::string Consumer::recent_errors() const { return events_->recent(); }

arrow::Status Consumer::subscribe(const std::vector<std::string>& topics) {
  RdKafka::ErrorCode code = consumer_->subscribe(topics);
  if (code != RdKafka::ERR_NO_ERROR) {
    return invalid("Kafka cluster '{}': cannot subscribe to {}: {}", cluster_name_,
                   fmt::join(topics, ", "), RdKafka::err2str(code));
  }
  return arrow::Status::OK();
}

void Consumer::set_listener(RebalanceListener* listener) {
  if (rebalance_) rebalance_->set_listener(listener);
}

arrow::Result<std::vector<TopicPartitionId>> Consumer::assignment() {
  std::vector<RdKafka::TopicPartition*> list;
  RdKafka::ErrorCode code = consumer_->assignment(list);
  std::vector<TopicPartitionId> out;
  for (const auto* p : list) out.push_back({p->topic(), KafkaPartition(p->partition())});
  RdKafka::TopicPartition::destroy(list);
  if (code != RdKafka::ERR_NO_ERROR) {
    return io_error("Kafka cluster '{}': cannot read the assignment: {}", cluster_name_,
                    RdKafka::err2str(code));
  }
  std::sort(out.begin(), out.end());
  return out;
}

arrow::Status Consumer::add_partitions(const std::vector<PartitionStart>& starts) {
  std::vector<RdKafka::TopicPartition*> list;
  for (const auto& s : starts) {
    list.push_back(RdKafka::TopicPartition::create(s.topic, s.partition.value(), s.offset.value()));
  }
  std::unique_ptr<RdKafka::Error> error(consumer_->incremental_assign(list));
  RdKafka::TopicPartition::destroy(list);
  if (error) {
    return io_error("Kafka cluster '{}': assign failed: {}", cluster_name_,
                    events_->scrub(error->str()));
  }
  return arrow::Status::OK();
}

arrow::Status Consumer::reassign(const PartitionStart& start) {
  std::vector<RdKafka::TopicPartition*> list{
      RdKafka::TopicPartition::create(start.topic, start.partition.value(), start.offset.value())};
  std::unique_ptr<RdKafka::Error> error(consumer_->incremental_unassign(list));
  if (!error) error.reset(consumer_->incremental_assign(list));
  RdKafka::TopicPartition::destroy(list);
  if (error) {
    return io_error("Kafka cluster '{}': cannot restart {}[{}] at offset {}: {}", cluster_name_, start.topic,
                    start.partition.value(), start.offset.value(), error->str());
  }
  return arrow::Status::OK();
}

arrow::Status Consumer::seek(const PartitionStart& start, std::chrono::milliseconds timeout) {
  std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(
      start.topic, start.partition.value(), start.offset.value()));
  RdKafka::ErrorCode code = consumer_->seek(*tp, static_cast<int>(timeout.count()));
  if (code != RdKafka::ERR_NO_ERROR) {
    return mark_retryable(io_error("Kafka cluster '{}': cannot move {}[{}] to offset {}: {}",
                                   cluster_name_, start.topic, start.partition.value(),
                                   start.offset.value(), RdKafka::err2str(code)));
  }
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<RdKafka::Metadata>> Consumer::all_topics_metadata(std::chrono::milliseconds timeout) {
  // Asked in short slices up to `timeout`: a broker that refuses the login or the
  // certificate says so through the error callback long before the timeout, and waiting on
  // could not change the answer.
  constexpr std::chrono::milliseconds kSlice{250};
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + timeout;
  bool probing = true;  // until a probe finds a broker accepting
  auto next_probe = started + kConnectWindow;
  RdKafka::ErrorCode code = RdKafka::ERR__TIMED_OUT;
  std::unique_ptr<RdKafka::Metadata> metadata;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    RdKafka::Metadata* raw = nullptr;
    code = consumer_->metadata(/*all_topics=*/true, nullptr, &raw,
                               static_cast<int>(std::clamp(left, std::chrono::milliseconds(1), kSlice).count()));
    metadata.reset(raw);
    if (code == RdKafka::ERR_NO_ERROR) break;
    const bool refused = !events_->auth_failure().empty() || events_->tls_failure().first == TlsFailure::kBrokerNotTrusted ||
                         events_->tls_failure().first == TlsFailure::kClientCertRefused;
    // Any other error (a transport failure comes before the refusal's event is served) is
    // asked again until the timeout, as one call waited before.
    if (refused || left <= kSlice) return connection_error(code, timeout);
    // A cluster this process never reached, whose every bootstrap broker kept refusing
    // connections for kRefusedFor, is not coming up within the timeout as a rule (a wrong
    // address, a broker not started): said in seconds. A broker that accepts once, or a cluster
    // this process reached before, gets the whole timeout (a broker starting or restarting),
    // docs/decisions.md "CI time (2)".
    const auto now = std::chrono::steady_clock::now();
    if (probing && now >= next_probe && !cluster_reached(bootstrap_)) {
      next_probe = now + kProbeEvery;
      if (!every_bootstrap_broker_refuses(bootstrap_, kSlice)) {
        probing = false;
      } else if (std::chrono::steady_clock::now() - started >= kRefusedFor) {
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        return mark_retryable(io_error(
            "cannot reach Kafka cluster '{}' at {} within {} ms ({}): every bootstrap broker "
            "refused the connection at every try since {} ms and none was reached before, so "
            "sluice did not wait the full {} ms; check bootstrap.servers and that the broker is "
            "running",
            cluster_name_, bootstrap_, waited.count(),
            recent_errors().empty() ? RdKafka::err2str(code) : recent_errors(),
            kConnectWindow.count(), timeout.count()));
      }
    }
  }
  note_cluster_reached(bootstrap_);
  events_->clear_failures();  // connected: an old refusal no longer explains later errors
  return metadata;
}

arrow::Status Consumer::connection_error(int raw_code, std::chrono::milliseconds timeout) const {
  const auto code = static_cast<RdKafka::ErrorCode>(raw_code);
  // A broker that answers but refuses the login or the certificate is not "away": retrying
  // cannot help, the configuration must change.
  if (auto auth = events_->auth_failure(); !auth.empty()) {
    return invalid("Kafka cluster '{}' at {}: authentication failed ({}); {}", cluster_name_,
                   bootstrap_, auth, login_advice_);
  }
  if (auto [kind, tls] = events_->tls_failure(); kind != TlsFailure::kNone) {
    auto status = invalid("Kafka cluster '{}' at {}: TLS connection failed ({}); {}",
                          cluster_name_, bootstrap_, tls, tls_advice(kind, tls_properties_));
    // A certificate that is not trusted, or refused, stays so on retry.
    return kind == TlsFailure::kOther ? mark_retryable(status) : status;
  }
  auto status = io_error(
      "cannot reach Kafka cluster '{}' at {} within {} ms ({}{}{}); check bootstrap.servers "
      "and that the broker is running",
      cluster_name_, bootstrap_, timeout.count(), RdKafka::err2str(code),
      recent_errors().empty() ? "" : ": ", recent_errors());
  return is_unreachable(code) ? mark_retryable(status) : status;
}

arrow::Result<std::vector<std::string>> Consumer::topics(std::chrono::milliseconds timeout) {
  ARROW_ASSIGN_OR_RAISE(auto metadata, all_topics_metadata(timeout));
  std::vector<std::string> names;
  for (const auto* t : *metadata->topics()) {
    if (t->topic().rfind("__", 0) == 0) continue;  // internal topics
    names.push_back(t->topic());
  }
  std::sort(names.begin(), names.end());
  return names;
}

arrow::Result<std::map<KafkaPartition, KafkaOffset>> Consumer::offsets_for_times(
    const std::string& topic, const std::map<KafkaPartition, int64_t>& timestamps_ms,
    std::chrono::milliseconds timeout) {
  std::vector<RdKafka::TopicPartition*> list;
  for (const auto& [p, ts] : timestamps_ms) {
    list.push_back(RdKafka::TopicPartition::create(topic, p.value(), ts));
  }
  RdKafka::ErrorCode code = consumer_->offsetsForTimes(list, static_cast<int>(timeout.count()));
  std::map<KafkaPartition, KafkaOffset> out;
  std::vector<KafkaPartition> past_end;
  for (const auto* tp : list) {
    if (code == RdKafka::ERR_NO_ERROR && tp->err() != RdKafka::ERR_NO_ERROR) code = tp->err();
    if (tp->offset() < 0) {
      past_end.emplace_back(tp->partition());  // no record that new
    } else {
      out[KafkaPartition(tp->partition())] = KafkaOffset(tp->offset());
    }
  }
  RdKafka::TopicPartition::destroy(list);
  if (code != RdKafka::ERR_NO_ERROR) {
    auto status = io_error("cannot look up offsets by timestamp of Kafka topic '{}' on cluster '{}': {}",
                           topic, cluster_name_, RdKafka::err2str(code));
    return is_unreachable(code) ? mark_retryable(status) : status;
  }
  for (auto p : past_end) {
    ARROW_ASSIGN_OR_RAISE(auto marks, watermarks(topic, p, timeout));
    out[p] = marks.high;
  }
  return out;
}

arrow::Result<std::vector<KafkaPartition>> Consumer::partitions(const std::string& topic,
                                                                std::chrono::milliseconds timeout) {
  ARROW_ASSIGN_OR_RAISE(auto metadata, all_topics_metadata(timeout));
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
    // The partition came from the topic's metadata (Kafka never removes one), so "unknown
    // partition" here is metadata in flux (a fenced broker, a leader election) or a topic
    // deleted since: retried, and the next attempt lists the topic again and names a deleted
    // one as such. It stopped continuous runs under a struggling broker before.
    return is_unreachable(code) || code == RdKafka::ERR__UNKNOWN_PARTITION ? mark_retryable(status) : status;
  }
  note_cluster_reached(bootstrap_);
  return Watermarks{KafkaOffset(low), KafkaOffset(high)};
}

std::optional<Watermarks> Consumer::cached_watermarks(const std::string& topic, KafkaPartition partition) {
  int64_t low = -1, high = -1;
  if (consumer_->get_watermark_offsets(topic, partition.value(), &low, &high) != RdKafka::ERR_NO_ERROR || high < 0) {
    return std::nullopt;
  }
  return Watermarks{KafkaOffset(std::max<int64_t>(low, 0)), KafkaOffset(high)};
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

arrow::Result<std::map<TopicPartitionId, std::optional<RecordFingerprint>>> Consumer::fingerprints_at(
    const std::vector<PartitionStart>& offsets, std::chrono::milliseconds timeout) {
  std::map<TopicPartitionId, std::optional<RecordFingerprint>> found;
  std::map<TopicPartitionId, KafkaOffset> waiting;
  for (const auto& o : offsets) waiting[{o.topic, o.partition}] = o.offset;
  if (waiting.empty()) return found;
  ARROW_RETURN_NOT_OK(assign(offsets));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PolledMessages batch;
  arrow::Status failed;
  while (!waiting.empty() && failed.ok()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    poll_batch(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                        std::chrono::milliseconds(500)),
               1024, batch);
    for (const RecordView& rec : batch.records()) {
      if (rec.topic.empty()) continue;
      const TopicPartitionId tp{std::string(rec.topic), rec.partition};
      auto it = waiting.find(tp);
      if (it == waiting.end()) continue;
      if (rec.kind == RecordKind::kTransientError) {
        continue;  // librdkafka reconnects by itself; the deadline bounds the wait
      }
      if (rec.kind == RecordKind::kRecord && rec.offset < it->second) continue;
      if (rec.kind == RecordKind::kRecord && rec.offset == it->second) {
        found[tp] = fingerprint_of(rec);
      } else if (rec.kind != RecordKind::kError) {
        found[tp] = std::nullopt;  // the partition goes on past that offset, or ends before it
      } else {
        failed = io_error("cannot read Kafka {}[{}] at offset {} on cluster '{}': {}", tp.topic,
                          tp.partition.value(), it->second.value(), cluster_name_, rec.error_text());
        break;
      }
      waiting.erase(it);
    }
  }
  batch.clear();
  (void)consumer_->unassign();
  ARROW_RETURN_NOT_OK(failed);
  if (!waiting.empty()) {
    std::vector<std::string> names;
    for (const auto& [tp, offset] : waiting) {
      names.push_back(fmt::format("{}[{}] offset {}", tp.topic, tp.partition.value(), offset.value()));
    }
    return mark_retryable(io_error(
        "cannot read the records at {} on Kafka cluster '{}' within {} ms (needed to check the "
        "topic was not deleted and re-created){}{}",
        fmt::join(names, ", "), cluster_name_, timeout.count(), recent_errors().empty() ? "" : ": ",
        recent_errors()));
  }
  return found;
}

void PolledMessages::clear() {
  for (auto* m : messages_) rd_kafka_message_destroy(m);
  messages_.clear();
  records_.clear();
}

void Consumer::poll_batch(std::chrono::milliseconds timeout, size_t max, PolledMessages& out) {
  out.clear();
  if (!queue_) queue_ = rd_kafka_queue_get_consumer(consumer_->c_ptr());
  out.messages_.resize(max);
  // A batch pop waits for `max` messages until its timeout, so take only what is there and,
  // when nothing is, wait for the first message alone. One message is always taken alone: a
  // batch pop moves librdkafka's application position one past each partition-EOF event it
  // returns (librdkafka#4844, 2.2 to 2.12), and a paused and resumed partition (a cooperative
  // rebalance) fetches on from there; a single pop leaves it at the last record returned.
  ssize_t n = max > 1 ? rd_kafka_consume_batch_queue(queue_, 0, out.messages_.data(), max) : 0;
  if (n <= 0) {
    rd_kafka_message_t* first = rd_kafka_consume_queue(queue_, static_cast<int>(timeout.count()));
    n = first ? 1 : 0;
    if (first) out.messages_[0] = first;
  }
  out.messages_.resize(static_cast<size_t>(n));
  // Views filled here, once per message; a topic's name looked up once per run of its messages.
  out.records_.resize(out.messages_.size());
  const rd_kafka_topic_t* last_topic = nullptr;
  std::string_view topic_name;
  for (size_t i = 0; i < out.messages_.size(); ++i) {
    const rd_kafka_message_t* m = out.messages_[i];
    if (m->rkt != last_topic) {
      last_topic = m->rkt;
      topic_name = m->rkt != nullptr ? std::string_view(rd_kafka_topic_name(m->rkt)) : std::string_view();
    }
    out.records_[i] = RecordView::of(*m, topic_name);
  }
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
  // Asynchronous: these offsets only feed lag monitoring (progress lives in the Delta log), so
  // a broker that is away must never hold the pipeline here.
  RdKafka::ErrorCode code = consumer_->commitAsync(list);
  RdKafka::TopicPartition::destroy(list);
  if (code != RdKafka::ERR_NO_ERROR) {
    return mark_retryable(io_error("Kafka cluster '{}': offset commit failed: {}", cluster_name_,
                                   RdKafka::err2str(code)));
  }
  return arrow::Status::OK();
}

}  // namespace sluice::kafka
