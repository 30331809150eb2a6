// Avro schema JSON -> AvroSchema nodes (nlohmann-json) and AvroSchema -> Arrow types.
#include "sluice/format/avro_schema.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "sluice/common/nesting.h"
#include "sluice/common/status.h"

namespace sluice::format {

namespace {

using json = nlohmann::json;

const std::unordered_map<std::string, AvroKind>& primitive_kinds() {
  static const std::unordered_map<std::string, AvroKind> kinds = {
      {"null", AvroKind::kNull},   {"boolean", AvroKind::kBoolean}, {"int", AvroKind::kInt},
      {"long", AvroKind::kLong},   {"float", AvroKind::kFloat},     {"double", AvroKind::kDouble},
      {"bytes", AvroKind::kBytes}, {"string", AvroKind::kString}};
  return kinds;
}

class SchemaParser {
 public:
  arrow::Result<std::shared_ptr<const AvroSchema>> parse(const std::string& text) {
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::exception& e) {
      return invalid("Avro schema is not valid JSON: {}", e.what());
    }
    auto schema = std::make_shared<AvroSchema>();
    schema_ = schema.get();
    ARROW_ASSIGN_OR_RAISE(schema->root, parse_node(doc, "", "schema"));
    ARROW_RETURN_NOT_OK(check_expanded_size(*schema));
    return schema;
  }

 private:
  // `where` names the place in the schema for messages, e.g. "record 'a.B' field 'c'".
  arrow::Result<int> parse_node(const json& j, const std::string& ns, const std::string& where) {
    // Bounds the recursion (a schema comes from a registry anyone may write to); the nesting
    // of the Arrow columns a reader schema makes is checked against kMaxNestingDepth later.
    if (depth_ >= kMaxSchemaDepth) {
      return invalid("{}: the schema nests deeper than {} levels; sluice reads at most {} levels of nesting "
                     "(flatten the schema)", where, kMaxSchemaDepth, kMaxNestingDepth);
    }
    ++depth_;
    auto node = parse_node_at_depth(j, ns, where);
    --depth_;
    return node;
  }

  arrow::Result<int> parse_node_at_depth(const json& j, const std::string& ns, const std::string& where) {
    if (j.is_string()) return resolve_name(j.get<std::string>(), ns, where);
    if (j.is_array()) {
      AvroNode node;
      node.kind = AvroKind::kUnion;
      std::set<std::string> seen;
      for (const auto& branch : j) {
        if (branch.is_array()) return invalid("{}: a union may not contain a union directly", where);
        ARROW_ASSIGN_OR_RAISE(int child, parse_node(branch, ns, where));
        const auto& c = schema_->node(child);
        std::string key = c.name.empty() ? std::to_string(static_cast<int>(c.kind)) : c.name;
        if (!seen.insert(key).second) return invalid("{}: a union has two branches of the same type", where);
        node.children.push_back(child);
      }
      if (node.children.empty()) return invalid("{}: an empty union", where);
      return add(std::move(node));
    }
    if (!j.is_object()) return invalid("{}: a type must be a name, an object or an array, not {}", where, j.dump());
    auto type_it = j.find("type");
    if (type_it == j.end()) return invalid("{}: a type object without \"type\"", where);
    if (!type_it->is_string()) return parse_node(*type_it, ns, where);  // {"type": [...]} or {"type": {...}}
    const std::string type = type_it->get<std::string>();
    if (type == "record" || type == "error") return parse_record(j, ns, where);
    if (type == "enum") return parse_enum(j, ns, where);
    if (type == "fixed") return parse_fixed(j, ns, where);
    if (type == "array" || type == "map") {
      auto items = j.find(type == "array" ? "items" : "values");
      if (items == j.end()) return invalid("{}: {} without \"{}\"", where, type, type == "array" ? "items" : "values");
      ARROW_ASSIGN_OR_RAISE(int child, parse_node(*items, ns, where + " " + type));
      AvroNode node;
      node.kind = type == "array" ? AvroKind::kArray : AvroKind::kMap;
      node.children.push_back(child);
      return add(std::move(node));
    }
    auto prim = primitive_kinds().find(type);
    if (prim == primitive_kinds().end()) return resolve_name(type, ns, where);
    AvroNode node;
    node.kind = prim->second;
    ARROW_RETURN_NOT_OK(apply_logical_type(j, &node, where));
    return add(std::move(node));
  }

