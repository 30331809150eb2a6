// JSON records a producer can send to break a reader: invalid UTF-8, unpaired surrogate escapes,
// nesting far beyond what Delta readers accept. Each decodes to valid UTF-8 or fails as one
// record with its reason; none crashes or stops the batch.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sluice/common/nesting.h"
#include "sluice/format/json_decoder.h"
#include "sluice/format/json_payload_decoder.h"
#include "sluice/format/json_record.h"
#include "sluice/format/json_schema_inference.h"
#include "sluice/sql/types.h"

namespace sluice::format {
namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(static_cast<size_t>(depth), open) + std::string(static_cast<size_t>(depth), close);
}

// {"a": <depth-1 levels of arrays>} has `depth` levels.
std::string record_of_depth(int depth) { return "{\"a\":" + nested(depth - 1) + "}"; }

std::shared_ptr<arrow::Array> hostile_payloads(const std::vector<std::string>& values) {
  arrow::BinaryBuilder b;
  for (const auto& v : values) EXPECT_TRUE(b.Append(v).ok());
  return b.Finish().ValueOrDie();
}

TEST(HostileJsonTest, InvalidUtf8InStringsAndKeysBecomesReplacementCharacters) {
  JsonRecordParser parser;
  auto& doc = parser.parse(std::string("{\"k\xff\":\"a\xed\xa0\x80z\"}"));
  ASSERT_FALSE(parser.failed()) << parser.error();
  const auto& m = *doc.MemberBegin();
  EXPECT_EQ(std::string(m.name.GetString(), m.name.GetStringLength()), "k" + R);
  EXPECT_EQ(std::string(m.value.GetString(), m.value.GetStringLength()), "a" + R + "z");
}

TEST(HostileJsonTest, UnpairedSurrogateEscapesBecomeReplacementCharacters) {
  JsonRecordParser parser;
  // A lone high surrogate (RapidJSON refuses it), a lone low one (RapidJSON would encode it as
  // invalid UTF-8), and a valid pair, which stays.
  auto& doc = parser.parse(std::string(R"({"a":"x\ud800y","b":"\udc00","c":"\ud83d\ude00","d":"\\ud800"})"));
  ASSERT_FALSE(parser.failed()) << parser.error();
  EXPECT_EQ(std::string(doc["a"].GetString()), "x" + R + "y");
  EXPECT_EQ(std::string(doc["b"].GetString()), R);
  EXPECT_EQ(std::string(doc["c"].GetString()), "\xF0\x9F\x98\x80");
  EXPECT_EQ(std::string(doc["d"].GetString()), "\\ud800");  // an escaped backslash, not an escape
}

TEST(HostileJsonTest, NestingBeyondTheLimitIsAnErrorWithItsOffset) {
  JsonRecordParser parser;
  parser.parse(record_of_depth(kMaxNestingDepth));
  EXPECT_FALSE(parser.failed()) << parser.error();
  parser.parse(record_of_depth(kMaxNestingDepth + 1));
  ASSERT_TRUE(parser.failed());
  EXPECT_EQ(parser.error(), "JSON nested deeper than 16 levels of objects/arrays at byte 20 (sluice's limit: "
                            "deeper columns are not readable by every Delta reader); flatten the record, or send "
                            "the deep part as a JSON string");
  // Brackets inside strings are not nesting.
  parser.parse("{\"a\":\"" + nested(10000) + "\"}");
  EXPECT_FALSE(parser.failed()) << parser.error();
  parser.parse(nested(100000, '{', '}'));  // far too deep: refused before RapidJSON recurses
  EXPECT_TRUE(parser.failed());
}

TEST(HostileJsonTest, PayloadDecoderSendsDeepRecordsToErrorsAndKeepsTheRest) {
  auto d = make_json_decoder(sql::parse_ddl_schema("a STRING, s STRING").ValueOrDie(), {}).ValueOrDie();
  auto out = d->decode(*hostile_payloads({record_of_depth(10000), "{\"s\":\"ok\xc3\"}", record_of_depth(3)})).ValueOrDie();
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].row, 0);
  EXPECT_NE(out.errors[0].message.find("JSON nested deeper than 16 levels"), std::string::npos);
  ASSERT_TRUE(out.rows->ValidateFull().ok());  // includes UTF-8 validation of string columns
  const auto& s = static_cast<const arrow::StringArray&>(*out.rows->GetColumnByName("s"));
  EXPECT_EQ(s.GetString(1), "ok" + R);
  const auto& a = static_cast<const arrow::StringArray&>(*out.rows->GetColumnByName("a"));
  EXPECT_EQ(a.GetString(2), "[[]]");
}

