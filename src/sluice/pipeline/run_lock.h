// The lock a `sluice run` holds on its pipeline's storage for as long as it runs, so that a
// second run is refused at once (naming the one that holds it) instead of both failing on
// commit conflicts. flock(2) on <storage>/system/run.lock: the kernel releases it when the
// process dies, so a killed run never blocks the next one. Each holder also keeps a record of
// itself (pid, host, start time, program, pipeline folder and the names of the flags given,
// never their values) under <storage>/system/runs/, locked while it lives. On an object store
// (no flock) an exclusive run holds a lease renewed by it (run_lease.h), a scale-out worker a
// heartbeat and a join of that lease's chain (run_member.h), and the scale-out's leader a
// second lease (<storage>/system/leader_lease/).
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/run_lease.h"
#include "sluice/pipeline/run_member.h"

namespace sluice::pipeline {

enum class RunLockMode {
  kExclusive,  // every other run of the pipeline is refused
  kShared,     // scale-out: several continuous runs whose Kafka reads all join consumer groups
};

// What decides the lock mode of a run.
struct RunShape {
  bool continuous = false;       // mode: continuous and no --once
  bool bronze_list = false;      // pipeline.yaml has a `bronze:` list (read in assign mode)
  bool full_refresh = false;     // --full-refresh resets tables other processes would be writing
  bool sql_reads_scale_out = false;  // every_kafka_read_joins_a_group() of the SQL graph
};

// Shared only for continuous runs of SQL pipelines without a `bronze:` list and without
// --full-refresh, in which every read_kafka joins a consumer group (README, scale-out);
// exclusive for everything else.
RunLockMode run_lock_mode(const RunShape& shape);

// How the holder record names the command: program (argv[0]), the pipeline folder, the names
// of the flags given. Never flag values: no future flag can leak a secret into the record
// (a 0644 file) or a refusal.
struct RunCommand {
  std::string program;
  std::vector<std::string> flags;
  std::string verb = "run";  // the sub-command holding the lock: run, forget
};

struct RunHolder {
  int64_t pid = 0;
  std::string host;
  int64_t started_ms = 0;
  std::string command;  // "<program> run <folder> <flag names>"
  std::string pipeline;  // its display name
  RunLockMode mode = RunLockMode::kExclusive;
  std::string describe() const;
};

// Thread-safe (leads() is called from every dataset's loop).
class RunLock {
 public:
  // Takes the lock without waiting; refused (with the holders named) when another run holds it
  // in a mode that excludes this one.
  static arrow::Result<std::unique_ptr<RunLock>> acquire(const PipelineConfig& config, RunLockMode mode,
                                                         const RunCommand& command);

 private:
  struct Key {};  // only acquire() makes one

 public:
  explicit RunLock(Key) {}
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // Shared runs: whether this process runs the datasets that cannot run in several processes
  // at once (those reading Delta tables, materialized views, event-time state). One process
  // leads at a time (a second flock, taken without waiting); when it exits or dies the next
  // to ask takes over. Exclusive runs always lead. An error (the leader lock cannot be opened
  // or locked) is returned, not taken for "another process leads": that would stall those
  // datasets in every process without a word. On an object store the leader holds the leader
  // lease (a RunLease under system/leader_lease/, its generation the term) until it exits;
  // the others try to take it at most every ttl/4, so they take over a leader killed on
  // another host after its ttl; a leader that loses it ends the process (exit 75). A failing
  // attempt is a warning, and an error only once the store has failed for a whole ttl.
  arrow::Result<bool> leads();

  // The live holders of the lock on `storage` (records of dead processes are skipped).
  static std::vector<RunHolder> holders(const std::filesystem::path& storage);

 private:
  arrow::Status acquire_on_object_store(const PipelineConfig& config, const RunCommand& command);
  arrow::Result<bool> leads_on_object_store();

  std::filesystem::path system_;
  RunLockMode mode_ = RunLockMode::kExclusive;
  int lock_fd_ = -1;
  int record_fd_ = -1;
  std::filesystem::path record_path_;
  // Object-store storage, instead of the flocks: an exclusive run's lease, or a scale-out
  // worker's membership and (once it leads) the leader lease.
  std::unique_ptr<RunLease> lease_;
  std::unique_ptr<RunMember> member_;
  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path leader_dir_;
  RunLeaseOptions leader_options_;
  std::mutex mutex_;  // guards leader_fd_, leader_, next_leader_try_ms_, leader_failing_since_ms_
  int leader_fd_ = -1;
  std::unique_ptr<RunLease> leader_;
  int64_t next_leader_try_ms_ = 0;
  int64_t leader_failing_since_ms_ = 0;  // first of the attempts failing in a row, 0 when none
};

}  // namespace sluice::pipeline
