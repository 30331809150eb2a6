// Avro: schema parsing and the Arrow mapping, and the Confluent-framed decoder (bytes built by
// hand) with schema resolution across writer ids, rescue and every error path.
#include "sluice/format/avro_decoder.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>

#include "sluice/common/status.h"
#include "sluice/format/avro_schema.h"

namespace sluice::format {
namespace {

// Hand-made Avro binary encoding.
struct Bytes {
  std::string data;
  Bytes& header(int32_t id, uint8_t magic = 0) {
    data += static_cast<char>(magic);
    for (int shift = 24; shift >= 0; shift -= 8) data += static_cast<char>((id >> shift) & 0xff);
    return *this;
  }
  Bytes& lng(int64_t v) {
    uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
    while (z >= 0x80) {
      data += static_cast<char>((z & 0x7f) | 0x80);
      z >>= 7;
    }
    data += static_cast<char>(z);
    return *this;
  }
  Bytes& str(const std::string& s) {
    lng(static_cast<int64_t>(s.size()));
    data += s;
    return *this;
  }
  Bytes& raw(const std::string& s) {
    data += s;
    return *this;
  }
  Bytes& boolean(bool b) {
    data += static_cast<char>(b ? 1 : 0);
    return *this;
  }
  Bytes& flt(float f) {
    char b[4];
    std::memcpy(b, &f, 4);
    data.append(b, 4);
    return *this;
  }
  Bytes& dbl(double d) {
    char b[8];
    std::memcpy(b, &d, 8);
    data.append(b, 8);
    return *this;
  }
};

std::shared_ptr<arrow::Array> avro_payloads(const std::vector<std::optional<std::string>>& values) {
  arrow::BinaryBuilder b;
  for (const auto& v : values) {
    if (v) {
      EXPECT_TRUE(b.Append(*v).ok());
    } else {
      EXPECT_TRUE(b.AppendNull().ok());
    }
  }
  return b.Finish().ValueOrDie();
}

std::string cell(const DecodedBatch& batch, const std::string& column, int64_t row) {
  auto col = batch.rows->GetColumnByName(column);
  EXPECT_NE(col, nullptr) << column;
  return col->GetScalar(row).ValueOrDie()->ToString();
}

// ---- schema --------------------------------------------------------------------------------

std::string arrow_type_of(const std::string& avro) {
  auto schema = parse_avro_schema(avro);
  if (!schema.ok()) return schema.status().message();
  return avro_to_arrow(**schema).ValueOrDie()->ToString();
}

TEST(AvroSchemaTest, MapsEveryTypeToArrow) {
  struct Case {
    const char* avro;
    const char* arrow;
  } cases[] = {
      {R"("null")", "null"},
      {R"("boolean")", "bool"},
      {R"("int")", "int32"},
      {R"("long")", "int64"},
      {R"("float")", "float"},
      {R"("double")", "double"},
      {R"("bytes")", "binary"},
      {R"({"type": "string"})", "string"},
      {R"(["null", "long"])", "int64"},
      {R"(["long", "null"])", "int64"},
      {R"(["null", "int", "string"])", "struct<member0: int32, member1: string>"},
      {R"({"type": "enum", "name": "E", "symbols": ["A", "B"]})", "string"},
      {R"({"type": "fixed", "name": "F", "size": 4})", "fixed_size_binary[4]"},
      {R"({"type": "array", "items": "int"})", "list<item: int32>"},
      {R"({"type": "map", "values": "double"})", "map<string, double>"},
      {R"({"type": "int", "logicalType": "date"})", "date32[day]"},
      {R"({"type": "long", "logicalType": "timestamp-millis"})", "timestamp[us, tz=UTC]"},
      {R"({"type": "long", "logicalType": "timestamp-micros"})", "timestamp[us, tz=UTC]"},
      {R"({"type": "long", "logicalType": "local-timestamp-millis"})", "timestamp[us]"},
      {R"({"type": "long", "logicalType": "local-timestamp-micros"})", "timestamp[us]"},
      {R"({"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2})", "decimal128(10, 2)"},
      {R"({"type": "fixed", "name": "D", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4})",
       "decimal128(18, 4)"},
      {R"({"type": "string", "logicalType": "uuid"})", "string"},
      {R"({"type": "int", "logicalType": "time-millis"})", "time64[us]"},
      {R"({"type": "long", "logicalType": "time-micros"})", "time64[us]"},
      {R"({"type": "string", "logicalType": "date"})", "string"},  // a misplaced logical type is ignored
      {R"({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})", "struct<a: int32>"},
  };
  for (const auto& c : cases) EXPECT_EQ(arrow_type_of(c.avro), c.arrow) << c.avro;
}

TEST(AvroSchemaTest, ResolvesNamedTypesThroughNamespaces) {
  auto text = R"({"type": "record", "name": "Outer", "namespace": "com.acme", "fields": [
    {"name": "a", "type": {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "int"}]}},
    {"name": "b", "type": "Point"},
    {"name": "c", "type": "com.acme.Point"},
    {"name": "d", "type": {"type": "enum", "name": "other.Color", "symbols": ["RED"]}},
    {"name": "e", "type": "other.Color"}]})";
  EXPECT_EQ(arrow_type_of(text),
            "struct<a: struct<x: int32>, b: struct<x: int32>, c: struct<x: int32>, d: string, e: string>");
}