  arrow::Status apply_logical_type(const json& j, AvroNode* node, const std::string& where) {
    auto lt = j.find("logicalType");
    if (lt == j.end() || !lt->is_string()) return arrow::Status::OK();
    const std::string name = lt->get<std::string>();
    const AvroKind k = node->kind;
    // A logical type on the wrong underlying type is ignored, as the Avro spec says.
    if (name == "date" && k == AvroKind::kInt) node->logical = AvroLogical::kDate;
    if (name == "time-millis" && k == AvroKind::kInt) node->logical = AvroLogical::kTimeMillis;
    if (name == "time-micros" && k == AvroKind::kLong) node->logical = AvroLogical::kTimeMicros;
    if (name == "timestamp-millis" && k == AvroKind::kLong) node->logical = AvroLogical::kTimestampMillis;
    if (name == "timestamp-micros" && k == AvroKind::kLong) node->logical = AvroLogical::kTimestampMicros;
    if (name == "local-timestamp-millis" && k == AvroKind::kLong) node->logical = AvroLogical::kLocalTimestampMillis;
    if (name == "local-timestamp-micros" && k == AvroKind::kLong) node->logical = AvroLogical::kLocalTimestampMicros;
    if (name == "uuid" && k == AvroKind::kString) node->logical = AvroLogical::kUuid;
    if (name == "decimal" && (k == AvroKind::kBytes || k == AvroKind::kFixed)) {
      auto p = j.find("precision");
      auto s = j.find("scale");
      if (p == j.end() || !p->is_number_integer()) return invalid("{}: decimal without an integer precision", where);
      int64_t precision = p->get<int64_t>();
      int64_t scale = (s != j.end() && s->is_number_integer()) ? s->get<int64_t>() : 0;
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
        return invalid("{}: decimal({}, {}) is not supported: precision must be 1..38 and scale 0..precision", where,
                       precision, scale);
      }
      node->logical = AvroLogical::kDecimal;
      node->precision = static_cast<int32_t>(precision);
      node->scale = static_cast<int32_t>(scale);
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::string> full_name(const json& j, const std::string& ns, const std::string& where,
                                       std::string* own_ns) {
    auto n = j.find("name");
    if (n == j.end() || !n->is_string() || n->get<std::string>().empty()) {
      return invalid("{}: a named type without a \"name\"", where);
    }
    std::string name = n->get<std::string>();
    if (name.find('.') != std::string::npos) {
      *own_ns = name.substr(0, name.rfind('.'));
      return name;
    }
    auto nsj = j.find("namespace");
    *own_ns = (nsj != j.end() && nsj->is_string()) ? nsj->get<std::string>() : ns;
    return own_ns->empty() ? name : *own_ns + "." + name;
  }

  arrow::Result<int> parse_record(const json& j, const std::string& ns, const std::string& where) {
    std::string own_ns;
    ARROW_ASSIGN_OR_RAISE(std::string name, full_name(j, ns, where, &own_ns));
    if (defined_.count(name)) return invalid("{}: type '{}' is defined twice", where, name);
    auto fields = j.find("fields");
    if (fields == j.end() || !fields->is_array()) return invalid("record '{}' has no \"fields\" array", name);
    in_progress_.insert(name);
    AvroNode node;
    node.kind = AvroKind::kRecord;
    node.name = name;
    std::set<std::string> seen;
    for (const auto& f : *fields) {
      auto fname = f.find("name");
      if (!f.is_object() || fname == f.end() || !fname->is_string()) {
        return invalid("record '{}': a field without a \"name\"", name);
      }
      AvroField field;
      field.name = fname->get<std::string>();
      if (!seen.insert(field.name).second) return invalid("record '{}': field '{}' appears twice", name, field.name);
      auto ftype = f.find("type");
      if (ftype == f.end()) return invalid("record '{}' field '{}' has no \"type\"", name, field.name);
      ARROW_ASSIGN_OR_RAISE(field.node, parse_node(*ftype, own_ns, fmt::format("record '{}' field '{}'", name, field.name)));
      if (auto d = f.find("default"); d != f.end()) {
        field.has_default = true;
        field.default_json = d->dump();
      }
      node.fields.push_back(std::move(field));
    }
    in_progress_.erase(name);
    ARROW_ASSIGN_OR_RAISE(int index, add(std::move(node)));
    defined_[name] = index;
    return index;
  }

  arrow::Result<int> parse_enum(const json& j, const std::string& ns, const std::string& where) {
    std::string own_ns;
    ARROW_ASSIGN_OR_RAISE(std::string name, full_name(j, ns, where, &own_ns));
    if (defined_.count(name)) return invalid("{}: type '{}' is defined twice", where, name);
    auto symbols = j.find("symbols");
    if (symbols == j.end() || !symbols->is_array()) return invalid("enum '{}' has no \"symbols\" array", name);
    AvroNode node;
    node.kind = AvroKind::kEnum;
    node.name = name;
    for (const auto& s : *symbols) {
      if (!s.is_string()) return invalid("enum '{}': a symbol that is not a string", name);
      node.symbols.push_back(s.get<std::string>());
    }
    ARROW_ASSIGN_OR_RAISE(int index, add(std::move(node)));
    defined_[name] = index;
    return index;
  }

  arrow::Result<int> parse_fixed(const json& j, const std::string& ns, const std::string& where) {
    std::string own_ns;
    ARROW_ASSIGN_OR_RAISE(std::string name, full_name(j, ns, where, &own_ns));
    if (defined_.count(name)) return invalid("{}: type '{}' is defined twice", where, name);
    auto size = j.find("size");
    if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0 ||
        size->get<int64_t>() > (1 << 20)) {
      return invalid("fixed '{}' needs a \"size\" between 0 and 1 MiB", name);
    }
    AvroNode node;
    node.kind = AvroKind::kFixed;
    node.name = name;
    node.fixed_size = static_cast<int32_t>(size->get<int64_t>());
    ARROW_RETURN_NOT_OK(apply_logical_type(j, &node, where));
    if (node.logical == AvroLogical::kDecimal && node.fixed_size > 16) {
      return invalid("fixed '{}': a decimal in more than 16 bytes is not supported", name);
    }
    ARROW_ASSIGN_OR_RAISE(int index, add(std::move(node)));
    defined_[name] = index;
    return index;
  }

