// The in-process handoff channel (pipeline/commit_channel.h): what its reader sees of a
// writer's commits, and that a full queue loses a commit instead of making the writer wait.
#include "sluice/pipeline/commit_channel.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <thread>

namespace sluice::pipeline {
namespace {

using Kind = CommitChannel::Event::Kind;

std::shared_ptr<arrow::RecordBatch> batch_of(int64_t rows) {
  arrow::Int64Builder builder;
  for (int64_t i = 0; i < rows; ++i) EXPECT_TRUE(builder.Append(i).ok());
  auto array = builder.Finish().ValueOrDie();
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("n", arrow::int64())}), rows, {array});
}

std::vector<Kind> drain(CommitChannel& channel) {
  std::vector<Kind> kinds;
  while (true) {
    auto event = channel.next();
    kinds.push_back(event.kind);
    if (event.kind == Kind::kClosed) return kinds;
  }
}

TEST(CommitChannelTest, TheReaderSeesEachCommitsRowsThenWhetherItLanded) {
  CommitChannel channel("bronze", "silver", 1 << 20);
  channel.begin(4);
  channel.write(batch_of(10));
  channel.write(batch_of(5));
  channel.committed(5);
  channel.begin(5);
  channel.write(batch_of(3));
  channel.lost();
  channel.close();
  auto first = channel.next();
  EXPECT_EQ(first.kind, Kind::kBegin);
  EXPECT_EQ(first.version, 4);
  EXPECT_EQ(channel.next().batch->num_rows(), 10);
  EXPECT_EQ(channel.next().batch->num_rows(), 5);
  auto landed = channel.next();
  EXPECT_EQ(landed.kind, Kind::kCommitted);
  EXPECT_EQ(landed.version, 5);
  EXPECT_EQ(drain(channel), (std::vector<Kind>{Kind::kBegin, Kind::kBatch, Kind::kLost, Kind::kClosed}));
  EXPECT_EQ(channel.next().kind, Kind::kClosed);  // and stays closed
}

TEST(CommitChannelTest, AFullQueueLosesTheCommitInProgressWithoutWaiting) {
  const auto rows = batch_of(1000);  // 8,000 bytes
  CommitChannel channel("bronze", "silver", 20'000);
  channel.begin(0);
  channel.write(rows);
  channel.committed(1);  // an earlier commit, not read yet: kept
  channel.begin(1);
  channel.write(rows);
  channel.write(rows);  // over the budget: this commit is lost, its queued rows dropped
  channel.write(rows);  // ignored
  channel.committed(2);
  channel.begin(2);
  channel.write(rows);  // the next commit fits again
  channel.committed(3);
  channel.close();
  EXPECT_EQ(channel.overflows(), 1);
  EXPECT_EQ(drain(channel), (std::vector<Kind>{Kind::kBegin, Kind::kBatch, Kind::kCommitted, Kind::kBegin,
                                               Kind::kLost, Kind::kBegin, Kind::kBatch, Kind::kCommitted,
                                               Kind::kClosed}));
}

TEST(CommitChannelTest, ClosingLosesTheCommitInProgress) {
  CommitChannel channel("bronze", "silver", 1 << 20);
  channel.begin(-1);
  channel.write(batch_of(2));
  channel.close();
  channel.committed(0);  // after the close: not seen
  EXPECT_EQ(drain(channel), (std::vector<Kind>{Kind::kBegin, Kind::kBatch, Kind::kLost, Kind::kClosed}));
}

TEST(CommitChannelTest, TheReaderWaitsForTheWriterOnAnotherThread) {
  CommitChannel channel("bronze", "silver", 1 << 20);
  std::thread writer([&] {
    for (int64_t v = 0; v < 100; ++v) {
      channel.begin(v - 1);
      channel.write(batch_of(1));
      channel.committed(v);
    }
    channel.close();
  });
  int64_t committed = 0;
  int64_t last = -1;
  for (auto event = channel.next(); event.kind != Kind::kClosed; event = channel.next()) {
    if (event.kind != Kind::kCommitted) continue;
    EXPECT_EQ(event.version, last + 1);
    last = event.version;
    ++committed;
  }
  writer.join();
  EXPECT_EQ(committed, 100);
}

TEST(CommitChannelTest, AWriterWaitsForAnAttachedReaderInsteadOfLosingTheCommit) {
  const auto rows = batch_of(1000);  // 8,000 bytes: one fits the budget at a time
  CommitChannel channel("bronze", "silver", 10'000);
  channel.attach();
  std::thread writer([&] {
    channel.begin(-1);
    for (int i = 0; i < 50; ++i) channel.write(rows);
    channel.committed(0);
    channel.close();
  });
  int64_t batches = 0;
  for (auto event = channel.next(); event.kind != Kind::kClosed; event = channel.next()) {
    EXPECT_NE(event.kind, Kind::kLost);
    batches += event.kind == Kind::kBatch;
  }
  writer.join();
  EXPECT_EQ(batches, 50);
  EXPECT_EQ(channel.overflows(), 0);
}

TEST(CommitChannelTest, AReaderThatEndedQueuesNothingMore) {
  CommitChannel channel("bronze", "silver", 10'000);
  channel.attach();
  channel.begin(-1);
  channel.write(batch_of(1000));
  channel.detach();
  for (int i = 0; i < 10; ++i) channel.write(batch_of(1000));  // returns at once: nobody reads
  channel.committed(0);
  EXPECT_EQ(channel.overflows(), 0);
}

TEST(CommitChannelTest, AReaderIsFoundOnlyForItsOwnFlow) {
  CommitChannels channels(1 << 20);
  auto* channel = channels.open("bronze", "silver_flow");
  EXPECT_EQ(channels.find("bronze"), channel);
  EXPECT_EQ(channels.find("bronze", "silver_flow"), channel);
  EXPECT_EQ(channels.find("bronze", "other_flow"), nullptr);
  EXPECT_EQ(channels.find("silver"), nullptr);
}

}  // namespace
}  // namespace sluice::pipeline