TEST(HostileJsonTest, RescuedDataOfInvalidUtf8IsValidJsonText) {
  auto d = make_json_decoder(sql::parse_ddl_schema("a INT").ValueOrDie(), {}).ValueOrDie();
  auto out = d->decode(*hostile_payloads({"{\"a\":1,\"x\xfe\":\"\xc0\"}"})).ValueOrDie();
  ASSERT_TRUE(out.errors.empty());
  ASSERT_TRUE(out.rows->ValidateFull().ok());
  const auto& r = static_cast<const arrow::StringArray&>(*out.rows->GetColumnByName("_rescued_data"));
  EXPECT_EQ(r.GetString(0), "{\"x" + R + "\":\"" + R + "\"}");
}

TEST(HostileJsonTest, FromJsonGivesNullsForDeepTextAndValidUtf8ForInvalidBytes) {
  auto type = arrow::struct_({arrow::field("s", arrow::utf8())});
  JsonDecodeStats stats;
  auto out = decode_json(*hostile_payloads({"{\"s\":" + nested(5000) + "}", "{\"s\":\"\xff\"}"}), type, &stats).ValueOrDie();
  ASSERT_TRUE(out->ValidateFull().ok());
  EXPECT_EQ(stats.malformed_records, 1);
  const auto& s = static_cast<const arrow::StringArray&>(*static_cast<const arrow::StructArray&>(*out).field(0));
  EXPECT_TRUE(s.IsNull(0));
  EXPECT_EQ(s.GetString(1), R);
}

TEST(HostileJsonTest, InferenceSkipsTooDeepSamplesAndNamesFieldsInValidUtf8) {
  std::vector<std::string> texts = {record_of_depth(10000), "{\"n\xff\":1}"};
  std::vector<std::string_view> samples(texts.begin(), texts.end());
  JsonInferenceStats stats;
  auto schema = infer_json_schema(samples, &stats);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(stats.malformed, 1);
  EXPECT_EQ((*schema)->ToString(), "n" + R + ": int64");
}

TEST(HostileJsonTest, DeclaredTypesDeeperThanTheLimitAreRefused) {
  std::string ok = "a ", deep = "a ";
  for (int i = 0; i < kMaxNestingDepth - 1; ++i) ok += "ARRAY<";
  ok += "INT" + std::string(kMaxNestingDepth - 1, '>');
  EXPECT_TRUE(sql::parse_ddl_schema(ok).ok()) << sql::parse_ddl_schema(ok).status().ToString();
  for (int i = 0; i < 10000; ++i) deep += "STRUCT<x: ";
  auto refused = sql::parse_ddl_schema(deep);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("the STRUCT at character 153 nests deeper than 15 levels"),
            std::string::npos)
      << refused.status().message().substr(0, 400);
  EXPECT_LT(refused.status().message().size(), 600u);  // the type is not echoed whole
}

TEST(HostileJsonTest, NumbersBeyondTheDoubleRangeAreInfinityOrZeroAsStrtodSays) {
  // Many digits shift the exponent past 10^308 (or below 10^-324) although the written exponent
  // is in range: RapidJSON 1.1.0 then indexed its cached powers of ten out of bounds (diyfp.h,
  // UBSan; fuzz/corpus/json_decoder/crash-1117...). Oracle: strtod, bit for bit, including the
  // largest and smallest values that still round to a finite, non-zero double.
  const std::string many(100, '8');
  const std::string zeros(400, '0');
  const std::vector<std::string> numbers = {
      "9007199" + many + "e300", "-9" + many + "e250", "1" + many + "e209", "0." + zeros + "1",
      "0." + zeros + "1e90", "1e-330", "17976931348623157" + std::string(292, '0'),
      "17976931348623159" + std::string(292, '0'), "4.9e-324", "2.4e-324", "2.5e-324", "1e308", "9.9e308",
      "123456789012345678901234567890e-350"};
  JsonRecordParser parser;
  for (const auto& n : numbers) {
    auto& doc = parser.parse("[" + n + "]");
    ASSERT_FALSE(parser.failed()) << n.substr(0, 40) << ": " << parser.error();
    const double got = doc[0].GetDouble();
    const double want = std::strtod(n.c_str(), nullptr);
    EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << n.substr(0, 40) << " -> " << got << ", strtod: " << want;
  }
}

