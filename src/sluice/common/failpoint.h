// Named crash points for crash-consistency tests: when the environment variable
// SLUICE_FAILPOINT names a point, the process dies there at once (as SIGKILL would leave it),
// so tests can stop sluice between two commits deterministically instead of by timing.
// SLUICE_FAILPOINT_PAUSE naming a point makes the process stop there until a line (or EOF)
// arrives on stdin, after saying so on stderr: a test acts at that point, then lets it go on.
// A unit test in the same process registers a FailPointAction instead: its function runs where
// the point is reached (another writer's commit injected between two steps), nothing exits.
#pragma once

#include <functional>
#include <string>

namespace sluice {

// Exits the process with status 137 if SLUICE_FAILPOINT equals `name` (after pausing if
// SLUICE_FAILPOINT_PAUSE does); a no-op otherwise.
void fail_point(const char* name);

// Whether SLUICE_FAILPOINT names `name`.
bool fail_point_armed(const char* name);

// As fail_point(name), running `before_exit` first when armed (e.g. a flush, so a test sees the
// state the point is about); never runs it otherwise.
template <typename BeforeExit>
void fail_point(const char* name, BeforeExit&& before_exit) {
  if (fail_point_armed(name)) before_exit();
  fail_point(name);
}

// For unit tests: while this object lives, every fail_point(name) reached (on any thread) runs
// `action` first (before the environment's pause or exit, which tests do not set). One action
// per name at a time; the action may itself reach other fail points, not its own.
class FailPointAction {
 public:
  FailPointAction(std::string name, std::function<void()> action);
  ~FailPointAction();
  FailPointAction(const FailPointAction&) = delete;
  FailPointAction& operator=(const FailPointAction&) = delete;

 private:
  std::string name_;
};

}  // namespace sluice
