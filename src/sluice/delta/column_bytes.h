// The Parquet column-chunk bytes a data-file read decodes, for a reader that wants to show it
// reads only its columns (the KPI API). A header of its own so that scan.h's many includers do
// not depend on it.
#pragma once

#include <arrow/api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

// Compressed bytes of the column chunks in the row groups read: of all the files' columns, and
// of those decoded (the leaves of the fields the reader was asked for).
struct ColumnBytes {
  int64_t total = 0;
  int64_t read = 0;
};

// open_data_file (scan.h) adding the file's figures to `bytes`.
arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file_counting(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::string>& partitions, const Add& file, ColumnBytes* bytes);

}  // namespace sluice::delta
