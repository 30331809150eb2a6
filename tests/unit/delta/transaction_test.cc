// Commits, snapshots, txn (offset) bookkeeping and conflict detection on a local table.
#include "sluice/delta/transaction.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "../temp_dir.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/table.h"

namespace sluice::delta {
namespace {

class TransactionTest : public ::testing::Test {
 protected:
  std::shared_ptr<arrow::Schema> schema_ = arrow::schema({arrow::field("v", arrow::int64())});
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");

  DeltaVersion create_table() {
    Transaction txn(store_, nullptr);
    txn.set_protocol(protocol_for_schema(*schema_));
    txn.set_metadata(*new_table_metadata(*schema_, "t", std::nullopt));
    auto result = txn.commit({});
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result->version;
  }

  std::shared_ptr<const Snapshot> latest() {
    auto snap = Snapshot::load(*store_);
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    return *snap;
  }

  static Add file(const std::string& path) {
    Add add;
    add.path = path;
    add.size = 1;
    add.stats = R"({"numRecords":10})";
    return add;
  }
};

TEST_F(TransactionTest, CreatesTableAtVersionZeroWithProtocol12) {
  EXPECT_EQ(create_table(), DeltaVersion(0));
  auto snap = latest();
  EXPECT_EQ(snap->protocol(), (Protocol{1, 2, std::nullopt, std::nullopt}));
  EXPECT_TRUE(snap->schema()->Equals(*schema_));
}

TEST_F(TransactionTest, TxnVersionsAreReplayedPerAppId) {
  create_table();
  for (int64_t offset : {100, 250}) {
    Transaction txn(store_, latest());
    txn.add_file(file("f" + std::to_string(offset)));
    txn.set_txn("pipe/flow/topic/0", offset);
    ASSERT_TRUE(txn.commit({}).ok());
  }
  Transaction other(store_, latest());
  other.set_txn("pipe/flow/topic/1", 7);
  ASSERT_TRUE(other.commit({}).ok());
  auto snap = latest();
  EXPECT_EQ(snap->version(), DeltaVersion(3));
  EXPECT_EQ(snap->txn_version("pipe/flow/topic/0"), 250);
  EXPECT_EQ(snap->txn_version("pipe/flow/topic/1"), 7);
  EXPECT_EQ(snap->txn_version("pipe/flow/topic/2"), std::nullopt);
  EXPECT_EQ(snap->files().size(), 2u);
  EXPECT_EQ(snap->num_records(), 20);
  // Time travel: the txn as of version 1.
  auto v1 = Snapshot::load(*store_, DeltaVersion(1));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ((*v1)->txn_version("pipe/flow/topic/0"), 100);
}

TEST_F(TransactionTest, BlindAppendsRetryPastALostRace) {
  create_table();
  auto base = latest();
  Transaction first(store_, base), second(store_, base);
  first.add_file(file("a"));
  second.add_file(file("b"));
  ASSERT_EQ(first.commit({})->version, DeltaVersion(1));
  auto result = second.commit({});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->version, DeltaVersion(2));
  EXPECT_EQ(result->attempts, 2);
  EXPECT_EQ(latest()->files().size(), 2u);
}

TEST_F(TransactionTest, AWriteWhoseReadVersionALogCutDeletedIsRefused) {
  // As sluice forget leaves a table: a checkpoint at the latest version and every commit before
  // it deleted. A writer that read version 1 before the cut would put into the deleted slot 2
  // (put-if-absent succeeds there) and no reader would ever replay it.
  create_table();
  Transaction append(store_, latest());
  append.add_file(file("a"));
  ASSERT_TRUE(append.commit({}).ok());
  auto stale = latest();  // version 1
  for (const char* name : {"b", "c"}) {
    Transaction other(store_, latest());
    other.add_file(file(name));
    ASSERT_TRUE(other.commit({}).ok());
  }
  ASSERT_TRUE(write_checkpoint(*store_, *latest()).ok());
  for (int v = 0; v < 3; ++v) std::filesystem::remove(store_->commit_path(DeltaVersion(v)));
  Transaction late(store_, stale);
  late.add_file(file("late"));
  auto result = late.commit({});
  ASSERT_FALSE(result.ok()) << "committed version " << result->version.value();
  EXPECT_NE(result.status().message().find("version 1 is no longer in its log"), std::string::npos)
      << result.status().message();
  EXPECT_FALSE(std::filesystem::exists(store_->commit_path(DeltaVersion(2))));
  auto now = latest();
  EXPECT_EQ(now->version(), DeltaVersion(3));
  EXPECT_EQ(now->files().size(), 3u);
}

TEST_F(TransactionTest, TwoWritesWhoseReadVersionALogCutDeletedNeverStackOnEachOther) {
  // Two writers read version 1 before a cut to checkpoint 5. The first put into the deleted slot
  // 2 (its commit is still there: it has not taken it back yet). The second must not take that
  // commit for slot 3's predecessor: before it checked only after its put, it lost the race at
  // 2, put into the deleted slot 3, found 2 there and stayed, never replayed.
  create_table();
  Transaction append(store_, latest());
  append.add_file(file("a"));
  ASSERT_TRUE(append.commit({}).ok());
  auto stale = latest();  // version 1
  for (const char* name : {"b", "c", "d", "e"}) {
    Transaction other(store_, latest());
    other.add_file(file(name));
    ASSERT_TRUE(other.commit({}).ok());
  }
  ASSERT_EQ(latest()->version(), DeltaVersion(5));
  ASSERT_TRUE(write_checkpoint(*store_, *latest()).ok());
  auto zombie = store_->read_commit(DeltaVersion(2));  // as the first writer's blind append
  ASSERT_TRUE(zombie.ok());
  for (int v = 0; v < 5; ++v) std::filesystem::remove(store_->commit_path(DeltaVersion(v)));
  ASSERT_EQ(store_->put_commit_if_absent(DeltaVersion(2), *zombie).ValueOrDie(), PutResult::kWritten);
  Transaction late(store_, stale);
  late.add_file(file("late"));
  auto result = late.commit({});
  ASSERT_FALSE(result.ok()) << "committed version " << result->version.value();
  EXPECT_NE(result.status().message().find("version 1 is no longer in its log"), std::string::npos)
      << result.status().message();
  EXPECT_FALSE(std::filesystem::exists(store_->commit_path(DeltaVersion(3))));
}

TEST_F(TransactionTest, AnOlderCheckpointNeverMovesLastCheckpointBack) {
  create_table();
  Transaction append(store_, latest());
  append.add_file(file("a"));
  ASSERT_TRUE(append.commit({}).ok());
  auto older = latest();  // version 1
  Transaction other(store_, latest());
  other.add_file(file("b"));
  ASSERT_TRUE(other.commit({}).ok());
  ASSERT_TRUE(write_checkpoint(*store_, *latest()).ok());
  ASSERT_TRUE(write_checkpoint(*store_, *older).ok());
  EXPECT_EQ(read_last_checkpoint(*store_), 2);
}

TEST_F(TransactionTest, SameAppIdCommittedConcurrentlyIsAConflict) {
  create_table();
  auto base = latest();
  Transaction first(store_, base), second(store_, base);
  first.set_txn("pipe/flow/topic/0", 10);
  second.set_txn("pipe/flow/topic/0", 10);
  second.add_file(file("dup"));
  ASSERT_TRUE(first.commit({}).ok());
  auto result = second.commit({});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("conflict: a concurrent commit (version 1)"),
            std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("'pipe/flow/topic/0'"), std::string::npos);
  EXPECT_EQ(latest()->version(), DeltaVersion(1));  // nothing half-committed
}

