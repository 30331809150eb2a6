// SQL type names (Spark's: INT, BIGINT, DECIMAL(10,2), ARRAY<STRING>, STRUCT<a: INT>, ...) to
// Arrow types, and DDL schema strings ('a INT, b STRING') to Arrow schemas.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>

namespace sluice::sql {

arrow::Result<std::shared_ptr<arrow::DataType>> parse_type(const std::string& text);
arrow::Result<std::shared_ptr<arrow::Schema>> parse_ddl_schema(const std::string& text);

// Spark's name of an Arrow type, for messages: INT, BIGINT, STRING, ARRAY<INT>, ...
std::string sql_type_name(const arrow::DataType& type);

}  // namespace sluice::sql