TEST(AvroSchemaTest, RefusesRecursiveTypesClearly) {
  auto st = parse_avro_schema(R"({"type": "record", "name": "Node", "namespace": "n", "fields": [
    {"name": "next", "type": ["null", "Node"]}]})").status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "record 'n.Node' field 'next': recursive type 'n.Node' (it refers to itself) is not supported: Arrow has no "
            "recursive types");
}

TEST(AvroSchemaTest, ReportsUnknownNamesAndBadJson) {
  EXPECT_EQ(arrow_type_of(R"({"type": "record", "name": "R", "fields": [{"name": "a", "type": "Missing"}]})"),
            "record 'R' field 'a': unknown type 'Missing'");
  EXPECT_NE(arrow_type_of("{nope").find("Avro schema is not valid JSON"), std::string::npos);
}

// ---- decoder -------------------------------------------------------------------------------

constexpr const char* kAllTypes = R"({"type": "record", "name": "All", "fields": [
  {"name": "n", "type": "null"},
  {"name": "b", "type": "boolean"},
  {"name": "i", "type": "int"},
  {"name": "l", "type": "long"},
  {"name": "f", "type": "float"},
  {"name": "d", "type": "double"},
  {"name": "by", "type": "bytes"},
  {"name": "s", "type": "string"},
  {"name": "opt", "type": ["null", "string"]},
  {"name": "u", "type": ["null", "int", "string"]},
  {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
  {"name": "fx", "type": {"type": "fixed", "name": "F2", "size": 2}},
  {"name": "arr", "type": {"type": "array", "items": "long"}},
  {"name": "m", "type": {"type": "map", "values": "int"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "tsm", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "tsu", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "lts", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
  {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}},
  {"name": "decf", "type": {"type": "fixed", "name": "D4", "size": 4, "logicalType": "decimal", "precision": 9, "scale": 1}},
  {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
  {"name": "tu", "type": {"type": "long", "logicalType": "time-micros"}},
  {"name": "rec", "type": {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]}}
]})";

