// Live progress of a triggered update, per dataset, for the terminal (cli/progress_display.h):
// which datasets wait, run or are done, the rows each has read so far and the Kafka backlog it
// found at its start (records up to the high-water marks). Header-only: the flows report per
// batch or per file, never per row.
// Thread-safe: the flows' threads write it, the display's thread reads it; mutex_ guards
// datasets_.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::pipeline {

class RunProgress {
 public:
  enum class State { kWaiting, kRunning, kDone, kFailed, kSkipped };

  struct Dataset {
    std::string name;
    State state = State::kWaiting;
    int64_t rows_read = 0;
    // Kafka records between where the flows start and the high-water marks they stop at, summed
    // over the dataset's Kafka flows as each starts; none for other sources (not known ahead).
    std::optional<int64_t> backlog;
    std::chrono::steady_clock::time_point started;   // set when it runs
    std::chrono::steady_clock::time_point finished;  // set when done or failed
  };

  // Listed before the update starts, in the order the display shows them.
  void waiting(const std::string& name) {
    std::lock_guard lock(mutex_);
    slot(name);
  }
  void started(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto& d = slot(name);
    d.state = State::kRunning;
    d.started = std::chrono::steady_clock::now();
  }
  void add_backlog(const std::string& name, int64_t records) {
    {
      std::lock_guard lock(mutex_);
      auto& d = running(name);
      d.backlog = d.backlog.value_or(0) + std::max<int64_t>(0, records);
    }
    if (on_report_) on_report_();
  }
  // Rows taken from a source; negative when rows read in process are dropped to be read again
  // from the files (delta_source_flow.cc).
  void add_read(const std::string& name, int64_t rows) {
    {
      std::lock_guard lock(mutex_);
      auto& d = running(name);
      d.rows_read = std::max<int64_t>(0, d.rows_read + rows);
    }
    if (on_report_) on_report_();
  }

  // Called on the reporting flow's thread after each add_read/add_backlog, outside the lock;
  // set before the update starts (tests draw a frame per report with it: progress_display.h).
  void set_on_report(std::function<void()> on_report) { on_report_ = std::move(on_report); }
  // The final count comes from the dataset's report, whatever the flows reported on the way
  // (a failed one keeps what was seen read).
  void finished(const std::string& name, bool ok, int64_t rows_read) {
    std::lock_guard lock(mutex_);
    auto& d = running(name);
    d.state = ok ? State::kDone : State::kFailed;
    d.rows_read = ok ? rows_read : std::max(d.rows_read, rows_read);
    d.finished = std::chrono::steady_clock::now();
  }

  // Not run: an input failed.
  void skipped(const std::string& name) {
    std::lock_guard lock(mutex_);
    slot(name).state = State::kSkipped;
  }

  std::vector<Dataset> snapshot() const {
    std::lock_guard lock(mutex_);
    return datasets_;
  }

 private:
  Dataset& slot(const std::string& name) {
    auto it = std::find_if(datasets_.begin(), datasets_.end(), [&](const Dataset& d) { return d.name == name; });
    if (it != datasets_.end()) return *it;
    Dataset d;
    d.name = name;
    datasets_.push_back(std::move(d));
    return datasets_.back();
  }
  // A dataset reported before `started` (a pipeline.yaml bronze list) starts now.
  Dataset& running(const std::string& name) {
    auto& d = slot(name);
    if (d.state == State::kWaiting) {
      d.state = State::kRunning;
      d.started = std::chrono::steady_clock::now();
    }
    return d;
  }

  mutable std::mutex mutex_;
  std::vector<Dataset> datasets_;
  std::function<void()> on_report_;  // set before the flows run, read-only after
};

}  // namespace sluice::pipeline
