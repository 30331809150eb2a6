// Writing tables: partitioning, schema evolution, overwrite, checkpoints, scans with
// pruning, and incremental reads.
#include "sluice/delta/table_writer.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"

namespace sluice::delta {
namespace {

std::shared_ptr<arrow::RecordBatch> batch(const std::shared_ptr<arrow::Schema>& schema,
                                          const std::string& rows_json) {
  auto type = arrow::struct_(schema->fields());
  auto array = arrow::json::ArrayFromJSONString(type, rows_json).ValueOrDie();
  return arrow::RecordBatch::FromStructArray(array).ValueOrDie();
}

class TableWriterTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");
  std::shared_ptr<arrow::Schema> schema_ = arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("city", arrow::utf8()),
       arrow::field("amount", arrow::float64())});

  arrow::Result<CommitResult> write(const arrow::RecordBatch& b, WriteOptions options = {}) {
    ARROW_ASSIGN_OR_RAISE(auto snap, load_latest_if_exists(*store_));
    ARROW_ASSIGN_OR_RAISE(auto writer, TableWriter::make(store_, snap, *b.schema(), options));
    ARROW_RETURN_NOT_OK(writer->write(b));
    ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
    return txn.commit({});
  }

  std::shared_ptr<arrow::Table> read(std::optional<int64_t> version = std::nullopt,
                                     ScanOptions options = {}) {
    auto snap = Snapshot::load(*store_, version ? std::optional<DeltaVersion>(DeltaVersion(*version))
                                                : std::nullopt);
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    auto table = scan_table(*store_, **snap, options);
    EXPECT_TRUE(table.ok()) << table.status().ToString();
    return *table;
  }

  static std::vector<int64_t> ids(const arrow::Table& t) {
    std::vector<int64_t> out;
    auto col = t.GetColumnByName("id");
    for (int64_t i = 0; i < col->length(); ++i) {
      auto s = col->GetScalar(i).ValueOrDie();
      out.push_back(s->is_valid ? static_cast<const arrow::Int64Scalar&>(*s).value : -1);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(TableWriterTest, PartitionedWriteUsesHiveDirectoriesAndNullPartition) {
  WriteOptions options;
  options.partition_columns = {"city"};
  auto result = write(*batch(schema_, R"([{"id":1,"city":"a/b","amount":1.5},
      {"id":2,"city":null,"amount":2.5},{"id":3,"city":"a/b","amount":null}])"), options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto files = result->snapshot->files();
  ASSERT_EQ(files.size(), 2u);
  std::set<std::string> dirs;
  for (const auto& f : files) {
    dirs.insert(f.path.substr(0, f.path.find("/part-")));
    auto value = f.partition_values.at("city");
    if (value) {
      EXPECT_EQ(*value, "a/b");
    }
  }
  // '/' escaped by Hive rules (%2F), then the '%' URI-encoded in the action path.
  EXPECT_EQ(dirs, (std::set<std::string>{"city=a%252Fb", "city=__HIVE_DEFAULT_PARTITION__"}));
  EXPECT_TRUE(std::filesystem::exists(store_->table_root() / "city=a%2Fb"));
  auto table = read();
  EXPECT_EQ(ids(*table), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(table->schema()->Equals(*schema_));
}

TEST_F(TableWriterTest, PartitionPruningAndStatsSkipping) {
  WriteOptions options;
  options.partition_columns = {"city"};
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":1,"city":"x","amount":1},{"id":2,"city":"y","amount":2}])"),
                    options).ok());
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":10,"city":"x","amount":10},{"id":20,"city":"x","amount":20}])"))
                  .ok());
  auto snap = *Snapshot::load(*store_);
  auto by_city = select_files(*snap, {{"city", CompareOp::kEq, arrow::MakeScalar("y")}});
  ASSERT_TRUE(by_city.ok());
  EXPECT_EQ(by_city->size(), 1u);
  auto by_id = select_files(*snap, {{"id", CompareOp::kGe, arrow::MakeScalar(int64_t{15})}});
  ASSERT_TRUE(by_id.ok());
  ASSERT_EQ(by_id->size(), 1u);  // only the file with ids 10..20
  auto none = select_files(*snap, {{"id", CompareOp::kGt, arrow::MakeScalar(int64_t{100})}});
  EXPECT_TRUE(none->empty());
  ScanOptions scan;
  scan.predicates = {{"id", CompareOp::kGe, arrow::MakeScalar(int64_t{15})}};
  EXPECT_EQ(ids(*read(std::nullopt, scan)), (std::vector<int64_t>{20}));
}