Bytes all_types_record(int32_t id) {
  Bytes r;
  r.header(id);
  r.boolean(true).lng(-7).lng(1LL << 40).flt(1.5f).dbl(-2.25).str(std::string("\x00\xff", 2)).str("hé");
  r.lng(1).str("some");       // opt: branch 1 (string)
  r.lng(2).str("two");        // u: branch 2 (string) -> member1
  r.lng(1);                   // e: GREEN
  r.raw("ab");                // fx
  r.lng(-2).lng(2).lng(10).lng(-20).lng(0);  // arr: one block of 2 items written with its byte size
  r.lng(1).str("k").lng(5).lng(0);           // m: {k: 5}
  r.lng(19782);                              // 2024-02-29
  r.lng(1704164645500);                      // ms
  r.lng(1704164645500001);                   // us
  r.lng(1000);                               // local ms
  r.str(std::string("\x30\x39", 2));         // 12345 -> 123.45
  r.raw(std::string("\xff\xff\xff\x85", 4)); // -123 -> -12.3
  r.str("6f1c7b2e-0000-4000-8000-000000000000");
  r.lng(1500);                               // 1.5 s
  r.lng(2500000);                            // 2.5 s
  r.lng(9);                                  // rec.x
  return r;
}

TEST(AvroDecoderTest, DecodesEveryType) {
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  registry->add_schema(1, kAllTypes);
  auto decoder = make_avro_decoder(registry, kAllTypes, {}).ValueOrDie();
  EXPECT_EQ(decoder->schema()->field(9)->type()->ToString(), "struct<member0: int32, member1: string>");
  auto out = decoder->decode(*avro_payloads({all_types_record(1).data, std::nullopt})).ValueOrDie();
  ASSERT_TRUE(out.errors.empty()) << out.errors[0].message;
  ASSERT_EQ(out.rows->num_rows(), 2);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"n", "null"}, {"b", "true"}, {"i", "-7"}, {"l", "1099511627776"}, {"f", "1.5"}, {"d", "-2.25"},
      {"s", "hé"}, {"opt", "some"}, {"u", "{member0:int32 = null, member1:string = two}"},
      {"e", "GREEN"}, {"fx", "ab"}, {"day", "2024-02-29"},
      {"tsm", "2024-01-02 03:04:05.500000Z"}, {"tsu", "2024-01-02 03:04:05.500001Z"},
      {"lts", "1970-01-01 00:00:01.000000"}, {"dec", "123.45"}, {"decf", "-12.3"},
      {"id", "6f1c7b2e-0000-4000-8000-000000000000"}, {"tm", "00:00:01.500000"}, {"tu", "00:00:02.500000"},
  };
  for (const auto& [col, value] : expected) EXPECT_EQ(cell(out, col, 0), value) << col;
  EXPECT_EQ(cell(out, "arr", 0), "list<item: int64>[10, -20]");
  auto m = std::static_pointer_cast<arrow::MapArray>(out.rows->GetColumnByName("m"));
  EXPECT_EQ(m->items()->ToString(), "[\n  5\n]");
  EXPECT_EQ(cell(out, "rec", 0), "{x:int32 = 9}");
  EXPECT_EQ(cell(out, "by", 0), std::string("\x00\xff", 2));
  EXPECT_EQ(cell(out, kRescuedDataColumn, 0), "null");
  for (int c = 0; c < out.rows->num_columns(); ++c) EXPECT_TRUE(out.rows->column(c)->IsNull(1)) << c;
}

constexpr const char* kReaderV2 = R"({"type": "record", "name": "User", "namespace": "acme", "fields": [
  {"name": "id", "type": "long"},
  {"name": "name", "type": "string"},
  {"name": "score", "type": "double"},
  {"name": "tags", "type": {"type": "array", "items": "string"}, "default": ["new"]},
  {"name": "email", "type": ["null", "string"], "default": null},
  {"name": "level", "type": "int", "default": 3}
]})";

constexpr const char* kWriterV1 = R"({"type": "record", "name": "User", "namespace": "acme", "fields": [
  {"name": "id", "type": "int"},
  {"name": "name", "type": "bytes"},
  {"name": "score", "type": "float"},
  {"name": "legacy", "type": {"type": "record", "name": "Old", "fields": [{"name": "z", "type": "boolean"}]}},
  {"name": "level", "type": "string"}
]})";

