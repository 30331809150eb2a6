// Rows as JSON objects (json_row_encoder.h): one writer per column chosen once per batch, then
// the rows written into one reused buffer.
#include "sluice/format/json_row_encoder.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/base64.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <functional>

#include "sluice/common/time_text.h"

namespace sluice::format {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
// Writes element `row` of the array it was made for (not null).
using ValueWriter = std::function<void(int64_t row, Writer& out)>;

void write_double(double v, Writer& out) {
  if (std::isnan(v)) {
    out.String("NaN");
  } else if (std::isinf(v)) {
    out.String(v > 0 ? "Infinity" : "-Infinity");
  } else {
    out.Double(v);
  }
}

void write_text(std::string_view s, Writer& out) { out.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

arrow::Result<ValueWriter> make_writer(const std::shared_ptr<arrow::Array>& array, const std::string& column);

// Writes element `row` of `array`, or null.
void write_or_null(const arrow::Array& array, const ValueWriter& w, int64_t row, Writer& out) {
  if (array.IsNull(row)) {
    out.Null();
  } else {
    w(row, out);
  }
}

template <typename ArrayType>
ValueWriter integer_writer(const std::shared_ptr<arrow::Array>& array) {
  auto a = std::static_pointer_cast<ArrayType>(array);
  return [a](int64_t row, Writer& out) {
    const auto v = a->Value(row);
    if constexpr (std::is_signed_v<decltype(v)>) {
      out.Int64(static_cast<int64_t>(v));
    } else {
      out.Uint64(static_cast<uint64_t>(v));
    }
  };
}

arrow::Result<ValueWriter> make_writer(const std::shared_ptr<arrow::Array>& array, const std::string& column) {
  using arrow::Type;
  switch (array->type_id()) {
    case Type::NA: return ValueWriter([](int64_t, Writer& out) { out.Null(); });
    case Type::BOOL: {
      auto a = std::static_pointer_cast<arrow::BooleanArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { out.Bool(a->Value(row)); });
    }
    case Type::INT8: return integer_writer<arrow::Int8Array>(array);
    case Type::INT16: return integer_writer<arrow::Int16Array>(array);
    case Type::INT32: return integer_writer<arrow::Int32Array>(array);
    case Type::INT64: return integer_writer<arrow::Int64Array>(array);
    case Type::UINT8: return integer_writer<arrow::UInt8Array>(array);
    case Type::UINT16: return integer_writer<arrow::UInt16Array>(array);
    case Type::UINT32: return integer_writer<arrow::UInt32Array>(array);
    case Type::UINT64: return integer_writer<arrow::UInt64Array>(array);
    case Type::FLOAT: {
      auto a = std::static_pointer_cast<arrow::FloatArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_double(a->Value(row), out); });
    }
    case Type::DOUBLE: {
      auto a = std::static_pointer_cast<arrow::DoubleArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_double(a->Value(row), out); });
    }
    case Type::STRING: {
      auto a = std::static_pointer_cast<arrow::StringArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_text(a->GetView(row), out); });
    }
    case Type::LARGE_STRING: {
      auto a = std::static_pointer_cast<arrow::LargeStringArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_text(a->GetView(row), out); });
    }
    case Type::BINARY: {
      auto a = std::static_pointer_cast<arrow::BinaryArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_text(arrow::util::base64_encode(a->GetView(row)), out); });
    }
    case Type::LARGE_BINARY: {
      auto a = std::static_pointer_cast<arrow::LargeBinaryArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_text(arrow::util::base64_encode(a->GetView(row)), out); });
    }
    case Type::FIXED_SIZE_BINARY: {
      auto a = std::static_pointer_cast<arrow::FixedSizeBinaryArray>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_text(arrow::util::base64_encode(a->GetView(row)), out); });
    }
    case Type::DATE32: {
      auto a = std::static_pointer_cast<arrow::Date32Array>(array);
      return ValueWriter([a](int64_t row, Writer& out) { write_text(format_date32(a->Value(row)), out); });
    }
    case Type::TIMESTAMP: {
      auto a = std::static_pointer_cast<arrow::TimestampArray>(array);
      const auto& type = static_cast<const arrow::TimestampType&>(*array->type());
      const auto unit = type.unit();
      // Spark's to_json: TIMESTAMP as yyyy-MM-dd'T'HH:mm:ss.SSSXXX in the UTC session zone (so
      // `Z`), TIMESTAMP_NTZ (no zone) as yyyy-MM-dd'T'HH:mm:ss.SSS; the fraction is cut to ms.
      const bool utc = !type.timezone().empty();
      return ValueWriter([a, unit, utc](int64_t row, Writer& out) {
        write_text(format_timestamp_micros(to_micros(a->Value(row), unit), utc, false), out);
      });
    }
    case Type::DECIMAL128: {
      auto a = std::static_pointer_cast<arrow::Decimal128Array>(array);
      return ValueWriter([a](int64_t row, Writer& out) {
        const auto text = a->FormatValue(row);
        out.RawValue(text.data(), text.size(), rapidjson::kNumberType);
      });
    }
    case Type::STRUCT: {
      auto a = std::static_pointer_cast<arrow::StructArray>(array);
      std::vector<ValueWriter> fields;
      for (int i = 0; i < a->num_fields(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto w, make_writer(a->field(i), column + "." + a->type()->field(i)->name()));
        fields.push_back(std::move(w));
      }
      return ValueWriter([a, fields](int64_t row, Writer& out) {
        out.StartObject();
        for (int i = 0; i < a->num_fields(); ++i) {
          if (a->field(i)->IsNull(row)) continue;  // Spark's to_json leaves null fields out
          write_text(a->type()->field(i)->name(), out);
          fields[i](row, out);
        }
        out.EndObject();
      });
    }
    case Type::LIST: {
      auto a = std::static_pointer_cast<arrow::ListArray>(array);
      ARROW_ASSIGN_OR_RAISE(auto element, make_writer(a->values(), column + "[]"));
      return ValueWriter([a, element](int64_t row, Writer& out) {
        out.StartArray();
        for (int64_t k = a->value_offset(row); k < a->value_offset(row + 1); ++k) {
          write_or_null(*a->values(), element, k, out);
        }
        out.EndArray();
      });
    }
    case Type::MAP: {
      auto a = std::static_pointer_cast<arrow::MapArray>(array);
      ARROW_ASSIGN_OR_RAISE(auto keys, key_bytes(a->keys()));
      ARROW_ASSIGN_OR_RAISE(auto item, make_writer(a->items(), column + "[value]"));
      return ValueWriter([a, keys, item](int64_t row, Writer& out) {
        out.StartObject();
        const auto& k = static_cast<const arrow::BinaryArray&>(*keys);
        for (int64_t i = a->value_offset(row); i < a->value_offset(row + 1); ++i) {
          write_text(k.GetView(i), out);
          write_or_null(*a->items(), item, i, out);
        }
        out.EndObject();
      });
    }
    default:
      return arrow::Status::NotImplemented(fmt::format("column '{}' is {}, which has no JSON form here: cast it "
                                                       "(e.g. to STRING) in the flow's SELECT",
                                                       column, array->type()->ToString()));
  }
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::StringArray>> rows_to_json(const arrow::RecordBatch& batch,
                                                                const std::vector<int>& columns) {
  std::vector<ValueWriter> writers;
  std::vector<std::string> names;
  for (int c : columns) {
    ARROW_ASSIGN_OR_RAISE(auto w, make_writer(batch.column(c), batch.schema()->field(c)->name()));
    writers.push_back(std::move(w));
    names.push_back(batch.schema()->field(c)->name());
  }
  arrow::StringBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.num_rows()));
  rapidjson::StringBuffer buffer;
  for (int64_t row = 0; row < batch.num_rows(); ++row) {
    buffer.Clear();
    Writer out(buffer);
    out.StartObject();
    for (size_t i = 0; i < columns.size(); ++i) {
      const auto& column = *batch.column(columns[i]);
      if (column.IsNull(row)) continue;  // as Spark's to_json
      write_text(names[i], out);
      writers[i](row, out);
    }
    out.EndObject();
    ARROW_RETURN_NOT_OK(builder.Append(buffer.GetString(), static_cast<int32_t>(buffer.GetSize())));
  }
  std::shared_ptr<arrow::StringArray> result;
  ARROW_RETURN_NOT_OK(builder.Finish(&result));
  return result;
}

arrow::Result<std::shared_ptr<arrow::Array>> key_bytes(const std::shared_ptr<arrow::Array>& column) {
  switch (column->type_id()) {
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return column;
    default: {
      ARROW_ASSIGN_OR_RAISE(auto cast, arrow::compute::Cast(column, arrow::utf8()));
      return cast.make_array();
    }
  }
}

}  // namespace sluice::format
