// Reading the change data feed: inserts and deletes derived from add/remove actions and from
// deletion-vector differences, cdc files taken instead when a commit has them, range
// resolution and its errors.
#include "sluice/delta/change_feed.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <filesystem>
#include <map>
#include <tuple>

#include "../temp_dir.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"

namespace sluice::delta {
namespace {

std::shared_ptr<arrow::RecordBatch> feed_rows(const std::shared_ptr<arrow::Schema>& schema, const std::string& rows) {
  auto array = arrow::json::ArrayFromJSONString(arrow::struct_(schema->fields()), rows).ValueOrDie();
  return arrow::RecordBatch::FromStructArray(array).ValueOrDie();
}

// (id, _change_type, _commit_version) -> count
using FeedChanges = std::map<std::tuple<int64_t, std::string, int64_t>, int>;

FeedChanges feed_changes_of(const arrow::Table& t) {
  FeedChanges out;
  auto ids = t.GetColumnByName("id");
  auto types = t.GetColumnByName(kChangeTypeColumn);
  auto versions = t.GetColumnByName(kCommitVersionColumn);
  for (int64_t i = 0; i < t.num_rows(); ++i) {
    auto id = std::static_pointer_cast<arrow::Int64Scalar>(ids->GetScalar(i).ValueOrDie())->value;
    auto type = types->GetScalar(i).ValueOrDie()->ToString();
    auto v = std::static_pointer_cast<arrow::Int64Scalar>(versions->GetScalar(i).ValueOrDie())->value;
    ++out[{id, type, v}];
  }
  return out;
}

class ChangeFeedTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");
  std::shared_ptr<arrow::Schema> schema_ =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())});

  void write(const std::string& rows, WriteMode mode = WriteMode::kAppend, bool cdf = true) {
    WriteOptions options;
    options.mode = mode;
    if (cdf) options.configuration[kEnableChangeDataFeed] = "true";
    auto snap = load_latest_if_exists(*store_).ValueOrDie();
    auto writer = TableWriter::make(store_, snap, *schema_, options).ValueOrDie();
    ASSERT_TRUE(writer->write(*feed_rows(schema_, rows)).ok());
    auto txn = writer->finish().ValueOrDie();
    ASSERT_TRUE(txn.commit({}).ok());
  }

  arrow::Result<std::shared_ptr<arrow::Table>> read(const std::string& from, const std::string& to = "") {
    return read_table_changes(*store_, "t", from, to);
  }
};

TEST_F(ChangeFeedTest, AppendsAreInsertsAndAnOverwriteDeletesTheOldRows) {
  write(R"([{"id":1,"name":"a"},{"id":2,"name":"b"}])");
  write(R"([{"id":3,"name":"c"}])");
  write(R"([{"id":4,"name":"d"}])", WriteMode::kOverwrite);
  auto feed = read("0");
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  EXPECT_EQ(feed_changes_of(**feed), (FeedChanges{{{1, "insert", 0}, 1}, {{2, "insert", 0}, 1}, {{3, "insert", 1}, 1},
                                         {{1, "delete", 2}, 1}, {{2, "delete", 2}, 1}, {{3, "delete", 2}, 1},
                                         {{4, "insert", 2}, 1}}));
  EXPECT_EQ((*feed)->schema()->field(2)->name(), kChangeTypeColumn);
  EXPECT_TRUE((*feed)->schema()->GetFieldByName(kCommitTimestampColumn)->type()->Equals(
      arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  auto middle = read("1", "1");
  ASSERT_TRUE(middle.ok()) << middle.status().ToString();
  EXPECT_EQ(feed_changes_of(**middle), (FeedChanges{{{3, "insert", 1}, 1}}));
}

TEST_F(ChangeFeedTest, CdcFilesReplaceTheCommitsAddsAndRemoves) {
  write(R"([{"id":1,"name":"a"},{"id":2,"name":"b"}])");
  // Version 1 as an UPDATE of id 2 writes it: a rewritten data file, and the change in a cdc file.
  auto cdc_schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()),
                                   arrow::field(kChangeTypeColumn, arrow::utf8())});
  auto rows = feed_rows(cdc_schema, R"([{"id":2,"name":"b","_change_type":"update_preimage"},
                                    {"id":2,"name":"B","_change_type":"update_postimage"}])");
  std::filesystem::create_directories(dir_.path() / "t" / "_change_data");
  auto out = arrow::io::FileOutputStream::Open((dir_.path() / "t" / "_change_data" / "c.parquet").string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*arrow::Table::FromRecordBatches({rows}).ValueOrDie(),
                                         arrow::default_memory_pool(), out).ok());
  ASSERT_TRUE(out->Close().ok());
  auto v0 = Snapshot::load(*store_).ValueOrDie();
  const std::string old_file = v0->files()[0].path;
  std::string commit = R"({"commitInfo":{"operation":"UPDATE"}})" "\n"
                       R"({"remove":{"path":")" + old_file + R"(","dataChange":true,"deletionTimestamp":1}})" "\n"
                       R"({"add":{"path":")" + old_file + R"(","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true}})" "\n"
                       R"({"cdc":{"path":"_change_data/c.parquet","partitionValues":{},"size":1,"dataChange":false}})" "\n";
  ASSERT_TRUE(store_->put_commit_if_absent(DeltaVersion(1), commit).ok());
  auto feed = read("1");
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  EXPECT_EQ(feed_changes_of(**feed), (FeedChanges{{{2, "update_preimage", 1}, 1}, {{2, "update_postimage", 1}, 1}}));
}

