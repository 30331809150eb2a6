// Rows as JSON objects (format/json_row_encoder.h): each type's JSON form, nulls left out,
// and keys as bytes.
#include "sluice/format/json_row_encoder.h"

#include <arrow/api.h>
#include <arrow/ipc/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <cmath>

namespace sluice::format {
namespace {

std::shared_ptr<arrow::RecordBatch> batch(const std::shared_ptr<arrow::Schema>& schema, const std::string& rows) {
  auto array = arrow::json::ArrayFromJSONString(arrow::struct_(schema->fields()), rows).ValueOrDie();
  return arrow::RecordBatch::FromStructArray(array).ValueOrDie();
}

std::vector<std::string> encode(const arrow::RecordBatch& b, std::vector<int> columns) {
  auto out = rows_to_json(b, columns);
  EXPECT_TRUE(out.ok()) << out.status().message();
  std::vector<std::string> rows;
  for (int64_t i = 0; i < (*out)->length(); ++i) rows.emplace_back((*out)->GetView(i));
  return rows;
}

TEST(JsonRowEncoderTest, ScalarsInSparksToJsonShape) {
  auto schema = arrow::schema({arrow::field("s", arrow::utf8()), arrow::field("i", arrow::int64()),
                               arrow::field("d", arrow::float64()), arrow::field("b", arrow::boolean()),
                               arrow::field("day", arrow::date32()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                               arrow::field("bin", arrow::binary()), arrow::field("dec", arrow::decimal128(10, 2))});
  auto b = batch(schema, R"([
    ["a\"b", 7, 1.5, true, 19844, 1714557600000000, "hi", "12.30"],
    [null, -1, null, false, -1, 1714557600123456, null, "-0.05"]])");
  EXPECT_EQ(encode(*b, {0, 1, 2, 3, 4, 5, 6, 7}),
            (std::vector<std::string>{
                R"({"s":"a\"b","i":7,"d":1.5,"b":true,"day":"2024-05-01","ts":"2024-05-01T10:00:00.000Z","bin":"aGk=","dec":12.30})",
                R"({"i":-1,"b":false,"day":"1969-12-31","ts":"2024-05-01T10:00:00.123Z","dec":-0.05})"}));
}

// Spark's JSONOptions: timestampFormatInWrite yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX] (UTC session zone:
// `Z`), timestampNTZFormatInWrite yyyy-MM-dd'T'HH:mm:ss[.SSS]; the optional parts are always
// printed when formatting, the fraction cut (not rounded) to milliseconds, also before 1970.
TEST(JsonRowEncoderTest, TimestampsInSparksWriteFormats) {
  auto schema = arrow::schema({arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                               arrow::field("ntz", arrow::timestamp(arrow::TimeUnit::MICRO)),
                               arrow::field("ns", arrow::timestamp(arrow::TimeUnit::NANO, "UTC"))});
  auto b = batch(schema, R"([[1714557600999999, 1714557600000000, 1714557600001999999],
                             [-1, -1000001, -1]])");
  EXPECT_EQ(encode(*b, {0, 1, 2}),
            (std::vector<std::string>{
                R"({"ts":"2024-05-01T10:00:00.999Z","ntz":"2024-05-01T10:00:00.000","ns":"2024-05-01T10:00:00.001Z"})",
                R"({"ts":"1969-12-31T23:59:59.999Z","ntz":"1969-12-31T23:59:58.999","ns":"1969-12-31T23:59:59.999Z"})"}));
}

TEST(JsonRowEncoderTest, NestedValuesAndNonFiniteDoubles) {
  auto schema = arrow::schema({arrow::field("st", arrow::struct_({arrow::field("x", arrow::int32()),
                                                                  arrow::field("y", arrow::utf8())})),
                               arrow::field("l", arrow::list(arrow::int32())),
                               arrow::field("m", arrow::map(arrow::utf8(), arrow::float64()))});
  auto b = batch(schema, R"([[{"x": 1, "y": null}, [1, null, 3], [["k", 2.0]]], [null, [], []]])");
  EXPECT_EQ(encode(*b, {0, 1, 2}), (std::vector<std::string>{R"({"st":{"x":1},"l":[1,null,3],"m":{"k":2.0}})",
                                                              R"({"l":[],"m":{}})"}));
  arrow::DoubleBuilder doubles;
  ASSERT_TRUE(doubles.AppendValues({INFINITY, -INFINITY, NAN}).ok());
  auto d = arrow::RecordBatch::Make(arrow::schema({arrow::field("d", arrow::float64())}), 3,
                                    {doubles.Finish().ValueOrDie()});
  EXPECT_EQ(encode(*d, {0}),
            (std::vector<std::string>{R"({"d":"Infinity"})", R"({"d":"-Infinity"})", R"({"d":"NaN"})"}));
}

TEST(JsonRowEncoderTest, OnlyTheChosenColumns) {
  auto b = batch(arrow::schema({arrow::field("a", arrow::int32()), arrow::field("h", arrow::utf8())}), R"([[1, "x"]])");
  EXPECT_EQ(encode(*b, {0}), (std::vector<std::string>{R"({"a":1})"}));
}

TEST(JsonRowEncoderTest, TypesWithoutJsonFormAreRefusedByColumn) {
  auto schema = arrow::schema({arrow::field("iv", arrow::month_interval())});
  auto b = batch(schema, "[[3]]");
  auto out = rows_to_json(*b, {0});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("column 'iv' is month_interval"), std::string::npos) << out.status().message();
}

TEST(JsonRowEncoderTest, KeysAreBytesOrText) {
  auto strings = arrow::json::ArrayFromJSONString(arrow::utf8(), R"(["c1", null])").ValueOrDie();
  EXPECT_EQ(key_bytes(strings).ValueOrDie(), strings);
  auto ints = arrow::json::ArrayFromJSONString(arrow::int64(), "[42, null]").ValueOrDie();
  auto keys = key_bytes(ints).ValueOrDie();
  ASSERT_EQ(keys->type_id(), arrow::Type::STRING);
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*keys).GetView(0), "42");
  EXPECT_TRUE(keys->IsNull(1));
}

}  // namespace
}  // namespace sluice::format
