// Arrow <-> Delta schema JSON.
#include "sluice/delta/schema.h"

#include <arrow/type.h>
#include <arrow/util/key_value_metadata.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <vector>

#include "sluice/common/bounded_regex.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::delta {
namespace {

using nlohmann::json;

arrow::Result<json> type_to_json(const arrow::DataType& type);

arrow::Result<json> field_to_json(const arrow::Field& field) {
  ARROW_ASSIGN_OR_RAISE(auto type, type_to_json(*field.type()));
  json metadata = json::object();
  // A column's COMMENT, where Spark keeps it, and its tags (sluice.tag.*).
  if (field.metadata()) {
    for (int64_t i = 0; i < field.metadata()->size(); ++i) {
      if (is_kept_column_metadata(field.metadata()->key(i))) metadata[field.metadata()->key(i)] = field.metadata()->value(i);
    }
  }
  return json{{"name", field.name()},
              {"type", type},
              {"nullable", field.nullable()},
              {"metadata", metadata}};
}

arrow::Result<json> type_to_json(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BOOL: return json("boolean");
    case arrow::Type::INT8: return json("byte");
    case arrow::Type::INT16: return json("short");
    case arrow::Type::INT32: return json("integer");
    case arrow::Type::INT64: return json("long");
    case arrow::Type::FLOAT: return json("float");
    case arrow::Type::DOUBLE: return json("double");
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW: return json("string");
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW: return json("binary");
    case arrow::Type::DATE32: return json("date");
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(type);
      if (ts.unit() != arrow::TimeUnit::MICRO) {
        return invalid("timestamp column has unit {}; Delta stores microseconds",
                       arrow::internal::ToString(ts.unit()));
      }
      return json(ts.timezone().empty() ? "timestamp_ntz" : "timestamp");
    }
    case arrow::Type::DECIMAL128: {
      const auto& d = static_cast<const arrow::Decimal128Type&>(type);
      return json(fmt::format("decimal({},{})", d.precision(), d.scale()));
    }
    case arrow::Type::STRUCT: {
      json fields = json::array();
      for (const auto& f : type.fields()) {
        ARROW_ASSIGN_OR_RAISE(auto fj, field_to_json(*f));
        fields.push_back(std::move(fj));
      }
      return json{{"type", "struct"}, {"fields", fields}};
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      const auto& value_field = *type.field(0);
      ARROW_ASSIGN_OR_RAISE(auto element, type_to_json(*value_field.type()));
      return json{{"type", "array"},
                  {"elementType", element},
                  {"containsNull", value_field.nullable()}};
    }
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(type);
      ARROW_ASSIGN_OR_RAISE(auto key, type_to_json(*m.key_type()));
      ARROW_ASSIGN_OR_RAISE(auto value, type_to_json(*m.item_type()));
      return json{{"type", "map"},
                  {"keyType", key},
                  {"valueType", value},
                  {"valueContainsNull", m.item_field()->nullable()}};
    }
    default:
      return invalid("Arrow type {} has no Delta equivalent", type.ToString());
  }
}

arrow::Result<std::shared_ptr<arrow::DataType>> type_from_json(const json& j);

arrow::Result<std::shared_ptr<arrow::Field>> field_from_json(const json& j) {
  if (!j.is_object() || !j.contains("name") || !j.contains("type")) {
    return invalid("schema field must be an object with 'name' and 'type': {}", j.dump());
  }
  ARROW_ASSIGN_OR_RAISE(auto type, type_from_json(j["type"]));
  auto field = arrow::field(j["name"].get<std::string>(), type, j.value("nullable", true));
  if (j.contains("metadata") && j["metadata"].is_object()) {
    std::vector<std::string> keys, values;
    for (const auto& [key, value] : j["metadata"].items()) {
      if (is_kept_column_metadata(key) && value.is_string()) {
        keys.push_back(key);
        values.push_back(value.get<std::string>());
      }
    }
    if (!keys.empty()) field = field->WithMetadata(arrow::key_value_metadata(keys, values));
  }
  return field;
}

