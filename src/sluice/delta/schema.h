// Arrow schema <-> Delta schema JSON (Spark StructType JSON, PROTOCOL.md "Schema
// Serialization Format").
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>

namespace sluice::delta {

// Column metadata that a schema round trip (Delta JSON <-> Arrow field metadata) keeps: the
// column's COMMENT ("comment", where Spark and Unity Catalog read it) and its tags
// ("sluice.tag.<tag>" = value, with "sluice.tag.<tag>.derivation" and ".from" on a tag taken
// over from an upstream column; docs/decisions.md). Other entries are dropped, as before.
inline constexpr const char* kColumnTagPrefix = "sluice.tag.";
bool is_kept_column_metadata(const std::string& key);

// Serializes an Arrow schema to Delta's schemaString. Timestamps must be microsecond
// (with a time zone: `timestamp`; without: `timestamp_ntz`).
arrow::Result<std::string> to_delta_schema_string(const arrow::Schema& schema);

// Parses a schemaString into an Arrow schema (timestamps as microsecond UTC).
arrow::Result<std::shared_ptr<arrow::Schema>> from_delta_schema_string(const std::string& text);

// The Delta name of an Arrow type for messages: "long", "string", "struct<a:integer>", ...
std::string delta_type_name(const arrow::DataType& type);

// Whether any field (at any depth) needs the timestampNtz table feature.
bool uses_timestamp_ntz(const arrow::Schema& schema);

}  // namespace sluice::delta
