// Crash points for tests (see failpoint.h).
#include "sluice/common/failpoint.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace sluice {

namespace {

// The in-process actions (FailPointAction). Guarded by actions_mutex; `action_count` lets a
// point with none registered (every point outside unit tests) skip the mutex.
std::mutex actions_mutex;
std::atomic<int> action_count{0};

std::map<std::string, std::shared_ptr<std::function<void()>>>& actions() {
  static std::map<std::string, std::shared_ptr<std::function<void()>>> registered;
  return registered;
}

void run_action(const char* name) {
  if (action_count.load(std::memory_order_acquire) == 0) return;
  std::shared_ptr<std::function<void()>> action;
  {
    std::lock_guard<std::mutex> lock(actions_mutex);
    auto it = actions().find(name);
    if (it == actions().end()) return;
    action = it->second;
  }
  (*action)();  // outside the mutex: the action may reach other fail points
}

}  // namespace

FailPointAction::FailPointAction(std::string name, std::function<void()> action) : name_(std::move(name)) {
  std::lock_guard<std::mutex> lock(actions_mutex);
  actions()[name_] = std::make_shared<std::function<void()>>(std::move(action));
  action_count.store(static_cast<int>(actions().size()), std::memory_order_release);
}

FailPointAction::~FailPointAction() {
  std::lock_guard<std::mutex> lock(actions_mutex);
  actions().erase(name_);
  action_count.store(static_cast<int>(actions().size()), std::memory_order_release);
}

bool fail_point_armed(const char* name) {
  static const char* armed = std::getenv("SLUICE_FAILPOINT");
  return armed != nullptr && std::strcmp(armed, name) == 0;
}

void fail_point(const char* name) {
  run_action(name);
  static const char* paused = std::getenv("SLUICE_FAILPOINT_PAUSE");
  if (paused != nullptr && std::strcmp(paused, name) == 0) {
    // The test acts (writes an object, ...) while the process waits, then sends a line.
    std::fprintf(stderr, "sluice: fail point '%s' paused: send a line on stdin to continue\n", name);
    std::fflush(stderr);
    char c = 0;
    while (::read(0, &c, 1) == 1 && c != '\n') {
    }
  }
  if (fail_point_armed(name)) {
    std::fprintf(stderr, "sluice: fail point '%s' reached: exiting\n", name);
    _exit(137);
  }
}

}  // namespace sluice
