// Resolving SQL pipelines into a graph: order across files, and every graph error with its
// exact message.
#include "sluice/pipeline/graph.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "sluice/sql/generated_source.h"

namespace sluice::pipeline {
namespace {

arrow::Result<Graph> build(std::vector<std::pair<std::string, std::string>> files) {
  std::vector<sql::SourceFile> sources;
  for (auto& [name, text] : files) sources.push_back({name, text});
  return build_graph(std::move(sources));
}

TEST(GraphTest, ResolvesAcrossFilesInAnyOrder) {
  auto g = build({{"gold.sql", "CREATE MATERIALIZED VIEW gold AS SELECT count(*) FROM silver;"},
                  {"silver.sql", "CREATE STREAMING TABLE silver AS SELECT * FROM STREAM(bronze);\n"
                                 "CREATE FLOW backfill AS INSERT INTO silver BY NAME SELECT * FROM STREAM(old);"},
                  {"bronze.sql", "CREATE STREAMING TABLE bronze AS SELECT * FROM STREAM read_kafka(topic => 'e');\n"
                                 "CREATE STREAMING TABLE old AS SELECT * FROM STREAM read_kafka(topic => 'legacy');"}});
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto pos = [&](const std::string& n) { return std::find(g->order.begin(), g->order.end(), n) - g->order.begin(); };
  EXPECT_LT(pos("bronze"), pos("silver"));
  EXPECT_LT(pos("old"), pos("silver"));
  EXPECT_LT(pos("silver"), pos("gold"));
  EXPECT_EQ(g->datasets.at("silver").flows, (std::vector<std::string>{"silver", "backfill"}));
  EXPECT_EQ(g->upstream_of("silver"), (std::vector<std::string>{"bronze", "old"}));
  const auto& kafka = g->flows.at("bronze").inputs.at(0);
  EXPECT_EQ(kafka.kind, FlowInput::Kind::kKafka);
  EXPECT_EQ(kafka.name, "e");
  EXPECT_TRUE(kafka.streaming);
}

TEST(GraphTest, TableChangesReadsItsTableAsAnInput) {
  auto g = build({{"a.sql", "CREATE MATERIALIZED VIEW m AS SELECT count(*) FROM table_changes('live.s', 0, 3);\n"
                            "CREATE STREAMING TABLE c AS SELECT * FROM STREAM table_changes('s', 0);\n"
                            "CREATE STREAMING TABLE s AS SELECT 1 FROM STREAM read_kafka(topic => 't');"}});
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->upstream_of("m"), (std::vector<std::string>{"s"}));
  EXPECT_EQ(g->upstream_of("c"), (std::vector<std::string>{"s"}));
  EXPECT_TRUE(g->flows.at("c").inputs.at(0).streaming);
  auto pos = [&](const std::string& n) { return std::find(g->order.begin(), g->order.end(), n) - g->order.begin(); };
  EXPECT_LT(pos("s"), pos("c"));
  EXPECT_LT(pos("s"), pos("m"));
}

TEST(GraphTest, CtesAreNotTables) {
  auto g = build({{"a.sql", "CREATE STREAMING TABLE s AS SELECT 1 FROM STREAM read_kafka(topic => 't');\n"
                            "CREATE MATERIALIZED VIEW m AS WITH x AS (SELECT * FROM s) SELECT * FROM x;"}});
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->upstream_of("m"), (std::vector<std::string>{"s"}));
}

// SQL a .py file generated: `graph --format json` and "first defined at" name the .py line of
// the decorator, not the generated text's line.
TEST(GraphTest, GeneratedDefinitionsAreAtTheirPythonLines) {
  const std::string first = "CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 't');\n";
  const std::string second = "CREATE MATERIALIZED VIEW m AS SELECT * FROM a;\n";
  sql::register_generated_source("graph_test_tables.py", {{0, first.size(), 12, "@dlt.table a"},
                                                          {first.size(), first.size() + second.size(), 30,
                                                           "@dlt.table m"}});
  auto g = build({{"graph_test_tables.py", first + second}});
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto json = nlohmann::json::parse(graph_to_json(*g));
  std::map<std::string, int> lines;
  for (const auto& d : json["datasets"]) lines[d["name"]] = d["line"];
  EXPECT_EQ(lines, (std::map<std::string, int>{{"a", 12}, {"m", 30}}));

  auto twice = build({{"graph_test_tables.py", first + second}, {"p.sql", "CREATE MATERIALIZED VIEW m AS SELECT 1;"}});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("'m' is defined twice; first as a materialized view at "
                                          "graph_test_tables.py:30\n"),
            std::string::npos)
      << twice.status().message();
}

