// DELETE / UPDATE / MERGE on a local table through run_sql_command, the conflict rules of
// read-then-write transactions (Delta's ConflictChecker), and the command parser's errors.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "../temp_dir.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/dml/statement_runner.h"
#include "sluice/sql/parser.h"

namespace sluice::dml {
namespace {

// Only delta.`<path>` names.
class PathsOnly : public TableCatalog {
 public:
  arrow::Result<DmlTarget> open(const std::vector<std::string>& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto t, open_delta_path(name));
    if (!t) return arrow::Status::Invalid("unknown table");
    return std::move(*t);
  }
};

class DmlTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::string path_ = (dir_.path() / "t").string();
  std::shared_ptr<delta::LogStore> store_ = std::make_shared<delta::LogStore>(dir_.path() / "t");

  // id BIGINT, part STRING, v BIGINT: one file per write.
  void write(const std::vector<int64_t>& ids, const std::string& part,
             std::vector<std::string> partition_columns = {},
             std::map<std::string, std::string> configuration = {}) {
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
    options.configuration = std::move(configuration);
    auto writer = delta::TableWriter::make(store_, snap, *schema, options).ValueOrDie();
    ASSERT_TRUE(writer->write(*batch).ok());
    auto txn = writer->finish().ValueOrDie();
    ASSERT_TRUE(txn.commit({}).ok());
  }

  arrow::Result<CommandResult> run(const std::string& statement) {
    std::string text = statement;
    for (size_t at; (at = text.find("$T")) != std::string::npos;) {
      text.replace(at, 2, "delta.`" + path_ + "`");
    }
    sql::SourceFile file{"<statement>", text};
    PathsOnly catalog;
    return run_sql_command(file, catalog);
  }

  // (id, v) pairs of the latest version, sorted.
  std::vector<std::pair<int64_t, int64_t>> rows() {
    auto snap = delta::Snapshot::load(*store_).ValueOrDie();
    auto table = delta::scan_table(*store_, *snap).ValueOrDie()->CombineChunksToBatch().ValueOrDie();
    auto id = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("id"));
    auto v = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("v"));
    std::vector<std::pair<int64_t, int64_t>> out;
    for (int64_t i = 0; i < table->num_rows(); ++i) out.emplace_back(id->Value(i), v->IsNull(i) ? -1 : v->Value(i));
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string metric(const CommandResult& r, const char* name) {
    return r.dml->metrics.value(name, std::string("<absent>"));
  }
};

using Rows = std::vector<std::pair<int64_t, int64_t>>;

