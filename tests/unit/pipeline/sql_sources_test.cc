// ${name} substitution into SQL: a value inside a string literal reads back exactly as written.
// Python files: the definer's answers become SQL whose errors name the .py file and line.
#include "sluice/pipeline/sql_sources.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/pipeline/graph.h"
#include "sluice/sql/generated_source.h"
#include "sluice/sql/lexer.h"

namespace sluice::pipeline {
namespace {

// The string literals the lexer reads from `sql` after substitution.
std::vector<std::string> literals(const std::string& sql, const std::map<std::string, std::string>& conf) {
  auto tokens = sql::tokenize(sql::SourceFile{"p.sql", substitute_variables(sql, conf)});
  EXPECT_TRUE(tokens.ok()) << tokens.status().ToString();
  std::vector<std::string> out;
  if (!tokens.ok()) return out;
  for (const auto& t : *tokens) {
    if (t.kind == sql::TokenKind::kString) out.push_back(t.text);
  }
  return out;
}

TEST(SubstituteVariables, ValueInsideALiteralReadsBackExactly) {
  for (const std::string value : {"ab'cd", "a\\nb", "x\\\\'y", "q\"q", "''", "plain"}) {
    const std::map<std::string, std::string> conf = {{"pw", value}};
    EXPECT_EQ(literals("SELECT '${pw}', \"${pw}\", 'pre-${pw}-post' FROM t", conf),
              (std::vector<std::string>{value, value, "pre-" + value + "-post"}))
        << value;
  }
}

TEST(SubstituteVariables, OutsideLiteralsAsWritten) {
  const std::map<std::string, std::string> conf = {{"t", "ev'en\\ts"}};
  EXPECT_EQ(substitute_variables("SELECT * FROM ${t} -- it's ${t}\n/* ${t} */ `${t}` ${u} '${t}'", conf),
            "SELECT * FROM ev'en\\ts -- it's ev'en\\ts\n/* ev'en\\ts */ `ev'en\\ts` ${u} 'ev''en\\\\ts'");
}

TEST(SubstituteVariables, QuotesInsideLiteralsDoNotEndThem) {
  const std::map<std::string, std::string> conf = {{"t", "events"}};
  EXPECT_EQ(substitute_variables("SELECT 'it''s ${t}', 'a\\'${t}'", conf), "SELECT 'it''s events', 'a\\'events'");
}

DefinerExit answered(std::string out, int code = 0) {
  DefinerExit e;
  e.code = code;
  e.out = std::move(out);
  return e;
}

TEST(PythonDefiner, AnExceptionNamesThePyFileAndLine) {
  auto files = generated_sql_files(
      {"p/a.py", "p/b.py"},
      answered(R"({"error": {"file": 1, "line": 12, "message": "NameError: name 'x' is not defined"}})", 1), {});
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().message(), "p/b.py:12: error: NameError: name 'x' is not defined");
}

TEST(PythonDefiner, AMessageQuotingAConfigurationValueIsRedacted) {
  auto files = generated_sql_files(
      {"p/a.py"},
      answered(R"({"error": {"file": 0, "line": 3, "message": "ValueError: invalid literal for int(): 'hunter22'"}})",
               1),
      {"hunter22"});
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().message(), "p/a.py:3: error: ValueError: invalid literal for int(): '<redacted>'");
}

TEST(PythonDefiner, ACrashShowsTheEndOfStderrRedacted) {
  DefinerExit e;
  e.code = 1;
  e.err = "Traceback (most recent call last):\n  File \"x\"\nModuleNotFoundError: No module named 'sluice'\n"
          "token=s3cr3tvalue\n";
  auto files = generated_sql_files({"p/a.py"}, e, {"s3cr3tvalue"});
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().message(),
            "p/a.py: the Python definer exited with status 1 without its answer:\nTraceback (most recent call "
            "last):\n  File \"x\"\nModuleNotFoundError: No module named 'sluice'\ntoken=<redacted>");
  DefinerExit killed;
  killed.signal = 9;
  auto by_signal = generated_sql_files({"p/a.py"}, killed, {});
  ASSERT_FALSE(by_signal.ok());
  EXPECT_EQ(by_signal.status().message(), "p/a.py: the Python definer was ended by signal 9");
}

TEST(PythonDefiner, AnAnswerOfTheWrongShapeIsAnError) {
  for (const std::string out : {R"({"files": []})", R"({"files": [{"statements": [{"line": 1}]}]})", R"([1])"}) {
    auto files = generated_sql_files({"p/a.py"}, answered(out), {});
    ASSERT_FALSE(files.ok()) << out;
    EXPECT_NE(files.status().message().find("p/a.py: the Python definer "), std::string::npos)
        << files.status().message();
  }
}

// A parse error in generated SQL names the .py line of the statement that made it, and shows
// the generated line with its position in the statement.
TEST(PythonDefiner, AParseErrorInGeneratedSqlNamesThePythonLine) {
  auto files = generated_sql_files(
      {"p/gen_parse.py"},
      answered(R"({"files": [{"statements": [
        {"line": 4, "what": "@dlt.table a", "sql": "CREATE OR REFRESH MATERIALIZED VIEW a AS SELECT 1 AS x"},
        {"line": 9, "what": "@dlt.table b", "sql": "CREATE OR REFRESH MATERIALIZED VIEW b AS\nSELECT x FROM a WHERE"}
      ]}]})"),
      {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].name, "p/gen_parse.py");
  auto graph = build_graph(std::move(*files));
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().message(),
            "1 error(s) in the pipeline:\n"
            "p/gen_parse.py:9: error: expected an expression but found ';'\n"
            "  in the SQL generated for @dlt.table b (its line 2, column 22):\n"
            "  SELECT x FROM a WHERE;\n"
            "                       ^");
}

