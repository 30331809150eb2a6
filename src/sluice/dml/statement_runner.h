// Runs one `sluice sql` command: DELETE, UPDATE or MERGE on a Delta table (again from a fresh
// snapshot when a concurrent commit conflicts with it), or a query over tables.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/delta/file_skipping.h"
#include "sluice/dml/table_rewrite.h"
#include "sluice/sql/source.h"

namespace sluice::dml {

// Where a command's table names lead: delta.`<path>` always names a table by its location;
// what a bare name means is the catalog's (a pipeline's dataset, or the one table given).
class TableCatalog {
 public:
  virtual ~TableCatalog() = default;
  // The table `name` (its parts as written: {"delta", "/data/t"}, {"events"}) at its latest
  // version. Errors say which names are known.
  virtual arrow::Result<DmlTarget> open(const std::vector<std::string>& name) const = 0;
};

// Opens delta.`<location>` (any case of "delta"), or returns nullopt for another name.
arrow::Result<std::optional<DmlTarget>> open_delta_path(const std::vector<std::string>& name);

// One Delta table a query read: its name as written, and the files and bytes the scan read
// after file skipping, of all.
struct TableScan {
  std::string table;
  delta::ScanReport report;
  std::string skipping;  // the skipping predicate the WHERE gave ("unknown": none)
};

struct CommandResult {
  std::optional<DmlOutcome> dml;         // DELETE / UPDATE / MERGE
  std::shared_ptr<arrow::Table> rows;    // a query
  std::vector<TableScan> scans;          // a query: each table read, in the order read
};

// Whether a query skips files by its WHERE (kOff: every file read; for comparisons and benches).
enum class FileSkipping { kOn, kOff };

// Parses and runs `file`'s one command. A DML statement that loses a race to a conflicting
// commit is run again from the new version, up to `max_attempts` times in all.
arrow::Result<CommandResult> run_sql_command(const sql::SourceFile& file, const TableCatalog& catalog,
                                             int max_attempts = 5, FileSkipping skipping = FileSkipping::kOn);

}  // namespace sluice::dml
