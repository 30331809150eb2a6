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
// The same chain elects the leader of a scale-out (system/leader_lease/, run_lock.h), and
// scale-out workers write "join" generations into the run lease's chain (run_member.h).
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

struct RunLeaseOptions {
  // How long a lease holds without renewal. SLUICE_RUN_LEASE_TTL_MS overrides it (tests).
  std::chrono::milliseconds ttl{20'000};
  // The holder record's fields (pid, host, started_ms, command, mode, pipeline), as JSON.
  std::string record_json;
  // For messages: what the lease is, and what ending on its loss protects.
  std::string name = "run lease";
  std::string stake = "two runs never write the pipeline's storage at once";
  // When set, asked when the newest generation is free, before taking it and again after:
  // the record (JSON) of a live process that excludes this one (a scale-out worker, for an
  // exclusive run), or "" for none. Found after taking, the lease is released and refused:
  // that process checked the chain before this one's generation was there (run_member.h).
  std::function<arrow::Result<std::string>()> excluded_by;
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
  // The generation this process took the lease with: a leader's term.
  int64_t term() const { return term_; }

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
  std::string name_, stake_;
  int64_t term_ = -1;
  int64_t generation_ = -1;       // the newest generation this process wrote; renew thread only after start
  int64_t renewed_ms_ = 0;        // when it was written (this process's clock)
  std::mutex mutex_;              // guards stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread renewer_;
};

// The pieces of the generation chain that the scale-out's member heartbeats (run_member.h) share.
namespace lease {
// The host recorded in leases and heartbeats: SLUICE_HOST_NAME when set (tests run several
// "machines" on one host), else gethostname(2).
std::string host_name();
// Generations in a lease folder, ascending.
arrow::Result<std::vector<int64_t>> generations(const storage::ObjectStore& objects, const std::filesystem::path& dir);
std::string generation_path(const std::filesystem::path& dir, int64_t generation);
// A generation's text, or nullopt when it is gone (superseded and deleted after the listing).
// Any other failure (permission, a 5xx) is an IOError naming the object: read() does not tell a
// missing object from a failing one, head() does.
arrow::Result<std::optional<std::string>> read_generation(const storage::ObjectStore& objects,
                                                          const std::string& path);
// Whether a record (renewed_ms, ttl_ms, host, pid) may still be written by its writer: renewed
// within its ttl and, when written on this host, by a process that still exists.
bool writer_may_live(const std::string& record_json);
// Whether a generation holds the lease: not released, its writer may live, and not a scale-out
// join (whose liveness is its members' heartbeats).
bool holds(const std::string& generation_json);
}  // namespace lease

}  // namespace sluice::pipeline
