// Delta tables read statically: versions from log listings, rows from snapshot scans.
#include "sluice/pipeline/static_tables.h"

#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"

namespace sluice::pipeline {

arrow::Result<int64_t> DeltaStaticTables::latest_version(const std::string& name) {
  delta::LogStore store(objects_, (root_ / name).string());
  ARROW_ASSIGN_OR_RAISE(auto version, store.latest_version());
  if (!version) {
    // No commit yet: the snapshot load says so, naming the table and what to do.
    ARROW_RETURN_NOT_OK(delta::Snapshot::load(store).status());
    return arrow::Status::Invalid("table '", name, "' has no commits at ", store.display(store.log_dir()));
  }
  return version->value();
}

arrow::Result<exec::StaticTable> DeltaStaticTables::read(const std::string& name) {
  delta::LogStore store(objects_, (root_ / name).string());
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::Snapshot::load(store));
  exec::StaticTable table;
  table.version = snapshot->version().value();
  ARROW_ASSIGN_OR_RAISE(table.rows, delta::scan_table(store, *snapshot));
  ++scans_;
  return table;
}

int64_t DeltaStaticTables::scans() const { return scans_.load(); }

}  // namespace sluice::pipeline
