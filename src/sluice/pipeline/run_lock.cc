// The run lock of a pipeline's storage.
#include "sluice/pipeline/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "sluice/common/ids.h"
#include "sluice/common/json_fields.h"
#include "sluice/common/status.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

namespace {

const char* mode_name(RunLockMode mode) { return mode == RunLockMode::kShared ? "scale-out" : "exclusive"; }

std::string host_name() { return lease::host_name(); }

std::string utc_time(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

// A holder record is live while its owner keeps it locked.
bool record_is_live(int fd) {
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

// Deletes records (and half-written temporary ones older than a minute) of processes that died.
void remove_stale_records(const fs::path& runs) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runs, ec)) {
    const auto name = entry.path().filename().string();
    const bool temp = name.starts_with(".");
    if (temp) {
      struct stat st {};
      if (::stat(entry.path().c_str(), &st) != 0 || std::time(nullptr) - st.st_mtime < 60) continue;
    }
    int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(entry.path().c_str());
    ::close(fd);
  }
}

// A holder record read back; a damaged field reads as its placeholder.
RunHolder holder_from(const std::string& text) {
  RunHolder h;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    h.pid = field_or(j, "pid", int64_t{0});
    h.host = field_or(j, "host", "?");
    h.started_ms = field_or(j, "started_ms", int64_t{0});
    h.command = field_or(j, "command", "?");
    h.pipeline = field_or(j, "pipeline", "?");
    h.mode = field_or(j, "mode", "") == "scale-out" ? RunLockMode::kShared : RunLockMode::kExclusive;
  }
  return h;
}

}  // namespace

RunLockMode run_lock_mode(const RunShape& shape) {
  if (!shape.continuous || shape.bronze_list || shape.full_refresh || !shape.sql_reads_scale_out) {
    return RunLockMode::kExclusive;
  }
  return RunLockMode::kShared;
}

std::string RunHolder::describe() const {
  return fmt::format("pid {} on host {}, started {}, {} run of pipeline '{}': {}", pid, host, utc_time(started_ms),
                     mode_name(mode), pipeline, command);
}

std::vector<RunHolder> RunLock::holders(const fs::path& storage) {
  std::vector<RunHolder> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(storage / "system" / "runs", ec)) {
    if (entry.path().filename().string().starts_with(".")) continue;
    int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    const bool live = record_is_live(fd);
    std::string text;
    if (live) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) text.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    if (!live) continue;
    out.push_back(holder_from(text));
  }
  std::sort(out.begin(), out.end(), [](const RunHolder& a, const RunHolder& b) { return a.started_ms < b.started_ms; });
  return out;
}

namespace {

// This run's holder record: the command is the program, folder and flag names only
// (RunCommand): never a value.
nlohmann::json holder_record(const PipelineConfig& config, RunLockMode mode, const RunCommand& command) {
  std::string command_line = fmt::format("{} {} {}", command.program, command.verb, config.dir.string());
  for (const auto& flag : command.flags) command_line += " " + flag;
  return nlohmann::json{{"pid", static_cast<int64_t>(::getpid())},
                        {"host", host_name()},
                        {"started_ms", now_millis()},
                        {"command", command_line},
                        {"mode", mode_name(mode)},
                        {"pipeline", config.name}};
}

// The refusal of a run on an object store: `holder` is the lease's holder, or (an exclusive run
// refused by a scale-out) one of the workers, then all of them are named.
arrow::Status refuse_on_object_store(const PipelineConfig& config, RunLockMode mode, const LeaseHolder& holder,
                                     const fs::path& lease_dir, std::chrono::milliseconds ttl) {
  const auto h = holder_from(holder.record_json);
  std::vector<RunHolder> held_by{h};
  if (h.mode == RunLockMode::kShared) {
    auto live = RunMember::live(*config.objects, config.storage / "system" / "run_members");
    if (live.ok() && !live->empty()) {
      held_by.clear();
      for (const auto& text : *live) held_by.push_back(holder_from(text));
    }
  }
  std::string who;
  bool same_pipeline = true;
  for (const auto& x : held_by) {
    who += "\n  " + x.describe();
    same_pipeline &= x.pipeline == config.name;
  }
  return arrow::Status::Invalid(fmt::format(
      "pipeline '{}': another sluice run is using storage '{}' (lease {}), held by:{}\n"
      "{}: wait for that run to end or stop it (SIGTERM ends it cleanly). A run that was killed on another "
      "machine holds the lease until its ttl ({} ms) passes; one killed on this machine, not at all. Several "
      "processes share a pipeline only as a scale-out: continuous runs (mode: continuous, no --once, no "
      "--full-refresh, no 'bronze:' list) in which every read_kafka has group_mode => 'subscribe'; this run is {}",
      config.name, config.storage_display(), config.objects->display(lease_dir.string()), who,
      same_pipeline ? "Two runs of one pipeline would both fail on commit conflicts"
                    : "Runs on one storage would fail on each other's commits",
      ttl.count(), mode == RunLockMode::kShared ? "one" : "exclusive"));
}

}  // namespace

