// `sluice test` fixtures: the parser (every refusal with file:line:col), the row matcher and
// its diff, and whole cases run through the pipeline runner without a broker.
#include "sluice/testing/fixture.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "sluice/kafka/transactional_producer.h"
#include "sluice/testing/fixture_run.h"
#include "sluice/testing/row_match.h"
#include "../temp_dir.h"

namespace sluice::testing {
namespace {

TEST(FixtureParseTest, ReadsRecordsTablesBatchesAndExpectations) {
  auto cases = parse_fixture(R"(cases:
  - name: one batch
    kafka:
      events:
        - {value: {user: u1, n: 2}, key: k1, partition: 1, timestamp: "2024-01-01T10:00:00Z", headers: {src: web}}
        - value: not json
        - value: null
    expect:
      silver:
        rows: [{user: u1, n: 2}]
        expectations: {has_user: {passed: 1, failed: 2}}
        dead_letters: 1
  - name: two batches
    batches:
      - tables: {bronze: [{user: u2}]}
        expect: {silver: {rows: []}}
      - kafka: {events: [{value: "42", timestamp: 1000}]}
        expect_error: boom
)",
                             "t.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status().message();
  ASSERT_EQ(cases->size(), 2u);
  const auto& one = (*cases)[0];
  EXPECT_EQ(one.id, "t.yaml::one batch");
  ASSERT_EQ(one.batches.size(), 1u);
  const auto& recs = one.batches[0].records;
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].topic, "events");
  EXPECT_EQ(recs[0].partition, 1);
  EXPECT_EQ(*recs[0].value, R"({"user":"u1","n":2})");  // as written
  EXPECT_EQ(*recs[0].key, "k1");
  EXPECT_EQ(recs[0].timestamp_ms, 1'704'103'200'000);
  ASSERT_EQ(recs[0].headers.size(), 1u);
  EXPECT_EQ(recs[0].headers[0].first, "src");
  EXPECT_EQ(*recs[1].value, "not json");
  EXPECT_EQ(recs[1].timestamp_ms, kDefaultRecordTimestampMs);
  EXPECT_FALSE(recs[2].value.has_value());
  ASSERT_EQ(one.expect.size(), 1u);
  EXPECT_EQ(one.expect[0].rows->rows->rows.at(0)["n"], 2);
  EXPECT_EQ(*one.expect[0].expectations.at("has_user").failed, 2);
  EXPECT_EQ(*one.expect[0].dead_letters->count, 1);
  const auto& two = (*cases)[1];
  ASSERT_EQ(two.batches.size(), 2u);
  EXPECT_EQ(two.batches[0].tables.at("bronze").rows.at(0)["user"], "u2");
  EXPECT_TRUE(two.batches[0].expect[0].rows->rows->rows.empty());
  EXPECT_EQ(*two.batches[1].records[0].value, "42");
  EXPECT_EQ(two.batches[1].records[0].timestamp_ms, 1000);
  EXPECT_EQ(*two.batches[1].expect_error, "boom");
}

TEST(FixtureParseTest, ReadsSinkExpectationsAndSinkPartitions) {
  auto cases = parse_fixture(R"(cases:
  - name: sinks
    sink_partitions: {alerts: 3}
    kafka: {events: [{value: {n: 1}}]}
    expect:
      silver: {rows: 1}
      sinks:
        out: {rows: [{key: k, partition: 2}], tolerance: 0.5}
        quiet: {rows: 0}
)",
                             "t.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status().message();
  const auto& c = (*cases)[0];
  EXPECT_EQ(c.sink_partitions.at("alerts"), 3);
  EXPECT_EQ(c.sink_partitions_where.at("alerts"), "t.yaml:3:23");  // where a key that is no sink's topic is refused
  ASSERT_EQ(c.expect.size(), 3u);
  EXPECT_FALSE(c.expect[0].sink);
  EXPECT_TRUE(c.expect[1].sink && c.expect[2].sink);
  EXPECT_EQ(c.expect[1].dataset, "out");
  EXPECT_EQ(c.expect[1].tolerance, 0.5);
  EXPECT_EQ(c.expect[1].rows->rows->rows.at(0)["partition"], 2);
  EXPECT_EQ(*c.expect[2].rows->count, 0);
  auto refused = [](const std::string& expect) {
    auto r = parse_fixture("cases:\n  - name: x\n    kafka: {e: [{value: 1}]}\n    expect:\n      sinks: " + expect + "\n",
                           "t.yaml");
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(refused("{out: {rows: 1, late: 2}}").find("unknown key 'late' in expect.sinks.out"), std::string::npos);
  EXPECT_NE(refused("{out: {tolerance: 1}}").find("expect.sinks.out expects nothing"), std::string::npos);
  EXPECT_NE(refused("[out]").find("expect.sinks must be a mapping"), std::string::npos);
  auto zero = parse_fixture("cases:\n  - name: x\n    sink_partitions: {a: 0}\n    expect: {s: {rows: 1}}\n", "t.yaml");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("t.yaml:3:"), std::string::npos) << zero.status().message();
}