std::shared_ptr<SchemaRegistryClient> two_writer_registry() {
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  registry->add_schema(1, kWriterV1);
  registry->add_schema(2, kReaderV2);
  return registry;
}

TEST(AvroDecoderTest, ResolvesTwoWriterSchemasToTheReaderSchema) {
  auto decoder = make_avro_decoder(two_writer_registry(), kReaderV2, {}).ValueOrDie();
  Bytes v1;
  v1.header(1).lng(41).str("ann").flt(0.5f).boolean(true).str("gold");
  Bytes v2;
  v2.header(2).lng(42).str("bob").dbl(9.75).lng(1).str("x").lng(0).lng(1).str("b@x").lng(7);
  auto out = decoder->decode(*avro_payloads({v1.data, v2.data, v1.data})).ValueOrDie();
  ASSERT_TRUE(out.errors.empty()) << out.errors[0].message;
  // v1: int -> long, bytes -> string, float -> double, defaults for tags/email; level's type does
  // not resolve (string -> int), so it is rescued with the writer-only record `legacy`.
  EXPECT_EQ(cell(out, "id", 0), "41");
  EXPECT_EQ(cell(out, "name", 0), "ann");
  EXPECT_EQ(cell(out, "score", 0), "0.5");
  EXPECT_EQ(cell(out, "tags", 0), "list<item: string>[new]");
  EXPECT_EQ(cell(out, "email", 0), "null");
  EXPECT_EQ(cell(out, "level", 0), "null");
  EXPECT_EQ(cell(out, kRescuedDataColumn, 0), R"({"legacy":{"z":true},"level":"gold"})");
  EXPECT_EQ(cell(out, "id", 1), "42");
  EXPECT_EQ(cell(out, "score", 1), "9.75");
  EXPECT_EQ(cell(out, "email", 1), "b@x");
  EXPECT_EQ(cell(out, "level", 1), "7");
  EXPECT_EQ(cell(out, kRescuedDataColumn, 1), "null");
  EXPECT_EQ(cell(out, "name", 2), "ann");  // the cached plan of id 1 again
}

TEST(AvroDecoderTest, MissingFieldWithoutDefaultIsNull) {
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  registry->add_schema(5, R"({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})");
  auto decoder = make_avro_decoder(registry, R"({"type": "record", "name": "R", "fields": [
    {"name": "a", "type": "int"}, {"name": "b", "type": "string"}]})", {}).ValueOrDie();
  Bytes r;
  r.header(5).lng(3);
  auto out = decoder->decode(*avro_payloads({r.data})).ValueOrDie();
  ASSERT_TRUE(out.errors.empty());
  EXPECT_EQ(cell(out, "a", 0), "3");
  EXPECT_EQ(cell(out, "b", 0), "null");
}

// A millisecond default times 1000 overflowed int64 (signed overflow): now the reader field's
// default is refused, naming the field, and the records of that writer are errors, not UB.
TEST(AvroDecoderTest, MillisecondDefaultsBeyondTheMicrosecondRangeAreRefused) {
  for (const char* logical : {"timestamp-millis", "local-timestamp-millis", "time-millis"}) {
    const bool time = std::string(logical) == "time-millis";
    auto registry = SchemaRegistryClient::make("").ValueOrDie();
    registry->add_schema(5, R"({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})");
    const std::string reader = fmt::format(
        R"({{"type": "record", "name": "R", "fields": [{{"name": "a", "type": "int"}},
        {{"name": "ts", "type": {{"type": "{}", "logicalType": "{}"}}, "default": {}}}]}})",
        time ? "int" : "long", logical, "9223372036854775807");
    auto decoder = make_avro_decoder(registry, reader, {});
    ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
    Bytes r;
    r.header(5).lng(3);
    auto out = (*decoder)->decode(*avro_payloads({r.data}));
    const std::string message = out.ok() ? (out->errors.empty() ? "" : out->errors[0].message) : out.status().message();
    EXPECT_NE(message.find("reader field 'ts'"), std::string::npos) << logical << ": " << message;
    EXPECT_NE(message.find("out of range"), std::string::npos) << logical << ": " << message;
  }
}