struct GraphErrorCase {
  std::string sql;
  std::string message;
};

class GraphErrorTest : public ::testing::TestWithParam<GraphErrorCase> {};

TEST_P(GraphErrorTest, ReportsExactly) {
  auto g = build({{"p.sql", GetParam().sql}});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, GraphErrorTest,
    ::testing::Values(
        GraphErrorCase{"CREATE MATERIALIZED VIEW m AS SELECT * FROM order_silver;\n"
                       "CREATE STREAMING TABLE orders_silver AS SELECT * FROM STREAM read_kafka(topic => 'o');",
                       "1 error(s) in the pipeline:\np.sql:1:45: error: unknown table 'order_silver' (did you mean "
                       "'orders_silver'?)\n  CREATE MATERIALIZED VIEW m AS SELECT * FROM order_silver;\n"
                       "                                              ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW a AS SELECT * FROM b;\nCREATE MATERIALIZED VIEW b AS SELECT * FROM a;",
                       "1 error(s) in the pipeline:\np.sql:1:26: error: the pipeline has a cycle: a -> b -> a\n"
                       "  CREATE MATERIALIZED VIEW a AS SELECT * FROM b;\n                           ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW m AS SELECT 1;\nCREATE STREAMING TABLE s AS SELECT * FROM STREAM(m);",
                       "1 error(s) in the pipeline:\np.sql:2:43: error: cannot read materialized view 'm' as a "
                       "stream: it is recomputed, not appended to; read it without STREAM()\n"
                       "  CREATE STREAMING TABLE s AS SELECT * FROM STREAM(m);\n"
                       "                                            ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW m AS SELECT 1;\nCREATE VIEW m AS SELECT 2;",
                       "1 error(s) in the pipeline:\np.sql:2:13: error: 'm' is defined twice; first as a "
                       "materialized view at p.sql:1:26\n  CREATE VIEW m AS SELECT 2;\n              ^"},
        GraphErrorCase{"CREATE FLOW f AS INSERT INTO nowhere BY NAME SELECT 1;",
                       "1 error(s) in the pipeline:\np.sql:1:30: error: flow 'f' writes to 'nowhere', which is "
                       "not defined; add CREATE OR REFRESH STREAMING TABLE nowhere\n"
                       "  CREATE FLOW f AS INSERT INTO nowhere BY NAME SELECT 1;\n"
                       "                               ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW m AS SELECT 1;\nCREATE FLOW f AS INSERT INTO m BY NAME SELECT 2;",
                       "1 error(s) in the pipeline:\np.sql:2:30: error: flow 'f' writes to 'm', a materialized "
                       "view; only streaming tables take extra flows\n"
                       "  CREATE FLOW f AS INSERT INTO m BY NAME SELECT 2;\n"
                       "                               ^"},
        GraphErrorCase{"CREATE STREAMING TABLE d;\nAPPLY CHANGES INTO d FROM cdc KEYS (id) SEQUENCE BY ts;\n"
                       "CREATE STREAMING TABLE cdc AS SELECT * FROM STREAM read_kafka(topic => 'c');",
                       "1 error(s) in the pipeline:\np.sql:2:27: error: APPLY CHANGES reads a stream: write FROM "
                       "STREAM(source)\n  APPLY CHANGES INTO d FROM cdc KEYS (id) SEQUENCE BY ts;\n"
                       "                            ^"},
        // Names that become file names: one check for datasets and flows.
        GraphErrorCase{"CREATE STREAMING TABLE `../escape` AS SELECT * FROM STREAM read_kafka(topic => 'c');",
                       "1 error(s) in the pipeline:\np.sql:1:24: error: dataset name '../escape' cannot be used: it "
                       "contains a path separator ('/' or '\\'), so it would name a file outside its folder; use "
                       "letters, digits and _\n"
                       "  CREATE STREAMING TABLE `../escape` AS SELECT * FROM STREAM read_kafka(topic => '<redacted>');\n"
                       "                         ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW `/tmp/abs` AS SELECT 1;",
                       "1 error(s) in the pipeline:\np.sql:1:26: error: dataset name '/tmp/abs' cannot be used: it "
                       "contains a path separator ('/' or '\\'), so it would name a file outside its folder; use "
                       "letters, digits and _\n"
                       "  CREATE MATERIALIZED VIEW `/tmp/abs` AS SELECT 1;\n"
                       "                           ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW `..` AS SELECT 1;",
                       "1 error(s) in the pipeline:\np.sql:1:26: error: dataset name '..' cannot be used: '..' names "
                       "a folder, not a table; use letters, digits and _\n"
                       "  CREATE MATERIALIZED VIEW `..` AS SELECT 1;\n"
                       "                           ^"},
        GraphErrorCase{"CREATE STREAMING TABLE t;\nCREATE FLOW `a\\b` AS INSERT INTO t BY NAME SELECT * FROM "
                       "STREAM read_kafka(topic => 'c');",
                       "1 error(s) in the pipeline:\np.sql:2:13: error: flow name 'a\\b' cannot be used: it contains "
                       "a path separator ('/' or '\\'), so it would name a file outside its folder; use letters, "
                       "digits and _\n"
                       "  CREATE FLOW `a\\b` AS INSERT INTO t BY NAME SELECT * FROM STREAM read_kafka(topic => '<redacted>');\n"
                       "              ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW Orders AS SELECT 1;\nCREATE MATERIALIZED VIEW orders AS SELECT 2;",
                       "1 error(s) in the pipeline:\np.sql:2:26: error: 'orders' differs only in case from 'Orders', "
                       "defined at p.sql:1:26; table names are case-insensitive (Delta, Spark, and the storage "
                       "folder on some file systems): rename one of them\n"
                       "  CREATE MATERIALIZED VIEW orders AS SELECT 2;\n"
                       "                           ^"},
        GraphErrorCase{"CREATE STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(topic => 'a');\n"
                       "CREATE FLOW T AS INSERT INTO t BY NAME SELECT * FROM STREAM read_kafka(topic => 'b');",
                       "1 error(s) in the pipeline:\np.sql:2:13: error: flow 'T' differs only in case from flow 't' "
                       "(a flow's state is kept in a folder named after it): rename one of them\n"
                       "  CREATE FLOW T AS INSERT INTO t BY NAME SELECT * FROM STREAM read_kafka(topic => '<redacted>');\n"
                       "              ^"},
        GraphErrorCase{"CREATE MATERIALIZED VIEW m AS SELECT * FROM read_files('/data/x.json');",
                       "1 error(s) in the pipeline:\np.sql:1:45: error: table function read_files is not supported "
                       "(only read_kafka and table_changes are): read a Kafka topic with read_kafka(topic => '...'), "
                       "a dataset of the pipeline by its name, or its change feed with table_changes('name', "
                       "version)\n"
                       "  CREATE MATERIALIZED VIEW m AS SELECT * FROM read_files('<redacted>');\n"
                       "                                              ^"}));

}  // namespace
}  // namespace sluice::pipeline

