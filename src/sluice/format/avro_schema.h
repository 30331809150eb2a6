// Avro schemas: the JSON form parsed into a small tree of nodes, and their Arrow types.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::format {

enum class AvroKind { kNull, kBoolean, kInt, kLong, kFloat, kDouble, kBytes, kString, kRecord, kEnum, kArray, kMap, kUnion, kFixed };

enum class AvroLogical {
  kNone, kDate, kTimestampMillis, kTimestampMicros, kLocalTimestampMillis, kLocalTimestampMicros,
  kDecimal, kUuid, kTimeMillis, kTimeMicros
};

struct AvroField {
  std::string name;
  int node = -1;                // index into AvroSchema::nodes
  bool has_default = false;
  std::string default_json;     // the field's "default", as JSON text
};

struct AvroNode {
  AvroKind kind = AvroKind::kNull;
  AvroLogical logical = AvroLogical::kNone;
  std::string name;                    // full name of a record, enum or fixed
  int32_t fixed_size = 0;              // fixed
  int32_t precision = 0, scale = 0;    // decimal
  std::vector<std::string> symbols;    // enum
  std::vector<AvroField> fields;       // record
  std::vector<int> children;           // array items, map values, union branches
};

// A parsed schema. Nodes refer to each other by index; a named type referenced twice is one
// node, so a schema is a DAG (recursive types are refused when parsing).
struct AvroSchema {
  std::vector<AvroNode> nodes;
  int root = -1;
  const AvroNode& node(int i) const { return nodes[static_cast<size_t>(i)]; }
};

// Parses an Avro schema in its JSON form; names resolve with namespaces as the spec says.
arrow::Result<std::shared_ptr<const AvroSchema>> parse_avro_schema(const std::string& json);

// The Arrow type of a node (see README's "sluice decode" for the mapping).
arrow::Result<std::shared_ptr<arrow::DataType>> avro_to_arrow(const AvroSchema& schema, int node);
// The root's type; `avro_to_arrow(schema)` of a record is a struct of its fields.
arrow::Result<std::shared_ptr<arrow::DataType>> avro_to_arrow(const AvroSchema& schema);

// If `node` is a union of null and one other type (either order), that other branch's index
// into the union's children; else -1.
int nullable_union_branch(const AvroSchema& schema, int node);

}  // namespace sluice::format
