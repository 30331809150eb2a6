// A scale-out worker's heartbeat and its join of the run lease chain (run_member.h).
#include "sluice/pipeline/run_member.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "sluice/common/ids.h"
#include "sluice/common/json_fields.h"
#include "sluice/common/status.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr int kJoinAttempts = 16;
constexpr int64_t kForgetAfterMs = 3'600'000;  // a heartbeat this long past its ttl is deleted

}  // namespace

std::string RunMember::heartbeat_text() const {
  auto j = nlohmann::json::parse(record_json_);
  j["renewed_ms"] = now_millis();
  j["ttl_ms"] = static_cast<int64_t>(ttl_.count());
  return j.dump() + "\n";
}

arrow::Result<std::unique_ptr<RunMember>> RunMember::join(std::shared_ptr<storage::ObjectStore> objects,
                                                          fs::path lease_dir, fs::path members_dir,
                                                          RunLeaseOptions options, LeaseHolder* holder) {
  std::unique_ptr<RunMember> member(new RunMember());
  member->objects_ = std::move(objects);
  member->lease_dir_ = std::move(lease_dir);
  member->ttl_ = RunLease::ttl(options);
  member->record_json_ = std::move(options.record_json);
  member->scale_out_ = options.name == RunLeaseOptions().name;
  member->name_ = options.name;
  member->stake_ = options.stake;
  const std::string name = member->scale_out_ ? "scale-out" : options.name;
  auto& store = *member->objects_;
  // The heartbeat before the join: an exclusive run that reads the chain after the join finds
  // it (and one that read the chain before it loses the race for the generation, below).
  const auto path = members_dir / fmt::format("{}-{}-{}.json", lease::host_name(), ::getpid(), random_uuid().substr(0, 8));
  const auto started = now_millis();
  ARROW_RETURN_NOT_OK(store.put(path.string(), member->heartbeat_text()));
  member->heartbeat_path_ = path.string();  // deleted by the destructor from here on
  member->renewed_ms_ = started;
  for (int attempt = 0; attempt < kJoinAttempts; ++attempt) {
    ARROW_ASSIGN_OR_RAISE(auto gens, lease::generations(store, member->lease_dir_));
    int64_t next = 0;
    int64_t since = -1;
    if (!gens.empty()) {
      const int64_t newest = gens.back();
      const auto newest_path = lease::generation_path(member->lease_dir_, newest);
      ARROW_ASSIGN_OR_RAISE(auto text, lease::read_generation(store, newest_path));
      if (!text) continue;  // superseded and deleted since the listing: list again
      if (lease::holds(*text)) {
        *holder = LeaseHolder{*text, newest};
        return nullptr;
      }
      const auto record = nlohmann::json::parse(*text, nullptr, false);
      since = field_or(record, "scale_out_since", int64_t{-1});
      next = newest + 1;
    }
    if (since < 0) since = next;  // the first worker after an exclusive run (or none) begins a scale-out
    auto join = nlohmann::json::parse(member->record_json_);
    join["renewed_ms"] = now_millis();
    join["ttl_ms"] = static_cast<int64_t>(member->ttl_.count());
    join["released"] = false;
    join["scale_out_since"] = since;
    ARROW_ASSIGN_OR_RAISE(auto put,
                          store.put_if_absent(lease::generation_path(member->lease_dir_, next), join.dump() + "\n"));
    if (put == storage::PutResult::kAlreadyExists) {
      // Another process wrote it first: read what it is, after a pause that spreads the
      // processes joining at once (up to 10 ms times the attempts so far, at random).
      std::this_thread::sleep_for(std::chrono::milliseconds(random_below(10 * (attempt + 1))));
      continue;
    }
    for (int64_t g : gens) (void)store.remove(lease::generation_path(member->lease_dir_, g));  // superseded
    member->since_ = since;
    member->renewer_ = std::thread([raw = member.get()] { raw->renew_loop(); });
    return member;
  }
  return arrow::Status::IOError(fmt::format(
      "cannot join the {} on {}: its chain moved on {} times while this process tried (others starting at the "
      "same moment); start it again",
      name, store.display(member->lease_dir_.string()), kJoinAttempts));
}

