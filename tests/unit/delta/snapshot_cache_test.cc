// Snapshots kept across updates (delta/snapshot_cache.h), on real tables: a load advances the
// kept snapshot by the commits after it and gives what a full replay gives; a log written anew
// under the same path is replayed, never advanced from the old state.
#include "sluice/delta/snapshot_cache.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "../temp_dir.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"

namespace sluice::delta {
namespace {

namespace fs = std::filesystem;

class SnapshotCacheTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");

  void create(int64_t checkpoint_interval) {
    auto schema = arrow::schema({arrow::field("v", arrow::int64())});
    Transaction create(store_, nullptr);
    create.set_protocol(protocol_for_schema(*schema));
    auto metadata = *new_table_metadata(*schema, "t", std::nullopt);
    metadata.configuration["delta.checkpointInterval"] = std::to_string(checkpoint_interval);
    create.set_metadata(metadata);
    ASSERT_TRUE(create.commit({}).ok());
  }
  // One commit adding file `<prefix><n>` and recording txn "app" = n; returns its snapshot.
  std::shared_ptr<const Snapshot> add(const std::string& prefix, int64_t n) {
    Transaction txn(store_, *Snapshot::load(*store_));
    Add add;
    add.path = prefix + std::to_string(n);
    add.size = 1;
    add.stats = R"({"numRecords":1})";
    txn.add_file(add);
    txn.set_txn("app", n);
    auto result = txn.commit({});
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? result->snapshot : nullptr;
  }
  static std::vector<std::string> paths(const Snapshot& s) {
    std::vector<std::string> out;
    for (const auto& a : s.files()) out.push_back(a.path);
    return out;
  }
  // The cached load equals a full replay of the log.
  static void expect_same(const Snapshot& cached, const Snapshot& replayed) {
    EXPECT_EQ(cached.version(), replayed.version());
    EXPECT_EQ(paths(cached), paths(replayed));
    EXPECT_EQ(cached.txn_version("app"), replayed.txn_version("app"));
    EXPECT_EQ(cached.metadata().id, replayed.metadata().id);
  }
};

TEST_F(SnapshotCacheTest, NoTableIsNullUntilItIsCreated) {
  SnapshotCache cache;
  auto none = cache.latest_if_exists(*store_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  EXPECT_FALSE(cache.latest(*store_).ok());  // Snapshot::load's error
  create(100);
  auto created = cache.latest(*store_);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)->version(), DeltaVersion(0));
}

TEST_F(SnapshotCacheTest, AdvancesTheKeptSnapshotByTheCommitsAfterIt) {
  create(2);  // checkpoints at 2, 4, ...: a replay starts from one, an advance never does
  for (int64_t n = 1; n <= 3; ++n) add("f", n);
  SnapshotCache cache;
  auto first = cache.latest_if_exists(*store_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(cache.replayed(), 1);
  for (int64_t n = 4; n <= 6; ++n) add("f", n);  // another writer's commits
  auto later = cache.latest_if_exists(*store_);
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ(cache.advanced(), 1);
  EXPECT_EQ(cache.replayed(), 1);
  expect_same(**later, **Snapshot::load(*store_));
  EXPECT_EQ((*later)->version(), DeltaVersion(6));
  EXPECT_EQ((*first)->version(), DeltaVersion(3));  // the kept snapshot itself is unchanged
}

TEST_F(SnapshotCacheTest, RemembersACommitsSnapshot) {
  create(100);
  SnapshotCache cache;
  auto committed = add("f", 1);
  ASSERT_NE(committed, nullptr);
  cache.remember(*store_, committed);
  auto loaded = cache.latest(*store_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(cache.advanced(), 1);
  EXPECT_EQ(cache.replayed(), 0);
  expect_same(**loaded, **Snapshot::load(*store_));
}

TEST_F(SnapshotCacheTest, ALogWrittenAnewIsReplayedNotAdvanced) {
  create(100);
  for (int64_t n = 1; n <= 3; ++n) add("f", n);
  SnapshotCache cache;
  ASSERT_TRUE(cache.latest(*store_).ok());
  // The table deleted and created again under the same path, with more commits than before.
  fs::remove_all(store_->table_root());
  create(100);
  for (int64_t n = 1; n <= 5; ++n) add("g", n);
  auto loaded = cache.latest(*store_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(cache.replayed(), 2);
  EXPECT_EQ(cache.advanced(), 0);
  expect_same(**loaded, **Snapshot::load(*store_));
  EXPECT_EQ(paths(**loaded), (std::vector<std::string>{"g1", "g2", "g3", "g4", "g5"}));
}

// The same, where the rewritten log's commit at the kept version has the kept one's length and
// modification time (a coarse clock, a copy that keeps times): its bytes still tell them apart.
TEST_F(SnapshotCacheTest, ALogWrittenAnewWithTheSameSizeAndTimeIsReplayed) {
  create(100);
  for (int64_t n = 1; n <= 3; ++n) add("f", n);
  SnapshotCache cache;
  ASSERT_TRUE(cache.latest(*store_).ok());
  const auto kept_commit = store_->commit_path(DeltaVersion(3));
  const auto kept_size = fs::file_size(kept_commit);
  const auto kept_time = fs::last_write_time(kept_commit);
  fs::remove_all(store_->table_root());
  create(100);
  for (int64_t n = 1; n <= 3; ++n) add("g", n);
  ASSERT_EQ(fs::file_size(kept_commit), kept_size) << "the test needs a commit of the same length";
  fs::last_write_time(kept_commit, kept_time);
  auto loaded = cache.latest(*store_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(cache.replayed(), 2);
  EXPECT_EQ(cache.advanced(), 0);
  EXPECT_EQ(paths(**loaded), (std::vector<std::string>{"g1", "g2", "g3"}));
}

}  // namespace
}  // namespace sluice::delta
