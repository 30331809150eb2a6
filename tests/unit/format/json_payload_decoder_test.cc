// The JSON payload decoder: typed columns, `_rescued_data`, malformed records as errors.
#include "sluice/format/json_payload_decoder.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include "sluice/sql/types.h"

namespace sluice::format {
namespace {

std::shared_ptr<arrow::Array> payload_strings(const std::string& json_array) {
  return arrow::json::ArrayFromJSONString(arrow::utf8(), json_array).ValueOrDie();
}

std::unique_ptr<PayloadDecoder> decoder(const std::string& ddl, DecoderOptions options = {}) {
  return make_json_decoder(sql::parse_ddl_schema(ddl).ValueOrDie(), options).ValueOrDie();
}

std::string rescued(const DecodedBatch& batch, int64_t row) {
  auto col = batch.rows->GetColumnByName(kRescuedDataColumn);
  if (col->IsNull(row)) return "<null>";
  return std::string(static_cast<const arrow::StringArray&>(*col).GetView(row));
}

TEST(JsonPayloadDecoderTest, SchemaAddsRescuedDataColumn) {
  auto d = decoder("a INT, b STRING");
  EXPECT_EQ(d->schema()->ToString(), "a: int32\nb: string\n_rescued_data: string");
  auto without = decoder("a INT", DecoderOptions{.rescued_data_column = false});
  EXPECT_EQ(without->schema()->ToString(), "a: int32");
}

TEST(JsonPayloadDecoderTest, DecodesFittingRecordsWithNullRescue) {
  auto d = decoder("a INT, b STRING, ts TIMESTAMP, arr ARRAY<INT>, s STRUCT<x: DOUBLE>");
  auto out = d->decode(*payload_strings(R"(["{\"a\":1,\"b\":\"x\",\"ts\":\"2024-01-02T03:04:05Z\",\"arr\":[1,2],\"s\":{\"x\":1.5}}", "{}", null])"))
                 .ValueOrDie();
  ASSERT_TRUE(out.errors.empty());
  auto expected = arrow::json::ArrayFromJSONString(
                      arrow::struct_(out.rows->schema()->fields()),
                      R"([{"a":1,"b":"x","ts":1704164645000000,"arr":[1,2],"s":{"x":1.5},"_rescued_data":null},
                          {"a":null,"b":null,"ts":null,"arr":null,"s":null,"_rescued_data":null},
                          {"a":null,"b":null,"ts":null,"arr":null,"s":null,"_rescued_data":null}])")
                      .ValueOrDie();
  EXPECT_TRUE(out.rows->ToStructArray().ValueOrDie()->Equals(*expected)) << out.rows->ToString();
}

TEST(JsonPayloadDecoderTest, RescuesUnknownFieldsAndCaseMismatches) {
  auto d = decoder("id INT, name STRING");
  auto out = d->decode(*payload_strings(R"(["{\"id\":1,\"extra\":[1,{\"k\":true}],\"NAME\":\"n\"}"])")).ValueOrDie();
  ASSERT_TRUE(out.errors.empty());
  EXPECT_EQ(out.rows->column(0)->ToString(), arrow::json::ArrayFromJSONString(arrow::int32(), "[1]").ValueOrDie()->ToString());
  EXPECT_TRUE(out.rows->column(1)->IsNull(0));  // a key differing in case is rescued, not used
  EXPECT_EQ(rescued(out, 0), R"({"extra":[1,{"k":true}],"NAME":"n"})");
}

TEST(JsonPayloadDecoderTest, RescuesValuesOfTheWrongType) {
  auto d = decoder("id INT, ok BOOLEAN, day DATE");
  auto out = d->decode(*payload_strings(R"(["{\"id\":\"seven\",\"ok\":true,\"day\":20240101}", "{\"id\":3000000000}"])")).ValueOrDie();
  ASSERT_TRUE(out.errors.empty());
  EXPECT_TRUE(out.rows->column(0)->IsNull(0));
  EXPECT_TRUE(out.rows->column(1)->IsValid(0));
  EXPECT_TRUE(out.rows->column(2)->IsNull(0));
  EXPECT_EQ(rescued(out, 0), R"({"id":"seven","day":20240101})");
  EXPECT_EQ(rescued(out, 1), R"({"id":3000000000})");  // out of INT's range
}

TEST(JsonPayloadDecoderTest, NestedMismatchRescuesTheTopLevelField) {
  auto d = decoder("s STRUCT<x: INT, y: STRING>, n INT");
  auto out = d->decode(*payload_strings(R"(["{\"s\":{\"x\":\"bad\",\"y\":\"ok\"},\"n\":1}", "{\"s\":{\"x\":1,\"z\":2}}"])")).ValueOrDie();
  ASSERT_TRUE(out.errors.empty());
  EXPECT_EQ(rescued(out, 0), R"({"s":{"x":"bad","y":"ok"}})");
  EXPECT_EQ(rescued(out, 1), R"({"s":{"x":1,"z":2}})");  // an unknown nested key
  auto s = std::static_pointer_cast<arrow::StructArray>(out.rows->column(0));
  EXPECT_TRUE(s->field(0)->IsNull(0));
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*s->field(1)).GetView(0), "ok");
}

TEST(JsonPayloadDecoderTest, MalformedRecordsAreErrorsWithPositions) {
  auto d = decoder("a INT");
  auto out = d->decode(*payload_strings(R"(["{\"a\":1", "[1,2]", "{\"a\":2}", "{\"a\" 1}", "\"text\""])")).ValueOrDie();
  ASSERT_EQ(out.errors.size(), 4u);
  EXPECT_EQ(out.errors[0].row, 0);
  EXPECT_EQ(out.errors[0].message, "invalid JSON at byte 6: Missing a comma or '}' after an object member.");
  EXPECT_EQ(out.errors[1].row, 1);
  EXPECT_EQ(out.errors[1].message, "JSON record is an array, not an object");
  EXPECT_EQ(out.errors[2].row, 3);
  EXPECT_EQ(out.errors[2].message, "invalid JSON at byte 5: Missing a colon after a name of object member.");
  EXPECT_EQ(out.errors[3].message, "JSON record is a string, not an object");
  EXPECT_EQ(out.rows->num_rows(), 5);
  EXPECT_TRUE(out.rows->column(0)->IsNull(0));
  EXPECT_EQ(static_cast<const arrow::Int32Array&>(*out.rows->column(0)).Value(2), 2);
  EXPECT_TRUE(out.rows->column(1)->IsNull(0));  // no rescue for an error row
}

TEST(JsonPayloadDecoderTest, RefusesASchemaWithARescuedDataColumn) {
  auto st = make_json_decoder(sql::parse_ddl_schema("_rescued_data STRING").ValueOrDie(), {}).status();
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("_rescued_data"), std::string::npos);
}

TEST(JsonPayloadDecoderTest, RefusesNonBinaryInput) {
  auto d = decoder("a INT");
  auto ints = arrow::json::ArrayFromJSONString(arrow::int32(), "[1]").ValueOrDie();
  EXPECT_TRUE(d->decode(*ints).status().IsInvalid());
}

}  // namespace
}  // namespace sluice::format