TEST(PythonDefiner, ABindErrorInGeneratedSqlNamesThePythonLine) {
  auto files = generated_sql_files(
      {"p/gen_bind.py"},
      answered(R"({"files": [{"statements": [
        {"line": 3, "what": "@dlt.table a", "sql": "CREATE OR REFRESH MATERIALIZED VIEW a AS SELECT 1 AS x"},
        {"line": 7, "what": "@dlt.table b", "sql": "CREATE OR REFRESH MATERIALIZED VIEW b AS SELECT x FROM missing"}
      ]}]})"),
      {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  auto graph = build_graph(std::move(*files));
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().message(),
            "1 error(s) in the pipeline:\n"
            "p/gen_bind.py:7: error: unknown table 'missing'\n"
            "  in the SQL generated for @dlt.table b (its line 1, column 56):\n"
            "  CREATE OR REFRESH MATERIALIZED VIEW b AS SELECT x FROM missing;\n"
            "                                                         ^");
}

TEST(PythonDefiner, ErrorsOfSqlFilesKeepTheirOwnLines) {
  sql::register_generated_source("p/gen_other.py", {{0, 10, 5, "@dlt.table t"}});
  const sql::SourceFile sql_file{"p/plain.sql", "SELECT 1\nSELECT 2"};
  EXPECT_EQ(sql::format_error(sql_file, {2, 8, 16}, "oops"), "p/plain.sql:2:8: error: oops\n  SELECT 2\n         ^");
}

TEST(PythonDefiner, PipelineFilesAreThoseImportingThePipelineApi) {
  struct Case {
    const char* text;
    bool runs;
  };
  for (const auto& c : std::vector<Case>{{"import dlt\n", true},
                                         {"x = 1\n  from dlt import table, read\n", true},
                                         {"from pyspark import pipelines as dp\n", true},
                                         {"from pyspark import sql, pipelines\n", true},
                                         {"import pyspark.pipelines as dp\n", true},
                                         {"from pyspark.pipelines import table\n", true},
                                         {"import json, dlt as d\n", true},
                                         {"from dlt import (\n  table,\n)\n", true},
                                         {"import dltx\n", false},
                                         {"from dlt_helpers import x\n", false},
                                         {"import pyspark\n", false},
                                         {"# import dlt\n", false},
                                         {"s = 'import dlt'\n", false},
                                         {"from pyspark.sql import functions as F\n", false},
                                         {"from confluent_kafka import Producer\nimport json\n", false},
                                         // A byte order mark, `;` and a backslash continuation
                                         // (they were skipped silently before).
                                         {"\xEF\xBB\xBFimport dlt\n", true},
                                         {"import dlt;\n", true},
                                         {"import os; import dlt\n", true},
                                         {"import os, \\\n    dlt\n", true},
                                         {"from pyspark \\\r\n  import pipelines as dp\n", true},
                                         {"x = 1; y = 'dlt'\n", false}}) {
    EXPECT_EQ(imports_pipeline_api(c.text), c.runs) << c.text;
  }
}

// By default a helper script beside the pipeline's files is not run (it would produce data,
// or wait for input); only the .py files importing the pipeline API are.
TEST(PythonDefiner, DefaultLibrariesLeaveHelperScriptsAlone) {
  sluice::testing::TempDir dir;
  std::ofstream(dir.path() / "a.sql") << "CREATE OR REFRESH MATERIALIZED VIEW a AS SELECT 1 AS x;\n";
  std::ofstream(dir.path() / "generate.py") << "import sys\nsys.exit(3)\n";
  PipelineConfig config;
  config.dir = dir.path();
  ::testing::internal::CaptureStderr();
  auto files = load_sql_sources(config);
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_NE((*files)[0].name.find("a.sql"), std::string::npos);
  // Never silently: the file left alone is named, with how to run it.
  EXPECT_NE(said.find("generate.py: not run (it imports neither dlt nor pyspark.pipelines"), std::string::npos)
      << said;
  EXPECT_NE(said.find("name it under libraries:"), std::string::npos) << said;
}

// The real definer under python3: a Python exception in a pipeline file and an error of the
// SQL it generated both name the file and line.
TEST(PythonDefiner, RunsTheDefinerAndLocatesItsErrors) {
  sluice::testing::TempDir dir;
  ASSERT_EQ(::setenv("SLUICE_PYTHONPATH", SLUICE_TEST_DATA_DIR "/../../python", 1), 0);
  PipelineConfig config;
  config.dir = dir.path();
  config.configuration = {{"secret_topic", "t0p-secret-topic"}};
  std::ofstream(dir.path() / "cdc.py") << "import dlt\n"
                                          "\n"
                                          "dlt.create_streaming_table('customers')\n"
                                          "dlt.apply_changes(target='customers', source='nowhere', keys=['id'],\n"
                                          "                  sequence_by='lsn')\n";
  auto files = load_sql_sources(config);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 1u);
  auto graph = build_graph(std::move(*files));
  ASSERT_FALSE(graph.ok());
  EXPECT_NE(graph.status().message().find("cdc.py:4: error: "), std::string::npos) << graph.status().message();
  EXPECT_NE(graph.status().message().find("nowhere"), std::string::npos) << graph.status().message();

  std::ofstream(dir.path() / "cdc.py", std::ios::trunc) << "import dlt\n"
                                                           "topic = spark.conf.get('secret_topic')\n"
                                                           "raise ValueError('bad topic ' + topic)\n";
  auto failed = load_sql_sources(config);
  ::unsetenv("SLUICE_PYTHONPATH");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("cdc.py:3: error: ValueError: bad topic <redacted>"), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(failed.status().message().find("t0p-secret"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pipeline