TEST_F(DmlTest, DeleteRewritesOnlyTheFilesHoldingMatchingRows) {
  write({1, 2, 3}, "a");
  write({10, 11}, "b");  // stats (id >= 10) rule this file out
  auto r = run("DELETE FROM $T WHERE id = 2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dml->operation, "DELETE");
  EXPECT_EQ(metric(*r, "numDeletedRows"), "1");
  EXPECT_EQ(metric(*r, "numCopiedRows"), "2");
  EXPECT_EQ(metric(*r, "numRemovedFiles"), "1");
  EXPECT_EQ(metric(*r, "numAddedFiles"), "1");
  EXPECT_EQ(rows(), (Rows{{1, 10}, {3, 30}, {10, 100}, {11, 110}}));
}

TEST_F(DmlTest, DeleteOnPartitionColumnsRemovesWholeFilesWithoutReadingThem) {
  write({1, 2}, "a", {"part"});
  write({3, 4}, "b");
  auto r = run("DELETE FROM $T WHERE part = 'b'");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(metric(*r, "numDeletedRows"), "2");  // from the file's stats
  EXPECT_EQ(metric(*r, "numCopiedRows"), "0");
  EXPECT_EQ(metric(*r, "numAddedFiles"), "0");
  EXPECT_EQ(metric(*r, "numRemovedFiles"), "1");
  EXPECT_EQ(rows(), (Rows{{1, 10}, {2, 20}}));
}

TEST_F(DmlTest, UpdateChangesMatchingRowsAndCopiesTheRest) {
  write({1, 2, 3}, "a");
  auto r = run("UPDATE $T AS t SET v = t.v + 1, id = id * 100 WHERE v >= 20");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(metric(*r, "numUpdatedRows"), "2");
  EXPECT_EQ(metric(*r, "numCopiedRows"), "1");
  EXPECT_EQ(rows(), (Rows{{1, 10}, {200, 21}, {300, 31}}));
}

TEST_F(DmlTest, MergeAppliesTheFirstMatchingClauseOfEachKind) {
  write({1, 2, 3, 4}, "a");
  auto r = run(
      "MERGE INTO $T t USING (VALUES (1, 0), (2, 5), (9, 90)) AS s(id, v) ON t.id = s.id "
      "WHEN MATCHED AND s.v = 0 THEN DELETE "
      "WHEN MATCHED THEN UPDATE SET v = s.v "
      "WHEN NOT MATCHED THEN INSERT (id, v, part) VALUES (s.id, s.v, 'new') "
      "WHEN NOT MATCHED BY SOURCE AND t.id = 4 THEN UPDATE SET v = -1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dml->operation, "MERGE");
  EXPECT_EQ(metric(*r, "numSourceRows"), "3");
  EXPECT_EQ(metric(*r, "numTargetRowsMatchedDeleted"), "1");
  EXPECT_EQ(metric(*r, "numTargetRowsMatchedUpdated"), "1");
  EXPECT_EQ(metric(*r, "numTargetRowsNotMatchedBySourceUpdated"), "1");
  EXPECT_EQ(metric(*r, "numTargetRowsInserted"), "1");
  EXPECT_EQ(metric(*r, "numTargetRowsCopied"), "1");
  EXPECT_EQ(rows(), (Rows{{2, 5}, {3, 30}, {4, -1}, {9, 90}}));
}

TEST_F(DmlTest, MergeWithTwoSourceRowsForOneTargetRowIsSparksError) {
  write({1, 2}, "a");
  auto r = run("MERGE INTO $T t USING (VALUES (1, 5), (1, 6)) AS s(id, v) ON t.id = s.id "
               "WHEN MATCHED THEN UPDATE SET v = s.v");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE"),
            std::string::npos)
      << r.status().message();
  // An unconditional DELETE as the only MATCHED clause is not ambiguous.
  auto d = run("MERGE INTO $T t USING (VALUES (1, 5), (1, 6)) AS s(id, v) ON t.id = s.id "
               "WHEN MATCHED THEN DELETE");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(rows(), (Rows{{2, 20}}));
}

TEST_F(DmlTest, ErrorsPointAtLineAndColumn) {
  write({1}, "a");
  auto r = run("UPDATE $T SET nope = 1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("<statement>:1:"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("no column 'nope'"), std::string::npos) << r.status().message();
  auto typed = run("UPDATE $T SET v = 'abc' WHERE id = 1");
  ASSERT_FALSE(typed.ok());
  EXPECT_NE(typed.status().message().find("cannot assign STRING to column 'v' (BIGINT)"), std::string::npos)
      << typed.status().message();
  EXPECT_NE(typed.status().message().find("<statement>:1:"), std::string::npos) << typed.status().message();
  sql::SourceFile bad{"<statement>", "DELETE FROM t\nWHERE id = = 1"};
  auto parsed = sql::parse_command(bad);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("<statement>:2:"), std::string::npos) << parsed.status().message();
  sql::SourceFile insert{"<statement>", "INSERT INTO t VALUES (1)"};
  EXPECT_TRUE(sql::parse_command(insert).status().IsNotImplemented());
}

// Runs `race` right after the statement's first look at the table: a concurrent writer.
class RacingCatalog : public PathsOnly {
 public:
  explicit RacingCatalog(std::function<void()> race) : race_(std::move(race)) {}
  arrow::Result<DmlTarget> open(const std::vector<std::string>& name) const override {
    auto t = PathsOnly::open(name);
    if (opens_++ == 0) race_();
    return t;
  }
  int opens() const { return opens_; }

 private:
  std::function<void()> race_;
  mutable int opens_ = 0;
};

TEST_F(DmlTest, StatementThatLosesARaceRunsAgainFromTheNewVersion) {
  write({5, 6}, "a");
  RacingCatalog catalog([this] { ASSERT_TRUE(run("DELETE FROM $T WHERE id = 6").ok()); });
  sql::SourceFile file{"<statement>", "UPDATE delta.`" + path_ + "` SET v = v + 1 WHERE id >= 5"};
  auto r = run_sql_command(file, catalog);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dml->attempts, 2);
  EXPECT_EQ(catalog.opens(), 2);
  EXPECT_EQ(rows(), (Rows{{5, 51}}));
  // The losing attempt's files were deleted: every data file on disk is live or a tombstone.
  auto snap = delta::Snapshot::load(*store_).ValueOrDie();
  size_t on_disk = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path_)) {
    on_disk += e.path().extension() == ".parquet";
  }
  EXPECT_EQ(on_disk, snap->files().size() + snap->tombstones().size());
}

// ---- conflict detection ---------------------------------------------------------------------

class DmlConflictTest : public DmlTest {
 protected:
  // A transaction that read the files matching id >= 5 (as a DELETE ... WHERE id >= 5 does).
  delta::Transaction reader(delta::IsolationLevel level) {
    auto snap = delta::Snapshot::load(*store_).ValueOrDie();
    delta::Transaction txn(store_, snap);
    delta::ReadSet read;
    read.predicates = {{"id", delta::CompareOp::kGe, std::make_shared<arrow::Int64Scalar>(5)}};
    for (const auto& f : delta::select_files(*snap, read.predicates).ValueOrDie()) read.files.insert(f.path);
    read.isolation = level;
    txn.set_read_set(read);
    return txn;
  }
  static delta::CommitOptions options() {
    delta::CommitOptions o;
    o.operation = "DELETE";
    return o;
  }
};

TEST_F(DmlConflictTest, BlindAppendPassesUnderWriteSerializableButNotSerializable) {
  write({5, 6}, "a");
  auto ws = reader(delta::IsolationLevel::kWriteSerializable);
  auto s = reader(delta::IsolationLevel::kSerializable);
  write({7}, "a");  // a concurrent blind append of rows the predicate matches
  EXPECT_TRUE(ws.commit(options()).ok());
  auto r = s.commit(options());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(delta::is_commit_conflict(r.status()));
  EXPECT_NE(r.status().message().find("ConcurrentAppendException"), std::string::npos) << r.status().message();
}

TEST_F(DmlConflictTest, AppendOfFilesThePredicateExcludesNeverConflicts) {
  write({5, 6}, "a");
  auto s = reader(delta::IsolationLevel::kSerializable);
  write({1, 2}, "a");  // stats: id <= 2, outside id >= 5
  EXPECT_TRUE(s.commit(options()).ok());
}

TEST_F(DmlConflictTest, ConcurrentRewriteOfAFileThatWasReadConflicts) {
  write({5, 6}, "a");
  auto txn = reader(delta::IsolationLevel::kWriteSerializable);
  auto other = run("DELETE FROM $T WHERE id = 6");  // rewrites the file txn read
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto r = txn.commit(options());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(delta::is_commit_conflict(r.status()));
  EXPECT_NE(r.status().message().find("ConcurrentDeleteReadException"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace sluice::dml
