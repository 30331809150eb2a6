// File skipping: which data files of a table may hold rows a filter keeps, judged from each add
// action's partition values (exactly) and per-file stats (min/max/nullCount, conservatively:
// whatever cannot be judged keeps the file).
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/snapshot.h"

namespace parquet {
class FileMetaData;
}  // namespace parquet

namespace sluice::delta {

// kNe is last: row filters index a table of kernel names by the first five.
enum class CompareOp { kEq, kLt, kLe, kGt, kGe, kIsNull, kIsNotNull, kNe };

// `column <op> value` on a top-level column; value is unused for IS [NOT] NULL.
struct ColumnPredicate {
  std::string column;
  CompareOp op;
  std::shared_ptr<arrow::Scalar> value;
};

// A row filter as a file-skipping tree. A file is skipped only when the tree proves that no row
// of it is kept: NOT is pushed down to the leaves when the tree is built (NOT a < 1 keeps the
// rows where a >= 1, NULL in both), and a part that cannot be judged is kUnknown, which keeps
// every file. kNever keeps none (WHERE false, x IN () ...).
struct FilePredicate {
  enum class Kind { kUnknown, kNever, kAnd, kOr, kLeaf };
  Kind kind = Kind::kUnknown;
  ColumnPredicate leaf;  // kLeaf: the value has the comparison's type
  // kLeaf: the column is compared as CAST(column AS cast) (a cast that keeps order: numbers
  // to numbers, dates and timestamps to each other); null: as it is.
  std::shared_ptr<arrow::DataType> cast;
  std::vector<FilePredicate> children;  // kAnd, kOr

  // The conjunction of `predicates` (DML's skipping predicates).
  static FilePredicate all_of(const std::vector<ColumnPredicate>& predicates);
  // Whether the tree can skip anything at all (no leaf, no kNever: it keeps every file).
  bool can_skip() const;
  std::string ToString() const;
};

// The skipping tree of a bound row filter over `schema` (an Arrow expression, as exec binds a
// WHERE): and/or/invert, the six comparisons and is_null/is_valid between a top-level column
// (maybe under an order-keeping cast) and a literal; anything else is kUnknown.
FilePredicate skipping_predicate(const arrow::compute::Expression& filter, const arrow::Schema& schema);

// What a scan read against what the table holds.
struct ScanReport {
  int64_t files_total = 0;
  int64_t files_scanned = 0;
  int64_t bytes_total = 0;
  int64_t bytes_scanned = 0;
  int64_t row_groups_total = 0;    // in the files scanned
  int64_t row_groups_scanned = 0;  // after skipping by row-group statistics
};

// The files among `files` that may hold rows `predicate` keeps (the snapshot gives schema and
// partition columns). A predicate on a column the table lacks is an error.
arrow::Result<std::vector<Add>> select_files_among(const Snapshot& snapshot, const FilePredicate& predicate,
                                                   const std::vector<Add>& files);

// The row groups of one data file (its Parquet footer) that may hold rows `predicate` keeps,
// judged from each row group's column statistics (partition columns from the add action, as
// for files); every row group when the predicate cannot skip. `schema`: the table's.
std::vector<int> select_row_groups(const arrow::Schema& schema, const std::vector<std::string>& partition_columns,
                                   const Add& file, const parquet::FileMetaData& metadata,
                                   const FilePredicate& predicate);

}  // namespace sluice::delta
