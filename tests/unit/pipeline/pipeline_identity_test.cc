// The pipeline's stable id in its storage: created once, kept across renames and folder moves,
// adopted from the progress of storage written before it existed; progress ids built from it.
#include "sluice/pipeline/pipeline_identity.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <algorithm>
#include <latch>
#include <thread>
#include <type_traits>

#include "../temp_dir.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

// A PipelineId comes only from a storage's identity record: `name`'s, on a fresh storage.
PipelineId id_of_fresh_storage(const std::string& name) {
  static sluice::testing::TempDir dir;
  PipelineConfig config;
  config.name = name;
  config.dir = dir.path() / name;
  config.storage = dir.path() / ("storage-" + name);
  auto opened = open_pipeline_identity(config, {});
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? opened->identity.id : PipelineId();
}

TEST(ProgressIdTest, KafkaProgressNamesPipelineIdFlowTopicAndPartition) {
  EXPECT_EQ(kafka_progress_id(id_of_fresh_storage("retail"), "events_bronze", "events", KafkaPartition(2)),
            "retail/events_bronze/events/2");
}

TEST(ProgressIdTest, DeltaProgressNamesUpstreamTableAndSelfJoinSide) {
  const auto id = id_of_fresh_storage("p");
  EXPECT_EQ(delta_progress_id(id, "f", "uuid-1"), "p/f/uuid-1");
  EXPECT_EQ(delta_progress_id(id, "f", "uuid-1", DeltaReader::kSelfJoinRight), "p/f/uuid-1/right");
}

TEST(ProgressIdTest, FlowProgressMatchesOnlyThatFlowOfThatPipeline) {
  const auto id = id_of_fresh_storage("p");
  EXPECT_TRUE(is_flow_progress("p/f/t/0", id, "f"));
  EXPECT_FALSE(is_flow_progress("p/f2/t/0", id, "f"));
  EXPECT_FALSE(is_flow_progress("q/f/t/0", id, "f"));
}

TEST(ProgressIdTest, OwnerOfProgressIsItsPipelineAndFlowSegments) {
  auto owner = owner_of_progress("shop/orders/t/3");
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->pipeline, "shop");
  EXPECT_EQ(owner->flow, "orders");
  EXPECT_EQ(owner_of_progress("shop/orders/uuid")->pipeline, "shop");
  EXPECT_FALSE(owner_of_progress("0b5a6c1e-spark-query-id"));
  EXPECT_FALSE(owner_of_progress("a/b"));
}

// The display name converts into no PipelineId: progress ids cannot be built from it.
static_assert(!std::is_constructible_v<PipelineId, std::string>);
static_assert(!std::is_constructible_v<PipelineId, const char*>);

class PipelineIdentityTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;

  // A pipeline folder named `folder` with `name`, its storage at `storage` (absolute).
  // With `sql`, the folder holds it as p.sql.
  PipelineConfig pipeline(const std::string& folder, const std::string& name, const fs::path& storage,
                          const std::string& sql = "") {
    const auto d = dir_.path() / folder;
    fs::create_directories(d);
    std::ofstream(d / "pipeline.yaml") << "name: " << name << "\nstorage: " << storage.string()
                                       << "\nkafka:\n  default:\n    bootstrap.servers: 127.0.0.1:1\n";
    if (!sql.empty()) std::ofstream(d / "p.sql") << sql;
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

  // The layout of a pipeline whose tables have one flow each, named after them.
  static PipelineLayout tables(std::set<std::string> names) { return {names, names}; }

  // The layout `sluice run` passes for the pipeline in `config`'s folder.
  static PipelineLayout layout(const PipelineConfig& config) {
    auto sql = load_sql_sources(config);
    EXPECT_TRUE(sql.ok()) << sql.status().ToString();
    if (!sql.ok() || sql->empty()) return pipeline_layout(config, nullptr);
    auto graph = build_graph(std::move(*sql));
    EXPECT_TRUE(graph.ok()) << graph.status().ToString();
    return pipeline_layout(config, graph.ok() ? &*graph : nullptr);
  }
};

constexpr const char* kOrdersSql =
    "CREATE STREAMING TABLE orders AS SELECT * FROM STREAM read_kafka(topic => 'orders');";