arrow::Result<std::shared_ptr<arrow::DataType>> type_from_json(const json& j) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "boolean") return arrow::boolean();
    if (s == "byte") return arrow::int8();
    if (s == "short") return arrow::int16();
    if (s == "integer") return arrow::int32();
    if (s == "long") return arrow::int64();
    if (s == "float") return arrow::float32();
    if (s == "double") return arrow::float64();
    if (s == "string") return arrow::utf8();
    if (s == "binary") return arrow::binary();
    if (s == "date") return arrow::date32();
    if (s == "timestamp") return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    if (s == "timestamp_ntz") return arrow::timestamp(arrow::TimeUnit::MICRO);
    static const std::regex kDecimal(R"(decimal\(\s*(\d+)\s*,\s*(\d+)\s*\))");
    std::smatch m;
    if (regex_match_bounded(s, m, kDecimal)) {
      // A hostile log may write decimal(99999999999,0): refused here, not thrown past the reader.
      const auto precision = parse_int32(m[1].str(), "decimal precision");
      const auto scale = parse_int32(m[2].str(), "decimal scale");
      if (!precision.ok() || !scale.ok()) {
        return invalid("Delta type '{}': precision and scale must be at most 38", quote_for_error(s));
      }
      return arrow::Decimal128Type::Make(*precision, *scale);
    }
    return invalid("unknown Delta type '{}'", quote_for_error(s));
  }
  if (!j.is_object() || !j.contains("type")) return invalid("bad Delta type: {}", j.dump());
  const auto kind = j["type"].get<std::string>();
  if (kind == "struct") {
    arrow::FieldVector fields;
    for (const auto& f : j.value("fields", json::array())) {
      ARROW_ASSIGN_OR_RAISE(auto field, field_from_json(f));
      fields.push_back(std::move(field));
    }
    return arrow::struct_(fields);
  }
  // A missing member is an error (the const operator[] of nlohmann::json asserts on it).
  if ((kind == "array" && !j.contains("elementType")) ||
      (kind == "map" && (!j.contains("keyType") || !j.contains("valueType")))) {
    return invalid("Delta {} type without its element, key or value type: {}", kind, j.dump());
  }
  if (kind == "array") {
    ARROW_ASSIGN_OR_RAISE(auto element, type_from_json(j["elementType"]));
    return arrow::list(arrow::field("element", element, j.value("containsNull", true)));
  }
  if (kind == "map") {
    ARROW_ASSIGN_OR_RAISE(auto key, type_from_json(j["keyType"]));
    ARROW_ASSIGN_OR_RAISE(auto value, type_from_json(j["valueType"]));
    return std::make_shared<arrow::MapType>(
        arrow::field("key", key, false),
        arrow::field("value", value, j.value("valueContainsNull", true)));
  }
  return invalid("unknown Delta complex type '{}'", kind);
}

bool type_uses_ntz(const arrow::DataType& type) {
  if (type.id() == arrow::Type::TIMESTAMP) {
    return static_cast<const arrow::TimestampType&>(type).timezone().empty();
  }
  for (const auto& f : type.fields()) {
    if (type_uses_ntz(*f->type())) return true;
  }
  return false;
}

}  // namespace

bool is_kept_column_metadata(const std::string& key) {
  return key == "comment" || key.rfind(kColumnTagPrefix, 0) == 0;
}

arrow::Result<std::string> to_delta_schema_string(const arrow::Schema& schema) {
  json fields = json::array();
  for (const auto& f : schema.fields()) {
    auto fj = field_to_json(*f);
    if (!fj.ok()) return with_context(fj.status(), fmt::format("column '{}'", f->name()));
    fields.push_back(std::move(*fj));
  }
  return json{{"type", "struct"}, {"fields", fields}}.dump();
}

arrow::Result<std::shared_ptr<arrow::Schema>> from_delta_schema_string(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("schemaString is not valid JSON");
  try {
    ARROW_ASSIGN_OR_RAISE(auto type, type_from_json(j));
    if (type->id() != arrow::Type::STRUCT) return invalid("schemaString is not a struct");
    return arrow::schema(type->fields());
  } catch (const std::exception& e) {
    return invalid("malformed schemaString: {}", e.what());
  }
}

std::string delta_type_name(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::STRUCT: {
      std::string out = "struct<";
      for (int i = 0; i < type.num_fields(); ++i) {
        if (i) out += ",";
        out += type.field(i)->name() + ":" + delta_type_name(*type.field(i)->type());
      }
      return out + ">";
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
      return "array<" + delta_type_name(*type.field(0)->type()) + ">";
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(type);
      return "map<" + delta_type_name(*m.key_type()) + "," + delta_type_name(*m.item_type()) + ">";
    }
    default: {
      auto j = type_to_json(type);
      return j.ok() && j->is_string() ? j->get<std::string>() : type.ToString();
    }
  }
}

bool uses_timestamp_ntz(const arrow::Schema& schema) {
  for (const auto& f : schema.fields()) {
    if (type_uses_ntz(*f->type())) return true;
  }
  return false;
}

}  // namespace sluice::delta