TEST_F(ChangeFeedTest, VersionsBeforeTheFeedWasEnabledAreRefused) {
  write(R"([{"id":1,"name":"a"}])", WriteMode::kAppend, /*cdf=*/false);
  auto feed = read("0");
  ASSERT_FALSE(feed.ok());
  EXPECT_NE(feed.status().message().find("table_changes of t for versions [0, 0]: the change data feed was not "
                                         "enabled at version 0"),
            std::string::npos)
      << feed.status().message();
}

TEST_F(ChangeFeedTest, BadRangesAreRefusedNamingTableAndVersions) {
  write(R"([{"id":1,"name":"a"}])");
  write(R"([{"id":2,"name":"b"}])");
  auto backwards = read("1", "0");
  ASSERT_FALSE(backwards.ok());
  EXPECT_NE(backwards.status().message().find("table_changes of t: start version 1 is after end version 0"),
            std::string::npos)
      << backwards.status().message();
  auto future = read("7");
  ASSERT_FALSE(future.ok());
  EXPECT_NE(future.status().message().find("start version 7 is after the latest version 1"), std::string::npos)
      << future.status().message();
  auto capped = read("0", "9");  // an end past the latest reads up to the latest, as Spark
  ASSERT_TRUE(capped.ok()) << capped.status().ToString();
  EXPECT_EQ((*capped)->num_rows(), 2);
}

// A stream resolves its start against the snapshot it read: commits landing after it are not
// in the range, so the range never passes the version the flow records as consumed.
TEST_F(ChangeFeedTest, RangesResolveAgainstTheCallersSnapshotVersion) {
  write(R"([{"id":1,"name":"a"}])");
  write(R"([{"id":2,"name":"b"}])");
  write(R"([{"id":3,"name":"c"}])");
  auto start = parse_change_feed_bound("1970-01-02").ValueOrDie();
  auto to_log = resolve_change_feed_range(*store_, "t", start, std::nullopt, StartAfterLatest::kNextVersion);
  ASSERT_TRUE(to_log.ok()) << to_log.status().ToString();
  EXPECT_EQ(to_log->to.value(), 2);
  auto as_of = resolve_change_feed_range(*store_, "t", start, std::nullopt, StartAfterLatest::kNextVersion,
                                         DeltaVersion(0));
  ASSERT_TRUE(as_of.ok()) << as_of.status().ToString();
  EXPECT_EQ(as_of->from.value(), 0);
  EXPECT_EQ(as_of->to.value(), 0);
  auto future = parse_change_feed_bound("2999-01-01").ValueOrDie();
  auto next = resolve_change_feed_range(*store_, "t", future, std::nullopt, StartAfterLatest::kNextVersion,
                                        DeltaVersion(1));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->from.value(), 2);  // the snapshot's next version, not the log's
  EXPECT_EQ(next->to.value(), 1);
}

TEST_F(ChangeFeedTest, MissingCommitsAreRefused) {
  write(R"([{"id":1,"name":"a"}])");
  write(R"([{"id":2,"name":"b"}])");
  write(R"([{"id":3,"name":"c"}])");
  // Log cleanup: a checkpoint at version 1, then commit 0 gone.
  ASSERT_TRUE(write_checkpoint(*store_, *Snapshot::load(*store_, DeltaVersion(1)).ValueOrDie()).ok());
  std::filesystem::remove(store_->commit_path(DeltaVersion(0)));
  auto feed = read("0");
  ASSERT_FALSE(feed.ok());
  EXPECT_NE(feed.status().message().find("version 0 is no longer in the log"), std::string::npos)
      << feed.status().message();
  auto later = read("1");
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ((*later)->num_rows(), 2);
}

