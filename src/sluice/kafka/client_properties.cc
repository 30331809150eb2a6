// Offline checks of librdkafka properties.
#include "sluice/kafka/client_properties.h"

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::kafka {

namespace {

// Every property name librdkafka knows (global and topic-level), for "did you mean": the
// property table librdkafka prints (rd_kafka_conf_dump leaves out properties without a default,
// ssl.ca.location and sasl.password among them).
const std::vector<std::string>& known_property_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    char* buffer = nullptr;
    size_t size = 0;
    if (FILE* table = ::open_memstream(&buffer, &size)) {
      rd_kafka_conf_properties_show(table);
      std::fclose(table);
    }
    std::string_view text(buffer == nullptr ? "" : buffer, size);
    // Rows read "name   | C/P | Range | Default | Importance | Description".
    for (size_t at = 0; at < text.size();) {
      const size_t end = std::min(text.find('\n', at), text.size());
      const auto line = text.substr(at, end - at);
      at = end + 1;
      const auto bar = line.find(" |");
      if (bar == std::string_view::npos || line.empty() || line[0] == '-' || line[0] == ' ') continue;
      const auto name = line.substr(0, line.find(' '));
      if (name == "Property" || name.find('.') == std::string_view::npos) continue;
      out.emplace_back(name);
    }
    std::free(buffer);
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
