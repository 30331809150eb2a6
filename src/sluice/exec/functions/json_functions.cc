// JSON functions: from_json, get_json_object and to_json (written as Spark's Jackson generator
// writes it: NULL struct fields left out, Java's number text, ISO timestamps in UTC).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/decimal.h>
#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "sluice/common/status.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/json_functions.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace json_family {

void write_json_string(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += '"';
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// Java's Double.toString / Float.toString: the shortest digits that read back, as "d.ddd" for
// 1e-3 <= |x| < 1e7 and "d.dddE±n" otherwise; NaN and infinities as Jackson quotes them.
template <typename Float>
void write_java_number(Float x, std::string& out) {
  if (std::isnan(x)) {
    out += "\"NaN\"";
    return;
  }
  if (std::isinf(x)) {
    out += x > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  if (x == 0) {
    out += std::signbit(x) ? "-0.0" : "0.0";
    return;
  }
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), x, std::chars_format::scientific);
  std::string_view sci(buffer, static_cast<size_t>(result.ptr - buffer));  // -d.dddde+XX
  const bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  const size_t e = sci.find('e');
  std::string digits;
  for (char ch : sci.substr(0, e)) {
    if (ch != '.') digits += ch;
  }
  int exponent = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exponent);
  if (negative) out += '-';
  const double magnitude = std::fabs(static_cast<double>(x));
  if (magnitude >= 1e-3 && magnitude < 1e7) {
    if (exponent >= 0) {
      const auto whole = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= whole) {
        out += digits + std::string(whole - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, whole) + "." + digits.substr(whole);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }
    return;
  }
  out += digits.substr(0, 1) + "." + (digits.size() > 1 ? digits.substr(1) : "0") + "E" + std::to_string(exponent);
}

int64_t floor_div_json(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string iso_date(int64_t days) {
  // civil_from_days (Howard Hinnant)
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  return fmt::format("{:04d}-{:02d}-{:02d}", yoe + era * 400 + (m <= 2), m, d);
}

arrow::Status write_json_value(const arrow::Array& array, int64_t i, std::string& out);

arrow::Status write_json_value(const arrow::Array& array, int64_t i, std::string& out) {
  if (array.IsNull(i)) {
    out += "null";
    return arrow::Status::OK();
  }
  switch (array.type_id()) {
    case arrow::Type::BOOL: out += static_cast<const arrow::BooleanArray&>(array).Value(i) ? "true" : "false"; break;
    case arrow::Type::INT8: out += std::to_string(static_cast<const arrow::Int8Array&>(array).Value(i)); break;
    case arrow::Type::INT16: out += std::to_string(static_cast<const arrow::Int16Array&>(array).Value(i)); break;
    case arrow::Type::INT32: out += std::to_string(static_cast<const arrow::Int32Array&>(array).Value(i)); break;
    case arrow::Type::INT64: out += std::to_string(static_cast<const arrow::Int64Array&>(array).Value(i)); break;
    case arrow::Type::FLOAT: write_java_number(static_cast<const arrow::FloatArray&>(array).Value(i), out); break;
    case arrow::Type::DOUBLE: write_java_number(static_cast<const arrow::DoubleArray&>(array).Value(i), out); break;
    case arrow::Type::DECIMAL128: out += static_cast<const arrow::Decimal128Array&>(array).FormatValue(i); break;
    case arrow::Type::STRING: write_json_string(static_cast<const arrow::StringArray&>(array).GetView(i), out); break;
    case arrow::Type::LARGE_STRING: write_json_string(static_cast<const arrow::LargeStringArray&>(array).GetView(i), out); break;
    case arrow::Type::DATE32: out += '"' + iso_date(static_cast<const arrow::Date32Array&>(array).Value(i)) + '"'; break;
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampArray&>(array);
      const auto& type = static_cast<const arrow::TimestampType&>(*ts.type());
      int64_t micros = ts.Value(i);
      if (type.unit() == arrow::TimeUnit::SECOND) micros *= 1'000'000;
      if (type.unit() == arrow::TimeUnit::MILLI) micros *= 1'000;
      if (type.unit() == arrow::TimeUnit::NANO) micros = floor_div_json(micros, 1'000);
      const int64_t days = floor_div_json(micros, 86'400'000'000);
      const int64_t of_day = micros - days * 86'400'000'000;
      // Spark's default timestampFormat, yyyy-MM-dd'T'HH:mm:ss.SSSXXX, in the UTC session zone
      // (TIMESTAMP_NTZ has no zone: no suffix).
      out += fmt::format("\"{}T{:02d}:{:02d}:{:02d}.{:03d}{}\"", iso_date(days), of_day / 3'600'000'000,
                         of_day / 60'000'000 % 60, of_day / 1'000'000 % 60, of_day / 1'000 % 1'000,
                         type.timezone().empty() ? "" : "Z");
      break;
    }
    case arrow::Type::STRUCT: {
      const auto& s = static_cast<const arrow::StructArray&>(array);
      out += '{';
      bool first = true;
      for (int f = 0; f < s.num_fields(); ++f) {
        auto field = s.field(f);  // sliced to the struct's offset
        if (field->IsNull(i)) continue;  // Spark's ignoreNullFields
        if (!first) out += ',';
        first = false;
        write_json_string(s.type()->field(f)->name(), out);
        out += ':';
        ARROW_RETURN_NOT_OK(write_json_value(*field, i, out));
      }
      out += '}';
      break;
    }
    case arrow::Type::LIST: {
      const auto& l = static_cast<const arrow::ListArray&>(array);
      out += '[';
      for (int64_t j = l.value_offset(i); j < l.value_offset(i + 1); ++j) {
        if (j > l.value_offset(i)) out += ',';
        ARROW_RETURN_NOT_OK(write_json_value(*l.values(), j, out));
      }
      out += ']';
      break;
    }
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapArray&>(array);
      out += '{';
      for (int64_t j = m.value_offset(i); j < m.value_offset(i + 1); ++j) {
        if (j > m.value_offset(i)) out += ',';
        std::string key;
        ARROW_RETURN_NOT_OK(write_json_value(*m.keys(), j, key));
        if (key.empty() || key.front() != '"') key = '"' + key + '"';
        out += key + ':';
        ARROW_RETURN_NOT_OK(write_json_value(*m.items(), j, out));
      }
      out += '}';
      break;
    }
    default:
      return arrow::Status::NotImplemented("to_json of ", sql::sql_type_name(*array.type()));
  }
  return arrow::Status::OK();
}

arrow::Status to_json_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  return map_non_null_rows<arrow::StringBuilder>(*a, out, [&](int64_t r, std::string& text) {
    return write_json_value(*a, r, text);
  });
}

