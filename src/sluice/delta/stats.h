// Per-file column statistics (PROTOCOL.md "Per-file Statistics"): numRecords, and for every
// leaf column minValues, maxValues and nullCount, gathered batch by batch as a file is written.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <string>
#include <vector>

#include "sluice/common/time_text.h"

namespace parquet {
class FileMetaData;
class SchemaDescriptor;
class WriterProperties;
}  // namespace parquet

namespace sluice::delta {

// Longest string prefix kept in min/max stats, in UTF-16 units as Spark counts: a longer min is
// cut to it, a longer max to it plus a tie-breaker that keeps it an upper bound (stats.cc).
inline constexpr size_t kStatsStringPrefixChars = 32;

// Whether files keep min/max stats for a column of this type (binary, boolean and nested
// columns get only nullCount, as Delta writers do).
bool has_min_max(const arrow::DataType& type);

class StatsCollector {
 public:
  explicit StatsCollector(std::shared_ptr<arrow::Schema> schema);
  ~StatsCollector();
  StatsCollector(StatsCollector&&) noexcept;
  StatsCollector& operator=(StatsCollector&&) noexcept;

  // String columns' min/max come from the Parquet file's own column-chunk statistics instead
  // of a second pass over every value (docs/decisions.md "Delta string bounds from Parquet"):
  // `file_schema` and `properties` are what the file is written with. Columns whose chunks
  // keep no statistics stay collected here. Call before the first update; finish() then needs
  // the written file's metadata.
  arrow::Status take_string_bounds_from_parquet(const parquet::SchemaDescriptor& file_schema,
                                                const parquet::WriterProperties& properties);

  arrow::Status update(const arrow::RecordBatch& batch);
  int64_t num_records() const { return num_records_; }
  // The stats JSON text for an `add` action; `file` is the closed Parquet file's metadata
  // (required after take_string_bounds_from_parquet).
  arrow::Result<std::string> finish(const parquet::FileMetaData* file = nullptr) const;

  struct Column;  // per-leaf accumulator, defined in stats.cc

 private:
  std::shared_ptr<arrow::Schema> schema_;
  std::vector<std::unique_ptr<Column>> columns_;  // one per top-level field
  int64_t num_records_ = 0;
};

// Formats for stats and partition values (common/time_text.h), shared with the partition-value
// serializer and the JSON row encoder.
using sluice::format_date32;
using sluice::format_timestamp_micros;

}  // namespace sluice::delta
