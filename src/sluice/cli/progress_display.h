// Live progress of a triggered `sluice run` on a terminal: one line per dataset (rows read of
// the Kafka backlog known at its start, rate, ETA) redrawn in place on stderr a few times a
// second, then a summary table of what each dataset wrote and where the rest went.
#pragma once

#include <arrow/result.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/pipeline/dataset_report.h"
#include "sluice/pipeline/run_progress.h"

namespace sluice::cli {

// `--progress=never|auto|always`; auto: when stderr is a terminal (not TERM=dumb).
enum class ProgressMode { kNever, kAuto, kAlways };
arrow::Result<ProgressMode> parse_progress_mode(const std::string& text);
// Whether a run shows progress: refuses `always` for a continuous run (it has no end to count
// towards; it prints a line per dataset and update instead).
arrow::Result<bool> shows_progress(ProgressMode mode, bool continuous, bool stderr_is_terminal);
// SLUICE_TEST_PROGRESS_FRAMES: unset or empty: false; "1": true (a frame after every progress
// report, for tests); anything else is refused.
arrow::Result<bool> frame_per_report(const char* value);

// Redraws `progress` on `fd` every 250 ms from its own thread until stop(). While it runs, `fd`
// itself is a pipe the display reads: whatever else is written to it (every `sluice: warning`
// of the flows, the server, librdkafka) is printed above the frame, which is then drawn again
// below it, so no warning is drawn over. stop() puts the terminal back on `fd`.
// Touched by the caller's thread (start, stop) and its own (the loop): mutex_ guards stopping_;
// draw_mutex_ guards samples_, drawn_, pending_ and every write to the terminal.
class ProgressDisplay {
 public:
  ProgressDisplay(const pipeline::RunProgress& progress, int fd, std::string pipeline);
  ~ProgressDisplay();
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void start();
  // Ends the redrawing with a last frame: the state the update ended in (every dataset's rows
  // read and time, or where it failed) stays on screen above the summary or the error. What
  // was written to `fd` meanwhile is on the terminal above it, the last line included.
  void stop();

  // Draws a frame now, from the caller's thread (nothing once stopped). For tests: with
  // SLUICE_TEST_PROGRESS_FRAMES=1 the run calls it after every progress report, so a frame of
  // each in-progress state reaches the terminal whatever the timing.
  void redraw();

  // One frame's lines at `now`, `width` columns at most each (tests call it directly).
  std::vector<std::string> lines(std::chrono::steady_clock::time_point now, int width);

 private:
  void loop();
  void draw(const std::vector<std::string>& lines);  // replaces the lines drawn before
  // Reads what others wrote to `fd` (false at its end); prints its whole lines, or all of it
  // when `all`, above the frame (draw_mutex_ held by the caller).
  bool take_written(bool all);
  int terminal_width() const;

  const pipeline::RunProgress& progress_;
  const int fd_;
  int terminal_ = -1;  // the terminal (a copy of `fd` while the display captures `fd`)
  int captured_ = -1;  // the read end of the pipe on `fd`; -1: nothing captured
  const std::string pipeline_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Rows read per dataset over the last seconds, for the rate.
  struct Sample {
    std::chrono::steady_clock::time_point at;
    int64_t rows;
  };
  std::mutex draw_mutex_;
  std::map<std::string, std::vector<Sample>> samples_;
  size_t drawn_ = 0;     // lines on screen from the last frame
  bool finished_ = false;  // the last frame is drawn: redraw() draws no more
  std::string pending_;  // written to `fd`, not yet a whole line
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// The end-of-update table on stderr: per dataset its kind and rows read, written, dropped,
// quarantined, dead-lettered, late and duplicate; numbers in plain digits.
std::string summary_table(const std::string& pipeline, const std::vector<pipeline::DatasetReport>& reports,
                          std::chrono::steady_clock::duration took);

// "12,345"
std::string group_thousands(int64_t n);

}  // namespace sluice::cli
