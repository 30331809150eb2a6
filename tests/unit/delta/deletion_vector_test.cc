// Deletion vectors (delta/deletion_vector.h, delta/roaring.h): Z85, the RoaringBitmapArray
// portable format and the vector file, checked against bytes delta-spark wrote
// (tools/make_dv_fixture.py); log replay keyed by (path, vector); scans dropping marked rows,
// also through a checkpoint.
#include "sluice/delta/deletion_vector.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/roaring.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/table_writer.h"

namespace sluice::delta {
namespace {

namespace fs = std::filesystem;

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// delta-spark 4.4.0 (tools/make_dv_fixture.py): DELETE WHERE id IN (2, 3, 7) on rows 0..9.
constexpr const char* kSparkDescriptor =
    R"json({"storageType": "u", "pathOrInlineDv": "k}1cBtmTw(Y&u]Bi4*iq", "offset": 1,
            "sizeInBytes": 38, "cardinality": 3})json";
constexpr const char* kSparkFileName = "deletion_vector_4128283e-5b0f-4b95-bd55-34dd382e8dd0.bin";
constexpr const char* kSparkFileHex =
    "0100000026d1d339640100000000000000000000003a300000010000000000020010000000020003000700ee3c"
    "4d15";

DeletionVectorDescriptor spark_descriptor() {
  auto j = nlohmann::json::parse(kSparkDescriptor);
  DeletionVectorDescriptor dv;
  dv.storage_type = j["storageType"];
  dv.path_or_inline_dv = j["pathOrInlineDv"];
  dv.offset = j["offset"].get<int32_t>();
  dv.size_in_bytes = j["sizeInBytes"];
  dv.cardinality = j["cardinality"];
  return dv;
}

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Z85, EncodesTheSpecExample) {
  const std::string bytes = from_hex("864fd26fb559f75b");
  EXPECT_EQ(z85_encode(bytes), "HelloWorld");
  EXPECT_EQ(*z85_decode("HelloWorld"), bytes);
}

TEST(Z85, RefusesTextOfAWrongLengthOrAlphabet) {
  EXPECT_NE(z85_decode("Hell").status().message().find("multiple of 5"), std::string::npos);
  EXPECT_NE(z85_decode("Hell~").status().message().find("bad character"), std::string::npos);
}

TEST(DeletionVectorPath, DecodesTheUuidSparkWrote) {
  LogStore store(fs::path("/tables/t"));
  DeletionVectorDescriptor dv;
  dv.storage_type = "u";
  dv.path_or_inline_dv = "Xd{yOA&qWRX1U{Gr1bQA";  // a Spark DELETE, file name seen beside it
  EXPECT_EQ(deletion_vector_path(store, dv)->string(),
            "/tables/t/deletion_vector_b81527e7-72a8-4ccd-b7a2-3a95540ca573.bin");
  dv.path_or_inline_dv = "ab" + dv.path_or_inline_dv;  // a random prefix is a folder
  EXPECT_EQ(deletion_vector_path(store, dv)->string(),
            "/tables/t/ab/deletion_vector_b81527e7-72a8-4ccd-b7a2-3a95540ca573.bin");
  dv.storage_type = "p";
  dv.path_or_inline_dv = "file:///data/x/deletion_vector_1.bin";
  EXPECT_EQ(deletion_vector_path(store, dv)->string(), "/data/x/deletion_vector_1.bin");
  dv.storage_type = "q";
  EXPECT_NE(deletion_vector_path(store, dv).status().message().find("unknown storage type"),
            std::string::npos);
}

TEST(DeletionVectorFile, ReadsTheRowsSparkDeleted) {
  sluice::testing::TempDir dir;
  LogStore store(dir.path());
  write_file(dir.path() / kSparkFileName, from_hex(kSparkFileHex));
  const auto dv = spark_descriptor();
  EXPECT_EQ(deletion_vector_path(store, dv)->filename().string(), kSparkFileName);
  auto rows = read_deletion_vector(store, dv, "part-0.parquet");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, (std::vector<uint64_t>{2, 3, 7}));
}

TEST(DeletionVectorFile, WritesTheBytesSparkWrites) {
  // Same rows, same bitmap bytes (Spark's file differs only in its UUID-named path).
  const std::string spark = from_hex(kSparkFileHex);
  const std::string bitmap = serialize_roaring_bitmap_array({2, 3, 7});
  EXPECT_EQ(spark.substr(5, bitmap.size()), bitmap);
  sluice::testing::TempDir dir;
  LogStore store(dir.path());
  auto dv = write_deletion_vector(store, {2, 3, 7});
  ASSERT_TRUE(dv.ok()) << dv.status().ToString();
  EXPECT_EQ(dv->storage_type, "u");
  EXPECT_EQ(dv->offset, 1);
  EXPECT_EQ(dv->size_in_bytes, spark_descriptor().size_in_bytes);
  std::ifstream in(*deletion_vector_path(store, *dv), std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, spark);
}

