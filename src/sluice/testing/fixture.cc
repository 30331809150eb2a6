// Parsing of `sluice test` fixture files (fixture.h) with yaml-cpp; every error names file:line:col.
#include "sluice/testing/fixture.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <string_view>
#include <set>
#include <sstream>

#include "sluice/common/text.h"
#include "sluice/common/utf8.h"
#include "sluice/format/avro_schema.h"
#include "sluice/format/json_value_appender.h"

namespace sluice::testing {

namespace {

// Avro's binary encoding of a fixture value (a JSON value) as `node` of `schema`, for records a
// case gives with value_schema_id. Errors name the path of the value that does not fit.
class AvroEncoder {
 public:
  explicit AvroEncoder(const format::AvroSchema& schema) : s_(schema) {}

  arrow::Status encode(int node, const nlohmann::json& v, const std::string& path, std::string& out) const {
    const auto& n = s_.node(node);
    auto misfit = [&](const char* want) {
      return arrow::Status::Invalid(fmt::format("{}: {} is not {} (Avro {})", path.empty() ? "the value" : path,
                                                v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                                                want, kind_name(n.kind)));
    };
    switch (n.kind) {
      case format::AvroKind::kNull:
        return v.is_null() ? arrow::Status::OK() : misfit("null");
      case format::AvroKind::kBoolean:
        if (!v.is_boolean()) return misfit("true or false");
        out.push_back(v.get<bool>() ? 1 : 0);
        return arrow::Status::OK();
      case format::AvroKind::kInt:
      case format::AvroKind::kLong: {
        int64_t value = 0;
        if (v.is_number_integer()) {
          value = v.get<int64_t>();
        } else if (v.is_string() && n.logical == format::AvroLogical::kDate) {
          int64_t micros = 0;
          if (!format::internal::parse_timestamp(v.get<std::string>() + "T00:00:00Z", &micros)) return misfit("a date");
          value = micros / 86'400'000'000LL;
        } else if (v.is_string() && (n.logical == format::AvroLogical::kTimestampMillis ||
                                     n.logical == format::AvroLogical::kTimestampMicros)) {
          int64_t micros = 0;
          if (!format::internal::parse_timestamp(v.get<std::string>(), &micros)) return misfit("a time");
          value = n.logical == format::AvroLogical::kTimestampMillis ? micros / 1000 : micros;
        } else {
          return misfit("a whole number");
        }
        if (n.kind == format::AvroKind::kInt && (value < INT32_MIN || value > INT32_MAX)) return misfit("a 32-bit int");
        put_long(value, out);
        return arrow::Status::OK();
      }
      case format::AvroKind::kFloat: {
        if (!v.is_number()) return misfit("a number");
        const float f = v.get<float>();
        char bytes[4];
        std::memcpy(bytes, &f, 4);
        out.append(bytes, 4);
        return arrow::Status::OK();
      }
      case format::AvroKind::kDouble: {
        if (!v.is_number()) return misfit("a number");
        const double d = v.get<double>();
        char bytes[8];
        std::memcpy(bytes, &d, 8);
        out.append(bytes, 8);
        return arrow::Status::OK();
      }
      case format::AvroKind::kBytes:
      case format::AvroKind::kString:
      case format::AvroKind::kFixed: {
        if (n.logical == format::AvroLogical::kDecimal) {
          return arrow::Status::NotImplemented(fmt::format(
              "{}: Avro decimals are not encoded in fixture records yet; give the record's value as the "
              "Confluent-framed bytes another way, or use a double", path.empty() ? "the value" : path));
        }
        if (!v.is_string()) return misfit("a string");
        const auto& text = v.get_ref<const std::string&>();
        if (n.kind == format::AvroKind::kFixed) {
          if (static_cast<int64_t>(text.size()) != n.fixed_size) return misfit("a string of the fixed size");
        } else {
          put_long(static_cast<int64_t>(text.size()), out);
        }
        out += text;
        return arrow::Status::OK();
      }
      case format::AvroKind::kEnum: {
        if (!v.is_string()) return misfit("a symbol");
        auto it = std::find(n.symbols.begin(), n.symbols.end(), v.get<std::string>());
        if (it == n.symbols.end()) return misfit("one of the enum's symbols");
        put_long(it - n.symbols.begin(), out);
        return arrow::Status::OK();
      }
      case format::AvroKind::kRecord: {
        if (!v.is_object()) return misfit("a mapping");
        for (const auto& item : v.items()) {
          const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
          if (std::none_of(n.fields.begin(), n.fields.end(), [&](const auto& f) { return f.name == key; })) {
            return arrow::Status::Invalid(fmt::format("{}: '{}' is not a field of record {}", path.empty() ? "the value"
                                                                                                            : path,
                                                      key, n.name));
          }
        }
        for (const auto& f : n.fields) {
          const auto sub = path.empty() ? f.name : path + "." + f.name;
          if (v.contains(f.name)) {
            ARROW_RETURN_NOT_OK(encode(f.node, v.at(f.name), sub, out));
          } else if (f.has_default) {
            nlohmann::json d;
            try {
              d = nlohmann::json::parse(f.default_json);
            } catch (const nlohmann::json::exception&) {
              return arrow::Status::Invalid(fmt::format("{}: the field's default is not JSON", sub));
            }
            ARROW_RETURN_NOT_OK(encode(f.node, d, sub, out));
          } else if (format::nullable_union_branch(s_, f.node) >= 0) {
            ARROW_RETURN_NOT_OK(encode(f.node, nullptr, sub, out));
          } else {
            return arrow::Status::Invalid(fmt::format("{}: missing (the field has no default)", sub));
          }
        }
        return arrow::Status::OK();
      }
      case format::AvroKind::kArray:
      case format::AvroKind::kMap: {
        const bool array = n.kind == format::AvroKind::kArray;
        if (array ? !v.is_array() : !v.is_object()) return misfit(array ? "a list" : "a mapping");
        if (!v.empty()) {
          put_long(static_cast<int64_t>(v.size()), out);
          size_t i = 0;
          for (const auto& [key, item] : v.items()) {
            if (!array) {
              put_long(static_cast<int64_t>(key.size()), out);
              out += key;
            }
            ARROW_RETURN_NOT_OK(encode(n.children[0], item, fmt::format("{}[{}]", path, array ? std::to_string(i) : key),
                                       out));
            ++i;
          }
        }
        put_long(0, out);
        return arrow::Status::OK();
      }
      case format::AvroKind::kUnion: {
        // The first branch the value fits (null: the null branch).
        for (size_t b = 0; b < n.children.size(); ++b) {
          std::string body;
          if (encode(n.children[b], v, path, body).ok()) {
            put_long(static_cast<int64_t>(b), out);
            out += body;
            return arrow::Status::OK();
          }
        }
        return misfit("any branch of the union");
      }
    }
    return misfit("encodable");
  }

