// Table locations (paths and URIs), storage options, and the local ObjectStore's guarantees.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../temp_dir.h"
#include "sluice/storage/local_store.h"
#include "sluice/storage/location.h"
#include "sluice/storage/object_store.h"

namespace sluice::storage {
namespace {

TEST(LocationTest, PathsAndFileUrisAreLocal) {
  for (const auto& [text, path] : std::vector<std::pair<std::string, std::string>>{
           {"/data/t", "/data/t"}, {"rel/t", "rel/t"}, {"file:///data/t", "/data/t"}, {"a:b/t", "a:b/t"}}) {
    auto loc = parse_location(text, "table path");
    ASSERT_TRUE(loc.ok()) << loc.status();
    EXPECT_EQ(loc->scheme, Scheme::kLocal) << text;
    EXPECT_EQ(loc->path, path) << text;
  }
}

TEST(LocationTest, S3UrisSplitIntoBucketAndPrefix) {
  auto loc = parse_location("s3://lake/tables/orders/", "table path");
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->scheme, Scheme::kS3);
  EXPECT_EQ(loc->bucket, "lake");
  EXPECT_EQ(loc->path, "tables/orders");
  auto root = parse_location("s3://lake", "table path");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->path, "");
}

TEST(LocationTest, AzureAndGcsAreNotSupportedYet) {
  for (const std::string uri : {"az://c/t", "abfs://c@a.dfs.core.windows.net/t", "abfss://c/t", "gs://b/t"}) {
    auto loc = parse_location(uri, "table path");
    ASSERT_FALSE(loc.ok()) << uri;
    EXPECT_TRUE(loc.status().IsNotImplemented()) << uri;
    EXPECT_NE(loc.status().message().find("storage is not supported yet"), std::string::npos) << loc.status();
  }
}

TEST(LocationTest, UnknownSchemesAndMissingBucketsAreErrorsSayingWhatToWrite) {
  auto unknown = parse_location("hdfs://nn/t", "table path");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "table path 'hdfs://nn/t' has an unknown scheme 'hdfs://'; use a local path, file:///path or "
            "s3://bucket/prefix");
  auto no_bucket = parse_location("s3:///t", "table path");
  ASSERT_FALSE(no_bucket.ok());
  EXPECT_NE(no_bucket.status().message().find("names no bucket"), std::string::npos);
}

TEST(StorageOptionsTest, DeltaRsKeysAreAcceptedInAnyCaseAndOthersRefused) {
  auto ok = normalize_storage_options({{"aws_region", "eu-west-1"}, {"AWS_ENDPOINT", "http://x"}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("AWS_REGION"), "eu-west-1");
  EXPECT_EQ(ok->at("AWS_ENDPOINT_URL"), "http://x");
  auto refused = normalize_storage_options({{"AWS_S3_LOCKING_PROVIDER", "dynamodb"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("storage option 'AWS_S3_LOCKING_PROVIDER' is not supported"),
            std::string::npos);
}

TEST(LocalStoreTest, PutIfAbsentWritesOnceAndLeavesNoTempFile) {
  sluice::testing::TempDir dir;
  LocalStore store;
  const std::string path = (dir.path() / "log" / "00000000000000000000.json").string();
  ASSERT_EQ(*store.put_if_absent(path, "first"), PutResult::kWritten);
  ASSERT_EQ(*store.put_if_absent(path, "second"), PutResult::kAlreadyExists);
  EXPECT_EQ(*store.read(path), "first");
  auto listed = store.list((dir.path() / "log").string(), "");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name, "00000000000000000000.json");
}

TEST(LocalStoreTest, RacingPutsHaveExactlyOneWinner) {
  sluice::testing::TempDir dir;
  LocalStore store;
  const std::string path = (dir.path() / "00000000000000000007.json").string();
  std::atomic<int> won{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (*store.put_if_absent(path, "writer " + std::to_string(i)) == PutResult::kWritten) ++won;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
}

TEST(LocalStoreTest, ListStartsAfterANameAndMissingFoldersAreEmpty) {
  sluice::testing::TempDir dir;
  LocalStore store;
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(store.put((dir.path() / name).string(), name).ok());
  auto after = store.list(dir.path().string(), "a");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].name, "b");
  EXPECT_TRUE(store.list((dir.path() / "none").string(), "")->empty());
  EXPECT_FALSE(store.head((dir.path() / "none").string())->has_value());
  EXPECT_EQ((*store.head((dir.path() / "b").string()))->size, 1);
}

}  // namespace
}  // namespace sluice::storage