TEST(DeletionVectorFile, RefusesABadChecksumNamingTheFiles) {
  sluice::testing::TempDir dir;
  LogStore store(dir.path());
  std::string bytes = from_hex(kSparkFileHex);
  bytes[bytes.size() - 6] ^= 1;  // a bitmap byte
  write_file(dir.path() / kSparkFileName, bytes);
  auto rows = read_deletion_vector(store, spark_descriptor(), "part-0.parquet");
  ASSERT_FALSE(rows.ok());
  const std::string message = rows.status().message();
  EXPECT_NE(message.find("CRC-32"), std::string::npos) << message;
  EXPECT_NE(message.find(kSparkFileName), std::string::npos) << message;
  EXPECT_NE(message.find("part-0.parquet"), std::string::npos) << message;
}

TEST(DeletionVectorFile, ReadsAnInlineVector) {
  const std::string bitmap = serialize_roaring_bitmap_array({1, 4});
  DeletionVectorDescriptor dv;
  dv.storage_type = "i";
  dv.path_or_inline_dv = z85_encode(bitmap);
  dv.size_in_bytes = static_cast<int32_t>(bitmap.size());
  dv.cardinality = 2;
  LogStore store(fs::path("/nowhere"));
  EXPECT_EQ(*read_deletion_vector(store, dv, "f"), (std::vector<uint64_t>{1, 4}));
  dv.cardinality = 3;
  EXPECT_NE(read_deletion_vector(store, dv, "f").status().message().find("cardinality is 3"),
            std::string::npos);
}

TEST(RoaringBitmapArray, RoundTripsArrayBitmapAndHighKeyContainers) {
  std::vector<uint64_t> values;
  for (uint64_t i = 0; i < 5000; ++i) values.push_back(i * 3);    // a bitmap container (0)
  for (uint64_t i = 0; i < 10; ++i) values.push_back(70000 + i);  // an array container (1)
  values.push_back((uint64_t{2} << 32) + 5);                     // high key 2, key 1 empty
  const std::string bytes = serialize_roaring_bitmap_array(values);
  auto parsed = parse_roaring_bitmap_array(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, values);
}

TEST(RoaringBitmapArray, ReadsRunContainers) {
  std::string bytes = from_hex("d1d33964" "0100000000000000" "00000000");  // magic, 1, key 0
  bytes += from_hex("3b300000" "01" "00000900");  // cookie 12347 with 1 container, run flags
  bytes += from_hex("0100" "05000900");           // one run: 5, length 9 -> 5..14
  auto parsed = parse_roaring_bitmap_array(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  std::vector<uint64_t> expected;
  for (uint64_t v = 5; v <= 14; ++v) expected.push_back(v);
  EXPECT_EQ(*parsed, expected);
}

TEST(RoaringBitmapArray, StopsExpandingPastTheDescriptorsCardinality) {
  // Two containers, each one run of 65536 values (12 bytes each): far more than the 3 rows the
  // descriptor counts; refused after the first container, not expanded into all of them.
  std::string bytes = from_hex("d1d33964" "0100000000000000" "00000000");
  bytes += from_hex("3b300100" "03" "0000ffff" "0100ffff");  // 2 containers, both runs
  bytes += from_hex("0100" "0000ffff") + from_hex("0100" "0000ffff");
  ASSERT_TRUE(parse_roaring_bitmap_array(bytes).ok());  // well-formed: 131072 values
  auto capped = parse_roaring_bitmap_array(bytes, 3);
  ASSERT_FALSE(capped.ok());
  EXPECT_NE(capped.status().message().find("more than the 3 rows"), std::string::npos) << capped.status().message();
}

TEST(RoaringBitmapArray, RefusesTruncatedAndForeignBytes) {
  const std::string bytes = serialize_roaring_bitmap_array({1, 2, 3});
  EXPECT_NE(parse_roaring_bitmap_array(bytes.substr(0, bytes.size() - 1)).status().message().find(
                "truncated"),
            std::string::npos);
  std::string native = bytes;
  native[0] = static_cast<char>(0xd0);  // magic 1681511376
  EXPECT_NE(parse_roaring_bitmap_array(native).status().message().find("native format"),
            std::string::npos);
}

TEST(DeletionVectorProtocol, ANewTableEnablingThemGetsTheFeature) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64())});
  WriteOptions options;
  options.configuration["delta.enableDeletionVectors"] = "true";
  auto writer = TableWriter::make(store, nullptr, *schema, options).ValueOrDie();
  ASSERT_TRUE(writer->finish()->commit({}).ok());
  auto snap = *Snapshot::load(*store);
  EXPECT_EQ(snap->protocol().min_reader_version, 3);
  EXPECT_EQ(snap->protocol().min_writer_version, 7);
  EXPECT_EQ(*snap->protocol().reader_features, std::vector<std::string>{"deletionVectors"});
  EXPECT_EQ(*snap->protocol().writer_features,
            (std::vector<std::string>{"appendOnly", "invariants", "deletionVectors"}));
  EXPECT_TRUE(writes_deletion_vectors(snap->protocol(), snap->metadata()));
}

