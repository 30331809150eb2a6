// Offline checks of librdkafka properties.
#include "sluice/kafka/client_properties.h"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <vector>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::kafka {

namespace {

// Every property name librdkafka knows (global and topic-level), for "did you mean".
const std::vector<std::string>& known_property_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> conf(rd_kafka_conf_new(),
                                                                         &rd_kafka_conf_destroy);
    std::unique_ptr<rd_kafka_topic_conf_t, decltype(&rd_kafka_topic_conf_destroy)> topic(
        rd_kafka_topic_conf_new(), &rd_kafka_topic_conf_destroy);
    size_t n = 0;
    const char** pairs = rd_kafka_conf_dump(conf.get(), &n);
    for (size_t i = 0; i < n; i += 2) out.emplace_back(pairs[i]);
    rd_kafka_conf_dump_free(pairs, n);
    pairs = rd_kafka_topic_conf_dump(topic.get(), &n);
    for (size_t i = 0; i < n; i += 2) out.emplace_back(pairs[i]);
    rd_kafka_conf_dump_free(pairs, n);
    // Secret properties have no default, so the dump leaves them out.
    for (const char* secret : {"sasl.password", "sasl.username", "ssl.key.password",
                               "ssl.keystore.password", "sasl.oauthbearer.client.secret",
                               "ssl.key.pem", "ssl.certificate.pem", "ssl.ca.pem"}) {
      out.emplace_back(secret);
    }
    return out;
  }();
  return names;
}

}  // namespace

arrow::Status property_rejected(const std::string& key, const std::string& value, bool unknown,
                                const std::string& reason) {
  if (unknown) {
    const auto suggestion = closest_match(key, known_property_names());
    return invalid("librdkafka has no property '{}'{}; see librdkafka's CONFIGURATION.md for the "
                   "property names",
                   key, suggestion.empty() ? "" : fmt::format(" (did you mean '{}'?)", suggestion));
  }
  auto secrets = remembered_secrets();
  if (looks_secret(key)) secrets.push_back(value);
  const std::string why = redact_values(reason, secrets);
  return invalid("librdkafka refuses {} for property '{}': {}", shown_value(key, value), key, why);
}

arrow::Status check_property(const std::string& key, const std::string& value) {
  std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> conf(rd_kafka_conf_new(),
                                                                       &rd_kafka_conf_destroy);
  char err[512] = {0};
  const auto res = rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err);
  if (res == RD_KAFKA_CONF_OK) return arrow::Status::OK();
  return property_rejected(key, value, res == RD_KAFKA_CONF_UNKNOWN, err);
}

}  // namespace sluice::kafka