TEST_F(TransactionTest, MetadataChangeRacingAnAppendIsAConflict) {
  create_table();
  auto base = latest();
  Transaction meta(store_, base), append(store_, base);
  auto m = base->metadata();
  m.configuration["delta.appendOnly"] = "true";
  meta.set_metadata(m);
  append.add_file(file("a"));
  ASSERT_TRUE(meta.commit({}).ok());
  auto result = append.commit({});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("changed the metadata or protocol"), std::string::npos);
}

TEST_F(TransactionTest, CorruptCommitGivesAnErrorNotACrash) {
  create_table();
  {
    std::ofstream out(store_->commit_path(DeltaVersion(1)));
    out << "{\"add\":{\"path\":";
  }
  auto snap = Snapshot::load(*store_);
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.status().message().find("00000000000000000001.json:1: not valid JSON"),
            std::string::npos);
}

TEST_F(TransactionTest, NoTableIsAClearError) {
  auto snap = Snapshot::load(*store_);
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.status().message().find("is not a Delta table (no _delta_log commits)"),
            std::string::npos);
}

TEST_F(TransactionTest, PutIfAbsentRefusesAnExistingVersion) {
  ASSERT_EQ(*store_->put_commit_if_absent(DeltaVersion(0), "{}\n"), PutResult::kWritten);
  ASSERT_EQ(*store_->put_commit_if_absent(DeltaVersion(0), "{\"x\":1}\n"), PutResult::kAlreadyExists);
  EXPECT_EQ(*store_->read_commit(DeltaVersion(0)), "{}\n");
  // No temp files left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(store_->log_dir())) ++entries;
  EXPECT_EQ(entries, 1);
}

// A table another writer gave an unusable delta.checkpointInterval checkpoints at Delta's default
// (10), not at the digits the text starts with.
TEST(CheckpointIntervalTest, TextThatIsNotAPositiveNumberMeansTheDefault) {
  for (const auto& [text, want] : std::vector<std::pair<std::string, int64_t>>{
           {"3", 3}, {"5abc", 10}, {"0", 10}, {"-2", 10}, {"99999999999999999999", 10}, {"", 10}}) {
    Metadata m;
    m.configuration["delta.checkpointInterval"] = text;
    EXPECT_EQ(checkpoint_interval(m), want) << "'" << text << "'";
  }
  EXPECT_EQ(checkpoint_interval(Metadata{}), 10);
}

}  // namespace
}  // namespace sluice::delta