constexpr const char* kClicksSql =
    "CREATE STREAMING TABLE clicks AS SELECT * FROM STREAM read_kafka(topic => 'clicks');";

TEST_F(PipelineIdentityTest, FirstRunRecordsTheNameAsId) {
  auto config = pipeline("pipe", "shop", storage());
  auto opened = open_pipeline_identity(config, {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->created);
  EXPECT_EQ(opened->identity.id.value(), "shop");
}

TEST_F(PipelineIdentityTest, RenameKeepsTheIdAndIsReportedOnce) {
  auto config = pipeline("pipe", "shop", storage());
  ASSERT_TRUE(open_pipeline_identity(config, {}).ok());
  auto renamed = pipeline("pipe", "store", storage());
  auto opened = open_pipeline_identity(renamed, {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "shop");
  EXPECT_EQ(opened->renamed_from, "shop");
  auto again = open_pipeline_identity(renamed, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->identity.id.value(), "shop");
  EXPECT_FALSE(again->renamed_from);
}

TEST_F(PipelineIdentityTest, OpenPipelineStorageSetsTheConfigsId) {
  auto config = pipeline("pipe", "shop", storage());
  ASSERT_TRUE(open_pipeline_storage(config, {}).ok());
  auto renamed = pipeline("pipe", "store", storage());
  ASSERT_TRUE(open_pipeline_storage(renamed, {}).ok());
  EXPECT_EQ(renamed.id.value(), "shop");
  EXPECT_EQ(kafka_progress_id(renamed.id, "f", "t", KafkaPartition(0)), "shop/f/t/0");
}

TEST_F(PipelineIdentityTest, StorageOfOlderVersionsAdoptsTheNameItsProgressWasRecordedUnder) {
  // Written before pipeline.json existed, by a pipeline named 'legacy'; renamed with the upgrade.
  table_with_progress(storage(), "bronze", "legacy/bronze/events/0");
  table_with_progress(storage(), "bronze_dead_letter", "legacy/bronze/events/0");
  table_with_progress(storage(), "silver", "legacy/silver/0b5a-uuid");
  auto config = pipeline("pipe", "renamed", storage());
  auto opened = open_pipeline_identity(config, tables({"bronze", "silver"}));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "legacy");
  EXPECT_EQ(opened->renamed_from, "legacy");
}

TEST_F(PipelineIdentityTest, AdoptionLooksOnlyAtThisPipelinesTablesAndFlows) {
  // An orphaned table left by an earlier name, and a table of this pipeline that also carries
  // another pipeline's flow progress: neither is this pipeline's progress.
  table_with_progress(storage(), "old_orders", "before/old_orders/orders/0");
  table_with_progress(storage(), "orders", "legacy/orders/orders/0");
  {
    auto store = std::make_shared<delta::LogStore>(storage() / "tables" / "orders");
    auto snapshot = delta::Snapshot::load(*store);
    ASSERT_TRUE(snapshot.ok());
    delta::Transaction txn(store, *snapshot);
    txn.set_txn("other/foreign_flow/orders/0", 7);
    ASSERT_TRUE(txn.commit({}).ok());
  }
  auto config = pipeline("pipe", "renamed", storage());
  auto opened = open_pipeline_identity(config, tables({"orders"}));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "legacy");  // not refused, not 'before' or 'other'
}

TEST_F(PipelineIdentityTest, TwoLegacyPipelinesOnOneStorageEachAdoptTheirOwn) {
  // Older versions let two pipelines share a storage; each keeps its own progress.
  table_with_progress(storage(), "orders", "orders/orders/orders/0");
  table_with_progress(storage(), "clicks", "clicks/clicks/clicks/0");
  auto clicks = pipeline("clicks", "clicks_renamed", dir_.path() / "clicks-storage");
  clicks.storage = storage();
  auto opened = open_pipeline_identity(clicks, tables({"clicks"}));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "clicks");
}

