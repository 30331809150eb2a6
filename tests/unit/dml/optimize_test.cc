// OPTIMIZE (dml/optimize.h): bin-packing per partition, the partition predicate, Z-order keys,
// Spark's commit shape (OPTIMIZE, dataChange=false) and conflicts with concurrent commits.
#include <arrow/api.h>
#include <arrow/io/interfaces.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "../temp_dir.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"
#include "sluice/dml/optimize.h"
#include "sluice/dml/statement_runner.h"
#include "sluice/dml/zorder.h"
#include "sluice/sql/parser.h"

namespace sluice::dml {
namespace {

TEST(ZOrderTest, RangeIdsAreQuantilesAndEqualValuesShareOne) {
  arrow::Int64Builder builder;
  ASSERT_TRUE(builder.AppendValues({40, 10, 10, 30}).ok());
  ASSERT_TRUE(builder.AppendNull().ok());
  ASSERT_TRUE(builder.AppendValues({20, 50, 60}).ok());
  auto values = arrow::ChunkedArray::Make({*builder.Finish()}).ValueOrDie();
  auto ids = range_partition_ids(*values, 4).ValueOrDie();
  // Sorted: null, 10, 10, 20, 30, 40, 50, 60 -> positions 0..7, 2 per range; ties take the first.
  EXPECT_EQ(ids, (std::vector<uint32_t>{2, 0, 0, 2, 0, 1, 3, 3}));
}

TEST(ZOrderTest, InterleavesBitsMostSignificantFirstFirstColumnFirst) {
  // a = 0b10, b = 0b01 -> a1 b1 a0 b0 = 1 0 0 1.
  EXPECT_EQ(static_cast<uint64_t>(interleave_bits({2, 1}, 2)), 0b1001u);
  EXPECT_EQ(static_cast<uint64_t>(interleave_bits({1, 2}, 2)), 0b0110u);
  EXPECT_EQ(static_cast<uint64_t>(interleave_bits({3}, 2)), 0b11u);
}

TEST(ZOrderTest, PermutationWalksTheCurveQuadrantByQuadrant) {
  // A 4x4 grid of (x, y): Z-order visits each 2x2 quadrant before the next.
  arrow::Int64Builder x, y;
  for (int64_t i = 15; i >= 0; --i) {
    ASSERT_TRUE(x.Append(i % 4).ok());
    ASSERT_TRUE(y.Append(i / 4).ok());
  }
  auto schema = arrow::schema({arrow::field("x", arrow::int64()), arrow::field("y", arrow::int64())});
  auto table = arrow::Table::Make(schema, {*x.Finish(), *y.Finish()});
  auto order = zorder_permutation(*table, {"x", "y"}, 4).ValueOrDie();
  std::vector<std::pair<int64_t, int64_t>> visited;
  auto xs = std::static_pointer_cast<arrow::Int64Array>(table->column(0)->chunk(0));
  auto ys = std::static_pointer_cast<arrow::Int64Array>(table->column(1)->chunk(0));
  for (int64_t row : order) visited.emplace_back(xs->Value(row), ys->Value(row));
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3},
      {2, 0}, {2, 1}, {3, 0}, {3, 1}, {2, 2}, {2, 3}, {3, 2}, {3, 3}};
  EXPECT_EQ(visited, expected);
}

class OptimizeTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<delta::LogStore> store_ = std::make_shared<delta::LogStore>(dir_.path() / "t");

  // id BIGINT, part STRING, v BIGINT (v = id * 10): one file per call, partitioned by part.
  void write(const std::vector<int64_t>& ids, const std::string& part,
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
    options.partition_columns = {"part"};
    options.configuration = std::move(configuration);
    auto writer = delta::TableWriter::make(store_, snap, *schema, options).ValueOrDie();
    ASSERT_TRUE(writer->write(*batch).ok());
    auto txn = writer->finish().ValueOrDie();
    ASSERT_TRUE(txn.commit({}).ok());
  }

  std::vector<int64_t> ids() {
    auto snap = delta::Snapshot::load(*store_).ValueOrDie();
    auto table = delta::scan_table(*store_, *snap).ValueOrDie()->CombineChunksToBatch().ValueOrDie();
    auto id = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("id"));
    std::vector<int64_t> out(id->raw_values(), id->raw_values() + id->length());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::map<std::string, int> files_per_partition() {
    std::map<std::string, int> out;
    for (const auto& f : delta::Snapshot::load(*store_).ValueOrDie()->files()) {
      ++out[*f.partition_values.at("part")];
    }
    return out;
  }

  std::string commit_text(int64_t version) {
    std::ifstream in(dir_.path() / "t" / "_delta_log" / fmt::format("{:020}.json", version));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

TEST_F(OptimizeTest, CompactsTheSmallFilesOfEachPartitionWithoutDataChange) {
  write({1, 2}, "a");
  write({3, 4}, "a");
  write({5}, "a");
  write({6}, "b");  // a lone small file: nothing to pack it with
  auto r = optimize_table(store_, {}).ValueOrDie();
  ASSERT_TRUE(r.committed);
  EXPECT_EQ(r.version.value(), 4);
  EXPECT_EQ(files_per_partition(), (std::map<std::string, int>{{"a", 1}, {"b", 1}}));
  EXPECT_EQ(ids(), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.metrics["numRemovedFiles"], "3");
  EXPECT_EQ(r.metrics["numAddedFiles"], "1");
  EXPECT_EQ(r.files_considered, 4);
  EXPECT_EQ(r.files_skipped, 1);
  const auto log = commit_text(4);
  EXPECT_NE(log.find("\"operation\":\"OPTIMIZE\""), std::string::npos) << log;
  EXPECT_EQ(log.find("\"dataChange\":true"), std::string::npos) << log;
  // Streaming readers skip it: no file added between versions 3 and 4 for them.
  auto added = delta::added_files_between(*store_, DeltaVersion(3), DeltaVersion(4),
                                          delta::ChangePolicy::kFail).ValueOrDie();
  EXPECT_TRUE(added.empty());
  // Run again: nothing left to compact, nothing committed.
  auto again = optimize_table(store_, {}).ValueOrDie();
  EXPECT_FALSE(again.committed);
  EXPECT_EQ(again.version.value(), 4);
}

TEST_F(OptimizeTest, AFileWithRowsDeletedByItsVectorIsRewrittenWithoutThem) {
  write({1, 2, 3, 4}, "a", {{"delta.enableDeletionVectors", "true"}});
  class Paths : public TableCatalog {
   public:
    arrow::Result<DmlTarget> open(const std::vector<std::string>& name) const override {
      ARROW_ASSIGN_OR_RAISE(auto t, open_delta_path(name));
      if (!t) return arrow::Status::Invalid("unknown table");
      return std::move(*t);
    }
  } catalog;
  const std::string text = fmt::format("DELETE FROM delta.`{}` WHERE id = 2", (dir_.path() / "t").string());
  ASSERT_TRUE(run_sql_command(sql::SourceFile{"<delete>", text}, catalog).ok());
  ASSERT_TRUE(delta::Snapshot::load(*store_).ValueOrDie()->files().at(0).deletion_vector.has_value());
  auto r = optimize_table(store_, {}).ValueOrDie();
  ASSERT_TRUE(r.committed);  // one file, but a quarter of its rows deleted (> 5 %)
  EXPECT_EQ(r.metrics["numDeletionVectorsRemoved"], "1");
  auto files = delta::Snapshot::load(*store_).ValueOrDie()->files();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_FALSE(files[0].deletion_vector.has_value());
  EXPECT_EQ(ids(), (std::vector<int64_t>{1, 3, 4}));
}

TEST_F(OptimizeTest, WhereSelectsPartitions) {
  write({1}, "a");
  write({2}, "a");
  write({3}, "b");
  write({4}, "b");
  OptimizeOptions options;
  options.where = "part = 'b'";
  auto r = optimize_table(store_, options).ValueOrDie();
  ASSERT_TRUE(r.committed);
  EXPECT_EQ(files_per_partition(), (std::map<std::string, int>{{"a", 2}, {"b", 1}}));
  EXPECT_NE(commit_text(r.version.value()).find(R"("predicate":"[\"(part = 'b')\"]")"), std::string::npos)
      << commit_text(r.version.value());
}

TEST_F(OptimizeTest, WhereOnADataColumnIsRefusedAsSparkRefusesIt) {
  write({1}, "a");
  write({2}, "a");
  OptimizeOptions options;
  options.where = "v > 3";
  auto r = optimize_table(store_, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("predicate references non-partition column 'v'. Only the "
                                      "partition columns may be referenced: [part]"),
            std::string::npos)
      << r.status().message();
}

TEST_F(OptimizeTest, ZOrderRefusesPartitionAndUnknownColumns) {
  write({1}, "a");
  OptimizeOptions options;
  options.zorder_by = {"part"};
  auto r = optimize_table(store_, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("part is a partition column"), std::string::npos) << r.status().message();
  options.zorder_by = {"nope"};
  r = optimize_table(store_, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("column 'nope' does not exist"), std::string::npos) << r.status().message();
}

TEST_F(OptimizeTest, ZOrderRewritesEveryFileOfThePartitionSortedAlongTheCurve) {
  write({5, 1}, "a");
  write({4}, "a");
  write({3, 2}, "a");
  OptimizeOptions options;
  options.zorder_by = {"ID"};  // names resolve case-insensitively
  auto r = optimize_table(store_, options).ValueOrDie();
  ASSERT_TRUE(r.committed);
  auto snap = delta::Snapshot::load(*store_).ValueOrDie();
  ASSERT_EQ(snap->num_files(), 1u);
  auto table = delta::scan_table(*store_, *snap).ValueOrDie()->CombineChunksToBatch().ValueOrDie();
  auto id = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("id"));
  EXPECT_EQ(std::vector<int64_t>(id->raw_values(), id->raw_values() + id->length()),
            (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_NE(commit_text(r.version.value()).find(R"("zOrderBy":"[\"id\"]")"), std::string::npos);
}

// A Z-ordered partition larger than the target is cut into files of about the target size
// (estimated from its input's bytes per row), the curve running on from one file into the
// next: each file covers its own range of the key. Before, rows that reached the writer as one
// batch made one file whatever the target.
TEST_F(OptimizeTest, ZOrderCutsAPartitionIntoFilesOfAboutTheTargetSize) {
  std::vector<int64_t> all(8000);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  std::mt19937 rng(5);
  std::shuffle(all.begin(), all.end(), rng);
  for (int f = 0; f < 4; ++f) write(std::vector<int64_t>(all.begin() + f * 2000, all.begin() + (f + 1) * 2000), "a");
  int64_t input_bytes = 0;
  for (const auto& f : delta::Snapshot::load(*store_).ValueOrDie()->files()) input_bytes += f.size;
  OptimizeOptions options;
  options.zorder_by = {"id"};
  options.target_file_size = input_bytes / 8;
  auto r = optimize_table(store_, options).ValueOrDie();
  ASSERT_TRUE(r.committed);
  auto snap = delta::Snapshot::load(*store_).ValueOrDie();
  ASSERT_GE(snap->num_files(), 6u);
  ASSERT_LE(snap->num_files(), 10u);
  // Rows per file measured on the sorted rows: every file but the curve's last piece holds the
  // same number of rows, and none is far past the target.
  std::vector<std::pair<int64_t, int64_t>> ranges;  // (min id, max id) per file
  std::map<int64_t, int> files_with_rows;
  for (const auto& f : snap->files()) {
    EXPECT_LE(f.size, options.target_file_size * 3 / 2) << f.path;
    auto stats = nlohmann::json::parse(*f.stats);
    ranges.emplace_back(stats["minValues"]["id"].get<int64_t>(), stats["maxValues"]["id"].get<int64_t>());
    ++files_with_rows[stats["numRecords"].get<int64_t>()];
  }
  ASSERT_LE(files_with_rows.size(), 2u);
  EXPECT_GE(files_with_rows.rbegin()->second, static_cast<int>(snap->num_files()) - 1);
  // Consecutive pieces of the curve: a file's ids follow the previous file's, overlapping at most
  // inside one range id (8,000 ids in Z-order's 1,000 ranges: 8 ids a range, in no order within
  // it), where a cut falls inside a range.
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    EXPECT_LT(ranges[i - 1].second, ranges[i].second) << i;
    EXPECT_LT(ranges[i - 1].second - ranges[i].first, 8) << i;
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(ids(), all);  // the same rows
}

// Many tiny input files: each carries a footer, page headers and a dictionary per column chunk,
// so their bytes per row overstate the output's several times. Before the rows per file were
// measured on the sorted rows, 100 files of 100 rows Z-ordered to a 64 KiB target came out as 4
// files of 31.9 KB; now every file but the curve's last piece is about the target.
TEST_F(OptimizeTest, ZOrderOfManyTinyFilesCutsFilesOfAboutTheTargetSize) {
  std::vector<int64_t> all(10000);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i) * 7919 % 1000003;
  std::mt19937 rng(11);
  std::shuffle(all.begin(), all.end(), rng);
  for (int f = 0; f < 100; ++f) write(std::vector<int64_t>(all.begin() + f * 100, all.begin() + (f + 1) * 100), "a");
  OptimizeOptions options;
  options.zorder_by = {"id"};
  options.target_file_size = 64 * 1024;
  ASSERT_TRUE(optimize_table(store_, options).ValueOrDie().committed);
  auto snap = delta::Snapshot::load(*store_).ValueOrDie();
  std::vector<int64_t> sizes;
  int64_t total = 0;
  for (const auto& f : snap->files()) {
    sizes.push_back(f.size);
    total += f.size;
  }
  std::sort(sizes.begin(), sizes.end());
  ASSERT_GE(sizes.size(), 2u) << "the output is larger than one target";
  // The files the cut filled (all but the smallest, the curve's last piece): within 20 % of it.
  for (size_t i = 1; i < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], options.target_file_size * 8 / 10) << i << " of " << sizes.size();
    EXPECT_LE(sizes[i], options.target_file_size * 12 / 10) << i << " of " << sizes.size();
  }
  // As few files as the bytes need: no more than one beyond ceil(total / target).
  EXPECT_LE(static_cast<int64_t>(sizes.size()), (total + options.target_file_size - 1) / options.target_file_size + 1);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(ids(), all);
}

// A target of a few bytes does not make a file per row: a file cut by rows holds at least 100
// (review: --target-file-size 1 on 40,000 rows wrote 40,000 files).
TEST_F(OptimizeTest, ZOrderWithATinyTargetKeepsAHundredRowsPerFile) {
  std::vector<int64_t> all(5000);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  std::mt19937 rng(7);
  std::shuffle(all.begin(), all.end(), rng);
  for (int f = 0; f < 2; ++f) write(std::vector<int64_t>(all.begin() + f * 2500, all.begin() + (f + 1) * 2500), "a");
  OptimizeOptions options;
  options.zorder_by = {"id"};
  options.target_file_size = 1;
  ASSERT_TRUE(optimize_table(store_, options).ValueOrDie().committed);
  auto snap = delta::Snapshot::load(*store_).ValueOrDie();
  EXPECT_EQ(snap->num_files(), 50u);  // 5,000 rows, 100 a file
  std::sort(all.begin(), all.end());
  EXPECT_EQ(ids(), all);
}

TEST_F(OptimizeTest, TargetFileSizeOfTheTableSetsTheThresholds) {
  delta::Metadata metadata;
  metadata.configuration["delta.targetFileSize"] = "32mb";
  auto sizes = optimize_file_sizes(metadata, "t").ValueOrDie();
  EXPECT_EQ(sizes.max_file_size, 32ll << 20);
  EXPECT_EQ(sizes.min_file_size, 32ll << 20);
  metadata.configuration["delta.targetFileSize"] = "big";
  auto bad = optimize_file_sizes(metadata, "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("delta.targetFileSize = 'big' is not a file size"), std::string::npos);
  EXPECT_EQ(optimize_file_sizes(delta::Metadata{}, "t").ValueOrDie().max_file_size, 1ll << 30);
}

TEST_F(OptimizeTest, ATargetFileSizeBeyondInt64IsRefusedNamingTheProperty) {
  delta::Metadata metadata;
  metadata.configuration["delta.targetFileSize"] = "8589934591gb";  // (2^33 - 1) GiB: the largest that fits
  EXPECT_EQ(optimize_file_sizes(metadata, "t").ValueOrDie().max_file_size, ((1ll << 33) - 1) << 30);
  for (const char* big : {"8589934592gb", "999999999999gb", "9007199254740992k"}) {
    metadata.configuration["delta.targetFileSize"] = big;
    auto bad = optimize_file_sizes(metadata, "t");
    ASSERT_FALSE(bad.ok()) << big;
    EXPECT_NE(bad.status().message().find(fmt::format("table t: delta.targetFileSize = '{}' is larger than a file size "
                                                      "can be", big)),
              std::string::npos)
        << bad.status().message();
  }
}

TEST_F(OptimizeTest, AConcurrentAppendCommitsAndOptimizeStillSucceeds) {
  write({1}, "a");
  write({2}, "a");
  OptimizeOptions options;
  options.before_commit = [&] {
    write({3}, "a");  // a streaming append between OPTIMIZE's read and its commit
    return arrow::Status::OK();
  };
  auto r = optimize_table(store_, options).ValueOrDie();
  ASSERT_TRUE(r.committed);
  EXPECT_EQ(r.version.value(), 3);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(ids(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(files_per_partition(), (std::map<std::string, int>{{"a", 2}}));
}

TEST_F(OptimizeTest, AnInputFileRemovedConcurrentlyFailsTheOptimize) {
  write({1}, "a");
  write({2}, "a");
  OptimizeOptions options;
  options.before_commit = [&]() -> arrow::Status {
    // A DELETE of row 1 between OPTIMIZE's read and its commit rewrites an input file.
    std::string text = fmt::format("DELETE FROM delta.`{}` WHERE id = 1", (dir_.path() / "t").string());
    class Paths : public TableCatalog {
     public:
      arrow::Result<DmlTarget> open(const std::vector<std::string>& name) const override {
        ARROW_ASSIGN_OR_RAISE(auto t, open_delta_path(name));
        if (!t) return arrow::Status::Invalid("unknown table");
        return std::move(*t);
      }
    } catalog;
    return run_sql_command(sql::SourceFile{"<delete>", text}, catalog).status();
  };
  auto r = optimize_table(store_, options);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(delta::is_commit_conflict(r.status())) << r.status().ToString();
  EXPECT_NE(r.status().message().find("was removed concurrently"), std::string::npos) << r.status().message();
  EXPECT_EQ(ids(), (std::vector<int64_t>{2}));
  // The files OPTIMIZE wrote are gone again: only the table's own remain in the partition.
  int parquet = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() / "t" / "part=a")) {
    parquet += e.path().extension() == ".parquet";
  }
  EXPECT_EQ(parquet, 2);  // the two written (the DELETE removed one file without rewriting it)
}

// The size sample of a sorted bin (rows per file measured on the output) is encoded through
// sizing_store(): its streams count bytes and keep none. Before, a BufferOutputStream held the
// sample's file, up to one target file, in memory.
TEST(SizingStoreTest, CountsTheBytesOfA64MiBFileWithoutHoldingThem) {
  auto store = sizing_store();
  auto* pool = arrow::default_memory_pool();
  const int64_t before = pool->bytes_allocated();
  auto out = store->open_output("sizing/part-0.parquet").ValueOrDie();
  const std::string chunk(1 << 20, 'x');
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(out->Write(chunk.data(), static_cast<int64_t>(chunk.size())).ok());
  EXPECT_EQ(out->Tell().ValueOrDie(), int64_t{64} << 20);
  // Far below the 64 MiB written (a buffer would hold all of it).
  EXPECT_LT(pool->bytes_allocated() - before, int64_t{1} << 20);
  ASSERT_TRUE(store->finish_output("sizing/part-0.parquet", *out).ok());
  EXPECT_TRUE(out->closed());
}

TEST(SizingStoreTest, MeasuresTheSizeTheSameFileHasOnDisk) {
  // The sample's size is what the real file's would be: the cut sizes stay as they were.
  sluice::testing::TempDir dir;
  arrow::Int64Builder id;
  arrow::StringBuilder name;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(id.Append(static_cast<int64_t>(rng() % 1000000)).ok());
    ASSERT_TRUE(name.Append(fmt::format("user-{}", rng() % 5000)).ok());
  }
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())});
  auto batch = arrow::RecordBatch::Make(schema, 20000, {*id.Finish(), *name.Finish()});
  delta::DataFileOptions options;
  auto sized = delta::DataFileWriter::make(sizing_store(), "sizing", "", schema, options).ValueOrDie();
  ASSERT_TRUE(sized->write(*batch).ok());
  const auto counted = sized->close().ValueOrDie();
  auto real = delta::DataFileWriter::make(dir.path(), "", schema, options).ValueOrDie();
  ASSERT_TRUE(real->write(*batch).ok());
  const auto written = real->close().ValueOrDie();
  EXPECT_GT(counted.size, 0);
  EXPECT_EQ(counted.size, written.size);
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(dir.path() / written.path)), written.size);
}

}  // namespace
}  // namespace sluice::dml
