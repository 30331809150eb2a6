// Change data files (change_data.h): their layout, columns and cdc actions, and the protocol a
// table with delta.enableChangeDataFeed needs (table_features.h).
#include "sluice/delta/change_data.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>

#include "../temp_dir.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/table_writer.h"

namespace sluice::delta {
namespace {

const std::map<std::string, std::string> kFeedOn = {{"delta.enableChangeDataFeed", "true"}};

std::shared_ptr<arrow::RecordBatch> rows_of(const std::shared_ptr<arrow::Schema>& schema,
                                            const std::string& rows_json) {
  auto array = arrow::json::ArrayFromJSONString(arrow::struct_(schema->fields()), rows_json).ValueOrDie();
  return arrow::RecordBatch::FromStructArray(array).ValueOrDie();
}

std::shared_ptr<arrow::Table> read_parquet(const std::filesystem::path& path) {
  auto file = arrow::io::ReadableFile::Open(path.string()).ValueOrDie();
  auto reader = parquet::arrow::OpenFile(file, arrow::default_memory_pool()).ValueOrDie();
  return reader->ReadTable().ValueOrDie();
}

TEST(ChangeDataProtocol, LegacyTablesGetWriterVersionFour) {
  Protocol legacy;  // (1, 2)
  auto raised = protocol_for_properties(legacy, kFeedOn);
  ASSERT_TRUE(raised.has_value());
  EXPECT_EQ(raised->min_reader_version, 1);
  EXPECT_EQ(raised->min_writer_version, 4);
  EXPECT_FALSE(raised->writer_features.has_value());
  EXPECT_FALSE(protocol_for_properties(*raised, kFeedOn).has_value());
  EXPECT_FALSE(protocol_for_properties(legacy, {}).has_value());
  EXPECT_FALSE(protocol_for_properties(legacy, {{"delta.enableChangeDataFeed", "false"}}).has_value());
  EXPECT_TRUE(protocol_for_properties(legacy, {{"delta.enableChangeDataFeed", "TRUE"}}).has_value());
}

TEST(ChangeDataProtocol, TableFeatureTablesListChangeDataFeed) {
  Protocol features{3, 7, std::vector<std::string>{"timestampNtz"}, std::vector<std::string>{"timestampNtz"}};
  auto raised = protocol_for_properties(features, kFeedOn);
  ASSERT_TRUE(raised.has_value());
  EXPECT_EQ(raised->min_writer_version, 7);
  EXPECT_EQ(*raised->writer_features, (std::vector<std::string>{"timestampNtz", "changeDataFeed"}));
  EXPECT_EQ(*raised->reader_features, (std::vector<std::string>{"timestampNtz"}));  // writer-only feature
  EXPECT_FALSE(protocol_for_properties(*raised, kFeedOn).has_value());
}

TEST(ChangeDataProtocol, NewTableWithTheFeedIsCreatedAtWriterVersionFour) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64())});
  WriteOptions options;
  options.configuration = kFeedOn;
  auto writer = TableWriter::make(store, nullptr, *schema, options).ValueOrDie();
  ASSERT_TRUE(writer->write(*rows_of(schema, "[{\"id\": 1}]")).ok());
  auto txn = writer->finish().ValueOrDie();
  ASSERT_TRUE(txn.commit({}).ok());
  auto snap = Snapshot::load(*store).ValueOrDie();
  EXPECT_EQ(snap->protocol().min_reader_version, 1);
  EXPECT_EQ(snap->protocol().min_writer_version, 4);
  EXPECT_TRUE(check_write_supported(snap->protocol(), snap->metadata(), "t").ok());
}

TEST(ChangeDataFile, CdcActionHasPathPartitionValuesSizeAndNoDataChange) {
  AddCdcFile file{"_change_data/p=a/x.parquet", {{"p", "a"}, {"q", std::nullopt}}, 123};
  auto json = to_json(file.to_action());
  EXPECT_EQ(json, nlohmann::json::parse(R"({"cdc": {"path": "_change_data/p=a/x.parquet",
      "partitionValues": {"p": "a", "q": null}, "size": 123, "dataChange": false}})"));
  auto back = action_from_json(json);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<OtherAction>(*back).kind, "cdc");
}

TEST(ChangeDataFile, PartitionedRowsGoUnderChangeDataWithTheirChangeType) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("part", arrow::utf8())});
  auto writer = ChangeDataWriter::make(store, schema, {"part"}).ValueOrDie();
  ASSERT_TRUE(writer->write(*rows_of(schema, R"([{"id": 1, "part": "a"}, {"id": 2, "part": "b"}])"),
                            ChangeType::kUpdatePreimage).ok());
  ASSERT_TRUE(writer->write(*rows_of(schema, R"([{"id": 3, "part": "a"}])"), ChangeType::kDelete).ok());
  EXPECT_EQ(writer->rows_written(), 3);
  auto files = writer->finish().ValueOrDie();
  ASSERT_EQ(files.size(), 2u);
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> by_part;
  for (const auto& f : files) {
    const std::string part = *f.partition_values.at("part");
    EXPECT_EQ(f.path.rfind("_change_data/part=" + part + "/", 0), 0u) << f.path;
    EXPECT_EQ(f.size, static_cast<int64_t>(std::filesystem::file_size(dir.path() / "t" / f.path)));
    auto table = read_parquet(dir.path() / "t" / f.path)->CombineChunksToBatch().ValueOrDie();
    // The partition column lives in the path, as in the table's data files.
    EXPECT_EQ(table->schema()->field_names(), (std::vector<std::string>{"id", "_change_type"}));
    auto id = std::static_pointer_cast<arrow::Int64Array>(table->column(0));
    auto kind = std::static_pointer_cast<arrow::StringArray>(table->column(1));
    for (int64_t i = 0; i < table->num_rows(); ++i) by_part[part].emplace_back(id->Value(i), kind->GetString(i));
  }
  using Changes = std::vector<std::pair<int64_t, std::string>>;
  EXPECT_EQ(by_part["a"], (Changes{{1, "update_preimage"}, {3, "delete"}}));
  EXPECT_EQ(by_part["b"], (Changes{{2, "update_preimage"}}));
  writer->abort();  // after finish: the files go (a commit that lost its race)
  for (const auto& f : files) EXPECT_FALSE(std::filesystem::exists(dir.path() / "t" / f.path));
}

TEST(ChangeDataFile, TableWithAChangeTypeColumnIsRefused) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("_change_type", arrow::utf8())});
  auto writer = ChangeDataWriter::make(store, schema, {});
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.status().message().find("reserves"), std::string::npos) << writer.status().message();
}

TEST(ChangeDataFile, RowsOfAnotherShapeAreRefused) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto schema = arrow::schema({arrow::field("id", arrow::int64())});
  auto writer = ChangeDataWriter::make(store, schema, {}).ValueOrDie();
  auto other = arrow::schema({arrow::field("id", arrow::utf8())});
  EXPECT_FALSE(writer->write(*rows_of(other, R"([{"id": "x"}])"), ChangeType::kInsert).ok());
}

}  // namespace
}  // namespace sluice::delta