TEST(HostileJsonTest, NumbersWhoseDigitsAreAllZeroAreZeroWhateverTheExponent) {
  // RapidJSON 1.1.0's full-precision path turned these into an arbitrary power of two (0e92 ->
  // 3.9e289 in the gcc Release build; Tencent/rapidjson#1249), found by fuzz/json_decoder_fuzzer
  // under UBSan (fuzz/corpus/json_decoder/crash-37f4...). Oracle: strtod, bit for bit (the sign
  // of zero included), for them and for neighbours that took the same paths correctly.
  const std::vector<std::string> numbers = {
      "0e92", "-0e-30", "0.000000000000000000000000", "0.0e-23", "0E+38", "-0.00000000000000000000000e5",
      "0e37", "0.0", "-0.0", "1.0", "2.0", "0.5", "-4.0", "1e300", "2e-300", "0.00000000000000000000001",
      "1.00000000000000000000000e40", "9007199254740993.0", "0e9"};
  JsonRecordParser parser;
  for (const auto& n : numbers) {
    auto& doc = parser.parse("[" + n + "]");
    ASSERT_FALSE(parser.failed()) << n << ": " << parser.error();
    const double got = doc[0].GetDouble();
    const double want = std::strtod(n.c_str(), nullptr);
    EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << n << " -> " << got << ", strtod: " << want;
  }
  auto d = make_json_decoder(sql::parse_ddl_schema("d DOUBLE").ValueOrDie(), {}).ValueOrDie();
  auto out = d->decode(*hostile_payloads({R"({"d":0e92})", R"({"d":-0.0e-400})", R"({"d":12.5e1})"})).ValueOrDie();
  EXPECT_TRUE(out.errors.empty());
  const auto& col = static_cast<const arrow::DoubleArray&>(*out.rows->GetColumnByName("d"));
  ASSERT_EQ(col.length(), 3);
  EXPECT_EQ(col.Value(0), 0.0);
  EXPECT_FALSE(std::signbit(col.Value(0)));
  EXPECT_EQ(col.Value(1), 0.0);
  EXPECT_TRUE(std::signbit(col.Value(1)));
  EXPECT_EQ(col.Value(2), 125.0);
}

TEST(HostileJsonTest, TimestampSecondsBeyondTheMicrosecondRangeAreMismatchesNotOverflow) {
  // A number for a TIMESTAMP field is seconds (as Spark reads it); times 10^6 it overflowed int64
  // (UBSan in the ASan build, found by the decoder comparison tests): now the field does not fit.
  const std::vector<std::string> records = {"{\"ts\": 9223372036854775807}", "{\"ts\": -949999999999999999}",
                                            "{\"ts\": 9223372036854}", "{\"ts\": 1700000000}"};
  const auto type = arrow::struct_({arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"))});
  for (bool document : {false, true}) {
    JsonDecodeStats stats;
    auto out = (document ? internal::decode_json_with_document(*hostile_payloads(records), type, &stats)
                         : decode_json(*hostile_payloads(records), type, &stats))
                   .ValueOrDie();
    const auto& ts = static_cast<const arrow::TimestampArray&>(*static_cast<const arrow::StructArray&>(*out).field(0));
    EXPECT_TRUE(ts.IsNull(0) && ts.IsNull(1)) << document;
    EXPECT_EQ(ts.Value(2), 9223372036854LL * 1'000'000) << document;
    EXPECT_EQ(ts.Value(3), 1700000000LL * 1'000'000) << document;
    EXPECT_EQ(stats.mismatched_fields, 2) << document;
  }
  // The payload decoder (read_kafka value_format => 'json') sends them to _rescued_data, not UB.
  auto d = make_json_decoder(sql::parse_ddl_schema("ts TIMESTAMP").ValueOrDie(), {}).ValueOrDie();
  auto decoded = d->decode(*hostile_payloads(records)).ValueOrDie();
  const auto& col = *decoded.rows->GetColumnByName("ts");
  EXPECT_TRUE(col.IsNull(0) && col.IsNull(1) && col.IsValid(2) && col.IsValid(3));
}

}  // namespace
}  // namespace sluice::format
