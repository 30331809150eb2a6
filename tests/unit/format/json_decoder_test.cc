// JSON decoding into Arrow: types, nesting, Spark's PERMISSIVE handling of bad input.
#include "sluice/format/json_decoder.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include "sluice/sql/types.h"

namespace sluice::format {
namespace {

std::shared_ptr<arrow::Array> strings(const std::string& json_array) {
  return arrow::json::ArrayFromJSONString(arrow::utf8(), json_array).ValueOrDie();
}

TEST(JsonDecoderTest, DecodesEveryTypeIntoBuilders) {
  auto type = sql::parse_type(
                  "STRUCT<s: STRING, i: INT, l: BIGINT, d: DOUBLE, b: BOOLEAN, ts: TIMESTAMP, day: DATE, "
                  "arr: ARRAY<INT>, m: MAP<STRING, STRING>, st: STRUCT<x: INT>>")
                  .ValueOrDie();
  auto input = strings(R"([
    "{\"s\":\"a\",\"i\":1,\"l\":9007199254740993,\"d\":2,\"b\":true,\"ts\":\"2024-01-02 03:04:05.5\",\"day\":\"2024-02-29\",\"arr\":[1,null,3],\"m\":{\"k\":\"v\"},\"st\":{\"x\":7}}"
  ])");
  JsonDecodeStats stats;
  auto out = decode_json(*input, type, &stats).ValueOrDie();
  auto expected = arrow::json::ArrayFromJSONString(type, R"([
    {"s":"a","i":1,"l":9007199254740993,"d":2.0,"b":true,"ts":1704164645500000,"day":19782,
     "arr":[1,null,3],"m":[["k","v"]],"st":{"x":7}}
  ])").ValueOrDie();
  EXPECT_TRUE(out->Equals(*expected)) << out->ToString();
  EXPECT_EQ(stats.malformed_records, 0);
  EXPECT_EQ(stats.mismatched_fields, 0);
}

TEST(JsonDecoderTest, PermissiveModeNullsWhatDoesNotFit) {
  auto type = sql::parse_type("STRUCT<id: INT, name: STRING>").ValueOrDie();
  auto input = strings(R"(["{\"id\": 3000000000, \"NAME\": \"case\"}", "{broken", null, "[1]", "{\"id\": 1.5, \"name\": 5}"])");
  JsonDecodeStats stats;
  auto out = decode_json(*input, type, &stats).ValueOrDie();
  auto expected = arrow::json::ArrayFromJSONString(type, R"([
    {"id": null, "name": "case"}, {"id": null, "name": null}, null, {"id": null, "name": null},
    {"id": null, "name": "5"}])").ValueOrDie();
  EXPECT_TRUE(out->Equals(*expected)) << out->ToString();
  EXPECT_EQ(stats.malformed_records, 2);   // "{broken" and an array where an object belongs
  EXPECT_EQ(stats.mismatched_fields, 2);   // an int out of range, a fraction for an INT
}

TEST(JsonDecoderTest, RefusesNonTextInput) {
  auto ints = arrow::json::ArrayFromJSONString(arrow::int32(), "[1]").ValueOrDie();
  EXPECT_FALSE(decode_json(*ints, arrow::struct_({}), nullptr).ok());
}

}  // namespace
}  // namespace sluice::format
