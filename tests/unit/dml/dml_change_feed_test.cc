// DELETE / UPDATE / MERGE on a table with delta.enableChangeDataFeed: the cdc actions and
// _change_data rows each commit carries, the dataChange flags, and the protocol it needs.
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "../temp_dir.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/dml/statement_runner.h"

namespace sluice::dml {
namespace {

class FeedPaths : public TableCatalog {
 public:
  arrow::Result<DmlTarget> open(const std::vector<std::string>& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto t, open_delta_path(name));
    if (!t) return arrow::Status::Invalid("unknown table");
    return std::move(*t);
  }
};

// (id, v, _change_type) of one change row.
using Change = std::tuple<int64_t, int64_t, std::string>;
using Changes = std::vector<Change>;

class DmlChangeFeedTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::filesystem::path root_ = dir_.path() / "t";
  std::shared_ptr<delta::LogStore> store_ = std::make_shared<delta::LogStore>(root_);

  // id BIGINT, part STRING, v BIGINT (v = id * 10): one file per write, feed on.
  void write(const std::vector<int64_t>& ids, const std::string& part, std::vector<std::string> partition_columns = {},
             bool legacy_protocol = false, bool deletion_vectors = false) {
    arrow::Int64Builder id, v;
    arrow::StringBuilder p;
    for (int64_t i : ids) {
      ASSERT_TRUE(id.Append(i).ok());
      ASSERT_TRUE(v.Append(i * 10).ok());
      ASSERT_TRUE(p.Append(part).ok());
    }
    auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("part", arrow::utf8()),
                                 arrow::field("v", arrow::int64())});
    auto batch = arrow::RecordBatch::Make(schema, static_cast<int64_t>(ids.size()),
                                          {*id.Finish(), *p.Finish(), *v.Finish()});
    auto snap = delta::load_latest_if_exists(*store_).ValueOrDie();
    delta::WriteOptions options;
    options.partition_columns = std::move(partition_columns);
    options.configuration = {{"delta.enableChangeDataFeed", "true"}};
    if (deletion_vectors) options.configuration["delta.enableDeletionVectors"] = "true";
    auto writer = delta::TableWriter::make(store_, snap, *schema, options).ValueOrDie();
    ASSERT_TRUE(writer->write(*batch).ok());
    auto txn = writer->finish().ValueOrDie();
    // A table an older sluice created: the property without the writer version it needs.
    if (legacy_protocol) txn.set_protocol(delta::Protocol{});
    ASSERT_TRUE(txn.commit({}).ok());
  }

  arrow::Result<CommandResult> run(const std::string& statement) {
    std::string text = statement;
    for (size_t at; (at = text.find("$T")) != std::string::npos;) text.replace(at, 2, "delta.`" + root_.string() + "`");
    sql::SourceFile file{"<statement>", text};
    FeedPaths catalog;
    return run_sql_command(file, catalog);
  }

  std::vector<delta::Action> latest_commit() {
    auto v = store_->latest_version().ValueOrDie();
    auto text = store_->read_commit(*v).ValueOrDie();
    return delta::parse_commit(text, "commit").ValueOrDie();
  }

  // The change rows the latest commit's cdc files hold, sorted.
  Changes changes() {
    Changes out;
    for (const auto& action : latest_commit()) {
      const auto* other = std::get_if<delta::OtherAction>(&action);
      if (!other || other->kind != "cdc") continue;
      EXPECT_EQ(other->value["dataChange"], false);
      auto file = arrow::io::ReadableFile::Open((root_ / other->value["path"].get<std::string>()).string()).ValueOrDie();
      auto reader = parquet::arrow::OpenFile(file, arrow::default_memory_pool()).ValueOrDie();
      auto table = reader->ReadTable().ValueOrDie();
      auto batch = table->CombineChunksToBatch().ValueOrDie();
      auto id = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("id"));
      auto v = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("v"));
      auto kind = std::static_pointer_cast<arrow::StringArray>(batch->GetColumnByName("_change_type"));
      for (int64_t i = 0; i < batch->num_rows(); ++i) out.emplace_back(id->Value(i), v->Value(i), kind->GetString(i));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // dataChange of every add and remove of the latest commit.
  std::vector<bool> data_changes() {
    std::vector<bool> out;
    for (const auto& action : latest_commit()) {
      if (const auto* a = std::get_if<delta::Add>(&action)) out.push_back(a->data_change);
      if (const auto* r = std::get_if<delta::Remove>(&action)) out.push_back(r->data_change);
    }
    return out;
  }
};

