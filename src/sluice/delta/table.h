// Helpers to start a new Delta table: the lowest protocol that covers its schema, and its
// first metaData action.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

// (1,2) unless a column needs a table feature; timestamp_ntz needs (3,7) with the
// `timestampNtz` feature on both lists.
Protocol protocol_for_schema(const arrow::Schema& schema);

arrow::Result<Metadata> new_table_metadata(const arrow::Schema& schema, std::string name,
                                           std::optional<std::string> description,
                                           std::vector<std::string> partition_columns = {});

// The latest snapshot, or null when the table has no commits yet.
arrow::Result<std::shared_ptr<const Snapshot>> load_latest_if_exists(const LogStore& store);

}  // namespace sluice::delta
