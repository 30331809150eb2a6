// The terminal's view of a triggered run (progress_display.h).
#include "sluice/cli/progress_display.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace sluice::cli {

namespace {

using Clock = std::chrono::steady_clock;
using pipeline::RunProgress;

constexpr auto kRedrawEvery = std::chrono::milliseconds(250);
constexpr auto kRateWindow = std::chrono::seconds(3);  // the rate is taken over this span
constexpr int kBarWidth = 20;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string duration_text(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto s = static_cast<int64_t>(seconds);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

// Cut to `width` columns (the text is ASCII), so no line wraps and the redraw's cursor moves
// land where the frame began.
std::string fit(std::string line, int width) {
  if (width > 0 && static_cast<int>(line.size()) > width) line.resize(static_cast<size_t>(width));
  return line;
}

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a closed terminal: the run goes on without its display
    done += static_cast<size_t>(n);
  }
}

}  // namespace

arrow::Result<ProgressMode> parse_progress_mode(const std::string& text) {
  if (text == "never") return ProgressMode::kNever;
  if (text == "auto") return ProgressMode::kAuto;
  if (text == "always") return ProgressMode::kAlways;
  return arrow::Status::Invalid(
      fmt::format("--progress={}: say never, auto (on when stderr is a terminal) or always", text));
}

arrow::Result<bool> shows_progress(ProgressMode mode, bool continuous, bool stderr_is_terminal) {
  switch (mode) {
    case ProgressMode::kNever:
      return false;
    case ProgressMode::kAlways:
      if (continuous) {
        return arrow::Status::Invalid(
            "--progress=always: live progress is for triggered runs (--once or mode: triggered), which have a "
            "backlog to finish; a continuous run prints a line per dataset and update instead");
      }
      return true;
    case ProgressMode::kAuto: {
      if (continuous || !stderr_is_terminal) return false;
      const char* term = std::getenv("TERM");
      return term == nullptr || std::string(term) != "dumb";  // dumb: no cursor movement
    }
  }
  return false;
}

arrow::Result<bool> frame_per_report(const char* value) {
  if (value == nullptr || *value == '\0') return false;
  if (std::string(value) == "1") return true;
  return arrow::Status::Invalid(fmt::format(
      "SLUICE_TEST_PROGRESS_FRAMES={}: set it to 1 (a frame after every progress report) or unset it", value));
}

std::string group_thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

ProgressDisplay::ProgressDisplay(const RunProgress& progress, int fd, std::string pipeline)
    : progress_(progress), fd_(fd), terminal_(fd), pipeline_(std::move(pipeline)) {}

ProgressDisplay::~ProgressDisplay() { stop(); }

void ProgressDisplay::start() {
  // `fd` becomes a pipe's write end, the terminal moves to a copy: the warnings others write to
  // `fd` come to the loop, which prints them above the frame. Without a pipe, nothing is
  // captured (warnings may then be drawn over, as before).
  int ends[2];
  const int terminal = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
  if (terminal >= 0 && ::pipe2(ends, O_CLOEXEC) == 0) {
    ::fcntl(ends[0], F_SETFL, O_NONBLOCK);
    if (::dup2(ends[1], fd_) >= 0) {
      terminal_ = terminal;
      captured_ = ends[0];
    } else {
      ::close(ends[0]);
      ::close(terminal);
    }
    ::close(ends[1]);  // `fd` is now the pipe's only write end: its end is `fd` put back
  } else if (terminal >= 0) {
    ::close(terminal);
  }
  thread_ = std::thread([this] { loop(); });
}

void ProgressDisplay::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (captured_ >= 0) ::dup2(terminal_, fd_);  // the terminal is `fd` again; the pipe ends
  wake_.notify_all();
  if (!thread_.joinable()) return;  // never started
  thread_.join();
  std::lock_guard draw_lock(draw_mutex_);
  if (captured_ >= 0) {
    take_written(/*all=*/true);  // what came in after the loop's last read
    ::close(captured_);
    ::close(terminal_);
    captured_ = -1;
    terminal_ = fd_;
  }
  draw(lines(Clock::now(), terminal_width()));
  finished_ = true;
}

void ProgressDisplay::redraw() {
  std::lock_guard draw_lock(draw_mutex_);
  if (!finished_) draw(lines(Clock::now(), terminal_width()));
}

void ProgressDisplay::loop() {
  auto next_frame = Clock::now();
  bool open = captured_ >= 0;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      if (!open) wake_.wait_until(lock, next_frame, [this] { return stopping_; });
      if (stopping_) return;
    }
    if (open) {
      // Up to the next frame, wake for what others write to `fd` (and for its end at stop()).
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_frame - Clock::now());
      pollfd p{captured_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, wait.count()))) > 0) {
        std::lock_guard draw_lock(draw_mutex_);
        open = take_written(/*all=*/false);
      }
    }
    if (Clock::now() >= next_frame) {
      std::lock_guard draw_lock(draw_mutex_);
      draw(lines(Clock::now(), terminal_width()));
      next_frame = Clock::now() + kRedrawEvery;
    }
  }
}

bool ProgressDisplay::take_written(bool all) {
  bool open = true;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(captured_, buffer, sizeof buffer);
    if (n > 0) {
      pending_.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    open = n < 0 && errno == EAGAIN;  // 0: every write end closed; another error: stop reading
    break;
  }
  const size_t end = all ? pending_.size() : pending_.rfind('\n') == std::string::npos ? 0 : pending_.rfind('\n') + 1;
  if (end == 0) return open;
  // The frame goes, the text takes its place, and the next frame is drawn below it.
  std::string out;
  if (drawn_ > 0) out += fmt::format("\x1b[{}F\x1b[J", drawn_);
  out += pending_.substr(0, end);
  if (out.back() != '\n') out += '\n';
  pending_.erase(0, end);
  drawn_ = 0;
  write_all(terminal_, out);
  if (!all) draw(lines(Clock::now(), terminal_width()));
  return open;
}

