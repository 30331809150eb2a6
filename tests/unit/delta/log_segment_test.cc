// The log segment of a version (listing, contiguity, checkpoint completeness, the
// _last_checkpoint hint) and the snapshot's refusal of corrupt logs, on real tables.
#include "sluice/delta/log_segment.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/writer.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"

namespace sluice::delta {
namespace {

namespace fs = std::filesystem;

class LogSegmentTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");

  // Versions 0..last, a checkpoint every `interval` versions.
  void make_table(int64_t last, int64_t interval) {
    auto schema = arrow::schema({arrow::field("v", arrow::int64())});
    Transaction create(store_, nullptr);
    create.set_protocol(protocol_for_schema(*schema));
    auto metadata = *new_table_metadata(*schema, "t", std::nullopt);
    metadata.configuration["delta.checkpointInterval"] = std::to_string(interval);
    create.set_metadata(metadata);
    ASSERT_TRUE(create.commit({}).ok());
    for (int64_t v = 1; v <= last; ++v) {
      Transaction txn(store_, *Snapshot::load(*store_));
      Add add;
      add.path = "f" + std::to_string(v);
      add.size = 1;
      add.stats = R"({"numRecords":1})";
      txn.add_file(add);
      auto result = txn.commit({});
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      ASSERT_TRUE(result->checkpoint_status.ok());
    }
  }
  fs::path log_file(const std::string& name) const { return store_->log_dir() / name; }
  static std::string commit_name(int64_t v) { return fmt::format("{:020d}.json", v); }
  std::string load_error(std::optional<DeltaVersion> v = std::nullopt) const {
    auto snap = Snapshot::load(*store_, v);
    EXPECT_FALSE(snap.ok());
    return snap.ok() ? "" : snap.status().message();
  }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(log_file(name), std::ios::binary | std::ios::trunc) << content;
  }
};

TEST(LogFileNamesTest, ParsesCommitAndCheckpointNamesAndNothingElse) {
  EXPECT_EQ(parse_commit_file_name("00000000000000000012.json"), DeltaVersion(12));
  EXPECT_FALSE(parse_commit_file_name("0000000000000000012.json"));
  EXPECT_FALSE(parse_commit_file_name("99999999999999999999.json"));  // beyond int64
  EXPECT_FALSE(parse_commit_file_name("00000000000000000012.json.tmp"));
  auto single = parse_checkpoint_file_name("00000000000000000010.checkpoint.parquet");
  ASSERT_TRUE(single);
  EXPECT_EQ(single->first, DeltaVersion(10));
  EXPECT_EQ(single->second.parts, 1);
  auto multi = parse_checkpoint_file_name("00000000000000000010.checkpoint.0000000002.0000000003.parquet");
  ASSERT_TRUE(multi);
  EXPECT_EQ(multi->second.part, 2);
  EXPECT_EQ(multi->second.parts, 3);
  EXPECT_FALSE(parse_checkpoint_file_name("00000000000000000010.checkpoint.0000000004.0000000003.parquet"));
  EXPECT_FALSE(parse_checkpoint_file_name("00000000000000000010.checkpoint.9999999999.9999999999.parquet"));
  EXPECT_FALSE(parse_checkpoint_file_name("00000000000000000010.checkpoint.0000000000.0000000003.parquet"));
}

TEST_F(LogSegmentTest, SegmentStartsAtNewestCheckpointAndListsContiguousCommits) {
  make_table(7, 3);
  auto listing = *list_log(*store_);
  auto segment = build_log_segment(listing, "t", std::nullopt);
  ASSERT_TRUE(segment.ok()) << segment.status().ToString();
  EXPECT_EQ(segment->version, DeltaVersion(7));
  ASSERT_TRUE(segment->checkpoint);
  EXPECT_EQ(segment->checkpoint->version, DeltaVersion(6));
  EXPECT_EQ(segment->commits, std::vector<DeltaVersion>{DeltaVersion(7)});
  auto at4 = *build_log_segment(listing, "t", DeltaVersion(4));
  EXPECT_EQ(at4.checkpoint->version, DeltaVersion(3));
  EXPECT_EQ(at4.commits, std::vector<DeltaVersion>{DeltaVersion(4)});
}

TEST_F(LogSegmentTest, EmptyCommitFileIsRefusedNamingIt) {
  make_table(4, 100);
  write(commit_name(3), "");
  const std::string err = load_error();
  EXPECT_EQ(err.rfind((store_->log_dir() / commit_name(3)).string() +
                          ": empty (0-byte) commit file (no actions): the commit is lost or corrupt",
                      0),
            0u)
      << err;
  // Time travel to before it still works; to it or after does not.
  EXPECT_TRUE(Snapshot::load(*store_, DeltaVersion(2)).ok());
  // A snapshot advancing over it refuses too (the path a writer's commit takes).
  auto v2 = *Snapshot::load(*store_, DeltaVersion(2));
  auto advanced = v2->advance(*store_);
  ASSERT_FALSE(advanced.ok());
  EXPECT_NE(advanced.status().message().find("empty (0-byte) commit file"), std::string::npos);
}

