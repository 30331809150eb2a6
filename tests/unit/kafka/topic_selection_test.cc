// Topic lists and patterns of read_kafka.
#include "sluice/kafka/topic_selection.h"

#include <gtest/gtest.h>

namespace sluice::kafka {
namespace {

TEST(TopicSelection, ListSplitsOnCommasAndTrims) {
  auto list = parse_topic_list(" a, b ,c,a");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(*list, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(TopicSelection, EmptyListEntryIsAnError) {
  auto list = parse_topic_list("a,,b");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("empty name"), std::string::npos);
}

TEST(TopicSelection, PatternMatchesWholeNamesAndSkipsInternalTopics) {
  TopicSelection s{{}, "orders-.*"};
  auto got = select_topics(s, {"orders-eu", "x-orders-us", "orders-us", "__consumer_offsets", "orders"},
                           "default");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, (std::vector<std::string>{"orders-eu", "orders-us"}));
}

TEST(TopicSelection, PatternMatchingNothingIsEmptyNotAnError) {
  auto got = select_topics(TopicSelection{{}, "nope-.*"}, {"a"}, "default");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST(TopicSelection, MissingListedTopicNamesTheExistingOnes) {
  auto got = select_topics(TopicSelection{{"a", "zz"}, ""}, {"a", "b", "__consumer_offsets"}, "default");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(),
            "Kafka topic 'zz' does not exist on cluster 'default'; existing topics: a, b");
}

TEST(TopicSelection, BadPatternIsReported) {
  auto st = check_topic_pattern("orders-(");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("topic_pattern 'orders-(' is not a valid regular expression"),
            std::string::npos);
}

TEST(TopicSelection, SubscriptionAnchorsPatternsForLibrdkafka) {
  EXPECT_EQ(subscription(TopicSelection{{}, "a|b"}), (std::vector<std::string>{"^(a|b)$"}));
  EXPECT_EQ(subscription(TopicSelection{{"x", "y"}, ""}), (std::vector<std::string>{"x", "y"}));
}

}  // namespace
}  // namespace sluice::kafka