namespace sluice::pipeline {
namespace {

// Found by fuzz/sql_frontend_fuzzer.cc: a byte that is not UTF-8 in a topic name made
// `sluice graph --format json` (and the event log) throw. SQL files must be UTF-8; the error
// quotes the line (string literals hidden, as on every error line: they may hold secrets),
// so the message itself is valid UTF-8.
TEST(GraphTest, SqlThatIsNotUtf8IsRefusedWhereItStops) {
  auto g = build({{"p.sql", "CREATE STREAMING TABLE t\nAS SELECT * FROM STREAM read_kafka(topic => '\xBBx\xC3');"}});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message(),
            "1 error(s) in the pipeline:\np.sql:2:46: error: byte 0xBB is not valid UTF-8: save the file as UTF-8\n"
            "  AS SELECT * FROM STREAM read_kafka(topic => '<redacted>');\n"
            "                                               ^");
  // Outside a literal the bad bytes show as '?'.
  auto in_name = build({{"p.sql", "CREATE MATERIALIZED VIEW m\xBB AS SELECT 1;"}});
  ASSERT_FALSE(in_name.ok());
  EXPECT_EQ(in_name.status().message(),
            "1 error(s) in the pipeline:\np.sql:1:27: error: byte 0xBB is not valid UTF-8: save the file as UTF-8\n"
            "  CREATE MATERIALIZED VIEW m? AS SELECT 1;\n"
            "                            ^");
  EXPECT_TRUE(build({{"p.sql", "CREATE MATERIALIZED VIEW m AS SELECT 'h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80' AS s "
                               "FROM read_kafka(topic => 't');"}})
                  .ok());
}

}  // namespace
}  // namespace sluice::pipeline