TEST_F(PipelineIdentityTest, UnreadableTableIsSkippedWithAWarning) {
  table_with_progress(storage(), "orders", "legacy/orders/orders/0");
  table_with_progress(storage(), "orders_quarantine", "legacy/orders/orders/0");
  // The quarantine table's log is garbage: it is skipped, the id comes from the others.
  for (const auto& e : fs::directory_iterator(storage() / "tables" / "orders_quarantine" / "_delta_log")) {
    if (e.path().extension() == ".json") std::ofstream(e.path(), std::ios::trunc) << "{not json\n";
  }
  auto config = pipeline("pipe", "renamed", storage());
  ::testing::internal::CaptureStderr();
  auto opened = open_pipeline_identity(config, tables({"orders"}));
  const auto err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "legacy");
  EXPECT_NE(err.find("table 'orders_quarantine'"), std::string::npos) << err;
  EXPECT_NE(err.find("skipped"), std::string::npos) << err;
}

TEST_F(PipelineIdentityTest, ProgressOfSeveralNamesWithoutARecordIsRefusedWithTheTablesAndNames) {
  table_with_progress(storage(), "a", "one/a/t/0");
  table_with_progress(storage(), "b", "two/b/t/0");
  auto config = pipeline("pipe", "three", storage());
  auto opened = open_pipeline_identity(config, tables({"a", "b"}));
  ASSERT_FALSE(opened.ok());
  const auto& m = opened.status().message();
  EXPECT_NE(m.find("table 'a' -> progress of pipeline 'one'"), std::string::npos) << m;
  EXPECT_NE(m.find("table 'b' -> progress of pipeline 'two'"), std::string::npos) << m;
  EXPECT_NE(m.find("Set 'name:'"), std::string::npos) << m;
  // One of them is the current name: that one continues (what older versions did).
  auto two = pipeline("pipe", "two", storage());
  auto continued = open_pipeline_identity(two, tables({"a", "b"}));
  ASSERT_TRUE(continued.ok()) << continued.status().ToString();
  EXPECT_EQ(continued->identity.id.value(), "two");
}

TEST_F(PipelineIdentityTest, SecondFolderOfAnotherPipelineOnTheSameStorageIsRefusedNamingBoth) {
  auto first = pipeline("first", "shop", storage(), kOrdersSql);
  ASSERT_TRUE(open_pipeline_identity(first, layout(first)).ok());
  auto second = pipeline("second", "other", storage(), kClicksSql);
  auto opened = open_pipeline_identity(second, layout(second));
  ASSERT_FALSE(opened.ok());
  const auto& m = opened.status().message();
  EXPECT_NE(m.find((dir_.path() / "first").string()), std::string::npos) << m;
  EXPECT_NE(m.find((dir_.path() / "second").string()), std::string::npos) << m;
  EXPECT_NE(m.find("must not share one storage"), std::string::npos) << m;
  EXPECT_NE(m.find("Give 'other' its own 'storage:'"), std::string::npos) << m;
  EXPECT_NE(m.find("it has no tables there yet"), std::string::npos) << m;
}

TEST_F(PipelineIdentityTest, SecondLegacyPipelineOnASharedStorageIsToldToMoveItsTablesNotToStartOver) {
  // Older versions let 'orders' and 'clicks' share a storage; 'clicks' ran first with this one.
  table_with_progress(storage(), "orders", "orders/orders/orders/0");
  auto clicks = pipeline("clicks", "clicks", storage(), kClicksSql);
  ASSERT_TRUE(open_pipeline_identity(clicks, layout(clicks)).ok());
  auto orders = pipeline("orders", "orders", storage(), kOrdersSql);
  auto opened = open_pipeline_identity(orders, layout(orders));
  ASSERT_FALSE(opened.ok());
  const auto& m = opened.status().message();
  EXPECT_NE(m.find("after moving its tables (orders) from " + (storage() / "tables").string()), std::string::npos)
      << m;
  EXPECT_NE(m.find("nothing is read twice"), std::string::npos) << m;
  // Doing so continues its progress.
  const auto own = dir_.path() / "orders-storage";
  fs::create_directories(own / "tables");
  fs::rename(storage() / "tables" / "orders", own / "tables" / "orders");
  auto moved = pipeline("orders", "orders", own, kOrdersSql);
  auto continued = open_pipeline_identity(moved, layout(moved));
  ASSERT_TRUE(continued.ok()) << continued.status().ToString();
  EXPECT_EQ(continued->identity.id.value(), "orders");
  EXPECT_EQ(kafka_progress_id(continued->identity.id, "orders", "orders", KafkaPartition(0)), "orders/orders/orders/0");
}