TEST_F(TableWriterTest, MergeSchemaAddsNullableColumnsAndOldRowsReadNull) {
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":1,"city":"a","amount":1}])")).ok());
  auto wider = schema_->AddField(3, arrow::field("note", arrow::utf8())).ValueOrDie();
  auto b = batch(wider, R"([{"id":2,"city":"b","amount":2,"note":"new"}])");
  auto strict = write(*b);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find(
                "column 'note' (string) is not in the table; allow schema evolution"),
            std::string::npos)
      << strict.status().message();
  WriteOptions merge;
  merge.schema_mode = SchemaMode::kMerge;
  ASSERT_TRUE(write(*b, merge).ok());
  auto table = read();
  EXPECT_TRUE(table->schema()->Equals(*wider));
  EXPECT_EQ(table->GetColumnByName("note")->null_count(), 1);
}

TEST_F(TableWriterTest, IncompatibleTypesAreRefusedNamingColumnAndTypes) {
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":1,"city":"a","amount":1}])")).ok());
  auto as_string = arrow::schema({arrow::field("id", arrow::utf8())});
  auto r = write(*batch(as_string, R"([{"id":"x"}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "column 'id' has type long in the table but string in the data"),
            std::string::npos)
      << r.status().message();
  // Widening int32 data into a long column is a plain cast.
  auto as_int = arrow::schema({arrow::field("id", arrow::int32())});
  ASSERT_TRUE(write(*batch(as_int, R"([{"id":7}])")).ok());
  EXPECT_EQ(ids(*read()), (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(Snapshot::load(*store_).ValueOrDie()->version(), DeltaVersion(1));
}

TEST_F(TableWriterTest, OverwriteRemovesOldFilesAndTimeTravelStillSeesThem) {
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":1,"city":"a","amount":1}])")).ok());
  WriteOptions overwrite;
  overwrite.mode = WriteMode::kOverwrite;
  auto r = write(*batch(schema_, R"([{"id":2,"city":"b","amount":2}])"), overwrite);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ids(*read()), (std::vector<int64_t>{2}));
  EXPECT_EQ(ids(*read(0)), (std::vector<int64_t>{1}));
  EXPECT_EQ(r->snapshot->tombstones().size(), 1u);
}

TEST_F(TableWriterTest, CheckpointsEveryIntervalAndReplayFromThem) {
  WriteOptions options;
  options.configuration["delta.checkpointInterval"] = "5";
  for (int i = 0; i < 12; ++i) {
    auto b = batch(schema_, "[{\"id\":" + std::to_string(i) + ",\"city\":\"c\",\"amount\":1}]");
    auto r = write(*b, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->checkpoint_status.ok()) << r->checkpoint_status.ToString();
  }
  EXPECT_TRUE(std::filesystem::exists(store_->log_dir() / "00000000000000000005.checkpoint.parquet"));
  EXPECT_TRUE(std::filesystem::exists(store_->log_dir() / "00000000000000000010.checkpoint.parquet"));
  std::ifstream last(store_->log_dir() / "_last_checkpoint");
  std::string text((std::istreambuf_iterator<char>(last)), {});
  EXPECT_NE(text.find("\"version\":10"), std::string::npos) << text;
  // With the JSON commits before the checkpoint gone, the table still reads from it.
  for (int v = 0; v <= 10; ++v) std::filesystem::remove(store_->commit_path(DeltaVersion(v)));
  auto snap = Snapshot::load(*store_);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ((*snap)->checkpoint_version(), DeltaVersion(10));
  EXPECT_EQ((*snap)->metadata().configuration.at("delta.checkpointInterval"), "5");
  EXPECT_EQ(ids(*read()), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  // Version 7 needs checkpoint 5 plus commits 6 and 7, which are gone.
  auto old = Snapshot::load(*store_, DeltaVersion(7));
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("commit 6 is missing"), std::string::npos);
}

TEST_F(TableWriterTest, MissingCheckpointNamedByLastCheckpointIsReported) {
  WriteOptions options;
  options.configuration["delta.checkpointInterval"] = "3";
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(write(*batch(schema_, "[{\"id\":" + std::to_string(i) + "}]"), options).ok());
  }
  std::filesystem::remove(store_->log_dir() / "00000000000000000003.checkpoint.parquet");
  // JSON commits still there: replay falls back to them.
  EXPECT_EQ(ids(*read()), (std::vector<int64_t>{0, 1, 2, 3}));
  std::filesystem::remove(store_->commit_path(DeltaVersion(1)));
  auto snap = Snapshot::load(*store_);
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.status().message().find(
                "_last_checkpoint names checkpoint 3 but its file is missing"),
            std::string::npos)
      << snap.status().message();
}

