// SQL that is large rather than wrong: long IN lists and AND/OR/|| chains work, deep nesting
// and long chains of views or CTEs are refused with a limit error at file:line:col. Every case
// is parsed and planned (what `sluice validate` and `sluice run` do before any data moves) on
// a thread with a small stack, so a recursion that the limits do not bound crashes the test.
#include <arrow/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>
#include <string>

#include "../temp_dir.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/exec/select_plan.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/sql/parser.h"

namespace sluice::pipeline {
namespace {

// Smaller than any stack sluice plans on: the main thread (8 MiB by default) and std::thread
// (glibc: RLIMIT_STACK, or 2 MiB when that is unlimited).
// Sanitizers make frames several times larger.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kStackBytes = 4 << 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kStackBytes = 4 << 20;
#else
constexpr size_t kStackBytes = 1 << 20;
#endif
#else
constexpr size_t kStackBytes = 1 << 20;
#endif

// Runs `fn` on a thread with a stack of `bytes`.
void on_small_stack(const std::function<void()>& fn, size_t bytes = kStackBytes) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, bytes);
  pthread_t thread;
  auto* call = new std::function<void()>(fn);
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void* p) -> void* {
                  auto* f = static_cast<std::function<void()>*>(p);
                  (*f)();
                  delete f;
                  return nullptr;
                },
                call),
            0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// Parses and plans the pipeline (validate's path); the error message, or "" when it is valid.
std::string validate(const std::string& sql) {
  std::string message;
  on_small_stack([&] {
    testing::TempDir storage;
    PipelineConfig config;
    config.name = "limits";
    config.storage = storage.path();
    config.kafka["default"] = {{"bootstrap.servers", "127.0.0.1:1"}};
    auto graph = build_graph({{"p.sql", sql}});
    if (!graph.ok()) {
      message = graph.status().message();
      return;
    }
    auto schemas = check_sql_pipeline(config, *graph);
    if (!schemas.ok()) message = schemas.status().message();
  });
  return message;
}

const char* kBronze = "CREATE STREAMING TABLE bronze AS SELECT * FROM STREAM read_kafka(topic => 't');\n";

std::string chain(const std::string& first, const std::string& op, int terms,
                  const std::function<std::string(int)>& term) {
  std::string out = first;
  for (int i = 0; i < terms; ++i) out += (i || !first.empty() ? op : "") + term(i);
  return out;
}

// Binds `expr` against a batch of `rows` and evaluates it, on the small stack.
std::shared_ptr<arrow::Array> evaluate_over(const std::string& expr, const std::shared_ptr<arrow::RecordBatch>& rows) {
  std::shared_ptr<arrow::Array> out;
  on_small_stack([&] {
    sql::SourceFile file{"e.sql", expr};
    auto parsed = sql::parse_expression(file);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    exec::ExpressionBinder binder(file, rows->schema());
    auto bound = binder.bind(**parsed);
    ASSERT_TRUE(bound.ok()) << bound.status().message();
    auto result = exec::evaluate(*bound, *rows);
    ASSERT_TRUE(result.ok()) << result.status().message();
    out = *result;
  });
  return out;
}

std::shared_ptr<arrow::RecordBatch> numbers(int64_t n) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(b.Append(i * 7).ok());
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("x", arrow::int64())}), n, {*b.Finish()});
}

