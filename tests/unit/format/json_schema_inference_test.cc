// JSON schema inference: Spark's merge rules over samples.
#include "sluice/format/json_schema_inference.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

namespace sluice::format {
namespace {

std::string infer(const std::vector<std::string_view>& samples) {
  auto schema = infer_json_schema(samples);
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? (*schema)->ToString() : "";
}

TEST(JsonSchemaInferenceTest, UnionOfKeysInOrderOfAppearance) {
  EXPECT_EQ(infer({R"({"a": 1, "b": "x"})", R"({"c": true, "a": 2})"}),
            "a: int64\nb: string\nc: bool");
}

TEST(JsonSchemaInferenceTest, NumbersWidenAndConflictsBecomeStrings) {
  EXPECT_EQ(infer({R"({"n": 1, "m": 1, "s": {"x": 1}})", R"({"n": 1.5, "m": "one", "s": 3})"}),
            "n: double\nm: string\ns: string");
}

TEST(JsonSchemaInferenceTest, NullOnlyIsStringAndNullsDoNotWiden) {
  EXPECT_EQ(infer({R"({"z": null, "k": null})", R"({"k": 7})"}), "z: string\nk: int64");
}

TEST(JsonSchemaInferenceTest, NestedObjectsAndArraysMerge) {
  EXPECT_EQ(infer({R"({"o": {"a": 1}, "l": [1, 2]})", R"({"o": {"b": [true]}, "l": [2.5], "e": []})"}),
            "o: struct<a: int64, b: list<item: bool>>\nl: list<item: double>\ne: list<item: string>");
}

TEST(JsonSchemaInferenceTest, MalformedSamplesAreSkippedAndCounted) {
  JsonInferenceStats stats;
  auto schema = infer_json_schema({"{\"a\": 1}", "not json", "[1]"}, &stats);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(stats.records, 1);
  EXPECT_EQ(stats.malformed, 2);
}

TEST(JsonSchemaInferenceTest, NoObjectAtAllIsAnError) {
  auto schema = infer_json_schema({"1", "x"});
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().message(), "cannot infer a JSON schema: none of the 2 sampled records is a JSON object");
  EXPECT_NE(infer_json_schema({}).status().message().find("the topic is empty"), std::string::npos);
}

}  // namespace
}  // namespace sluice::format
