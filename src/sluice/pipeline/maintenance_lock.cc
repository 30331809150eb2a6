// The maintenance lock of a Delta table (maintenance_lock.h).
#include "sluice/pipeline/maintenance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"

namespace sluice::pipeline {

namespace {

constexpr const char* kMaintenanceLockFile = "_sluice_maintenance.lock";
constexpr const char* kMaintenanceLeaseDir = "_sluice_maintenance/lease";
constexpr const char* kMaintenanceMembersDir = "_sluice_maintenance/members";

nlohmann::json maintenance_record(const std::string& table, MaintenanceLockMode mode, const std::string& command) {
  return nlohmann::json{{"pid", static_cast<int64_t>(::getpid())},
                        {"host", lease::host_name()},
                        {"started_ms", now_millis()},
                        {"command", command},
                        {"table", table},
                        {"mode", mode == MaintenanceLockMode::kExclusive ? "exclusive" : "shared"}};
}

// "sluice forget (pid 12, host h)" from a holder record, or `otherwise` when there is none.
std::string describe_maintenance_holder(const std::string& record_json, const std::string& otherwise) {
  auto j = nlohmann::json::parse(record_json, nullptr, false);
  if (!j.is_object() || !j.contains("command") || !j["command"].is_string()) return otherwise;
  return fmt::format("`sluice {}` (pid {}, host {})", j["command"].get<std::string>(), j.value("pid", int64_t{0}),
                     j.value("host", std::string("?")));
}

// The record an exclusive holder wrote into the lock file, if its process still lives here.
std::string local_exclusive_maintainer(int fd) {
  char buf[4096];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  const std::string text(buf, static_cast<size_t>(n));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("host", std::string()) != lease::host_name()) return "";
  const auto pid = j.value("pid", int64_t{0});
  if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) return "";
  return text;
}

arrow::Status refuse_maintenance(const std::string& table, MaintenanceLockMode mode, const std::string& command,
                     const std::string& holder, const std::string& where) {
  if (mode == MaintenanceLockMode::kExclusive) {
    return arrow::Status::Invalid(fmt::format(
        "table {}: {} is running on it (maintenance lock {}): `sluice {}` is refused while a rewrite or vacuum of "
        "the table runs (its uncommitted files could hold the rows to erase, or be deleted before it commits "
        "them). Nothing was changed: run it again once that command has ended",
        table, holder, where, command));
  }
  return arrow::Status::Invalid(fmt::format(
      "table {}: {} holds its maintenance lock ({}): `sluice {}` is refused while it runs (forget deletes "
      "every file no version names, and this command's new files could hold the rows it erases). Nothing was "
      "changed: run it again once that command has ended",
      table, holder, where, command));
}

}  // namespace

arrow::Result<std::unique_ptr<MaintenanceLock>> MaintenanceLock::acquire(const delta::LogStore& store,
                                                                         const std::string& table,
                                                                         MaintenanceLockMode mode,
                                                                         const std::string& command) {
  std::unique_ptr<MaintenanceLock> lock(new MaintenanceLock());
  const auto record = maintenance_record(table, mode, command);
  if (!store.is_local()) {
    // No table there (a typo): nothing to protect, and no lease objects left under a wrong
    // prefix; the command says what is missing.
    ARROW_ASSIGN_OR_RAISE(auto latest, store.latest_version());
    if (!latest) return lock;
    RunLeaseOptions options;
    options.record_json = record.dump();
    options.name = "maintenance lease of table " + table;
    options.stake = "forget never runs beside a write, rewrite or vacuum of the table";
    const auto lease_dir = store.table_root() / kMaintenanceLeaseDir;
    const auto members_dir = store.table_root() / kMaintenanceMembersDir;
    LeaseHolder holder;
    if (mode == MaintenanceLockMode::kShared) {
      // A member (run_member.h): a heartbeat, then a join generation in the lease's chain; of
      // it and a forget starting at once at most one goes on (in a close race both may be refused).
      // Members never exclude each other.
      ARROW_ASSIGN_OR_RAISE(lock->member_,
                            RunMember::join(store.objects(), lease_dir, members_dir, options, &holder));
      if (lock->member_) return lock;
      return refuse_maintenance(table, mode, command,
                                describe_maintenance_holder(holder.record_json, "`sluice forget`"),
                                store.display(lease_dir));
    }
    options.excluded_by = [objects = store.objects(), members_dir]() -> arrow::Result<std::string> {
      ARROW_ASSIGN_OR_RAISE(auto live, RunMember::live(*objects, members_dir));
      return live.empty() ? std::string() : live.front();
    };
    ARROW_ASSIGN_OR_RAISE(lock->lease_, RunLease::acquire(store.objects(), lease_dir, options, &holder));
    if (!lock->lease_) {
      return refuse_maintenance(table, mode, command,
                    describe_maintenance_holder(holder.record_json, "another sluice maintenance command"),
                    store.display(lease_dir));
    }
    return lock;
  }
  const auto path = store.table_root() / kMaintenanceLockFile;
  std::error_code ec;
  if (!std::filesystem::exists(store.table_root(), ec)) return lock;  // the command reports the missing table
  if (!std::filesystem::is_directory(store.log_dir(), ec)) {
    // No lock file left in a folder that is not a table (a typo, a parent folder).
    return invalid("table {}: {} is not a Delta table (it has no _delta_log/); `sluice {}` refused, nothing changed",
                   table, store.table_root().string(), command);
  }
  lock->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock->fd_ < 0) {
    if (errno == ENOENT) return lock;  // no table folder: the command reports the missing table
    return io_error("table {}: cannot open its maintenance lock {}: {}", table, path.string(), std::strerror(errno));
  }
  if (::flock(lock->fd_, (mode == MaintenanceLockMode::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      return io_error("table {}: cannot lock {}: {} (sluice keeps forget apart from rewrites with flock(2))", table,
                      path.string(), std::strerror(errno));
    }
    const auto recorded = local_exclusive_maintainer(lock->fd_);
    std::string holder;
    if (mode == MaintenanceLockMode::kShared) {
      holder = describe_maintenance_holder(recorded, "`sluice forget`");
    } else {
      holder = recorded.empty() ? "a `sluice sql` DELETE/UPDATE/MERGE, `table optimize` or `table vacuum`"
                                : describe_maintenance_holder(recorded, "another sluice command");
    }
    return refuse_maintenance(table, mode, command, holder, path.string());
  }
  if (mode == MaintenanceLockMode::kExclusive) {
    // Named in the refusals of the others (nobody else writes the file while this holds it).
    const auto text = record.dump() + "\n";
    if (::ftruncate(lock->fd_, 0) != 0 || ::pwrite(lock->fd_, text.data(), text.size(), 0) < 0) {
      return io_error("table {}: cannot write {}: {}", table, path.string(), std::strerror(errno));
    }
  }
  return lock;
}

MaintenanceLock::~MaintenanceLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; a stale record names a process that is gone
  lease_.reset();              // releases the lease (its destructor writes a released generation)
  member_.reset();             // deletes the member's heartbeat
}

}  // namespace sluice::pipeline
