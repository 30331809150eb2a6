// CREATE SINK options (sink_options.h).
#include "sluice/pipeline/sink_options.h"

#include <arrow/type.h>
#include <fmt/format.h>

#include <map>
#include <set>

#include "sluice/common/secrets.h"
#include "sluice/common/text.h"
#include "sluice/kafka/client_properties.h"

namespace sluice::pipeline {

namespace {

// Spellings DLT (Spark's Kafka writer) users write, onto the snake_case names.
std::string normalise_key(const std::string& key) {
  static const std::map<std::string, std::string> kAliases = {
      {"bootstrapservers", "bootstrap_servers"}, {"valueformat", "value_format"},
      {"maxrowspertransaction", "max_rows_per_transaction"}};
  if (key.rfind("kafka.", 0) == 0) return key;  // librdkafka's own names, case-sensitive
  auto lower = to_lower(key);
  if (auto it = kAliases.find(lower); it != kAliases.end()) return it->second;
  return lower;
}

// Producer properties the sink sets itself: a user value would break exactly once.
const std::set<std::string>& owned_properties() {
  static const std::set<std::string> kOwned = {"transactional.id", "enable.idempotence"};
  return kOwned;
}

// Consumer settings: a sink only produces (its progress reader sets its own), so in a sink's own
// OPTIONS they would be ignored; in a pipeline.yaml cluster shared with read_kafka they are
// normal and pass (they do not apply to the sink's producer).
const std::set<std::string>& consumer_properties() {
  static const std::set<std::string> kConsumer = {"isolation.level", "group.id", "enable.auto.commit"};
  return kConsumer;
}

}  // namespace

arrow::Result<KafkaSinkSpec> kafka_sink_spec(const Sink& sink, const sql::SourceFile& file,
                                             const PipelineConfig& config) {
  KafkaSinkSpec spec;
  spec.sink = sink.name;
  auto at = [&](sql::Location loc, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, loc, message));
  };
  std::map<std::string, const sql::SinkOption*> options;
  for (const auto& o : sink.definition->options) {
    const auto key = normalise_key(o.key);
    if (auto [it, added] = options.emplace(key, &o); !added) {
      return at(o.loc, fmt::format("option '{}' of sink '{}' is given twice (first at line {}): remove one", o.key,
                                   sink.name, it->second->loc.line));
    }
  }
  auto format = options.find("format");
  if (format == options.end()) {
    return at(sink.loc, fmt::format("sink '{}' needs format => 'kafka'", sink.name));
  }
  const auto fmt_value = to_lower(format->second->value);
  if (fmt_value == "delta") {
    return arrow::Status::NotImplemented(sql::format_error(file, format->second->loc,
        fmt::format("sink '{}': a Delta sink (a table outside the pipeline's storage) is not supported yet: "
                    "write to a streaming table of the pipeline, or use format => 'kafka'", sink.name)));
  }
  if (fmt_value != "kafka") {
    return at(format->second->loc, fmt::format("sink '{}': format {} is not a sink format; use format => 'kafka'",
                                               sink.name, shown_value("format", format->second->value)));
  }
  static const std::set<std::string> kKnown = {"format", "topic", "cluster", "bootstrap_servers", "key",
                                               "headers", "value_format", "max_rows_per_transaction"};
  for (const auto& [key, o] : options) {
    if (key.rfind("kafka.", 0) == 0) {
      const auto property = key.substr(6);
      if (owned_properties().count(property)) {
        return at(o->loc, fmt::format("sink '{}': {} is set by sluice (a Kafka sink writes exactly once through "
                                      "transactions, one transactional.id per flow): remove it",
                                      sink.name, key));
      }
      if (consumer_properties().count(property)) {
        return at(o->loc, fmt::format("sink '{}': {} is a consumer setting, and a sink only produces (it reads "
                                      "its progress read_committed from its own group): remove it",
                                      sink.name, key));
      }
      auto checked = kafka::check_property(property, o->value);
      if (!checked.ok()) {
        return at(o->loc, fmt::format("sink '{}': {}", sink.name, checked.message()));
      }
      continue;
    }
    if (!kKnown.count(key)) {
      std::vector<std::string> names(kKnown.begin(), kKnown.end());
      const auto best = closest_match(key, names);
      return at(o->loc, fmt::format("sink '{}' has no option '{}'{} (known: format, topic, cluster, "
                                    "bootstrap_servers, key, headers, value_format, max_rows_per_transaction, "
                                    "kafka.*)",
                                    sink.name, o->key, best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best)));
    }
  }
  auto topic = options.find("topic");
  if (topic == options.end() || topic->second->value.empty()) {
    return at(sink.loc, fmt::format("sink '{}' needs topic => 'name' (the Kafka topic it writes)", sink.name));
  }
  spec.topic = topic->second->value;
  if (auto it = options.find("value_format"); it != options.end()) {
    const auto v = to_lower(it->second->value);
    if (v == "avro") {
      return arrow::Status::NotImplemented(sql::format_error(file, it->second->loc,
          fmt::format("sink '{}': value_format => 'avro' is not supported yet: use value_format => 'json' (each "
                      "row as one JSON object)", sink.name)));
    }
    if (v != "json") {
      return at(it->second->loc, fmt::format("sink '{}': value_format must be 'json'", sink.name));
    }
  }
  if (auto it = options.find("key"); it != options.end()) spec.key_column = it->second->value;
  if (auto it = options.find("headers"); it != options.end()) spec.headers_column = it->second->value;
  if (auto it = options.find("max_rows_per_transaction"); it != options.end()) {
    const auto n = parse_int64(it->second->value);
    if (!n || *n <= 0) {
      return at(it->second->loc, fmt::format("sink '{}': max_rows_per_transaction must be a positive number of "
                                             "rows, e.g. '100000'", sink.name));
    }
    spec.max_rows_per_transaction = *n;
  }
  // The cluster: pipeline.yaml's `cluster` (default "default"), extended by bootstrap_servers and
  // kafka.* into one of the sink's own, as read_kafka does.
  std::string cluster = "default";
  const sql::SinkOption* cluster_option = nullptr;
  if (auto it = options.find("cluster"); it != options.end()) {
    cluster = it->second->value;
    cluster_option = it->second;
  }
  bool custom = options.count("bootstrap_servers") > 0;
  for (const auto& [k, v] : options) custom = custom || k.rfind("kafka.", 0) == 0;
  if (!config.kafka.count(cluster) && (!custom || cluster_option)) {
    return at(cluster_option ? cluster_option->loc : sink.loc,
              fmt::format("sink '{}' uses Kafka cluster '{}', which pipeline.yaml does not define under 'kafka:'; "
                          "define it there or give bootstrap_servers => 'host:port'", sink.name, cluster));
  }
  spec.properties = config.kafka.count(cluster) ? config.kafka.at(cluster) : kafka::KafkaProperties{};
  spec.cluster_name = cluster;
  if (custom) {
    spec.cluster_name = "sink:" + sink.name;
    if (auto it = options.find("bootstrap_servers"); it != options.end()) {
      spec.properties["bootstrap.servers"] = it->second->value;
    }
    for (const auto& [k, o] : options) {
      if (k.rfind("kafka.", 0) == 0) spec.properties[k.substr(6)] = o->value;
    }
  }
  if (config.kafka.count(cluster)) {
    for (const auto& [k, v] : config.kafka.at(cluster)) {
      if (owned_properties().count(k)) {
        return at(cluster_option ? cluster_option->loc : sink.loc,
                  fmt::format("sink '{}' writes to Kafka cluster '{}', and pipeline.yaml sets kafka.{}.{}: a Kafka "
                              "sink sets {} itself (exactly once through transactions); remove it from "
                              "pipeline.yaml or give the sink its own cluster",
                              sink.name, cluster, cluster, k, k));
      }
    }
  }
  return spec;
}

