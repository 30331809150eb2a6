// Table locations (paths and URIs), storage options, and the local ObjectStore's guarantees.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../temp_dir.h"
#include "sluice/storage/http_util.h"
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

TEST(LocationTest, GcsUrisSplitIntoBucketAndPrefix) {
  auto loc = parse_location("gs://lake/tables/orders/", "table path");
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->scheme, Scheme::kGcs);
  EXPECT_EQ(loc->bucket, "lake");
  EXPECT_EQ(loc->path, "tables/orders");
  auto no_bucket = parse_location("gs:///t", "table path");
  ASSERT_FALSE(no_bucket.ok());
  EXPECT_EQ(no_bucket.status().message(), "table path 'gs:///t' names no bucket; write gs://bucket/prefix");
  auto port = parse_location("gs://host:4443/t", "table path");
  ASSERT_FALSE(port.ok());
  EXPECT_NE(port.status().message().find("give the endpoint and credentials as STORAGE_EMULATOR_HOST"),
            std::string::npos);
  auto gcs = parse_location("gcs://b/t", "table path");
  ASSERT_FALSE(gcs.ok());
  EXPECT_NE(gcs.status().message().find("unknown scheme 'gcs://'"), std::string::npos);
}

TEST(LocationTest, AzureUrisSplitIntoContainerAccountAndPrefix) {
  struct Case {
    std::string uri, container, account, path;
  };
  for (const auto& c : std::vector<Case>{
           {"az://lake/tables/orders/", "lake", "", "tables/orders"},
           {"azure://lake", "lake", "", ""},
           {"abfss://lake@acct.dfs.core.windows.net/t", "lake", "acct", "t"},
           {"abfs://lake@acct.blob.core.windows.net/a/b", "lake", "acct", "a/b"},
           {"abfss://lake/t", "lake", "", "t"}}) {
    auto loc = parse_location(c.uri, "table path");
    ASSERT_TRUE(loc.ok()) << loc.status();
    EXPECT_EQ(loc->scheme, Scheme::kAzure) << c.uri;
    EXPECT_EQ(loc->bucket, c.container) << c.uri;
    EXPECT_EQ(loc->account, c.account) << c.uri;
    EXPECT_EQ(loc->path, c.path) << c.uri;
  }
}

TEST(LocationTest, MalformedAzureUrisSayWhatToWrite) {
  for (const auto& [uri, message] : std::vector<std::pair<std::string, std::string>>{
           {"az:///t", "names no container; write az://container/prefix"},
           {"abfss://c@acct.example.com/t", "the host after '@' must be <account>.dfs.core.windows.net"},
           {"az://c/t?sv=2021&sig=x", "query strings (SAS tokens) or ports in an Azure URI are not supported"}}) {
    auto loc = parse_location(uri, "table path");
    ASSERT_FALSE(loc.ok()) << uri;
    EXPECT_NE(loc.status().message().find(message), std::string::npos) << loc.status();
  }
}

TEST(LocationTest, AdlsGen1IsNotSupportedYet) {
  for (const std::string uri : {"adl://store/t"}) {
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
            "table path 'hdfs://nn/t' has an unknown scheme 'hdfs://'; use a local path, file:///path, "
            "s3://bucket/prefix, gs://bucket/prefix or az://container/prefix");
  auto no_bucket = parse_location("s3:///t", "table path");
  ASSERT_FALSE(no_bucket.ok());
  EXPECT_NE(no_bucket.status().message().find("names no bucket"), std::string::npos);
}

