// The JSON payload decoder with a field selection (read_kafka decoding only the fields a query
// reads) against its oracle, the whole decode: the same errors for the same rows, the selected
// columns and nested struct fields equal to the whole decode's, the others null, and
// `_rescued_data` null. Inputs: the json_decoder fuzz corpus, hostile records, generated
// records; selections: every single column, nested fields, and random ones.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sluice/format/field_selection.h"
#include "sluice/format/json_payload_decoder.h"
#include "sluice/sql/types.h"

#include "json_corpus_records.h"

namespace sluice::format {
namespace {

const char kSchema[] =
    "i INT, l BIGINT, d DOUBLE, f FLOAT, b BOOLEAN, s STRING, ts TIMESTAMP, dt DATE, arr ARRAY<INT>, "
    "m MAP<STRING, DOUBLE>, st STRUCT<x: STRING, y: ARRAY<STRUCT<z: BIGINT>>, n: STRUCT<a: INT, b: STRING>>, "
    "bid STRUCT<auction: BIGINT, price: BIGINT, url: STRING>";

std::vector<std::string> narrowing_corpus_records() { return testing::json_corpus_records(); }

std::vector<std::string> narrowing_hostile_records() {
  return {
      "", "null", "1", "\"s\"", "[1,2]", "[]", "{}", "{\"s\":\"a\"} x", "{\"s\":\"a\"", "{\"s\":\"a\",}",
      "{\"s\":\"\xff\xfe\"}", "{\"s\\u0000\":1}", "{\"s\":\"\\ud800\"}", std::string("{\"s\":\"a\0b\"}", 11),
      "{\"x\":" + std::string(5000, '{'), "{\"bid\":" + std::string(300, '[') + std::string(300, ']') + "}",
      "{\"s\":1,\"s\":\"dup\"}", "{\"s\":null,\"s\":\"second\"}", "{\"S\":\"upper\",\"s\":\"exact\"}",
      "{\"i\":2147483648,\"l\":9223372036854775808}", "{\"i\":1.0,\"l\":1e2,\"d\":true,\"b\":1}",
      "{\"ts\":\"2024-13-01\",\"dt\":20240101}", "{\"ts\":1700000000,\"dt\":\"2024-02-29\"}",
      "{\"st\":{\"x\":1,\"y\":[{\"z\":\"no\"},{\"z\":2}],\"n\":{\"a\":\"x\",\"b\":5}}}", "{\"st\":[],\"arr\":[1,\"x\"]}",
      "{\"st\":{\"n\":{\"a\":1,\"a\":2,\"A\":3},\"n\":{\"a\":9}}}", "{\"st\":{\"n\":null,\"x\":null}}",
      "{\"bid\":{\"auction\":123,\"price\":\"12\",\"url\":7,\"extra\":1},\"other\":[1]}",
      "{\"bid\":{\"auction\":246,\"price\":99,\"Price\":1},\"bid\":{\"auction\":1}}", "{\"bid\":\"not an object\"}",
      "{\"m\":{\"a\":1,\"b\":\"x\"},\"arr\":{\"a\":1}}", "{\"bid\":{\"auction\":-0.0,\"price\":1e400}}",
  };
}

std::vector<std::string> narrowing_generated_records(int count) {
  std::mt19937 rng(20261206);
  const std::vector<std::string> keys = {"i", "l", "d", "s", "ts", "st", "bid", "arr", "m", "S", "other", ""};
  const std::vector<std::string> values = {
      "null", "true", "0", "-1", "2147483648", "1.5", "\"x\"", "\"2024-03-01\"", "[]", "[1,[2]]", "{}",
      "{\"x\":1}", "{\"x\":\"s\",\"n\":{\"a\":1,\"b\":\"c\"},\"y\":[{\"z\":1}]}", "{\"n\":{\"a\":\"bad\"}}",
      "{\"auction\":123,\"price\":5,\"url\":\"u\"}", "{\"auction\":\"a\",\"price\":[1]}", "{\"Auction\":1}",
      "[{\"a\":null}]", "tru", "1e", "\"\xff\""};
  std::vector<std::string> out;
  for (int r = 0; r < count; ++r) {
    std::string rec = testing::random_json_object(rng, keys, values);
    if (rng() % 25 == 0) rec.pop_back();  // now and then malformed
    out.push_back(rec);
  }
  return out;
}

std::shared_ptr<arrow::Array> narrowing_payloads(const std::vector<std::string>& values) {
  arrow::BinaryBuilder b;
  for (const auto& v : values) EXPECT_TRUE(b.Append(v).ok());
  EXPECT_TRUE(b.AppendNull().ok());
  return b.Finish().ValueOrDie();
}

// The oracle: `whole` with what `selection` does not read replaced by nulls.
std::shared_ptr<arrow::Array> project(const std::shared_ptr<arrow::Array>& whole, const FieldSelection& selection) {
  if (selection.use == FieldSelection::Use::kWhole) return whole;
  if (selection.use == FieldSelection::Use::kNone) {
    return arrow::MakeArrayOfNull(whole->type(), whole->length()).ValueOrDie();
  }
  const auto& s = static_cast<const arrow::StructArray&>(*whole);
  arrow::ArrayVector children;
  for (int i = 0; i < s.num_fields(); ++i) children.push_back(project(s.field(i), selection.fields[i]));
  return arrow::StructArray::Make(children, whole->type()->fields(), s.null_bitmap(), s.null_count(), s.offset())
      .ValueOrDie();
}

FieldSelection random_selection(const arrow::FieldVector& fields, std::mt19937& rng) {
  FieldSelection out;
  out.use = FieldSelection::Use::kSome;
  for (const auto& f : fields) {
    FieldSelection child;
    switch (rng() % 3) {
      case 0: break;
      case 1: child = FieldSelection::whole(); break;
      default:
        child = f->type()->id() == arrow::Type::STRUCT ? random_selection(f->type()->fields(), rng)
                                                       : FieldSelection::whole();
    }
    out.fields.push_back(std::move(child));
  }
  return out;
}

void expect_same_as_whole(const std::vector<std::string>& records, const FieldSelection& selection) {
  auto schema = sql::parse_ddl_schema(kSchema).ValueOrDie();
  auto payloads = narrowing_payloads(records);
  auto whole = make_json_decoder(schema, {}).ValueOrDie()->decode(*payloads).ValueOrDie();
  auto narrowed_decoder =
      make_json_decoder(schema, {}, std::make_shared<FieldSelection>(selection)).ValueOrDie();
  ASSERT_TRUE(narrowed_decoder->schema()->Equals(*make_json_decoder(schema, {}).ValueOrDie()->schema()));
  auto narrowed = narrowed_decoder->decode(*payloads).ValueOrDie();
  ASSERT_TRUE(narrowed.rows->ValidateFull().ok());
  ASSERT_EQ(narrowed.errors.size(), whole.errors.size());
  for (size_t e = 0; e < whole.errors.size(); ++e) {
    EXPECT_EQ(narrowed.errors[e].row, whole.errors[e].row);
    EXPECT_EQ(narrowed.errors[e].message, whole.errors[e].message);
  }
  for (int c = 0; c < schema->num_fields(); ++c) {
    auto expected = project(whole.rows->column(c), selection.fields[c]);
    EXPECT_TRUE(narrowed.rows->column(c)->Equals(*expected))
        << schema->field(c)->name() << ":\n" << narrowed.rows->column(c)->ToString() << "\nvs\n" << expected->ToString();
  }
  EXPECT_EQ(narrowed.rows->GetColumnByName(kRescuedDataColumn)->null_count(), narrowed.rows->num_rows());
}

std::vector<std::string> all_records() {
  auto records = narrowing_corpus_records();
  for (auto& r : narrowing_hostile_records()) records.push_back(r);
  for (auto& r : narrowing_generated_records(3000)) records.push_back(r);
  return records;
}

TEST(JsonPayloadDecoderNarrowingTest, EachColumnAloneIsWhatTheWholeDecodeGives) {
  const auto records = all_records();
  const auto schema = sql::parse_ddl_schema(kSchema).ValueOrDie();
  for (int c = -1; c < schema->num_fields(); ++c) {  // -1: no column read, records only checked
    FieldSelection selection;
    selection.use = FieldSelection::Use::kSome;
    selection.fields.assign(schema->num_fields(), FieldSelection{});
    if (c >= 0) selection.fields[c] = FieldSelection::whole();
    SCOPED_TRACE(c);
    expect_same_as_whole(records, selection);
  }
}

TEST(JsonPayloadDecoderNarrowingTest, NestedFieldsAreWhatTheWholeDecodeGives) {
  const auto schema = sql::parse_ddl_schema(kSchema).ValueOrDie();
  FieldSelection selection;
  selection.use = FieldSelection::Use::kSome;
  selection.fields.assign(schema->num_fields(), FieldSelection{});
  const int bid = schema->GetFieldIndex("bid");
  const auto& bid_fields = schema->field(bid)->type()->fields();
  selection.fields[bid].child(0, bid_fields) = FieldSelection::whole();  // bid.auction
  selection.fields[bid].child(1, bid_fields) = FieldSelection::whole();  // bid.price
  const int st = schema->GetFieldIndex("st");
  const auto& st_fields = schema->field(st)->type()->fields();
  selection.fields[st].child(2, st_fields).child(0, st_fields[2]->type()->fields()) = FieldSelection::whole();  // st.n.a
  expect_same_as_whole(all_records(), selection);
}

TEST(JsonPayloadDecoderNarrowingTest, RandomSelectionsAreWhatTheWholeDecodeGives) {
  const auto records = all_records();
  const auto schema = sql::parse_ddl_schema(kSchema).ValueOrDie();
  std::mt19937 rng(4242);
  for (int k = 0; k < 20; ++k) {
    SCOPED_TRACE(k);
    expect_same_as_whole(records, random_selection(schema->fields(), rng));
  }
}

TEST(JsonPayloadDecoderNarrowingTest, ASelectionOfAnotherSchemaIsRefused) {
  auto schema = sql::parse_ddl_schema("a INT, b STRING").ValueOrDie();
  auto wrong = std::make_shared<FieldSelection>();
  wrong->use = FieldSelection::Use::kSome;
  wrong->fields.assign(3, FieldSelection{});
  auto d = make_json_decoder(schema, {}, wrong);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("selection has 3 fields, its schema 2"), std::string::npos) << d.status().message();
}

}  // namespace
}  // namespace sluice::format