arrow::Result<std::unique_ptr<RunLock>> RunLock::acquire(const PipelineConfig& config, RunLockMode mode,
                                                         const RunCommand& command) {
  auto lock = std::make_unique<RunLock>(Key{});
  if (!config.storage_is_local()) {
    lock->mode_ = mode;
    ARROW_RETURN_NOT_OK(lock->acquire_on_object_store(config, command));
    return lock;
  }
  lock->system_ = config.storage / "system";
  lock->mode_ = mode;
  const auto runs = lock->system_ / "runs";
  std::error_code ec;
  fs::create_directories(runs, ec);
  if (ec) return io_error("pipeline '{}': cannot create {}: {}", config.name, runs.string(), ec.message());
  const auto lock_path = lock->system_ / "run.lock";
  lock->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock->lock_fd_ < 0) {
    return io_error("pipeline '{}': cannot open {}: {}", config.name, lock_path.string(), std::strerror(errno));
  }
  if (::flock(lock->lock_fd_, (mode == RunLockMode::kShared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      return io_error("pipeline '{}': cannot lock {}: {} (sluice keeps two runs of a pipeline apart with flock(2); "
                      "put the storage on a local file system that supports it)",
                      config.name, lock_path.string(), std::strerror(errno));
    }
    const auto held_by = holders(config.storage);
    std::string who;
    for (const auto& h : held_by) who += "\n  " + h.describe();
    if (who.empty()) who = "\n  a process that has not written its record yet (it is starting up)";
    bool same_pipeline = !held_by.empty();
    for (const auto& h : held_by) same_pipeline &= h.pipeline == config.name;
    return invalid(
        "pipeline '{}': another sluice run is using storage '{}' (lock {}), held by:{}\n"
        "{}: wait for that run to end or stop it (SIGTERM ends it cleanly){}. Several processes share a pipeline "
        "only as a scale-out: continuous runs (mode: continuous, no --once, no --full-refresh, no 'bronze:' list) "
        "in which every read_kafka has group_mode => 'subscribe'; this run is {}",
        config.name, config.storage.string(), lock_path.string(), who,
        same_pipeline ? "Two runs of one pipeline would both fail on commit conflicts"
                      : "Runs on one storage would fail on each other's commits",
        same_pipeline ? "" : "; if it is another pipeline, give one of them its own 'storage:' in pipeline.yaml",
        mode == RunLockMode::kShared ? "one" : "exclusive");
  }
  remove_stale_records(runs);
  // This run's record, locked before it is published under its final name. The command is the
  // program, folder and flag names only (RunCommand): never a value.
  std::string command_line = fmt::format("{} {} {}", command.program, command.verb, config.dir.string());
  for (const auto& flag : command.flags) command_line += " " + flag;
  const auto host = host_name();
  const auto base = fmt::format("{}.{}.{}.json", host, ::getpid(), random_uuid().substr(0, 8));
  const auto tmp = runs / ("." + base + ".tmp");
  lock->record_fd_ = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (lock->record_fd_ < 0 || ::flock(lock->record_fd_, LOCK_EX | LOCK_NB) != 0) {
    return io_error("pipeline '{}': cannot create {}: {}", config.name, tmp.string(), std::strerror(errno));
  }
  const auto text = nlohmann::json{{"pid", static_cast<int64_t>(::getpid())},
                                   {"host", host},
                                   {"started_ms", now_millis()},
                                   {"command", command_line},
                                   {"mode", mode_name(mode)},
                                   {"pipeline", config.name}}.dump() + "\n";
  if (::write(lock->record_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("pipeline '{}': cannot write {}: {}", config.name, tmp.string(), std::strerror(err));
  }
  lock->record_path_ = runs / base;
  if (::rename(tmp.c_str(), lock->record_path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("pipeline '{}': cannot create {}: {}", config.name, lock->record_path_.string(),
                    std::strerror(err));
  }
  return lock;
}

// Storage on an object store: an exclusive run takes the run lease (run_lease.h) if no
// scale-out worker lives; a scale-out worker joins (run_member.h) if no exclusive run holds it.
arrow::Status RunLock::acquire_on_object_store(const PipelineConfig& config, const RunCommand& command) {
  RunLeaseOptions options;
  options.record_json = holder_record(config, mode_, command).dump();
  const auto system = config.storage / "system";
  const auto lease_dir = system / "run_lease";
  const auto members_dir = system / "run_members";
  LeaseHolder holder;
  if (mode_ == RunLockMode::kShared) {
    ARROW_ASSIGN_OR_RAISE(member_, RunMember::join(config.objects, lease_dir, members_dir, options, &holder));
    if (!member_) return refuse_on_object_store(config, mode_, holder, lease_dir, RunLease::ttl(options));
    objects_ = config.objects;
    leader_dir_ = system / "leader_lease";
    leader_options_ = options;
    leader_options_.name = "leader lease";
    leader_options_.stake = "two workers of the scale-out never run its downstream datasets at once";
    return arrow::Status::OK();
  }
  options.excluded_by = [objects = config.objects, members_dir]() -> arrow::Result<std::string> {
    ARROW_ASSIGN_OR_RAISE(auto live, RunMember::live(*objects, members_dir));
    return live.empty() ? std::string() : live.front();
  };
  ARROW_ASSIGN_OR_RAISE(lease_, RunLease::acquire(config.objects, lease_dir, options, &holder));
  if (lease_) return arrow::Status::OK();
  return refuse_on_object_store(config, mode_, holder, lease_dir, RunLease::ttl(options));
}

RunLock::~RunLock() {
  // The leader lease first (the next leader starts at once), then the membership.
  leader_.reset();
  member_.reset();
  lease_.reset();
  if (!record_path_.empty()) ::unlink(record_path_.c_str());
  for (int fd : {record_fd_, leader_fd_, lock_fd_}) {
    if (fd >= 0) ::close(fd);  // closing releases the flocks
  }
}

arrow::Result<bool> RunLock::leads_on_object_store() {
  if (leader_) return true;
  const auto now = now_millis();
  if (now < next_leader_try_ms_) return false;
  next_leader_try_ms_ = now + RunLease::ttl(leader_options_).count() / 4;
  LeaseHolder holder;
  auto taken = RunLease::acquire(objects_, leader_dir_, leader_options_, &holder);
  if (!taken.ok()) {
    // A store that fails for a moment is retried at the next attempt, said on stderr; one that
    // fails for a whole ttl is an error, not "another worker leads" (which would stall those
    // datasets in every worker without a word).
    if (leader_failing_since_ms_ == 0) leader_failing_since_ms_ = now;
    const auto failure = with_context(
        taken.status(), fmt::format("cannot take or test the leader lease in {}, which picks the worker that runs "
                                    "the datasets that do not scale out; check that the store is reachable",
                                    objects_->display(leader_dir_.string())));
    if (now - leader_failing_since_ms_ >= RunLease::ttl(leader_options_).count()) return failure;
    std::fprintf(stderr, "sluice: warning: %s (retrying)\n", failure.message().c_str());
    return false;
  }
  leader_failing_since_ms_ = 0;
  if (!*taken) return false;  // another worker leads
  leader_ = std::move(*taken);
  std::fprintf(stderr,
               "sluice: this process now runs the datasets that do not scale out (tables read from other tables, "
               "materialized views, event-time state): leader lease term %lld in %s\n",
               static_cast<long long>(leader_->term()), objects_->display(leader_dir_.string()).c_str());
  return true;
}

arrow::Result<bool> RunLock::leads() {
  if (mode_ == RunLockMode::kExclusive) return true;
  std::lock_guard guard(mutex_);
  if (member_) return leads_on_object_store();
  if (leader_fd_ >= 0) return true;
  const auto path = system_ / "leader.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return io_error("cannot open {}: {}; a scale-out run takes it to decide which process runs the datasets that "
                    "do not scale out (tables read from other tables, materialized views, event-time state): let "
                    "the user running sluice read and write {}",
                    path.string(), std::strerror(errno), system_.string());
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return false;  // another process leads
    return io_error("cannot lock {}: {} (sluice picks the process that runs the datasets that do not scale out "
                    "with flock(2); put the storage on a local file system that supports it)",
                    path.string(), std::strerror(err));
  }
  leader_fd_ = fd;
  std::fprintf(stderr, "sluice: this process now runs the datasets that do not scale out (tables read from other "
                       "tables, materialized views, event-time state)\n");
  return true;
}

}  // namespace sluice::pipeline