TEST(StorageOptionsTest, DeltaRsKeysAreAcceptedInAnyCaseAndOthersRefused) {
  auto ok = normalize_storage_options({{"aws_region", "eu-west-1"}, {"AWS_ENDPOINT", "http://x"}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("AWS_REGION"), "eu-west-1");
  EXPECT_EQ(ok->at("AWS_ENDPOINT_URL"), "http://x");
  auto google = normalize_storage_options({{"google_service_account", "/k.json"}, {"service_account_key", "{}"}});
  ASSERT_TRUE(google.ok()) << google.status();
  EXPECT_EQ(google->at("GOOGLE_SERVICE_ACCOUNT"), "/k.json");
  EXPECT_EQ(google->at("GOOGLE_SERVICE_ACCOUNT_KEY"), "{}");
  auto refused = normalize_storage_options({{"AWS_S3_LOCKING_PROVIDER", "dynamodb"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("storage option 'AWS_S3_LOCKING_PROVIDER' is not supported"),
            std::string::npos);
  auto azure = normalize_storage_options(
      {{"azure_storage_access_key", "k"}, {"AZURE_STORAGE_SAS_KEY", "s"}, {"azure_storage_use_emulator", "true"}});
  ASSERT_TRUE(azure.ok()) << azure.status();
  EXPECT_EQ(azure->at("AZURE_STORAGE_ACCOUNT_KEY"), "k");
  EXPECT_EQ(azure->at("AZURE_STORAGE_SAS_TOKEN"), "s");
  EXPECT_EQ(azure->at("AZURE_STORAGE_USE_EMULATOR"), "true");
  // object_store's short spellings.
  auto short_keys = normalize_storage_options(
      {{"account_name", "a"}, {"access_key", "k"}, {"sas_token", "s"}, {"use_emulator", "true"}});
  ASSERT_TRUE(short_keys.ok()) << short_keys.status();
  EXPECT_EQ(*short_keys, (StorageOptions{{"AZURE_STORAGE_ACCOUNT_NAME", "a"}, {"AZURE_STORAGE_ACCOUNT_KEY", "k"},
                                         {"AZURE_STORAGE_SAS_TOKEN", "s"}, {"AZURE_STORAGE_USE_EMULATOR", "true"}}));
  // A service principal's settings, in object_store's spellings.
  auto principal = normalize_storage_options(
      {{"client_id", "c"}, {"AZURE_STORAGE_CLIENT_SECRET", "s"}, {"azure_authority_id", "t"}, {"authority_host", "h"}});
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(*principal, (StorageOptions{{"AZURE_CLIENT_ID", "c"}, {"AZURE_CLIENT_SECRET", "s"},
                                        {"AZURE_TENANT_ID", "t"}, {"AZURE_AUTHORITY_HOST", "h"}}));
  EXPECT_EQ(normalize_storage_options({{"federated_token_file", "/t"}})->at("AZURE_FEDERATED_TOKEN_FILE"), "/t");
  // The other Azure AD identities are refused by name.
  auto msi = normalize_storage_options({{"azure_msi_endpoint", "x"}});
  ASSERT_FALSE(msi.ok());
  EXPECT_NE(msi.status().message().find("'azure_msi_endpoint' is not supported yet: of the Azure AD "
                                        "identities only a service principal"),
            std::string::npos)
      << msi.status().message();
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

// An object size a store answered (S3/Azure Content-Length or listing <Size>, GCS "size") was
// read with strtoll and no end check: "12abc" was 12 bytes and "abc" 0. It is refused now,
// naming the request and the text.
TEST(ObjectSizeTest, AGarbledSizeFromAStoreIsAnErrorNotAShortObject) {
  EXPECT_EQ(*parse_object_size("0", "S3 HEAD s3://b/k"), 0);
  EXPECT_EQ(*parse_object_size("9223372036854775807", "S3 HEAD s3://b/k"), INT64_MAX);
  for (const std::string bad : {"", "12abc", "abc", "-1", " 12", "99999999999999999999"}) {
    auto size = parse_object_size(bad, "S3 HEAD s3://b/k");
    ASSERT_FALSE(size.ok()) << "'" << bad << "' was " << *size;
    EXPECT_TRUE(size.status().IsIOError());
    EXPECT_EQ(size.status().message(), "S3 HEAD s3://b/k answered a size '" + bad +
                                           "' that is not a whole number of bytes >= 0; check the endpoint is the "
                                           "object store it claims to be");
  }
}

}  // namespace
}  // namespace sluice::storage