int ProgressDisplay::terminal_width() const {
  winsize size{};
  if (::ioctl(terminal_, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col - 1;
  return 79;
}

void ProgressDisplay::draw(const std::vector<std::string>& frame) {
  // Up to the first line drawn before, then every line cleared and written again; lines the
  // last frame had beyond this one are cleared. One write, so the terminal never shows half.
  std::string out;
  if (drawn_ > 0) out += fmt::format("\x1b[{}F", drawn_);
  for (const auto& line : frame) out += "\x1b[2K" + line + "\n";
  for (size_t i = frame.size(); i < drawn_; ++i) out += "\x1b[2K\n";
  if (drawn_ > frame.size()) out += fmt::format("\x1b[{}F", drawn_ - frame.size());
  drawn_ = frame.size();
  write_all(terminal_, out);
}

std::vector<std::string> ProgressDisplay::lines(Clock::time_point now, int width) {
  const auto datasets = progress_.snapshot();
  std::vector<std::string> out;
  size_t name_width = 0;
  for (const auto& d : datasets) name_width = std::max(name_width, d.name.size());
  int done = 0;
  for (const auto& d : datasets) done += d.state != RunProgress::State::kWaiting && d.state != RunProgress::State::kRunning;
  out.push_back(fit(fmt::format("sluice: updating '{}': {} of {} datasets done, {}", pipeline_, done, datasets.size(),
                                duration_text(seconds_between(started_, now))),
                    width));
  for (const auto& d : datasets) {
    std::string line = fmt::format("  {:<{}}  ", d.name, name_width);
    switch (d.state) {
      case RunProgress::State::kWaiting:
        line += "waiting";
        break;
      case RunProgress::State::kSkipped:
        line += "skipped (an input failed)";
        break;
      case RunProgress::State::kFailed:
        line += fmt::format("FAILED after {} rows read", group_thousands(d.rows_read));
        break;
      case RunProgress::State::kDone: {
        const double took = seconds_between(d.started, d.finished);
        line += fmt::format("done: {} rows read in {}", group_thousands(d.rows_read), duration_text(took));
        break;
      }
      case RunProgress::State::kRunning: {
        // The rate over the last few seconds (since the start before that).
        auto& samples = samples_[d.name];
        samples.push_back({now, d.rows_read});
        while (samples.size() > 2 && now - samples[1].at >= kRateWindow) samples.erase(samples.begin());
        Sample oldest = samples.front();
        if (now - oldest.at < std::chrono::seconds(1)) oldest = {d.started, 0};  // too short: since the start
        const double span = seconds_between(oldest.at, now);
        const double rate = span > 0.2 ? static_cast<double>(d.rows_read - oldest.rows) / span : 0.0;
        if (d.backlog && *d.backlog > 0) {
          const int64_t total = *d.backlog;
          const double fraction = std::min(1.0, static_cast<double>(d.rows_read) / static_cast<double>(total));
          const int filled = static_cast<int>(fraction * kBarWidth);
          line += fmt::format("[{}{}] {:3}%  {} of {} rows", std::string(static_cast<size_t>(filled), '#'),
                              std::string(static_cast<size_t>(kBarWidth - filled), '-'),
                              static_cast<int>(fraction * 100), group_thousands(d.rows_read), group_thousands(total));
        } else {
          line += fmt::format("{} rows read", group_thousands(d.rows_read));
        }
        if (d.backlog && d.rows_read >= *d.backlog) {
          line += "  read; writing and committing";  // the operators and the writer finish
          break;
        }
        if (rate > 0) line += fmt::format("  {} rows/s", group_thousands(static_cast<int64_t>(rate)));
        if (d.backlog && rate > 0) {
          line += "  ETA " + duration_text(static_cast<double>(*d.backlog - d.rows_read) / rate);
        }
        break;
      }
    }
    out.push_back(fit(std::move(line), width));
  }
  return out;
}

std::string summary_table(const std::string& pipeline, const std::vector<pipeline::DatasetReport>& reports,
                          std::chrono::steady_clock::duration took) {
  const std::vector<std::string> header = {"dataset", "kind",        "read",          "written",
                                           "dropped", "quarantined", "dead-lettered", "late",
                                           "duplicate"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : reports) {
    rows.push_back({r.dataset, r.kind, std::to_string(r.rows_read), std::to_string(r.rows_written),
                    std::to_string(r.rows_dropped), std::to_string(r.rows_quarantined),
                    std::to_string(r.rows_dead_lettered), std::to_string(r.rows_late),
                    std::to_string(r.rows_duplicate)});
  }
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = header[c].size();
    for (const auto& row : rows) widths[c] = std::max(widths[c], row[c].size());
  }
  auto format_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += c < 2 ? fmt::format("  {:<{}}", row[c], widths[c]) : fmt::format("  {:>{}}", row[c], widths[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + "\n";
  };
  std::string out = fmt::format("sluice: update of '{}' finished in {}\n", pipeline,
                                duration_text(std::chrono::duration<double>(took).count()));
  out += format_row(header);
  for (const auto& row : rows) out += format_row(row);
  return out;
}

}  // namespace sluice::cli