arrow::Status check_sink_columns(const KafkaSinkSpec& spec, const arrow::Schema& rows, const sql::SourceFile& file,
                                 sql::Location flow_loc) {
  auto names = [&] {
    std::string out;
    for (const auto& f : rows.fields()) out += (out.empty() ? "" : ", ") + f->name();
    return out;
  };
  if (spec.key_column) {
    auto field = rows.GetFieldByName(*spec.key_column);
    if (!field) {
      return arrow::Status::Invalid(sql::format_error(file, flow_loc,
          fmt::format("sink '{}' takes its key from column '{}', which the flow's rows do not have (they have {})",
                      spec.sink, *spec.key_column, names())));
    }
  }
  if (spec.headers_column) {
    auto field = rows.GetFieldByName(*spec.headers_column);
    if (!field) {
      return arrow::Status::Invalid(sql::format_error(file, flow_loc,
          fmt::format("sink '{}' takes its headers from column '{}', which the flow's rows do not have (they have {})",
                      spec.sink, *spec.headers_column, names())));
    }
    const auto& type = *field->type();
    bool ok = false;  // Spark's Kafka headers: ARRAY<STRUCT<key STRING, value BINARY>> (read_kafka's)
    if (type.id() == arrow::Type::LIST) {
      const auto& item = *static_cast<const arrow::ListType&>(type).value_type();
      if (item.id() == arrow::Type::STRUCT && item.num_fields() == 2) {
        const auto value = item.field(1)->type()->id();
        ok = item.field(0)->name() == "key" && item.field(0)->type()->id() == arrow::Type::STRING &&
             item.field(1)->name() == "value" && (value == arrow::Type::BINARY || value == arrow::Type::STRING);
      }
    }
    if (!ok) {
      return arrow::Status::Invalid(sql::format_error(file, flow_loc,
          fmt::format("sink '{}': headers column '{}' is {}, not ARRAY<STRUCT<key: STRING, value: BINARY or "
                      "STRING>> (the headers column read_kafka gives)",
                      spec.sink, *spec.headers_column, type.ToString())));
    }
  }
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
