// pipeline.yaml parsing: settings, defaults, and errors that point at line:col.
#include "sluice/pipeline/pipeline_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/pipeline/kafka_ingest_flow.h"

namespace sluice::pipeline {
namespace {

class PipelineConfigTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  arrow::Result<PipelineConfig> load(const std::string& yaml) {
    std::ofstream(dir_.path() / "pipeline.yaml") << yaml;
    return load_pipeline_config(dir_.path());
  }
  std::string file() const { return (dir_.path() / "pipeline.yaml").string(); }
};

TEST_F(PipelineConfigTest, ParsesSettingsAndDefaults) {
  auto cfg = load(R"(name: retail
storage: ./out
mode: continuous
trigger_interval: 500ms
kafka:
  default:
    bootstrap.servers: 127.0.0.1:9092
    security.protocol: plaintext
bronze:
  - topic: user-events
  - table: orders_raw
    topic: orders
    starting_offsets: latest
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->name, "retail");
  EXPECT_EQ(cfg->storage, std::filesystem::weakly_canonical(dir_.path() / "out"));
  EXPECT_EQ(cfg->mode, Mode::kContinuous);
  EXPECT_EQ(cfg->trigger_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(cfg->kafka.at("default").at("security.protocol"), "plaintext");
  ASSERT_EQ(cfg->bronze.size(), 2u);
  EXPECT_EQ(cfg->bronze[0].table, "user_events_bronze");
  EXPECT_EQ(cfg->bronze[0].starting_offsets, StartingOffsets::kEarliest);
  EXPECT_EQ(cfg->bronze[1].table, "orders_raw");
  EXPECT_EQ(cfg->bronze[1].starting_offsets, StartingOffsets::kLatest);
  EXPECT_EQ(cfg->table_path("orders_raw"), cfg->storage / "tables" / "orders_raw");
}

TEST_F(PipelineConfigTest, UnknownKeyPointsAtItWithASuggestion) {
  auto cfg = load("name: p\nkafak:\n  default: {bootstrap.servers: x}\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":2:1: unknown key 'kafak' (did you mean 'kafka'?); allowed here: name, "
                     "storage, mode, trigger_interval, commit, kafka, configuration, libraries, bronze, tables, "
                     "storage_options, serve, alerts");
}

TEST_F(PipelineConfigTest, ServeTakesACpuPriceAndRefusesOtherKeys) {
  auto cfg = load("name: p\nserve: {cpu_price_per_hour: 0.04}\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->serve_cpu_price_per_hour, 0.04);
  EXPECT_FALSE(load("name: p\n")->serve_cpu_price_per_hour.has_value());
  auto unknown = load("name: p\nserve:\n  listen: 0.0.0.0:80\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            file() + ":3:3: unknown key 'serve.listen'; allowed here: cpu_price_per_hour, freshness_targets, kpis");
  auto negative = load("name: p\nserve: {cpu_price_per_hour: -1}\n");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("serve.cpu_price_per_hour must be a non-negative number"),
            std::string::npos)
      << negative.status().message();
  EXPECT_FALSE(load("name: p\nserve: {cpu_price_per_hour: cheap}\n").ok());
}

TEST_F(PipelineConfigTest, ServeFreshnessTargetsAreDurationsPerDataset) {
  auto cfg = load("name: p\nserve:\n  freshness_targets: {orders: 5 minutes, totals: 30s}\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->serve_freshness_targets.at("orders"), std::chrono::minutes(5));
  EXPECT_EQ(cfg->serve_freshness_targets.at("totals"), std::chrono::seconds(30));
  auto list = load("name: p\nserve:\n  freshness_targets: [orders]\n");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("must map dataset names to durations"), std::string::npos);
  auto bad = load("name: p\nserve:\n  freshness_targets: {orders: soon}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind(file() + ":3:", 0), 0u) << bad.status().message();
  EXPECT_NE(bad.status().message().find("serve.freshness_targets.orders"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(load("name: p\nserve:\n  freshness_targets: {orders: 0s}\n").ok());
}

TEST_F(PipelineConfigTest, AzureAndGcsStoragesTakeTheirDeltaRsOptions) {
  struct Case {
    std::string uri, options, root, display;
  };
  for (const auto& c : std::vector<Case>{
           {"az://lake/p/", "  azure_storage_account_name: acct\n  azure_storage_sas_token: \"sv=1&sig=s3cr3t\"\n",
            "lake/p", "az://lake/p"},
           {"abfss://lake@acct.dfs.core.windows.net/p", "  sas_token: \"sv=1&sig=s3cr3t\"\n", "lake/p", "az://lake/p"},
           {"gs://bucket/p", "  storage_emulator_host: http://127.0.0.1:1\n", "bucket/p", "gs://bucket/p"}}) {
    auto cfg = load("name: p\nstorage: " + c.uri + "\nstorage_options:\n" + c.options);
    ASSERT_TRUE(cfg.ok()) << c.uri << ": " << cfg.status().ToString();
    EXPECT_FALSE(cfg->storage_is_local());
    EXPECT_EQ(cfg->storage, c.root);
    EXPECT_EQ(cfg->storage_display(), c.display);
    EXPECT_EQ(cfg->table_path("t"), c.root + "/tables/t");
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "az:"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "gs:"));
}

TEST_F(PipelineConfigTest, AnOptionOfAnotherStoreIsRefusedAtItsLineWithoutItsValue) {
  auto cfg = load("name: p\nstorage: az://lake/p\nstorage_options:\n  azure_storage_account_name: acct\n"
                  "  aws_secret_access_key: s3cr3t-elsewhere\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":5:3: storage option 'aws_secret_access_key' is for S3 and does not apply to az://lake/p "
                     "(Azure Blob storage); remove it");
  cfg = load("name: p\nstorage: gs://b/p\nstorage_options:\n  account_key: s3cr3t-azure\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), file() + ":4:3: storage option 'account_key' is for Azure Blob and does not "
                                              "apply to gs://b/p (GCS storage); remove it");
}

TEST_F(PipelineConfigTest, S3StorageTakesDeltaRsStorageOptions) {
  auto cfg = load("name: p\nstorage: s3://bucket/some/prefix/\nstorage_options:\n"
                  "  aws_endpoint_url: http://127.0.0.1:1\n  AWS_ALLOW_HTTP: \"true\"\n"
                  "  aws_access_key_id: k\n  aws_secret_access_key: s3cr3t-in-options\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_FALSE(cfg->storage_is_local());
  EXPECT_EQ(cfg->storage, "bucket/some/prefix");
  EXPECT_EQ(cfg->storage_display(), "s3://bucket/some/prefix");
  EXPECT_EQ(cfg->table_path("t"), "bucket/some/prefix/tables/t");
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "s3:"));
}

TEST_F(PipelineConfigTest, UnknownStorageOptionIsRefusedAtItsLineWithoutItsValue) {
  auto cfg = load("name: p\nstorage: s3://bucket/p\nstorage_options:\n  aws_access_key_id: k\n"
                  "  aws_secret_acess_key: s3cr3t-mistyped\n");
  ASSERT_FALSE(cfg.ok());
  const auto& message = cfg.status().message();
  EXPECT_EQ(message.rfind(file() + ":5:3: storage option 'aws_secret_acess_key' is not supported", 0), 0u) << message;
  EXPECT_EQ(message.find("s3cr3t-mistyped"), std::string::npos) << message;
}

TEST_F(PipelineConfigTest, StorageOptionsWithALocalStorageAreRefused) {
  auto cfg = load("name: p\nstorage: ./data\nstorage_options:\n  aws_region: eu-west-1\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message().rfind(file() + ":4:3: 'storage_options' are for a storage on an object store", 0),
            0u)
      << cfg.status().message();
}

TEST_F(PipelineConfigTest, S3StorageWithoutCredentialsSaysWhatToSet) {
  auto cfg = load("name: p\nstorage: s3://bucket/p\nstorage_options:\n  aws_endpoint_url: http://127.0.0.1:1\n"
                  "  aws_allow_http: \"true\"\n  aws_access_key_id: k\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            std::string::npos)
      << cfg.status().message();
}

TEST_F(PipelineConfigTest, MalformedYamlGivesLineAndColumn) {
  auto cfg = load("name: p\nbronze: [ {topic: a\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message().rfind(file() + ":", 0), 0u) << cfg.status().message();
  EXPECT_NE(cfg.status().message().find("malformed YAML"), std::string::npos);
}

TEST_F(PipelineConfigTest, TableOnUnknownClusterIsAnError) {
  auto cfg = load(R"(name: p
kafka:
  default: {bootstrap.servers: "127.0.0.1:9092"}
bronze:
  - topic: t
    cluster: other
)");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":6:14: table 't_bronze' reads Kafka cluster 'other', which is not under 'kafka:'");
}

TEST_F(PipelineConfigTest, BadModeAndDurationAreErrors) {
  auto cfg = load("name: p\nmode: sometimes\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":2:7: mode must be 'triggered' or 'continuous', not 'sometimes'");
  EXPECT_FALSE(parse_duration("soon").ok());
  EXPECT_EQ(*parse_duration("10 minutes"), std::chrono::minutes(10));
  // Digits past int64 and products past it are errors, not an uncaught std::out_of_range.
  EXPECT_FALSE(parse_duration("99999999999999999999999 ms").ok());
  EXPECT_FALSE(parse_duration("9223372036854775807 hours").ok());
  EXPECT_EQ(*parse_duration("9223372036854775807 ms"), std::chrono::milliseconds(INT64_MAX));
}

TEST_F(PipelineConfigTest, CommitCadenceSettings) {
  auto cfg = load("name: p\ncommit: {max_rows: 5000, max_bytes: 1048576, interval: 2s}\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->commit_max_rows, 5000);
  EXPECT_EQ(cfg->commit_max_bytes, 1048576);
  EXPECT_EQ(cfg->commit_interval, std::chrono::milliseconds(2000));
  auto defaults = load("name: p\n");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->commit_max_rows.has_value());
  EXPECT_FALSE(defaults->commit_interval.has_value());
}

TEST_F(PipelineConfigTest, BadCommitSettingsPointAtTheValue) {
  auto cfg = load("name: p\ncommit:\n  max_rows: lots\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), file() + ":3:13: commit.max_rows must be a positive whole number, not 'lots'");
  // Past int64: refused at the value, not thrown (the parser is common/text.h's checked one).
  cfg = load("name: p\ncommit:\n  max_bytes: 99999999999999999999\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":3:14: commit.max_bytes must be a positive whole number, not '99999999999999999999'");
  cfg = load("name: p\ncommit: {every: 3}\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("unknown key 'commit.every'"), std::string::npos) << cfg.status().message();
}

// std::regex recursed once per digit: 150 000 of them overflowed the stack (SIGSEGV). Refused,
// the text cut in the message (common/bounded_regex.h, quote_for_error).
TEST_F(PipelineConfigTest, ADurationOfA150000DigitRunIsRefusedNotACrash) {
  auto cfg = load("name: p\ntrigger_interval: " + std::string(150'000, '1') + "s\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("'" + std::string(64, '1') + "... (150001 characters)' is not a duration"),
            std::string::npos)
      << cfg.status().message().substr(0, 300);
}

TEST_F(PipelineConfigTest, MissingFileIsAnError) {
  auto cfg = load_pipeline_config(dir_.path() / "nope");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("is not a pipeline folder"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pipeline
