// read_kafka(...) bound to a plan source; see read_kafka_binding.h.
#include "sluice/pipeline/read_kafka_binding.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <utility>

#include "sluice/common/secrets.h"
#include "sluice/common/text.h"
#include "sluice/format/schema_registry.h"
#include "sluice/kafka/client_properties.h"
#include "sluice/kafka/source_schema.h"
#include "sluice/sql/types.h"

namespace sluice::pipeline {

using exec::PlanSource;
using sql::ExprKind;

arrow::Result<std::map<std::string, std::string>> read_kafka_options(const sql::TableRef& from,
                                                                      const sql::SourceFile& file) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  std::map<std::string, std::string> options;
  for (const auto& a : from.args) {
    if (a->kind != ExprKind::kNamedArg || a->args[0]->kind != ExprKind::kLiteral) {
      return fail(a->loc, "read_kafka takes named arguments with literal values (topic => 'name')");
    }
    // Databricks' read_kafka spells them camelCase (subscribe, startingOffsets,
    // bootstrapServers); DESIGN.md's examples snake_case (topic, starting_offsets).
    static const std::map<std::string, std::string> kAliases = {
        {"subscribe", "topic"}, {"startingoffsets", "starting_offsets"},
        {"bootstrapservers", "bootstrap_servers"}, {"startingOffsets", "starting_offsets"},
        {"bootstrapServers", "bootstrap_servers"}, {"endingOffsets", "ending_offsets"},
        {"maxOffsetsPerTrigger", "max_offsets_per_trigger"}, {"failOnDataLoss", "fail_on_data_loss"},
        {"subscribePattern", "topic_pattern"}, {"startingTimestamp", "starting_timestamp"},
        {"startingOffsetsByTimestamp", "starting_offsets_by_timestamp"},
        {"endingTimestamp", "ending_timestamp"},
        {"endingOffsetsByTimestamp", "ending_offsets_by_timestamp"},
        {"includeHeaders", "include_headers"}, {"groupIdPrefix", "group_id_prefix"},
        {"groupId", "group_id"}, {"groupMode", "group_mode"}};
    std::string key = a->name;
    if (auto alias = kAliases.find(key); alias != kAliases.end()) key = alias->second;
    if (auto alias = kAliases.find(to_lower(key)); alias != kAliases.end()) key = alias->second;
    static const std::set<std::string> kKnown = {
        "topic", "topic_pattern", "starting_offsets", "ending_offsets", "starting_timestamp",
        "starting_offsets_by_timestamp", "ending_timestamp", "ending_offsets_by_timestamp",
        "max_offsets_per_trigger", "fail_on_data_loss", "include_headers", "group_mode",
        "group_id", "group_id_prefix", "bootstrap_servers", "cluster", "value_format", "value_schema",
        "schema_registry_url", "schema_registry_subject", "schema_registry_ca_location",
        "schema_registry_auth_file", "rescued_data_column", "schema_sample_records"};
    if (!kKnown.count(key) && key.rfind("kafka.", 0) != 0) {
      return fail(a->loc, fmt::format("read_kafka has no argument '{}' (known: topic/subscribe, "
                                      "topic_pattern/subscribePattern, starting_offsets/startingOffsets, "
                                      "startingTimestamp, startingOffsetsByTimestamp, ending_offsets, "
                                      "include_headers, group_mode, groupIdPrefix, bootstrapServers, "
                                      "cluster, value_format, value_schema, schema_registry_url, "
                                      "schema_registry_subject, schema_registry_ca_location, "
                                      "schema_registry_auth_file, rescued_data_column, kafka.*)",
                                      a->name));
    }
    if (key.rfind("kafka.", 0) == 0) {
      // librdkafka properties are checked offline, so `validate` refuses what `run` would.
      auto checked = kafka::check_property(key.substr(6), a->args[0]->value);
      if (!checked.ok()) return fail(a->loc, fmt::format("read_kafka {}: {}", key, checked.message()));
    }
    options[key] = a->args[0]->value;
    if (key == "schema_registry_ca_location" || key == "schema_registry_auth_file") {
      // A relative path is relative to the SQL file that names it, as ${file:} in pipeline.yaml
      // is to the pipeline folder: the run's working directory does not matter.
      std::filesystem::path path(a->args[0]->value);
      if (path.is_relative()) options[key] = (std::filesystem::path(file.name).parent_path() / path).string();
    }
  }
  return options;
}