TEST_F(TableWriterTest, IncrementalReadListsAddedFilesAndRefusesDeletes) {
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":1}])")).ok());
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":2}])")).ok());
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":3}])")).ok());
  auto added = added_files_between(*store_, DeltaVersion(0), DeltaVersion(2), ChangePolicy::kFail);
  ASSERT_TRUE(added.ok());
  ASSERT_EQ(added->size(), 2u);
  EXPECT_EQ((*added)[0].version, DeltaVersion(1));
  EXPECT_EQ((*added)[1].version, DeltaVersion(2));
  WriteOptions overwrite;
  overwrite.mode = WriteMode::kOverwrite;
  ASSERT_TRUE(write(*batch(schema_, R"([{"id":4}])"), overwrite).ok());
  auto refused = added_files_between(*store_, DeltaVersion(2), DeltaVersion(3), ChangePolicy::kFail);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("version 3 removed data"), std::string::npos);
  auto changes = added_files_between(*store_, DeltaVersion(2), DeltaVersion(3),
                                     ChangePolicy::kIgnoreChanges);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 1u);
}

TEST_F(TableWriterTest, TimestampNtzColumnUpgradesProtocolTo37) {
  auto ntz = arrow::schema({arrow::field("id", arrow::int64()),
                            arrow::field("t", arrow::timestamp(arrow::TimeUnit::MICRO))});
  auto r = write(*batch(ntz, R"([{"id":1,"t":"2024-01-01 00:00:00"}])"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& p = r->snapshot->protocol();
  EXPECT_EQ(p.min_reader_version, 3);
  EXPECT_EQ(p.min_writer_version, 7);
  EXPECT_EQ(*p.reader_features, std::vector<std::string>{"timestampNtz"});
}

TEST_F(TableWriterTest, NullsInNotNullColumnAreRefused) {
  auto strict = arrow::schema({arrow::field("id", arrow::int64(), false)});
  ASSERT_TRUE(write(*batch(strict, R"([{"id":1}])")).ok());
  auto loose = arrow::schema({arrow::field("id", arrow::int64())});
  auto r = write(*batch(loose, R"([{"id":null}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NOT NULL constraint violated for column: id. 1 of 1 row(s) "
                                      "in this write have no value for it; nothing was written"),
            std::string::npos)
      << r.status().message();
}

TEST_F(TableWriterTest, LargeWritesSpreadOverParallelFilesAndKeepEveryRow) {
  WriteOptions options;
  options.file.parallel_files = 2;
  options.file.spread_after_rows = 1;
  auto snap = load_latest_if_exists(*store_).ValueOrDie();
  auto writer = TableWriter::make(store_, snap, *schema_, options).ValueOrDie();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(writer->write(*batch(schema_, "[{\"id\":" + std::to_string(i) + "}]")).ok());
  }
  auto txn = writer->finish();
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  EXPECT_EQ(txn->adds().size(), 2u);
  ASSERT_TRUE(txn->commit({}).ok());
  EXPECT_EQ(ids(*read()), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

// max_rows_per_file cuts one batch into files of at most that many rows, in the batch's order,
// partitioned (one writer per directory) and not (the lane writer) alike.
TEST_F(TableWriterTest, MaxRowsPerFileCutsABatchIntoFilesInOrder) {
  for (const bool partitioned : {false, true}) {
    SCOPED_TRACE(partitioned ? "partitioned" : "unpartitioned");
    std::string rows = "[";
    for (int i = 0; i < 250; ++i) rows += fmt::format("{}{{\"id\": {}, \"city\": \"c\", \"amount\": 1.0}}", i ? "," : "", i);
    rows += "]";
    store_ = std::make_shared<LogStore>(dir_.path() / (partitioned ? "partitioned" : "unpartitioned"));
    WriteOptions options;
    options.file.max_rows_per_file = 100;
    options.file.parallel_files = 1;
    if (partitioned) options.partition_columns = {"city"};
    auto committed = write(*batch(schema_, rows), options);
    ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    auto snap = Snapshot::load(*store_).ValueOrDie();
    std::vector<std::pair<int64_t, int64_t>> ranges;  // (min id, rows) per file
    for (const auto& f : snap->files()) {
      auto stats = nlohmann::json::parse(*f.stats);
      ranges.emplace_back(stats["minValues"]["id"].get<int64_t>(), stats["numRecords"].get<int64_t>());
    }
    std::sort(ranges.begin(), ranges.end());
    EXPECT_EQ(ranges, (std::vector<std::pair<int64_t, int64_t>>{{0, 100}, {100, 100}, {200, 50}}));
  }
}

TEST_F(TableWriterTest, AbortedWriteLeavesNoDataFiles) {
  WriteOptions options;
  options.file.parallel_files = 2;
  options.file.spread_after_rows = 1;
  {
    auto writer = TableWriter::make(store_, nullptr, *schema_, options).ValueOrDie();
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(writer->write(*batch(schema_, "[{\"id\":" + std::to_string(i) + "}]")).ok());
    }
    writer->abort();
  }
  int parquet_files = 0;
  if (std::filesystem::exists(store_->table_root())) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(store_->table_root())) {
      parquet_files += e.path().extension() == ".parquet";
    }
  }
  EXPECT_EQ(parquet_files, 0);
}

}  // namespace
}  // namespace sluice::delta