TEST_F(DmlChangeFeedTest, DeleteRecordsTheDeletedRows) {
  write({1, 2, 3}, "a");
  auto r = run("DELETE FROM $T WHERE id >= 2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), (Changes{{2, 20, "delete"}, {3, 30, "delete"}}));
  EXPECT_EQ(r->dml->metrics.value("numAddedChangeFiles", ""), "1");
  EXPECT_NE(r->dml->metrics.value("changeFileBytes", "0"), "0");
  EXPECT_EQ(data_changes(), (std::vector<bool>{true, true}));  // the remove and the copy's add
  auto snap = delta::Snapshot::load(*store_).ValueOrDie();
  EXPECT_EQ(snap->protocol().min_writer_version, 4);
}

TEST_F(DmlChangeFeedTest, DeleteWithDeletionVectorsStillRecordsTheDeletedRows) {
  // Both features on: the rows are marked in a vector (the file stays) and the deleted rows go
  // to _change_data/ too (the merge of the two branches first skipped them).
  write({1, 2, 3}, "a", {}, false, /*deletion_vectors=*/true);
  auto r = run("DELETE FROM $T WHERE id >= 2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), (Changes{{2, 20, "delete"}, {3, 30, "delete"}}));
  bool vector_added = false;
  for (const auto& action : latest_commit()) {
    if (const auto* a = std::get_if<delta::Add>(&action)) vector_added |= a->deletion_vector.has_value();
  }
  EXPECT_TRUE(vector_added);
  r = run("UPDATE $T SET v = v + 1 WHERE id = 1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), (Changes{{1, 10, "update_preimage"}, {1, 11, "update_postimage"}}));
}

TEST_F(DmlChangeFeedTest, DeleteOfWholePartitionsWritesNoChangeFile) {
  write({1, 2}, "a", {"part"});
  write({3}, "b");
  auto r = run("DELETE FROM $T WHERE part = 'a'");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), Changes{});  // readers derive the deletes from the remove (Spark's way)
  EXPECT_EQ(r->dml->metrics.value("numAddedChangeFiles", ""), "0");
  EXPECT_EQ(data_changes(), (std::vector<bool>{true}));
}

TEST_F(DmlChangeFeedTest, UpdateRecordsPreAndPostImages) {
  write({1, 2}, "a", {"part"});
  auto r = run("UPDATE $T SET v = v + 1 WHERE id = 2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), (Changes{{2, 20, "update_preimage"}, {2, 21, "update_postimage"}}));
  for (const auto& action : latest_commit()) {
    if (const auto* other = std::get_if<delta::OtherAction>(&action); other && other->kind == "cdc") {
      EXPECT_EQ(other->value["partitionValues"]["part"], "a");
      EXPECT_EQ(other->value["path"].get<std::string>().rfind("_change_data/part=a/", 0), 0u);
    }
  }
}

TEST_F(DmlChangeFeedTest, MergeRecordsEveryClauseKind) {
  write({1, 2, 3, 4}, "a");
  auto r = run(
      "MERGE INTO $T t USING (VALUES (1, 0), (2, 5), (9, 90)) AS s(id, v) ON t.id = s.id "
      "WHEN MATCHED AND s.v = 0 THEN DELETE "
      "WHEN MATCHED THEN UPDATE SET v = s.v "
      "WHEN NOT MATCHED THEN INSERT (id, v, part) VALUES (s.id, s.v, 'new') "
      "WHEN NOT MATCHED BY SOURCE AND t.id = 4 THEN UPDATE SET v = -1 "
      "WHEN NOT MATCHED BY SOURCE AND t.id = 3 THEN DELETE");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), (Changes{{1, 10, "delete"},
                                {2, 5, "update_postimage"},
                                {2, 20, "update_preimage"},
                                {3, 30, "delete"},
                                {4, -1, "update_postimage"},
                                {4, 40, "update_preimage"},
                                {9, 90, "insert"}}));
  EXPECT_EQ(r->dml->metrics.value("numTargetChangeFilesAdded", ""), "1");
}

TEST_F(DmlChangeFeedTest, MergeDeleteOfATargetRowMatchedTwiceRecordsItOnce) {
  write({1, 2}, "a");
  auto r = run("MERGE INTO $T t USING (VALUES (1, 5), (1, 6)) AS s(id, v) ON t.id = s.id "
               "WHEN MATCHED THEN DELETE");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), (Changes{{1, 10, "delete"}}));
}

TEST_F(DmlChangeFeedTest, MergeThatOnlyInsertsIsAnAppendWithoutChangeFiles) {
  write({1}, "a");
  auto r = run("MERGE INTO $T t USING (VALUES (7, 70)) AS s(id, v) ON t.id = s.id "
               "WHEN NOT MATCHED THEN INSERT (id, v, part) VALUES (s.id, s.v, 'a')");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), Changes{});
  EXPECT_EQ(data_changes(), (std::vector<bool>{true}));
  EXPECT_TRUE(std::filesystem::is_empty(root_ / "_change_data") || !std::filesystem::exists(root_ / "_change_data"));
}

TEST_F(DmlChangeFeedTest, MergeThatRewritesWithoutChangingMarksNoDataChange) {
  write({1, 2}, "a");
  // Row 1 matches, but no clause takes it: its file is rewritten with the same rows.
  auto r = run("MERGE INTO $T t USING (VALUES (1, 5)) AS s(id, v) ON t.id = s.id "
               "WHEN MATCHED AND s.v = 0 THEN DELETE");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(changes(), Changes{});
  EXPECT_EQ(data_changes(), (std::vector<bool>{false, false}));
}

TEST_F(DmlChangeFeedTest, LegacyProtocolIsRaisedByTheFirstStatement) {
  write({1, 2}, "a", {}, /*legacy_protocol=*/true);
  ASSERT_EQ(delta::Snapshot::load(*store_).ValueOrDie()->protocol().min_writer_version, 2);
  auto r = run("DELETE FROM $T WHERE id = 1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(delta::Snapshot::load(*store_).ValueOrDie()->protocol().min_writer_version, 4);
  EXPECT_EQ(changes(), (Changes{{1, 10, "delete"}}));
}

}  // namespace
}  // namespace sluice::dml
