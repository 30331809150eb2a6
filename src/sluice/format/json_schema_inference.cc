// JSON schema inference from samples (Spark's rules; see the header).
#include "sluice/format/json_schema_inference.h"

#include <arrow/api.h>
#include "sluice/format/json_record.h"

#include <map>
#include <memory>
#include <string>

#include "sluice/common/status.h"

namespace sluice::format {

namespace {

// The inferred type of one JSON position while samples are merged.
struct Node {
  enum class Kind { kNull, kBool, kLong, kDouble, kString, kObject, kArray };
  Kind kind = Kind::kNull;
  std::vector<std::string> order;                      // kObject: keys in order of appearance
  std::map<std::string, std::unique_ptr<Node>> fields;  // kObject
  std::unique_ptr<Node> element;                       // kArray
};

void merge(Node& into, const rapidjson::Value& v);

void merge_kind(Node& into, Node::Kind kind) {
  using K = Node::Kind;
  if (into.kind == kind || kind == K::kNull) return;
  if (into.kind == K::kNull) {
    into.kind = kind;
    return;
  }
  if ((into.kind == K::kLong && kind == K::kDouble) || (into.kind == K::kDouble && kind == K::kLong)) {
    into.kind = K::kDouble;
    return;
  }
  // Anything else that disagrees (number vs string, object vs scalar, ...) is kept as text.
  into.kind = K::kString;
  into.order.clear();
  into.fields.clear();
  into.element.reset();
}

void merge(Node& into, const rapidjson::Value& v) {
  using K = Node::Kind;
  if (v.IsNull()) return;
  if (v.IsBool()) return merge_kind(into, K::kBool);
  if (v.IsInt64() || v.IsUint64()) return merge_kind(into, v.IsInt64() ? K::kLong : K::kDouble);
  if (v.IsNumber()) return merge_kind(into, K::kDouble);
  if (v.IsString()) return merge_kind(into, K::kString);
  if (v.IsObject()) {
    merge_kind(into, K::kObject);
    if (into.kind != K::kObject) return;
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      std::string key(m->name.GetString(), m->name.GetStringLength());
      auto& child = into.fields[key];
      if (!child) {
        child = std::make_unique<Node>();
        into.order.push_back(key);
      }
      merge(*child, m->value);
    }
    return;
  }
  merge_kind(into, K::kArray);
  if (into.kind != K::kArray) return;
  if (!into.element) into.element = std::make_unique<Node>();
  for (const auto& e : v.GetArray()) merge(*into.element, e);
}

std::shared_ptr<arrow::DataType> to_arrow(const Node& n) {
  using K = Node::Kind;
  switch (n.kind) {
    case K::kBool: return arrow::boolean();
    case K::kLong: return arrow::int64();
    case K::kDouble: return arrow::float64();
    case K::kObject: {
      arrow::FieldVector fields;
      for (const auto& key : n.order) fields.push_back(arrow::field(key, to_arrow(*n.fields.at(key))));
      return arrow::struct_(fields);
    }
    case K::kArray: return arrow::list(n.element ? to_arrow(*n.element) : arrow::utf8());
    case K::kNull:
    case K::kString: break;
  }
  return arrow::utf8();
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> infer_json_schema(const std::vector<std::string_view>& samples,
                                                                JsonInferenceStats* stats) {
  Node root;
  root.kind = Node::Kind::kObject;
  JsonInferenceStats counted;
  JsonRecordParser parser;
  for (const auto& text : samples) {
    auto& doc = parser.parse<rapidjson::kParseDefaultFlags>(text);
    if (parser.failed() || !doc.IsObject()) {
      ++counted.malformed;
      continue;
    }
    ++counted.records;
    merge(root, doc);
  }
  if (stats) *stats = counted;
  if (counted.records == 0) {
    return invalid("cannot infer a JSON schema: none of the {} sampled records is a JSON object{}", samples.size(),
                   samples.empty() ? " (the topic is empty: declare value_schema, or produce records first)" : "");
  }
  auto type = to_arrow(root);
  return arrow::schema(type->fields());
}

}  // namespace sluice::format
