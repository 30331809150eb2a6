// Per-file statistics: values, nulls, nested fields, truncation, timestamp rounding.
#include "sluice/delta/stats.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::delta {
namespace {

std::shared_ptr<arrow::RecordBatch> batch_from_json(const std::shared_ptr<arrow::Schema>& schema,
                                                    const std::vector<std::string>& columns) {
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  for (int i = 0; i < schema->num_fields(); ++i) {
    arrays.push_back(
        arrow::json::ArrayFromJSONString(schema->field(i)->type(), columns[i]).ValueOrDie());
  }
  return arrow::RecordBatch::Make(schema, arrays[0]->length(), arrays);
}

TEST(StatsTest, MergesBoundsAndNullCountsAcrossBatches) {
  auto schema = arrow::schema({arrow::field("n", arrow::int64()), arrow::field("s", arrow::utf8()),
                               arrow::field("b", arrow::binary())});
  StatsCollector stats(schema);
  ASSERT_TRUE(stats.update(*batch_from_json(schema, {"[5, null, 7]", R"(["m", "z", null])",
                                                     R"(["aa", null, "bb"])"}))
                  .ok());
  ASSERT_TRUE(stats.update(*batch_from_json(schema, {"[-3, 100]", R"(["a", null])", R"([null, "c"])"}))
                  .ok());
  auto text = stats.finish();
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(nlohmann::json::parse(*text), nlohmann::json::parse(R"({
    "numRecords": 5,
    "minValues": {"n": -3, "s": "a"},
    "maxValues": {"n": 100, "s": "z"},
    "nullCount": {"n": 1, "s": 2, "b": 2}})"));
}

// String bounds are found by stats' own loop: checked against Arrow's MinMax kernel on values
// where a byte-wise compare is easy to get wrong (prefixes, empty strings, bytes >= 0x80,
// nulls, a sliced array, large_utf8).
TEST(StatsTest, StringBoundsMatchArrowMinMax) {
  const std::string values = R"(["ab", null, "a", "", "abc", "\u00e9", "b", null, "\u00e9a", "aa"])";
  for (const auto& type : {arrow::utf8(), arrow::large_utf8()}) {
    auto whole = arrow::json::ArrayFromJSONString(type, values).ValueOrDie();
    for (auto [offset, length] : {std::pair<int64_t, int64_t>{0, 10}, {1, 4}, {4, 6}, {5, 5}}) {
      auto array = whole->Slice(offset, length);
      auto schema = arrow::schema({arrow::field("s", type)});
      StatsCollector stats(schema);
      ASSERT_TRUE(stats.update(*arrow::RecordBatch::Make(schema, array->length(), {array})).ok());
      auto j = nlohmann::json::parse(*stats.finish());
      auto oracle = arrow::compute::MinMax(array).ValueOrDie().scalar_as<arrow::StructScalar>();
      EXPECT_EQ(j["minValues"]["s"], static_cast<const arrow::BaseBinaryScalar&>(*oracle.value[0]).view())
          << type->ToString() << " " << offset << "+" << length;
      EXPECT_EQ(j["maxValues"]["s"], static_cast<const arrow::BaseBinaryScalar&>(*oracle.value[1]).view())
          << type->ToString() << " " << offset << "+" << length;
    }
  }
}

TEST(StatsTest, AllNullColumnHasOnlyNullCount) {
  auto schema = arrow::schema({arrow::field("n", arrow::int32())});
  StatsCollector stats(schema);
  ASSERT_TRUE(stats.update(*batch_from_json(schema, {"[null, null]"})).ok());
  EXPECT_EQ(nlohmann::json::parse(*stats.finish()),
            nlohmann::json::parse(
                R"({"numRecords":2,"minValues":{},"maxValues":{},"nullCount":{"n":2}})"));
}

TEST(StatsTest, NestedStructStatsAreNestedAndCountParentNulls) {
  auto inner = arrow::struct_({arrow::field("x", arrow::int32())});
  auto schema = arrow::schema({arrow::field("st", inner)});
  StatsCollector stats(schema);
  ASSERT_TRUE(stats.update(*batch_from_json(schema, {R"([{"x": 4}, null, {"x": null}, {"x": 9}])"}))
                  .ok());
  EXPECT_EQ(nlohmann::json::parse(*stats.finish()), nlohmann::json::parse(R"({
    "numRecords": 4, "minValues": {"st": {"x": 4}}, "maxValues": {"st": {"x": 9}},
    "nullCount": {"st": {"x": 2}}})"));
}

// Spark's rules (Delta's truncateMinStringAgg / truncateMaxStringAgg): lengths in UTF-16 units,
// a min cut to 32 of them, a max cut there plus a tie-breaker above the code point cut at.
TEST(StatsTest, LongStringsKeepAPrefixMinAndATieBrokenMax) {
  const std::string max_cp = "\xF4\x8F\xBF\xBF";  // U+10FFFF
  const std::string a32(32, 'a');
  struct Case {
    std::string value, min, max;  // max "" = left out
  };
  const std::vector<Case> cases = {
      {a32, a32, a32},                                                  // 32 units: kept whole
      {std::string(40, 'b'), std::string(32, 'b'), std::string(32, 'b') + "\x7F"},
      {a32 + "\xC3\xA9z", a32, a32 + max_cp},  // cut at a non-ASCII code point
      {a32 + "\x7F", a32, a32 + max_cp},        // U+007F is no tie-breaker for itself
      {std::string(31, 'a') + "\xF0\x9F\x98\x80", std::string(31, 'a') + "\xF0\x9F\x98\x80",
       std::string(31, 'a') + "\xF0\x9F\x98\x80"},  // 33 units, the pair kept whole
      {std::string(31, 'a') + "\xF0\x9F\x98\x80" + "bc", std::string(31, 'a') + "\xF0\x9F\x98\x80",
       std::string(31, 'a') + "\xF0\x9F\x98\x80" + "\x7F"},
      {a32 + max_cp + "b", a32, a32 + max_cp + "\x7F"},                // a cut at U+10FFFF moves on
      {a32 + max_cp + max_cp, a32, a32 + max_cp + max_cp},              // ... to the end: whole
  };
  for (const auto& c : cases) {
    auto schema = arrow::schema({arrow::field("s", arrow::utf8())});
    StatsCollector stats(schema);
    arrow::StringBuilder b;
    ASSERT_TRUE(b.Append(c.value).ok());
    ASSERT_TRUE(stats.update(*arrow::RecordBatch::Make(schema, 1, {b.Finish().ValueOrDie()})).ok());
    auto j = nlohmann::json::parse(*stats.finish());
    EXPECT_EQ(j["minValues"]["s"], c.min) << c.value;
    EXPECT_EQ(j["maxValues"]["s"], c.max) << c.value;
    EXPECT_LE(c.value, c.max);
  }
  // No tie-breaker within 64 units: no max at all.
  std::string all_max = a32;
  for (int i = 0; i < 17; ++i) all_max += max_cp;
  auto schema = arrow::schema({arrow::field("s", arrow::utf8())});
  StatsCollector stats(schema);
  arrow::StringBuilder b;
  ASSERT_TRUE(b.Append(all_max + "x").ok());
  ASSERT_TRUE(stats.update(*arrow::RecordBatch::Make(schema, 1, {b.Finish().ValueOrDie()})).ok());
  auto j = nlohmann::json::parse(*stats.finish());
  EXPECT_EQ(j["minValues"]["s"], a32);
  EXPECT_FALSE(j["maxValues"].contains("s"));
}

TEST(StatsTest, TimestampMaxRoundsUpToNextMillisecond) {
  auto schema =
      arrow::schema({arrow::field("t", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                     arrow::field("d", arrow::date32())});
  StatsCollector stats(schema);
  // 2024-01-01T00:00:00.000001Z and 2024-01-01T00:00:00.123456Z; 19723 = 2024-01-01
  ASSERT_TRUE(stats.update(*batch_from_json(schema, {"[1704067200000001, 1704067200123456]",
                                                     "[19723, 19724]"}))
                  .ok());
  auto j = nlohmann::json::parse(*stats.finish());
  EXPECT_EQ(j["minValues"]["t"], "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(j["maxValues"]["t"], "2024-01-01T00:00:00.124Z");
  EXPECT_EQ(j["minValues"]["d"], "2024-01-01");
  EXPECT_EQ(j["maxValues"]["d"], "2024-01-02");
}

TEST(StatsTest, FormatsTimesBeforeEpoch) {
  EXPECT_EQ(format_timestamp_micros(-1, true, false), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_timestamp_micros(-1, false, true), "1970-01-01T00:00:00.000");
  EXPECT_EQ(format_date32(-1), "1969-12-31");
}

TEST(StatsTest, InvalidUtf8StringNeverThrowsAndItsBoundsAreLeftOut) {
  // Before: nlohmann::json::dump threw type_error 316 out of finish() and aborted the run.
  auto schema = arrow::schema({arrow::field("s", arrow::utf8()), arrow::field("\xff", arrow::utf8())});
  arrow::StringBuilder s, t;
  ASSERT_TRUE(s.Append(std::string("a\xff")).ok());
  ASSERT_TRUE(s.Append(std::string("b")).ok());
  ASSERT_TRUE(t.Append(std::string("x")).ok());
  ASSERT_TRUE(t.Append(std::string("y")).ok());
  auto batch = arrow::RecordBatch::Make(schema, 2, {s.Finish().ValueOrDie(), t.Finish().ValueOrDie()});
  StatsCollector stats(schema);
  ASSERT_TRUE(stats.update(*batch).ok());
  auto text = stats.finish();
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto j = nlohmann::json::parse(*text);
  EXPECT_FALSE(j["minValues"].contains("s"));  // "a\xff" is the min: left out, not altered
  EXPECT_EQ(j["maxValues"]["s"], "b");
  EXPECT_EQ(j["maxValues"]["\xEF\xBF\xBD"], "y");  // a name that is not UTF-8 is written with U+FFFD
}

// nlohmann holds JSON numbers as doubles: a decimal bound whose text does not survive that is
// left out (written through a double it could lie inside the data and readers would skip rows);
// one that does survive is written exactly.
TEST(StatsTest, DecimalBoundsAreExactOrLeftOut) {
  auto schema = arrow::schema({arrow::field("big", arrow::decimal128(20, 10)),
                               arrow::field("small", arrow::decimal128(9, 2))});
  StatsCollector stats(schema);
  ASSERT_TRUE(stats.update(*batch_from_json(schema, {R"(["1234567890.1234567891", "0.5000000000"])",
                                                     R"(["1.50", "-0.10"])"}))
                  .ok());
  auto text = stats.finish();
  ASSERT_TRUE(text.ok());
  auto json = nlohmann::json::parse(*text);
  EXPECT_FALSE(json["maxValues"].contains("big")) << *text;
  EXPECT_EQ(json["minValues"]["big"].dump(), "0.5") << *text;
  EXPECT_EQ(json["minValues"]["small"].dump(), "-0.1") << *text;
  EXPECT_EQ(json["maxValues"]["small"].dump(), "1.5") << *text;
}

}  // namespace
}  // namespace sluice::delta