 private:
  static void put_long(int64_t n, std::string& out) {
    uint64_t z = (static_cast<uint64_t>(n) << 1) ^ static_cast<uint64_t>(n >> 63);
    while (z >= 0x80) {
      out.push_back(static_cast<char>((z & 0x7f) | 0x80));
      z >>= 7;
    }
    out.push_back(static_cast<char>(z));
  }
  static const char* kind_name(format::AvroKind k) {
    static const char* kNames[] = {"null", "boolean", "int", "long", "float", "double", "bytes",
                                   "string", "record", "enum", "array", "map", "union", "fixed"};
    return kNames[static_cast<int>(k)];
  }
  const format::AvroSchema& s_;
};

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  std::string where(const YAML::Node& node) const {
    const auto mark = node.Mark();
    return mark.is_null() ? file_ : fmt::format("{}:{}:{}", file_, mark.line + 1, mark.column + 1);
  }

  template <typename... Args>
  arrow::Status error(const YAML::Node& at, fmt::format_string<Args...> f, Args&&... args) const {
    return arrow::Status::Invalid(where(at) + ": " + fmt::format(f, std::forward<Args>(args)...));
  }

  arrow::Status check_keys(const YAML::Node& map, const std::string& what,
                           const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) return error(map, "{} must be a mapping", what);
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return error(kv.first, "keys of {} must be plain names", what);
      const auto key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      auto best = closest_match(key, allowed);
      return error(kv.first, "unknown key '{}' in {}{}; allowed here: {}", key, what,
                   best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best), fmt::join(allowed, ", "));
    }
    return arrow::Status::OK();
  }

  // A YAML value as JSON: plain scalars typed as YAML reads them (null, true/false, numbers),
  // quoted ones always strings; mappings as objects, sequences as arrays.
  arrow::Result<nlohmann::json> to_json(const YAML::Node& node) const {
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nlohmann::json(nullptr);
      case YAML::NodeType::Scalar: {
        const auto& text = node.Scalar();
        if (node.Tag() != "?") return nlohmann::json(text);  // quoted: a string
        if (text == "~" || text == "null" || text == "Null" || text == "NULL") return nlohmann::json(nullptr);
        if (text == "true" || text == "True" || text == "TRUE") return nlohmann::json(true);
        if (text == "false" || text == "False" || text == "FALSE") return nlohmann::json(false);
        if (auto i = parse_int64(text, "number"); i.ok()) return nlohmann::json(*i);
        const bool numeric = !text.empty() && text.find_first_not_of("0123456789+-.eE") == std::string::npos;
        if (numeric) {
          if (auto d = parse_double(text, "number"); d.ok()) return nlohmann::json(*d);
        }
        return nlohmann::json(text);
      }
      case YAML::NodeType::Sequence: {
        auto out = nlohmann::json::array();
        for (const auto& item : node) {
          ARROW_ASSIGN_OR_RAISE(auto v, to_json(item));
          out.push_back(std::move(v));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        auto out = nlohmann::json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) return error(kv.first, "keys must be plain names");
          ARROW_ASSIGN_OR_RAISE(out[kv.first.Scalar()], to_json(kv.second));
        }
        return out;
      }
    }
    return nlohmann::json(nullptr);
  }

  arrow::Result<int64_t> integer(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar() || node.Tag() != "?") return error(node, "{} must be a whole number", what);
    auto v = parse_int64(node.Scalar(), what);
    if (!v.ok()) return error(node, "{} must be a whole number, not {}", what, quote_for_error(node.Scalar()));
    return *v;
  }

  // A key or value of a Kafka record: a mapping or sequence is sent as its JSON text, a scalar
  // as its text exactly, null as a null key or value.
  arrow::Result<std::optional<std::string>> payload(const YAML::Node& node) const {
    if (node.IsNull()) return std::nullopt;
    if (node.IsScalar()) {
      if (node.Tag() == "?" && (node.Scalar() == "~" || node.Scalar() == "null")) return std::nullopt;
      return node.Scalar();
    }
    std::string out;
    ARROW_RETURN_NOT_OK(json_text(node, out));
    return out;
  }

  // Whether `t` is a number as JSON writes it (RFC 8259: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?).
  static bool is_json_number(std::string_view t) {
    size_t i = 0;
    auto digits = [&] {
      const size_t from = i;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
      return i > from;
    };
    if (i < t.size() && t[i] == '-') ++i;
    if (i < t.size() && t[i] == '0') {
      ++i;
    } else if (!digits()) {
      return false;
    }
    if (i < t.size() && t[i] == '.') {
      ++i;
      if (!digits()) return false;
    }
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
      ++i;
      if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
      if (!digits()) return false;
    }
    return i == t.size();
  }

  // The JSON text of a record's mapping or sequence payload. A plain scalar that is a JSON
  // number is written as given (12345678901234567.89 keeps every digit for a DECIMAL(38,2),
  // 1e999 stays a number; "+5" is YAML's 5); never through a double.
  arrow::Status json_text(const YAML::Node& node, std::string& out) const {
    switch (node.Type()) {
      case YAML::NodeType::Scalar: {
        const auto& text = node.Scalar();
        if (node.Tag() == "?") {
          if (is_json_number(text)) {
            out += text;
            return arrow::Status::OK();
          }
          if (text.size() > 1 && text[0] == '+' && is_json_number(std::string_view(text).substr(1)) && text[1] != '-') {
            out += text.substr(1);
            return arrow::Status::OK();
          }
        }
        ARROW_ASSIGN_OR_RAISE(auto v, to_json(node));  // null, true/false, or a string
        if (v.is_number()) v = text;  // a number JSON cannot write (0x1F, .5): the text
        out += v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return arrow::Status::OK();
      }
      case YAML::NodeType::Sequence: {
        out += '[';
        bool first = true;
        for (const auto& item : node) {
          if (!first) out += ',';
          first = false;
          ARROW_RETURN_NOT_OK(json_text(item, out));
        }
        out += ']';
        return arrow::Status::OK();
      }
      case YAML::NodeType::Map: {
        out += '{';
        bool first = true;
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) return error(kv.first, "keys must be plain names");
          if (!first) out += ',';
          first = false;
          out += nlohmann::json(kv.first.Scalar()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          out += ':';
          ARROW_RETURN_NOT_OK(json_text(kv.second, out));
        }
        out += '}';
        return arrow::Status::OK();
      }
      default:
        out += "null";
        return arrow::Status::OK();
    }
  }

  arrow::Result<FixtureRecord> record(const std::string& topic, const YAML::Node& node) const {
    ARROW_RETURN_NOT_OK(check_keys(node, fmt::format("a record of topic '{}'", topic),
                                   {"value", "key", "partition", "timestamp", "headers", "value_schema_id"}));
    FixtureRecord r;
    r.topic = topic;
    r.where = where(node);
    if (!node["value"]) return error(node, "a record of topic '{}' needs a value (null for a tombstone)", topic);
    if (const auto id_node = node["value_schema_id"]) {
      // Avro in Confluent's framing (magic 0, the schema id big-endian, the binary body), with a
      // schema the case gives under schema_registry:.
      ARROW_ASSIGN_OR_RAISE(auto id, integer(id_node, "value_schema_id"));
      auto it = avro_.find(id);
      if (it == avro_.end()) {
        return error(id_node, "value_schema_id {} is not among the case's schema_registry: ids", id);
      }
      ARROW_ASSIGN_OR_RAISE(auto value, to_json(node["value"]));
      std::string framed(1, '\0');
      for (int shift = 24; shift >= 0; shift -= 8) framed.push_back(static_cast<char>((id >> shift) & 0xff));
      auto st = AvroEncoder(*it->second).encode(it->second->root, value, "", framed);
      if (!st.ok()) return error(node["value"], "cannot encode the value with schema id {}: {}", id, st.message());
      r.value = std::move(framed);
    } else {
      ARROW_ASSIGN_OR_RAISE(r.value, payload(node["value"]));
    }
    if (node["key"]) {
      ARROW_ASSIGN_OR_RAISE(r.key, payload(node["key"]));
    }
    if (node["partition"]) {
      ARROW_ASSIGN_OR_RAISE(auto p, integer(node["partition"], "partition"));
      if (p < 0 || p > 100'000) return error(node["partition"], "partition must be between 0 and 100000, not {}", p);
      r.partition = static_cast<int32_t>(p);
    }
    if (const auto ts = node["timestamp"]) {
      if (!ts.IsScalar()) return error(ts, "timestamp must be ms since the epoch or a time such as 2024-01-01T10:00:00Z");
      int64_t micros = 0;
      if (auto ms = parse_int64(ts.Scalar(), "timestamp"); ms.ok() && ts.Tag() == "?") {
        r.timestamp_ms = *ms;
      } else if (format::internal::parse_timestamp(ts.Scalar(), &micros)) {
        r.timestamp_ms = micros / 1000;
      } else {
        return error(ts, "timestamp {} is neither ms since the epoch nor a time such as 2024-01-01T10:00:00Z",
                     quote_for_error(ts.Scalar()));
      }
      if (r.timestamp_ms < 0) return error(ts, "timestamp must not be before 1970");
    }
    if (const auto h = node["headers"]) {
      if (h.IsMap()) {
        for (const auto& kv : h) {
          ARROW_ASSIGN_OR_RAISE(auto v, payload(kv.second));
          r.headers.emplace_back(kv.first.Scalar(), std::move(v));
        }
      } else if (h.IsSequence()) {  // repeated header names: [{key: k, value: v}, ...]
        for (const auto& item : h) {
          ARROW_RETURN_NOT_OK(check_keys(item, "a header", {"key", "value"}));
          if (!item["key"] || !item["key"].IsScalar()) return error(item, "a header needs a key");
          std::optional<std::string> v;
          if (item["value"]) {
            ARROW_ASSIGN_OR_RAISE(v, payload(item["value"]));
          }
          r.headers.emplace_back(item["key"].Scalar(), std::move(v));
        }
      } else {
        return error(h, "headers must be a mapping (name: value) or a list of {{key, value}}");
      }
    }
    return r;
  }

  arrow::Result<FixtureRows> rows(const YAML::Node& node, const std::string& what) const {
    if (!node.IsSequence()) return error(node, "{} must be a list of rows (column: value), or [] for none", what);
    FixtureRows out;
    for (const auto& row : node) {
      if (!row.IsMap()) return error(row, "a row of {} must be a mapping of column: value", what);
      ARROW_ASSIGN_OR_RAISE(auto json, to_json(row));
      out.rows.push_back(std::move(json));
      out.where.push_back(where(row));
    }
    return out;
  }

  // A list of rows, or a count.
  arrow::Result<RowsExpectation> rows_or_count(const YAML::Node& node, const std::string& what) const {
    RowsExpectation e;
    e.where = where(node);
    if (node.IsScalar()) {
      ARROW_ASSIGN_OR_RAISE(auto n, integer(node, what + " (a count)"));
      if (n < 0) return error(node, "{} must not be negative", what);
      e.count = n;
      return e;
    }
    ARROW_ASSIGN_OR_RAISE(e.rows, rows(node, what));
    return e;
  }

  arrow::Result<std::vector<DatasetExpectation>> expect(const YAML::Node& node) const {
    if (!node.IsMap()) return error(node, "expect must be a mapping of dataset: what it must hold");
    std::vector<DatasetExpectation> out;
    for (const auto& kv : node) {
      const auto dataset = kv.first.Scalar();
      const auto& spec = kv.second;
      if (dataset == "sinks") {  // what the pipeline's sinks sent: sinks: {<sink>: {rows: ...}}
        if (!spec.IsMap()) return error(spec, "expect.sinks must be a mapping of sink: {{rows: [...]}}");
        for (const auto& s : spec) {
          const auto what = fmt::format("expect.sinks.{}", s.first.Scalar());
          ARROW_RETURN_NOT_OK(check_keys(s.second, what, {"rows", "tolerance"}));
          DatasetExpectation d;
          d.dataset = s.first.Scalar();
          d.sink = true;
          d.where = where(s.first);
          if (const auto t = s.second["tolerance"]) {
            auto v = t.IsScalar() ? parse_double(t.Scalar(), "tolerance") : arrow::Result<double>(arrow::Status::Invalid(""));
            if (!v.ok() || *v < 0) return error(t, "tolerance must be a number >= 0 (e.g. 1e-6)");
            d.tolerance = *v;
          }
          if (!s.second["rows"]) return error(s.first, "{} expects nothing: give rows (a list, or a count)", what);
          ARROW_ASSIGN_OR_RAISE(d.rows, rows_or_count(s.second["rows"], what + ".rows"));
          out.push_back(std::move(d));
        }
        continue;
      }
      const auto what = fmt::format("expect.{}", dataset);
      ARROW_RETURN_NOT_OK(check_keys(spec, what, {"rows", "tolerance", "expectations", "dead_letters", "quarantine", "late"}));
      DatasetExpectation d;
      d.dataset = dataset;
      d.where = where(kv.first);
      if (const auto t = spec["tolerance"]) {
        auto v = t.IsScalar() ? parse_double(t.Scalar(), "tolerance") : arrow::Result<double>(arrow::Status::Invalid(""));
        if (!v.ok() || *v < 0) return error(t, "tolerance must be a number >= 0 (e.g. 1e-6)");
        d.tolerance = *v;
      }
      if (spec["rows"]) {
        ARROW_ASSIGN_OR_RAISE(d.rows, rows_or_count(spec["rows"], what + ".rows"));
      }
      if (spec["dead_letters"]) {
        ARROW_ASSIGN_OR_RAISE(d.dead_letters, rows_or_count(spec["dead_letters"], what + ".dead_letters"));
      }
      if (spec["quarantine"]) {
        ARROW_ASSIGN_OR_RAISE(d.quarantine, rows_or_count(spec["quarantine"], what + ".quarantine"));
      }
      if (spec["late"]) {
        ARROW_ASSIGN_OR_RAISE(d.late, rows_or_count(spec["late"], what + ".late"));
      }
      if (const auto ex = spec["expectations"]) {
        if (!ex.IsMap()) return error(ex, "{}.expectations must be a mapping of constraint: {{passed: n, failed: n}}", what);
        for (const auto& c : ex) {
          const auto name = c.first.Scalar();
          ARROW_RETURN_NOT_OK(check_keys(c.second, fmt::format("{}.expectations.{}", what, name), {"passed", "failed"}));
          ExpectationCounts counts;
          counts.where = where(c.first);
          if (c.second["passed"]) {
            ARROW_ASSIGN_OR_RAISE(counts.passed, integer(c.second["passed"], "passed"));
          }
          if (c.second["failed"]) {
            ARROW_ASSIGN_OR_RAISE(counts.failed, integer(c.second["failed"], "failed"));
          }
          if (!counts.passed && !counts.failed) return error(c.first, "say passed: n, failed: n or both");
          d.expectations[name] = counts;
        }
      }
      if (!d.rows && !d.dead_letters && !d.quarantine && !d.late && d.expectations.empty()) {
        return error(kv.first, "{} expects nothing: give rows, expectations, dead_letters, quarantine or late", what);
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  // kafka:, tables:, expect:, expect_error: of a batch (or of a case that is one batch).
  arrow::Status batch_part(const YAML::Node& node, FixtureBatch& b) const {
    if (const auto k = node["kafka"]) {
      if (!k.IsMap()) return error(k, "kafka must be a mapping of topic: list of records");
      for (const auto& kv : k) {
        const auto topic = kv.first.Scalar();
        if (!kv.second.IsSequence()) return error(kv.second, "the records of topic '{}' must be a list", topic);
        for (const auto& r : kv.second) {
          ARROW_ASSIGN_OR_RAISE(auto rec, record(topic, r));
          b.records.push_back(std::move(rec));
        }
      }
    }
    if (const auto t = node["tables"]) {
      if (!t.IsMap()) return error(t, "tables must be a mapping of dataset: list of rows");
      for (const auto& kv : t) {
        const auto name = kv.first.Scalar();
        ARROW_ASSIGN_OR_RAISE(b.tables[name], rows(kv.second, fmt::format("tables.{}", name)));
      }
    }
    if (node["expect"]) {
      ARROW_ASSIGN_OR_RAISE(b.expect, expect(node["expect"]));
    }
    if (const auto e = node["expect_error"]) {
      if (!e.IsScalar() || e.Scalar().empty()) return error(e, "expect_error must be a text the update's error contains");
      if (node["expect"]) {  // a failed update changes nothing: what it expects would never be checked
        return error(node["expect"], "expect: beside expect_error: is never checked (an update that fails commits "
                                     "nothing); check the tables in a batch before or after it");
      }
      b.expect_error = e.Scalar();
    }
    return arrow::Status::OK();
  }

  arrow::Result<TestCase> test_case(const YAML::Node& node) const {
    ARROW_RETURN_NOT_OK(check_keys(node, "a case", {"name", "description", "kafka", "tables", "batches", "expect",
                                                    "expect_error", "schema_registry", "sink_partitions"}));
    TestCase c;
    c.file = file_;
    c.line = node.Mark().line + 1;
    if (!node["name"] || !node["name"].IsScalar() || node["name"].Scalar().empty()) {
      return error(node, "a case needs a name");
    }
    c.name = node["name"].Scalar();
    avro_.clear();
    if (const auto reg = node["schema_registry"]) {
      if (!reg.IsSequence()) return error(reg, "schema_registry must be a list of {{id, schema[, subject]}}");
      for (const auto& item : reg) {
        ARROW_RETURN_NOT_OK(check_keys(item, "a schema_registry entry", {"id", "subject", "schema"}));
        if (!item["id"] || !item["schema"]) return error(item, "a schema_registry entry needs id and schema");
        GivenSchema g;
        g.where = where(item);
        ARROW_ASSIGN_OR_RAISE(auto id, integer(item["id"], "id"));
        if (id < 0 || id > INT32_MAX) return error(item["id"], "a schema id is between 0 and 2147483647, not {}", id);
        g.id = static_cast<int32_t>(id);
        if (avro_.count(g.id)) return error(item["id"], "schema id {} is given twice", g.id);
        if (const auto subject = item["subject"]) {
          if (!subject.IsScalar() || subject.Scalar().empty()) return error(subject, "subject must be a name");
          g.subject = subject.Scalar();
        }
        const auto schema = item["schema"];
        if (schema.IsScalar()) {
          g.schema = schema.Scalar();  // Avro JSON text, or a primitive's name
          if (g.schema.empty() || (g.schema[0] != '{' && g.schema[0] != '[' && g.schema[0] != '"')) {
            g.schema = nlohmann::json(g.schema).dump();
          }
        } else {
          ARROW_RETURN_NOT_OK(json_text(schema, g.schema));
        }
        auto parsed = format::parse_avro_schema(g.schema);
        if (!parsed.ok()) return error(schema, "not an Avro schema: {}", parsed.status().message());
        avro_[g.id] = *parsed;
        c.schema_registry.push_back(std::move(g));
      }
    }
    if (const auto parts = node["sink_partitions"]) {  // a sink topic's partitions (default 1)
      if (!parts.IsMap()) return error(parts, "sink_partitions must be a mapping of topic: partition count");
      for (const auto& kv : parts) {
        ARROW_ASSIGN_OR_RAISE(auto n, integer(kv.second, "a partition count"));
        if (n < 1 || n > 100000) return error(kv.second, "a topic has 1 to 100000 partitions, not {}", n);
        c.sink_partitions[kv.first.Scalar()] = static_cast<int32_t>(n);
        c.sink_partitions_where[kv.first.Scalar()] = where(kv.first);  // checked against the sinks' topics when it runs
      }
    }
    if (const auto batches = node["batches"]) {
      for (const char* key : {"kafka", "tables", "expect_error"}) {
        if (node[key]) return error(node[key], "case '{}' has batches: put its {} inside a batch", c.name, key);
      }
      if (!batches.IsSequence() || batches.size() == 0) return error(batches, "batches must be a list of batches");
      for (const auto& b : batches) {
        ARROW_RETURN_NOT_OK(check_keys(b, "a batch", {"kafka", "tables", "expect", "expect_error"}));
        FixtureBatch batch;
        batch.where = where(b);
        ARROW_RETURN_NOT_OK(batch_part(b, batch));
        c.batches.push_back(std::move(batch));
      }
      if (node["expect"]) {
        ARROW_ASSIGN_OR_RAISE(c.expect, expect(node["expect"]));
      }
    } else {
      FixtureBatch batch;
      batch.where = where(node);
      ARROW_RETURN_NOT_OK(batch_part(node, batch));
      c.expect = std::move(batch.expect);  // after the only update: the same
      batch.expect.clear();
      c.batches.push_back(std::move(batch));
    }
    bool expects = !c.expect.empty();
    for (const auto& b : c.batches) expects = expects || !b.expect.empty() || b.expect_error;
    if (!expects) return error(node, "case '{}' expects nothing: add expect: (or expect_error:)", c.name);
    return c;
  }

  // A key given twice in one mapping (YAML keeps one of them silently) is refused at the second.
  arrow::Status check_duplicate_keys(const YAML::Node& node) const {
    if (node.IsSequence()) {
      for (const auto& item : node) ARROW_RETURN_NOT_OK(check_duplicate_keys(item));
    } else if (node.IsMap()) {
      std::map<std::string, std::string> seen;  // key -> where first given
      for (const auto& kv : node) {
        if (kv.first.IsScalar()) {
          auto [it, fresh] = seen.emplace(kv.first.Scalar(), where(kv.first));
          if (!fresh) return error(kv.first, "key '{}' is given twice in this mapping (first at {})", it->first, it->second);
        }
        ARROW_RETURN_NOT_OK(check_duplicate_keys(kv.second));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::vector<TestCase>> file(const YAML::Node& root) const {
    ARROW_RETURN_NOT_OK(check_duplicate_keys(root));
    if (!root.IsMap()) return error(root, "a fixture file is a mapping with a 'cases:' list");
    ARROW_RETURN_NOT_OK(check_keys(root, "a fixture file", {"cases"}));
    const auto cases = root["cases"];
    if (!cases || !cases.IsSequence()) return error(root, "a fixture file needs a 'cases:' list");
    std::vector<TestCase> out;
    std::set<std::string> names;
    const std::string base = std::filesystem::path(file_).filename().string();
    for (const auto& node : cases) {
      ARROW_ASSIGN_OR_RAISE(auto c, test_case(node));
      if (!names.insert(c.name).second) return error(node["name"], "case '{}' is defined twice in this file", c.name);
      c.id = base + "::" + c.name;
      out.push_back(std::move(c));
    }
    return out;
  }

 private:
  std::string file_;
  // The case's schema_registry: schemas by id (set while its case is parsed; records use them).
  mutable std::map<int64_t, std::shared_ptr<const format::AvroSchema>> avro_;
};

}  // namespace

arrow::Result<std::vector<TestCase>> parse_fixture(const std::string& text, const std::string& display) {
  if (!is_valid_utf8(text)) {  // YAML is Unicode text; the line with the first bad byte
    size_t start = 0;
    for (int line = 1;; ++line) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (!is_valid_utf8(std::string_view(text).substr(start, end - start))) {
        return arrow::Status::Invalid(fmt::format("{}:{}: not valid UTF-8: a fixture file is UTF-8 text (write bytes "
                                                  "that are not text as \\u escapes in a double-quoted string)",
                                                  display, line));
      }
      start = end + 1;
    }
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(fmt::format("{}:{}:{}: not valid YAML: {}", display, e.mark.line + 1,
                                              e.mark.column + 1, e.msg));
  }
  try {
    return Parser(display).file(root);
  } catch (const YAML::Exception& e) {  // a conversion yaml-cpp refused: never past here
    return arrow::Status::Invalid(fmt::format("{}:{}:{}: {}", display, e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const std::exception& e) {  // the JSON library's: never past here either
    return arrow::Status::Invalid(fmt::format("{}: {}", display, e.what()));
  }
}

arrow::Result<std::vector<TestCase>> load_fixture_file(const std::filesystem::path& file, const std::string& display) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return arrow::Status::IOError(fmt::format("{}: cannot be read", display));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_fixture(text.str(), display);
}

}  // namespace sluice::testing