arrow::Result<std::vector<std::string>> RunMember::live(storage::ObjectStore& objects, const fs::path& members_dir) {
  ARROW_ASSIGN_OR_RAISE(auto listed, objects.list(members_dir.string()));
  std::vector<std::pair<int64_t, std::string>> found;
  const auto host = lease::host_name();
  for (const auto& object : listed) {
    if (fs::path(object.name).extension() != ".json") continue;
    const auto path = (members_dir / object.name).string();
    // A heartbeat that cannot be read is not taken for gone (a 5xx, a timeout): only one the
    // store says is absent (deleted since the listing: a clean exit) is skipped; otherwise the
    // caller (an exclusive run, forget) is refused rather than run beside a live member.
    ARROW_ASSIGN_OR_RAISE(auto text, lease::read_generation(objects, path));
    if (!text) continue;
    const auto record = nlohmann::json::parse(*text, nullptr, false);
    if (lease::writer_may_live(*text)) {
      found.emplace_back(field_or(record, "started_ms", int64_t{0}), *text);
      continue;
    }
    const auto pid = field_or(record, "pid", int64_t{0});
    const bool gone_from_this_host = record.is_object() && field_or(record, "host", "") == host && pid > 0 &&
                                     pid <= std::numeric_limits<pid_t>::max() &&
                                     ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    const bool forgotten =
        !record.is_object() ||
        now_millis() >= saturating_add(saturating_add(field_or(record, "renewed_ms", int64_t{0}),
                                                      field_or(record, "ttl_ms", int64_t{0})),
                                       kForgetAfterMs);
    // Not the others: a stalled worker that wakes puts its heartbeat back and then checks the
    // chain; deleting it behind that check could hide it from an exclusive run's second look.
    if (gone_from_this_host || forgotten) (void)objects.remove(path);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [started, text] : found) out.push_back(std::move(text));
  return out;
}

arrow::Result<bool> RunMember::chain_is_ours() const {
  for (int attempt = 0; attempt < kJoinAttempts; ++attempt) {
    ARROW_ASSIGN_OR_RAISE(auto gens, lease::generations(*objects_, lease_dir_));
    if (gens.empty()) return true;
    const auto newest_path = lease::generation_path(lease_dir_, gens.back());
    ARROW_ASSIGN_OR_RAISE(auto text, lease::read_generation(*objects_, newest_path));
    if (!text) continue;  // superseded by a join and deleted since the listing: list again
    const auto record = nlohmann::json::parse(*text, nullptr, false);
    return record.is_object() && field_or(record, "scale_out_since", int64_t{-1}) == since_;
  }
  return arrow::Status::IOError(fmt::format(
      "cannot read the run lease chain in {}: its newest generation was deleted {} times between "
      "listing and reading (other workers joining at the same moment)",
      objects_->display(lease_dir_.string()), kJoinAttempts));
}

void RunMember::renew_loop() {
  const auto every = ttl_ / 4;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, every, [this] { return stop_; })) {
    lock.unlock();
    const auto started = now_millis();
    arrow::Status failure = objects_->put(heartbeat_path_, heartbeat_text());
    if (failure.ok()) {
      auto ours = chain_is_ours();
      failure = ours.status();
      if (ours.ok() && !*ours) {
        if (stopping()) return;  // the holder is done (its destructor runs): nothing left to stop
        if (scale_out_) {
          std::fprintf(stderr,
                       "sluice: error: an exclusive sluice run took the storage's run lease in %s after this scale-out "
                       "worker did not renew its heartbeat for longer than its %lld ms ttl (stopped, or cut off from "
                       "the store); this worker ends now so that it never writes beside that run. Committed data is "
                       "safe\n",
                       objects_->display(lease_dir_.string()).c_str(), static_cast<long long>(ttl_.count()));
        } else {
          std::fprintf(stderr,
                       "sluice: error: another process took the %s in %s after this process did not renew its "
                       "heartbeat for longer than its %lld ms ttl (stopped, or cut off from the store); this "
                       "process ends now (%s). What it committed before is safe\n",
                       name_.c_str(), objects_->display(lease_dir_.string()).c_str(),
                       static_cast<long long>(ttl_.count()), stake_.c_str());
        }
        std::_Exit(75);
      }
    }
    if (failure.ok()) {
      renewed_ms_ = started;
    } else if (now_millis() + every.count() >= renewed_ms_ + ttl_.count()) {
      if (stopping()) return;
      std::fprintf(stderr,
                   "sluice: error: cannot renew the heartbeat %s (%s) within its %lld ms ttl (%s); another process "
                   "may take the lease when it expires, so this process ends now. What it committed before is "
                   "safe; start it again when the store is reachable\n",
                   objects_->display(heartbeat_path_).c_str(), scale_out_ ? "a scale-out worker's" : name_.c_str(),
                   static_cast<long long>(ttl_.count()), failure.message().c_str());
      std::_Exit(75);
    }
    lock.lock();
  }
}

bool RunMember::stopping() {
  std::lock_guard lock(mutex_);
  return stop_;
}

RunMember::~RunMember() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (!heartbeat_path_.empty()) (void)objects_->remove(heartbeat_path_);
}

}  // namespace sluice::pipeline