  arrow::Result<int> resolve_name(const std::string& name, const std::string& ns, const std::string& where) {
    if (auto prim = primitive_kinds().find(name); prim != primitive_kinds().end()) {
      AvroNode node;
      node.kind = prim->second;
      return add(std::move(node));
    }
    std::vector<std::string> candidates;
    if (name.find('.') == std::string::npos && !ns.empty()) candidates.push_back(ns + "." + name);
    candidates.push_back(name);
    for (const auto& c : candidates) {
      if (in_progress_.count(c)) {
        return invalid("{}: recursive type '{}' (it refers to itself) is not supported: Arrow has no recursive types",
                       where, c);
      }
      if (auto it = defined_.find(c); it != defined_.end()) return it->second;
    }
    return invalid("{}: unknown type '{}'", where, name);
  }

  // A named type used twice is one node, so a small schema can stand for an exponentially large
  // tree (T1 = {a: T0, b: T0}, T2 = {a: T1, b: T1}, ...) or a deep one (a chain of names), and
  // everything that walks the expanded tree would hang or overflow the stack: the Arrow type,
  // the decoder over values of zero bytes. Children are added before their parent (names must
  // be defined before use), so one pass in index order measures both without recursion.
  static arrow::Status check_expanded_size(const AvroSchema& schema) {
    constexpr int64_t kMaxExpandedTypes = 100'000;
    const size_t n = schema.nodes.size();
    std::vector<int64_t> depth(n, 1), size(n, 1);
    for (size_t i = 0; i < n; ++i) {
      const AvroNode& node = schema.nodes[i];
      auto take = [&](int child) {
        const auto c = static_cast<size_t>(child);
        depth[i] = std::max(depth[i], depth[c] + 1);
        size[i] = std::min(size[i] + size[c], kMaxExpandedTypes + 1);
      };
      for (int child : node.children) take(child);
      for (const auto& f : node.fields) take(f.node);
    }
    const auto root = static_cast<size_t>(schema.root);
    if (depth[root] > kMaxSchemaDepth) {
      return invalid("the schema nests {} levels deep (named types expanded); sluice reads at most {} levels of "
                     "nesting (flatten the schema)", depth[root], kMaxNestingDepth);
    }
    if (size[root] > kMaxExpandedTypes) {
      return invalid("the schema expands to more than {} types (named types used many times over): sluice reads a "
                     "schema as the tree of columns it makes; simplify the schema", kMaxExpandedTypes);
    }
    return arrow::Status::OK();
  }

