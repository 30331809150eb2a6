// `sluice test` fixtures: the tests/*.yaml files beside a pipeline. A case feeds Kafka records
// and upstream table rows to the pipeline in one or more batches (one update each) and states
// what the datasets must hold afterwards. Format: README.md "Testing pipelines".
#pragma once

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::testing {

// Fixture records without a timestamp get this one (2024-01-01T00:00:00Z, ms since the epoch).
constexpr int64_t kDefaultRecordTimestampMs = 1'704'067'200'000;

// One Kafka record a read_kafka source reads.
struct FixtureRecord {
  std::string topic;
  int32_t partition = 0;
  std::optional<std::string> key;    // empty: a null key
  std::optional<std::string> value;  // empty: a null value (a tombstone)
  int64_t timestamp_ms = kDefaultRecordTimestampMs;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  std::string where;  // file:line
};

// Rows given for (or expected in) a table: JSON objects, column name -> value.
struct FixtureRows {
  std::vector<nlohmann::json> rows;
  std::vector<std::string> where;  // file:line of each row
};

// Rows expected in a table, or only how many.
struct RowsExpectation {
  std::optional<FixtureRows> rows;
  std::optional<int64_t> count;
  std::string where;
};

struct ExpectationCounts {
  std::optional<int64_t> passed;
  std::optional<int64_t> failed;
  std::string where;
};

// What one dataset must hold after a batch (or after the case).
struct DatasetExpectation {
  std::string dataset;  // or the sink's name (expect: sinks: <name>: ...)
  bool sink = false;    // a sink: what it sent (a Kafka sink's records, a Delta sink's rows); only `rows`
  std::string where;
  double tolerance = 1e-9;  // relative (absolute below 1) difference allowed between numbers
  std::optional<RowsExpectation> rows;
  std::map<std::string, ExpectationCounts> expectations;  // by constraint name
  std::optional<RowsExpectation> dead_letters;  // <dataset>_dead_letter, or the count
  std::optional<RowsExpectation> quarantine;    // <dataset>_quarantine, or the count
  std::optional<RowsExpectation> late;          // <dataset>_late, or the count
};

// One update's inputs, and what must hold after it.
struct FixtureBatch {
  std::vector<FixtureRecord> records;          // in the order given
  std::map<std::string, FixtureRows> tables;   // dataset -> rows written before the update
  std::vector<DatasetExpectation> expect;      // checked after this update (counts: this update)
  std::optional<std::string> expect_error;     // the update must fail with this text in its error
  std::string where;
};

// A schema a case gives in place of the schema registry (schema_registry:): an Avro read_kafka
// source gets its writer (and, by subject, reader) schemas from these while the case runs and
// never contacts the registry; records with value_schema_id are Avro-encoded with them.
struct GivenSchema {
  int32_t id = 0;
  std::string subject;  // optional: serves read_kafka's schema_registry_subject
  std::string schema;   // Avro JSON
  std::string where;
};

struct TestCase {
  std::string name;
  std::string file;  // the fixture file, as named to the loader
  int line = 0;
  std::string id;    // "<file name>::<case name>": what -k and --case match
  std::vector<FixtureBatch> batches;
  std::vector<DatasetExpectation> expect;  // checked after the last update (counts: all updates)
  std::vector<GivenSchema> schema_registry;
  std::map<std::string, int32_t> sink_partitions;  // sink_partitions: topic -> partitions (default 1)
  std::map<std::string, std::string> sink_partitions_where;  // topic -> file:line:col of its key
};

// The cases of one fixture file. `display` names the file in ids and errors. Unknown keys,
// wrong types and duplicate case names are refused with file:line:col.
arrow::Result<std::vector<TestCase>> load_fixture_file(const std::filesystem::path& file, const std::string& display);

// Fixture text (for tests): as load_fixture_file with the text of a file named `display`.
arrow::Result<std::vector<TestCase>> parse_fixture(const std::string& text, const std::string& display);

}  // namespace sluice::testing
