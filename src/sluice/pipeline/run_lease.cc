// The run lease on an object store (run_lease.h).
#include "sluice/pipeline/run_lease.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "sluice/common/ids.h"
#include "sluice/common/json_fields.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

namespace lease {

std::string host_name() {
  if (const char* env = std::getenv("SLUICE_HOST_NAME"); env && *env) return env;
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

arrow::Result<std::vector<int64_t>> generations(const storage::ObjectStore& objects, const fs::path& dir) {
  ARROW_ASSIGN_OR_RAISE(auto listed, objects.list(dir.string()));
  std::vector<int64_t> out;
  for (const auto& object : listed) {
    const fs::path name(object.name);
    if (name.extension() != ".json") continue;
    // Not a generation number (another tool's file): not ours, skipped.
    const auto g = parse_int64(name.stem().string(), "lease generation");
    if (g.ok() && *g >= 0) out.push_back(*g);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string generation_path(const fs::path& dir, int64_t generation) {
  return (dir / fmt::format("{:020}.json", generation)).string();
}

bool writer_may_live(const std::string& record_json) {
  const auto record = nlohmann::json::parse(record_json, nullptr, false);
  if (!record.is_object()) return false;
  // A field of another type ({"renewed_ms": "soon"}, another tool's file) reads as absent:
  // json::value would throw past every handler.
  const int64_t renewed = field_or(record, "renewed_ms", int64_t{0});
  const int64_t ttl = field_or(record, "ttl_ms", int64_t{0});
  if (now_millis() >= saturating_add(renewed, ttl)) return false;
  if (field_or(record, "host", "") == host_name()) {
    const auto pid = field_or(record, "pid", int64_t{0});
    if (pid > 0 && pid <= std::numeric_limits<pid_t>::max() && ::kill(static_cast<pid_t>(pid), 0) != 0 &&
        errno == ESRCH) {
      return false;  // killed: no need to wait out its ttl
    }
  }
  return true;
}

arrow::Result<std::optional<std::string>> read_generation(const storage::ObjectStore& objects,
                                                          const std::string& path) {
  auto text = objects.read(path);
  if (text.ok()) return std::optional<std::string>(std::move(*text));
  auto info = objects.head(path);
  if (info.ok() && !info->has_value()) return std::optional<std::string>();
  return arrow::Status::IOError(fmt::format(
      "cannot read the lease generation {}: {}; check that this process may read the pipeline's "
      "storage and that the store is reachable, then start it again",
      objects.display(path), text.status().message()));
}

bool holds(const std::string& generation_json) {
  const auto record = nlohmann::json::parse(generation_json, nullptr, false);
  if (!record.is_object() || field_or(record, "released", false) || record.contains("scale_out_since")) return false;
  return writer_may_live(generation_json);
}

}  // namespace lease

std::chrono::milliseconds RunLease::ttl(const RunLeaseOptions& options) {
  if (const char* env = std::getenv("SLUICE_RUN_LEASE_TTL_MS")) {
    const auto ms = parse_int64(env, "SLUICE_RUN_LEASE_TTL_MS");
    if (ms.ok() && *ms >= 100) return std::chrono::milliseconds(*ms);
  }
  return options.ttl;
}

std::string RunLease::object_path(int64_t generation) const { return lease::generation_path(dir_, generation); }

std::string RunLease::generation_text(bool released) const {
  auto j = nlohmann::json::parse(record_json_);
  j["renewed_ms"] = now_millis();
  j["ttl_ms"] = static_cast<int64_t>(ttl_.count());
  j["released"] = released;
  return j.dump() + "\n";
}

arrow::Result<std::unique_ptr<RunLease>> RunLease::acquire(std::shared_ptr<storage::ObjectStore> objects,
                                                           fs::path dir, RunLeaseOptions options,
                                                           LeaseHolder* holder) {
  std::unique_ptr<RunLease> lease(new RunLease());
  lease->objects_ = std::move(objects);
  lease->dir_ = std::move(dir);
  lease->ttl_ = ttl(options);
  lease->record_json_ = std::move(options.record_json);
  lease->name_ = std::move(options.name);
  lease->stake_ = std::move(options.stake);
  auto& store = *lease->objects_;
  ARROW_ASSIGN_OR_RAISE(auto gens, lease::generations(store, lease->dir_));
  int64_t next = 0;
  if (!gens.empty()) {
    const int64_t newest = gens.back();
    // Removed between list and read: its writer released and cleaned up; take the next one.
    // A read that fails otherwise is an error: the generation may hold the lease.
    ARROW_ASSIGN_OR_RAISE(auto text, lease::read_generation(store, lease->object_path(newest)));
    if (text && lease::holds(*text)) {
      *holder = LeaseHolder{*text, newest};
      return nullptr;
    }
    next = newest + 1;
  }
  if (options.excluded_by) {
    ARROW_ASSIGN_OR_RAISE(auto other, options.excluded_by());
    if (!other.empty()) {
      *holder = LeaseHolder{std::move(other), -1};
      return nullptr;
    }
  }
  const auto written_at = now_millis();
  ARROW_ASSIGN_OR_RAISE(auto put, store.put_if_absent(lease->object_path(next), lease->generation_text(false)));
  if (put == storage::PutResult::kAlreadyExists) {
    // Another process took it between our listing and our write.
    auto text = store.read(lease->object_path(next));
    *holder = LeaseHolder{text.ok() ? *text : std::string("{}"), next};
    return nullptr;
  }
  lease->generation_ = next;
  lease->term_ = next;
  lease->renewed_ms_ = written_at;
  if (options.excluded_by) {
    // Asked again now that this generation is there: a process that checked the chain before
    // it (and so may be running) wrote its record before that check.
    auto other = options.excluded_by();
    if (!other.ok() || !other->empty()) {  // released by the destructor
      ARROW_RETURN_NOT_OK(other.status());
      *holder = LeaseHolder{std::move(*other), -1};
      return nullptr;
    }
  }
  for (int64_t g : gens) (void)store.remove(lease->object_path(g));  // superseded
  lease->renewer_ = std::thread([raw = lease.get()] { raw->renew_loop(); });
  return lease;
}

void RunLease::renew_loop() {
  const auto every = ttl_ / 4;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, every, [this] { return stop_; })) {
    lock.unlock();
    const auto started = now_millis();
    auto put = objects_->put_if_absent(object_path(generation_ + 1), generation_text(false));
    bool taken = put.ok() && *put == storage::PutResult::kAlreadyExists;
    arrow::Status failure = put.status();
    if (put.ok() && *put == storage::PutResult::kWritten) {
      ++generation_;  // ours, whatever the listing below finds
      // A taker may have moved the chain on and deleted this name since: only a listing with
      // nothing newer proves the lease is still ours.
      auto gens = lease::generations(*objects_, dir_);
      failure = gens.status();
      taken = gens.ok() && !gens->empty() && gens->back() > generation_;
      if (gens.ok() && !taken) {
        (void)objects_->remove(object_path(generation_ - 1));
        renewed_ms_ = started;
      }
    }
    if (taken) {
      std::fprintf(stderr,
                   "sluice: error: another sluice run took over the %s in %s (this run did not renew it for "
                   "longer than its %lld ms ttl: stopped, or cut off from the store); this run ends now so that "
                   "%s. Committed data is safe\n",
                   name_.c_str(), objects_->display(dir_.string()).c_str(), static_cast<long long>(ttl_.count()),
                   stake_.c_str());
      std::_Exit(75);
    }
    // Given up when the next attempt would come after the lease expired: ended before another
    // process may take it, not at the same moment.
    if (!failure.ok() && now_millis() + every.count() >= renewed_ms_ + ttl_.count()) {
      std::fprintf(stderr,
                   "sluice: error: cannot renew the %s in %s within its %lld ms ttl (%s); another run may "
                   "take it when it expires, so this run ends now so that %s. Committed data is safe; start it "
                   "again when the store is reachable\n",
                   name_.c_str(), objects_->display(dir_.string()).c_str(), static_cast<long long>(ttl_.count()),
                   failure.message().c_str(), stake_.c_str());
      std::_Exit(75);
    }
    lock.lock();
  }
}

RunLease::~RunLease() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (generation_ < 0) return;  // refused: never held
  // Released: the next run starts at once instead of waiting out the ttl.
  auto put = objects_->put_if_absent(object_path(generation_ + 1), generation_text(true));
  if (put.ok() && *put == storage::PutResult::kWritten) (void)objects_->remove(object_path(generation_));
}

}  // namespace sluice::pipeline
