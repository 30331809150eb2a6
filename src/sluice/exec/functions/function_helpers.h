// Small expression builders the binder and the function families share.
#pragma once

#include <arrow/compute/api.h>
#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>

namespace sluice::exec {

bool is_numeric_type(const arrow::DataType& t);
bool is_string_type(const arrow::DataType& t);
bool is_binary_type(const arrow::DataType& t);

arrow::compute::Expression literal_of(std::shared_ptr<arrow::Scalar> scalar);
// A safe cast (errors on overflow and lost precision).
arrow::compute::Expression cast_to(const arrow::compute::Expression& x, std::shared_ptr<arrow::DataType> target);

// CAST(x AS `target`) for every cast the binder writes. Bytes become text through
// sluice_utf8_from_binary (invalid UTF-8 replaced by U+FFFD, as Spark shows it) instead of
// Arrow's cast, which fails the whole batch on one invalid value; so no record can stop a flow
// by being cast to STRING.
arrow::Result<arrow::compute::Expression> cast_expr(const arrow::compute::Expression& x, const arrow::DataType& from,
                                                    std::shared_ptr<arrow::DataType> target,
                                                    std::shared_ptr<arrow::compute::CastOptions> options = nullptr);

// Microsecond UTC timestamps, sluice's TIMESTAMP.
std::shared_ptr<arrow::DataType> timestamp_type();

}  // namespace sluice::exec
