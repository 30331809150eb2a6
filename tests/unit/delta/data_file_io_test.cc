// Data files: row groups bounded by bytes on write (per file and by a shared budget),
// batch-by-batch reads.
#include <arrow/api.h>
#include <gtest/gtest.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

#include "../temp_dir.h"
#include "sluice/delta/data_file_writer.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table_writer.h"

namespace sluice::delta {
namespace {

// `rows` rows: id 0.., a 100-byte payload, and a partition key cycling over `keys` values.
std::shared_ptr<arrow::RecordBatch> rows_of(int64_t first, int64_t rows, int keys = 1) {
  arrow::Int64Builder ids;
  arrow::StringBuilder payloads;
  arrow::StringBuilder parts;
  const std::string payload(100, 'p');
  for (int64_t i = first; i < first + rows; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    EXPECT_TRUE(payloads.Append(payload).ok());
    EXPECT_TRUE(parts.Append("k" + std::to_string(i % keys)).ok());
  }
  auto schema = arrow::schema({arrow::field("id", arrow::int64()),
                               arrow::field("payload", arrow::utf8()),
                               arrow::field("part", arrow::utf8())});
  return arrow::RecordBatch::Make(schema, rows,
                                  {ids.Finish().ValueOrDie(), payloads.Finish().ValueOrDie(),
                                   parts.Finish().ValueOrDie()});
}

int row_groups_of(const std::filesystem::path& file) {
  return parquet::ParquetFileReader::OpenFile(file.string())->metadata()->num_row_groups();
}

TEST(DataFileWriterTest, RowGroupEndsOnceItsArrowBytesReachTheBound) {
  sluice::testing::TempDir dir;
  DataFileOptions options;
  options.row_group_bytes = 64 << 10;  // each 1,000-row batch below is ~116 KB of Arrow data
  auto writer = DataFileWriter::make(dir.path(), "", rows_of(0, 1)->schema(), options).ValueOrDie();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(writer->write(*rows_of(i * 1000, 1000)).ok());
  auto add = writer->close();
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  const auto file = dir.path() / add->path;
  EXPECT_EQ(row_groups_of(file), 10);
  EXPECT_EQ(parquet::ParquetFileReader::OpenFile(file.string())->metadata()->num_rows(), 10'000);
}

TEST(DataFileWriterTest, RowGroupBelowTheBoundStaysOne) {
  sluice::testing::TempDir dir;
  auto writer = DataFileWriter::make(dir.path(), "", rows_of(0, 1)->schema(), {}).ValueOrDie();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(writer->write(*rows_of(i * 1000, 1000)).ok());
  auto add = writer->close();
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  EXPECT_EQ(row_groups_of(dir.path() / add->path), 1);
}

// The page buffers of the second row group (1 MiB pages of distinct 200-byte values) are the
// first one's, freed and kept by the writers' pool; the file still reads back whole.
TEST(DataFileWriterTest, LaterRowGroupsReuseTheFreedPageBuffers) {
  sluice::testing::TempDir dir;
  DataFileOptions options;
  options.row_group_bytes = 1 << 20;
  options.columns_without_dictionary = {"value"};
  options.parallel_columns = false;
  auto schema = arrow::schema({arrow::field("value", arrow::binary())});
  auto writer = DataFileWriter::make(dir.path(), "", schema, options).ValueOrDie();
  const int64_t reuses_before = parquet_writer_pool().reuses();
  for (int b = 0; b < 4; ++b) {
    arrow::BinaryBuilder values;
    for (int i = 0; i < 20'000; ++i) {
      std::string v = std::to_string(b * 20'000 + i);
      v.resize(200, 'x');
      ASSERT_TRUE(values.Append(v).ok());
    }
    auto batch = arrow::RecordBatch::Make(schema, 20'000, {values.Finish().ValueOrDie()});
    ASSERT_TRUE(writer->write(*batch).ok());
  }
  auto add = writer->close();
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  EXPECT_GT(parquet_writer_pool().reuses(), reuses_before);
  const auto file = dir.path() / add->path;
  EXPECT_EQ(row_groups_of(file), 4);
  EXPECT_EQ(parquet::ParquetFileReader::OpenFile(file.string())->metadata()->num_rows(), 80'000);
}

std::vector<int64_t> row_group_rows_of(const std::filesystem::path& file) {
  auto metadata = parquet::ParquetFileReader::OpenFile(file.string())->metadata();
  std::vector<int64_t> rows;
  for (int i = 0; i < metadata->num_row_groups(); ++i) rows.push_back(metadata->RowGroup(i)->num_rows());
  return rows;
}

// Each 1,000-row batch of rows_of is ~116 KB of Arrow data: a budget of 200 KB over row groups
// of at least 100 KB lets a writer alone hold two batches per row group.
TEST(RowGroupBudgetTest, AWriterAloneEndsItsRowGroupOnceTheSharedBudgetIsReached) {
  sluice::testing::TempDir dir;
  RowGroupBudget budget(200'000, 100'000);
  DataFileOptions options;
  options.row_group_budget = &budget;
  auto writer = DataFileWriter::make(dir.path(), "", rows_of(0, 1)->schema(), options).ValueOrDie();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(writer->write(*rows_of(i * 1000, 1000)).ok());
  EXPECT_GT(budget.open_bytes(), 0);
  auto add = writer->close();
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  EXPECT_EQ(budget.open_bytes(), 0);
  EXPECT_EQ(row_group_rows_of(dir.path() / add->path), std::vector<int64_t>(5, 2000));
}

TEST(RowGroupBudgetTest, AnotherWritersOpenRowGroupLeavesLessOfTheBudget) {
  sluice::testing::TempDir dir;
  RowGroupBudget budget(200'000, 100'000);
  DataFileOptions options;
  options.row_group_budget = &budget;
  const auto schema = rows_of(0, 1)->schema();
  auto holder = DataFileWriter::make(dir.path(), "", schema, options).ValueOrDie();
  ASSERT_TRUE(holder->write(*rows_of(0, 1000)).ok());  // stays open: ~116 KB of the budget
  auto writer = DataFileWriter::make(dir.path(), "", schema, options).ValueOrDie();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(writer->write(*rows_of(i * 1000, 1000)).ok());
  auto add = writer->close();
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  EXPECT_EQ(row_group_rows_of(dir.path() / add->path), std::vector<int64_t>(10, 1000));
  holder->abort();
  EXPECT_EQ(budget.open_bytes(), 0);
}

TEST(RowGroupBudgetTest, AFullBudgetNeverEndsARowGroupBelowItsMinimum) {
  sluice::testing::TempDir dir;
  RowGroupBudget budget(1, 300'000);  // always full
  DataFileOptions options;
  options.row_group_budget = &budget;
  auto writer = DataFileWriter::make(dir.path(), "", rows_of(0, 1)->schema(), options).ValueOrDie();
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(writer->write(*rows_of(i * 1000, 1000)).ok());
  auto add = writer->close();
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  EXPECT_EQ(row_group_rows_of(dir.path() / add->path), std::vector<int64_t>(3, 3000));
}

TEST(OpenDataFileTest, ReadsBatchByBatchWithTheSnapshotSchemaAndPartitionValues) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  WriteOptions options;
  options.partition_columns = {"part"};
  options.file.parallel_files = 1;
  auto writer = TableWriter::make(store, nullptr, *rows_of(0, 1)->schema(), options).ValueOrDie();
  ASSERT_TRUE(writer->write(*rows_of(0, 150'000)).ok());
  auto committed = writer->finish().ValueOrDie().commit({});
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  const auto& snapshot = *committed->snapshot;
  ASSERT_EQ(snapshot.files().size(), 1u);
  const Add file = snapshot.files()[0];

  auto reader = open_data_file(*store, snapshot, file);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->schema()->Equals(*snapshot.schema()));
  int64_t rows = 0;
  int batches = 0;
  int64_t next_id = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ASSERT_TRUE((*reader)->ReadNext(&batch).ok());
    if (!batch) break;
    ++batches;
    EXPECT_LE(batch->num_rows(), 64 * 1024);
    EXPECT_TRUE(batch->schema()->Equals(*snapshot.schema()));
    const auto& ids = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("id"));
    const auto& parts = static_cast<const arrow::StringArray&>(*batch->GetColumnByName("part"));
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      ASSERT_EQ(ids.Value(i), next_id++);
      ASSERT_EQ(parts.GetView(i), "k0");
    }
    rows += batch->num_rows();
  }
  EXPECT_EQ(rows, 150'000);
  EXPECT_EQ(batches, 3);
  auto whole = read_data_file(*store, snapshot, file);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ((*whole)->num_rows(), 150'000);
}

TEST(OpenDataFileTest, MissingFileIsAnErrorNamingIt) {
  sluice::testing::TempDir dir;
  auto store = std::make_shared<LogStore>(dir.path() / "t");
  auto writer = TableWriter::make(store, nullptr, *rows_of(0, 1)->schema(), {}).ValueOrDie();
  ASSERT_TRUE(writer->write(*rows_of(0, 10)).ok());
  auto committed = writer->finish().ValueOrDie().commit({});
  ASSERT_TRUE(committed.ok());
  const Add file = committed->snapshot->files()[0];
  std::filesystem::remove(store->table_root() / file.path);
  auto reader = open_data_file(*store, *committed->snapshot, file);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find(file.path), std::string::npos)
      << reader.status().ToString();
}

}  // namespace
}  // namespace sluice::delta