// librdkafka's partitioners, as a Kafka sink's records get their partition in sluice test: CRC32
// (zlib's) of the key for consistent*, none where the partitioner chooses at random.
TEST(SinkPartitionTest, FollowsTheConfiguredPartitioner) {
  auto partition = [](kafka::KafkaProperties p, std::optional<std::string_view> key, int32_t n) {
    auto r = kafka::partition_for_key(p, key, n);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::optional<int32_t>(-1);
  };
  EXPECT_EQ(partition({}, "c1", 4), 1);   // zlib.crc32(b"c1") % 4
  EXPECT_EQ(partition({}, "ann", 7), 5);  // zlib.crc32(b"ann") % 7
  EXPECT_EQ(partition({}, std::nullopt, 4), std::nullopt);  // consistent_random: no key, random
  EXPECT_EQ(partition({}, "", 4), std::nullopt);            // ... and an empty one
  EXPECT_EQ(partition({}, std::nullopt, 1), 0);             // one partition: no choice
  EXPECT_EQ(partition({{"partitioner", "consistent"}}, std::nullopt, 4), 0);  // CRC32 of nothing
  EXPECT_EQ(partition({{"partitioner", "random"}}, "c1", 4), std::nullopt);
  EXPECT_EQ(partition({{"partitioner", "murmur2_random"}}, std::nullopt, 4), std::nullopt);
  auto m = partition({{"partitioner", "murmur2_random"}}, "", 4);  // an empty key is hashed here
  EXPECT_TRUE(m.has_value() && *m >= 0 && *m < 4);
  EXPECT_EQ(partition({{"partitioner", "murmur2"}}, "c1", 4), partition({{"partitioner", "murmur2_random"}}, "c1", 4));
  auto bad = kafka::partition_for_key({{"partitioner", "sticky"}}, "c1", 4);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown Kafka partitioner 'sticky'"), std::string::npos);
}

TEST(FixtureParseTest, EncodesAvroRecordsWithTheCaseSchemas) {
  auto cases = parse_fixture(R"(cases:
  - name: avro
    schema_registry:
      - {id: 7, subject: s-value, schema: {type: record, name: R, fields: [{name: a, type: long}, {name: s, type: string}, {name: o, type: ["null", int], default: null}]}}
    kafka:
      t:
        - {value: {a: -1, s: hi}, value_schema_id: 7}
        - {value: {a: 64, s: "", o: 3}, value_schema_id: 7}
    expect: {x: {rows: 0}}
)",
                             "t.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status().message();
  const auto& c = (*cases)[0];
  ASSERT_EQ(c.schema_registry.size(), 1u);
  EXPECT_EQ(c.schema_registry[0].id, 7);
  EXPECT_EQ(c.schema_registry[0].subject, "s-value");
  const auto& recs = c.batches[0].records;
  ASSERT_EQ(recs.size(), 2u);
  // Magic 0, id 7 big-endian, then zigzag longs, length-prefixed strings, the union's branch index.
  EXPECT_EQ(*recs[0].value, std::string("\0\0\0\0\x07\x01\x04hi\x00", 10));
  EXPECT_EQ(*recs[1].value, std::string("\0\0\0\0\x07\x80\x01\x00\x02\x06", 10));
}

