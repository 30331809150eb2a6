// decode_json's SAX path (structs of scalar fields, optionally only some fields decoded)
// against its oracle, the document path every field of which is decoded: the same struct
// validity, the same values in every decoded field, the same counts; fields not decoded are
// null. Inputs: the json_decoder fuzz corpus, hostile records, and generated records.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sluice/format/json_decoder.h"
#include "sluice/format/json_flat_record.h"

#include "json_corpus_records.h"

namespace sluice::format {
namespace {

std::shared_ptr<arrow::DataType> flat_type() {
  return arrow::struct_({arrow::field("s", arrow::utf8()), arrow::field("i", arrow::int32()),
                         arrow::field("l", arrow::int64()), arrow::field("d", arrow::float64()),
                         arrow::field("f", arrow::float32()), arrow::field("b", arrow::boolean()),
                         arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
                         arrow::field("dt", arrow::date32()), arrow::field("t", arrow::int8()),
                         arrow::field("sm", arrow::int16()), arrow::field("Name", arrow::utf8()),
                         arrow::field("name", arrow::utf8()), arrow::field("bin", arrow::binary())});
}

// A pruned field's nested type must not force the document path.
std::shared_ptr<arrow::DataType> type_with_nested() {
  auto fields = flat_type()->fields();
  fields.push_back(arrow::field("st", arrow::struct_({arrow::field("x", arrow::int64())})));
  fields.push_back(arrow::field("arr", arrow::list(arrow::int32())));
  return arrow::struct_(fields);
}

std::shared_ptr<arrow::Array> binaries(const std::vector<std::string>& values) {
  arrow::BinaryBuilder b;
  for (const auto& v : values) EXPECT_TRUE(b.Append(v).ok());
  EXPECT_TRUE(b.AppendNull().ok());
  return b.Finish().ValueOrDie();
}

std::vector<std::string> corpus_records() { return testing::json_corpus_records(); }

std::vector<std::string> hostile_records() {
  return {
      "", "null", "1", "\"s\"", "[1,2]", "[]", "{}", "{\"s\":\"a\"} x", "{\"s\":\"a\"", "{\"s\":\"a\",}",
      "{\"s\":\"\xff\xfe\"}", "{\"s\\u0000\":1}", "{\"s\":\"\\ud800\"}", "{\"s\":\"\\udc00\\ud800x\"}",
      "{\"s\":\"a\"}\0", std::string("{\"s\":\"a\0b\"}", 11), "{\"s\":" + std::string(20, '[') + std::string(20, ']') + "}",
      "{\"x\":" + std::string(5000, '{'), "{\"s\":1,\"s\":\"dup\"}", "{\"s\":null,\"s\":\"second\"}",
      "{\"S\":\"upper\",\"s\":\"exact\"}", "{\"NAME\":\"folded\",\"Name\":\"exact\",\"name\":\"lower\"}",
      "{\"nAmE\":\"first folded wins\"}", "{\"i\":2147483648,\"t\":128,\"sm\":-32769,\"l\":9223372036854775808}",
      "{\"i\":-2147483648,\"t\":-128,\"sm\":32767,\"l\":-9223372036854775808}",
      "{\"l\":18446744073709551615,\"d\":18446744073709551615,\"f\":1e39}", "{\"d\":1e400}", "{\"d\":-0.0,\"f\":0e92}",
      "{\"i\":1.0,\"l\":1e2,\"d\":true,\"b\":1}", "{\"b\":false,\"s\":true,\"Name\":null}",
      "{\"s\":12.5e1,\"name\":[1,{\"a\":\"b\"}],\"Name\":{\"k\":-0.0}}", "{\"s\":9007199254740993,\"name\":-1}",
      "{\"ts\":\"2024-01-02T03:04:05.123456789Z\",\"dt\":\"2024-02-29\"}", "{\"ts\":1700000000,\"dt\":\"2024-02-29T00:00:00\"}",
      "{\"ts\":\"2024-13-01\",\"dt\":20240101}", "{\"ts\":\"2024-01-02 03:04:05+05:30\",\"dt\":\"2023-02-29\"}",
      "{\"ts\":1.5,\"dt\":null}", "{\"ts\":9223372036854775807}", "{\"bin\":\"abc\",\"st\":{\"x\":1},\"arr\":[1,2]}",
      "{\"st\":{\"x\":\"no\"},\"arr\":{\"a\":1}}", "{\"st\":[],\"arr\":[1,\"x\"]}", "{\"s\":\"\\\"quoted\\\\\\n\"}",
      "{ \"s\" : \"spaced\" , \"i\" : 7 }", "{\"s\":\"a\",\"s\":{\"nested\":[1,2,3]}}",
  };
}

// Records built from field names (in several cases), unknown keys, every kind of value.
std::vector<std::string> generated_records(int count) {
  std::mt19937 rng(20261206);
  const std::vector<std::string> keys = {"s", "i", "l", "d", "f", "b", "ts", "dt", "t", "sm", "Name", "name",
                                         "NAME", "S", "I", "Ts", "bin", "st", "arr", "other", "ua", ""};
  const std::vector<std::string> values = {
      "null", "true", "false", "0", "-1", "127", "128", "-129", "32768", "2147483647", "2147483648", "-2147483649",
      "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1.5", "-0.0",
      "1e308", "1e-320", "3.4028235e38", "3.5e38", "\"\"", "\"x\"", "\"2024-03-01T10:11:12.123Z\"", "\"2024-03-01\"",
      "\"2024-03-01T10:11:12+01:00\"", "\"bad date\"", "\"\\u00e9\\n\"", "\"\xc3\xa9\"", "\"\xff\"", "[]", "[1,[2]]",
      "{}", "{\"x\":1}", "{\"s\":\"inner\"}", "[{\"a\":null}]", "123.45", "0.1", "-0", "-0.0", "1E5", "1e22", "1e23",
      "1e-22", "1e-23", "12.5e-10", "0.000001", "123456789012345", "1234567890123456", "0.123456789012345",
      "0.1234567890123456", "99999999999999999", "999999999999999999", "1000000000000000000", "-999999999999999999",
      "1.7976931348623157e308", "4.9e-324", "01", "-01", "1.", ".5", "1e", "1e+", "+1", "-", "1e0005", "9.999999999999999e22",
      "\"a\tb\"", "\"\x01\"", "tru", "nul", "falsey", "\"x\" ", " \"x\""};
  std::vector<std::string> out;
  for (int r = 0; r < count; ++r) {
    std::string rec = testing::random_json_object(rng, keys, values);
    switch (rng() % 20) {
      case 0: rec = rec.substr(0, rng() % (rec.size() + 1)); break;  // truncated
      case 1: rec = values[rng() % values.size()]; break;            // not an object
      case 2: rec += " "; break;
      default: break;
    }
    out.push_back(rec);
  }
  return out;
}

// Generated and hostile records with random byte edits (JSON punctuation, digits, exponent
// and sign characters, escapes, invalid UTF-8, NUL): whatever the scanner accepts RapidJSON
// must accept with the same values, and what it refuses RapidJSON must judge the same way.
std::vector<std::string> mutated_records(int count) {
  std::mt19937 rng(1206);
  std::vector<std::string> base = generated_records(500);
  for (auto& r : hostile_records()) base.push_back(r);
  base.push_back(R"({"s":"abc","i":12,"l":-34,"d":1.25,"f":0.5,"b":true,"ts":"2024-01-02T03:04:05Z","dt":"2024-01-02"})");
  const std::string edits = std::string("\"\\,:{}[] \t\n0123456789-+.eEtrufalsn\xff\xc3", 36) + std::string(1, '\0');
  std::vector<std::string> out;
  for (int k = 0; k < count; ++k) {
    std::string r = base[rng() % base.size()];
    const int n_edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < n_edits; ++e) {
      const size_t at = r.empty() ? 0 : rng() % (r.size() + 1);
      const char c = edits[rng() % edits.size()];
      switch (rng() % 3) {
        case 0: r.insert(at, 1, c); break;
        case 1: if (at < r.size()) r[at] = c; break;
        default: if (at < r.size()) r.erase(at, 1); break;
      }
    }
    out.push_back(r);
  }
  return out;
}

void expect_same_as_document(const std::vector<std::string>& records, const std::shared_ptr<arrow::DataType>& type,
                             const std::vector<bool>& decoded) {
  auto input = binaries(records);
  JsonDecodeStats want_stats, got_stats;
  auto want = internal::decode_json_with_document(*input, type, &want_stats).ValueOrDie();
  auto got = decode_json(*input, type, &got_stats, decoded).ValueOrDie();
  ASSERT_TRUE(got->ValidateFull().ok());
  ASSERT_EQ(got->length(), want->length());
  const auto& w = static_cast<const arrow::StructArray&>(*want);
  const auto& g = static_cast<const arrow::StructArray&>(*got);
  EXPECT_EQ(got_stats.malformed_records, want_stats.malformed_records);
  if (decoded.empty()) {
    EXPECT_EQ(got_stats.mismatched_fields, want_stats.mismatched_fields);
  }
  for (int64_t row = 0; row < got->length(); ++row) {
    ASSERT_EQ(g.IsNull(row), w.IsNull(row)) << "row " << row;
  }
  for (int f = 0; f < type->num_fields(); ++f) {
    if (decoded.empty() || decoded[f]) {
      for (int64_t row = 0; row < got->length(); ++row) {
        auto gv = g.field(f)->GetScalar(row).ValueOrDie();
        auto wv = w.field(f)->GetScalar(row).ValueOrDie();
        // Equals with NaN/-0.0 distinct: the bits must match, not just the values.
        EXPECT_TRUE(gv->Equals(*wv, arrow::EqualOptions().nans_equal(true).signed_zeros_equal(false)))
            << type->field(f)->name() << " row " << row << " record " << (row < static_cast<int64_t>(records.size()) ? records[row] : "null")
            << ": " << gv->ToString() << " vs " << wv->ToString();
      }
    } else {
      for (int64_t row = 0; row < got->length(); ++row) {
        // (under a null struct, Arrow's StructBuilder appends empty values, not nulls)
        EXPECT_TRUE(g.IsNull(row) || g.field(f)->IsNull(row)) << type->field(f)->name() << " row " << row;
      }
    }
  }
}

std::vector<std::vector<bool>> masks(int n) {
  std::vector<std::vector<bool>> out = {{}, std::vector<bool>(n, true), std::vector<bool>(n, false)};
  std::mt19937 rng(7);
  for (int k = 0; k < 6; ++k) {
    std::vector<bool> m(n);
    for (int i = 0; i < n; ++i) m[i] = rng() % 2;
    out.push_back(m);
  }
  for (int i = 0; i < n; ++i) {
    std::vector<bool> one(n, false);
    one[i] = true;
    out.push_back(one);
  }
  return out;
}

TEST(JsonDecoderEventsTest, FlatStructsDecodeAsTheDocumentPathOverTheFuzzCorpus) {
  expect_same_as_document(corpus_records(), flat_type(), {});
}

TEST(JsonDecoderEventsTest, FlatStructsDecodeAsTheDocumentPathOverHostileRecords) {
  expect_same_as_document(hostile_records(), flat_type(), {});
}

TEST(JsonDecoderEventsTest, FlatStructsDecodeAsTheDocumentPathOverGeneratedRecords) {
  expect_same_as_document(generated_records(5000), flat_type(), {});
}

TEST(JsonDecoderEventsTest, FlatStructsDecodeAsTheDocumentPathOverMutatedRecords) {
  expect_same_as_document(mutated_records(20000), flat_type(), {});
}

// A batch whose bytes are all ASCII skips the scanner's per-record UTF-8 check: the same
// records without their non-ASCII ones, decoded as one batch, must still match the document path.
TEST(JsonDecoderEventsTest, AllAsciiBatchesDecodeAsTheDocumentPath) {
  std::vector<std::string> records;
  for (auto& r : mutated_records(20000)) {
    if (std::all_of(r.begin(), r.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
      records.push_back(r);
    }
  }
  ASSERT_GT(records.size(), 10000u);
  expect_same_as_document(records, flat_type(), {});
}

TEST(JsonDecoderEventsTest, PrunedFieldsAreNullAndTheOthersAsDecodedWhole) {
  std::vector<std::string> records = corpus_records();
  for (auto& r : hostile_records()) records.push_back(r);
  for (auto& r : generated_records(2000)) records.push_back(r);
  for (const auto& type : {flat_type(), type_with_nested()}) {
    for (const auto& mask : masks(type->num_fields())) {
      SCOPED_TRACE(type->ToString());
      expect_same_as_document(records, type, mask);
    }
  }
}

TEST(JsonDecoderEventsTest, TheScannerTakesCommonRecordsAndLeavesTheRestToRapidJson) {
  const std::vector<std::string> names = {"s", "d", "Name", "name"};
  const std::vector<bool> decoded = {true, true, true, true}, is_string = {true, false, true, true};
  std::vector<internal::JsonSlot> slots(names.size());
  internal::JsonFieldIndex index(names);
  internal::FlatRecordScanner scanner(index, decoded, is_string, slots.data());
  EXPECT_TRUE(scanner.scan(R"( {"s":"a b","d":-12.5e1,"x":[1],"NAME":"f","Name":"e","u":null} )") == false);  // a container
  ASSERT_TRUE(scanner.scan(R"( {"s":"a b","d":-12.5e1,"NAME":"f","Name":"e","u":null} )"));
  EXPECT_EQ(std::string(slots[0].s, slots[0].len), "a b");
  EXPECT_EQ(slots[1].d, -125.0);
  // "NAME" folds to the first of Name/name, and is the first key for it; "Name" comes too late.
  EXPECT_EQ(std::string(slots[2].s, slots[2].len), "f");
  EXPECT_EQ(slots[3].kind, internal::JsonSlot::kAbsent);
  const std::vector<std::string> unsures = {
      R"({"s":"a\nb"})", R"({"s":1})", R"({"d":1.0000000000000001})", R"({"d":1e23})", "{\"s\":\"\xff\"}",
      std::string("{\"d\":1}\0", 8), R"({"d":01})", R"({"d":1} x)", "[1]", "{"};
  for (const auto& unsure : unsures) {
    EXPECT_FALSE(scanner.scan(unsure)) << unsure;
  }
}

// The scanner remembers the key it met at each position with its field: records whose keys
// change order, length, case or repeat from one record to the next must still find each key's
// own field (short keys, keys of 4-7, 8-16 and 17-32 bytes, and longer than it remembers).
TEST(JsonDecoderEventsTest, TheScannerFindsEachKeysFieldWhateverTheKeyBeforeItAtThatPosition) {
  const std::string long_name(40, 'k'), mid_name = "seventeen_bytes_k";
  const std::vector<std::string> names = {"a", "user", "event_type", long_name, mid_name, "Name"};
  const std::vector<bool> decoded(names.size(), true), is_string(names.size(), true);
  std::vector<internal::JsonSlot> slots(names.size());
  internal::JsonFieldIndex index(names);
  internal::FlatRecordScanner scanner(index, decoded, is_string, slots.data());
  auto field = [&](int f) {
    return slots[f].kind == internal::JsonSlot::kString ? std::string(slots[f].s, slots[f].len) : std::string("-");
  };
  struct Case {
    std::string record;
    std::vector<std::string> want;  // per field
  };
  const std::vector<Case> cases = {
      {R"({"a":"1","user":"2","event_type":"3","NAME":"4"})", {"1", "2", "3", "-", "-", "4"}},
      {R"({"user":"2","a":"1","event_typE":"3","name":"4"})", {"1", "2", "3", "-", "-", "4"}},
      {R"({"b":"1","users":"2","event_type":"3","Name":"4"})", {"-", "-", "3", "-", "-", "4"}},
      {R"({"a":"1","user":"2","event_tyqe":"3","Nam":"4"})", {"1", "2", "-", "-", "-", "-"}},
      {R"({")" + long_name + R"(":"L",")" + mid_name + R"(":"M","a":"1"})", {"1", "-", "-", "L", "M", "-"}},
      {R"({")" + long_name.substr(1) + R"(x":"L","seventeen_bytes_K":"M","A":"1"})", {"1", "-", "-", "-", "M", "-"}},
      {R"({"a":"1","a":"2","user":"3","USER":"4"})", {"1", "3", "-", "-", "-", "-"}},
      {R"({"a":"1","user":"2","event_type":"3","NAME":"4"})", {"1", "2", "3", "-", "-", "4"}},
  };
  for (int round = 0; round < 2; ++round) {
    for (const auto& c : cases) {
      ASSERT_TRUE(scanner.scan(c.record)) << c.record;
      for (size_t f = 0; f < names.size(); ++f) {
        EXPECT_EQ(field(static_cast<int>(f)), c.want[f]) << c.record << " field " << names[f];
      }
    }
  }
}

TEST(JsonDecoderEventsTest, RefusesAMaskOfTheWrongLength) {
  auto status = decode_json(*binaries({"{}"}), flat_type(), nullptr, {true}).status();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("1 decoded-field flags for struct<"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace sluice::format
