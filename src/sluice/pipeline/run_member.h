// A worker of a scale-out on an object store (several continuous `sluice run` processes sharing
// one storage URI): what the shared flock of <storage>/system/run.lock is on a local disk. The
// worker keeps a heartbeat object <storage>/system/run_members/<host>-<pid>-<id>.json (a plain
// PUT every ttl/4, deleted on a clean exit), and joins by writing a "join" generation into the
// run lease's chain (run_lease.h) with put-if-absent, after its heartbeat is up. An exclusive
// run takes the chain only when no heartbeat is live, asked before and after its generation is
// written; so of a worker and an exclusive run starting at once exactly one runs: they race for
// the same generation, and the loser reads the winner (see docs/decisions.md, "Scale-out on an
// object store"). A worker that finds an exclusive generation in the chain after its join (an
// exclusive run started while it did not renew: stopped, cut off), or cannot renew its
// heartbeat within its ttl, ends at once (exit 75), as a run lease holder does.
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
#include <vector>

#include "sluice/pipeline/run_lease.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

// Thread-safe: a background thread renews the heartbeat; the destructor deletes it.
class RunMember {
 public:
  // Joins: nullptr with `*holder` set when an exclusive run holds the lease in `lease_dir`.
  // options.record_json is this worker's holder record; options.ttl (or SLUICE_RUN_LEASE_TTL_MS)
  // the heartbeat's ttl.
  static arrow::Result<std::unique_ptr<RunMember>> join(std::shared_ptr<storage::ObjectStore> objects,
                                                        std::filesystem::path lease_dir,
                                                        std::filesystem::path members_dir,
                                                        RunLeaseOptions options, LeaseHolder* holder);
  ~RunMember();
  RunMember(const RunMember&) = delete;
  RunMember& operator=(const RunMember&) = delete;

  // Records (JSON) of the workers whose heartbeat is live, oldest first. Heartbeats of
  // processes gone from this host, and of any process more than an hour past its ttl, are
  // deleted on the way.
  static arrow::Result<std::vector<std::string>> live(storage::ObjectStore& objects,
                                                      const std::filesystem::path& members_dir);

  // The first generation of the scale-out this worker joined (every join since copies it).
  int64_t scale_out_since() const { return since_; }

 private:
  RunMember() = default;
  void renew_loop();
  bool stopping();  // the destructor has begun: a loss found now ends nothing
  std::string heartbeat_text() const;
  // Whether the chain still shows this worker's scale-out: nothing but joins since it began.
  arrow::Result<bool> chain_is_ours() const;

  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path lease_dir_;
  std::string heartbeat_path_;
  std::chrono::milliseconds ttl_{0};
  std::string record_json_;
  bool scale_out_ = true;  // a `sluice run` worker (the run lease), else another holder (a maintenance lock)
  std::string name_;       // the lease's name and stake (RunLeaseOptions), for messages
  std::string stake_;
  int64_t since_ = -1;
  int64_t renewed_ms_ = 0;        // renew thread only after join
  std::mutex mutex_;              // guards stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread renewer_;
};

}  // namespace sluice::pipeline
