// Arrow <-> Delta schema JSON mapping.
#include "sluice/delta/schema.h"

#include <arrow/api.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>

#include "sluice/kafka/source_schema.h"

namespace sluice::delta {
namespace {

TEST(SchemaTest, KafkaSourceSchemaMatchesSparkJson) {
  auto text = to_delta_schema_string(*kafka::kafka_source_schema());
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text,
            R"({"fields":[{"metadata":{},"name":"key","nullable":true,"type":"binary"},)"
            R"({"metadata":{},"name":"value","nullable":true,"type":"binary"},)"
            R"({"metadata":{},"name":"topic","nullable":true,"type":"string"},)"
            R"({"metadata":{},"name":"partition","nullable":true,"type":"integer"},)"
            R"({"metadata":{},"name":"offset","nullable":true,"type":"long"},)"
            R"({"metadata":{},"name":"timestamp","nullable":true,"type":"timestamp"},)"
            R"({"metadata":{},"name":"timestampType","nullable":true,"type":"integer"},)"
            R"({"metadata":{},"name":"headers","nullable":true,"type":{"containsNull":true,)"
            R"("elementType":{"fields":[{"metadata":{},"name":"key","nullable":true,"type":"string"},)"
            R"({"metadata":{},"name":"value","nullable":true,"type":"binary"}],"type":"struct"},)"
            R"("type":"array"}}],"type":"struct"})");
}

TEST(SchemaTest, RoundTripsEveryType) {
  auto schema = arrow::schema({
      arrow::field("b", arrow::boolean()), arrow::field("i8", arrow::int8()),
      arrow::field("i16", arrow::int16()), arrow::field("i32", arrow::int32(), false),
      arrow::field("i64", arrow::int64()), arrow::field("f", arrow::float32()),
      arrow::field("d", arrow::float64()), arrow::field("s", arrow::utf8()),
      arrow::field("bin", arrow::binary()), arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("ntz", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("dec", arrow::decimal128(12, 3)),
      arrow::field("st", arrow::struct_({arrow::field("x", arrow::int32())})),
      arrow::field("arr", arrow::list(arrow::field("element", arrow::utf8()))),
      arrow::field("m", arrow::map(arrow::utf8(), arrow::int64())),
  });
  auto text = to_delta_schema_string(*schema);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto back = from_delta_schema_string(*text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE((*back)->Equals(*schema)) << (*back)->ToString() << "\nvs\n" << schema->ToString();
  EXPECT_TRUE(uses_timestamp_ntz(*schema));
  EXPECT_FALSE(uses_timestamp_ntz(*kafka::kafka_source_schema()));
}

// Found by the delta_log fuzzer: an array or map type without its element, key or value type
// hit nlohmann::json's assertion on a missing member (UB in a release build).
TEST(SchemaTest, ComplexTypesWithoutTheirMemberTypesAreErrors) {
  for (const char* type : {R"({"type":"array","containsNull":true})", R"({"type":"map","keyType":"string"})",
                           R"({"type":"map","valueType":"string"})"}) {
    const std::string schema =
        std::string(R"({"type":"struct","fields":[{"name":"c","type":)") + type + R"(,"nullable":true}]})";
    auto parsed = from_delta_schema_string(schema);
    ASSERT_FALSE(parsed.ok()) << type;
    EXPECT_NE(parsed.status().message().find("without its element, key or value type"), std::string::npos)
        << parsed.status().message();
  }
}

TEST(SchemaTest, NanosecondTimestampsAreRefusedWithTheColumnName) {
  auto schema = arrow::schema({arrow::field("t", arrow::timestamp(arrow::TimeUnit::NANO, "UTC"))});
  auto text = to_delta_schema_string(*schema);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            "column 't': timestamp column has unit ns; Delta stores microseconds");
}

// A hostile log's decimal(99999999999,2) made std::stoi throw; it is an error naming the type.
TEST(SchemaTest, DecimalPrecisionPastIntIsAnErrorNamingTheType) {
  auto back = from_delta_schema_string(
      R"j({"type":"struct","fields":[{"name":"v","type":"decimal(99999999999,2)","nullable":true}]})j");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(),
            "Delta type 'decimal(99999999999,2)': precision and scale must be at most 38");
  EXPECT_FALSE(from_delta_schema_string(
                   R"j({"type":"struct","fields":[{"name":"v","type":"decimal(39,2)","nullable":true}]})j")
                   .ok());
}

TEST(SchemaTest, UnknownDeltaTypeIsAnError) {
  auto back = from_delta_schema_string(
      R"({"type":"struct","fields":[{"name":"v","type":"variant","nullable":true}]})");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(), "unknown Delta type 'variant'");
}

}  // namespace
}  // namespace sluice::delta

namespace sluice::delta {
namespace {

// A column COMMENT is the field's "comment" metadata, as Spark writes it, and survives a read.
TEST(SchemaTest, ColumnCommentIsFieldMetadata) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false,
                                            arrow::key_value_metadata({"comment"}, {"the \"id\""})),
                               arrow::field("n", arrow::int32())});
  auto text = to_delta_schema_string(*schema);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, R"({"fields":[{"metadata":{"comment":"the \"id\""},"name":"id","nullable":false,"type":"long"},)"
                   R"({"metadata":{},"name":"n","nullable":true,"type":"integer"}],"type":"struct"})");
  auto back = from_delta_schema_string(*text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_NE((*back)->field(0)->metadata(), nullptr);
  EXPECT_EQ(*(*back)->field(0)->metadata()->Get("comment"), "the \"id\"");
  EXPECT_EQ((*back)->field(1)->metadata(), nullptr);
}

}  // namespace
}  // namespace sluice::delta
