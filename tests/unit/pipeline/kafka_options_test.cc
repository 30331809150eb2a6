// read_kafka arguments -> KafkaFlowSpec, and where partitions without progress start and end.
#include "sluice/pipeline/kafka_options.h"

#include <gtest/gtest.h>

namespace sluice::pipeline {
namespace {

arrow::Result<KafkaFlowSpec> spec_of(const std::map<std::string, std::string>& options) {
  KafkaFlowSpec spec;
  spec.flow = "f";
  ARROW_RETURN_NOT_OK(apply_read_kafka_options(options, spec));
  return spec;
}

TEST(ReadKafkaOptions, TopicListBecomesSelection) {
  auto spec = spec_of({{"topic", "a, b"}});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->selection().topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(spec->selection().is_pattern());
}

TEST(ReadKafkaOptions, PatternBecomesSelection) {
  auto spec = spec_of({{"topic_pattern", "orders-.*"}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->selection().pattern, "orders-.*");
}

TEST(ReadKafkaOptions, TopicAndPatternTogetherAreRefused) {
  auto spec = spec_of({{"topic", "a"}, {"topic_pattern", "a.*"}});
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("not both"), std::string::npos);
}

TEST(ReadKafkaOptions, StartingOffsetsJsonIsPerTopic) {
  auto spec = spec_of({{"topic", "a,b"}, {"starting_offsets", R"({"a": {"0": 5}, "b": {"1": -2}})"}});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(start_rule(*spec, "a", KafkaPartition(0)), (StartRule{StartRule::Kind::kOffset, 5}));
  EXPECT_EQ(start_rule(*spec, "b", KafkaPartition(1)).kind, StartRule::Kind::kEarliest);
  EXPECT_EQ(start_rule(*spec, "b", KafkaPartition(0)).kind, StartRule::Kind::kEarliest);
}

TEST(ReadKafkaOptions, OffsetsJsonForATopicNotReadIsAnError) {
  auto spec = spec_of({{"topic", "a"}, {"starting_offsets", R"({"c": {"0": 5}})"}});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "read_kafka starting_offsets names topic 'c', which this flow does not read (it reads 'a')");
}

TEST(ReadKafkaOptions, TimestampsTakePrecedenceOverOffsets) {
  auto spec = spec_of({{"topic", "a"},
                       {"starting_offsets", "latest"},
                       {"starting_timestamp", "1700000000000"},
                       {"starting_offsets_by_timestamp", R"({"a": {"2": 1800000000000}})"}});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(start_rule(*spec, "a", KafkaPartition(2)),
            (StartRule{StartRule::Kind::kTimestamp, 1800000000000}));
  EXPECT_EQ(start_rule(*spec, "a", KafkaPartition(0)),
            (StartRule{StartRule::Kind::kTimestamp, 1700000000000}));
}

TEST(ReadKafkaOptions, StartingOffsetsLatestWithoutTimestamps) {
  auto spec = spec_of({{"topic", "a"}, {"starting_offsets", "latest"}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(start_rule(*spec, "a", KafkaPartition(0)).kind, StartRule::Kind::kLatest);
}

TEST(ReadKafkaOptions, EndingRules) {
  auto spec = spec_of({{"topic", "a"},
                       {"ending_offsets", R"({"a": {"0": 10, "1": -1}})"},
                       {"ending_offsets_by_timestamp", R"({"a": {"3": 1700000000000}})"}});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(end_rule(*spec, "a", KafkaPartition(0)), (EndRule{EndRule::Kind::kOffset, 10}));
  EXPECT_EQ(end_rule(*spec, "a", KafkaPartition(1)).kind, EndRule::Kind::kHighWaterMark);
  EXPECT_EQ(end_rule(*spec, "a", KafkaPartition(3)),
            (EndRule{EndRule::Kind::kTimestamp, 1700000000000}));
}

TEST(ReadKafkaOptions, BadTimestampSaysWhatItMustBe) {
  auto spec = spec_of({{"topic", "a"}, {"starting_timestamp", "yesterday"}});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "read_kafka starting_timestamp must be milliseconds since the epoch, not 'yesterday'");
}

TEST(ReadKafkaOptions, HeadersAndGroupOptions) {
  auto spec = spec_of({{"topic", "a"},
                       {"include_headers", "false"},
                       {"group_mode", "subscribe"},
                       {"group_id_prefix", "etl"}});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->headers, kafka::HeadersColumn::kDrop);
  EXPECT_EQ(spec->group_mode, GroupMode::kSubscribe);
  EXPECT_EQ(spec->consumer_group("shop"), "etl-shop-f");
}

TEST(ReadKafkaOptions, DefaultsKeepHeadersAndTheOldGroupId) {
  auto spec = spec_of({{"topic", "a"}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->headers, kafka::HeadersColumn::kInclude);
  EXPECT_EQ(spec->group_mode, GroupMode::kAssign);
  EXPECT_EQ(spec->consumer_group("shop"), "sluice-shop");
}

TEST(ReadKafkaOptions, ExplicitGroupIdWins) {
  auto spec = spec_of({{"topic", "a"}, {"kafka.group.id", "mine"}, {"group_mode", "subscribe"}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->consumer_group("shop"), "mine");
}

TEST(ReadKafkaOptions, UnknownGroupModeIsAnError) {
  auto spec = spec_of({{"topic", "a"}, {"group_mode", "share"}});
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("group_mode must be 'assign'"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pipeline
