// The pipeline's stable id in its storage: created once, kept across renames and folder moves,
// adopted from the progress of storage written before it existed; progress ids built from it.
#include "sluice/pipeline/pipeline_identity.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "../temp_dir.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

TEST(ProgressIdTest, KafkaProgressNamesPipelineIdFlowTopicAndPartition) {
  EXPECT_EQ(kafka_progress_id(PipelineId("retail"), "events_bronze", "events", KafkaPartition(2)),
            "retail/events_bronze/events/2");
}

TEST(ProgressIdTest, DeltaProgressNamesUpstreamTableAndSelfJoinSide) {
  const PipelineId id("p");
  EXPECT_EQ(delta_progress_id(id, "f", "uuid-1"), "p/f/uuid-1");
  EXPECT_EQ(delta_progress_id(id, "f", "uuid-1", DeltaReader::kSelfJoinRight), "p/f/uuid-1/right");
}

TEST(ProgressIdTest, FlowProgressMatchesOnlyThatFlowOfThatPipeline) {
  const PipelineId id("p");
  EXPECT_TRUE(is_flow_progress("p/f/t/0", id, "f"));
  EXPECT_FALSE(is_flow_progress("p/f2/t/0", id, "f"));
  EXPECT_FALSE(is_flow_progress("q/f/t/0", id, "f"));
}

TEST(ProgressIdTest, PipelineOfProgressIsTheFirstSegment) {
  EXPECT_EQ(pipeline_of_progress("shop/orders/t/3"), PipelineId("shop"));
  EXPECT_EQ(pipeline_of_progress("shop/orders/uuid"), PipelineId("shop"));
  EXPECT_EQ(pipeline_of_progress("0b5a6c1e-spark-query-id"), std::nullopt);
  EXPECT_EQ(pipeline_of_progress("a/b"), std::nullopt);
}

class PipelineIdentityTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;

  // A pipeline folder named `folder` with `name`, its storage at `storage` (absolute).
  PipelineConfig pipeline(const std::string& folder, const std::string& name, const fs::path& storage) {
    const auto d = dir_.path() / folder;
    fs::create_directories(d);
    std::ofstream(d / "pipeline.yaml") << "name: " << name << "\nstorage: " << storage.string()
                                       << "\nkafka:\n  default:\n    bootstrap.servers: 127.0.0.1:1\n";
    auto config = load_pipeline_config(d);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    return *config;
  }

  // A table under `storage` whose log records progress under `app_id` (as older sluice wrote).
  static void table_with_progress(const fs::path& storage, const std::string& table, const std::string& app_id) {
    auto store = std::make_shared<delta::LogStore>(storage / "tables" / table);
    auto schema = arrow::schema({arrow::field("v", arrow::int64())});
    delta::Transaction txn(store, nullptr);
    txn.set_protocol(delta::protocol_for_schema(*schema));
    txn.set_metadata(*delta::new_table_metadata(*schema, table, std::nullopt));
    txn.set_txn(app_id, 42);
    auto result = txn.commit({});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
  }

  fs::path storage() const { return dir_.path() / "storage"; }
};

TEST_F(PipelineIdentityTest, FirstRunRecordsTheNameAsId) {
  auto config = pipeline("pipe", "shop", storage());
  auto opened = open_pipeline_identity(config);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->created);
  EXPECT_EQ(opened->identity.id, PipelineId("shop"));
  EXPECT_FALSE(opened->renamed_from);
  EXPECT_TRUE(fs::exists(storage() / "system" / "pipeline.json"));
}

TEST_F(PipelineIdentityTest, RenameKeepsTheIdAndIsReportedOnce) {
  auto config = pipeline("pipe", "shop", storage());
  ASSERT_TRUE(open_pipeline_identity(config).ok());
  auto renamed = pipeline("pipe", "store", storage());
  auto opened = open_pipeline_identity(renamed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id, PipelineId("shop"));
  EXPECT_EQ(opened->renamed_from, "shop");
  auto again = open_pipeline_identity(renamed);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->identity.id, PipelineId("shop"));
  EXPECT_FALSE(again->renamed_from);  // recorded: the next run is no rename
}

