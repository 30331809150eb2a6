// Validate refuses exactly what run refuses: every refusal `run` makes about a pipeline's
// definition (not about its data) happens while planning, which validate and run share. Each
// case is a definition run used to refuse only once it started a flow; validate said OK to it.
#include <gtest/gtest.h>

#include <string>

#include "../temp_dir.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/sql_runner.h"

namespace sluice::pipeline {
namespace {

struct ParityCase {
  std::string name;
  std::string sql;
  std::string message;  // the line:col and text the error must contain
};

class ValidateParityTest : public ::testing::TestWithParam<ParityCase> {};

TEST_P(ValidateParityTest, ValidateRefusesWhatRunRefuses) {
  testing::TempDir storage;
  PipelineConfig config;
  config.name = "parity";
  config.storage = storage.path();
  config.kafka["default"] = {{"bootstrap.servers", "127.0.0.1:1"}};
  auto graph = build_graph({{"p.sql", GetParam().sql}});
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  auto checked = check_sql_pipeline(config, *graph);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.status().message().find(GetParam().message), std::string::npos) << checked.status().message();
}

const std::string kBronzeDdl = "CREATE STREAMING TABLE bronze AS SELECT * FROM STREAM read_kafka(topic => 't');\n";
const std::string kEvents =
    "CREATE STREAMING TABLE ev AS SELECT e.* FROM (SELECT from_json(CAST(value AS STRING), "
    "'id BIGINT, ts TIMESTAMP, tags ARRAY<STRING>') AS e FROM STREAM(bronze));\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ValidateParityTest,
    ::testing::Values(
        ParityCase{"ApplyChangesScd2IgnoringNullUpdates",
                   kBronzeDdl + "CREATE STREAMING TABLE c;\nAPPLY CHANGES INTO c FROM STREAM(bronze) KEYS (key) "
                             "IGNORE NULL UPDATES SEQUENCE BY offset STORED AS SCD TYPE 2;",
                   "p.sql:3:1: error: IGNORE NULL UPDATES with STORED AS SCD TYPE 2 is not supported yet"},
        ParityCase{"ApplyChangesFromKafka",
                   "CREATE TEMPORARY VIEW k AS SELECT * FROM STREAM read_kafka(topic => 't');\n"
                   "CREATE STREAMING TABLE c;\nAPPLY CHANGES INTO c FROM STREAM(k) KEYS (key) SEQUENCE BY offset;",
                   "error: APPLY CHANGES reads the changes from a streaming table"},
        ParityCase{"MaterializedViewOverStreamReadKafka",
                   "CREATE MATERIALIZED VIEW m AS SELECT count(*) AS n FROM STREAM read_kafka(topic => 't');",
                   "p.sql:1:57: error: a materialized view cannot read Kafka directly"},
        ParityCase{"MaterializedViewOverReadKafka",
                   "CREATE MATERIALIZED VIEW m AS SELECT * FROM read_kafka(topic => 't');",
                   "p.sql:1:45: error: a materialized view cannot read Kafka directly"},
        ParityCase{"WatermarkWithoutWindow",
                   kBronzeDdl + kEvents + "CREATE STREAMING TABLE s AS SELECT id FROM STREAM(ev) WATERMARK ts DELAY OF "
                                       "INTERVAL 1 MINUTE;",
                   "p.sql:3:55: error: WATERMARK runs with windowed aggregations"},
        ParityCase{"WatermarkInMaterializedView",
                   kBronzeDdl + kEvents + "CREATE MATERIALIZED VIEW m AS SELECT id FROM ev WATERMARK ts DELAY OF "
                                       "INTERVAL 1 MINUTE;",
                   "p.sql:3:49: error: WATERMARK runs with windowed aggregations"},
        ParityCase{"WatermarkDistinctInMaterializedView",
                   kBronzeDdl + kEvents + "CREATE MATERIALIZED VIEW m AS SELECT DISTINCT id, ts FROM ev WATERMARK ts "
                                       "DELAY OF INTERVAL 1 MINUTE;",
                   "p.sql:3:62: error: WATERMARK with SELECT DISTINCT deduplicates a stream in a streaming table"},
        ParityCase{"BadTemporaryProperty",
                   kBronzeDdl + kEvents + "CREATE MATERIALIZED VIEW m TBLPROPERTIES ('sluice.temporary' = 'maybe') "
                                       "AS SELECT DISTINCT ON (id) id, ts FROM ev;",
                   "p.sql:3:26: error: table 'm': 'sluice.temporary' is 'true' (a temporary table"},
        ParityCase{"TemporaryPropertyOnView",
                   kBronzeDdl + kEvents + "CREATE VIEW v TBLPROPERTIES ('sluice.temporary' = 'true') AS SELECT id "
                                       "FROM ev;",
                   "p.sql:3:13: error: table property 'sluice.temporary' on view 'v'"},
        ParityCase{"BadLateRowsProperty",
                   kBronzeDdl + kEvents + "CREATE STREAMING TABLE w TBLPROPERTIES ('sluice.late_rows' = 'keep') AS "
                                       "SELECT count(*) AS n FROM STREAM(ev) WATERMARK ts DELAY OF INTERVAL 1 MINUTE "
                                       "GROUP BY window(ts, '1 minute');",
                   "p.sql:3:24: error: table 'w': 'sluice.late_rows' is 'table'"},
        ParityCase{"DedupOfAListColumn",
                   kBronzeDdl + kEvents + "CREATE STREAMING TABLE d AS SELECT DISTINCT id, ts, tags FROM STREAM(ev) "
                                       "WATERMARK ts DELAY OF INTERVAL 1 MINUTE;",
                   "p.sql:3:1: error: SELECT DISTINCT over a stream cannot compare column 'tags'"},
        ParityCase{"NonPositiveMaxOffsets",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', "
                   "max_offsets_per_trigger => '0');",
                   "p.sql:1:43: error: read_kafka max_offsets_per_trigger must be positive"},
        ParityCase{"BadGroupMode",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', group_mode => 'x');",
                   "p.sql:1:43: error: read_kafka group_mode must be 'assign'"},
        ParityCase{"BadStartingOffsets",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', "
                   "starting_offsets => 'soon');",
                   "p.sql:1:43: error: read_kafka starting_offsets must be"},
        ParityCase{"LateTableNameTaken",
                   kBronzeDdl + kEvents + "CREATE STREAMING TABLE w TBLPROPERTIES ('sluice.late_rows' = 'table') AS "
                                       "SELECT count(*) AS n FROM STREAM(ev) WATERMARK ts DELAY OF INTERVAL 1 MINUTE "
                                       "GROUP BY window(ts, '1 minute');\n"
                                       "CREATE MATERIALIZED VIEW W_Late AS SELECT 1 AS x FROM ev;",
                   "p.sql:3:24: error: 'sluice.late_rows' = 'table' writes the late rows of 'w' to table 'w_late', but "
                   "the pipeline defines a dataset of that name; rename one of them"},
        // Decoding options without the decoding they belong to were accepted and ignored.
        ParityCase{"ValueSchemaWithoutValueFormat",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', value_schema => "
                   "'a INT');",
                   "p.sql:1:43: error: read_kafka value_schema says how to decode the value, but there is no "
                   "value_format: add value_format => 'json' or 'avro', or remove value_schema"},
        ParityCase{"RescuedColumnWithoutValueFormat",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', rescued_data_column "
                   "=> 'false');",
                   "p.sql:1:43: error: read_kafka rescued_data_column says how to decode the value"},
        ParityCase{"RegistryUrlWithJson",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', value_format => "
                   "'json', value_schema => 'a INT', schema_registry_url => 'http://127.0.0.1:1');",
                   "p.sql:1:43: error: read_kafka schema_registry_url is for value_format => 'avro'"},
        ParityCase{"RegistrySubjectWithJson",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', value_format => "
                   "'json', value_schema => 'a INT', schema_registry_subject => 's-value');",
                   "p.sql:1:43: error: read_kafka schema_registry_subject is for value_format => 'avro'"},
        ParityCase{"RescuedColumnNotABoolean",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', value_format => "
                   "'json', value_schema => 'a INT', rescued_data_column => 'yes');",
                   "p.sql:1:43: error: read_kafka rescued_data_column must be 'true' or 'false', not 'yes'"},
        ParityCase{"SampleSizeWithDeclaredSchema",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', value_format => "
                   "'json', value_schema => 'a INT', schema_sample_records => '10');",
                   "p.sql:1:43: error: read_kafka schema_sample_records sizes the sample for inferring"},
        ParityCase{"UnknownCluster",
                   "CREATE STREAMING TABLE b AS SELECT * FROM STREAM read_kafka(topic => 't', cluster => 'eu');",
                   "p.sql:1:43: error: read_kafka uses Kafka cluster 'eu', which pipeline.yaml does not define"}),
    [](const ::testing::TestParamInfo<ParityCase>& info) { return info.param.name; });

