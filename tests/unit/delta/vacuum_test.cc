// VACUUM and log cleanup on local tables: retention parsing, which files go, the commits written,
// and a log that stays readable after cleanup.
#include "sluice/delta/vacuum.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/time.h>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/common/failpoint.h"
#include "sluice/common/ids.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/log_cleanup.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"

namespace sluice::delta {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kHour = 3600 * 1000;

TEST(VacuumRelativePath, RelatesAbsoluteUrisOfEveryStoreToTheRoot) {
  EXPECT_EQ(vacuum_relative_path("part-0.parquet", "bucket/t"), "part-0.parquet");
  EXPECT_EQ(vacuum_relative_path("s3://bucket/t/p=1/part-0.parquet", "bucket/t"), "p=1/part-0.parquet");
  EXPECT_EQ(vacuum_relative_path("gs://bucket/t/part-0.parquet", "bucket/t"), "part-0.parquet");
  // Azure names the container before '@': a live file there must not look outside the table
  // (it would be deleted as an unreferenced file).
  EXPECT_EQ(vacuum_relative_path("abfss://c@acct.dfs.core.windows.net/t/part-0.parquet", "c/t"), "part-0.parquet");
  EXPECT_EQ(vacuum_relative_path("file:///data/t/part-0.parquet", "/data/t"), "part-0.parquet");
  EXPECT_EQ(vacuum_relative_path("s3://other/t/part-0.parquet", "bucket/t"), std::nullopt);
  EXPECT_EQ(vacuum_relative_path("/data/other/part-0.parquet", "/data/t"), std::nullopt);
}

TEST(ParseIntervalMillis, ReadsSparkIntervals) {
  struct Case {
    const char* text;
    int64_t millis;
  } cases[] = {
      {"interval 7 days", 7 * 24 * kHour},
      {"interval 1 week", 7 * 24 * kHour},
      {"INTERVAL 2 HOURS", 2 * kHour},
      {"168 hours", 168 * kHour},
      {"interval 1 day 12 hours", 36 * kHour},
      {"interval 0 seconds", 0},
      {"interval 1.5 seconds", 1500},
      {"30 minutes", 30 * 60 * 1000},
      {"interval 250 milliseconds", 250},
      {"interval 1 hour", kHour},
  };
  for (const auto& c : cases) {
    auto parsed = parse_interval_millis(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, c.millis) << c.text;
  }
}

TEST(ParseIntervalMillis, RefusesWhatSparkRefusesSayingWhy) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"interval", "not a duration"},
      {"7", "needs a unit"},
      {"interval 7 fortnights", "unknown unit 'fortnights'"},
      {"interval 1 month", "months and years"},
      {"interval 1.5 days", "only seconds may have a fraction"},
      {"interval x days", "'x' is not a number"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_interval_millis(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos) << parsed.status().message();
  }
}

TEST(RetentionProperties, DefaultsAndErrorsNameTheProperty) {
  Metadata m;
  EXPECT_EQ(*deleted_file_retention_millis(m, "t"), 7 * 24 * kHour);
  EXPECT_EQ(*log_retention_millis(m, "t"), 30 * 24 * kHour);
  EXPECT_EQ(*checkpoint_retention_millis(m, "t"), 2 * 24 * kHour);
  m.configuration["delta.logRetentionDuration"] = "forever";
  auto bad = log_retention_millis(m, "/data/t");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("table /data/t: property delta.logRetentionDuration = 'forever'"),
            std::string::npos)
      << bad.status().message();
}