// A commit without cdc files that gives a file another deletion vector (remove of the file with
// its old vector, add with the new one: Spark's DML with vectors and no change data, RESTORE).
void commit_new_vector(LogStore& store, DeltaVersion v, const Add& before, const std::vector<uint64_t>& marked,
                       Add* after) {
  *after = before;
  after->deletion_vector.reset();
  if (!marked.empty()) after->deletion_vector = write_deletion_vector(store, marked).ValueOrDie();
  Remove r;
  r.path = before.path;
  r.deletion_timestamp = 1;
  r.extended_file_metadata = true;
  r.partition_values = before.partition_values;
  r.size = before.size;
  r.deletion_vector = before.deletion_vector;
  CommitInfo info;
  info.value["operation"] = "RESTORE";
  ASSERT_TRUE(store.put_commit_if_absent(v, serialize_commit({info, r, *after})).ok());
}

// The oracle: the rows of the snapshot at v-1 missing at v are deleted, the new ones inserted.
FeedChanges snapshot_difference(const LogStore& store, int64_t v) {
  FeedChanges before, after, out;
  for (auto [version, into] : {std::pair{v - 1, &before}, std::pair{v, &after}}) {
    auto table = scan_table(store, *Snapshot::load(store, DeltaVersion(version)).ValueOrDie()).ValueOrDie();
    auto ids = table->GetColumnByName("id");
    for (int64_t i = 0; i < table->num_rows(); ++i) {
      ++(*into)[{std::static_pointer_cast<arrow::Int64Scalar>(ids->GetScalar(i).ValueOrDie())->value, "", v}];
    }
  }
  for (const auto& [key, n] : before) {
    if (!after.count(key)) out[{std::get<0>(key), "delete", v}] = n;
  }
  for (const auto& [key, n] : after) {
    if (!before.count(key)) out[{std::get<0>(key), "insert", v}] = n;
  }
  return out;
}

TEST_F(ChangeFeedTest, ANewDeletionVectorWithoutCdcFilesYieldsTheVectorsDifference) {
  write(R"([{"id":0,"name":"a"},{"id":1,"name":"b"},{"id":2,"name":"c"},{"id":3,"name":"d"},{"id":4,"name":"e"}])");
  write(R"([{"id":5,"name":"f"}])");
  const Add file = Snapshot::load(*store_, DeltaVersion(0)).ValueOrDie()->files()[0];
  Add marked_1_3, marked_3_4, unmarked;
  commit_new_vector(*store_, DeltaVersion(2), file, {1, 3}, &marked_1_3);        // a DELETE: no vector before
  commit_new_vector(*store_, DeltaVersion(3), marked_1_3, {3, 4}, &marked_3_4);  // 4 deleted, 1 restored
  commit_new_vector(*store_, DeltaVersion(4), marked_3_4, {}, &unmarked);        // RESTORE to version 1
  auto feed = read("2");
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  EXPECT_EQ(feed_changes_of(**feed), (FeedChanges{{{1, "delete", 2}, 1}, {{3, "delete", 2}, 1},
                                                  {{4, "delete", 3}, 1}, {{1, "insert", 3}, 1},
                                                  {{3, "insert", 4}, 1}, {{4, "insert", 4}, 1}}));
  for (int64_t v = 2; v <= 4; ++v) {
    auto one = read(std::to_string(v), std::to_string(v));
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    EXPECT_EQ(feed_changes_of(**one), snapshot_difference(*store_, v)) << "version " << v;
  }
  // The rows keep their columns: the name of the row restored at version 3 is read from the file.
  auto v3 = read("3", "3").ValueOrDie();
  auto names = v3->GetColumnByName("name");
  auto types = v3->GetColumnByName(kChangeTypeColumn);
  for (int64_t i = 0; i < v3->num_rows(); ++i) {
    EXPECT_EQ(names->GetScalar(i).ValueOrDie()->ToString(),
              types->GetScalar(i).ValueOrDie()->ToString() == "insert" ? "b" : "e");
  }
}

TEST(ChangeFeedBoundTest, WholeNumbersAreVersionsAndTextIsATimestamp) {
  auto v = parse_change_feed_bound("12");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 12);
  auto ts = parse_change_feed_bound("2024-05-01 10:00:00");
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  EXPECT_EQ(ts->timestamp_micros, 1714557600000000);
  auto zoned = parse_change_feed_bound("2024-05-01T12:00:00+02:00");
  ASSERT_TRUE(zoned.ok()) << zoned.status().ToString();
  EXPECT_EQ(zoned->timestamp_micros, 1714557600000000);
  auto bad = parse_change_feed_bound("yesterday");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("neither a version"), std::string::npos);
}

}  // namespace
}  // namespace sluice::delta
