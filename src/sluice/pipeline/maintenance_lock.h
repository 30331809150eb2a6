// The maintenance lock of one Delta table: what keeps `sluice forget` apart from the commands
// that write, rewrite or delete a table's files (`sluice sql` DELETE/UPDATE/MERGE, `table append`,
// `table optimize`, `table vacuum`). forget holds it exclusively on every table of the pipeline from before it
// reads them until its clean-up is done; the others hold it shared for their whole run (read,
// write, commit, and the deletion of their own files when the commit fails), so none of them
// can write a file forget's clean-up would take for an orphan, or commit files it deleted.
// Locally: flock(2) on <table>/_sluice_maintenance.lock (released by the kernel when the process
// dies; a hidden name that VACUUM, Spark and every reader leave alone). On an object store (no
// flock): forget takes a lease (run_lease.h) under <table>/_sluice_maintenance/lease/ when no
// shared holder's heartbeat is live; a shared holder joins that lease's chain as a member
// (run_member.h, heartbeat under <table>/_sluice_maintenance/members/) when no forget holds it,
// so shared holders run beside each other there too, as they do under a shared flock. Writers
// that take no lock (Spark, deltalake) are not kept out: forget's erasure and
// clean-up guard against them as the Delta protocol allows (docs/decisions.md "(mt)").
#pragma once

#include <arrow/result.h>

#include <memory>
#include <string>

#include "sluice/delta/log_store.h"
#include "sluice/pipeline/run_lease.h"
#include "sluice/pipeline/run_member.h"

namespace sluice::pipeline {

enum class MaintenanceLockMode {
  kShared,     // sql DML, table append|optimize|vacuum: they may run beside each other
  kExclusive,  // forget: nothing else rewrites or deletes the table's files meanwhile
};

// Holds the lock until destroyed. Not thread-safe (one owner).
class MaintenanceLock {
 public:
  // Takes the lock of the table at `store` without waiting; refused, naming the command that
  // holds it when known, when another process holds it in a mode that excludes `mode`.
  // `table` names the table in messages, `command` this process's command ("table optimize",
  // never a value of its arguments: the holder's record is readable by anyone).
  static arrow::Result<std::unique_ptr<MaintenanceLock>> acquire(const delta::LogStore& store, const std::string& table,
                                                                 MaintenanceLockMode mode, const std::string& command);
  ~MaintenanceLock();
  MaintenanceLock(const MaintenanceLock&) = delete;
  MaintenanceLock& operator=(const MaintenanceLock&) = delete;

 private:
  MaintenanceLock() = default;
  int fd_ = -1;
  std::unique_ptr<RunLease> lease_;    // exclusive, on an object store
  std::unique_ptr<RunMember> member_;  // shared, on an object store
};

}  // namespace sluice::pipeline