TEST(DeletionVectorFile, DerivesThePathOfProtocolExamples) {
  // PROTOCOL.md "JSON Example 1": random prefix "ab", then the Z85-encoded uuid.
  auto relative = deletion_vector_file("u", "ab^-aqEH.-t@S}K{vb[*k^");
  ASSERT_TRUE(relative.ok()) << relative.status().ToString();
  EXPECT_EQ(relative->value(), "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin");
  auto no_prefix = deletion_vector_file("u", "^-aqEH.-t@S}K{vb[*k^");
  EXPECT_EQ(no_prefix->value(), "deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin");
  EXPECT_EQ(deletion_vector_file("p", "s3://t/deletion_vector_x.bin")->value(), "s3://t/deletion_vector_x.bin");
  EXPECT_FALSE(deletion_vector_file("i", "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L")->has_value());
  EXPECT_FALSE(deletion_vector_file("x", "abc").ok());
  EXPECT_FALSE(deletion_vector_file("u", "short").ok());
}

TEST(HiddenForVacuum, FollowsSparksRule) {
  const std::vector<std::string> parts = {"day"};
  EXPECT_TRUE(is_hidden_for_vacuum("_delta_log", parts));
  EXPECT_TRUE(is_hidden_for_vacuum("_sluice_state", parts));
  EXPECT_TRUE(is_hidden_for_vacuum(".part-0.parquet.crc", parts));
  EXPECT_TRUE(is_hidden_for_vacuum("metadata", parts));
  EXPECT_FALSE(is_hidden_for_vacuum("_change_data", parts));
  EXPECT_FALSE(is_hidden_for_vacuum("_delta_index", parts));
  EXPECT_FALSE(is_hidden_for_vacuum("day=2024-01-01", parts));
  EXPECT_TRUE(is_hidden_for_vacuum("_day=1", parts));
  EXPECT_FALSE(is_hidden_for_vacuum("part-0.parquet", parts));
  EXPECT_FALSE(is_hidden_for_vacuum("deletion_vector_x.bin", parts));
}

TEST(SelectVacuumCandidates, KeepsValidAndYoungFilesAndFoldersThatHoldOldFiles) {
  const int64_t before = 1000;
  std::vector<ListedFile> listing = {
      {"old.parquet", 10, 1, false},          // not valid, old: goes
      {"live.parquet", 10, 1, false},         // valid: stays
      {"young.parquet", 10, 5000, false},     // too young: stays
      {"p=1", 0, 1, true},                    // holds an old file: stays (goes next time, if empty)
      {"p=1/old.parquet", 10, 1, false},      // goes
      {"p=2", 0, 1, true},                    // holds only a young file: counted once, goes as in Spark
      {"p=2/young.parquet", 10, 5000, false},
      {"p=3", 0, 1, true},                    // holds a valid old file
      {"p=3/live.parquet", 10, 1, false},
      {"empty", 0, 1, true},                  // empty: goes
  };
  std::set<std::string> valid = {"live.parquet", "p=3", "p=3/live.parquet"};
  std::vector<std::string> got;
  for (const auto& f : select_vacuum_candidates(listing, valid, before)) got.push_back(f.path);
  EXPECT_EQ(got, (std::vector<std::string>{"empty", "old.parquet", "p=1/old.parquet", "p=2"}));
}

class VacuumTest : public ::testing::Test {
 protected:
  std::shared_ptr<arrow::Schema> schema_ = arrow::schema({arrow::field("v", arrow::int64())});
  sluice::testing::TempDir dir_;
  fs::path root_ = dir_.path() / "t";
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(root_);

  void create(std::map<std::string, std::string> configuration = {}) {
    Transaction txn(store_, nullptr);
    txn.set_protocol(protocol_for_schema(*schema_));
    auto metadata = *new_table_metadata(*schema_, "t", std::nullopt);
    metadata.configuration = std::move(configuration);
    txn.set_metadata(metadata);
    ASSERT_TRUE(txn.commit({}).ok());
  }

  std::shared_ptr<const Snapshot> latest() { return *Snapshot::load(*store_); }

  // A data file on disk whose modification time is `age_millis` ago.
  void write_file(const std::string& rel, int64_t age_millis) {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "data";
    set_age(p, age_millis);
  }