namespace sluice::pipeline {
namespace {

// CREATE SINK: a node of its own, fed by CREATE FLOW ... INSERT INTO <sink>, in the lineage.
TEST(GraphSinkTest, FlowsIntoASinkReadTheirStreamingTable) {
  auto g = build({{"p.sql", "CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 't');\n"
                            "CREATE SINK out OPTIONS (format => 'kafka', topic => 'alerts');\n"
                            "CREATE FLOW to_out AS INSERT INTO out SELECT * FROM STREAM(a);"}});
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->sinks.at("out").flows, (std::vector<std::string>{"to_out"}));
  EXPECT_EQ(g->sink_upstream("out"), (std::vector<std::string>{"a"}));
  EXPECT_FALSE(g->datasets.count("out"));
  auto json = nlohmann::json::parse(graph_to_json(*g));
  EXPECT_EQ(json["sinks"][0]["name"], "out");
  EXPECT_EQ(json["sinks"][0]["format"], "kafka");
  EXPECT_NE(graph_to_dot(*g).find("\"a\" -> \"out\""), std::string::npos);
  EXPECT_NE(graph_to_mermaid(*g).find("out[/out sink/]"), std::string::npos);
}

TEST(GraphSinkTest, WhatASinkCannotBeIsRefusedAtItsPlace) {
  const std::string table = "CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 't');\n";
  const std::string sink = "CREATE SINK out OPTIONS (format => 'kafka', topic => 'x');\n";
  struct Case {
    std::string sql, message;
  };
  for (const auto& c : std::vector<Case>{
           {table + "CREATE SINK a OPTIONS (format => 'kafka');", "p.sql:2:13: error: sink 'a' has the name of the "
                                                                 "streaming table defined at p.sql:1:24"},
           {table + sink + "CREATE SINK out OPTIONS (format => 'kafka');", "p.sql:3:13: error: sink 'out' is defined "
                                                                            "twice; first at p.sql:2:13"},
           {table + sink + "CREATE FLOW f AS INSERT INTO out SELECT * FROM a;",
            "p.sql:3:48: error: flow 'f' into sink 'out' reads 'a' as a table: a sink flow reads one streaming table "
            "as a stream, write FROM STREAM(a)"},
           {sink + "CREATE FLOW f AS INSERT INTO out SELECT * FROM STREAM read_kafka(topic => 'q');",
            "flow 'f' into sink 'out' reads read_kafka directly"},
           {table + sink + "APPLY CHANGES INTO out FROM STREAM(a) KEYS (k) SEQUENCE BY s;",
            "APPLY CHANGES writes a streaming table, and 'out' is a sink"},
       }) {
    auto g = build({{"p.sql", c.sql}});
    ASSERT_FALSE(g.ok()) << c.sql;
    EXPECT_NE(g.status().message().find(c.message), std::string::npos) << g.status().message();
  }
}

}  // namespace
}  // namespace sluice::pipeline