TEST(AvroDecoderTest, BadRecordsAreErrorsNamingTheCause) {
  auto decoder = make_avro_decoder(two_writer_registry(), kReaderV2, {}).ValueOrDie();
  Bytes good;
  good.header(2).lng(1).str("a").dbl(1).lng(0).lng(0).lng(1);
  Bytes wrong_magic = good;
  wrong_magic.data[0] = 1;
  Bytes unknown;
  unknown.header(99).lng(1);
  Bytes truncated;
  truncated.header(2).lng(1).lng(10).raw("abc");  // a string of 10 bytes with 3 present
  Bytes trailing = good;
  trailing.raw("zz");
  Bytes bad_union;
  bad_union.header(2).lng(1).str("a").dbl(1).lng(0).lng(5);
  Bytes overlong;
  overlong.header(2).raw(std::string(11, '\xff'));
  auto out = decoder->decode(*avro_payloads({std::string("\x00\x00", 2), wrong_magic.data, unknown.data, truncated.data,
                                        trailing.data, bad_union.data, overlong.data, good.data, unknown.data}))
                 .ValueOrDie();
  ASSERT_EQ(out.errors.size(), 8u);
  EXPECT_EQ(out.errors[0].message, "Avro record of 2 bytes is shorter than the 5-byte Confluent header");
  EXPECT_EQ(out.errors[1].message, "Avro record starts with magic byte 1, not 0: not in the Confluent wire format");
  EXPECT_EQ(out.errors[2].message, "schema id 99: schema id 99: not found (offline registry client)");
  EXPECT_EQ(out.errors[3].message, "schema id 2: bad Avro record at byte 7: bad length or truncated string/bytes");
  EXPECT_EQ(out.errors[4].message, "schema id 2: bad Avro record at byte 19: 2 trailing bytes after the record");
  EXPECT_EQ(out.errors[5].message, "schema id 2: bad Avro record at byte 18: union branch 5 out of range");
  EXPECT_EQ(out.errors[6].row, 6);
  EXPECT_NE(out.errors[6].message.find("truncated or overlong varint"), std::string::npos);
  EXPECT_EQ(out.errors[7].row, 8);
  EXPECT_EQ(cell(out, "id", 7), "1");
  for (int r : {0, 1, 2, 3, 4, 5, 6, 8}) EXPECT_EQ(cell(out, "id", r), "null") << r;
}

TEST(AvroDecoderTest, EveryPrefixOfARecordIsAnErrorNeverACrash) {
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  registry->add_schema(1, kAllTypes);
  auto decoder = make_avro_decoder(registry, kAllTypes, {}).ValueOrDie();
  std::string full = all_types_record(1).data;
  std::vector<std::optional<std::string>> prefixes;
  for (size_t n = 0; n < full.size(); ++n) prefixes.push_back(full.substr(0, n));
  auto out = decoder->decode(*avro_payloads(prefixes)).ValueOrDie();
  EXPECT_EQ(out.errors.size(), prefixes.size());
}

TEST(AvroDecoderTest, UnreachableRegistryIsRetryable) {
  auto registry = SchemaRegistryClient::make("http://127.0.0.1:1").ValueOrDie();
  auto decoder = make_avro_decoder(registry, kReaderV2, {}).ValueOrDie();
  Bytes r;
  r.header(3).lng(1);
  auto st = decoder->decode(*avro_payloads({r.data})).status();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(is_retryable(st)) << st.ToString();
  EXPECT_NE(st.message().find("http://127.0.0.1:1/schemas/ids/3"), std::string::npos) << st.message();
}

