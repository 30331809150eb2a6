// The DAG scheduler of an update (scheduler.h).
#include "sluice/pipeline/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "sluice/common/status.h"

namespace sluice::pipeline {

namespace {

// Sleeps up to `how_long`, less if the stop flag is set or `done` (checked under `mutex`)
// becomes true meanwhile.
void wait_or_stop(const SchedulerOptions& options, std::mutex& mutex, std::condition_variable& changed,
                  std::chrono::milliseconds how_long, const std::function<bool()>& done = {}) {
  const auto until = std::chrono::steady_clock::now() + how_long;
  std::unique_lock lock(mutex);
  while (!options.stopping() && !(done && done()) && std::chrono::steady_clock::now() < until) {
    // The stop flag is set by a signal handler, which cannot notify: wake up now and then.
    changed.wait_for(lock, std::chrono::milliseconds(50));
  }
}

}  // namespace

arrow::Result<std::vector<DatasetReport>> run_triggered(const std::vector<ScheduledDataset>& datasets,
                                                        DatasetRunner& runner, const SchedulerOptions& options) {
  enum class State { kPending, kRunning, kDone, kFailed, kSkipped };
  std::vector<std::string> stored;
  std::map<std::string, std::set<std::string>> needs;
  std::set<std::string> with_upstream;  // start once their inputs have started
  for (const auto& d : datasets) {
    stored.push_back(d.name);
    needs[d.name] = d.upstream;
    if (d.starts_with_upstream) with_upstream.insert(d.name);
  }

  std::mutex mutex;  // guards state, reports, failures, running
  std::condition_variable changed;
  std::map<std::string, State> state;
  for (const auto& name : stored) state[name] = State::kPending;
  std::map<std::string, DatasetReport> reports;
  std::vector<std::pair<std::string, arrow::Status>> failures;  // in the order they happened
  int running = 0;

  // Under the lock: the next dataset whose inputs are all done; skips (transitively) those
  // whose inputs failed. A dataset that starts with its inputs comes after the others that are
  // ready, so it never holds a thread an independent branch could use.
  auto next_ready = [&]() -> std::optional<std::string> {
    std::optional<std::string> with_its_inputs;
    for (bool skipped_one = true; skipped_one;) {  // a skip may make its downstream skippable
      skipped_one = false;
      for (const auto& name : stored) {
        if (state[name] != State::kPending) continue;
        std::string failed_input;
        bool waiting = false;
        for (const auto& up : needs[name]) {
          auto it = state.find(up);
          if (it == state.end()) continue;  // not stored here: nothing to wait for
          if (it->second == State::kFailed || it->second == State::kSkipped) failed_input = up;
          if (it->second == State::kPending) waiting = true;
          if (it->second == State::kRunning && !with_upstream.count(name)) waiting = true;
        }
        if (!failed_input.empty()) {
          state[name] = State::kSkipped;
          skipped_one = true;
          runner.skipped(name, failed_input);
          failures.emplace_back(name, arrow::Status::Invalid(
                                          fmt::format("skipped because its input '{}' failed", failed_input)));
          continue;
        }
        if (waiting) continue;
        if (!with_upstream.count(name)) return name;
        if (!with_its_inputs) with_its_inputs = name;
      }
    }
    return with_its_inputs;
  };
  auto worker = [&] {
    std::unique_lock lock(mutex);
    while (true) {
      std::optional<std::string> name;
      if (!options.stopping()) name = next_ready();  // stopping: the rest waits for the next update
      if (!name) {
        bool pending = false;
        for (const auto& [n, st] : state) pending |= st == State::kPending;
        if (running == 0 || !pending) {  // nothing left, or nothing can become ready
          changed.notify_all();
          return;
        }
        changed.wait(lock);
        continue;
      }
      state[*name] = State::kRunning;
      ++running;
      lock.unlock();
      DatasetReport report;
      auto st = runner.run(*name, report);
      lock.lock();
      --running;
      state[*name] = st.ok() ? State::kDone : State::kFailed;
      if (st.ok()) {
        reports[*name] = std::move(report);
      } else {
        failures.emplace_back(*name, with_context(st, fmt::format("pipeline '{}', table '{}'", options.pipeline, *name)));
      }
      changed.notify_all();
    }
  };
  // One per core, and one more for each dataset that starts with its inputs (it mostly waits
  // for their rows, so it would otherwise keep an independent branch from a core).
  const size_t cores = options.threads > 0 ? options.threads
                                           : std::thread::hardware_concurrency() + with_upstream.size();
  const size_t threads = std::max<size_t>(1, std::min<size_t>(cores, stored.size()));
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

  if (!failures.empty()) {
    // The first real failure decides the code (and whether a retry may help); every
    // failure and skip is listed.
    arrow::Status first = failures.front().second;
    for (const auto& [n, st] : failures) {
      if (st.message().find("skipped because") == std::string::npos) {
        first = st;
        break;
      }
    }
    if (failures.size() == 1) return first;
    std::string all;
    for (const auto& [n, st] : failures) all += fmt::format("\n  {}: {}", n, st.message());
    return with_context(first, fmt::format("{} dataset(s) failed or were skipped:{}\nfirst failure",
                                           failures.size(), all));
  }
  std::vector<DatasetReport> out;
  for (const auto& name : stored) {
    if (reports.count(name)) out.push_back(std::move(reports[name]));
  }
  return out;
}

arrow::Status run_continuous(const std::vector<ScheduledDataset>& datasets, DatasetRunner& runner,
                             const SchedulerOptions& options, const ContinuousOptions& continuous) {
  std::mutex mutex;  // guards generation, fatal
  std::condition_variable changed;
  std::map<std::string, int64_t> generation;  // commits made in this process, per dataset
  arrow::Status fatal;
  auto stopping = [&] {
    std::lock_guard lock(mutex);
    return options.stopping() || !fatal.ok();
  };
  const auto interval = continuous.trigger_interval;

  auto loop = [&](const ScheduledDataset& d) {
    const auto& name = d.name;
    const auto& needs = d.upstream;
    const bool reads_kafka = d.reads_kafka;
    std::map<std::string, int64_t> seen_generation;
    std::map<std::string, int64_t> seen_version;  // upstream table versions at the last run
    bool first = true;
    const bool everywhere = d.runs_in_every_process;
    while (!stopping()) {
      if (!everywhere && continuous.leads) {
        auto leads = continuous.leads();
        if (!leads.ok()) {
          std::lock_guard lock(mutex);
          if (fatal.ok()) {
            fatal = with_context(leads.status(), fmt::format("pipeline '{}', table '{}'", options.pipeline, name));
          }
          changed.notify_all();
          return;
        }
        if (!*leads) {
          // A scale-out run: another process leads and runs this dataset; this one takes over
          // when that one ends.
          wait_or_stop(options, mutex, changed, interval);
          continue;
        }
      }
      if (!first && !needs.empty() && !reads_kafka) {
        // Wait for an upstream commit here, or poll the upstream logs (other processes).
        wait_or_stop(options, mutex, changed, interval, [&] {
          if (!fatal.ok()) return true;
          for (const auto& up : needs) {
            if (generation[up] != seen_generation[up]) return true;
          }
          return false;
        });
        if (stopping()) break;
      }
      bool upstream_moved = first || needs.empty();
      {
        std::lock_guard lock(mutex);
        for (const auto& up : needs) {
          if (generation[up] != seen_generation[up]) upstream_moved = true;
          seen_generation[up] = generation[up];
        }
      }
      bool upstream_missing = false;  // not created yet: its own first run is under way
      for (const auto& up : needs) {
        const int64_t version = runner.latest_version(up);
        if (seen_version[up] != version || first) upstream_moved = true;
        upstream_missing |= version < 0;
        seen_version[up] = version;
      }
      first = false;
      // A Kafka flow with a stored upstream (a stream-static join) runs for its topic's new
      // records whether or not the upstream moved.
      if (upstream_missing && reads_kafka) wait_or_stop(options, mutex, changed, interval);
      if ((!upstream_moved && !reads_kafka) || upstream_missing) continue;
      DatasetReport report;
      auto st = runner.run(name, report);
      if (st.ok()) {
        if (report.rows_written > 0 || report.rows_read > 0) {
          if (continuous.on_report) continuous.on_report(report);
          std::lock_guard lock(mutex);
          ++generation[name];
        }
        changed.notify_all();
        // Kafka: keep going while records flow; otherwise wait for the trigger interval.
        if (reads_kafka && report.rows_read == 0) wait_or_stop(options, mutex, changed, interval);
        continue;
      }
      if (is_retryable(st)) {
        const auto message = in_context(fmt::format("pipeline '{}', table '{}'", options.pipeline, name), st.message());
        std::fprintf(stderr, "sluice: warning: %s (retrying)\n", message.c_str());
        wait_or_stop(options, mutex, changed, interval);
        continue;
      }
      std::lock_guard lock(mutex);
      if (fatal.ok()) fatal = with_context(st, fmt::format("pipeline '{}', table '{}'", options.pipeline, name));
      changed.notify_all();
      return;
    }
  };
  std::vector<std::thread> threads;
  for (const auto& d : datasets) threads.emplace_back(loop, std::cref(d));
  // tick() (the event log is appended) every few seconds while the flows run.
  while (!stopping()) {
    wait_or_stop(options, mutex, changed, std::max(interval, options.tick_interval));
    runner.tick();
  }
  {
    std::lock_guard lock(mutex);
    changed.notify_all();
  }
  for (auto& t : threads) t.join();
  return fatal;
}

}  // namespace sluice::pipeline
