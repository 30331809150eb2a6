// Delta action JSON serialization round trips and malformed input.
#include "sluice/delta/actions.h"

#include <gtest/gtest.h>

namespace sluice::delta {
namespace {

std::vector<Action> sample_actions() {
  Protocol protocol{3, 7, std::vector<std::string>{"timestampNtz"},
                    std::vector<std::string>{"timestampNtz"}};
  Metadata metadata;
  metadata.id = "6f8e9d3c-0000-4000-8000-000000000001";
  metadata.name = "events";
  metadata.schema_string = R"({"type":"struct","fields":[]})";
  metadata.partition_columns = {"day"};
  metadata.configuration = {{"delta.checkpointInterval", "10"}};
  metadata.created_time = 1700000000000;
  Add add;
  add.path = "day=2024-01-01/part-00000-x.parquet";
  add.partition_values = {{"day", "2024-01-01"}, {"region", std::nullopt}};
  add.size = 1234;
  add.modification_time = 1700000000001;
  add.stats = R"({"numRecords":3})";
  Remove remove;
  remove.path = "old.parquet";
  remove.deletion_timestamp = 1700000000002;
  remove.size = 99;
  Txn txn{"pipe/flow/topic/0", 120000, 1700000000003};
  CommitInfo info;
  info.value = {{"operation", "STREAMING UPDATE"}, {"txnId", "abc"}};
  OtherAction cdc{"cdc", {{"path", "_change_data/x.parquet"}, {"size", 1}}};
  return {protocol, metadata, add, remove, txn, info, cdc};
}

TEST(ActionsTest, CommitRoundTripsEveryActionKind) {
  const auto actions = sample_actions();
  const std::string text = serialize_commit(actions);
  auto parsed = parse_commit(text, "00000000000000000000.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, actions);
  EXPECT_EQ(serialize_commit(*parsed), text);
}

TEST(ActionsTest, SerializesProtocolFieldNames) {
  auto j = to_json(Txn{"app", 7, std::nullopt});
  EXPECT_EQ(j.dump(), R"({"txn":{"appId":"app","version":7}})");
  Add add;
  add.path = "a.parquet";
  add.size = 10;
  add.modification_time = 5;
  add.partition_values = {{"p", std::nullopt}};
  EXPECT_EQ(to_json(add).dump(),
            R"({"add":{"dataChange":true,"modificationTime":5,"partitionValues":{"p":null},"path":"a.parquet","size":10}})");
}

TEST(ActionsTest, ReadsSparkStyleCommitWithUnknownFields) {
  const std::string text =
      R"({"commitInfo":{"timestamp":1,"operation":"WRITE","engineInfo":"Apache-Spark/3.5"}})"
      "\n"
      R"({"add":{"path":"f.parquet","partitionValues":{},"size":5,"modificationTime":2,"dataChange":true,"stats":"{\"numRecords\":1}","tags":{"INSERTION_TIME":"1"},"baseRowId":4}})"
      "\n";
  auto parsed = parse_commit(text, "v.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 2u);
  const auto& add = std::get<Add>((*parsed)[1]);
  EXPECT_EQ(add.path, "f.parquet");
  EXPECT_EQ(add.stats, R"({"numRecords":1})");
  EXPECT_EQ(add.tags->at("INSERTION_TIME"), "1");
}

TEST(ActionsTest, TruncatedLineIsAnErrorNamingFileAndLine) {
  const std::string text = "{\"txn\":{\"appId\":\"a\",\"version\":1}}\n{\"add\":{\"path\":\"x";
  auto parsed = parse_commit(text, "_delta_log/00000000000000000003.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "_delta_log/00000000000000000003.json:2: not valid JSON (truncated or corrupt commit "
            "file?). Restore the file from a backup; sluice does not read past a commit it cannot "
            "read");
}

TEST(ActionsTest, MissingRequiredFieldIsAnError) {
  auto parsed = parse_commit(R"({"txn":{"appId":"a"}})", "c.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "c.json:1: malformed Delta action: 'txn' action lacks required field 'version'. "
            "Restore the file from a backup; sluice does not read past a commit it cannot read");
}

// Lines that parse as JSON but are no action, and commits with no action at all, are
// corruption: each is refused with the file and line, never replayed as "no change".
TEST(ActionsTest, CommitsThatAreNotActionsAreRefusedWithFileAndLine) {
  struct Case {
    std::string text;
    std::string message_start;
  };
  const std::vector<Case> cases = {
      {"", "v.json: empty (0-byte) commit file (no actions): the commit is lost or corrupt."},
      {"\n\n  \n", "v.json: blank commit file (no actions): the commit is lost or corrupt."},
      {"42\n", "v.json:1: malformed Delta action: an action must be a JSON object with exactly one key."},
      {"{}\n", "v.json:1: malformed Delta action: an action must be a JSON object with exactly one key."},
      {"[{\"add\":{}}]\n", "v.json:1: malformed Delta action: an action must be a JSON object"},
      {"{\"commitInfo\":{}}\n{\"frobnicate\":7}\n",
       "v.json:2: malformed Delta action: 'frobnicate' action is not a JSON object"},
      {"{\"commitInfo\":7}\n", "v.json:1: malformed Delta action: 'commitInfo' action is not a JSON object"},
      {"{\"add\":{\"path\":\"f\",\"size\":\"big\"}}\n", "v.json:1: malformed Delta action: "},
      // Numbers out of the field's range were converted by a cast: undefined behaviour.
      {"{\"add\":{\"path\":\"f\",\"size\":1e300}}\n",
       "v.json:1: malformed Delta action: field 'size' is not an integer that fits 64 bits"},
      {"{\"txn\":{\"appId\":\"a\",\"version\":18446744073709551615}}\n",
       "v.json:1: malformed Delta action: field 'version' is not an integer that fits 64 bits"},
      {"{\"protocol\":{\"minReaderVersion\":4294967297,\"minWriterVersion\":2}}\n",
       "v.json:1: malformed Delta action: field 'minReaderVersion' is not an integer that fits 32 bits"},
      {"{\"add\":{\"path\":\"f\",\"size\":1,\"partitionValues\":{\"p\":3}}}\n",
       "v.json:1: malformed Delta action: "},
  };
  for (const auto& c : cases) {
    auto parsed = parse_commit(c.text, "v.json");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().message().substr(0, c.message_start.size()), c.message_start)
        << parsed.status().message();
    EXPECT_NE(parsed.status().message().find("Restore the file from a backup"), std::string::npos);
  }
}

// An action kind this engine does not model (a later protocol's, a vendor's) is skipped, as
// Spark and delta-kernel-rs skip it: what must be understood is announced by a table feature.
TEST(ActionsTest, UnknownActionKindsWithObjectBodiesAreKeptAndSkipped) {
  auto parsed = parse_commit("{\"commitInfo\":{}}\n{\"frobnicate\":{\"x\":1}}\n{\"txn\":"
                             "{\"appId\":\"a\",\"version\":3}}\n", "v.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 3u);
}

TEST(ActionsTest, DeeplyNestedLineIsRefusedBeforeParsing) {
  const std::string text = "{\"commitInfo\":" + std::string(200000, '[') + "\n";
  auto parsed = parse_commit(text, "v.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message().rfind(
                "v.json:1: JSON nested deeper than 64 levels, which no Delta action is.", 0),
            0u)
      << parsed.status().message();
  // Brackets inside strings do not count.
  auto fine = parse_commit("{\"commitInfo\":{\"s\":\"" + std::string(1000, '[') + "\"}}\n", "v.json");
  EXPECT_TRUE(fine.ok()) << fine.status().ToString();
}

TEST(ActionsTest, PathsArePercentEncodedAndDecoded) {
  EXPECT_EQ(uri_encode_path("p=a b%3A/part-1.parquet"), "p=a%20b%253A/part-1.parquet");
  EXPECT_EQ(*uri_decode_path("p%3Da%20b/part-1.parquet"), "p=a b/part-1.parquet");
  EXPECT_FALSE(uri_decode_path("bad%2").ok());
}

}  // namespace
}  // namespace sluice::delta
