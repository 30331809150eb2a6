// Delta string bounds taken from the Parquet file's chunk statistics (DataFileWriter) against the
// ones StatsCollector gathers itself from every value: the same stats JSON on varied data.
#include <arrow/api.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/properties.h>
#include <parquet/schema.h>

#include <random>

#include "../temp_dir.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/stats.h"

namespace sluice::delta {
namespace {

std::shared_ptr<arrow::Schema> string_stats_schema() {
  return arrow::schema({arrow::field("n", arrow::int64()), arrow::field("s", arrow::utf8()),
                        arrow::field("ls", arrow::large_utf8()),
                        arrow::field("st", arrow::struct_({arrow::field("x", arrow::utf8()),
                                                           arrow::field("k", arrow::int32())})),
                        arrow::field("none", arrow::utf8())});
}

// A value from a pool where byte-wise order is easy to get wrong (prefixes, "", bytes >= 0x80,
// 32-character truncation), with some values longer than Parquet's statistics keep (4 KiB).
std::string tricky_string(std::mt19937& rng, bool allow_long) {
  static const std::vector<std::string> pool = {
      "", "a", "ab", "abc", "b", "\xc3\xa9", "\xc3\xa9" "a", "z", "\xe6\x97\xa5\xe6\x9c\xac", "~",
      std::string(31, 'm'), std::string(32, 'm'), std::string(33, 'm'), std::string(40, 'b')};
  std::uniform_int_distribution<int> pick(0, static_cast<int>(pool.size()) + 2);
  const int i = pick(rng);
  if (i < static_cast<int>(pool.size())) return pool[i];
  if (i == static_cast<int>(pool.size()) && allow_long) {
    return std::string(5000, static_cast<char>('a' + rng() % 26));
  }
  std::string s(1 + rng() % 12, ' ');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

std::shared_ptr<arrow::RecordBatch> tricky_batch(std::mt19937& rng, int64_t rows, bool allow_long) {
  arrow::Int64Builder n;
  arrow::StringBuilder s, x, none;
  arrow::LargeStringBuilder ls;
  arrow::Int32Builder k;
  std::vector<uint8_t> parent_valid;
  std::bernoulli_distribution null(0.2);
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_TRUE(n.Append(static_cast<int64_t>(rng() % 1000)).ok());
    EXPECT_TRUE((null(rng) ? s.AppendNull() : s.Append(tricky_string(rng, allow_long))).ok());
    EXPECT_TRUE((null(rng) ? ls.AppendNull() : ls.Append(tricky_string(rng, allow_long))).ok());
    EXPECT_TRUE((null(rng) ? x.AppendNull() : x.Append(tricky_string(rng, allow_long))).ok());
    EXPECT_TRUE(k.Append(static_cast<int32_t>(rng() % 7)).ok());
    EXPECT_TRUE(none.AppendNull().ok());
    parent_valid.push_back(null(rng) ? 0 : 1);
  }
  auto schema = string_stats_schema();
  auto children = arrow::ArrayVector{x.Finish().ValueOrDie(), k.Finish().ValueOrDie()};
  arrow::TypedBufferBuilder<bool> validity;
  EXPECT_TRUE(validity.Reserve(rows).ok());
  for (auto v : parent_valid) validity.UnsafeAppend(v != 0);
  auto st = std::make_shared<arrow::StructArray>(schema->field(3)->type(), rows, children,
                                                 validity.Finish().ValueOrDie());
  return arrow::RecordBatch::Make(schema, rows,
                                  {n.Finish().ValueOrDie(), s.Finish().ValueOrDie(),
                                   ls.Finish().ValueOrDie(), st, none.Finish().ValueOrDie()});
}

// Writes `batches` into one data file (small row groups: several per file) and returns its
// stats beside the ones StatsCollector gathers from every value.
std::pair<nlohmann::json, nlohmann::json> stats_both_ways(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
    const std::filesystem::path& dir, int* row_groups = nullptr) {
  DataFileOptions options;
  options.row_group_bytes = 8 << 10;
  auto writer = DataFileWriter::make(dir, "", string_stats_schema(), options).ValueOrDie();
  StatsCollector collected(string_stats_schema());
  for (const auto& b : batches) {
    EXPECT_TRUE(writer->write(*b).ok());
    EXPECT_TRUE(collected.update(*b).ok());
  }
  auto add = writer->close();
  EXPECT_TRUE(add.ok()) << add.status().ToString();
  if (row_groups != nullptr) {
    auto reader = parquet::ParquetFileReader::OpenFile((dir / add->path).string());
    *row_groups = reader->metadata()->num_row_groups();
  }
  return {nlohmann::json::parse(*add->stats), nlohmann::json::parse(*collected.finish())};
}

TEST(ParquetStringStatsTest, BoundsFromParquetEqualTheCollectedOnesOnRandomData) {
  sluice::testing::TempDir dir;
  int files_with_long_values = 0, multi_row_group_files = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    const bool allow_long = seed % 2 == 0;
    for (int b = 0; b < 1 + static_cast<int>(seed % 5); ++b) {
      batches.push_back(tricky_batch(rng, 1 + rng() % 300, allow_long && rng() % 3 == 0));
    }
    int row_groups = 0;
    auto [from_parquet, collected] = stats_both_ways(batches, dir.path(), &row_groups);
    EXPECT_EQ(from_parquet, collected) << "seed " << seed;
    if (row_groups > 1) ++multi_row_group_files;
    if (allow_long) ++files_with_long_values;
  }
  EXPECT_GT(multi_row_group_files, 10);  // the row groups' statistics are merged
}

// A chunk's min or max longer than Parquet's statistics keep (4 KiB) is dropped from the file;
// the bounds must still be exact, whichever batch of the row group holds the short ones.
TEST(ParquetStringStatsTest, ShortMinBesideALongMaxInTheSameRowGroup) {
  sluice::testing::TempDir dir;
  auto schema = arrow::schema({arrow::field("s", arrow::utf8())});
  auto batch = [&](std::vector<std::string> values) {
    arrow::StringBuilder b;
    EXPECT_TRUE(b.AppendValues(values).ok());
    const auto rows = static_cast<int64_t>(values.size());
    return arrow::RecordBatch::Make(schema, rows, {b.Finish().ValueOrDie()});
  };
  for (const auto& [first, second] :
       std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"b", "a"}, {std::string(5000, 'z')}},                        // long max
           {{std::string(5000, 'a')}, {"c", "b"}},                        // long min
           {{std::string(5000, 'a')}, {std::string(5000, 'z')}},          // both long
           {{std::string(4096, 'c')}, {std::string(4097, 'c'), "d"}}}) {  // at the limit
    auto writer = DataFileWriter::make(dir.path(), "", schema, {}).ValueOrDie();
    StatsCollector collected(schema);
    for (const auto& b : {batch(first), batch(second)}) {
      ASSERT_TRUE(writer->write(*b).ok());
      ASSERT_TRUE(collected.update(*b).ok());
    }
    auto add = writer->close();
    ASSERT_TRUE(add.ok()) << add.status().ToString();
    EXPECT_EQ(nlohmann::json::parse(*add->stats), nlohmann::json::parse(*collected.finish()))
        << first[0].substr(0, 5) << " / " << second[0].substr(0, 5);
  }
}

TEST(ParquetStringStatsTest, FinishWithoutTheFileMetadataIsAnError) {
  auto schema = arrow::schema({arrow::field("s", arrow::utf8())});
  StatsCollector stats(schema);
  auto props = parquet::WriterProperties::Builder().build();
  parquet::schema::NodeVector fields = {
      parquet::schema::PrimitiveNode::Make("s", parquet::Repetition::OPTIONAL,
                                           parquet::LogicalType::String(),
                                           parquet::Type::BYTE_ARRAY)};
  auto root = parquet::schema::GroupNode::Make("schema", parquet::Repetition::REQUIRED, fields);
  parquet::SchemaDescriptor descr;
  descr.Init(root);
  ASSERT_TRUE(stats.take_string_bounds_from_parquet(descr, *props).ok());
  auto text = stats.finish();
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("metadata"), std::string::npos)
      << text.status().ToString();
}

}  // namespace
}  // namespace sluice::delta
