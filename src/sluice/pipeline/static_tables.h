// The pipeline's Delta tables as the static side of stream-static joins: the latest version from
// a listing of the table's _delta_log (per batch), the rows from a scan of the latest snapshot
// (only when a join's build is stale). Rows are not cached here: each join's hash table holds
// the rows it needs, and a second copy would double a static table's memory.
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <atomic>
#include <string>

#include "sluice/exec/stream_static_join.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

// Thread-safe: flows on several threads read through one instance (`scans_` is atomic).
class DeltaStaticTables : public exec::StaticTables {
 public:
  // Table `name` lives at `tables_root / name`.
  explicit DeltaStaticTables(std::filesystem::path tables_root)
      : DeltaStaticTables(storage::local_store(), std::move(tables_root)) {}
  DeltaStaticTables(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path tables_root)
      : objects_(std::move(objects)), root_(std::move(tables_root)) {}

  arrow::Result<int64_t> latest_version(const std::string& name) override;
  arrow::Result<exec::StaticTable> read(const std::string& name) override;
  // Full scans made so far (tests).
  int64_t scans() const;

 private:
  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path root_;
  std::atomic<int64_t> scans_{0};
};

}  // namespace sluice::pipeline
