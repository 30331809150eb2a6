// validate contacts no broker: a value schema inferred from a topic comes from its frozen file
// or stays unknown (the dataset and its downstream are reported as not checked yet), and
// nothing is written to the storage folder.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "../temp_dir.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/sql_runner.h"

namespace sluice::pipeline {
namespace {

const char* kOfflineSql =
    "CREATE STREAMING TABLE bronze AS SELECT value.* FROM STREAM read_kafka(topic => 'events', value_format => "
    "'json');\n"
    "CREATE MATERIALIZED VIEW gold AS SELECT id, count(*) AS n FROM bronze GROUP BY id;\n"
    "CREATE STREAMING TABLE other AS SELECT offset FROM STREAM read_kafka(topic => 'x');\n";

class ValidateOfflineTest : public ::testing::Test {
 protected:
  ValidateOfflineTest() {
    config_.name = "offline";
    config_.storage = storage_.path();
    // Nothing listens here: a connection attempt would wait for the metadata timeout.
    config_.kafka["default"] = {{"bootstrap.servers", "127.0.0.1:1"}};
  }
  testing::TempDir storage_;
  PipelineConfig config_;
};

TEST_F(ValidateOfflineTest, UnknownInferredSchemaIsReportedNotFetched) {
  auto graph = build_graph({{"p.sql", kOfflineSql}});
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  const auto started = std::chrono::steady_clock::now();
  auto report = validate_sql_pipeline(config_, *graph, SchemaInference::kFrozenOnly);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->not_checked.at("bronze"),
            "its value columns are inferred from topic 'events' at the first run and not known yet (sluice validate "
            "--infer-schemas samples the topic now)");
  EXPECT_EQ(report->not_checked.at("gold"), "it reads 'bronze', whose columns are not known yet");
  EXPECT_EQ(report->schemas.count("other"), 1u);
  EXPECT_EQ(report->schemas.count("bronze"), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(storage_.path()));  // nothing written, no frozen schema
}

TEST_F(ValidateOfflineTest, FrozenSchemaIsUsedAndNamed) {
  const auto frozen = storage_.path() / "system" / "inferred_schemas" / "bronze.ddl";
  std::filesystem::create_directories(frozen.parent_path());
  std::ofstream(frozen) << "`id` BIGINT, `name` STRING";
  auto graph = build_graph({{"p.sql", kOfflineSql}});
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  auto report = validate_sql_pipeline(config_, *graph, SchemaInference::kFrozenOnly);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->not_checked.empty());
  EXPECT_EQ(report->schemas.at("bronze")->ToString(), "id: int64\nname: string");
  EXPECT_EQ(report->schemas.at("gold")->field(0)->name(), "id");
  EXPECT_EQ(report->notes.at("bronze"), "value columns inferred from topic 'events', frozen in " + frozen.string());
}

// No streaming runner orders or limits the rows it appends: ORDER BY and LIMIT in a streaming
// table's query are refused where they are written, never ignored (a materialized view keeps them).
TEST_F(ValidateOfflineTest, OrderByAndLimitInAStreamingTableAreRefusedAtTheirPlace) {
  const std::string base = "CREATE STREAMING TABLE k AS SELECT offset FROM STREAM read_kafka(topic => 'x');\n";
  auto order = build_graph({{"p.sql", base + "CREATE STREAMING TABLE s AS SELECT offset FROM STREAM(k) ORDER BY offset;\n"}});
  ASSERT_TRUE(order.ok()) << order.status().message();
  auto refused = validate_sql_pipeline(config_, *order, SchemaInference::kFrozenOnly);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("p.sql:2:67"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("ORDER BY in a streaming table's query"), std::string::npos);

  auto limit = build_graph({{"p.sql", base + "CREATE STREAMING TABLE s AS SELECT offset FROM STREAM(k) LIMIT 5;\n"}});
  ASSERT_TRUE(limit.ok()) << limit.status().message();
  refused = validate_sql_pipeline(config_, *limit, SchemaInference::kFrozenOnly);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("p.sql:2:64"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("LIMIT in a streaming table's query"), std::string::npos);

  auto view = build_graph({{"p.sql", base + "CREATE MATERIALIZED VIEW v AS SELECT offset FROM k ORDER BY offset LIMIT 5;\n"}});
  ASSERT_TRUE(view.ok()) << view.status().message();
  auto planned = validate_sql_pipeline(config_, *view, SchemaInference::kFrozenOnly);
  ASSERT_TRUE(planned.ok()) << planned.status().message();
  EXPECT_EQ(planned->schemas.count("v"), 1u);
}

}  // namespace
}  // namespace sluice::pipeline
