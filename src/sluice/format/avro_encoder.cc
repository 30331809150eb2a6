// Rows as Avro records (avro_encoder.h): one encoder per column chosen once per batch, then the
// rows written into one reused buffer.
#include "sluice/format/avro_encoder.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>

#include "sluice/common/status.h"
#include "sluice/common/time_text.h"

namespace sluice::format {

// Named, not anonymous: the unity build compiles this with json_row_encoder.cc, whose helpers
// share some of these names.
namespace avro_encoding {

// Writes element `row` of the array it was made for, as its Avro type (a union branch first when
// the field is nullable).
using Encode = std::function<void(int64_t row, std::string& out)>;

bool is_avro_name(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

void put_long(int64_t v, std::string& out) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  while (z >= 0x80) {
    out.push_back(static_cast<char>((z & 0x7F) | 0x80));
    z >>= 7;
  }
  out.push_back(static_cast<char>(z));
}

void put_bytes(std::string_view s, std::string& out) {
  put_long(static_cast<int64_t>(s.size()), out);
  out.append(s.data(), s.size());
}

template <typename T>
void put_le(T v, std::string& out) {  // float and double: IEEE 754, little-endian (as x86 holds them)
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

// A decimal as Avro's decimal bytes: the unscaled value, two's complement, big-endian, in as few
// bytes as keep its sign.
void put_decimal(const uint8_t* little_endian16, std::string& out) {
  uint8_t be[16];
  for (int i = 0; i < 16; ++i) be[i] = little_endian16[15 - i];
  int start = 0;
  auto redundant = [&](int i) {  // a sign byte the next byte's top bit repeats
    return (be[i] == 0x00 && !(be[i + 1] & 0x80)) || (be[i] == 0xFF && (be[i + 1] & 0x80));
  };
  while (start < 15 && redundant(start)) ++start;
  put_bytes(std::string_view(reinterpret_cast<const char*>(be + start), 16 - start), out);
}

arrow::Status unsupported(const std::string& column, const arrow::DataType& type) {
  return invalid("column '{}' is {}, which has no Avro form in a sink (supported: booleans, integers up to 64 bits, "
                 "floats, strings, binaries, dates, times, timestamps, decimals, structs, arrays, maps with "
                 "string keys): CAST it in the flow's SELECT",
                 column, type.ToString());
}

// The Avro type of `type`; `record` names a struct's record (unique within the schema).
arrow::Result<nlohmann::json> avro_type(const arrow::DataType& type, bool nullable, const std::string& record,
                                        const std::string& column) {
  nlohmann::json t;
  switch (type.id()) {
    case arrow::Type::BOOL: t = "boolean"; break;
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16: t = "int"; break;
    case arrow::Type::INT64:
    case arrow::Type::UINT32: t = "long"; break;
    case arrow::Type::FLOAT: t = "float"; break;
    case arrow::Type::DOUBLE: t = "double"; break;
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING: t = "string"; break;
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY: t = "bytes"; break;
    case arrow::Type::DATE32:
    case arrow::Type::DATE64: t = {{"type", "int"}, {"logicalType", "date"}}; break;
    case arrow::Type::TIME32:
    case arrow::Type::TIME64: t = {{"type", "long"}, {"logicalType", "time-micros"}}; break;
    case arrow::Type::TIMESTAMP: {
      const bool utc = !static_cast<const arrow::TimestampType&>(type).timezone().empty();
      t = {{"type", "long"}, {"logicalType", utc ? "timestamp-micros" : "local-timestamp-micros"}};
      break;
    }
    case arrow::Type::DECIMAL128: {
      const auto& d = static_cast<const arrow::Decimal128Type&>(type);
      t = {{"type", "bytes"}, {"logicalType", "decimal"}, {"precision", d.precision()}, {"scale", d.scale()}};
      break;
    }
    case arrow::Type::STRUCT: {
      nlohmann::json fields = nlohmann::json::array();
      for (const auto& f : type.fields()) {
        const auto path = column + "." + f->name();
        if (!is_avro_name(f->name())) {
          return invalid("field '{}' is not an Avro name (letters, digits and _, not starting with a digit): "
                         "rename it in the flow's SELECT (named_struct)", path);
        }
        ARROW_ASSIGN_OR_RAISE(auto ft, avro_type(*f->type(), f->nullable(), record + "_" + f->name(), path));
        fields.push_back({{"name", f->name()}, {"type", ft}});
        if (f->nullable()) fields.back()["default"] = nullptr;
      }
      t = {{"type", "record"}, {"name", record}, {"fields", fields}};
      break;
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      const auto& item = *static_cast<const arrow::BaseListType&>(type).value_field();
      ARROW_ASSIGN_OR_RAISE(auto it, avro_type(*item.type(), item.nullable(), record + "_item", column + "[]"));
      t = {{"type", "array"}, {"items", it}};
      break;
    }
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(type);
      if (m.key_type()->id() != arrow::Type::STRING) {
        return invalid("column '{}' is {}: an Avro map has string keys; CAST the keys to STRING in the flow's "
                       "SELECT", column, type.ToString());
      }
      ARROW_ASSIGN_OR_RAISE(auto vt, avro_type(*m.item_type(), m.item_field()->nullable(), record + "_value",
                                               column + "{}"));
      t = {{"type", "map"}, {"values", vt}};
      break;
    }
    case arrow::Type::DICTIONARY:
      return avro_type(*static_cast<const arrow::DictionaryType&>(type).value_type(), nullable, record, column);
    default:
      return unsupported(column, type);
  }
  if (nullable) return nlohmann::json::array({"null", t});
  return t;
}

arrow::Result<Encode> make_encoder(const std::shared_ptr<arrow::Array>& array, bool nullable, const std::string& column);

// The value itself (no union branch) of element `row`, not null.
arrow::Result<Encode> value_encoder(const std::shared_ptr<arrow::Array>& array, const std::string& column) {
  const auto& type = *array->type();
  switch (type.id()) {
    case arrow::Type::BOOL: {
      auto a = std::static_pointer_cast<arrow::BooleanArray>(array);
      return Encode([a](int64_t r, std::string& out) { out.push_back(a->Value(r) ? 1 : 0); });
    }
#define SLUICE_AVRO_INT(ID, ArrayType)                                                      \
  case arrow::Type::ID: {                                                                   \
    auto a = std::static_pointer_cast<arrow::ArrayType>(array);                             \
    return Encode([a](int64_t r, std::string& out) { put_long(static_cast<int64_t>(a->Value(r)), out); }); \
  }
      SLUICE_AVRO_INT(INT8, Int8Array)
      SLUICE_AVRO_INT(INT16, Int16Array)
      SLUICE_AVRO_INT(INT32, Int32Array)
      SLUICE_AVRO_INT(INT64, Int64Array)
      SLUICE_AVRO_INT(UINT8, UInt8Array)
      SLUICE_AVRO_INT(UINT16, UInt16Array)
      SLUICE_AVRO_INT(UINT32, UInt32Array)
#undef SLUICE_AVRO_INT
    case arrow::Type::FLOAT: {
      auto a = std::static_pointer_cast<arrow::FloatArray>(array);
      return Encode([a](int64_t r, std::string& out) { put_le(a->Value(r), out); });
    }
    case arrow::Type::DOUBLE: {
      auto a = std::static_pointer_cast<arrow::DoubleArray>(array);
      return Encode([a](int64_t r, std::string& out) { put_le(a->Value(r), out); });
    }
    case arrow::Type::STRING:
    case arrow::Type::BINARY: {
      auto a = std::static_pointer_cast<arrow::BinaryArray>(array);
      return Encode([a](int64_t r, std::string& out) { put_bytes(a->GetView(r), out); });
    }
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY: {
      auto a = std::static_pointer_cast<arrow::LargeBinaryArray>(array);
      return Encode([a](int64_t r, std::string& out) { put_bytes(a->GetView(r), out); });
    }
    case arrow::Type::DATE32: {
      auto a = std::static_pointer_cast<arrow::Date32Array>(array);
      return Encode([a](int64_t r, std::string& out) { put_long(a->Value(r), out); });
    }
    case arrow::Type::DATE64: {
      auto a = std::static_pointer_cast<arrow::Date64Array>(array);
      return Encode([a](int64_t r, std::string& out) { put_long(floor_div(a->Value(r), 86400000), out); });
    }
    case arrow::Type::TIME32: {
      auto a = std::static_pointer_cast<arrow::Time32Array>(array);
      const auto unit = static_cast<const arrow::Time32Type&>(type).unit();
      return Encode([a, unit](int64_t r, std::string& out) { put_long(to_micros(a->Value(r), unit), out); });
    }
    case arrow::Type::TIME64: {
      auto a = std::static_pointer_cast<arrow::Time64Array>(array);
      const auto unit = static_cast<const arrow::Time64Type&>(type).unit();
      return Encode([a, unit](int64_t r, std::string& out) { put_long(to_micros(a->Value(r), unit), out); });
    }
    case arrow::Type::TIMESTAMP: {
      auto a = std::static_pointer_cast<arrow::TimestampArray>(array);
      const auto unit = static_cast<const arrow::TimestampType&>(type).unit();
      return Encode([a, unit](int64_t r, std::string& out) { put_long(to_micros(a->Value(r), unit), out); });
    }
    case arrow::Type::DECIMAL128: {
      auto a = std::static_pointer_cast<arrow::Decimal128Array>(array);
      return Encode([a](int64_t r, std::string& out) { put_decimal(a->GetValue(r), out); });
    }
    case arrow::Type::STRUCT: {
      auto a = std::static_pointer_cast<arrow::StructArray>(array);
      std::vector<Encode> fields;
      for (int i = 0; i < a->num_fields(); ++i) {
        const auto& f = a->struct_type()->field(i);
        ARROW_ASSIGN_OR_RAISE(auto e, make_encoder(a->field(i), f->nullable(), column + "." + f->name()));
        fields.push_back(std::move(e));
      }
      return Encode([fields = std::move(fields)](int64_t r, std::string& out) {
        for (const auto& f : fields) f(r, out);
      });
    }
    case arrow::Type::LIST:
    case arrow::Type::MAP: {  // a map array is a list array of (key, value) structs
      auto a = std::static_pointer_cast<arrow::ListArray>(array);
      Encode items;
      if (type.id() == arrow::Type::MAP) {
        auto m = std::static_pointer_cast<arrow::MapArray>(array);
        ARROW_ASSIGN_OR_RAISE(auto keys, value_encoder(m->keys(), column + "{key}"));
        ARROW_ASSIGN_OR_RAISE(auto values, make_encoder(m->items(), m->map_type()->item_field()->nullable(),
                                                        column + "{}"));
        items = [keys, values](int64_t i, std::string& out) {
          keys(i, out);
          values(i, out);
        };
      } else {
        ARROW_ASSIGN_OR_RAISE(items, make_encoder(a->values(), a->list_type()->value_field()->nullable(),
                                                  column + "[]"));
      }
      return Encode([a, items](int64_t r, std::string& out) {
        const int64_t begin = a->value_offset(r), end = a->value_offset(r + 1);
        if (end > begin) {
          put_long(end - begin, out);  // one block of all items
          for (int64_t i = begin; i < end; ++i) items(i, out);
        }
        put_long(0, out);
      });
    }
    case arrow::Type::LARGE_LIST: {
      auto a = std::static_pointer_cast<arrow::LargeListArray>(array);
      ARROW_ASSIGN_OR_RAISE(auto items, make_encoder(a->values(), a->list_type()->value_field()->nullable(),
                                                     column + "[]"));
      return Encode([a, items](int64_t r, std::string& out) {
        const int64_t begin = a->value_offset(r), end = a->value_offset(r + 1);
        if (end > begin) {
          put_long(end - begin, out);
          for (int64_t i = begin; i < end; ++i) items(i, out);
        }
        put_long(0, out);
      });
    }
    default:
      return unsupported(column, type);
  }
}

arrow::Result<Encode> make_encoder(const std::shared_ptr<arrow::Array>& array, bool nullable,
                                   const std::string& column) {
  ARROW_ASSIGN_OR_RAISE(auto value, value_encoder(array, column));
  if (!nullable) {
    // A field declared NOT NULL holds no nulls (the flow's plan guarantees it); its Avro type has
    // no null branch to write one as.
    return value;
  }
  return Encode([array, value](int64_t r, std::string& out) {
    if (array->IsNull(r)) {
      put_long(0, out);  // ["null", T]: branch 0
    } else {
      put_long(1, out);
      value(r, out);
    }
  });
}

}  // namespace avro_encoding

namespace ae = avro_encoding;

arrow::Result<std::string> avro_schema_of(const arrow::Schema& schema, const std::vector<int>& columns,
                                          const std::string& name, const std::string& namespace_) {
  nlohmann::json fields = nlohmann::json::array();
  for (int c : columns) {
    const auto& f = schema.field(c);
    if (!ae::is_avro_name(f->name())) {
      return invalid("column '{}' is not an Avro name (letters, digits and _, not starting with a digit): rename it "
                     "in the flow's SELECT (AS)", f->name());
    }
    ARROW_ASSIGN_OR_RAISE(auto t, ae::avro_type(*f->type(), f->nullable(), name + "_" + f->name(), f->name()));
    fields.push_back({{"name", f->name()}, {"type", t}});
    if (f->nullable()) fields.back()["default"] = nullptr;
  }
  nlohmann::json record{{"type", "record"}, {"name", name}, {"fields", fields}};
  if (!namespace_.empty()) record["namespace"] = namespace_;
  return record.dump();
}

arrow::Result<std::shared_ptr<arrow::BinaryArray>> rows_to_avro(const arrow::RecordBatch& batch,
                                                                const std::vector<int>& columns, int32_t schema_id) {
  std::vector<ae::Encode> encoders;
  for (int c : columns) {
    auto column = batch.column(c);
    if (column->type_id() == arrow::Type::DICTIONARY) {
      const auto& dict = static_cast<const arrow::DictionaryType&>(*column->type());
      ARROW_ASSIGN_OR_RAISE(auto decoded, arrow::compute::Cast(*column, dict.value_type()));
      column = std::move(decoded);
    }
    const auto& field = batch.schema()->field(c);
    ARROW_ASSIGN_OR_RAISE(auto e, ae::make_encoder(column, field->nullable(), field->name()));
    encoders.push_back(std::move(e));
  }
  char header[5] = {0, static_cast<char>((schema_id >> 24) & 0xFF), static_cast<char>((schema_id >> 16) & 0xFF),
                    static_cast<char>((schema_id >> 8) & 0xFF), static_cast<char>(schema_id & 0xFF)};
  arrow::BinaryBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.num_rows()));
  std::string row;
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    row.assign(header, sizeof(header));
    for (const auto& e : encoders) e(r, row);
    ARROW_RETURN_NOT_OK(builder.Append(row));
  }
  std::shared_ptr<arrow::BinaryArray> out;
  ARROW_RETURN_NOT_OK(builder.Finish(&out));
  return out;
}

}  // namespace sluice::format