TEST(FixtureParseTest, RefusesAvroRecordsThatDoNotFitOrNameNoGivenSchema) {
  const std::string head = R"(cases:
  - name: avro
    schema_registry:
      - {id: 7, schema: {type: record, name: R, fields: [{name: a, type: long}]}}
    kafka:
      t:
)";
  auto unknown = parse_fixture(head + "        - {value: {a: 1}, value_schema_id: 8}\n    expect: {x: {rows: 0}}\n", "t.yaml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("t.yaml:7:44: value_schema_id 8 is not among the case's schema_registry"),
            std::string::npos)
      << unknown.status().message();
  auto misfit = parse_fixture(head + "        - {value: {a: x}, value_schema_id: 7}\n    expect: {x: {rows: 0}}\n", "t.yaml");
  ASSERT_FALSE(misfit.ok());
  EXPECT_NE(misfit.status().message().find("cannot encode the value with schema id 7: a: \"x\" is not a whole number"),
            std::string::npos)
      << misfit.status().message();
  auto extra = parse_fixture(head + "        - {value: {a: 1, b: 2}, value_schema_id: 7}\n    expect: {x: {rows: 0}}\n",
                             "t.yaml");
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find("'b' is not a field of record R"), std::string::npos);
}

TEST(FixtureParseTest, RecordNumbersKeepTheirText) {
  auto cases = parse_fixture("cases:\n  - name: c\n    kafka: {t: [{value: {a: 12345678901234567.89, b: 1e999, c: +5, "
                             "d: 0x1F, e: '7', f: -0.5e-3, g: [1, true, ~, x]}}]}\n    expect: {x: {rows: 1}}\n",
                             "n.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status().message();
  EXPECT_EQ(*(*cases)[0].batches[0].records[0].value,
            R"({"a":12345678901234567.89,"b":1e999,"c":5,"d":"0x1F","e":"7","f":-0.5e-3,"g":[1,true,null,"x"]})");
}

TEST(FixtureParseTest, QuotedScalarsStayText) {
  auto cases = parse_fixture("cases:\n  - name: c\n    expect: {t: {rows: [{a: '1', b: 1, c: ~, d: true}]}}\n", "q.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status().message();
  const auto& row = (*cases)[0].expect[0].rows->rows->rows[0];
  EXPECT_TRUE(row["a"].is_string());
  EXPECT_TRUE(row["b"].is_number_integer());
  EXPECT_TRUE(row["c"].is_null());
  EXPECT_TRUE(row["d"].is_boolean());
}

struct Refusal {
  const char* name;
  const char* text;
  const char* message;
};

class FixtureRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(FixtureRefusalTest, NamesFileLineAndWhat) {
  auto cases = parse_fixture(GetParam().text, "bad.yaml");
  ASSERT_FALSE(cases.ok());
  EXPECT_NE(cases.status().message().find(GetParam().message), std::string::npos) << cases.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, FixtureRefusalTest,
    ::testing::Values(
        Refusal{"MisspeltKey", "cases:\n  - name: c\n    exepct: {}\n",
                "bad.yaml:3:5: unknown key 'exepct' in a case (did you mean 'expect'?)"},
        Refusal{"UnknownRecordKey", "cases:\n  - name: c\n    kafka: {t: [{value: 1, offset: 3}]}\n    expect: {x: {rows: 1}}\n",
                "bad.yaml:3:28: unknown key 'offset' in a record of topic 't'"},
        Refusal{"RecordWithoutValue", "cases:\n  - name: c\n    kafka: {t: [{key: a}]}\n    expect: {x: {rows: 1}}\n",
                "bad.yaml:3:17: a record of topic 't' needs a value"},
        Refusal{"UnknownExpectKey", "cases:\n  - name: c\n    expect: {x: {rows: [{a: 1}], colour: red}}\n",
                "unknown key 'colour' in expect.x"},
        Refusal{"NothingExpected", "cases:\n  - name: c\n    kafka: {t: []}\n", "case 'c' expects nothing"},
        Refusal{"CaseTwice", "cases:\n  - name: c\n    expect: {x: {rows: 1}}\n  - name: c\n    expect: {x: {rows: 1}}\n",
                "bad.yaml:4:11: case 'c' is defined twice"},
        Refusal{"BadTimestamp", "cases:\n  - name: c\n    kafka: {t: [{value: 1, timestamp: yesterday}]}\n    expect: {x: {rows: 1}}\n",
                "bad.yaml:3:39: timestamp yesterday is neither"},
        Refusal{"NegativePartition", "cases:\n  - name: c\n    kafka: {t: [{value: 1, partition: -1}]}\n    expect: {x: {rows: 1}}\n",
                "partition must be between 0 and 100000"},
        Refusal{"KafkaBesideBatches", "cases:\n  - name: c\n    batches: [{expect: {x: {rows: 1}}}]\n    kafka: {t: []}\n",
                "case 'c' has batches: put its kafka inside a batch"},
        Refusal{"CountNotANumber", "cases:\n  - name: c\n    expect: {x: {expectations: {e: {passed: many}}}}\n", "passed must be a whole number"},
        Refusal{"NotYaml", "cases: [\n", "bad.yaml:2:1: not valid YAML"},
        Refusal{"ExpectBesideExpectError",
                "cases:\n  - name: c\n    kafka: {t: [{value: 1}]}\n    expect: {x: {rows: 1}}\n    expect_error: boom\n",
                "bad.yaml:4:13: expect: beside expect_error: is never checked"},
        Refusal{"ExpectBesideExpectErrorInABatch",
                "cases:\n  - name: c\n    batches:\n      - expect: {x: {rows: 1}}\n        expect_error: boom\n",
                "bad.yaml:4:17: expect: beside expect_error: is never checked"},
        Refusal{"DuplicateKey", "cases:\n  - name: c\n    expect: {x: {rows: 1}}\n    expect: {x: {rows: 2}}\n",
                "bad.yaml:4:5: key 'expect' is given twice in this mapping (first at bad.yaml:3:5)"},
        Refusal{"DuplicateColumn", "cases:\n  - name: c\n    expect: {x: {rows: [{a: 1, a: 2}]}}\n",
                "bad.yaml:3:32: key 'a' is given twice"},
        Refusal{"NotUtf8", "cases:\n  - name: c\n    kafka: {t: [{value: \"a\xff\"}]}\n    expect: {x: {rows: 1}}\n",
                "bad.yaml:3: not valid UTF-8"},
        Refusal{"UnknownTopLevelKey", "tests: []\n", "unknown key 'tests' in a fixture file"}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return std::string(info.param.name); });

arrow::FieldVector int_fields(const std::vector<std::string>& names) {
  arrow::FieldVector out;
  for (const auto& n : names) out.push_back(arrow::field(n, arrow::int64()));
  return out;
}

FixtureRows rows(std::vector<nlohmann::json> r) {
  FixtureRows out;
  for (size_t i = 0; i < r.size(); ++i) out.where.push_back("f.yaml:" + std::to_string(i + 1));
  out.rows = std::move(r);
  return out;
}

TEST(RowMatchTest, OrderInsensitiveOnTheColumnsNamed) {
  std::vector<nlohmann::json> actual = {{{"a", 1}, {"b", "x"}, {"c", 1.5}}, {{"a", 2}, {"b", "y"}, {"c", 2.5}}};
  auto diff = match_rows(actual, int_fields({"a", "b", "c"}), rows({{{"b", "y"}}, {{"b", "x"}, {"a", 1}}}), 1e-9, "t");
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  EXPECT_TRUE(diff->ok()) << diff->text("");
}

TEST(RowMatchTest, NumbersWithinTheTolerance) {
  EXPECT_TRUE(value_matches(1.0, 1.0 + 1e-12, 1e-9));
  EXPECT_FALSE(value_matches(1.0, 1.001, 1e-9));
  EXPECT_TRUE(value_matches(1000.0, 1000.5, 1e-3));
  EXPECT_TRUE(value_matches(3, 3.0, 1e-9));
  EXPECT_FALSE(value_matches(3, "3", 1e-9));
}

TEST(RowMatchTest, WholeNumbersMatchExactly) {
  // epoch ms one second apart: within a relative 1e-9 of each other, still different values
  EXPECT_FALSE(value_matches(int64_t{1'704'067'200'000}, int64_t{1'704'067'201'000}, 1e-9));
  EXPECT_FALSE(value_matches(int64_t{1'704'067'200'000}, nlohmann::json::parse("1704067201000"), 1e-9));
  EXPECT_TRUE(value_matches(int64_t{1'704'067'200'000}, nlohmann::json::parse("1704067200000"), 1e-9));
  EXPECT_TRUE(value_matches(int64_t{-3}, int64_t{-3}, 0));
  EXPECT_FALSE(value_matches(int64_t{-3}, nlohmann::json::parse("3"), 0));
  EXPECT_TRUE(value_matches(1.5e12, int64_t{1'500'000'000'001}, 1e-9));  // a float: the tolerance
}

TEST(RowMatchTest, TimesMatchAsInstantsInTimeColumnsOnly) {
  const auto ts = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  EXPECT_TRUE(value_matches("2024-01-01 10:00:00", "2024-01-01T10:00:00.000000Z", 0, ts.get()));
  EXPECT_TRUE(value_matches("2024-01-01T11:00:00+01:00", "2024-01-01T10:00:00Z", 0, ts.get()));
  EXPECT_FALSE(value_matches("2024-01-01 10:00:01", "2024-01-01T10:00:00Z", 0, ts.get()));
  EXPECT_TRUE(value_matches("2024-01-01", "2024-01-01", 0, arrow::date32().get()));
  // a STRING column holds text: another text of the same instant is another value
  EXPECT_FALSE(value_matches("2024-01-01 12:00:00+02:00", "2024-01-01T10:00:00Z", 0, arrow::utf8().get()));
  EXPECT_FALSE(value_matches("2024-01-01 12:00:00+02:00", "2024-01-01T10:00:00Z", 0));
}

TEST(RowMatchTest, MapsMatchOnExactlyTheirEntries) {
  const auto map = arrow::map(arrow::utf8(), arrow::int64());
  EXPECT_TRUE(value_matches({{"a", 1}}, {{"a", 1}}, 0, map.get()));
  EXPECT_FALSE(value_matches({{"a", 1}}, {{"a", 1}, {"b", 2}}, 0, map.get()));
  EXPECT_FALSE(value_matches({{"a", 1}, {"b", 2}}, {{"a", 1}}, 0, map.get()));
  // a struct: the fields named
  const auto st = arrow::struct_({arrow::field("a", arrow::int64()), arrow::field("b", arrow::int64())});
  EXPECT_TRUE(value_matches({{"a", 1}}, {{"a", 1}, {"b", 2}}, 0, st.get()));
}

TEST(RowMatchTest, ColumnTypesReachTheValues) {
  arrow::FieldVector fields = {arrow::field("s", arrow::utf8()),
                               arrow::field("t", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                               arrow::field("m", arrow::map(arrow::utf8(), arrow::int64()))};
  std::vector<nlohmann::json> actual = {
      {{"s", "2024-01-01T10:00:00Z"}, {"t", "2024-01-01T10:00:00.000Z"}, {"m", {{"k", 1}, {"x", 2}}}}};
  auto as_time = match_rows(actual, fields, rows({{{"t", "2024-01-01 12:00:00+02:00"}}}), 0, "t");
  ASSERT_TRUE(as_time.ok());
  EXPECT_TRUE(as_time->ok()) << as_time->text("");
  auto as_text = match_rows(actual, fields, rows({{{"s", "2024-01-01 12:00:00+02:00"}}}), 0, "t");
  ASSERT_TRUE(as_text.ok());
  EXPECT_FALSE(as_text->ok());
  auto map = match_rows(actual, fields, rows({{{"m", {{"k", 1}}}}}), 0, "t");
  ASSERT_TRUE(map.ok());
  EXPECT_FALSE(map->ok());
}

TEST(RowMatchTest, NullMatchesAMissingValueOnly) {
  std::vector<nlohmann::json> actual = {{{"a", 1}}};  // b null: left out, as to_json does
  auto diff = match_rows(actual, int_fields({"a", "b"}), rows({{{"a", 1}, {"b", nullptr}}}), 0, "t");
  ASSERT_TRUE(diff.ok());
  EXPECT_TRUE(diff->ok());
  EXPECT_FALSE(value_matches(nullptr, 0, 0));
}

TEST(RowMatchTest, DiffShowsMissingAndUnexpectedRows) {
  std::vector<nlohmann::json> actual = {{{"a", 1}, {"b", "x"}}, {{"a", 3}, {"b", "z"}}};
  auto diff = match_rows(actual, int_fields({"a", "b"}), rows({{{"a", 1}}, {{"a", 2}}}), 0, "t");
  ASSERT_TRUE(diff.ok());
  ASSERT_FALSE(diff->ok());
  EXPECT_EQ(diff->text("  "),
            "  missing rows (expected, not found): 1\n"
            "    - {\"a\":2}  (f.yaml:2)\n"
            "  unexpected rows (found, not expected): 1\n"
            "    + {\"a\":3}\n");
}

TEST(RowMatchTest, DuplicatesCountOnce) {
  std::vector<nlohmann::json> actual = {{{"a", 1}}};
  auto diff = match_rows(actual, int_fields({"a"}), rows({{{"a", 1}}, {{"a", 1}}}), 0, "t");
  ASSERT_TRUE(diff.ok());
  EXPECT_EQ(diff->missing.size(), 1u);
}

TEST(RowMatchTest, RefusesAColumnTheTableLacks) {
  auto diff = match_rows({}, int_fields({"a", "b"}), rows({{{"c", 1}}}), 0, "silver");
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.status().message(), "f.yaml:1: 'silver' has no column 'c'; its columns: a, b");
}

// A whole case through the runner: Kafka records decoded, an expectation dropping a row,
// a dead letter, and a second batch read from the offsets the first committed.
class FixtureRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write("pipeline.yaml", "name: t\nstorage: ./data\nkafka:\n  default:\n    bootstrap.servers: 127.0.0.1:1\n");
    write("p.sql",
          "CREATE OR REFRESH STREAMING TABLE bronze AS SELECT value.*, offset FROM STREAM read_kafka(topic => 'ev', "
          "value_format => 'json', value_schema => 'user STRING, n BIGINT');\n"
          "CREATE OR REFRESH STREAMING TABLE silver (CONSTRAINT has_user EXPECT (user IS NOT NULL) ON VIOLATION DROP ROW)"
          " AS SELECT user, n * 2 AS n2 FROM STREAM(bronze);\n");
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.path() / name) << text;
  }
  arrow::Result<CaseResult> run(const std::string& fixture) {
    ARROW_ASSIGN_OR_RAISE(auto cases, parse_fixture(fixture, "t.yaml"));
    return run_case(dir_.path(), cases.at(0));
  }
  TempDir dir_;
};