  arrow::Result<int> add(AvroNode node) {
    schema_->nodes.push_back(std::move(node));
    return static_cast<int>(schema_->nodes.size() - 1);
  }

  AvroSchema* schema_ = nullptr;
  std::unordered_map<std::string, int> defined_;  // full name -> node
  static constexpr int kMaxSchemaDepth = 4 * kMaxNestingDepth;  // unions and type wrappers add levels
  int depth_ = 0;
  std::set<std::string> in_progress_;             // records being parsed, to refuse recursion
};

}  // namespace

arrow::Result<std::shared_ptr<const AvroSchema>> parse_avro_schema(const std::string& json) {
  return SchemaParser().parse(json);
}

int nullable_union_branch(const AvroSchema& schema, int node) {
  const auto& n = schema.node(node);
  if (n.kind != AvroKind::kUnion || n.children.size() != 2) return -1;
  bool first_null = schema.node(n.children[0]).kind == AvroKind::kNull;
  bool second_null = schema.node(n.children[1]).kind == AvroKind::kNull;
  if (first_null == second_null) return -1;
  return first_null ? 1 : 0;
}

arrow::Result<std::shared_ptr<arrow::DataType>> avro_to_arrow(const AvroSchema& schema, int index) {
  const AvroNode& n = schema.node(index);
  switch (n.logical) {
    case AvroLogical::kDate: return arrow::date32();
    case AvroLogical::kTimeMillis:
    case AvroLogical::kTimeMicros: return arrow::time64(arrow::TimeUnit::MICRO);
    case AvroLogical::kTimestampMillis:
    case AvroLogical::kTimestampMicros: return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    case AvroLogical::kLocalTimestampMillis:
    case AvroLogical::kLocalTimestampMicros: return arrow::timestamp(arrow::TimeUnit::MICRO);
    case AvroLogical::kDecimal: return arrow::decimal128(n.precision, n.scale);
    case AvroLogical::kUuid: return arrow::utf8();
    case AvroLogical::kNone: break;
  }
  switch (n.kind) {
    case AvroKind::kNull: return arrow::null();
    case AvroKind::kBoolean: return arrow::boolean();
    case AvroKind::kInt: return arrow::int32();
    case AvroKind::kLong: return arrow::int64();
    case AvroKind::kFloat: return arrow::float32();
    case AvroKind::kDouble: return arrow::float64();
    case AvroKind::kBytes: return arrow::binary();
    case AvroKind::kString:
    case AvroKind::kEnum: return arrow::utf8();
    case AvroKind::kFixed: return arrow::fixed_size_binary(n.fixed_size);
    case AvroKind::kArray: {
      ARROW_ASSIGN_OR_RAISE(auto item, avro_to_arrow(schema, n.children[0]));
      return arrow::list(item);
    }
    case AvroKind::kMap: {
      ARROW_ASSIGN_OR_RAISE(auto value, avro_to_arrow(schema, n.children[0]));
      return arrow::map(arrow::utf8(), value);
    }
    case AvroKind::kRecord: {
      arrow::FieldVector fields;
      for (const auto& f : n.fields) {
        ARROW_ASSIGN_OR_RAISE(auto t, avro_to_arrow(schema, f.node));
        fields.push_back(arrow::field(f.name, t));
      }
      return arrow::struct_(fields);
    }
    case AvroKind::kUnion: {
      if (int b = nullable_union_branch(schema, index); b >= 0) return avro_to_arrow(schema, n.children[b]);
      // Spark's shape for other unions: a struct with one field per non-null branch.
      arrow::FieldVector members;
      for (int child : n.children) {
        if (schema.node(child).kind == AvroKind::kNull) continue;
        ARROW_ASSIGN_OR_RAISE(auto t, avro_to_arrow(schema, child));
        members.push_back(arrow::field(fmt::format("member{}", members.size()), t));
      }
      if (members.empty()) return arrow::null();
      if (members.size() == 1) return members[0]->type();  // ["null"] + one type
      return arrow::struct_(members);
    }
  }
  return invalid("unknown Avro type");
}

arrow::Result<std::shared_ptr<arrow::DataType>> avro_to_arrow(const AvroSchema& schema) {
  return avro_to_arrow(schema, schema.root);
}

}  // namespace sluice::format