TEST(DeletionVectorProtocol, ANewTableWithTheChangeDataFeedTooListsBothFeatures) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64())});
  WriteOptions options;
  options.configuration["delta.enableDeletionVectors"] = "true";
  options.configuration["delta.enableChangeDataFeed"] = "true";
  auto writer = TableWriter::make(store, nullptr, *schema, options).ValueOrDie();
  ASSERT_TRUE(writer->finish()->commit({}).ok());
  auto snap = *Snapshot::load(*store);
  const auto& features = *snap->protocol().writer_features;
  EXPECT_NE(std::find(features.begin(), features.end(), "deletionVectors"), features.end());
  EXPECT_NE(std::find(features.begin(), features.end(), "changeDataFeed"), features.end());
}

class DeletionVectorTableTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<LogStore> store_ = std::make_shared<LogStore>(dir_.path() / "t");

  // Rows 0..9 in one file, then rows 2, 3 and 7 marked deleted, the add before the remove in
  // the commit (as Spark writes it).
  void SetUp() override {
    auto schema = arrow::schema({arrow::field("id", arrow::int64())});
    auto array = arrow::json::ArrayFromJSONString(arrow::int64(), "[0,1,2,3,4,5,6,7,8,9]");
    auto batch = arrow::RecordBatch::Make(schema, 10, {*array});
    auto writer = TableWriter::make(store_, nullptr, *schema, {}).ValueOrDie();
    ASSERT_TRUE(writer->write(*batch).ok());
    ASSERT_TRUE(writer->finish()->commit({}).ok());
    auto snap = *Snapshot::load(*store_);
    Add file = snap->files().at(0);
    Remove old;
    old.path = file.path;
    old.deletion_timestamp = 1;
    file.deletion_vector = *write_deletion_vector(*store_, {2, 3, 7});
    std::ofstream(store_->log_dir() / "00000000000000000001.json")
        << serialize_commit({file, old});
  }

  std::vector<int64_t> ids() {
    auto snap = Snapshot::load(*store_);
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    auto table = scan_table(*store_, **snap);
    EXPECT_TRUE(table.ok()) << table.status().ToString();
    std::vector<int64_t> out;
    auto column = (*table)->GetColumnByName("id");
    for (const auto& chunk : column->chunks()) {
      const auto& a = static_cast<const arrow::Int64Array&>(*chunk);
      for (int64_t i = 0; i < a.length(); ++i) out.push_back(a.Value(i));
    }
    return out;
  }
};

TEST_F(DeletionVectorTableTest, ReplayKeepsTheFileReAddedWithItsVector) {
  auto snap = *Snapshot::load(*store_);
  ASSERT_EQ(snap->files().size(), 1u);
  EXPECT_TRUE(snap->files()[0].deletion_vector.has_value());
  EXPECT_EQ(snap->num_records(), 7);
}

TEST_F(DeletionVectorTableTest, ScanDropsTheMarkedRows) {
  EXPECT_EQ(ids(), (std::vector<int64_t>{0, 1, 4, 5, 6, 8, 9}));
}

TEST_F(DeletionVectorTableTest, CheckpointCarriesTheVector) {
  ASSERT_TRUE(write_checkpoint(*store_, **Snapshot::load(*store_)).ok());
  auto snap = *Snapshot::load(*store_);
  EXPECT_EQ(snap->checkpoint_version(), DeltaVersion(1));
  ASSERT_EQ(snap->files().size(), 1u);
  EXPECT_EQ(snap->files()[0].deletion_vector->cardinality, 3);
  EXPECT_EQ(ids(), (std::vector<int64_t>{0, 1, 4, 5, 6, 8, 9}));
}

}  // namespace
}  // namespace sluice::delta
