// CREATE SINK options (sink_options.h).
#include "sluice/pipeline/sink_options.h"

#include <arrow/type.h>
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <set>

#include "sluice/common/secrets.h"
#include "sluice/common/text.h"
#include "sluice/format/avro_encoder.h"
#include "sluice/format/schema_registry.h"
#include "sluice/kafka/client_properties.h"
#include "sluice/storage/location.h"

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

arrow::Result<SinkFormat> sink_format(const Sink& sink, const sql::SourceFile& file) {
  for (const auto& o : sink.definition->options) {
    if (to_lower(o.key) != "format") continue;
    const auto v = to_lower(o.value);
    if (v == "kafka") return SinkFormat::kKafka;
    if (v == "delta") return SinkFormat::kDelta;
    return arrow::Status::Invalid(sql::format_error(file, o.loc, fmt::format(
        "sink '{}': format {} is not a sink format; use format => 'kafka' (a topic) or format => 'delta' (a "
        "table outside the pipeline's storage)", sink.name, shown_value("format", o.value))));
  }
  return arrow::Status::Invalid(sql::format_error(file, sink.loc, fmt::format(
      "sink '{}' needs format => 'kafka' (a topic) or format => 'delta' (a table outside the pipeline's storage)",
      sink.name)));
}

arrow::Result<DeltaSinkSpec> delta_sink_spec(const Sink& sink, const sql::SourceFile& file,
                                             const PipelineConfig& config) {
  namespace fs = std::filesystem;
  auto at = [&](sql::Location loc, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, loc, message));
  };
  DeltaSinkSpec spec;
  spec.sink = sink.name;
  const sql::SinkOption* path = nullptr;
  std::map<std::string, const sql::SinkOption*> seen;
  storage::StorageOptions storage_options;
  std::vector<std::pair<std::string, const sql::SinkOption*>> storage_keys;  // normalized key, option
  for (const auto& o : sink.definition->options) {
    const auto key = to_lower(o.key);
    if (auto [it, added] = seen.emplace(key, &o); !added) {
      return at(o.loc, fmt::format("option '{}' of sink '{}' is given twice (first at line {}): remove one", o.key,
                                   sink.name, it->second->loc.line));
    }
    if (key == "format") continue;
    if (key == "path") {
      path = &o;
      continue;
    }
    if (key == "tablename") {
      return arrow::Status::NotImplemented(sql::format_error(file, o.loc, fmt::format(
          "sink '{}': tableName (a table of a catalog) is not supported yet: sluice has no catalog; give the "
          "table's location as path => '<folder or s3://, gs://, az:// URI>'", sink.name)));
    }
    auto normalized = storage::normalize_storage_options({{o.key, o.value}});
    if (!normalized.ok()) {
      return arrow::Status(normalized.status().code(), sql::format_error(file, o.loc, fmt::format(
          "sink '{}' has no option '{}': a Delta sink takes format, path and storage options ({})", sink.name,
          o.key, normalized.status().message())));
    }
    storage_keys.emplace_back(normalized->begin()->first, &o);
    storage_options[o.key] = o.value;
  }
  if (!path || path->value.empty()) {
    return at(path ? path->loc : sink.loc,
              fmt::format("sink '{}' needs path => '<folder or s3://, gs://, az:// URI>' (where its Delta table "
                          "lives, outside the pipeline's storage)", sink.name));
  }
  spec.location = path->value;
  auto location = storage::parse_location(path->value, fmt::format("path of sink '{}'", sink.name));
  if (!location.ok()) return at(path->loc, location.status().message());
  if (location->scheme == storage::Scheme::kLocal) {
    if (!storage_keys.empty()) {
      return at(storage_keys.front().second->loc, fmt::format(
          "sink '{}': storage option '{}' is for a table on an object store (s3://, gs://, az://), but path '{}' "
          "is a local folder; remove it or give an object-store URI", sink.name,
          storage_keys.front().second->key, path->value));
    }
    const fs::path p(location->path);
    spec.objects = storage::local_store();
    spec.root = fs::weakly_canonical(p.is_absolute() ? p : config.dir / p).string();
  } else {
    for (const auto& [normalized, o] : storage_keys) {
      auto applies = storage::check_option_applies(location->scheme, path->value, o->key, normalized);
      if (!applies.ok()) return at(o->loc, applies.message());
    }
    auto opened = storage::open_location(*location, storage_options);
    if (!opened.ok()) {
      return at(path->loc, fmt::format("sink '{}', path '{}': {}", sink.name, path->value,
                                       opened.status().message()));
    }
    spec.objects = opened->store;
    spec.root = opened->root;
  }
  // The pipeline's tables, state and records live in its storage, and a full refresh or another
  // table may remove what is there: a sink's table is kept elsewhere.
  const auto sink_at = spec.objects->display(spec.root);
  const auto storage_at = config.storage_display();
  if (sink_at == storage_at || (sink_at.rfind(storage_at, 0) == 0 && sink_at[storage_at.size()] == '/') ||
      (storage_at.rfind(sink_at, 0) == 0 && storage_at[sink_at.size()] == '/')) {
    return at(path->loc, fmt::format(
        "sink '{}': path '{}' is {} the pipeline's storage '{}': a Delta sink writes a table outside it; give "
        "another path, or write a streaming table of the pipeline instead", sink.name, path->value,
        sink_at.size() > storage_at.size() ? "inside" : "or holds", storage_at));
  }
  return spec;
}

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
  if (to_lower(format->second->value) != "kafka") {
    return at(format->second->loc, fmt::format("sink '{}': format {} is not a Kafka sink's; use format => 'kafka'",
                                               sink.name, shown_value("format", format->second->value)));
  }
  static const std::set<std::string> kKnown = {"format", "topic", "cluster", "bootstrap_servers", "key",
                                               "headers", "value_format", "max_rows_per_transaction",
                                               "schema_registry_url", "schema_registry_ca_location",
                                               "schema_registry_auth_file"};
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
                                    "schema_registry_url, schema_registry_ca_location, schema_registry_auth_file, "
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
      spec.value_format = KafkaSinkSpec::ValueFormat::kAvro;
    } else if (v != "json") {
      return at(it->second->loc, fmt::format("sink '{}': value_format must be 'json' or 'avro'", sink.name));
    }
  }
  // The registry: for Avro only (a setting JSON would not use is refused, not ignored).
  auto registry_path = [&](const sql::SinkOption& o) {
    // Relative to the SQL file that names it, as read_kafka's: the working directory does not matter.
    std::filesystem::path path(o.value);
    return path.is_relative() ? (std::filesystem::path(file.name).parent_path() / path).string() : o.value;
  };
  for (const char* key : {"schema_registry_url", "schema_registry_ca_location", "schema_registry_auth_file"}) {
    auto it = options.find(key);
    if (it == options.end()) continue;
    if (spec.value_format != KafkaSinkSpec::ValueFormat::kAvro) {
      return at(it->second->loc, fmt::format("sink '{}': {} is for value_format => 'avro' (a schema registry); "
                                             "add value_format => 'avro' or remove it", sink.name, key));
    }
    if (std::string(key) == "schema_registry_url") spec.registry_url = it->second->value;
    if (std::string(key) == "schema_registry_ca_location") spec.registry_ca_location = registry_path(*it->second);
    if (std::string(key) == "schema_registry_auth_file") {
      auto auth = format::read_registry_auth_file(registry_path(*it->second), "schema_registry_auth_file");
      if (!auth.ok()) return at(it->second->loc, fmt::format("sink '{}': {}", sink.name, auth.status().message()));
      spec.registry_auth = *auth;
    }
  }
  if (spec.value_format == KafkaSinkSpec::ValueFormat::kAvro && spec.registry_url.empty()) {
    return at(options.at("value_format")->loc, fmt::format(
        "sink '{}': value_format => 'avro' needs schema_registry_url => 'http(s)://host:port' (the value's schema "
        "is registered there under subject '{}-value', and each record names its id)", sink.name, spec.topic));
  }
  if (auto it = options.find("key"); it != options.end()) spec.key_column = it->second->value;
  if (auto it = options.find("headers"); it != options.end()) spec.headers_column = it->second->value;
  if (auto it = options.find("max_rows_per_transaction"); it != options.end()) {
    const auto n = parse_int64(it->second->value, "max_rows_per_transaction");
    if (!n.ok() || *n <= 0) {
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
  if (spec.value_format == KafkaSinkSpec::ValueFormat::kAvro) {
    // Every value column must have an Avro form: refused here, before any record is sent.
    std::vector<int> columns;
    for (int i = 0; i < rows.num_fields(); ++i) {
      if (!spec.headers_column || rows.field(i)->name() != *spec.headers_column) columns.push_back(i);
    }
    auto schema = format::avro_schema_of(rows, columns, "value", "");
    if (!schema.ok()) {
      return arrow::Status::Invalid(sql::format_error(file, flow_loc, fmt::format(
          "sink '{}' writes Avro values: {}", spec.sink, schema.status().message())));
    }
  }
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