TEST(AvroDecoderTest, RefusesANonRecordReaderSchema) {
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  EXPECT_EQ(make_avro_decoder(registry, R"("int")", {}).status().message(), "reader schema must be a record, not int");
}

// ---- hostile input -------------------------------------------------------------------------

TEST(AvroHostileTest, InvalidUtf8InStringsAndMapKeysBecomesReplacementCharacters) {
  const std::string schema = R"({"type":"record","name":"R","fields":[{"name":"s","type":"string"},
    {"name":"b","type":"bytes"},{"name":"m","type":{"type":"map","values":"string"}}]})";
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  registry->add_schema(1, schema);
  auto decoder = make_avro_decoder(registry, schema, {}).ValueOrDie();
  Bytes rec;
  rec.header(1).str("a\xff").str("\xff").lng(1).str("k\xed\xa0\x80").str("v\xc0").lng(0);
  auto out = decoder->decode(*avro_payloads({rec.data})).ValueOrDie();
  ASSERT_TRUE(out.errors.empty()) << out.errors[0].message;
  ASSERT_TRUE(out.rows->ValidateFull().ok());  // checks UTF-8 of every string column
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*out.rows->GetColumnByName("s")).GetString(0), "a" + r);
  EXPECT_EQ(static_cast<const arrow::BinaryArray&>(*out.rows->GetColumnByName("b")).GetString(0), "\xff");  // bytes stay
  const auto& m = static_cast<const arrow::MapArray&>(*out.rows->GetColumnByName("m"));
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*m.keys()).GetString(0), "k" + r);
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*m.items()).GetString(0), "v" + r);
}

TEST(AvroHostileTest, ReaderSchemasDeeperThanTheLimitAreRefused) {
  auto nested_records = [](int levels) {
    std::string s = R"({"type":"record","name":"D0","fields":[{"name":"a","type":"int"}]})";
    for (int i = 1; i < levels; ++i) {
      s = R"({"type":"record","name":"D)" + std::to_string(i) + R"(","fields":[{"name":"a","type":)" + s + "}]}";
    }
    return s;
  };
  auto registry = SchemaRegistryClient::make("").ValueOrDie();
  EXPECT_TRUE(make_avro_decoder(registry, nested_records(16), {}).ok());
  auto deep = make_avro_decoder(registry, nested_records(17), {});
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("nest 17 levels deep (the record itself included); sluice reads at most 16"),
            std::string::npos)
      << deep.status().message();
  // Far deeper: refused by the parser before anything recurses that deep.
  auto deeper = parse_avro_schema(nested_records(1000));
  ASSERT_FALSE(deeper.ok());
  EXPECT_NE(deeper.status().message().find("the schema nests deeper than 64 levels"), std::string::npos)
      << deeper.status().message().substr(0, 300);
}

TEST(AvroHostileTest, SchemasThatExpandExponentiallyOrChainNamesDeeplyAreRefused) {
  // T0 = {n: null}, Tk = {a: Tk-1, b: Tk-1}: 60 small records standing for 2^60 columns, whose
  // values take zero bytes: converting or decoding the expanded tree would never end.
  std::string doubling = R"({"type":"record","name":"T60","fields":[)";
  std::string inner = R"({"type":"record","name":"T0","fields":[{"name":"n","type":"null"}]})";
  for (int k = 1; k < 60; ++k) {
    inner = R"({"type":"record","name":"T)" + std::to_string(k) + R"(","fields":[{"name":"a","type":)" + inner +
            R"(},{"name":"b","type":"T)" + std::to_string(k - 1) + R"("}]})";
  }
  doubling += R"({"name":"a","type":)" + inner + R"(},{"name":"b","type":"T59"}]})";
  auto refused = parse_avro_schema(doubling);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("the schema expands to more than 100000 types"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace sluice::format