// Whether to_json writes every value inside `type`.
bool json_writable(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BOOL: case arrow::Type::INT8: case arrow::Type::INT16: case arrow::Type::INT32:
    case arrow::Type::INT64: case arrow::Type::FLOAT: case arrow::Type::DOUBLE: case arrow::Type::DECIMAL128:
    case arrow::Type::STRING: case arrow::Type::LARGE_STRING: case arrow::Type::DATE32: case arrow::Type::TIMESTAMP:
    case arrow::Type::NA:
      return true;
    case arrow::Type::STRUCT: case arrow::Type::LIST: case arrow::Type::MAP:
      for (const auto& f : type.fields()) {
        if (!json_writable(*f->type())) return false;
      }
      return true;
    default:
      return false;
  }
}

arrow::Result<BoundExpression> bind_to_json(const FunctionCall& c) {
  if (c.size() == 2) return c.error_at(1, "to_json options are not supported yet; call to_json(value) alone");
  const auto id = c.type(0).id();
  if (id != arrow::Type::STRUCT && id != arrow::Type::LIST && id != arrow::Type::MAP) {
    return c.error_at(0, fmt::format("to_json needs a STRUCT, ARRAY or MAP, not {}", sql::sql_type_name(c.type(0))));
  }
  if (!json_writable(c.type(0))) {
    return c.error_at(0, fmt::format("to_json cannot write {} yet (binary and interval values)", sql::sql_type_name(c.type(0))));
  }
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once("sluice_to_json", []() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>("sluice_to_json", cp::Arity::Unary(), cp::FunctionDoc::Empty());
    for (auto id : {arrow::Type::STRUCT, arrow::Type::LIST, arrow::Type::MAP}) {
      ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(id)}, cp::OutputType(arrow::utf8()), to_json_exec));
    }
    return f;
  }));
  return c.call(function, c.expressions());
}

}  // namespace json_family

void register_json_functions(FunctionRegistry& r) {
  r.add({"from_json", {}, 2, 3, "json", "the schema's STRUCT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto ddl, c.literal_string(1));
           auto schema = sql::parse_ddl_schema(ddl);
           if (!schema.ok()) return c.error_at(1, schema.status().message());
           if (!is_string_type(c.type(0)) && c.type(0).id() != arrow::Type::BINARY) {
             return c.error_at(0, fmt::format("from_json needs STRING input, not {}", sql::sql_type_name(c.type(0))));
           }
           ARROW_ASSIGN_OR_RAISE(auto function, from_json_function(arrow::struct_((*schema)->fields())));
           return c.call(function, {c.expression(0)});
         }, "the schema must be a DDL string literal; options are not read"});
  r.add({"get_json_object", {"json_extract_path_text"}, 2, 2, "json", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto path, c.literal_string(1));
           auto function = json_path_function(path);
           if (!function.ok()) return c.error_at(1, function.status().message());
           auto input = c.type(0).id() == arrow::Type::BINARY ? c.expression(0) : cast_to(c.expression(0), arrow::utf8());
           return c.call(*function, {input});
         }, "the path must be a literal"});
  r.add({"to_json", {}, 1, 2, "json", "STRING", json_family::bind_to_json,
         "no options; timestamps with milliseconds (Spark's default format)"});
}

}  // namespace sluice::exec