TEST_F(PipelineIdentityTest, OpenPipelineStorageSetsTheConfigsId) {
  auto config = pipeline("pipe", "shop", storage());
  ASSERT_TRUE(open_pipeline_storage(config).ok());
  auto renamed = pipeline("pipe", "store", storage());
  ASSERT_TRUE(open_pipeline_storage(renamed).ok());
  EXPECT_EQ(renamed.id, PipelineId("shop"));
  EXPECT_EQ(kafka_progress_id(renamed.id, "f", "t", KafkaPartition(0)), "shop/f/t/0");
}

TEST_F(PipelineIdentityTest, StorageOfOlderVersionsAdoptsTheNameItsProgressWasRecordedUnder) {
  // Written before pipeline.json existed, by a pipeline named 'legacy'; renamed with the upgrade.
  table_with_progress(storage(), "bronze", "legacy/bronze/events/0");
  table_with_progress(storage(), "silver", "legacy/silver/0b5a-uuid");
  auto config = pipeline("pipe", "renamed", storage());
  auto opened = open_pipeline_identity(config);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id, PipelineId("legacy"));
  EXPECT_EQ(opened->renamed_from, "legacy");
}

TEST_F(PipelineIdentityTest, ProgressOfSeveralNamesWithoutARecordIsRefusedWithTheNames) {
  table_with_progress(storage(), "a", "one/a/t/0");
  table_with_progress(storage(), "b", "two/b/t/0");
  auto config = pipeline("pipe", "three", storage());
  auto opened = open_pipeline_identity(config);
  ASSERT_FALSE(opened.ok());
  const auto& m = opened.status().message();
  EXPECT_NE(m.find("'one', 'two'"), std::string::npos) << m;
  EXPECT_NE(m.find("set 'name:'"), std::string::npos) << m;
  // One of them is the current name: that one continues (what older versions did).
  auto two = pipeline("pipe", "two", storage());
  auto continued = open_pipeline_identity(two);
  ASSERT_TRUE(continued.ok()) << continued.status().ToString();
  EXPECT_EQ(continued->identity.id, PipelineId("two"));
}

TEST_F(PipelineIdentityTest, SecondFolderPointingAtTheSameStorageIsRefusedNamingBoth) {
  auto first = pipeline("first", "shop", storage());
  ASSERT_TRUE(open_pipeline_identity(first).ok());
  auto second = pipeline("second", "other", storage());
  auto opened = open_pipeline_identity(second);
  ASSERT_FALSE(opened.ok());
  const auto& m = opened.status().message();
  EXPECT_NE(m.find((dir_.path() / "first").string()), std::string::npos) << m;
  EXPECT_NE(m.find((dir_.path() / "second").string()), std::string::npos) << m;
  EXPECT_NE(m.find("must not share one storage"), std::string::npos) << m;
}

TEST_F(PipelineIdentityTest, MovedFolderContinuesUnderTheSameId) {
  auto first = pipeline("first", "shop", storage());
  ASSERT_TRUE(open_pipeline_identity(first).ok());
  fs::rename(dir_.path() / "first", dir_.path() / "moved");
  auto config = load_pipeline_config(dir_.path() / "moved");
  ASSERT_TRUE(config.ok());
  auto opened = open_pipeline_identity(*config);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id, PipelineId("shop"));
  EXPECT_EQ(opened->moved_from, dir_.path() / "first");
}

TEST_F(PipelineIdentityTest, ProcessesStartingTogetherAgreeOnOneId) {
  // Two folders' worth of names racing for a fresh storage: exactly one record wins.
  auto config = pipeline("pipe", "shop", storage());
  std::vector<PipelineId> ids(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto opened = open_pipeline_identity(config);
      if (opened.ok()) ids[i] = opened->identity.id;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, PipelineId("shop"));
}

TEST_F(PipelineIdentityTest, UnreadableRecordIsRefusedSayingWhatToDo) {
  auto config = pipeline("pipe", "shop", storage());
  fs::create_directories(storage() / "system");
  std::ofstream(storage() / "system" / "pipeline.json") << "{not json";
  auto opened = open_pipeline_identity(config);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("pipeline.json"), std::string::npos);
  EXPECT_NE(opened.status().message().find("delete it"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pipeline
