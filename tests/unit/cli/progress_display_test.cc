// The terminal progress of a triggered run (cli/progress_display.h): what each dataset's line
// says in each state, that lines fit the terminal, the summary table's columns, and which
// --progress values and run shapes are refused.
#include "sluice/cli/progress_display.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

namespace sluice::cli {
namespace {

using pipeline::DatasetReport;
using pipeline::RunProgress;

TEST(ProgressDisplayTest, EachStateHasItsLine) {
  RunProgress progress;
  progress.waiting("bronze");
  progress.waiting("silver");
  progress.waiting("gold");
  progress.waiting("alerts");
  progress.waiting("later");
  progress.started("bronze");
  progress.add_backlog("bronze", 1000);
  progress.add_read("bronze", 250);
  progress.waiting("reads");
  progress.started("reads");
  progress.add_backlog("reads", 10);
  progress.add_read("reads", 10);
  progress.started("silver");
  progress.add_read("silver", 1200);
  progress.add_read("silver", -200);  // rows taken in process, dropped to be read from files
  progress.started("gold");
  progress.finished("gold", true, 42);
  progress.started("alerts");
  progress.add_read("alerts", 7);
  progress.finished("alerts", false, 0);
  ProgressDisplay display(progress, -1, "demo");
  auto lines = display.lines(std::chrono::steady_clock::now(), 200);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0].rfind("sluice: updating 'demo': 2 of 6 datasets done, ", 0), 0u) << lines[0];
  EXPECT_NE(lines[6].find("reads   [####################] 100%  10 of 10 rows  read; writing and committing"),
            std::string::npos)
      << lines[6];
  EXPECT_NE(lines[1].find("bronze  [#####---------------]  25%  250 of 1,000 rows"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("silver  1,000 rows read"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[2].find("ETA"), std::string::npos) << "no backlog, no ETA: " << lines[2];
  EXPECT_NE(lines[3].find("gold    done: 42 rows read in "), std::string::npos) << lines[3];
  EXPECT_NE(lines[4].find("alerts  FAILED after 7 rows read"), std::string::npos) << lines[4];
  EXPECT_NE(lines[5].find("later   waiting"), std::string::npos) << lines[5];
  progress.skipped("later");
  lines = display.lines(std::chrono::steady_clock::now(), 200);
  EXPECT_NE(lines[5].find("later   skipped (an input failed)"), std::string::npos) << lines[5];
}

TEST(ProgressDisplayTest, LinesAreCutToTheTerminalWidth) {
  RunProgress progress;
  progress.waiting(std::string(100, 'x'));
  ProgressDisplay display(progress, -1, "demo");
  for (const auto& line : display.lines(std::chrono::steady_clock::now(), 40)) EXPECT_LE(line.size(), 40u) << line;
}

TEST(ProgressDisplayTest, SummaryTableHasEveryCountPerDataset) {
  DatasetReport bronze;
  bronze.dataset = "events_bronze";
  bronze.kind = "streaming table";
  bronze.rows_read = 1000;
  bronze.rows_written = 990;
  bronze.rows_dead_lettered = 10;
  DatasetReport silver;
  silver.dataset = "events_silver";
  silver.kind = "streaming table";
  silver.rows_read = 990;
  silver.rows_written = 900;
  silver.rows_dropped = 80;
  silver.rows_quarantined = 80;
  silver.rows_late = 3;
  silver.rows_duplicate = 7;
  const auto text = summary_table("demo", {bronze, silver}, std::chrono::milliseconds(2500));
  EXPECT_EQ(text,
            "sluice: update of 'demo' finished in 2.5s\n"
            "  dataset        kind             read  written  dropped  quarantined  dead-lettered  late  duplicate\n"
            "  events_bronze  streaming table  1000      990        0            0             10     0          0\n"
            "  events_silver  streaming table   990      900       80           80              0     3          7\n");
}

TEST(ProgressDisplayTest, ProgressModesAndRefusals) {
  EXPECT_EQ(*parse_progress_mode("never"), ProgressMode::kNever);
  EXPECT_EQ(*parse_progress_mode("auto"), ProgressMode::kAuto);
  EXPECT_EQ(*parse_progress_mode("always"), ProgressMode::kAlways);
  auto bad = parse_progress_mode("yes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--progress=yes: say never, auto (on when stderr is a terminal) or always");
  EXPECT_FALSE(*shows_progress(ProgressMode::kAuto, /*continuous=*/false, /*stderr_is_terminal=*/false));
  EXPECT_FALSE(*shows_progress(ProgressMode::kAuto, /*continuous=*/true, /*stderr_is_terminal=*/true));
  EXPECT_FALSE(*shows_progress(ProgressMode::kNever, false, true));
  EXPECT_TRUE(*shows_progress(ProgressMode::kAlways, false, false));
  auto continuous = shows_progress(ProgressMode::kAlways, true, true);
  ASSERT_FALSE(continuous.ok());
  EXPECT_NE(continuous.status().message().find("live progress is for triggered runs"), std::string::npos);
}

// The screen a terminal shows after `bytes`: text, newlines, and the three sequences the display
// sends (ESC[nF: n lines up, to column 0; ESC[2K: clear the line; ESC[J: clear to the end).
std::vector<std::string> screen(const std::string& bytes) {
  std::vector<std::string> rows(1);
  size_t row = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      size_t j = i + 2;
      int n = 0;
      while (j < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[j]))) n = n * 10 + (bytes[j++] - '0');
      if (bytes[j] == 'F') row -= std::min<size_t>(row, static_cast<size_t>(n));
      if (bytes[j] == 'K') rows[row].clear();
      if (bytes[j] == 'J') rows.resize(row + 1), rows[row].clear();
      i = j;
    } else if (bytes[i] == '\n') {
      if (++row == rows.size()) rows.emplace_back();
    } else {
      rows[row] += bytes[i];
    }
  }
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  return rows;
}

