// The run lock on an object store, where there is no flock(2): a lease kept as a chain of
// objects <storage>/system/run_lease/<generation>.json, each written with put-if-absent, so of
// two processes extending the chain exactly one writes the next generation. The holder renews
// by writing the next generation every ttl/4 and listing the folder (nothing newer may be
// there: a taker deletes the generations it supersedes); a process that finds the newest generation
// released, expired (renewed more than ttl ago), or written on this host by a process that is
// gone, takes the lease by writing the generation after it. A holder that cannot renew before
// its lease expires, or finds a generation it did not write (another process took over after
// it stalled), ends at once: it can no longer be sure it is the only writer. Delta commits
// stay atomic either way (conditional PUT of each version), so a holder ending mid-update
// loses no committed data. Keyed on the ObjectStore interface only (S3, and the stores beside it).
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

struct RunLeaseOptions {
  // How long a lease holds without renewal. SLUICE_RUN_LEASE_TTL_MS overrides it (tests).
  std::chrono::milliseconds ttl{20'000};
  // The holder record's fields (pid, host, started_ms, command, mode, pipeline), as JSON.
  std::string record_json;
};

// The live lease's holder as recorded.
struct LeaseHolder {
  std::string record_json;  // its record (run_lock.h RunHolder fields)
  int64_t generation = -1;
};

// Thread-safe: a background thread renews; the destructor releases.
class RunLease {
 public:
  // Takes the lease without waiting; nullptr with `*holder` set when a live holder has it.
  static arrow::Result<std::unique_ptr<RunLease>> acquire(std::shared_ptr<storage::ObjectStore> objects,
                                                          std::filesystem::path dir, RunLeaseOptions options,
                                                          LeaseHolder* holder);
  ~RunLease();
  RunLease(const RunLease&) = delete;
  RunLease& operator=(const RunLease&) = delete;

  // The time-to-live in effect (options, or SLUICE_RUN_LEASE_TTL_MS).
  static std::chrono::milliseconds ttl(const RunLeaseOptions& options);

 private:
  RunLease() = default;
  void renew_loop();
  // The text of this process's next generation, stamped now (renewed_ms), released or not.
  std::string generation_text(bool released) const;
  std::string object_path(int64_t generation) const;

  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path dir_;
  std::chrono::milliseconds ttl_{0};
  std::string record_json_;
  int64_t generation_ = -1;       // the newest generation this process wrote; renew thread only after start
  int64_t renewed_ms_ = 0;        // when it was written (this process's clock)
  std::mutex mutex_;              // guards stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread renewer_;
};

}  // namespace sluice::pipeline