TEST_F(FixtureRunTest, PassesWhenTheTablesHoldWhatIsExpected) {
  auto r = run(R"(cases:
  - name: c
    batches:
      - kafka: {ev: [{value: {user: a, n: 1}}, {value: {n: 2}}, {value: "not json"}]}
        expect:
          silver: {rows: [{user: a, n2: 2}], expectations: {has_user: {passed: 1, failed: 1}}}
          bronze: {dead_letters: [{offset: 2}]}
      - kafka: {ev: [{value: {user: b, n: 5}}]}
    expect:
      silver: {rows: [{user: a, n2: 2}, {user: b, n2: 10}], expectations: {has_user: {passed: 2, failed: 1}}}
      bronze: {rows: 3, dead_letters: 1}
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
}

TEST_F(FixtureRunTest, FailsWithADiff) {
  auto r = run(R"(cases:
  - name: c
    kafka: {ev: [{value: {user: a, n: 1}}]}
    expect:
      silver: {rows: [{user: a, n2: 3}], expectations: {has_user: {failed: 1}}}
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->passed);
  EXPECT_NE(r->failure.find("- {\"n2\":3,\"user\":\"a\"}  (t.yaml:5:23)"), std::string::npos) << r->failure;
  EXPECT_NE(r->failure.find("+ {\"n2\":2,\"user\":\"a\"}"), std::string::npos) << r->failure;
  EXPECT_NE(r->failure.find("expectation 'has_user': expected failed 1, got passed 1, failed 0"), std::string::npos)
      << r->failure;
}

TEST_F(FixtureRunTest, GivenTableRowsReplaceTheirFlow) {
  auto r = run(R"(cases:
  - name: c
    tables: {bronze: [{user: x, n: 4, offset: 0}, {n: 1, offset: 1}]}
    expect:
      silver: {rows: [{user: x, n2: 8}]}
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
}

TEST_F(FixtureRunTest, RefusesADatasetThePipelineLacks) {
  auto r = run("cases:\n  - name: c\n    kafka: {ev: []}\n    expect: {gold: {rows: []}}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.yaml:4:14: expected dataset 'gold' is not a table of pipeline 't'; its tables: bronze, silver"),
            std::string::npos)
      << r.status().message();
}

TEST_F(FixtureRunTest, RefusesAGivenRowThatDoesNotFit) {
  auto r = run("cases:\n  - name: c\n    tables: {bronze: [{n: lots}]}\n    expect: {silver: {rows: []}}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.yaml:3:23: \"lots\" does not fit column 'n' of table 'bronze' (int64)"),
            std::string::npos)
      << r.status().message();
}