// Delta refuses two columns whose names differ at most in case; so does validate (and run),
// for every kind of dataset and every way a column gets its name.
INSTANTIATE_TEST_SUITE_P(
    DuplicateColumns, ValidateParityTest,
    ::testing::Values(
        ParityCase{"SameColumnTwice",
                   "CREATE STREAMING TABLE b AS SELECT offset, offset FROM STREAM read_kafka(topic => 't');",
                   "p.sql:1:44: error: streaming table 'b' would have two columns named 'offset' (columns 1 'offset' "
                   "and 2 'offset'; Delta column names are case-insensitive): name one of them differently with AS, "
                   "or list the columns instead of *"},
        ParityCase{"AliasesDifferingInCase",
                   "CREATE STREAMING TABLE b AS SELECT offset AS x, partition AS X FROM STREAM read_kafka(topic => "
                   "'t');",
                   "p.sql:1:49: error: streaming table 'b' would have two columns named 'X' (columns 1 'x' and 2 'X'"},
        ParityCase{"DeclaredColumns",
                   "CREATE STREAMING TABLE b (id BIGINT, ID STRING) AS SELECT offset AS id FROM STREAM "
                   "read_kafka(topic => 't');",
                   "p.sql:1:38: error: column 'ID' is declared twice (first as 'id' at line 1; Delta column names "
                   "are case-insensitive): remove or rename one"},
        ParityCase{"StructExpansion",
                   kBronzeDdl + kEvents + "CREATE MATERIALIZED VIEW m AS SELECT ev.*, offset AS ID FROM (SELECT "
                                       "struct(id, ts) AS ev, 1 AS offset FROM ev);",
                   "p.sql:3:44: error: materialized view 'm' would have two columns named 'ID' (columns 1 'id' and "
                   "3 'ID'"},
        ParityCase{"JoinStar",
                   kBronzeDdl + "CREATE MATERIALIZED VIEW m AS SELECT * FROM bronze a JOIN bronze b ON a.offset = "
                             "b.offset;",
                   "p.sql:2:38: error: materialized view 'm' would have two columns named 'key' (columns 1 'key' and "
                   "9 'key'"},
        ParityCase{"View",
                   kBronzeDdl + "CREATE VIEW v AS SELECT topic, TOPIC FROM bronze;",
                   "p.sql:2:32: error: view 'v' would have two columns named 'TOPIC'"},
        ParityCase{"UnionAll",
                   kBronzeDdl + "CREATE MATERIALIZED VIEW m AS SELECT topic AS a, offset AS A FROM bronze UNION ALL "
                             "SELECT topic, offset FROM bronze;",
                   "p.sql:2:50: error: materialized view 'm' would have two columns named 'A'"}),
    [](const ::testing::TestParamInfo<ParityCase>& info) { return info.param.name; });

}  // namespace
}  // namespace sluice::pipeline