arrow::Result<format::ValueFormat> value_format_of(const std::map<std::string, std::string>& options) {
  format::ValueFormat out;
  auto get = [&](const char* key) {
    auto it = options.find(key);
    return it == options.end() ? std::string() : it->second;
  };
  const auto kind = to_lower(get("value_format"));
  if (kind.empty()) {
    // Without value_format the value column stays binary: an option that only says how to
    // decode it would be ignored, so it is refused (never accepted and dropped).
    for (const char* key : {"value_schema", "schema_registry_url", "schema_registry_subject",
                            "schema_registry_ca_location", "schema_registry_auth_file", "rescued_data_column",
                            "schema_sample_records"}) {
      if (options.count(key)) {
        return arrow::Status::Invalid(fmt::format("read_kafka {} says how to decode the value, but there is no "
                                                  "value_format: add value_format => 'json' or 'avro', or remove "
                                                  "{}",
                                                  key, key));
      }
    }
    return out;
  }
  if (auto r = options.find("rescued_data_column"); r != options.end()) {
    const auto flag = to_lower(r->second);
    if (flag != "true" && flag != "false") {
      return arrow::Status::Invalid(
          fmt::format("read_kafka rescued_data_column must be 'true' or 'false', not '{}'", r->second));
    }
  }
  if (kind == "json") {
    out.kind = format::ValueFormat::Kind::kJson;
    if (get("value_schema").empty()) {
      return arrow::Status::Invalid("value_format => 'json' needs value_schema => 'a INT, b STRING, ...'");
    }
    ARROW_ASSIGN_OR_RAISE(out.json_schema, sql::parse_ddl_schema(get("value_schema")));
    for (const char* key : {"schema_registry_url", "schema_registry_subject", "schema_registry_ca_location",
                            "schema_registry_auth_file"}) {
      if (options.count(key)) {
        return arrow::Status::Invalid(fmt::format("read_kafka {} is for value_format => 'avro' (a schema "
                                                  "registry); value_format => 'json' does not use it: remove it",
                                                  key));
      }
    }
  } else if (kind == "avro") {
    out.kind = format::ValueFormat::Kind::kAvro;
    out.avro_schema = get("value_schema");
    out.registry_url = get("schema_registry_url");
    out.subject = get("schema_registry_subject");
    out.registry_ca_location = get("schema_registry_ca_location");
    // Basic auth: a file holding 'user:password', else $SLUICE_REGISTRY_AUTH (as sluice
    // decode); never a password in the SQL text.
    if (auto file = get("schema_registry_auth_file"); !file.empty()) {
      ARROW_ASSIGN_OR_RAISE(out.registry_auth,
                            format::read_registry_auth_file(file, "read_kafka schema_registry_auth_file"));
    } else if (const char* env = std::getenv("SLUICE_REGISTRY_AUTH"); env != nullptr && *env != '\0') {
      std::string_view auth(env);
      if (auth.find(':') == std::string_view::npos) {
        return arrow::Status::Invalid("SLUICE_REGISTRY_AUTH must be 'user:password'");
      }
      remember_secret(auth.substr(auth.find(':') + 1));
      out.registry_auth = std::string(auth);
    }
  } else {
    return arrow::Status::Invalid(fmt::format("value_format must be 'json' or 'avro', not '{}'", get("value_format")));
  }
  if (auto r = get("rescued_data_column"); !r.empty()) out.rescued_data_column = to_lower(r) != "false";
  return out;
}

arrow::Result<PlanSource> bind_read_kafka(const sql::TableRef& from, const sql::SourceFile& file,
                                          const ValueSchemaInference& infer) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  std::string name;
  for (const auto& p : from.name) name += (name.empty() ? "" : ".") + p;
  if (to_lower(name) != "read_kafka") {
    return fail(from.loc, fmt::format("table function {} is not supported (only read_kafka and table_changes "
                                      "are): read a Kafka topic with read_kafka(topic => '...'), a dataset of "
                                      "the pipeline by its name, or its change feed with table_changes('name', "
                                      "version)", name));
  }
  PlanSource src{PlanSource::Kind::kKafka, "", from.stream, {}, kafka::kafka_source_schema(), from.loc};
  ARROW_ASSIGN_OR_RAISE(src.options, read_kafka_options(from, file));
  if (!src.options.count("topic") && !src.options.count("topic_pattern")) {
    return fail(from.loc, "read_kafka needs topic => 'name' (or subscribe => 'a,b', subscribePattern => 'regex')");
  }
  src.name = src.options.count("topic") ? src.options.at("topic") : src.options.at("topic_pattern");
  if (auto h = src.options.find("include_headers"); h != src.options.end() && to_lower(h->second) == "false") {
    src.schema = kafka::kafka_source_schema(kafka::HeadersColumn::kDrop);
  }
  if (!src.options.count("value_format")) {
    // The value stays binary; value_format_of refuses the decoding options that would be ignored.
    auto none = value_format_of(src.options);
    if (!none.ok()) return fail(from.loc, none.status().message());
  }
  if (src.options.count("schema_sample_records") &&
      (to_lower(src.options.count("value_format") ? src.options.at("value_format") : "") != "json" ||
       src.options.count("value_schema"))) {
    // It sizes the sample a JSON schema is inferred from; nothing is inferred otherwise.
    return fail(from.loc, "read_kafka schema_sample_records sizes the sample for inferring a JSON value's schema, "
                          "which happens only with value_format => 'json' and no value_schema: remove it");
  }
  if (src.options.count("value_format") && to_lower(src.options.at("value_format")) == "json" &&
      !src.options.count("value_schema")) {
    // No declared schema: one inferred from a sample of the topic, then fixed.
    if (!infer) return fail(from.loc, "value_format => 'json' needs value_schema => 'a INT, b STRING, ...'");
    auto inferred = infer(src);
    if (!inferred.ok()) return fail(from.loc, fmt::format("read_kafka: {}", inferred.status().message()));
    src.options["value_schema"] = *inferred;
  }
  if (src.options.count("value_format")) {
    // Decoded at the source: value becomes a struct of the payload's fields.
    auto format = value_format_of(src.options);
    if (!format.ok()) return fail(from.loc, format.status().message());
    auto decoder = format::make_value_decoder(&*format);
    if (!decoder.ok()) return fail(from.loc, fmt::format("read_kafka: {}", decoder.status().message()));
    if (format->kind == format::ValueFormat::Kind::kAvro) src.options["value_schema"] = format->avro_schema;
    src.schema = format::decoded_source_schema(*src.schema, *(*decoder)->schema());
  }
  return src;
}

exec::SelectPlan::TableFunctionBinder read_kafka_binder(ValueSchemaInference infer) {
  return [infer = std::move(infer)](const sql::TableRef& from, const sql::SourceFile& file) {
    return bind_read_kafka(from, file, infer);
  };
}

}  // namespace sluice::pipeline