std::string read_some(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 10000) <= 0) return "";
  char buffer[65536];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

TEST(ProgressDisplayTest, TextWrittenToTheTerminalDuringARunStaysAboveTheFrame) {
  int terminal[2];
  ASSERT_EQ(::pipe(terminal), 0);
  RunProgress progress;
  progress.started("bronze");
  progress.add_read("bronze", 5);
  std::string received;
  {
    ProgressDisplay display(progress, terminal[1], "demo");
    display.start();
    // The first frame is on the terminal; then a flow warns (a whole line, then half a line).
    while (received.find("bronze") == std::string::npos) {
      const auto more = read_some(terminal[0]);
      ASSERT_FALSE(more.empty()) << "no frame drawn";
      received += more;
    }
    const std::string warning = "sluice: warning: bronze: Kafka t[0] offsets from 3 were not read\n";
    ASSERT_EQ(::write(terminal[1], warning.data(), warning.size()), static_cast<ssize_t>(warning.size()));
    ASSERT_EQ(::write(terminal[1], "sluice: warning: cut", 20), 20);
    progress.finished("bronze", true, 5);
    display.stop();
    // The terminal is `fd` again.
    ASSERT_EQ(::write(terminal[1], "after\n", 6), 6);
  }
  ::close(terminal[1]);
  for (auto more = read_some(terminal[0]); !more.empty(); more = read_some(terminal[0])) received += more;
  ::close(terminal[0]);
  const auto rows = screen(received);
  ASSERT_EQ(rows.size(), 5u) << received;
  EXPECT_EQ(rows[0], "sluice: warning: bronze: Kafka t[0] offsets from 3 were not read");
  EXPECT_EQ(rows[1], "sluice: warning: cut");
  EXPECT_EQ(rows[2].rfind("sluice: updating 'demo': 1 of 1 datasets done", 0), 0u) << rows[2];
  EXPECT_NE(rows[3].find("bronze  done: 5 rows read"), std::string::npos) << rows[3];
  EXPECT_EQ(rows[4], "after");
}

TEST(ProgressDisplayTest, FramePerReportIsOneOrUnset) {
  EXPECT_FALSE(*frame_per_report(nullptr));
  EXPECT_FALSE(*frame_per_report(""));
  EXPECT_TRUE(*frame_per_report("1"));
  auto bad = frame_per_report("yes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "SLUICE_TEST_PROGRESS_FRAMES=yes: set it to 1 (a frame after every progress report) or unset it");
}

// Each add_read and add_backlog calls the observer after its change (what a frame drawn then
// shows), a negative read (rows dropped in process, read again from files) included.
TEST(ProgressDisplayTest, EveryReportReachesTheObserverAfterItsChange) {
  RunProgress progress;
  std::vector<int64_t> seen;
  progress.set_on_report([&] { seen.push_back(progress.snapshot().at(0).rows_read); });
  progress.started("silver");
  progress.add_backlog("silver", 10);
  progress.add_read("silver", 300);
  progress.add_read("silver", -100);
  progress.add_read("silver", 50);
  progress.finished("silver", true, 250);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 300, 200, 250}));
}

TEST(ProgressDisplayTest, TheRateIsOverTheLastSecondsAndTheEtaIsTheBacklogLeftAtIt) {
  // Frames at chosen instants (no clock read, no sleep): the rate is the rows read between the
  // frame kept as the window's start and now; the ETA the backlog left over that rate.
  RunProgress progress;
  progress.started("bronze");
  progress.add_backlog("bronze", 10'000);
  progress.add_read("bronze", 2'000);
  ProgressDisplay display(progress, -1, "demo");
  const auto t0 = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  display.lines(t0, 200);
  progress.add_read("bronze", 3'000);  // 3,000 rows in the next 2 s
  auto lines = display.lines(t0 + std::chrono::seconds(2), 200);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("bronze  [##########----------]  50%  5,000 of 10,000 rows  1,500 rows/s  ETA 3.3s"),
            std::string::npos)
      << lines[1];
  // 4 s later, 1,000 more: the window moved past t0 (3 s), so the rate is 1,000 / 4 s, not the
  // 6,000 rows since the start over 16 s.
  progress.add_read("bronze", 1'000);
  lines = display.lines(t0 + std::chrono::seconds(6), 200);
  EXPECT_NE(lines[1].find("bronze  [############--------]  60%  6,000 of 10,000 rows  250 rows/s  ETA 16.0s"),
            std::string::npos)
      << lines[1];
}

TEST(ProgressDisplayTest, GroupsThousands) {
  EXPECT_EQ(group_thousands(0), "0");
  EXPECT_EQ(group_thousands(999), "999");
  EXPECT_EQ(group_thousands(1000), "1,000");
  EXPECT_EQ(group_thousands(1234567), "1,234,567");
  EXPECT_EQ(group_thousands(-1234), "-1,234");
}

}  // namespace
}  // namespace sluice::cli
