// Partition values as the Delta protocol serializes them, Hive-style directory names, and
// parsing partition values back into typed scalars for readers.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <optional>
#include <string>

namespace sluice::delta {

// Directory name of a null partition value.
inline constexpr const char* kHiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__";

// The protocol's string form of a partition value (nullopt for null, and for "" as in Spark).
arrow::Result<std::optional<std::string>> serialize_partition_value(const arrow::Scalar& value);

// Parses a partitionValues entry into a scalar of `type` (a null scalar for nullopt).
arrow::Result<std::shared_ptr<arrow::Scalar>> parse_partition_value(
    const std::optional<std::string>& value, const std::shared_ptr<arrow::DataType>& type);

// Hive path escaping of a partition value, as Spark does it (%XX for / = : % etc.).
std::string escape_partition_path(const std::string& value);

// Whether a column of this type can partition a table.
bool is_partitionable(const arrow::DataType& type);

}  // namespace sluice::delta
