// JsonRecordParser: in-place parsing of one record at a time in bounded memory.
#include "sluice/format/json_record.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::format {
namespace {

TEST(JsonRecordParserTest, ParsesRecordsInPlaceWithoutTouchingTheInput) {
  JsonRecordParser parser;
  const std::string text = R"({"key":"k1","amount":2.5,"pad":"x\ny"})";
  auto& doc = parser.parse(text);
  ASSERT_FALSE(parser.failed());
  EXPECT_STREQ(doc["key"].GetString(), "k1");
  EXPECT_EQ(doc["amount"].GetDouble(), 2.5);
  EXPECT_EQ(std::string(doc["pad"].GetString(), doc["pad"].GetStringLength()), "x\ny");
  EXPECT_EQ(text, R"({"key":"k1","amount":2.5,"pad":"x\ny"})");  // the copy was unescaped, not the input
}

TEST(JsonRecordParserTest, MemoryStaysBoundedOverManyRecords) {
  // A reused rapidjson::Document keeps every record's values in its pool; the parser must not.
  JsonRecordParser parser;
  size_t capacity_after_first = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string text = R"({"key":"k)" + std::to_string(i) + R"(","amount":)" + std::to_string(i) +
                             R"(,"tags":["a","b","c"],"nested":{"x":1,"y":[1,2,3]},"pad":")" + std::string(150, 'x') + "\"}";
    auto& doc = parser.parse(text);
    ASSERT_FALSE(parser.failed()) << i;
    ASSERT_EQ(doc["amount"].GetInt(), i);
    if (i == 0) capacity_after_first = doc.GetAllocator().Capacity();
  }
  EXPECT_EQ(parser.doc().GetAllocator().Capacity(), capacity_after_first);
}

TEST(JsonRecordParserTest, AnEmbeddedNulIsAnErrorNotAnEarlyEnd) {
  JsonRecordParser parser;
  const std::string text("{\"a\":1}\0{\"b\":2}", 15);
  parser.parse(text);
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.error(), "invalid JSON at byte 7: a NUL byte");
  parser.parse(std::string(R"({"a":1})"));
  EXPECT_FALSE(parser.failed());  // usable again after an error
  parser.parse(std::string("{\"a\":"));
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.error().rfind("invalid JSON at byte 5: ", 0), 0u) << parser.error();
}

TEST(JsonRecordParserTest, NulsThatOnlyTrailTheTextAreDropped) {
  JsonRecordParser parser;  // C producers send strlen + 1 bytes
  auto& doc = parser.parse(std::string("{\"a\":1}\0\0", 9));
  ASSERT_FALSE(parser.failed()) << parser.error();
  EXPECT_EQ(doc["a"].GetInt(), 1);
  parser.parse(std::string_view());  // an empty value (no data pointer) is an error, not a crash
  EXPECT_TRUE(parser.failed());
  parser.parse(std::string(1, '\0'));
  EXPECT_TRUE(parser.failed());
}

}  // namespace
}  // namespace sluice::format