TEST_F(LogSegmentTest, MissingCommitBetweenCheckpointsIsNamed) {
  make_table(8, 4);
  fs::remove(log_file(commit_name(6)));
  // The latest version replays from checkpoint 8; version 7 needs commit 6.
  EXPECT_TRUE(Snapshot::load(*store_).ok());
  const std::string err = load_error(DeltaVersion(7));
  EXPECT_NE(err.find("cannot reconstruct version 7: commit 6 is missing from _delta_log (expected "
                     "00000000000000000006.json)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("restore the missing file from a backup"), std::string::npos) << err;
  // Advancing an older snapshot over the gap names it the same way.
  auto v4 = *Snapshot::load(*store_, DeltaVersion(4));
  auto advanced = v4->advance(*store_, DeltaVersion(8));
  ASSERT_FALSE(advanced.ok());
  EXPECT_NE(advanced.status().message().find("commit 6 is missing"), std::string::npos);
}

TEST_F(LogSegmentTest, IncompleteMultiPartCheckpointIsSkippedAndNamedWhenItMatters) {
  make_table(5, 100);
  // A two-part checkpoint of version 4 whose second part never landed.
  auto snap4 = *Snapshot::load(*store_, DeltaVersion(4));
  ASSERT_TRUE(write_checkpoint(*store_, *snap4).ok());
  fs::rename(log_file("00000000000000000004.checkpoint.parquet"),
             log_file("00000000000000000004.checkpoint.0000000001.0000000002.parquet"));
  fs::remove(log_file("_last_checkpoint"));
  auto listing = *list_log(*store_);
  EXPECT_FALSE(newest_complete_checkpoint(listing, std::nullopt));
  auto snap = Snapshot::load(*store_);  // the JSON commits are all there
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ((*snap)->num_files(), 5u);
  for (int v = 0; v <= 4; ++v) fs::remove(log_file(commit_name(v)));
  const std::string err = load_error();
  EXPECT_NE(err.find("commit 0 is missing"), std::string::npos) << err;
  EXPECT_NE(err.find("checkpoint 4 is incomplete: part(s) 2 of 2 are missing"), std::string::npos)
      << err;
}

TEST_F(LogSegmentTest, LastCheckpointBeyondTheNewestFileMeansLostCommits) {
  make_table(6, 3);
  fs::remove(log_file(commit_name(6)));
  fs::remove(log_file("00000000000000000006.checkpoint.parquet"));
  const std::string err = load_error();
  EXPECT_NE(err.find("_delta_log/_last_checkpoint names version 6 but the newest file in "
                     "_delta_log is version 5: the commits (and checkpoint) after version 5 are "
                     "missing"),
            std::string::npos)
      << err;
}

TEST_F(LogSegmentTest, CorruptCheckpointIsRefusedWithWhatToDo) {
  make_table(5, 4);
  write("00000000000000000004.checkpoint.parquet", "PAR1 this is not parquet");
  std::string err = load_error();
  EXPECT_NE(err.find("00000000000000000004.checkpoint.parquet"), std::string::npos) << err;
  EXPECT_NE(err.find("The checkpoint of version 4 is corrupt: delete "
                     "00000000000000000004.checkpoint.parquet from _delta_log and sluice replays "
                     "the JSON commits"),
            std::string::npos)
      << err;
  fs::remove(log_file(commit_name(1)));
  err = load_error();
  EXPECT_NE(err.find("restore it from a backup"), std::string::npos) << err;
}

TEST_F(LogSegmentTest, CheckpointWithoutProtocolIsRefused) {
  make_table(5, 4);
  // A well-formed Parquet checkpoint that holds one add and nothing else.
  const auto& schema = checkpoint_schema();
  arrow::ArrayVector columns;
  for (const auto& field : schema->fields()) {
    std::unique_ptr<arrow::ArrayBuilder> b;
    ASSERT_TRUE(arrow::MakeBuilder(arrow::default_memory_pool(), field->type(), &b).ok());
    nlohmann::json cell;
    if (field->name() == "add") cell = {{"path", "f1"}, {"size", 1}, {"dataChange", false}};
    ASSERT_TRUE(append_json(*b, cell).ok());
    columns.push_back(*b->Finish());
  }
  auto table = arrow::Table::Make(schema, columns);
  auto sink = *arrow::io::FileOutputStream::Open(
      log_file("00000000000000000004.checkpoint.parquet").string());
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), sink, 1024).ok());
  ASSERT_TRUE(sink->Close().ok());
  const std::string err = load_error();
  EXPECT_NE(err.find("checkpoint " + log_file("00000000000000000004.checkpoint.parquet").string() +
                     " has no protocol action. The checkpoint of version 4 is corrupt"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace sluice::delta