TEST(SqlLimitsTest, InListOf20000ItemsWorks) {
  EXPECT_EQ(validate(std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS SELECT offset FROM bronze WHERE offset IN (" +
                     chain("", ", ", 20000, [](int i) { return std::to_string(i * 3); }) + ");"),
            "");
  // Evaluated: x IN (0, 3, 6, ...) against x = 0, 7, 14, ...: true exactly for multiples of 21.
  auto rows = numbers(1000);
  auto in = evaluate_over("x IN (" + chain("", ", ", 20000, [](int i) { return std::to_string(i * 3); }) + ")", rows);
  ASSERT_NE(in, nullptr);
  const auto& flags = static_cast<const arrow::BooleanArray&>(*in);
  for (int64_t i = 0; i < rows->num_rows(); ++i) EXPECT_EQ(flags.Value(i), (i * 7) % 3 == 0) << i;
  // NOT IN with a NULL in the list is never true (three-valued logic).
  auto not_in = evaluate_over("x NOT IN (" + chain("", ", ", 20000, [](int i) { return std::to_string(i * 3); }) +
                                  ", NULL)",
                              rows);
  ASSERT_NE(not_in, nullptr);
  EXPECT_EQ(not_in->null_count() + static_cast<const arrow::BooleanArray&>(*not_in).false_count(), rows->num_rows());
}

TEST(SqlLimitsTest, OrChainOf10000TermsWorks) {
  auto ors = chain("", " OR ", 10000, [](int i) { return fmt::format("offset = {}", i * 3); });
  EXPECT_EQ(validate(std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS SELECT offset FROM bronze WHERE " + ors + ";"),
            "");
  auto rows = numbers(1000);
  auto result = evaluate_over(chain("", " OR ", 10000, [](int i) { return fmt::format("x = {}", i * 3); }), rows);
  ASSERT_NE(result, nullptr);
  const auto& flags = static_cast<const arrow::BooleanArray&>(*result);
  for (int64_t i = 0; i < rows->num_rows(); ++i) EXPECT_EQ(flags.Value(i), (i * 7) % 3 == 0) << i;
}

TEST(SqlLimitsTest, AndChainOf10000TermsWorks) {
  auto rows = numbers(100);
  auto result = evaluate_over(chain("", " AND ", 10000, [](int i) { return fmt::format("x <> {}", i * 3 + 1); }), rows);
  ASSERT_NE(result, nullptr);
  const auto& flags = static_cast<const arrow::BooleanArray&>(*result);
  // x = 7i is excluded exactly when 7i = 3k + 1 for some k < 10000, i.e. 7i % 3 == 1.
  for (int64_t i = 0; i < rows->num_rows(); ++i) EXPECT_EQ(flags.Value(i), (i * 7) % 3 != 1) << i;
}

TEST(SqlLimitsTest, ConcatChainOf10000TermsWorks) {
  auto rows = numbers(3);
  auto result = evaluate_over(chain("", " || ", 10000, [](int i) { return i % 2 ? "x" : "'-'"; }), rows);
  ASSERT_NE(result, nullptr);
  const auto& text = static_cast<const arrow::StringArray&>(*result);
  for (int64_t i = 0; i < rows->num_rows(); ++i) {
    std::string want;
    for (int k = 0; k < 10000; ++k) want += k % 2 ? std::to_string(i * 7) : "-";
    EXPECT_EQ(text.GetString(i), want);
  }
}

TEST(SqlLimitsTest, ExpressionsAtTheLimitEvaluate) {
  // The deepest expressions the parser accepts, bound and run by Arrow on the small stack.
  auto rows = numbers(10);
  std::string calls = "x";
  for (int i = 0; i < 250; ++i) calls = "abs(" + calls + ")";
  std::string cases = "x";
  for (int i = 0; i < 250; ++i) cases = "CASE WHEN x >= 0 THEN " + cases + " ELSE 0 END";
  std::string negations = "x";
  for (int i = 0; i < 250; ++i) negations = "-(" + negations + ")";  // two levels each: 125 pairs
  for (const auto& expr : {calls, cases}) {
    auto result = evaluate_over(expr, rows);
    ASSERT_NE(result, nullptr);
    EXPECT_TRUE(result->Equals(*rows->column(0))) << expr.substr(0, 80);
  }
  sql::SourceFile file{"e.sql", negations};
  EXPECT_FALSE(sql::parse_expression(file).ok());  // -( ... ) is two levels: beyond the limit
}

TEST(SqlLimitsTest, DeepExpressionsBindWhateverStackTheCallerHasLeft) {
  // The binder's frames are many times larger under ASan (256 levels of abs() overflowed the
  // fuzzer's 8 MiB main stack: fuzz/corpus/sql_frontend/crash-2f55...), so expressions deeper
  // than a few levels are bound on a thread of their own with a big stack: here on a caller's
  // stack of 256 KiB, in every build. An error at the bottom keeps its line:col.
  auto rows = numbers(10);
  std::string calls = "x";
  std::string bad = "nope";
  for (int i = 0; i < 250; ++i) {
    calls = "abs(" + calls + ")";
    bad = "abs(" + bad + ")";
  }
  sql::SourceFile file{"e.sql", calls};
  sql::SourceFile bad_file{"e.sql", bad};
  auto parsed = sql::parse_expression(file);
  auto bad_parsed = sql::parse_expression(bad_file);
  ASSERT_TRUE(parsed.ok() && bad_parsed.ok());
  arrow::Result<exec::BoundExpression> bound = arrow::Status::UnknownError("not run");
  arrow::Result<exec::BoundExpression> bad_bound = arrow::Status::UnknownError("not run");
  on_small_stack(
      [&] {
        bound = exec::ExpressionBinder(file, rows->schema()).bind(**parsed);
        bad_bound = exec::ExpressionBinder(bad_file, rows->schema()).bind(**bad_parsed);
      },
      256 << 10);
  ASSERT_TRUE(bound.ok()) << bound.status().message();
  auto result = exec::evaluate(*bound, *rows);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_TRUE((*result)->Equals(*rows->column(0)));
  ASSERT_FALSE(bad_bound.ok());
  EXPECT_EQ(bad_bound.status().message().rfind("e.sql:1:1001: error: ", 0), 0u) << bad_bound.status().message();
}

TEST(SqlLimitsTest, ShortChainsKeepTheirShape) {
  // The names of unaliased columns come from the tree: chains of up to 8 terms stay left-deep.
  sql::SourceFile file{"e.sql", "a OR b OR c OR d"};
  auto parsed = sql::parse_expression(file);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(sql::to_string(**parsed), "(OR (OR (OR a b) c) d)");
}

// The line:col of the error, and that it is the nesting limit.
void expect_nesting_error(const std::string& message, const std::string& where) {
  EXPECT_NE(message.find(where), std::string::npos) << message.substr(0, 600);
  EXPECT_NE(message.find(": error: the SQL nests deeper than 256 levels here"), std::string::npos)
      << message.substr(0, 600);
  EXPECT_NE(message.find("split it up, e.g. into views or CTEs"), std::string::npos);
}

TEST(SqlLimitsTest, ArithmeticChainOf10000TermsIsRefused) {
  // + is not associative under overflow checks, so it is not rebalanced: refused past the limit.
  const std::string prefix = std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS SELECT ";
  expect_nesting_error(validate(prefix + chain("offset", " + ", 10000, [](int) { return "1"; }) + " AS s FROM bronze;"),
                       "p.sql:2:");
  EXPECT_EQ(validate(prefix + chain("offset", " + ", 200, [](int) { return "1"; }) + " AS s FROM bronze;"), "");
}

TEST(SqlLimitsTest, NestedParenthesesAtAndBeyondTheLimit) {
  const std::string prefix = std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS SELECT ";
  auto nested = [&](int n) { return prefix + std::string(n, '(') + "offset" + std::string(n, ')') + " AS o FROM bronze;"; };
  EXPECT_EQ(validate(nested(200)), "");
  auto message = validate(nested(2000));
  // The first '(' beyond the limit: column 38 + 255 (SELECT's item is one level).
  expect_nesting_error(message, "p.sql:2:293");
}

TEST(SqlLimitsTest, NestedSubqueriesAtAndBeyondTheLimit) {
  auto nested = [&](int n) {
    std::string q = "SELECT * FROM bronze";
    for (int i = 0; i < n; ++i) q = "SELECT * FROM (" + q + ")";
    return std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS " + q + ";";
  };
  EXPECT_EQ(validate(nested(100)), "");
  expect_nesting_error(validate(nested(2000)), "p.sql:2:");
  // Inside the parser's limit but beyond the planner's: refused by the planner.
  auto message = validate(nested(200));
  EXPECT_NE(message.find("error: this subquery nests more than 128 views, CTEs and subqueries"), std::string::npos)
      << message.substr(0, 600);
}

TEST(SqlLimitsTest, ChainedCtesAtAndBeyondTheLimit) {
  auto ctes = [&](int n) {
    std::string q = "WITH c0 AS (SELECT * FROM bronze)";
    for (int i = 1; i < n; ++i) q += fmt::format(", c{} AS (SELECT * FROM c{})", i, i - 1);
    return std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS " + q + fmt::format(" SELECT * FROM c{};", n - 1);
  };
  EXPECT_EQ(validate(ctes(100)), "");
  auto message = validate(ctes(5000));
  EXPECT_NE(message.find("error: reading 'c4872' nests more than 128 views, CTEs and subqueries inside each other"),
            std::string::npos)
      << message.substr(0, 600);
}

TEST(SqlLimitsTest, ManyIndependentCtesWork) {
  std::string q = "WITH c0 AS (SELECT * FROM bronze)";
  for (int i = 1; i < 5000; ++i) q += fmt::format(", c{} AS (SELECT * FROM bronze)", i);
  EXPECT_EQ(validate(std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS " + q + " SELECT * FROM c0;"), "");
}

TEST(SqlLimitsTest, ChainedViewsAtAndBeyondTheLimit) {
  auto views = [&](int n) {
    std::string sql = std::string(kBronze) + "CREATE VIEW v0 AS SELECT * FROM bronze;\n";
    for (int i = 1; i < n; ++i) sql += fmt::format("CREATE VIEW v{} AS SELECT * FROM v{};\n", i, i - 1);
    return sql + fmt::format("CREATE MATERIALIZED VIEW m AS SELECT * FROM v{};\n", n - 1);
  };
  EXPECT_EQ(validate(views(100)), "");
  auto message = validate(views(5000));
  EXPECT_NE(message.find("nests more than 128 views, CTEs and subqueries inside each other"), std::string::npos)
      << message.substr(0, 600);
  EXPECT_NE(message.find("error: reading 'v"), std::string::npos) << message.substr(0, 600);
}

TEST(SqlLimitsTest, ChainOf5000StreamingTablesWorks) {
  std::string sql = kBronze;
  sql += "CREATE STREAMING TABLE s0 AS SELECT * FROM STREAM(bronze);\n";
  for (int i = 1; i < 5000; ++i) sql += fmt::format("CREATE STREAMING TABLE s{} AS SELECT * FROM STREAM(s{});\n", i, i - 1);
  EXPECT_EQ(validate(sql), "");
}

TEST(SqlLimitsTest, DeeplyNestedTypesAreRefused) {
  std::string type;
  for (int i = 0; i < 2000; ++i) type += "ARRAY<";
  type += "INT" + std::string(2000, '>');
  expect_nesting_error(validate("CREATE STREAMING TABLE t (c " + type + ");"), "p.sql:1:");
}

TEST(SqlLimitsTest, LongChainsOfJoinsAndPostfixesAreRefused) {
  std::string joins = "SELECT * FROM bronze b0";
  for (int i = 1; i < 2000; ++i) joins += fmt::format(" JOIN bronze b{} ON b{}.offset = b0.offset", i, i);
  expect_nesting_error(validate(std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS " + joins + ";"), "p.sql:2:");
  std::string subscripts = "SELECT headers";
  for (int i = 0; i < 2000; ++i) subscripts += "[0]";
  expect_nesting_error(validate(std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS " + subscripts + " FROM bronze;"),
                       "p.sql:2:");
  std::string nots = "SELECT " + std::string(0, ' ');
  for (int i = 0; i < 2000; ++i) nots += "NOT ";
  expect_nesting_error(validate(std::string(kBronze) + "CREATE MATERIALIZED VIEW m AS " + nots + "true AS x FROM bronze;"),
                       "p.sql:2:");
}

}  // namespace
}  // namespace sluice::pipeline