TEST_F(FixtureRunTest, AnUpdateThatFailsPassesOnlyWhenTheErrorIsExpected) {
  write("p.sql",
        "CREATE OR REFRESH STREAMING TABLE bronze (CONSTRAINT small EXPECT (n < 10) ON VIOLATION FAIL UPDATE) "
        "AS SELECT value.* FROM STREAM read_kafka(topic => 'ev', value_format => 'json', value_schema => 'n BIGINT');\n");
  auto expected = run("cases:\n  - name: c\n    kafka: {ev: [{value: {n: 11}}]}\n    expect_error: small\n");
  ASSERT_TRUE(expected.ok()) << expected.status().message();
  EXPECT_TRUE(expected->passed) << expected->failure;
  auto unexpected = run("cases:\n  - name: c\n    kafka: {ev: [{value: {n: 11}}]}\n    expect: {bronze: {rows: 1}}\n");
  ASSERT_TRUE(unexpected.ok()) << unexpected.status().message();
  EXPECT_FALSE(unexpected->passed);
  EXPECT_NE(unexpected->failure.find("the update failed:"), std::string::npos) << unexpected->failure;
}

TEST_F(FixtureRunTest, TheTemporaryStorageIsRemoved) {
  TempDir tmp;
  const char* before = std::getenv("TMPDIR");
  const std::string saved = before ? before : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  auto r = run("cases:\n  - name: c\n    kafka: {ev: [{value: {user: a, n: 1}}]}\n    expect: {bronze: {rows: 1}}\n");
  if (before) setenv("TMPDIR", saved.c_str(), 1); else unsetenv("TMPDIR");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST_F(FixtureRunTest, TextThatIsNotUtf8NeverEscapesAndTheStorageIsRemoved) {
  TempDir tmp;
  const char* before = std::getenv("TMPDIR");
  const std::string saved = before ? before : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  // A case built in code (the parser refuses such a file): a given row's text with a bad byte.
  auto cases = parse_fixture("cases:\n  - name: c\n    tables: {bronze: [{user: x, n: 1}]}\n"
                             "    expect: {silver: {rows: [{user: x}]}}\n", "t.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status().message();
  auto c = cases->at(0);
  c.batches[0].tables["bronze"].rows[0]["user"] = "x\xff";
  auto r = run_case(dir_.path(), c);
  if (before) setenv("TMPDIR", saved.c_str(), 1); else unsetenv("TMPDIR");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->passed);  // the row was written as "x\uFFFD", which is not "x"
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

// A listening socket on 127.0.0.1 that tells whether anyone connected (the kernel completes a
// connection into the backlog without accept(), so a non-blocking accept() sees every attempt).
class CountingListener {
 public:
  CountingListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 64);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~CountingListener() { close(fd_); }
  int port() const { return port_; }
  int accepted() {
    int n = 0;
    for (int c; (c = accept(fd_, nullptr, nullptr)) >= 0; ++n) close(c);
    return n;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(FixtureRunTest, AnInferredSchemaIsSampledFromTheFixtureNeverTheBroker) {
  CountingListener broker;
  ASSERT_GT(broker.port(), 0);
  write("pipeline.yaml", fmt::format("name: t\nstorage: ./data\nkafka:\n  default:\n    bootstrap.servers: 127.0.0.1:{}\n",
                                     broker.port()));
  write("p.sql",
        "CREATE OR REFRESH STREAMING TABLE bronze AS SELECT value.* FROM STREAM read_kafka(topic => 'ev', "
        "value_format => 'json');\n");
  auto r = run("cases:\n  - name: c\n    kafka: {ev: [{value: {user: a, n: 1}}, {value: {user: b, n: 2}}]}\n"
               "    expect: {bronze: {rows: [{user: a, n: 1}, {user: b, n: 2}]}}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
  EXPECT_EQ(broker.accepted(), 0);
}

TEST_F(FixtureRunTest, AnObjectStoreStorageIsNeverOpened) {
  CountingListener s3;
  // No credentials: opening it would look them up (instance metadata) and refuse.
  write("pipeline.yaml", fmt::format("name: t\nstorage: s3://bucket/p\nstorage_options:\n  aws_endpoint_url: "
                                     "http://127.0.0.1:{}\n  aws_allow_http: \"true\"\nkafka:\n  default:\n"
                                     "    bootstrap.servers: 127.0.0.1:1\n",
                                     s3.port()));
  auto r = run("cases:\n  - name: c\n    kafka: {ev: [{value: {user: a, n: 1}}]}\n    expect: {bronze: {rows: 1}}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
  EXPECT_EQ(s3.accepted(), 0);
}

TEST_F(FixtureRunTest, GivenTablesAreCreatedWithTheirDefinition) {
  // A given table with the change data feed on, read by table_changes downstream.
  write("p.sql",
        "CREATE OR REFRESH STREAMING TABLE bronze PARTITIONED BY (user) TBLPROPERTIES ('delta.enableChangeDataFeed' = "
        "'true') AS SELECT value.* FROM STREAM read_kafka(topic => 'ev', value_format => 'json', value_schema => "
        "'user STRING, n BIGINT');\n"
        "CREATE OR REFRESH STREAMING TABLE changes AS SELECT user, n, _change_type FROM STREAM table_changes('bronze', 0);\n");
  auto r = run("cases:\n  - name: c\n    tables: {bronze: [{user: x, n: 4}, {user: y, n: 5}]}\n"
               "    expect: {changes: {rows: [{user: x, n: 4, _change_type: insert}, {user: y, n: 5, _change_type: insert}]}}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
}

TEST_F(FixtureRunTest, RefusesRecordsNoFlowReads) {
  auto r = run("cases:\n  - name: c\n    kafka: {evs: [{value: {user: a}}]}\n    expect: {bronze: {rows: 1}}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.yaml:3:19: no flow of pipeline 't' reads topic 'evs'; topics read: ev"),
            std::string::npos)
      << r.status().message();
}

TEST_F(FixtureRunTest, RefusesRecordsForTheSourceOfAGivenTable) {
  auto r = run("cases:\n  - name: c\n    kafka: {ev: [{value: {user: a}}]}\n    tables: {bronze: [{user: x, n: 1}]}\n"
               "    expect: {silver: {rows: 1}}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.yaml:3:18: records of topic 'ev' would never be read: its reader 'bronze' is given"),
            std::string::npos)
      << r.status().message();
}

TEST_F(FixtureRunTest, AQuietBatchCountsNoExpectationRows) {
  auto r = run("cases:\n  - name: c\n    batches:\n      - kafka: {ev: []}\n"
               "        expect: {silver: {expectations: {has_user: {passed: 0, failed: 0}}}}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->passed) << r->failure;
  auto unknown = run("cases:\n  - name: c\n    kafka: {ev: []}\n    expect: {silver: {expectations: {has_usr: {passed: 0}}}}\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("t.yaml:4:38: dataset 'silver' has no expectation named 'has_usr'; it declares: has_user"),
            std::string::npos)
      << unknown.status().message();
}

}  // namespace
}  // namespace sluice::testing
