// Hash aggregation of a table by its leading key columns with Acero, the result laid out in a
// given schema: shared by the window operator (partials per window and key) and incremental
// materialized views (partials per group).
#pragma once

#include <arrow/compute/api_aggregate.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>
#include <vector>

namespace sluice::exec {

// Groups `input` by its first `keys` columns (named as `schema`'s first fields) on one thread,
// so arrival order is kept (first/last need it), and casts the columns to `schema`'s types.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> group_by(const std::shared_ptr<arrow::Table>& input,
                                                            const std::vector<arrow::compute::Aggregate>& aggregates,
                                                            const std::shared_ptr<arrow::Schema>& schema, size_t keys);

// The aggregates that merge partial aggregates (columns __p<i>, and __s<i>/__c<i> for mean) of
// the hash_* `functions` into one partial per group: counts add up, means keep sum and count,
// first/last/sum/min/max apply again.
std::vector<arrow::compute::Aggregate> partial_merge_aggregates(const std::vector<std::string>& functions);

}  // namespace sluice::exec
