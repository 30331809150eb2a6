// Avro values a Kafka sink writes: the schema derived from Arrow columns, the exact bytes of a
// few values, and a round trip of every supported type through sluice's own Avro decoder
// (an independent reader of the wire format: avro_decoder.cc parses the schema text itself).
#include "sluice/format/avro_encoder.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/format/avro_decoder.h"
#include "sluice/format/schema_registry.h"

namespace sluice::format {
namespace {

std::shared_ptr<arrow::RecordBatch> avro_rows(const std::shared_ptr<arrow::Schema>& schema, const std::string& rows) {
  auto struct_type = arrow::struct_(schema->fields());
  auto array = arrow::json::ArrayFromJSONString(struct_type, rows).ValueOrDie();
  return arrow::RecordBatch::FromStructArray(array).ValueOrDie();
}

std::vector<int> every_column(const arrow::Schema& s) {
  std::vector<int> out;
  for (int i = 0; i < s.num_fields(); ++i) out.push_back(i);
  return out;
}

TEST(AvroEncoder, SchemaOfNullableAndRequiredColumns) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), /*nullable=*/false), arrow::field("name", arrow::utf8()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"))});
  auto text = avro_schema_of(*schema, every_column(*schema), "orders", "sluice").ValueOrDie();
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["type"], "record");
  EXPECT_EQ(j["name"], "orders");
  EXPECT_EQ(j["namespace"], "sluice");
  EXPECT_EQ(j["fields"][0], (nlohmann::json{{"name", "id"}, {"type", "long"}}));
  EXPECT_EQ(j["fields"][1], (nlohmann::json{{"name", "name"}, {"type", {"null", "string"}}, {"default", nullptr}}));
  EXPECT_EQ(j["fields"][2]["type"][1], (nlohmann::json{{"type", "long"}, {"logicalType", "timestamp-micros"}}));
}

TEST(AvroEncoder, ValuesAreConfluentFramedAvroBinary) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false), arrow::field("name", arrow::utf8())});
  auto batch = avro_rows(schema, R"([{"id": -1, "name": "ab"}, {"id": 64, "name": null}])");
  auto values = rows_to_avro(*batch, every_column(*schema), 0x01020304).ValueOrDie();
  ASSERT_EQ(values->length(), 2);
  // magic 0, id big-endian; id -1 zigzag 0x01; union branch 1 (0x02), length 2 (0x04), "ab"
  EXPECT_EQ(values->GetString(0), std::string("\x00\x01\x02\x03\x04\x01\x02\x04" "ab", 10));
  // 64 zigzag = 128 = 0x80 0x01; union branch 0 (null)
  EXPECT_EQ(values->GetString(1), std::string("\x00\x01\x02\x03\x04\x80\x01\x00", 8));
}

TEST(AvroEncoder, EveryTypeRoundTripsThroughTheAvroDecoder) {
  auto schema = arrow::schema({
      arrow::field("b", arrow::boolean()), arrow::field("i", arrow::int32()), arrow::field("l", arrow::int64()),
      arrow::field("f", arrow::float32()), arrow::field("d", arrow::float64()), arrow::field("s", arrow::utf8()),
      arrow::field("bin", arrow::binary()), arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("local", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("dec", arrow::decimal128(10, 2)),
      arrow::field("st", arrow::struct_({arrow::field("x", arrow::int32()), arrow::field("y", arrow::utf8())})),
      arrow::field("arr", arrow::list(arrow::int64())),
      arrow::field("m", arrow::map(arrow::utf8(), arrow::float64())),
  });
  auto batch = avro_rows(schema, R"([
    {"b": true, "i": -7, "l": 9007199254740993, "f": 1.5, "d": -2.25, "s": "héllo", "bin": "xyz", "day": 19800,
     "ts": 1714557600123456, "local": -5, "dec": "-123.45", "st": {"x": 1, "y": null}, "arr": [1, null, 3],
     "m": [["a", 1.0], ["b", null]]},
    {"b": null, "i": null, "l": null, "f": null, "d": null, "s": null, "bin": null, "day": null, "ts": null,
     "local": null, "dec": "99999999.99", "st": null, "arr": [], "m": null},
    {"b": false, "i": 2147483647, "l": -9223372036854775808, "f": 0, "d": 1e300, "s": "", "bin": "", "day": -1,
     "ts": 0, "local": 0, "dec": "0.00", "st": {"x": null, "y": "q"}, "arr": null, "m": []}
  ])");
  auto text = avro_schema_of(*schema, every_column(*schema), "row", "").ValueOrDie();
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  registry->add_schema(42, text);
  DecoderOptions options;
  options.rescued_data_column = false;
  auto decoder = make_avro_decoder(registry, text, options).ValueOrDie();
  auto values = rows_to_avro(*batch, every_column(*schema), 42).ValueOrDie();
  auto decoded = decoder->decode(*values).ValueOrDie();
  ASSERT_TRUE(decoded.errors.empty()) << decoded.errors[0].message;
  ASSERT_EQ(decoded.rows->num_columns(), batch->num_columns());
  for (int c = 0; c < batch->num_columns(); ++c) {
    EXPECT_TRUE(decoded.rows->column(c)->Equals(*batch->column(c)))
        << schema->field(c)->name() << ": " << decoded.rows->column(c)->ToString() << " vs "
        << batch->column(c)->ToString();
  }
}

TEST(AvroEncoder, TypesAndNamesWithoutAnAvroFormAreRefusedByColumn) {
  auto bad_type = arrow::schema({arrow::field("u", arrow::uint64())});
  auto st = avro_schema_of(*bad_type, {0}, "r", "").status();
  EXPECT_NE(st.message().find("column 'u' is uint64, which has no Avro form"), std::string::npos) << st.message();
  auto bad_name = arrow::schema({arrow::field("my col", arrow::int32())});
  st = avro_schema_of(*bad_name, {0}, "r", "").status();
  EXPECT_NE(st.message().find("column 'my col' is not an Avro name"), std::string::npos) << st.message();
  auto bad_key = arrow::schema({arrow::field("m", arrow::map(arrow::int32(), arrow::utf8()))});
  st = avro_schema_of(*bad_key, {0}, "r", "").status();
  EXPECT_NE(st.message().find("an Avro map has string keys"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace sluice::format