  static void set_age(const fs::path& p, int64_t age_millis) {
    const int64_t t = now_millis() - age_millis;
    struct timeval times[2];
    times[0].tv_sec = times[1].tv_sec = t / 1000;
    times[0].tv_usec = times[1].tv_usec = (t % 1000) * 1000;
    ASSERT_EQ(::utimes(p.c_str(), times), 0);
  }

  void commit_add(const std::string& path) {
    Transaction txn(store_, latest());
    Add a;
    a.path = path;
    a.size = 4;
    txn.add_file(a);
    ASSERT_TRUE(txn.commit({}).ok());
  }

  void commit_remove(const std::string& path, int64_t deleted_at) {
    Transaction txn(store_, latest());
    Remove r;
    r.path = path;
    r.deletion_timestamp = deleted_at;
    txn.remove_file(r);
    ASSERT_TRUE(txn.commit({}).ok());
  }

  std::string operation_of(DeltaVersion v) {
    auto actions = parse_commit(*store_->read_commit(v), "commit");
    for (const auto& a : *actions) {
      if (const auto* c = std::get_if<CommitInfo>(&a)) return c->value.value("operation", "");
    }
    return "";
  }
};

TEST_F(VacuumTest, DeletesUnreferencedOldFilesAndKeepsWhatVersionsInTheWindowNeed) {
  create();
  const int64_t day = 24 * kHour;
  write_file("live.parquet", 30 * day);
  write_file("removed_long_ago.parquet", 30 * day);
  write_file("removed_recently.parquet", 30 * day);
  write_file("stray.parquet", 30 * day);
  write_file("fresh_stray.parquet", 0);
  write_file("_sluice_state/f/state.arrow", 30 * day);
  write_file("_change_data/cdc-old.parquet", 30 * day);
  commit_add("live.parquet");
  commit_add("removed_long_ago.parquet");
  commit_add("removed_recently.parquet");
  commit_remove("removed_long_ago.parquet", now_millis() - 10 * day);
  commit_remove("removed_recently.parquet", now_millis() - 1 * day);

  VacuumOptions dry;
  dry.mode = VacuumMode::kDryRun;
  auto planned = vacuum(store_, dry);
  ASSERT_TRUE(planned.ok()) << planned.status().ToString();
  std::vector<std::string> paths;
  for (const auto& f : planned->candidates) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"_change_data/cdc-old.parquet", "removed_long_ago.parquet",
                                             "stray.parquet"}));
  EXPECT_EQ(planned->retention_millis, 7 * day);
  EXPECT_FALSE(planned->start_version);
  EXPECT_TRUE(fs::exists(root_ / "stray.parquet")) << "a dry run deletes nothing";

  auto done = vacuum(store_, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->deleted_files, 3);
  for (const char* gone : {"_change_data/cdc-old.parquet", "removed_long_ago.parquet", "stray.parquet"}) {
    EXPECT_FALSE(fs::exists(root_ / gone)) << gone;
  }
  for (const char* kept : {"live.parquet", "removed_recently.parquet", "fresh_stray.parquet",
                           "_sluice_state/f/state.arrow", "_delta_log/00000000000000000000.json"}) {
    EXPECT_TRUE(fs::exists(root_ / kept)) << kept;
  }
  ASSERT_TRUE(done->start_version && done->end_version);
  EXPECT_EQ(operation_of(*done->start_version), "VACUUM START");
  EXPECT_EQ(operation_of(*done->end_version), "VACUUM END");
  EXPECT_EQ(latest()->num_files(), 1u);
}