TEST_F(PipelineIdentityTest, ReleaseDirectoriesAndCopiesOfOneFolderAreOnePipeline) {
  // releases/v1 (kept) and releases/v2 reached through a `current` symlink, storage absolute.
  auto v1 = pipeline("releases/v1", "shop", storage(), kOrdersSql);
  ASSERT_TRUE(open_pipeline_identity(v1, layout(v1)).ok());
  // v2 adds a table: same name.
  pipeline("releases/v2", "shop", storage(), std::string(kOrdersSql) + "\n" + kClicksSql);
  fs::create_directory_symlink(dir_.path() / "releases" / "v2", dir_.path() / "current");
  auto current = load_pipeline_config(dir_.path() / "current");
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  auto opened = open_pipeline_identity(*current, layout(*current));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "shop");
  // A copy of v1 renamed (same tables) is the same pipeline renamed, not another one.
  auto copy = pipeline("copy", "shop_eu", storage(), kOrdersSql);
  auto renamed = open_pipeline_identity(copy, layout(copy));
  ASSERT_TRUE(renamed.ok()) << renamed.status().ToString();
  EXPECT_EQ(renamed->identity.id.value(), "shop");
}

TEST_F(PipelineIdentityTest, MovedFolderContinuesUnderTheSameId) {
  auto first = pipeline("first", "shop", storage());
  ASSERT_TRUE(open_pipeline_identity(first, {}).ok());
  fs::rename(dir_.path() / "first", dir_.path() / "moved");
  auto config = load_pipeline_config(dir_.path() / "moved");
  ASSERT_TRUE(config.ok());
  auto opened = open_pipeline_identity(*config, {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->identity.id.value(), "shop");
  EXPECT_EQ(opened->moved_from, dir_.path() / "first");
}

TEST_F(PipelineIdentityTest, ProcessesStartingTogetherAgreeOnOneId) {
  // Runs under different names racing for a fresh storage, released together: exactly one
  // record wins and every run continues with its id (a check-then-write would let several
  // create their own, an in-place write would let some read half a record). Rounds over fresh
  // storages widen the chance of hitting a window.
  constexpr int kRounds = 40;
  constexpr size_t kRuns = 8;
  for (int round = 0; round < kRounds; ++round) {
    const auto store = dir_.path() / fmt::format("storage{}", round);
    std::vector<PipelineConfig> configs;
    for (size_t i = 0; i < kRuns; ++i) configs.push_back(pipeline("pipe", fmt::format("shop{}", i), store));
    std::vector<std::string> ids(kRuns);
    std::vector<int> created(kRuns, 0);
    std::latch start(kRuns);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < kRuns; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        auto opened = open_pipeline_identity(configs[i], {});
        ids[i] = opened.ok() ? opened->identity.id.value() : opened.status().ToString();
        created[i] = opened.ok() && opened->created;
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& id : ids) ASSERT_EQ(id, ids[0]) << "round " << round;
    EXPECT_TRUE(ids[0].starts_with("shop")) << ids[0];
    EXPECT_EQ(std::count(created.begin(), created.end(), 1), 1) << "round " << round;
  }
}

TEST_F(PipelineIdentityTest, RunnersRefuseAConfigWhoseStorageWasNotOpened) {
  // No id, no progress: refused with an error (not an abort), before anything is read or written.
  auto config = pipeline("pipe", "shop", storage(), kOrdersSql);
  auto sql = load_sql_sources(config);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  auto graph = build_graph(std::move(*sql));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  auto run = run_sql_pipeline_once(config, *graph);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("before its storage"), std::string::npos) << run.status().message();
  EXPECT_FALSE(fs::exists(storage() / "tables" / "orders"));
  ASSERT_TRUE(open_pipeline_storage(config, layout(config)).ok());
  EXPECT_TRUE(check_storage_opened(config).ok());
}

TEST_F(PipelineIdentityTest, UnreadableRecordIsRefusedSayingWhatToDo) {
  auto config = pipeline("pipe", "shop", storage());
  fs::create_directories(storage() / "system");
  std::ofstream(storage() / "system" / "pipeline.json") << "{not json";
  auto opened = open_pipeline_identity(config, {});
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("pipeline.json"), std::string::npos);
  EXPECT_NE(opened.status().message().find("delete it"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pipeline