TEST_F(VacuumTest, KeepsAFileACommitNamedAfterItsChoice) {
  // A writer without the maintenance lock (Spark) commits an old file it wrote between a
  // vacuum's listing and its deletions: the re-read of the log keeps it.
  create();
  const int64_t day = 24 * kHour;
  write_file("live.parquet", 30 * day);
  write_file("p=1/late_commit.parquet", 30 * day);
  write_file("stray.parquet", 30 * day);
  commit_add("live.parquet");
  VacuumOptions dry;
  dry.mode = VacuumMode::kDryRun;
  auto planned = vacuum(store_, dry);
  ASSERT_TRUE(planned.ok()) << planned.status().ToString();
  std::vector<ListedFile> candidates = planned->candidates;
  ASSERT_EQ(candidates.size(), 2u);  // p=1/late_commit.parquet, stray.parquet
  commit_add("p%3D1/late_commit.parquet");
  auto dropped = drop_committed_since(*store_, planned->read_version, candidates);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(*dropped, 1);
  ASSERT_EQ(candidates.size(), 1u);
  EXPECT_EQ(candidates[0].path, "stray.parquet");
  // Nothing committed after the choice: nothing dropped.
  auto none = drop_committed_since(*store_, latest()->version(), candidates);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

// Through vacuum() itself: another writer (Spark, no maintenance lock) commits a file vacuum
// chose to delete, after the choice and before the re-read of the log: the file is kept.
TEST_F(VacuumTest, KeepsAFileAnotherWriterCommitsBeforeItsReRead) {
  create();
  const int64_t day = 24 * kHour;
  write_file("live.parquet", 30 * day);
  write_file("late.parquet", 30 * day);
  write_file("stray.parquet", 30 * day);
  commit_add("live.parquet");
  FailPointAction inject("vacuum_after_choice", [&] { commit_add("late.parquet"); });
  auto done = vacuum(store_, VacuumOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(fs::exists(root_ / "late.parquet"));
  EXPECT_FALSE(fs::exists(root_ / "stray.parquet"));
  EXPECT_EQ(done->deleted_files, 1);
  EXPECT_EQ(latest()->num_files(), 2u);
  ASSERT_TRUE(done->checked_through && done->start_version);
  EXPECT_GE(done->checked_through->value(), done->start_version->value());
}

// The same commit landing after the last re-read, during the deletions, is NOT guaranteed
// against (Delta has no lock a lockless writer honours): the file is deleted and the version
// names a missing file. The vacuum reads the log once more after its deletions and fails,
// naming the version and the file (VACUUM END says FAILED), rather than reporting success.
TEST_F(VacuumTest, AFileCommittedAfterItsLastReReadIsDeletedAndTheVacuumSaysSo) {
  create();
  const int64_t day = 24 * kHour;
  write_file("live.parquet", 30 * day);
  write_file("late.parquet", 30 * day);
  commit_add("live.parquet");
  int64_t injected = -1;
  FailPointAction inject("vacuum_before_delete", [&] {
    commit_add("late.parquet");
    injected = latest()->version().value();
  });
  auto done = vacuum(store_, VacuumOptions{});
  ASSERT_FALSE(done.ok());
  EXPECT_FALSE(fs::exists(root_ / "late.parquet")) << "deleted: the window after the re-read stays open";
  const std::string message(done.status().message());
  EXPECT_NE(message.find(fmt::format("version {} of", injected)), std::string::npos) << message;
  EXPECT_NE(message.find("names late.parquet, which this vacuum deleted"), std::string::npos) << message;
  const auto end = latest()->version();
  EXPECT_EQ(operation_of(end), "VACUUM END");
  EXPECT_NE(store_->read_commit(end)->find(R"("status":"FAILED")"), std::string::npos);
}

// forget's log cut, after its vacuum deleted files: a commit by another writer after the last
// check (which may name a deleted file) stops the cut with the whole log kept; the caller's own
// commits since do not.
TEST_F(VacuumTest, ALogCutWithACheckStopsOnAnotherWritersCommitAfterIt) {
  create();
  for (int i = 1; i <= 3; ++i) commit_add("f" + std::to_string(i) + ".parquet");  // versions 1..3
  ASSERT_TRUE(write_checkpoint(*store_, *latest()).ok());
  Metadata expire_all = latest()->metadata();
  expire_all.configuration["delta.logRetentionDuration"] = "interval 0 seconds";
  expire_all.configuration["delta.checkpointRetentionDuration"] = "interval 0 seconds";
  LogCutCheck check;
  check.checked_through = DeltaVersion(2);
  check.own = {3};  // e.g. VACUUM END
  {
    FailPointAction inject("log_cleanup_before_cut", [&] { commit_add("late.parquet"); });  // version 4
    auto stopped = cleanup_expired_logs(*store_, expire_all, now_millis() + 60'000, &check);
    ASSERT_FALSE(stopped.ok());
    const std::string message(stopped.status().message());
    EXPECT_NE(message.find("was not cut: version 4 (operation "), std::string::npos) << message;
    EXPECT_NE(message.find("last check (version 2)"), std::string::npos) << message;
    for (int v = 0; v <= 4; ++v) EXPECT_TRUE(fs::exists(store_->commit_path(DeltaVersion(v)))) << v;
  }
  // Once that commit was checked, the log is cut.
  check.checked_through = DeltaVersion(4);
  auto cut = cleanup_expired_logs(*store_, expire_all, now_millis() + 60'000, &check);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->kept_from, DeltaVersion(3));
  EXPECT_FALSE(fs::exists(store_->commit_path(DeltaVersion(2))));
  EXPECT_EQ(latest()->num_files(), 4u);
}

TEST_F(VacuumTest, KeepsTheDeletionVectorsOfLiveFilesAndUnexpiredTombstones) {
  create();
  const int64_t day = 24 * kHour;
  write_file("live.parquet", 30 * day);
  write_file("gone.parquet", 30 * day);
  // A vector's file, `age_millis` old, and its path relative to the table root.
  auto vector = [&](uint64_t row, DeletionVectorDescriptor* dv) {
    *dv = write_deletion_vector(*store_, {row}).ValueOrDie();
    const std::string rel = deletion_vector_file(dv->storage_type, dv->path_or_inline_dv).ValueOrDie().value();
    set_age(root_ / rel, 30 * day);
    return rel;
  };
  DeletionVectorDescriptor replaced, live, expired, orphan;
  const std::string replaced_file = vector(1, &replaced), live_file = vector(2, &live),
                    expired_file = vector(3, &expired), orphan_file = vector(4, &orphan);
  auto commit = [&](std::vector<Action> actions) {
    ASSERT_TRUE(store_->put_commit_if_absent(latest()->version().next(), serialize_commit(actions)).ok());
  };
  Add a;
  a.path = "live.parquet";
  a.size = 4;
  a.deletion_vector = replaced;
  Add g = a;
  g.path = "gone.parquet";
  g.deletion_vector = expired;
  commit({a, g});
  // live.parquet's vector replaced a day ago (its old one is still needed by version 1);
  // gone.parquet removed ten days ago with its vector.
  auto removal = [](const std::string& path, int64_t at, const DeletionVectorDescriptor& dv) {
    Remove r;
    r.path = path;
    r.deletion_timestamp = at;
    r.deletion_vector = dv;
    return r;
  };
  a.deletion_vector = live;
  commit({removal("live.parquet", now_millis() - day, replaced), a});
  commit({removal("gone.parquet", now_millis() - 10 * day, expired)});

  VacuumOptions dry;
  dry.mode = VacuumMode::kDryRun;
  auto planned = vacuum(store_, dry);
  ASSERT_TRUE(planned.ok()) << planned.status().ToString();
  std::set<std::string> paths;
  for (const auto& f : planned->candidates) paths.insert(f.path);
  EXPECT_EQ(paths, (std::set<std::string>{"gone.parquet", expired_file, orphan_file}));
  ASSERT_TRUE(vacuum(store_, {}).ok());
  for (const auto& kept : {std::string("live.parquet"), replaced_file, live_file}) {
    EXPECT_TRUE(fs::exists(root_ / kept)) << kept;
  }
  EXPECT_FALSE(fs::exists(root_ / orphan_file));
}

TEST_F(VacuumTest, IgnoredTombstonesKeepNoFileEvenStampedInTheFuture) {
  create();
  write_file("ahead.parquet", kHour);
  commit_add("ahead.parquet");
  // A writer whose clock is an hour ahead of ours removed it.
  commit_remove("ahead.parquet", now_millis() + kHour);
  VacuumOptions spark_rule;
  spark_rule.retain_millis = 0;
  spark_rule.check = RetentionCheck::kOff;
  spark_rule.mode = VacuumMode::kDryRun;
  auto kept = vacuum(store_, spark_rule);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_TRUE(kept->candidates.empty()) << "Spark's rule keeps a tombstone stamped inside the window";
  VacuumOptions forget_rule = spark_rule;
  forget_rule.mode = VacuumMode::kDelete;
  forget_rule.tombstones = TombstoneRule::kIgnore;
  auto done = vacuum(store_, forget_rule);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->deleted_files, 1);
  EXPECT_FALSE(fs::exists(root_ / "ahead.parquet"));
}

TEST_F(VacuumTest, RefusesAShortWindowUnlessForced) {
  create();
  write_file("stray.parquet", kHour);
  VacuumOptions short_window;
  short_window.retain_millis = 0;
  auto refused = vacuum(store_, short_window);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("shorter than the table's delta.deletedFileRetentionDuration (168 hours)"),
            std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  EXPECT_TRUE(fs::exists(root_ / "stray.parquet"));
  short_window.check = RetentionCheck::kOff;
  auto forced = vacuum(store_, short_window);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_FALSE(fs::exists(root_ / "stray.parquet"));
}

TEST_F(VacuumTest, UsesTheTablesRetentionProperty) {
  create({{"delta.deletedFileRetentionDuration", "interval 1 hours"}});
  write_file("stray.parquet", 2 * kHour);
  write_file("young.parquet", 0);
  auto done = vacuum(store_, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->retention_millis, kHour);
  EXPECT_FALSE(fs::exists(root_ / "stray.parquet"));
  EXPECT_TRUE(fs::exists(root_ / "young.parquet"));
}

TEST_F(VacuumTest, KeepsPartitionFoldersOfLiveFilesAndIgnoresHiddenNames) {
  Transaction txn(store_, nullptr);
  auto schema = arrow::schema({arrow::field("v", arrow::int64()), arrow::field("day", arrow::utf8())});
  txn.set_protocol(protocol_for_schema(*schema));
  txn.set_metadata(*new_table_metadata(*schema, "t", std::nullopt, {"day"}));
  ASSERT_TRUE(txn.commit({}).ok());
  write_file("day=a b/live.parquet", 30 * 24 * kHour);
  write_file("day=gone/old.parquet", 30 * 24 * kHour);
  write_file(".hidden.parquet", 30 * 24 * kHour);
  commit_add("day=a%20b/live.parquet");  // paths in the log are URI-encoded
  VacuumOptions o;
  o.retain_millis = 0;
  o.check = RetentionCheck::kOff;
  ASSERT_TRUE(vacuum(store_, o).ok());
  EXPECT_TRUE(fs::exists(root_ / "day=a b/live.parquet"));
  EXPECT_TRUE(fs::exists(root_ / ".hidden.parquet"));
  EXPECT_FALSE(fs::exists(root_ / "day=gone/old.parquet"));
  EXPECT_TRUE(fs::exists(root_ / "day=gone")) << "emptied now, deleted by the next vacuum, as in Spark";
  ASSERT_TRUE(vacuum(store_, o).ok());
  EXPECT_FALSE(fs::exists(root_ / "day=gone"));
}

TEST_F(VacuumTest, LogCleanupAfterACheckpointKeepsTheTableReadable) {
  create({{"delta.checkpointInterval", "3"},
          {"delta.logRetentionDuration", "interval 1 hour"},
          {"delta.checkpointRetentionDuration", "interval 0 seconds"}});
  for (int i = 1; i <= 5; ++i) commit_add("f" + std::to_string(i) + ".parquet");  // versions 1..5; checkpoint 3
  // Versions 0..4 are two hours old, 5 is new: the cut-off commit is 4, the log starts at checkpoint 3.
  for (int v = 0; v <= 4; ++v) set_age(store_->commit_path(DeltaVersion(v)), 2 * kHour);
  auto cleaned = cleanup_expired_logs(*store_, latest()->metadata(), now_millis());
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_EQ(cleaned->kept_from, DeltaVersion(3));
  EXPECT_EQ(cleaned->deleted_commits, 3);
  for (int v = 0; v <= 2; ++v) EXPECT_FALSE(fs::exists(store_->commit_path(DeltaVersion(v))));
  EXPECT_TRUE(fs::exists(store_->commit_path(DeltaVersion(3))));
  auto snap = Snapshot::load(*store_);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(snap->get()->version(), DeltaVersion(5));
  EXPECT_EQ(snap->get()->num_files(), 5u);
  EXPECT_TRUE(Snapshot::load(*store_, DeltaVersion(3)).ok());
  EXPECT_FALSE(Snapshot::load(*store_, DeltaVersion(2)).ok()) << "an expired version cannot be read";
}

// A "%020d.crc" name whose 20 digits pass int64 made std::stoll throw out of the cleanup; it is no
// version of this table, and the cleanup leaves it alone.
TEST_F(VacuumTest, LogCleanupSkipsALogFileWhoseVersionIsPastInt64) {
  create({{"delta.checkpointInterval", "3"},
          {"delta.logRetentionDuration", "interval 1 hour"},
          {"delta.checkpointRetentionDuration", "interval 0 seconds"}});
  for (int i = 1; i <= 5; ++i) commit_add("f" + std::to_string(i) + ".parquet");
  for (int v = 0; v <= 4; ++v) set_age(store_->commit_path(DeltaVersion(v)), 2 * kHour);
  const auto stray = store_->log_dir() / "99999999999999999999.crc";
  std::ofstream(stray) << "{}";
  auto cleaned = cleanup_expired_logs(*store_, latest()->metadata(), now_millis());
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_EQ(cleaned->kept_from, DeltaVersion(3));
  EXPECT_TRUE(fs::exists(stray));
}

TEST_F(VacuumTest, LogCleanupRunsAfterEachCheckpointUnlessDisabled) {
  create({{"delta.checkpointInterval", "2"}, {"delta.logRetentionDuration", "interval 0 seconds"},
          {"delta.checkpointRetentionDuration", "interval 0 seconds"}});
  for (int i = 1; i <= 4; ++i) {
    set_age(store_->commit_path(DeltaVersion(i - 1)), kHour);
    commit_add("f" + std::to_string(i) + ".parquet");
  }
  // The checkpoint at 4 was written with commit 4; everything before it has expired.
  EXPECT_FALSE(fs::exists(store_->commit_path(DeltaVersion(0))));
  EXPECT_FALSE(fs::exists(store_->log_dir() / "00000000000000000002.checkpoint.parquet"));
  EXPECT_TRUE(fs::exists(store_->log_dir() / "00000000000000000004.checkpoint.parquet"));
  EXPECT_EQ(latest()->num_files(), 4u);

  sluice::testing::TempDir other;
  store_ = std::make_shared<LogStore>(other.path() / "t");
  create({{"delta.checkpointInterval", "2"}, {"delta.logRetentionDuration", "interval 0 seconds"},
          {"delta.enableExpiredLogCleanup", "false"}});
  for (int i = 1; i <= 4; ++i) commit_add("f" + std::to_string(i) + ".parquet");
  EXPECT_TRUE(fs::exists(store_->commit_path(DeltaVersion(0))));
}

}  // namespace
}  // namespace sluice::delta
